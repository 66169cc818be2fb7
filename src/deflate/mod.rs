//! permessage-deflate (RFC 7692): negotiation of its four parameters, and
//! per-message compression and capped, incremental decompression.
//!
//! Compression goes through zlib-rs (flate2), except for messages up to
//! [`WHOLE_MESSAGE_MAX`] compressed on their own, which the crate's own
//! whole-message encoder ([`encoder`]) takes: there a general-purpose
//! compressor's fixed costs per message outweigh the work on the message.
//!
//! Negotiation is strict: values are 8 to 15 written as plain digits, a
//! parameter appears at most once, and an offer with an unknown parameter is
//! declined (a server moves on to the client's next offer), never an error.
//!
//! Window bits 8: zlib, and so the compression library used here, cannot
//! compress raw deflate with a 256-byte window. When the peer limits our
//! window to 8 bits, the extension is still accepted but every message we
//! send goes out uncompressed, which RFC 7692 always allows. Decompressing
//! with a larger window than the peer compressed with is always valid, so a
//! peer's 8-bit window is inflated with 9 bits.

mod encoder;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::connection::Role;
use crate::handshake::Extension;

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The four bytes a sync flush ends with, removed from each message sent and
/// put back before inflating each message received (RFC 7692 section 7.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How this endpoint negotiates and uses permessage-deflate, in either role.
///
/// The fields speak of "own" (what we compress) and "peer" (what we
/// decompress); on the wire they become the RFC's `server_*` and `client_*`
/// parameters according to the role.
///
/// The defaults favour memory: no context is kept between messages in either
/// direction, so an idle connection holds no compression state at all (a
/// deflate context costs about 300 KiB while it exists). Turn
/// [`own_context_takeover`](Self::own_context_takeover) and
/// [`peer_context_takeover`](Self::peer_context_takeover) on for better
/// compression of many small, similar messages, at that memory cost per
/// connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0 (store) to 9 (smallest). Default 6.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 64 bytes:
    /// below that, deflate's own overhead outweighs the gain.
    pub threshold: usize,
    /// Keep our compression context from one message to the next. Default
    /// `false` (we offer or answer `*_no_context_takeover` for our side).
    pub own_context_takeover: bool,
    /// Let the peer keep its compression context, which makes us keep a
    /// decompression context (2^window bytes plus state) between messages.
    /// Default `false`: we ask the peer not to.
    pub peer_context_takeover: bool,
    /// Largest window we compress with, 9 to 15. Default 15.
    pub own_max_window_bits: u8,
    /// Largest window we ask the peer to compress with, 8 to 15, when the peer
    /// supports the parameter. Default 15.
    pub peer_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 64,
            own_context_takeover: false,
            peer_context_takeover: false,
            own_max_window_bits: 15,
            peer_max_window_bits: 15,
        }
    }
}

/// The parameters both ends agreed on, in the RFC's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server starts every message with an empty compression context.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty compression context.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most 2^this bytes of window (8-15).
    pub server_max_window_bits: u8,
    /// The client compresses with at most 2^this bytes of window (8-15).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// `(no context takeover, max window bits)` for the side compressing in
    /// `role`.
    fn side(&self, role: Role) -> (bool, u8) {
        match role {
            Role::Server => (self.server_no_context_takeover, self.server_max_window_bits),
            Role::Client => (self.client_no_context_takeover, self.client_max_window_bits),
        }
    }

    /// The value of a `Sec-WebSocket-Extensions` response accepting these
    /// parameters.
    pub fn to_header_value(&self) -> String {
        let mut value = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            value.push_str(&format!("; server_max_window_bits={}", self.server_max_window_bits));
        }
        if self.client_max_window_bits < 15 {
            value.push_str(&format!("; client_max_window_bits={}", self.client_max_window_bits));
        }
        value
    }
}

/// The parameters of one offer or response, as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in offers only).
    client_max_window_bits: Option<Option<u8>>,
}

