//! The sending half: messages in, bytes out.
//!
//! Every frame is encoded whole into one output buffer, so the buffer always
//! holds complete frames and a control frame can be queued between any two of
//! them, including between the fragments of a message. A client masks every
//! frame with a fresh key from a CSPRNG (section 5.3). The close handshake's
//! state lives here, because every rule about what may still be sent depends
//! on it. Large unmasked payloads the adapter lends are the exception to the
//! copy into the output: see [`lent`].

use rand::Rng;
use rand::rngs::StdRng;

use super::{BufferSizer, Role};
use crate::close::{CloseCode, MAX_CLOSE_REASON};
use crate::config::Config;
use crate::deflate::{DeflateConfig, DeflateParams, Deflater, SharedCompression};
use crate::error::{Limit, SendError};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::mask::{extend_copied, extend_masked};
use crate::prepared::{Compressed, PreparedMessage};
use crate::utf8::Utf8Validator;

mod lent;

pub(crate) use lent::{DEFER_MIN, Deferred, InputSpan, MAX_OUTPUT_PARTS};
use lent::{Held, Loan};

/// The sending half of a [`Connection`](crate::Connection).
///
/// Usually driven through the connection. After
/// [`Connection::into_split`](crate::Connection::into_split) it can sit
/// behind a lock shared by writer threads and the reader thread, which queues
/// the replies the protocol owes through it.
#[derive(Debug)]
pub struct Sender {
    role: Role,
    /// Masking keys; clients only (boxed: a server does not carry the
    /// generator's few hundred bytes in every connection).
    rng: Option<Box<StdRng>>,
    send_frame_size: usize,
    max_write_buffer: usize,
    /// Encoded frames; bytes `out_start..` are waiting to be sent.
    out: Vec<u8>,
    out_start: usize,
    out_sizer: BufferSizer,
    /// The newest ping's payload, waiting to be answered.
    pending_pong: Option<ControlPayload>,
    /// End of an automatic pong still waiting in `out`, so that at most one
    /// sits there at a time.
    queued_pong_end: Option<usize>,
    /// The fragmented message being sent, if any.
    fragmented: Option<FragmentedSend>,
    /// permessage-deflate's compressor, when negotiated.
    deflater: Option<Deflater>,
    /// Where a message is compressed before it is framed.
    compressed: Vec<u8>,
    compressed_sizer: BufferSizer,
    close_sent: bool,
    close_received: bool,
    failed: bool,
    transport_ended: bool,
    /// Memory the adapter lends while a call runs: a large unmasked frame
    /// whose payload lies there is not copied (see [`lend`](Self::lend)).
    loan: Option<Loan>,
    /// The frame whose payload was left in lent memory, to be written before
    /// the loan ends, if any.
    deferred: Option<Deferred>,
    /// Where the receiving half keeps the input of the event handed out last,
    /// when that event's payload lies there (see [`note_input`](Self::note_input)).
    input: Option<InputSpan>,
    /// Frames whose payloads are left in the receive buffer until the output
    /// is written (see [`lend_received`](Self::lend_received)), in the order
    /// they were queued; their total payload length is `held_len`.
    held: Vec<Held>,
    held_len: usize,
}

