//! Helpers shared by the integration tests: a frame builder that can write any
//! header (including the ones RFC 6455 forbids), an independent frame decoder
//! for checking output, and drivers for connections fed from memory.
//!
//! Every file under `tests/` compiles this module on its own and uses only part
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError, Role};

/// The masking key of the RFC 6455 section 5.7 examples.
pub(crate) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opcodes as raw 4-bit values, so that reserved ones can be written too.
pub(crate) const CONT: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// Upper bound on the iterations of every driving loop in these tests.
pub(crate) const LOOP_BOUND: usize = 10_000_000;

/// How the payload length is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LenForm {
    /// The smallest form that fits, as RFC 6455 requires.
    Minimal,
    /// The 7-bit form (only meaningful for lengths up to 125).
    Short,
    /// `126` followed by a 16-bit length, whatever the length.
    Ext16,
    /// `127` followed by a 64-bit length, whatever the length.
    Ext64,
}

/// A frame to encode, with every header field under the test's control.
#[derive(Clone, Debug)]
pub(crate) struct RawFrame {
    pub(crate) fin: bool,
    /// RSV1, RSV2, RSV3 as `0bRRR` (RSV1 is `0b100`).
    pub(crate) rsv: u8,
    /// Any 4-bit value, reserved ones included.
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) form: LenForm,
    /// The length written in the header; the payload's length when `None`.
    pub(crate) declared_len: Option<u64>,
    /// Unmasked payload; masked on encoding when `mask` is set.
    pub(crate) payload: Vec<u8>,
}

impl RawFrame {
    pub(crate) fn new(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Self {
        Self { fin, rsv: 0, opcode, mask, form: LenForm::Minimal, declared_len: None, payload: payload.to_vec() }
    }

    pub(crate) fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    pub(crate) fn form(mut self, form: LenForm) -> Self {
        self.form = form;
        self
    }

    pub(crate) fn declared_len(mut self, len: u64) -> Self {
        self.declared_len = Some(len);
        self
    }

    /// The encoded header alone.
    pub(crate) fn header(&self) -> Vec<u8> {
        let len = self.declared_len.unwrap_or(self.payload.len() as u64);
        let mut out = vec![(u8::from(self.fin) << 7) | ((self.rsv & 7) << 4) | (self.opcode & 0x0F)];
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let form = match self.form {
            LenForm::Minimal if len <= 125 => LenForm::Short,
            LenForm::Minimal if len <= 0xFFFF => LenForm::Ext16,
            LenForm::Minimal => LenForm::Ext64,
            other => other,
        };
        match form {
            LenForm::Short => {
                assert!(len <= 125, "the 7-bit form cannot hold {len}");
                out.push(mask_bit | len as u8);
            }
            LenForm::Ext16 => {
                assert!(len <= 0xFFFF, "the 16-bit form cannot hold {len}");
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            LenForm::Ext64 | LenForm::Minimal => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
        out
    }

    /// Header and (masked) payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend(mask_bytes(&self.payload, self.mask));
        out
    }
}

/// XORs `payload` with `key` (byte-at-a-time, independent of the crate).
pub(crate) fn mask_bytes(payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    match key {
        Some(key) => payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect(),
        None => payload.to_vec(),
    }
}

/// A frame with a minimal length: `fin`, any 4-bit opcode, optional mask.
pub(crate) fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    RawFrame::new(fin, opcode, mask, payload).encode()
}

/// A frame as a client sends it (masked with [`KEY`]).
pub(crate) fn cframe(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, Some(KEY), payload)
}

/// A frame as a server sends it (unmasked).
pub(crate) fn sframe(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, None, payload)
}

/// A close frame payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A frame taken apart by [`decode_frames`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) fin: bool,
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    /// Unmasked.
    pub(crate) payload: Vec<u8>,
    /// The raw bytes of the length field (to check the minimal form).
    pub(crate) header_len: usize,
}