/// Parses the parameters of a permessage-deflate offer (`response` false) or
/// response (`response` true), strictly. `None` means "invalid": unknown or
/// repeated parameter, a value where none belongs, a missing value, or a
/// window size that is not 8-15 in plain digits.
fn parse_written(extension: &Extension, response: bool) -> Option<Written> {
    let mut written = Written::default();
    let mut seen = [false; 4];
    for (name, value) in &extension.params {
        let index = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
        match (index, value.as_deref()) {
            (0, None) => written.server_no_context_takeover = true,
            (1, None) => written.client_no_context_takeover = true,
            (2, Some(bits)) => written.server_max_window_bits = Some(window_bits(bits)?),
            (3, None) if !response => written.client_max_window_bits = Some(None),
            (3, Some(bits)) => written.client_max_window_bits = Some(Some(window_bits(bits)?)),
            _ => return None,
        }
    }
    Some(written)
}

/// 8 to 15, as digits with no sign, space or leading zero.
fn window_bits(text: &str) -> Option<u8> {
    match text {
        "8" => Some(8),
        "9" => Some(9),
        "10" | "11" | "12" | "13" | "14" | "15" => text.parse().ok(),
        _ => None,
    }
}

fn is_deflate(extension: &Extension) -> bool {
    extension.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE)
}

