//! The receiving half: bytes in, events out.
//!
//! Input is kept in one buffer. A frame that is a whole message (and every
//! control frame) is unmasked in place and handed out as a slice of that
//! buffer, with no copy; the fragments of a fragmented message are unmasked and
//! moved into a reassembly buffer as they arrive. Text is validated as bytes
//! arrive, so invalid UTF-8 fails the connection before the rest of a frame is
//! received. Buffers grow with the bytes actually received, never with a length
//! the peer merely declared.

use std::ops::Range;
use std::str;

use super::sender::{InputSpan, Sender};
use super::{BufferSizer, Event, Role};
use crate::close::{CloseCode, CloseFrame, ClosePayloadError, parse_close_payload};
use crate::config::Config;
use crate::deflate::{DeflateParams, InflateError, Inflater};
use crate::error::{Limit, ProtocolError};
use crate::frame::{FrameHeader, OpCode};
use crate::mask::{apply_mask, extend_copied};
use crate::utf8::{Utf8Validator, Validated};

/// Largest read size the adaptive read hint grows to when reads keep filling
/// the space offered and no frame asks for more.
const MAX_READ_HINT: usize = 256 << 10;

/// Frames this large and kept in place are read exactly up to their end
/// (see `Receiver::wanted_read`).
const LARGE_FRAME: usize = 16 << 10;

/// From this buffer size on, reads into the empty buffer start at offsets
/// spread over [`SPREAD`] bytes (see `Receiver::next_origin`); below it, at
/// the front, so that a quiet connection's buffer stays small.
const SPREAD_MIN_BUF: usize = 64 << 10;

/// The span of those offsets: a page, so that every distance to the sender's
/// data modulo 4 KiB comes up equally often.
const SPREAD: usize = 4 << 10;

/// The offsets are multiples of 8: `SPREAD >> SPREAD_SLOTS_BITS`.
const SPREAD_SLOTS_BITS: u32 = 9;

/// Unconsumed bytes up to this many are moved to the front of the buffer to
/// make room; more, when they begin a large frame, stay put.
const SMALL_MOVE: usize = 4 << 10;

/// The receiving half of a [`Connection`](crate::Connection).
///
/// Usually driven through the connection. After
/// [`Connection::into_split`](crate::Connection::into_split) it can live on
/// a reader thread: [`poll_event`](Self::poll_event) takes the [`Sender`] so
/// that the pongs and close replies the protocol owes are queued at once.
#[derive(Debug)]
pub struct Receiver {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    max_fragments: usize,
    accept_unmasked_frames: bool,
    min_read: usize,
    /// RSV bits that negotiated extensions claim (RSV1 with permessage-deflate).
    allowed_rsv: u8,
    /// permessage-deflate's decompressor, when negotiated.
    inflater: Option<Inflater>,
    /// The fragmented message in progress is compressed.
    message_compressed: bool,
    /// Initialised storage; bytes `start..end` are received but not consumed.
    buf: Vec<u8>,
    /// Changes whenever bytes already in `buf` may change (a read into it,
    /// a move, a shrink), so that the sender can tell whether payloads it
    /// holds there are still what they were (see `Sender::lend_received`).
    epoch: u32,
    start: usize,
    end: usize,
    /// Where the current round of reads into the empty buffer started (see
    /// [`next_origin`](Self::next_origin)), and how many rounds have had one.
    origin: usize,
    rounds: u32,
    read_hint: usize,
    /// What the last [`read_buffer`](Self::read_buffer) offered: its size,
    /// and whether it stopped at the end of a large frame (such a read says
    /// nothing about how much the transport had to give).
    offered: usize,
    offered_to_frame_end: bool,
    buf_sizer: BufferSizer,
    /// The frame whose payload is being received, if any.
    frame: Option<FrameState>,
    /// The kind of the fragmented message in progress, if any.
    message_kind: Option<MessageKind>,
    /// Frames received for the fragmented message in progress.
    fragments: usize,
    /// Reassembled payload of the fragmented message in progress.
    message: Vec<u8>,
    message_sizer: BufferSizer,
    utf8: Utf8Validator,
    /// What the event last handed out still occupies; freed at the next call.
    release: Release,
    close_received: bool,
    eof: bool,
    error: Option<ProtocolError>,
    /// Bytes moved to the front of `buf`, counted for tests.
    #[cfg(test)]
    moved: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessageKind {
    Text,
    Binary,
}

#[derive(Clone, Copy, Debug)]
struct FrameState {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    len: usize,
    /// Payload bytes already unmasked (and validated, for text).
    done: usize,
    /// The payload stays in the input buffer (a whole message, or a control
    /// frame) rather than moving to the reassembly buffer.
    in_place: bool,
    /// The payload is text to validate.
    text: bool,
    /// The payload is part of a compressed message, to inflate.
    compressed: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Release {
    input: usize,
    message: bool,
}

/// An event located in the buffers, not yet borrowed from them.
#[derive(Debug)]
enum RawEvent {
    /// Text the validator accepted whole: handed out without a second check.
    Text(Source, Validated),
    Binary(Source),
    Ping(Range<usize>),
    Pong(Range<usize>),
    Close {
        code: Option<CloseCode>,
        reason: Range<usize>,
    },
}

#[derive(Debug)]
enum Source {
    Input(Range<usize>),
    Message,
}

impl Receiver {
    pub(crate) fn new(role: Role, config: &Config, deflate: Option<&DeflateParams>) -> Self {
        let min_read = config.read_buffer_size.max(1);
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Self {
            inflater: deflate.map(|params| Inflater::new(params, peer)),
            message_compressed: false,
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            max_fragments: config.max_fragments,
            accept_unmasked_frames: config.accept_unmasked_frames,
            min_read,
            allowed_rsv: if deflate.is_some() { 0b100 } else { 0 },
            buf: Vec::new(),
            epoch: 0,
            start: 0,
            end: 0,
            origin: 0,
            rounds: 0,
            read_hint: min_read,
            offered: 0,
            offered_to_frame_end: false,
            buf_sizer: BufferSizer::new(min_read),
            frame: None,
            message_kind: None,
            fragments: 0,
            message: Vec::new(),
            message_sizer: BufferSizer::new(min_read),
            utf8: Utf8Validator::default(),
            release: Release::default(),
            close_received: false,
            eof: false,
            error: None,
            #[cfg(test)]
            moved: 0,
        }
    }