/// Decodes a sequence of complete frames (an independent decoder, so that the
/// crate's output is not checked with the crate's own parser). Panics on
/// anything incomplete or malformed.
pub(crate) fn decode_frames(mut bytes: &[u8]) -> Vec<Decoded> {
    let mut frames = Vec::new();
    for _ in 0..LOOP_BOUND {
        if bytes.is_empty() {
            return frames;
        }
        assert!(bytes.len() >= 2, "truncated header: {bytes:x?}");
        let fin = bytes[0] & 0x80 != 0;
        let rsv = (bytes[0] >> 4) & 7;
        let opcode = bytes[0] & 0x0F;
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut pos) = match bytes[1] & 0x7F {
            126 => {
                let len = u64::from(u16::from_be_bytes([bytes[2], bytes[3]]));
                assert!(len >= 126, "non-minimal 16-bit length {len} in output");
                (len, 4)
            }
            127 => {
                let len = u64::from_be_bytes(bytes[2..10].try_into().unwrap());
                assert!(len > 0xFFFF && len >> 63 == 0, "bad 64-bit length {len} in output");
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let mask = masked.then(|| {
            let key: [u8; 4] = bytes[pos..pos + 4].try_into().unwrap();
            pos += 4;
            key
        });
        let len = usize::try_from(len).unwrap();
        assert!(bytes.len() >= pos + len, "truncated payload");
        let payload = mask_bytes(&bytes[pos..pos + len], mask);
        frames.push(Decoded { fin, rsv, opcode, mask, payload, header_len: pos });
        bytes = &bytes[pos + len..];
    }
    panic!("decode_frames: loop bound reached");
}

/// Decodes frames and checks that every one is masked iff `masked` and has no
/// RSV bits: `(fin, opcode, payload)` for each.
pub(crate) fn parse_frames(bytes: &[u8], masked: bool) -> Vec<(bool, u8, Vec<u8>)> {
    decode_frames(bytes)
        .into_iter()
        .map(|f| {
            assert_eq!(f.mask.is_some(), masked, "frame masking: {f:?}");
            assert_eq!(f.rsv, 0, "RSV bits in output: {f:?}");
            (f.fin, f.opcode, f.payload)
        })
        .collect()
}

/// Whether frames sent by `role` are masked.
pub(crate) fn masks(role: Role) -> bool {
    role == Role::Client
}

/// Moves all pending output out of `conn` and decodes it.
pub(crate) fn take_frames(conn: &mut Connection) -> Vec<(bool, u8, Vec<u8>)> {
    let mut out = Vec::new();
    conn.take_output(&mut out);
    parse_frames(&out, masks(conn.role()))
}

/// A client and a server, in that order, with the same configuration.
pub(crate) fn pair(config: Config) -> (Connection, Connection) {
    (Connection::new(Role::Client, config.clone()), Connection::new(Role::Server, config))
}

/// A configuration with a fixed RNG seed, for reproducible client output.
pub(crate) fn seeded(seed: u8) -> Config {
    let mut config = Config::default();
    config.rng_seed = Some([seed; 32]);
    config
}

/// Everything `poll_event` returned until it said `Ok(None)` or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    pub(crate) messages: Vec<Message>,
    pub(crate) error: Option<ProtocolError>,
}

/// Polls until `Ok(None)` or an error, copying the events out.
pub(crate) fn trace(conn: &mut Connection) -> Trace {
    let mut trace = Trace::default();
    for _ in 0..LOOP_BOUND {
        match conn.poll_event() {
            Ok(Some(event)) => trace.messages.push(event.to_message()),
            Ok(None) => return trace,
            Err(error) => {
                trace.error = Some(error);
                return trace;
            }
        }
    }
    panic!("trace: loop bound reached");
}

/// Drains `poll_event` into owned messages; the error if it failed.
pub(crate) fn events(conn: &mut Connection) -> Result<Vec<Message>, ProtocolError> {
    let trace = trace(conn);
    match trace.error {
        Some(error) => Err(error),
        None => Ok(trace.messages),
    }
}

/// Feeds `bytes` and drains the events.
pub(crate) fn feed(conn: &mut Connection, bytes: &[u8]) -> Trace {
    conn.receive(bytes);
    trace(conn)
}

/// Feeds `bytes` and expects the connection to fail with `expected` (after
/// delivering no events), with the matching close frame queued.
pub(crate) fn expect_failure(conn: &mut Connection, bytes: &[u8], expected: ProtocolError) {
    let trace = feed(conn, bytes);
    assert_eq!(trace.messages, [], "events before the failure");
    assert_eq!(trace.error.as_ref(), Some(&expected), "for input {bytes:x?}");
    assert_failing(conn, expected.close_code().as_u16());
}