/// Server side: the first acceptable permessage-deflate offer, in the
/// client's order of preference, and the parameters to answer with.
/// Invalid offers are declined (skipped); `None` if none is acceptable.
pub(crate) fn negotiate_offer(offers: &[Extension], config: &DeflateConfig) -> Option<DeflateParams> {
    offers.iter().filter(|e| is_deflate(e)).find_map(|offer| {
        let written = parse_written(offer, false)?;
        // Our window: no larger than the client allows nor than we want. An
        // offer limiting it is accepted only by repeating a value no larger.
        let server_max_window_bits =
            written.server_max_window_bits.unwrap_or(15).min(config.own_max_window_bits.clamp(9, 15));
        // The client's window: we may lower it only if the client said it
        // understands the parameter.
        let client_max_window_bits = match written.client_max_window_bits {
            None => 15,
            Some(offered) => offered.unwrap_or(15).min(config.peer_max_window_bits.clamp(8, 15)),
        };
        Some(DeflateParams {
            // Required when offered; ours to add otherwise.
            server_no_context_takeover: written.server_no_context_takeover || !config.own_context_takeover,
            client_no_context_takeover: written.client_no_context_takeover || !config.peer_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    })
}

/// Client side: the offer to send.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(PERMESSAGE_DEFLATE);
    if !config.own_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if !config.peer_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    let peer_bits = config.peer_max_window_bits.clamp(8, 15);
    if peer_bits < 15 {
        offer.push_str(&format!("; server_max_window_bits={peer_bits}"));
    }
    let own_bits = config.own_max_window_bits.clamp(9, 15);
    if own_bits < 15 {
        offer.push_str(&format!("; client_max_window_bits={own_bits}"));
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// Client side: checks the server's answer to [`client_offer`]. `Ok(None)`
/// when the server did not accept the extension; `Err` with the reason when
/// its answer breaks RFC 7692.
pub(crate) fn accept_response(
    accepted: &[Extension],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, &'static str> {
    let mut found = accepted.iter().filter(|e| is_deflate(e));
    let Some(response) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err("permessage-deflate accepted twice");
    }
    let written = parse_written(response, true).ok_or("invalid permessage-deflate parameters")?;
    let asked_server_bits = config.peer_max_window_bits.clamp(8, 15);
    let server_max_window_bits = match written.server_max_window_bits {
        Some(bits) if bits > asked_server_bits => return Err("server_max_window_bits above what was offered"),
        Some(bits) => bits,
        None if asked_server_bits < 15 => return Err("server_max_window_bits offered but not accepted"),
        None => 15,
    };
    let offered_client_bits = config.own_max_window_bits.clamp(9, 15);
    let client_max_window_bits = match written.client_max_window_bits {
        Some(Some(bits)) if bits > offered_client_bits => return Err("client_max_window_bits above what was offered"),
        Some(Some(bits)) => bits,
        _ => offered_client_bits,
    };
    if !config.peer_context_takeover && !written.server_no_context_takeover {
        return Err("server_no_context_takeover offered but not accepted");
    }
    Ok(Some(DeflateParams {
        server_no_context_takeover: written.server_no_context_takeover,
        client_no_context_takeover: written.client_no_context_takeover || !config.own_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    }))
}

/// Compresses the messages one end sends.
#[derive(Debug)]
pub(crate) struct Deflater {
    level: Compression,
    /// `None` when the negotiated window is 8 bits: nothing is compressed.
    window_bits: Option<u8>,
    no_context_takeover: bool,
    threshold: usize,
    state: Option<Compress>,
    /// Without context takeover: `state` holds a finished message's context
    /// and is reset before the next one (kept to save setting up a new one
    /// per message while output is waiting; see [`release`](Self::release)).
    used: bool,
    /// The whole-message encoder's tables, kept like `state`.
    scratch: Option<encoder::Scratch>,
}

/// Messages up to this long are compressed by the whole-message encoder
/// when each message is compressed on its own (no context takeover): its
/// tables are sized to the message, where zlib-rs clears 128 KiB and sets
/// up about 370 KiB per context. Around it the two meet: at 4 KiB of JSON
/// the encoder takes 20.0 µs, a reset zlib-rs context (a batch of replies)
/// 19.8 and a new one (a reply written alone) 27.5; at 8 KiB 37.6, 30.6 and
/// 36.8 (`cargo bench --bench deflate -- deflate_message`).
const WHOLE_MESSAGE_MAX: usize = 4 << 10;

/// At level 1 zlib-rs uses its quick strategy (one candidate per position,
/// fixed codes), which a reset context runs faster than the encoder from
/// about 256 bytes on (at 1 KiB of chat records 7.4 against 13.2 µs, though
/// 20 % larger); up to this length the encoder still wins when a context
/// would be set up for the message alone (512 B: 9.1 against 11.4 µs).
const WHOLE_MESSAGE_MAX_LEVEL_1: usize = 512;

/// Whether a message of `len` bytes compressed on its own at `level` goes
/// through the whole-message encoder (level 0 means stored: zlib-rs).
fn whole_message(level: u32, len: usize) -> bool {
    match level {
        0 => false,
        1 => len <= WHOLE_MESSAGE_MAX_LEVEL_1,
        _ => len <= WHOLE_MESSAGE_MAX,
    }
}

impl Deflater {
    pub(crate) fn new(params: &DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        let (no_context_takeover, bits) = params.side(role);
        Self {
            level: Compression::new(config.level.min(9)),
            window_bits: (bits >= 9).then_some(bits.min(config.own_max_window_bits.clamp(9, 15))),
            no_context_takeover,
            threshold: config.threshold,
            state: None,
            used: false,
            scratch: None,
        }
    }

    /// Appends the compressed form of `payload` to `out` (without the sync
    /// flush tail) and returns true, or returns false and leaves `out` alone
    /// when the message should go uncompressed.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(bits) = self.window_bits else { return false };
        if payload.len() < self.threshold {
            return false;
        }
        let level = self.level;
        if self.no_context_takeover && whole_message(level.level(), payload.len()) {
            let scratch = self.scratch.get_or_insert_with(Default::default);
            return encoder::compress(payload, level.level(), bits, scratch, out);
        }
        let state = self.state.get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        if std::mem::take(&mut self.used) {
            // Nothing carries over between messages: start this one afresh.
            state.reset();
        }
        let start = out.len();
        if !deflate_sync(state, payload, out) {
            self.state = None;
            return false;
        }
        if self.no_context_takeover {
            self.used = true;
            // Incompressible data is better sent as it is.
            if out.len() - start >= payload.len() {
                out.truncate(start);
                return false;
            }
        }
        true
    }

    /// Gives back the compression context when no context is kept between
    /// messages: the sender calls it once all its output is written, so a
    /// burst of messages (a batch of replies) sets up one context, and a
    /// connection that is not sending holds none.
    pub(crate) fn release(&mut self) {
        if self.no_context_takeover {
            self.state = None;
            self.used = false;
            self.scratch = None;
        }
    }

    /// How a message of `len` bytes that many connections send
    /// ([`PreparedMessage`](crate::PreparedMessage)) is compressed on this one.
    pub(crate) fn plan_shared(&self, len: usize) -> SharedCompression {
        match self.window_bits {
            None => SharedCompression::None,
            Some(_) if len < self.threshold => SharedCompression::None,
            // Each message is compressed on its own, so its compressed form
            // depends only on the settings, not on this connection's history.
            Some(bits) if self.no_context_takeover => {
                SharedCompression::Shared(CompressionKey { level: self.level.level(), bits })
            }
            Some(_) => SharedCompression::OwnContext,
        }
    }

    /// Whether a compression context is being held between messages.
    #[cfg(test)]
    pub(crate) fn is_holding_state(&self) -> bool {
        self.state.is_some() || self.scratch.is_some()
    }
}

/// How a message sent to many connections is compressed on one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SharedCompression {
    /// Not at all (no permessage-deflate, an 8-bit window, or too short).
    None,
    /// On its own, with these settings: connections with the same key can
    /// share one compressed form.
    Shared(CompressionKey),
    /// With this connection's context (context takeover): on its own copy.
    OwnContext,
}