    /// Appends bytes received from the peer. Never fails and parses nothing:
    /// call [`poll_event`](Self::poll_event) to get the events they complete.
    /// Bytes received after the peer's close frame or a failure are dropped.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.is_finished() || bytes.is_empty() {
            return;
        }
        self.apply_release(false);
        self.epoch = self.epoch.wrapping_add(1);
        self.make_room(bytes.len());
        // Appended after what is held, over any spare bytes of a read
        // buffer offered before (see `extend_copied` for why not `memcpy`).
        self.buf.truncate(self.end);
        extend_copied(&mut self.buf, bytes);
        self.end += bytes.len();
        // Chunks as large as the current read size count as full reads.
        self.adapt_read_hint(bytes.len(), bytes.len() >= self.read_hint);
    }

    /// Free space to read into directly, without an intermediate copy; follow
    /// with [`commit_read`](Self::commit_read) and the number of bytes read.
    ///
    /// The space offered is at least
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size), grows
    /// while reads keep filling it, and grows toward the rest of a large frame
    /// only as fast as that frame's bytes actually arrive, so a declared length
    /// alone never makes memory grow. While a frame of 16 KiB or more that is
    /// handed out in place is incomplete, it ends where that frame ends
    /// (possibly smaller), so that the buffer is empty again once the frame
    /// is handed out and the next one starts over without being moved.
    /// Bytes read after the peer's close frame are ignored.
    pub fn read_buffer(&mut self) -> &mut [u8] {
        self.apply_release(false);
        self.epoch = self.epoch.wrapping_add(1);
        let want = self.wanted_read();
        self.make_room(want);
        if self.buf.len() - self.end < want {
            self.buf.resize(self.end + want, 0);
        }
        self.offered_to_frame_end = self.reads_to_frame_end();
        let end = if self.offered_to_frame_end { self.end + want } else { self.buf.len() };
        self.offered = end - self.end;
        &mut self.buf[self.end..end]
    }

    /// Records that `n` bytes were read into [`read_buffer`](Self::read_buffer).
    /// `n` is clamped to the space that was offered.
    pub fn commit_read(&mut self, n: usize) {
        let offered = self.offered.min(self.buf.len() - self.end);
        let n = n.min(offered);
        self.offered = offered - n;
        if self.is_finished() {
            return;
        }
        self.end += n;
        if !self.offered_to_frame_end {
            self.adapt_read_hint(n, n == offered);
        }
    }

    /// Reads that fill the space offered double the next offer (up to
    /// [`MAX_READ_HINT`]); reads far below it halve it (down to
    /// `read_buffer_size`).
    fn adapt_read_hint(&mut self, n: usize, filled: bool) {
        if filled && n >= self.read_hint {
            self.read_hint = (self.read_hint * 2).min(MAX_READ_HINT);
        } else if n < self.read_hint / 4 {
            self.read_hint = (self.read_hint / 2).max(self.min_read);
        }
    }

    /// Records that the transport has no more bytes (a TCP FIN or EOF).
    ///
    /// Unless the peer's close frame was already received, the next
    /// [`poll_event`](Self::poll_event) that has no complete event left fails
    /// with [`ProtocolError::UnexpectedEof`]: an abnormal closure.
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// Whether the peer's close frame has been received.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// The failure, once one has happened.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// Bytes received and not yet turned into events.
    pub fn buffered_len(&self) -> usize {
        self.end - self.start - self.release.input
    }

    /// Memory held by the receive buffers, in bytes.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity() + self.message.capacity()
    }

    /// Gives back buffer memory beyond what the data held needs, such as after
    /// a large message on a connection that has since gone quiet. Adapters call
    /// it when a connection is idle; the buffers grow again with traffic.
    pub fn shrink_buffers(&mut self) {
        self.apply_release(false);
        self.epoch = self.epoch.wrapping_add(1);
        self.compact();
        let keep = (self.end).max(self.min_read);
        self.buf.truncate(keep);
        self.buf.shrink_to(keep);
        self.message.shrink_to(self.message.len());
        self.buf_sizer.reset();
        self.message_sizer.reset();
        self.read_hint = self.min_read;
    }

    /// Returns the next event, `Ok(None)` when more input is needed (or after
    /// the close frame was delivered), or the failure.
    ///
    /// Call it until it returns `Ok(None)` after every
    /// [`receive`](Self::receive) or [`commit_read`](Self::commit_read), and
    /// once after [`receive_eof`](Self::receive_eof). The event borrows the
    /// receive buffers until the next call. Replies the protocol owes are
    /// queued on `sender` at once: a pong for a ping (only the latest pending
    /// one is kept), the echo of a close frame, or the close frame carrying the
    /// error's close code when the input is bad. Every event parsed before the
    /// bad bytes is delivered first; the failure is then returned on this and
    /// every later call.
    pub fn poll_event(&mut self, sender: &mut Sender) -> Result<Option<Event<'_>>, ProtocolError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        self.apply_release(sender.holds_input());
        if self.close_received {
            if self.eof {
                sender.transport_ended();
            }
            return Ok(None);
        }
        let raw = match self.advance() {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(None),
            Err(error) => return Err(self.fail(error, sender)),
        };
        match raw {
            RawEvent::Ping(range) => {
                sender.queue_pong(&self.buf[range.clone()]);
                Ok(Some(Event::Ping(&self.buf[range])))
            }
            RawEvent::Pong(range) => Ok(Some(Event::Pong(&self.buf[range]))),
            RawEvent::Close { code, reason } => {
                sender.peer_closed(code);
                // Validated when the frame completed; an empty reason is the
                // fallback that cannot be reached.
                let reason = str::from_utf8(&self.buf[reason]).unwrap_or_default();
                Ok(Some(Event::Close(code.map(|code| CloseFrame { code, reason }))))
            }
            RawEvent::Binary(Source::Input(range)) => {
                sender.note_input(Some(self.input_span()));
                Ok(Some(Event::Binary(&self.buf[range])))
            }
            RawEvent::Binary(Source::Message) => {
                sender.note_input(None);
                Ok(Some(Event::Binary(&self.message)))
            }
            // The fields are borrowed one at a time so that the error path may
            // still record the failure.
            RawEvent::Text(source, validated) => {
                sender.note_input(matches!(source, Source::Input(_)).then(|| self.input_span()));
                let bytes = match source {
                    Source::Input(range) => &self.buf[range],
                    Source::Message => &self.message[..],
                };
                match validated.as_str(bytes) {
                    Ok(text) => Ok(Some(Event::Text(text))),
                    // Not reached: the bytes are those the validator accepted.
                    Err(_) => {
                        self.error = Some(ProtocolError::InvalidUtf8);
                        sender.fail(ProtocolError::InvalidUtf8.close_code());
                        Err(ProtocolError::InvalidUtf8)
                    }
                }
            }
        }
    }

    /// After a failure, gives back the input buffer, which
    /// [`poll_event`](Self::poll_event) keeps on failing while the sender
    /// holds payloads in it: call it once those are written.
    pub(crate) fn release_failed_input(&mut self) {
        if self.error.is_some() {
            self.buf = Vec::new();
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// Where the input buffer is, for the sender (see `Sender::note_input`).
    fn input_span(&self) -> InputSpan {
        InputSpan { addr: self.buf.as_ptr().addr(), len: self.buf.len(), epoch: self.epoch }
    }

    /// The input buffer and its epoch, where the sender finds the payloads
    /// it holds (see `Sender::output_parts`).
    pub(crate) fn held_input(&self) -> (&[u8], u32) {
        (&self.buf, self.epoch)
    }

    fn is_finished(&self) -> bool {
        self.close_received || self.error.is_some()
    }

    fn fail(&mut self, error: ProtocolError, sender: &mut Sender) -> ProtocolError {
        if error == ProtocolError::UnexpectedEof {
            sender.transport_ended();
        } else {
            sender.fail(error.close_code());
        }
        self.error = Some(error.clone());
        if let Some(inflater) = &mut self.inflater {
            inflater.reset();
        }
        // Nothing more will be parsed: let the memory go, unless the sender
        // still has to write payloads from it (the echoes of messages that
        // came before the failure; then `release_failed_input` does, once
        // they are written).
        if !sender.holds_input() {
            self.release_failed_input();
        }
        self.message = Vec::new();
        self.start = 0;
        self.end = 0;
        self.release = Release::default();
        error
    }

    /// Frees what the previous event occupied. With `keep_bytes` (the sender
    /// holds payloads in the buffer, see `Sender::lend_received`) an empty
    /// buffer is not shrunk: the bytes stay as they are until the next read.
    fn apply_release(&mut self, keep_bytes: bool) {
        if self.release.input > 0 {
            self.start += self.release.input;
            self.release.input = 0;
        }
        if self.release.message {
            self.release.message = false;
            self.message.clear();
            if let Some(target) = self.message_sizer.shrink_target(self.message.capacity()) {
                self.message.shrink_to(target);
            }
        }
        if self.start == self.end {
            let round_ended = self.end > self.origin;
            if round_ended {
                // How much the buffer held this time round: a batch of small
                // frames, or a large frame and what came with it.
                self.buf_sizer.observe(self.end);
            }
            if let Some(inflater) = &mut self.inflater {
                inflater.release();
            }
            // Never below the size reads are currently offered: a burst of
            // small frames read in large chunks would otherwise shrink the
            // buffer after every batch and regrow (and zero) it on the next
            // read.
            if !keep_bytes && let Some(target) = self.buf_sizer.shrink_target_above(self.buf.len(), self.read_hint) {
                self.buf.truncate(target);
                self.buf.shrink_to(target);
                self.epoch = self.epoch.wrapping_add(1);
            }
            if round_ended {
                self.origin = self.next_origin();
            }
            self.origin = self.origin.min(self.buf.len());
            self.start = self.origin;
            self.end = self.origin;
        }
    }

    /// Where the next round of reads into the empty buffer starts: at the
    /// front while the buffer is small, and once it is large (a connection
    /// under load) at one of [`SPREAD`] / 8 offsets from the front, a
    /// different one each round.
    ///
    /// The kernel copies socket data into the buffer with `rep movsb`, which
    /// on AMD Zen 3 costs about three times the CPU when the buffer lies 1 to
    /// 31 bytes past the sender's data modulo 4 KiB (BENCHMARKS.md, "The
    /// kernel's copies and the distance between buffers"). Under load every
    /// round would otherwise start at the same address and the sender's data
    /// advance by the same amount each time, so a connection would meet that
    /// distance on every read or on none. Spread over 4 KiB, it meets it on
    /// about one read in 128, whatever the buffers' addresses.
    fn next_origin(&mut self) -> usize {
        if self.buf.len() < SPREAD_MIN_BUF {
            return 0;
        }
        self.rounds = self.rounds.wrapping_add(1);
        // Fibonacci hashing of the round count: successive rounds land far
        // apart, and every offset comes up as often as the others.
        let slot = self.rounds.wrapping_mul(0x9E37_79B9) >> (32 - SPREAD_SLOTS_BITS);
        slot as usize * (SPREAD >> SPREAD_SLOTS_BITS)
    }

    /// How much free space to offer for the next read.
    fn wanted_read(&self) -> usize {
        let buffered = self.end - self.start;
        let missing = match self.frame {
            Some(f) if f.in_place => f.len.saturating_sub(buffered),
            Some(f) => (f.len - f.done).saturating_sub(buffered),
            None => 0,
        };
        // Grow toward the rest of the frame no faster than its bytes arrive.
        let received = buffered + self.message.len();
        let want = self.read_hint.max(missing.min(received));
        if self.reads_to_frame_end() { want.min(missing) } else { want }
    }

    /// Whether reads stop at the end of the current frame: a large frame
    /// kept in place is read up to its last byte and no further, so that
    /// once it is handed out the buffer is empty and starts over, and the
    /// next frame's first part never has to be moved (see `make_room`).
    fn reads_to_frame_end(&self) -> bool {
        self.frame.is_some_and(|f| f.in_place && f.len >= LARGE_FRAME && f.len > self.end - self.start)
    }

    /// Makes `want` bytes free after `end`. The unconsumed bytes move to the
    /// front when there are few of them; the first part of a large frame
    /// stays where it is and the buffer grows behind it instead (by at most
    /// the rest of that frame: reads stop at its end, see `wanted_read`).
    fn make_room(&mut self, want: usize) {
        // An empty buffer keeps its round's origin (see `next_origin`): a
        // read that needs more room than is left behind it grows the buffer.
        if self.buf.len() - self.end < want && self.start < self.end {
            let large_in_place = self.frame.is_some_and(|f| f.in_place && f.len >= LARGE_FRAME);
            if !large_in_place || self.end - self.start <= SMALL_MOVE {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            #[cfg(test)]
            {
                self.moved += self.end - self.start;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.origin = 0;
        }
    }

    /// Parses as far as the buffered bytes allow; returns the next complete
    /// event's location.
    fn advance(&mut self) -> Result<Option<RawEvent>, ProtocolError> {
        loop {
            let Some(mut frame) = self.frame else {
                match FrameHeader::decode(&self.buf[self.start..self.end])? {
                    Some((header, header_len)) => {
                        self.start += header_len;
                        self.frame = Some(self.begin_frame(header)?);
                        continue;
                    }
                    None if self.eof => return Err(ProtocolError::UnexpectedEof),
                    None => return Ok(None),
                }
            };
            self.take_payload(&mut frame)?;
            if frame.done < frame.len {
                self.frame = Some(frame);
                if self.eof {
                    return Err(ProtocolError::UnexpectedEof);
                }
                return Ok(None);
            }
            self.frame = None;
            if let Some(event) = self.finish_frame(frame)? {
                return Ok(Some(event));
            }
        }
    }

    /// Checks a header against the connection's rules and limits.
    fn begin_frame(&mut self, header: FrameHeader) -> Result<FrameState, ProtocolError> {
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match (self.role, header.mask) {
            (Role::Server, None) if !self.accept_unmasked_frames => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.payload_len > self.max_frame_size as u64 {
            return Err(limit(Limit::MaxFrameSize, header.payload_len, self.max_frame_size));
        }
        // Fits: max_frame_size is a usize.
        let len = header.payload_len as usize;
        // RSV1 marks a compressed message, on its first frame only (RFC 7692
        // section 6.1): never on a continuation or a control frame.
        let compressed = header.rsv & 0b100 != 0;
        if compressed && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        let mut state = FrameState {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            len,
            done: 0,
            in_place: true,
            text: false,
            compressed,
        };
        match header.opcode {
            OpCode::Continuation => {
                let Some(kind) = self.message_kind else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                self.fragments += 1;
                if self.fragments > self.max_fragments {
                    return Err(limit(Limit::MaxFragments, self.fragments as u64, self.max_fragments));
                }
                // A compressed message's size is checked as it inflates.
                let total = self.message.len() as u64 + header.payload_len;
                if !self.message_compressed && total > self.max_message_size as u64 {
                    return Err(limit(Limit::MaxMessageSize, total, self.max_message_size));
                }
                state.in_place = false;
                state.text = kind == MessageKind::Text;
                state.compressed = self.message_compressed;
            }
            OpCode::Text | OpCode::Binary => {
                if self.message_kind.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if !compressed && header.payload_len > self.max_message_size as u64 {
                    return Err(limit(Limit::MaxMessageSize, header.payload_len, self.max_message_size));
                }
                let kind = if header.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary };
                state.text = kind == MessageKind::Text;
                self.utf8.reset();
                // A compressed message is inflated into the reassembly buffer,
                // so it never stays in place, even as a single frame.
                if !header.fin || compressed {
                    self.message_kind = Some(kind);
                    self.message_compressed = compressed;
                    self.fragments = 1;
                    self.message.clear();
                    state.in_place = false;
                }
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        Ok(state)
    }

    /// Unmasks and validates the payload bytes that have arrived since the
    /// last call; fragments move on to the reassembly buffer.
    fn take_payload(&mut self, frame: &mut FrameState) -> Result<(), ProtocolError> {
        let (from, to) = if frame.in_place {
            (self.start + frame.done, self.end.min(self.start.saturating_add(frame.len)))
        } else {
            (self.start, self.end.min(self.start.saturating_add(frame.len - frame.done)))
        };
        if to <= from {
            return Ok(());
        }
        let chunk = &mut self.buf[from..to];
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, frame.done);
        }
        if frame.compressed {
            let produced_from = self.message.len();
            let inflated = match &mut self.inflater {
                Some(inflater) => inflater.inflate(&self.buf[from..to], &mut self.message, self.max_message_size),
                None => Ok(()),
            };
            // What inflated before a failure is checked first, so the error
            // is the first one in the stream however the input was cut.
            if frame.text {
                self.utf8.feed(&self.message[produced_from..]).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            inflated.map_err(|e| self.inflate_error(e))?;
            frame.done += to - from;
            self.start = to;
            return Ok(());
        }
        // Each piece once, as it arrives; the whole is handed out unchecked.
        if frame.text {
            self.utf8.feed(chunk).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        frame.done += to - from;
        if !frame.in_place {
            extend_copied(&mut self.message, &self.buf[from..to]);
            self.start = to;
        }
        Ok(())
    }

    /// Handles a frame whose payload is complete; returns its event, if it
    /// completes one.
    fn finish_frame(&mut self, frame: FrameState) -> Result<Option<RawEvent>, ProtocolError> {
        let range = self.start..self.start + if frame.in_place { frame.len } else { 0 };
        match frame.opcode {
            OpCode::Ping | OpCode::Pong | OpCode::Close => {
                self.release.input = frame.len;
                if frame.opcode == OpCode::Ping {
                    return Ok(Some(RawEvent::Ping(range)));
                }
                if frame.opcode == OpCode::Pong {
                    return Ok(Some(RawEvent::Pong(range)));
                }
                let code = parse_close_payload(&self.buf[range.clone()])
                    .map_err(|e| match e {
                        ClosePayloadError::TooShort => ProtocolError::CloseFrameTooShort,
                        ClosePayloadError::InvalidCode(code) => ProtocolError::InvalidCloseCode(code),
                        ClosePayloadError::InvalidReason => ProtocolError::InvalidCloseReason,
                    })?
                    .map(|frame| frame.code);
                self.close_received = true;
                // A fragmented message cut short by the close is dropped.
                self.message_kind = None;
                self.message.clear();
                let reason = if code.is_some() { range.start + 2..range.end } else { range };
                Ok(Some(RawEvent::Close { code, reason }))
            }
            _ if frame.in_place => {
                self.release.input = frame.len;
                if frame.text {
                    let validated = self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    Ok(Some(RawEvent::Text(Source::Input(range), validated)))
                } else {
                    Ok(Some(RawEvent::Binary(Source::Input(range))))
                }
            }
            _ if !frame.fin => Ok(None),
            _ => {
                let kind = self.message_kind.take();
                if std::mem::take(&mut self.message_compressed) {
                    let produced_from = self.message.len();
                    let inflated = match &mut self.inflater {
                        Some(inflater) => inflater.finish_message(&mut self.message, self.max_message_size),
                        None => Ok(()),
                    };
                    if kind == Some(MessageKind::Text) {
                        self.utf8.feed(&self.message[produced_from..]).map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                    inflated.map_err(|e| self.inflate_error(e))?;
                }
                self.release.message = true;
                self.message_sizer.observe(self.message.len());
                if kind == Some(MessageKind::Text) {
                    let validated = self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    Ok(Some(RawEvent::Text(Source::Message, validated)))
                } else {
                    Ok(Some(RawEvent::Binary(Source::Message)))
                }
            }
        }
    }
}

impl Receiver {
    /// Whether permessage-deflate was negotiated.
    pub fn deflate_negotiated(&self) -> bool {
        self.inflater.is_some()
    }

    fn inflate_error(&self, error: InflateError) -> ProtocolError {
        match error {
            // `message` holds what inflated before the limit was passed.
            InflateError::TooBig => limit(Limit::MaxMessageSize, self.message.len() as u64, self.max_message_size),
            InflateError::Corrupt => ProtocolError::InvalidCompressedData,
        }
    }
}

fn limit(limit: Limit, size: u64, max: usize) -> ProtocolError {
    ProtocolError::LimitExceeded { limit, size, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` through `read_buffer` as fast as it is offered, handing
    /// out every event after each read as an adapter does (each must be
    /// `expected`, `count` of them), and returns where the next read would
    /// start, from the buffer's front.
    fn one_round(server: &mut Receiver, sender: &mut Sender, wire: &[u8], expected: &Event<'_>, count: usize) -> usize {
        let (mut fed, mut events) = (0, 0);
        for _ in 0..1_000 {
            if fed == wire.len() {
                break;
            }
            read_once(server, wire, &mut fed);
            while let Some(event) = server.poll_event(sender).unwrap() {
                assert_eq!(&event, expected);
                events += 1;
            }
        }
        assert_eq!((fed, events), (wire.len(), count));
        let next = server.read_buffer().as_ptr().addr();
        next - server.buf.as_ptr().addr()
    }

    /// One read of what is left of `wire` after `fed` bytes, as much as the
    /// buffer offers.
    fn read_once(server: &mut Receiver, wire: &[u8], fed: &mut usize) {
        let buf = server.read_buffer();
        let n = buf.len().min(wire.len() - *fed);
        buf[..n].copy_from_slice(&wire[*fed..*fed + n]);
        server.commit_read(n);
        *fed += n;
    }

    /// Under load (a large buffer) each round of reads into the empty buffer
    /// starts somewhere else within a page, so that the kernel's copy does
    /// not meet the same distance to the sender's data on every read; a
    /// quiet connection reads at the front of a small buffer.
    #[test]
    fn rounds_under_load_start_at_spread_offsets_and_quiet_ones_at_the_front() {
        let config = Config::default();
        let mut client = Sender::new(Role::Client, &config, None);
        let payload = [7u8; 1024];
        // More than the largest read offered, so that reads fill what is
        // offered and the offer grows to its largest.
        let mut batch = Vec::new();
        for _ in 0..300 {
            client.send_binary(&payload).unwrap();
        }
        client.take_output(&mut batch);
        let mut server = Receiver::new(Role::Server, &config, None);
        let mut sender = Sender::new(Role::Server, &config, None);
        let mut origins = std::collections::BTreeSet::new();
        for _ in 0..64 {
            origins.insert(one_round(&mut server, &mut sender, &batch, &Event::Binary(&payload), 300));
        }
        assert!(server.buf.len() >= SPREAD_MIN_BUF);
        assert!(origins.iter().all(|&at| at < SPREAD && at % 8 == 0), "{origins:?}");
        assert!(origins.len() >= 48, "only {} distinct offsets: {origins:?}", origins.len());
        // What a round needs still fits behind the furthest offset, so the
        // buffer stopped growing.
        assert!(server.buf.len() <= SPREAD + MAX_READ_HINT, "{}", server.buf.len());

        let mut quiet = Receiver::new(Role::Server, &config, None);
        let mut one = Vec::new();
        client.send_binary(b"sixteen bytes!!!").unwrap();
        client.take_output(&mut one);
        for _ in 0..64 {
            let at = one_round(&mut quiet, &mut sender, &one, &Event::Binary(b"sixteen bytes!!!"), 1);
            assert_eq!(at, 0);
        }
        assert!(quiet.buf.len() < SPREAD_MIN_BUF);
    }

    /// A read offered into an empty buffer that needs more room than is
    /// left behind the round's offset grows the buffer rather than moving
    /// the offset back to the front.
    #[test]
    fn an_empty_buffer_grows_behind_its_round_offset() {
        let mut server = Receiver::new(Role::Server, &Config::default(), None);
        server.buf = vec![0; SPREAD_MIN_BUF];
        (server.origin, server.start, server.end) = (4000, 4000, 4000);
        server.read_hint = SPREAD_MIN_BUF;
        let offered = server.read_buffer();
        let (at, len) = (offered.as_ptr().addr(), offered.len());
        assert_eq!(at - server.buf.as_ptr().addr(), 4000);
        assert_eq!(len, SPREAD_MIN_BUF);
    }

    /// Large frames arriving back to back, read the way an adapter reads
    /// (as much as offered, when the transport has it): the first part of a
    /// large frame is never moved to the front of the buffer, and memory
    /// stays near one frame plus one read.
    #[test]
    fn large_frames_are_not_moved_when_read_back_to_back() {
        let config = Config::default();
        let mut client = Sender::new(Role::Client, &config, None);
        let mut wire = Vec::new();
        for i in 0..64u8 {
            client.send_binary(&vec![i; 64 << 10]).unwrap();
            client.take_output(&mut wire);
        }
        let mut server = Receiver::new(Role::Server, &config, None);
        let mut server_sender = Sender::new(Role::Server, &config, None);
        let (mut fed, mut messages) = (0, 0);
        // The transport hands over at most 100,000 bytes per read, so reads
        // end inside frames.
        for _ in 0..10_000 {
            if fed == wire.len() {
                break;
            }
            let buf = server.read_buffer();
            let n = buf.len().min(wire.len() - fed).min(100_000);
            buf[..n].copy_from_slice(&wire[fed..fed + n]);
            server.commit_read(n);
            fed += n;
            while let Some(event) = server.poll_event(&mut server_sender).unwrap() {
                assert!(matches!(event, Event::Binary(data) if data.len() == 64 << 10));
                messages += 1;
            }
        }
        assert_eq!(messages, 64);
        assert!(server.moved <= 64 * SMALL_MOVE, "moved {} bytes for {} received", server.moved, wire.len());
        assert!(server.buf.capacity() <= (64 << 10) + MAX_READ_HINT + 64, "capacity {}", server.buf.capacity());
    }

    /// Compressed messages from a peer that keeps no context: a burst read
    /// at once is inflated with one context, which is given back once the
    /// input is parsed, so a connection waiting for input holds none.
    #[test]
    fn a_decompressor_without_context_takeover_lasts_until_the_input_is_parsed() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let config = Config { deflate: Some(crate::DeflateConfig::default()), ..Config::default() };
        let mut client = Sender::new(Role::Client, &config, Some(&params));
        let json = "{\"id\":1,\"text\":\"hello\"},".repeat(20);
        let mut wire = Vec::new();
        for _ in 0..3 {
            client.send_text(&json).unwrap();
        }
        client.take_output(&mut wire);
        let mut server = Receiver::new(Role::Server, &config, Some(&params));
        let mut server_sender = Sender::new(Role::Server, &config, Some(&params));
        let holding = |server: &Receiver| server.inflater.as_ref().is_some_and(Inflater::is_holding_state);
        server.receive(&wire);
        for _ in 0..3 {
            assert!(matches!(server.poll_event(&mut server_sender).unwrap(), Some(Event::Text(text)) if text == json));
            assert!(holding(&server), "kept while more input waits");
        }
        assert!(server.poll_event(&mut server_sender).unwrap().is_none());
        assert!(!holding(&server), "given back once the input is parsed");
        // Each message still starts afresh: one sent alone after the burst
        // inflates the same.
        client.send_text(&json).unwrap();
        wire.clear();
        client.take_output(&mut wire);
        server.receive(&wire);
        assert!(matches!(server.poll_event(&mut server_sender).unwrap(), Some(Event::Text(text)) if text == json));
    }

    #[test]
    fn an_emptied_buffer_is_not_shrunk_while_the_sender_holds_payloads_in_it() {
        let wire = |len: usize| {
            let mut client = crate::Connection::new(Role::Client, Config::default());
            client.send_binary(&vec![9; len]).unwrap();
            let mut wire = Vec::new();
            client.take_output(&mut wire);
            wire
        };
        let feed = |server: &mut crate::Connection, wire: &[u8]| {
            let mut fed = 0;
            for _ in 0..1_000 {
                if fed == wire.len() {
                    break;
                }
                read_once(server.halves().0, wire, &mut fed);
            }
        };
        for hold in [true, false] {
            let mut server = crate::Connection::new(Role::Server, Config::default());
            // A large message grows the buffer; then the sizer is one small
            // round away from shrinking it.
            feed(&mut server, &wire(300_000));
            while server.poll_event().unwrap().is_some() {}
            let receiver = server.halves().0;
            assert!(receiver.buf.len() >= 300_000);
            receiver.buf_sizer.reset();
            receiver.buf_sizer.oversized = crate::connection::SHRINK_AFTER - 1;
            receiver.read_hint = receiver.min_read;
            feed(&mut server, &wire(20_000));
            let (receiver, sender) = server.halves();
            let event = receiver.poll_event(sender).unwrap();
            let Some(Event::Binary(data)) = event else { panic!("{event:?}") };
            if hold {
                sender.lend_received(data);
            }
            sender.send_binary(data).unwrap();
            assert!(sender.end_loan().is_none());
            let epoch = receiver.epoch;
            // The buffer is empty now: the sizer's round ends here.
            assert!(receiver.poll_event(sender).unwrap().is_none());
            if hold {
                assert_eq!(receiver.epoch, epoch, "the held bytes were shrunk away");
                assert!(receiver.buf.len() >= 300_000);
            } else {
                assert!(receiver.buf.len() < 300_000, "the check above proves nothing: no shrink");
            }
        }
    }
}