#[derive(Clone, Copy, Debug)]
struct ControlPayload {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlPayload {
    fn new(payload: &[u8]) -> Self {
        let len = payload.len().min(MAX_CONTROL_PAYLOAD);
        let mut bytes = [0; MAX_CONTROL_PAYLOAD];
        bytes[..len].copy_from_slice(&payload[..len]);
        Self { len: len as u8, bytes }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[derive(Debug)]
struct FragmentedSend {
    text: bool,
    utf8: Utf8Validator,
}

impl Sender {
    pub(crate) fn new(role: Role, config: &Config, deflate: Option<&DeflateParams>) -> Self {
        let default_deflate = DeflateConfig::default();
        let deflate_config = config.deflate.as_ref().unwrap_or(&default_deflate);
        Self {
            deflater: deflate.map(|params| Deflater::new(params, role, deflate_config)),
            compressed: Vec::new(),
            compressed_sizer: BufferSizer::new(config.read_buffer_size.max(1)),
            role,
            rng: (role == Role::Client).then(|| Box::new(config.rng())),
            send_frame_size: config.send_frame_size.max(1),
            max_write_buffer: config.max_write_buffer,
            out: Vec::new(),
            out_start: 0,
            out_sizer: BufferSizer::new(config.read_buffer_size.max(1)),
            pending_pong: None,
            queued_pong_end: None,
            fragmented: None,
            close_sent: false,
            close_received: false,
            failed: false,
            transport_ended: false,
            loan: None,
            deferred: None,
            input: None,
            held: Vec::new(),
            held_len: 0,
        }
    }

    /// Queues a text message, split into frames of at most
    /// [`Config::send_frame_size`](crate::Config::send_frame_size) bytes.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.check_data(false)?;
        self.write_message(OpCode::Text, text.as_bytes());
        Ok(())
    }

    /// Queues a binary message, split into frames of at most
    /// [`Config::send_frame_size`](crate::Config::send_frame_size) bytes.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.check_data(false)?;
        self.write_message(OpCode::Binary, data);
        Ok(())
    }

    /// Queues a message prepared for many connections (a broadcast), split
    /// into frames like [`send_text`](Self::send_text). With
    /// permessage-deflate and no context takeover on this side, the
    /// compressed form the message already holds for these settings is sent
    /// instead of compressing it again; see [`PreparedMessage`].
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        self.check_data(false)?;
        let opcode = if message.is_text() { OpCode::Text } else { OpCode::Binary };
        let payload = message.payload();
        let plan = self.deflater.as_ref().map_or(SharedCompression::None, |d| d.plan_shared(payload.len()));
        match plan {
            SharedCompression::None => self.write_data(opcode, payload, true),
            SharedCompression::OwnContext => self.write_message(opcode, payload),
            SharedCompression::Shared(key) => match message.compressed(key) {
                Compressed::Payload(compressed) => self.write_data_rsv(opcode, compressed, true, 0b100),
                Compressed::Uncompressed => self.write_data(opcode, payload, true),
                Compressed::OtherSettings => self.write_message(opcode, payload),
            },
        }
        Ok(())
    }

    /// Starts a message whose length is not known up front: queues its first
    /// fragment. Continue with [`send_fragment`](Self::send_fragment), ending
    /// with `fin` set. Text may be cut anywhere, even inside a code point; the
    /// fragments must form valid UTF-8 once joined.
    pub fn send_first_fragment(&mut self, text: bool, payload: &[u8]) -> Result<(), SendError> {
        self.check_data(false)?;
        let mut utf8 = Utf8Validator::default();
        if text {
            utf8.feed(payload).map_err(|_| SendError::InvalidUtf8)?;
        }
        self.fragmented = Some(FragmentedSend { text, utf8 });
        self.write_data(if text { OpCode::Text } else { OpCode::Binary }, payload, false);
        Ok(())
    }

    /// Queues the next fragment of the message begun with
    /// [`send_first_fragment`](Self::send_first_fragment); `fin` ends it.
    ///
    /// Text fragments that break UTF-8 are refused with
    /// [`SendError::InvalidUtf8`] and nothing is queued; the message stays in
    /// progress, and what was already sent of it cannot be taken back, so the
    /// usual way out is [`close`](Self::close) with
    /// [`CloseCode::INVALID_PAYLOAD`](crate::CloseCode::INVALID_PAYLOAD).
    pub fn send_fragment(&mut self, payload: &[u8], fin: bool) -> Result<(), SendError> {
        self.check_data(true)?;
        if let Some(fragmented) = &mut self.fragmented
            && fragmented.text
        {
            fragmented.utf8.feed(payload).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                fragmented.utf8.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
        }
        if fin {
            self.fragmented = None;
        }
        self.write_data(OpCode::Continuation, payload, fin);
        Ok(())
    }