/// The settings a message compressed on its own depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompressionKey {
    level: u32,
    bits: u8,
}

impl CompressionKey {
    /// The window size in bits, 9 to 15.
    pub(crate) fn window_bits(self) -> u8 {
        self.bits
    }
}

/// Compresses `payload` on its own (a fresh context) with `key`'s settings,
/// as [`Deflater::compress`] does without context takeover; `None` when it is
/// better sent uncompressed.
pub(crate) fn compress_alone(key: CompressionKey, payload: &[u8]) -> Option<Vec<u8>> {
    if whole_message(key.level, payload.len()) {
        let mut out = Vec::new();
        return encoder::compress(payload, key.level, key.bits, &mut encoder::Scratch::default(), &mut out)
            .then_some(out);
    }
    let mut state = Compress::new_with_window_bits(Compression::new(key.level), false, key.bits);
    let mut out = Vec::new();
    (deflate_sync(&mut state, payload, &mut out) && out.len() < payload.len()).then_some(out)
}

/// Runs `payload` through `state` with a sync flush and appends the result
/// to `out`, without the flush's four-byte tail (RFC 7692 section 7.2.1).
/// Returns false (with `out` as it was) if the compressor refused.
fn deflate_sync(state: &mut Compress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut input = payload;
    loop {
        out.reserve((input.len() / 2).max(64));
        let consumed_before = state.total_in();
        if state.compress_vec(input, out, FlushCompress::Sync).is_err() {
            // Cannot happen with valid parameters; fall back safely.
            out.truncate(start);
            return false;
        }
        let consumed = (state.total_in() - consumed_before) as usize;
        input = &input[consumed..];
        // Done once all input is in and the flush fit in the space given.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // Nothing new to flush (an empty message after a flush): send the
        // header of an empty stored block, whose lengths are the tail the
        // receiver appends (RFC 7692 section 7.2.3.6).
        out.push(0x00);
    }
    true
}

/// Why inflating failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The output would pass the limit.
    TooBig,
    /// Not a valid deflate stream.
    Corrupt,
}

/// Decompresses the messages the peer sends, one piece at a time, never
/// letting a message's output pass the limit it is given.
#[derive(Debug)]
pub(crate) struct Inflater {
    window_bits: u8,
    no_context_takeover: bool,
    state: Option<Decompress>,
    /// Without context takeover: `state` holds a finished message's context
    /// and is reset before the next one (kept to save setting up a new one
    /// per message while input is waiting; see [`release`](Self::release)).
    used: bool,
    /// The peer ended its deflate stream (BFINAL) inside this message.
    stream_ended: bool,
}