/// Checks that the connection has failed and that its pending output ends
/// with a close frame carrying `code` (and nothing after it), and that the
/// error is sticky.
pub(crate) fn assert_failing(conn: &mut Connection, code: u16) {
    let first = conn.poll_event().expect_err("the connection should have failed");
    let again = conn.poll_event().expect_err("the failure should be sticky");
    assert_eq!(first, again, "sticky error");
    assert_eq!(first.close_code().as_u16(), code, "close code of {first:?}");
    assert_eq!(conn.state(), rfc6455::State::Closed);
    assert!(conn.should_close_transport(), "a failed connection should close its transport");
    let masked = masks(conn.role());
    let frames = parse_frames(conn.output(), masked);
    let last = frames.last().expect("a close frame should be queued");
    assert_eq!((last.0, last.1), (true, CLOSE), "last frame should be a close: {frames:?}");
    assert_eq!(last.2, code.to_be_bytes(), "close payload");
    let closes = frames.iter().filter(|f| f.1 == CLOSE).count();
    assert_eq!(closes, 1, "exactly one close frame: {frames:?}");
}

/// What each side of [`drive`] received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Driven {
    pub(crate) a: Trace,
    pub(crate) b: Trace,
}

/// Moves output between `a` and `b` (through `output`/`advance_output` in
/// pieces of at most `chunk` bytes, and alternately through `receive` and
/// `read_buffer`/`commit_read`), polling each side's events, until neither
/// has output left. A side stops being polled once it fails.
pub(crate) fn drive_chunked(a: &mut Connection, b: &mut Connection, chunk: usize) -> Driven {
    let mut driven = Driven::default();
    let mut use_read_buffer = false;
    for _ in 0..LOOP_BOUND {
        let moved_ab = transfer(a, b, chunk, &mut use_read_buffer);
        poll_into(b, &mut driven.b);
        let moved_ba = transfer(b, a, chunk, &mut use_read_buffer);
        poll_into(a, &mut driven.a);
        if !moved_ab && !moved_ba && !a.has_output() && !b.has_output() {
            return driven;
        }
    }
    panic!("drive: loop bound reached");
}

/// [`drive_chunked`] with 64 KiB pieces.
pub(crate) fn drive(a: &mut Connection, b: &mut Connection) -> Driven {
    drive_chunked(a, b, 64 << 10)
}

/// Hands `bytes` to `conn` the way an adapter does: through `read_buffer`
/// and `commit_read`, filling what is offered each time; `after` runs after
/// each read (to poll events between reads, for instance).
pub(crate) fn read_through(conn: &mut Connection, bytes: &[u8], mut after: impl FnMut(&mut Connection)) {
    let mut rest = bytes;
    for _ in 0..LOOP_BOUND {
        if rest.is_empty() {
            break;
        }
        let buf = conn.read_buffer();
        assert!(!buf.is_empty(), "read_buffer offered no space");
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        conn.commit_read(n);
        rest = &rest[n..];
        after(conn);
    }
    assert!(rest.is_empty(), "read_buffer never took all the bytes");
}

fn transfer(from: &mut Connection, to: &mut Connection, chunk: usize, use_read_buffer: &mut bool) -> bool {
    let out = from.output();
    let n = out.len().min(chunk);
    if n == 0 {
        return false;
    }
    let piece = out[..n].to_vec();
    from.advance_output(n);
    if *use_read_buffer {
        read_through(to, &piece, |_| {});
    } else {
        to.receive(&piece);
    }
    *use_read_buffer = !*use_read_buffer;
    true
}

fn poll_into(conn: &mut Connection, trace: &mut Trace) {
    if trace.error.is_some() {
        return;
    }
    let more = self::trace(conn);
    trace.messages.extend(more.messages);
    trace.error = more.error;
}

/// A close message as `poll_event` reports it.
pub(crate) fn close_msg(code: u16, reason: &str) -> Message {
    Message::Close(Some(rfc6455::OwnedCloseFrame { code: CloseCode::from(code), reason: reason.to_owned() }))
}

/// Deterministic pseudo-random bytes (xorshift), for large payloads.
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// An HTTP message with the given start line and header lines.
pub(crate) fn request_with(start: &str, lines: &[&str]) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The header lines of a valid upgrade request (the RFC 6455 section 1.3 key).
pub(crate) const VALID_LINES: [&str; 5] = [
    "Host: example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

/// The valid request for `/chat` with the lines whose name starts like one of
/// `drop` removed and `add` appended.
pub(crate) fn valid_request_but(drop: &[&str], add: &[&str]) -> Vec<u8> {
    let mut lines: Vec<&str> = VALID_LINES.iter().copied().filter(|l| !drop.iter().any(|d| l.starts_with(d))).collect();
    lines.extend_from_slice(add);
    request_with("GET /chat HTTP/1.1", &lines)
}