    /// Queues a ping (at most 125 bytes of payload). It may go between the
    /// fragments of a message.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_control(payload)?;
        self.flush_pending_pong();
        self.write_frame(OpCode::Ping, true, payload);
        Ok(())
    }

    /// Queues an unsolicited pong (at most 125 bytes), for example as a
    /// one-way heartbeat. Pings are answered automatically; this is not needed
    /// for that.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_control(payload)?;
        self.flush_pending_pong();
        self.write_frame(OpCode::Pong, true, payload);
        Ok(())
    }

    /// Starts the close handshake: queues a close frame with `code` and
    /// `reason` (at most 123 bytes). Nothing more may be sent afterwards;
    /// incoming messages are still delivered until the peer's close arrives.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if self.cannot_send() {
            return Err(SendError::Closed);
        }
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.as_u16()));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(SendError::CloseReasonTooLong(reason.len()));
        }
        // A ping delivered before this call was promised its pong ("already
        // queued"); `write_close` drops the pending one, so queue it first, as
        // `peer_closed` does.
        self.flush_pending_pong();
        self.write_close(Some(code), reason);
        Ok(())
    }

    /// The encoded bytes waiting to be sent. Write them to the transport and
    /// then call [`advance_output`](Self::advance_output) with the number of
    /// bytes written.
    ///
    /// Call it whenever anything may have been queued: after sending, and after
    /// each event (the protocol may owe a pong or a close reply).
    pub fn output(&mut self) -> &[u8] {
        self.flush_pending_pong();
        &self.out[self.out_start..self.out_end()]
    }

    /// Records that the first `n` bytes of [`output`](Self::output) were
    /// written to the transport. `n` is clamped to what was waiting.
    pub fn advance_output(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out_end());
        if self.out_start == self.out.len() {
            self.out_sizer.observe(self.out.len());
            self.out.clear();
            self.out_start = 0;
            self.queued_pong_end = None;
            self.release_compressor();
            if let Some(target) = self.out_sizer.shrink_target(self.out.capacity()) {
                self.out.shrink_to(target);
            }
        } else {
            if self.queued_pong_end.is_some_and(|end| end <= self.out_start) {
                self.queued_pong_end = None;
            }
            // The written prefix is otherwise only freed when the buffer
            // drains completely, so a writer that never quite catches up
            // would grow it without bound. Drop it once it outweighs the
            // unwritten rest: each byte is moved at most once on average.
            if self.out_start >= self.out.len() - self.out_start {
                self.drop_written();
            }
        }
    }

    /// All output is written: a compression context that is not kept
    /// between messages is given back (see [`Deflater::release`]).
    fn release_compressor(&mut self) {
        if let Some(deflater) = &mut self.deflater {
            deflater.release();
        }
    }

    /// Removes the bytes before `out_start`, which have been written.
    fn drop_written(&mut self) {
        let n = self.out_start;
        self.out.drain(..n);
        self.queued_pong_end = self.queued_pong_end.and_then(|end| end.checked_sub(n)).filter(|&end| end > 0);
        self.shift_lent(n);
        self.out_start = 0;
    }

    /// End of the output that may be written as it is: a frame whose payload
    /// lies elsewhere (see [`lend`](Self::lend) and
    /// [`lend_received`](Self::lend_received)) and what follows it wait.
    fn out_end(&self) -> usize {
        self.lent_start().unwrap_or(self.out.len())
    }

    /// Moves every byte waiting to be sent into `dst` (appended; a cheap swap
    /// when `dst` is empty), for writing outside a lock.
    pub fn take_output(&mut self, dst: &mut Vec<u8>) {
        self.flush_pending_pong();
        let end = self.out_end();
        if end < self.out.len() {
            extend_copied(dst, &self.out[self.out_start..end]);
            self.out_start = end;
            self.drop_written();
            return;
        }
        if dst.is_empty() && self.out_start == 0 {
            std::mem::swap(dst, &mut self.out);
        } else {
            extend_copied(dst, &self.out[self.out_start..]);
            self.out.clear();
        }
        self.out_start = 0;
        self.queued_pong_end = None;
        self.release_compressor();
    }

    /// Whether anything is waiting to be sent.
    pub fn has_output(&self) -> bool {
        self.out_start < self.out.len() || self.owes_pong()
    }

    /// Whether a pong the protocol owes (for the newest ping received) is
    /// waiting to be written; it goes out with the next output taken.
    pub fn owes_pong(&self) -> bool {
        self.pending_pong.is_some() && !self.close_sent
    }

    /// Bytes waiting in the output buffer.
    pub fn buffered_len(&self) -> usize {
        self.out.len() - self.out_start + self.lent_len()
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether our close frame has been queued.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer's close frame has been received.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether the connection failed (a protocol error or an early end of the
    /// transport).
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Whether the transport should now be closed, once the pending
    /// [`output`](Self::output) has been written.
    ///
    /// True after a failure, after the transport ended, and, for a server,
    /// once close frames have gone both ways: RFC 6455 section 7.1.1 has the
    /// server close the TCP connection first. A client keeps reading until the
    /// server does so (adapters bound that wait with a timeout).
    pub fn should_close_transport(&self) -> bool {
        self.failed
            || self.transport_ended
            || (self.role.closes_transport_first() && self.close_sent && self.close_received)
    }

    /// The configured [`Config::max_write_buffer`].
    pub(crate) fn max_write_buffer(&self) -> usize {
        self.max_write_buffer
    }

    /// Memory held by the output buffer, in bytes.
    pub fn buffer_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Gives back output buffer memory beyond what the waiting bytes need.
    pub fn shrink_buffers(&mut self) {
        if self.out_start > 0 {
            self.drop_written();
        }
        self.out.shrink_to_fit();
        self.out_sizer.reset();
        if !self.has_output() {
            self.release_compressor();
        }
    }

    // ---- Replies owed, queued by the receiving half ----

    /// A ping arrived: answer it, replacing any answer not yet queued.
    pub(crate) fn queue_pong(&mut self, payload: &[u8]) {
        if !self.close_sent {
            self.pending_pong = Some(ControlPayload::new(payload));
        }
    }

    /// The peer's close frame arrived: echo its code unless ours went first.
    pub(crate) fn peer_closed(&mut self, code: Option<CloseCode>) {
        self.close_received = true;
        self.fragmented = None;
        if !self.close_sent {
            self.flush_pending_pong();
            self.write_close(code, "");
        }
    }

    /// The input broke the protocol or a limit: queue a close with `code`.
    pub(crate) fn fail(&mut self, code: CloseCode) {
        self.failed = true;
        self.pending_pong = None;
        if !self.close_sent {
            self.write_close(Some(code), "");
        }
    }

    /// The transport ended before the close handshake.
    pub(crate) fn transport_ended(&mut self) {
        self.transport_ended = true;
        self.failed = !self.close_received;
        self.pending_pong = None;
    }

    // ---- Encoding ----

    /// Nothing more may be queued: our close frame went, or the transport
    /// ended. (A protocol failure always queues a close frame; the end of the
    /// transport does not, so checking `close_sent` alone would let sends
    /// through after `UnexpectedEof`, contrary to [`SendError::Closed`].)
    fn cannot_send(&self) -> bool {
        self.close_sent || self.failed || self.transport_ended
    }

    fn check_data(&self, continuation: bool) -> Result<(), SendError> {
        if self.cannot_send() {
            return Err(SendError::Closed);
        }
        match (continuation, self.fragmented.is_some()) {
            (false, true) => return Err(SendError::MessageInProgress),
            (true, false) => return Err(SendError::NoMessageInProgress),
            _ => {}
        }
        let buffered = self.buffered_len();
        if buffered >= self.max_write_buffer {
            return Err(SendError::WriteBufferFull {
                buffered,
                limit: Limit::MaxWriteBuffer,
                max: self.max_write_buffer,
            });
        }
        Ok(())
    }

    fn check_control(&self, payload: &[u8]) -> Result<(), SendError> {
        if self.cannot_send() {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        Ok(())
    }

    /// Writes a whole message, compressed when permessage-deflate is on and
    /// the message is worth compressing (RSV1 on its first frame only).
    fn write_message(&mut self, opcode: OpCode, payload: &[u8]) {
        if let Some(deflater) = &mut self.deflater {
            let mut compressed = std::mem::take(&mut self.compressed);
            compressed.clear();
            if deflater.compress(payload, &mut compressed) {
                self.write_data_rsv(opcode, &compressed, true, 0b100);
                self.compressed_sizer.observe(compressed.len());
                if let Some(target) = self.compressed_sizer.shrink_target(compressed.capacity()) {
                    compressed.clear();
                    compressed.shrink_to(target);
                }
                self.compressed = compressed;
                return;
            }
            self.compressed = compressed;
        }
        self.write_data(opcode, payload, true);
    }

    /// Writes a data payload as one or more frames; the first carries
    /// `opcode`, the last carries FIN when `fin` is set.
    fn write_data(&mut self, opcode: OpCode, payload: &[u8], fin: bool) {
        self.write_data_rsv(opcode, payload, fin, 0);
    }

    /// [`write_data`](Self::write_data) with `rsv` bits on the first frame.
    fn write_data_rsv(&mut self, opcode: OpCode, payload: &[u8], fin: bool, rsv: u8) {
        // A ping delivered before this message was queued is answered before
        // it, as `ping`, `pong` and `close` already do: otherwise an echo of
        // a message that arrived after the ping overtakes the pong
        // (Autobahn 5.6, 5.19).
        self.flush_pending_pong();
        let mut chunks = payload.chunks(self.send_frame_size);
        let mut opcode = opcode;
        let mut chunk = chunks.next().unwrap_or_default();
        let mut rsv = rsv;
        loop {
            let next = chunks.next();
            self.write_frame_rsv(opcode, fin && next.is_none(), chunk, rsv);
            match next {
                Some(more) => {
                    chunk = more;
                    opcode = OpCode::Continuation;
                    rsv = 0;
                }
                None => break,
            }
        }
    }

    fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match code {
            Some(code) => {
                payload[..2].copy_from_slice(&code.as_u16().to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
            None => 0,
        };
        self.write_frame(OpCode::Close, true, &payload[..len]);
        self.close_sent = true;
        self.pending_pong = None;
    }

    /// Queues the pending automatic pong, unless an earlier one is still
    /// waiting to be sent.
    fn flush_pending_pong(&mut self) {
        if self.queued_pong_end.is_some() || self.close_sent {
            return;
        }
        if let Some(pong) = self.pending_pong.take() {
            self.write_frame(OpCode::Pong, true, pong.as_slice());
            self.queued_pong_end = Some(self.out.len());
        }
    }

    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        self.write_frame_rsv(opcode, fin, payload, 0);
    }

    fn write_frame_rsv(&mut self, opcode: OpCode, fin: bool, payload: &[u8], rsv: u8) {
        let mask = self.rng.as_mut().map(|rng| rng.next_u32().to_ne_bytes());
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len: payload.len() as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode_into(&mut head);
        if mask.is_none() && self.queue_lent(&head[..head_len], payload) {
            return;
        }
        self.out.reserve(head_len + payload.len());
        self.out.extend_from_slice(&head[..head_len]);
        match mask {
            Some(key) => extend_masked(&mut self.out, payload, key),
            None => extend_copied(&mut self.out, payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressor_without_context_takeover_lasts_until_the_output_is_written() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let config = Config { deflate: Some(DeflateConfig::default()), ..Config::default() };
        let mut sender = Sender::new(Role::Server, &config, Some(&params));
        let holding = |sender: &Sender| sender.deflater.as_ref().is_some_and(Deflater::is_holding_state);
        let json = "{\"id\":1,\"text\":\"hello\"},".repeat(20);
        // Replies queued while more input is processed share one context...
        for _ in 0..3 {
            sender.send_text(&json).unwrap();
            assert!(holding(&sender));
        }
        // ...which is given back once they are all written.
        let pending = sender.output().len();
        sender.advance_output(pending - 1);
        assert!(holding(&sender), "released with a byte still waiting");
        sender.advance_output(1);
        assert!(!holding(&sender));
        sender.send_text(&json).unwrap();
        sender.take_output(&mut Vec::new());
        assert!(!holding(&sender));
    }
}