impl Inflater {
    pub(crate) fn new(params: &DeflateParams, peer: Role) -> Self {
        let (no_context_takeover, bits) = params.side(peer);
        Self { window_bits: bits.clamp(9, 15), no_context_takeover, state: None, used: false, stream_ended: false }
    }

    /// Inflates the next piece of a compressed message, appending to `out`,
    /// which must not grow past `max` bytes.
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        if self.stream_ended {
            // Only the tail may follow the end of a deflate stream.
            return if input.is_empty() { Ok(()) } else { Err(InflateError::Corrupt) };
        }
        let bits = self.window_bits;
        let state = self.state.get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        if std::mem::take(&mut self.used) {
            // Nothing carries over between messages: start this one afresh.
            state.reset(false);
        }
        let mut input = input;
        loop {
            if out.len() > max {
                return Err(InflateError::TooBig);
            }
            // Grow geometrically, but never past one byte over the limit (the
            // byte that proves the limit is passed).
            let room = max + 1 - out.len();
            if out.capacity() == out.len() {
                let grow = out.capacity().max(input.len().saturating_mul(2)).clamp(1024, 1 << 20);
                out.reserve_exact(grow.min(room));
            }
            let spare = out.capacity() - out.len();
            let (in_before, out_before) = (state.total_in(), out.len());
            let status = state.decompress_vec(input, out, FlushDecompress::None).map_err(|_| InflateError::Corrupt)?;
            let consumed = (state.total_in() - in_before) as usize;
            let produced = out.len() - out_before;
            input = &input[consumed..];
            if out.len() > max {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return if input.is_empty() { Ok(()) } else { Err(InflateError::Corrupt) };
            }
            if input.is_empty() && produced < spare {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && spare > 0 {
                // No progress with input left and room to write: stuck.
                return Err(InflateError::Corrupt);
            }
        }
    }

    /// Ends a message: inflates the sync flush tail the sender removed. If
    /// the peer keeps no context, the next message starts afresh: the
    /// context is reset then, or given back by [`release`](Self::release).
    pub(crate) fn finish_message(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let result = if self.stream_ended { Ok(()) } else { self.inflate(&TAIL, out, max) };
        if self.stream_ended || result.is_err() {
            self.reset();
        } else if self.no_context_takeover {
            self.used = true;
        }
        self.stream_ended = false;
        result
    }

    /// Gives back the context between messages when the peer keeps none:
    /// the receiver calls it once it has parsed all the input it holds, so a
    /// burst of messages read at once sets up one context, and a connection
    /// waiting for input holds none.
    pub(crate) fn release(&mut self) {
        if self.used {
            self.state = None;
            self.used = false;
        }
    }

    /// Drops the state (after a failure, or to free memory).
    pub(crate) fn reset(&mut self) {
        self.state = None;
        self.used = false;
        self.stream_ended = false;
    }

    /// Whether a decompression context is being held.
    #[cfg(test)]
    pub(crate) fn is_holding_state(&self) -> bool {
        self.state.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn offer(text: &str) -> Vec<Extension> {
        parse_extensions(text).unwrap()
    }

    #[test]
    fn window_bits_are_strict() {
        for good in ["8", "9", "10", "15"] {
            assert!(window_bits(good).is_some(), "{good}");
        }
        for bad in ["7", "16", "abc", "015", "08", "+9", " 9", "", "1e1", "150"] {
            assert_eq!(window_bits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn server_takes_the_first_acceptable_offer_in_order() {
        let config = DeflateConfig::default();
        let offers = offer(
            "permessage-deflate; unknown=1, permessage-deflate; server_max_window_bits=7, \
             permessage-deflate; client_max_window_bits; server_max_window_bits=10",
        );
        let params = negotiate_offer(&offers, &config).unwrap();
        assert_eq!(params.server_max_window_bits, 10);
        assert_eq!(params.client_max_window_bits, 15);
        assert!(params.server_no_context_takeover && params.client_no_context_takeover);
        assert_eq!(
            params.to_header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
    }

    #[test]
    fn malformed_offers_are_declined() {
        let config = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=015",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; constructor; __proto__",
        ] {
            assert_eq!(negotiate_offer(&offer(bad), &config), None, "{bad}");
        }
    }

    #[test]
    fn context_takeover_policy() {
        let config = DeflateConfig { own_context_takeover: true, peer_context_takeover: true, ..Default::default() };
        let params = negotiate_offer(&offer("permessage-deflate"), &config).unwrap();
        assert!(!params.server_no_context_takeover && !params.client_no_context_takeover);
        // A client's request binds the server whatever its policy.
        let params = negotiate_offer(&offer("permessage-deflate; server_no_context_takeover"), &config).unwrap();
        assert!(params.server_no_context_takeover);
    }

    #[test]
    fn client_checks_the_response() {
        let config = DeflateConfig::default();
        assert_eq!(
            client_offer(&config),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits"
        );
        let ok = accept_response(
            &offer("permessage-deflate; server_no_context_takeover; client_max_window_bits=10"),
            &config,
        )
        .unwrap()
        .unwrap();
        assert_eq!((ok.client_max_window_bits, ok.server_max_window_bits), (10, 15));
        assert!(ok.client_no_context_takeover);
        assert_eq!(accept_response(&offer("x-other"), &config), Ok(None));
        for bad in [
            "permessage-deflate",                                                     // takeover not accepted
            "permessage-deflate; server_no_context_takeover; client_max_window_bits", // value required
            "permessage-deflate; server_no_context_takeover; bogus",
            "permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover",
        ] {
            assert!(accept_response(&offer(bad), &config).is_err(), "{bad}");
        }
    }

    fn params(takeover: bool, bits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        }
    }

    fn round_trip(takeover: bool, bits: u8, messages: &[&[u8]]) {
        let config = DeflateConfig { threshold: 0, ..Default::default() };
        let p = params(takeover, bits);
        let mut deflater = Deflater::new(&p, Role::Client, &config);
        let mut inflater = Inflater::new(&p, Role::Client);
        for message in messages {
            let mut wire = Vec::new();
            if !deflater.compress(message, &mut wire) {
                assert!(bits == 8 || !takeover, "compressed unless window 8 or incompressible");
                continue;
            }
            let mut out = Vec::new();
            for piece in wire.chunks(7) {
                inflater.inflate(piece, &mut out, 1 << 20).unwrap();
            }
            inflater.finish_message(&mut out, 1 << 20).unwrap();
            assert_eq!(out, *message);
        }
        // Without context takeover the sender keeps a context only until
        // its output is written (`release`).
        assert_eq!(deflater.is_holding_state(), bits >= 9);
        deflater.release();
        assert_eq!(deflater.is_holding_state(), takeover && bits >= 9);
        // The same for the receiver, until its input is parsed.
        inflater.release();
        assert_eq!(inflater.is_holding_state(), takeover && bits >= 9);
    }

    #[test]
    fn short_messages_on_their_own_take_the_whole_message_encoder() {
        let config = DeflateConfig::default();
        let text = br#"{"user":"ada","text":"hello, hello, hello","seq":1}"#;
        for (takeover, level, len, encoder) in [
            (false, 6, WHOLE_MESSAGE_MAX, true),
            (false, 1, 100, true),
            (false, 1, WHOLE_MESSAGE_MAX_LEVEL_1 + 1, false),
            (false, 2, WHOLE_MESSAGE_MAX, true),
            (false, 6, WHOLE_MESSAGE_MAX + 1, false),
            (false, 0, 1000, false),
            (true, 6, 1000, false),
        ] {
            let config = DeflateConfig { level, ..config.clone() };
            let mut deflater = Deflater::new(&params(takeover, 15), Role::Server, &config);
            let message: Vec<u8> = text.iter().copied().cycle().take(len).collect();
            let mut wire = Vec::new();
            let compressed = deflater.compress(&message, &mut wire);
            assert_eq!(compressed, level > 0, "level {level}: stored output is not smaller");
            assert_eq!(deflater.scratch.is_some(), encoder, "{takeover} {level} {len}");
            assert_eq!(deflater.state.is_some(), !encoder, "{takeover} {level} {len}");
        }
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        let json = br#"{"user":"ada","text":"hello, hello, hello","seq":1}"#.repeat(40);
        let messages: [&[u8]; 4] = [&json, b"", &json, &[0x80; 3000]];
        for bits in 9..=15 {
            round_trip(true, bits, &messages);
            round_trip(false, bits, &messages);
        }
        round_trip(true, 8, &messages);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 16 MiB of zeros compress to about 16 KiB.
        let config = DeflateConfig { threshold: 0, ..Default::default() };
        let p = params(false, 15);
        let mut deflater = Deflater::new(&p, Role::Server, &config);
        let mut wire = Vec::new();
        assert!(deflater.compress(&vec![0u8; 16 << 20], &mut wire));
        assert!(wire.len() < 64 << 10);
        let mut inflater = Inflater::new(&p, Role::Server);
        let mut out = Vec::new();
        assert_eq!(inflater.inflate(&wire, &mut out, 1 << 20), Err(InflateError::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1, "capacity {} stays at the limit", out.capacity());
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let p = params(false, 15);
        // Both start a block of the reserved type 3.
        for garbage in [&[0xff; 64][..], &[0x07, 0x00, 0x00]] {
            let mut inflater = Inflater::new(&p, Role::Client);
            let mut out = Vec::new();
            let result =
                inflater.inflate(garbage, &mut out, 1 << 16).and_then(|()| inflater.finish_message(&mut out, 1 << 16));
            assert_eq!(result, Err(InflateError::Corrupt), "{garbage:x?}");
        }
    }

    #[test]
    fn prepared_messages_share_one_compressed_form_per_setting() {
        use crate::prepared::{Compressed, PreparedMessage};
        let config = DeflateConfig::default();
        let text = "{\"user\":\"ada\",\"text\":\"hello\"},".repeat(40);
        let shared = Deflater::new(&params(false, 15), Role::Server, &config);
        let SharedCompression::Shared(key) = shared.plan_shared(text.len()) else { panic!("not shared") };
        assert_eq!(shared.plan_shared(config.threshold - 1), SharedCompression::None);
        let own = Deflater::new(&params(true, 15), Role::Server, &config);
        assert_eq!(own.plan_shared(text.len()), SharedCompression::OwnContext);
        let plan = |bits: u8, level: u32| {
            let config = DeflateConfig { level, ..DeflateConfig::default() };
            match Deflater::new(&params(false, bits), Role::Server, &config).plan_shared(text.len()) {
                SharedCompression::Shared(key) => key,
                other => panic!("not shared: {other:?}"),
            }
        };
        let (smaller_window, other_level) = (plan(10, config.level), plan(15, 1));

        let message = PreparedMessage::text(text.clone());
        let Compressed::Payload(first) = message.compressed(key) else { panic!("not compressed") };
        let Compressed::Payload(again) = message.compressed(key) else { panic!("not compressed") };
        // The same bytes, not a second compression.
        assert!(std::ptr::eq(first, again));
        // Another window size has a form of its own; another level on a
        // window already served is left to the connection.
        let Compressed::Payload(smaller) = message.compressed(smaller_window) else { panic!("not compressed") };
        assert!(!std::ptr::eq(first, smaller));
        let Compressed::Payload(smaller_again) = message.compressed(smaller_window) else { panic!("not compressed") };
        assert!(std::ptr::eq(smaller, smaller_again));
        assert!(matches!(message.compressed(other_level), Compressed::OtherSettings));
        // What a connection compressing on its own would produce.
        let mut alone = Vec::new();
        assert!(Deflater::new(&params(false, 15), Role::Server, &config).compress(text.as_bytes(), &mut alone));
        assert_eq!(first, alone.as_slice());
    }
}
