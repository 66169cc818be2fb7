//! The WebSocket state machine (RFC 6455 sections 5, 6 and 7): bytes in,
//! events out; messages in, bytes out.
//!
//! A [`Connection`] is a [`Receiver`] and a [`Sender`]. The receiver parses
//! frames, reassembles fragmented messages, validates text as it arrives and
//! enforces the limits; the sender encodes frames and holds the close
//! handshake's state. Replies the protocol owes (pongs, the echo of a close
//! frame, the close frame that reports a failure) pass from the receiver to the
//! sender inside the core, so a caller never has to implement a rule of the
//! protocol. The halves can be split apart for a reader thread and writer
//! threads.

mod receiver;
mod sender;

pub use receiver::Receiver;
pub use sender::Sender;
pub(crate) use sender::{DEFER_MIN, Deferred, MAX_OUTPUT_PARTS};

use crate::close::{CloseCode, CloseFrame, OwnedCloseFrame};
use crate::config::Config;
use crate::deflate::DeflateParams;
use crate::error::{ProtocolError, SendError};
use crate::mask::{copied, copied_str};

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request. It masks every frame it sends
    /// and rejects masked frames.
    Client,
    /// The end that accepted the upgrade. It never masks, requires masked
    /// frames, and closes the transport first.
    Server,
}

impl Role {
    /// Whether this end closes the transport first when the connection ends,
    /// cleanly or not (RFC 6455 section 7.1.1): the server does, at once; the
    /// client waits for the server to, within a bound of its own choosing,
    /// reading and discarding what still arrives, so that the server, not the
    /// client, is left holding the TCP `TIME_WAIT` state.
    pub fn closes_transport_first(self) -> bool {
        self == Self::Server
    }
}

/// Where the close handshake stands (RFC 6455 section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// Our close frame is queued; the peer's has not arrived. Incoming
    /// messages are still delivered.
    CloseSent,
    /// Close frames went both ways, or the connection failed, or the transport
    /// ended. Nothing more is sent or delivered. A close frame from the peer
    /// is answered in the same call that delivers it, so a connection goes
    /// from [`Open`](Self::Open) to `Closed` when the peer closes first.
    Closed,
}

/// Something the peer sent, borrowed from the connection's buffers until the
/// next call to `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, valid UTF-8.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping; the pong is already queued (unless our close frame has gone
    /// out: nothing may follow it).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame (`None` when it carried no status code). The
    /// reply is already queued unless our own close went first; no message is
    /// delivered after this.
    Close(Option<CloseFrame<'a>>),
}

impl Event<'_> {
    /// Copies the event out of the connection's buffers.
    pub fn to_message(&self) -> Message {
        match *self {
            Self::Text(text) => Message::Text(copied_str(text)),
            Self::Binary(data) => Message::Binary(copied(data)),
            Self::Ping(data) => Message::Ping(data.to_vec()),
            Self::Pong(data) => Message::Pong(data.to_vec()),
            Self::Close(frame) => Message::Close(frame.map(|f| f.to_owned_frame())),
        }
    }
}

/// An [`Event`] that owns its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame.
    Close(Option<OwnedCloseFrame>),
}

/// A WebSocket connection after the handshake, in either role.
///
/// The whole interface is:
/// - in: [`receive`](Self::receive) (or [`read_buffer`](Self::read_buffer) and
///   [`commit_read`](Self::commit_read) to read without a copy) and
///   [`receive_eof`](Self::receive_eof);
/// - out: [`poll_event`](Self::poll_event) until `Ok(None)`;
/// - send: [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///   the fragment calls, [`ping`](Self::ping), [`pong`](Self::pong),
///   [`close`](Self::close);
/// - transmit: [`output`](Self::output) then
///   [`advance_output`](Self::advance_output), or
///   [`take_output`](Self::take_output);
/// - lifecycle: [`state`](Self::state) and
///   [`should_close_transport`](Self::should_close_transport).
///
/// The one duty of whoever drives it: after receiving input or sending, write
/// the output to the transport, and close the transport when
/// `should_close_transport` says so.
#[derive(Debug)]
pub struct Connection {
    receiver: Receiver,
    sender: Sender,
}

impl Connection {
    /// A connection that is already open, with no HTTP/1.1 handshake: for
    /// transports that upgrade some other way (such as HTTP/2 extended
    /// CONNECT, RFC 8441) and for tests. The handshake types produce
    /// connections through this too.
    pub fn new(role: Role, config: Config) -> Self {
        Self::with_extensions(role, config, None)
    }

    /// An open connection with permessage-deflate in force with `deflate`'s
    /// parameters (as negotiated by whatever upgraded the transport). The
    /// handshake types call this with what they negotiated.
    pub fn with_extensions(role: Role, config: Config, deflate: Option<DeflateParams>) -> Self {
        Self {
            receiver: Receiver::new(role, &config, deflate.as_ref()),
            sender: Sender::new(role, &config, deflate.as_ref()),
        }
    }

    /// Joins halves made by [`into_split`](Self::into_split).
    pub fn from_split(receiver: Receiver, sender: Sender) -> Self {
        Self { receiver, sender }
    }

    /// Separates the halves, to own them on different threads. Payloads the
    /// sender still had to write from the receive buffer (see
    /// `Sender::lend_received`) are copied into its output first: the halves
    /// share no memory once apart.
    pub fn into_split(mut self) -> (Receiver, Sender) {
        self.sender.copy_held(self.receiver.held_input());
        (self.receiver, self.sender)
    }

    /// Borrows both halves at once: lets an event borrowed from the receiver
    /// be sent back through the sender without copying it.
    ///
    /// ```
    /// # use rfc6455::{Connection, Role, Config, Event};
    /// # let mut server = Connection::new(Role::Server, Config::default());
    /// # server.receive(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
    /// let (receiver, sender) = server.halves();
    /// while let Some(event) = receiver.poll_event(sender)? {
    ///     if let Event::Text(text) = event {
    ///         sender.send_text(text)?; // echo, no copy of the payload
    ///     }
    /// }
    /// # assert_eq!(server.output(), [0x81, 0x02, b'h', b'i']);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn halves(&mut self) -> (&mut Receiver, &mut Sender) {
        (&mut self.receiver, &mut self.sender)
    }

    /// The receiving half.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// The sending half.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// See [`Receiver::receive`].
    pub fn receive(&mut self, bytes: &[u8]) {
        self.receiver.receive(bytes);
    }

    /// See [`Receiver::read_buffer`].
    pub fn read_buffer(&mut self) -> &mut [u8] {
        self.receiver.read_buffer()
    }

    /// See [`Receiver::commit_read`].
    pub fn commit_read(&mut self, n: usize) {
        self.receiver.commit_read(n);
    }

    /// See [`Receiver::receive_eof`].
    pub fn receive_eof(&mut self) {
        self.receiver.receive_eof();
    }

    /// The next event; see [`Receiver::poll_event`].
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, ProtocolError> {
        self.receiver.poll_event(&mut self.sender)
    }

    /// See [`Sender::send_text`].
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.sender.send_text(text)
    }

    /// See [`Sender::send_binary`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.sender.send_binary(data)
    }

    /// See [`Sender::send_prepared`].
    pub fn send_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), SendError> {
        self.sender.send_prepared(message)
    }

    /// See [`Sender::send_first_fragment`].
    pub fn send_first_fragment(&mut self, text: bool, payload: &[u8]) -> Result<(), SendError> {
        self.sender.send_first_fragment(text, payload)
    }

    /// See [`Sender::send_fragment`].
    pub fn send_fragment(&mut self, payload: &[u8], fin: bool) -> Result<(), SendError> {
        self.sender.send_fragment(payload, fin)
    }

    /// See [`Sender::ping`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.sender.ping(payload)
    }

    /// See [`Sender::pong`].
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.sender.pong(payload)
    }

    /// See [`Sender::close`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.sender.close(code, reason)
    }

    /// See [`Sender::output`].
    pub fn output(&mut self) -> &[u8] {
        self.sender.output()
    }

    /// See [`Sender::advance_output`].
    pub fn advance_output(&mut self, n: usize) {
        self.sender.advance_output(n);
    }

    /// See [`Sender::take_output`].
    pub fn take_output(&mut self, dst: &mut Vec<u8>) {
        self.sender.take_output(dst);
    }

    /// See [`Sender::has_output`].
    pub fn has_output(&self) -> bool {
        self.sender.has_output()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        let sent = self.sender.close_sent();
        let received = self.receiver.close_received() || self.sender.close_received();
        if self.receiver.error().is_some() || self.sender.is_failed() || received {
            State::Closed
        } else if sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// See [`Sender::should_close_transport`].
    pub fn should_close_transport(&self) -> bool {
        self.sender.should_close_transport()
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.sender.role()
    }

    /// Gives back buffer memory beyond what the data held needs; see
    /// [`Receiver::shrink_buffers`].
    pub fn shrink_buffers(&mut self) {
        self.receiver.shrink_buffers();
        self.sender.shrink_buffers();
    }

    /// Memory held by the connection's buffers, in bytes.
    pub fn buffer_capacity(&self) -> usize {
        self.receiver.buffer_capacity() + self.sender.buffer_capacity()
    }
}

/// Decides when a buffer that grew for a large message should shrink back:
/// once recent sizes have stayed well below its capacity for
/// [`SHRINK_AFTER`] observations in a row. Sizes decay by a quarter per
/// observation, so a steady stream of large messages keeps its buffer, and a
/// return to small ones releases it within a few dozen messages.
///
/// The streak keeps a busy connection whose sizes alternate (full batches,
/// then a few small ones) from shrinking and regrowing its buffers over and
/// over: memory given back to the allocator returns as fresh pages, which
/// cost a page fault and zero-filling each when touched again.
#[derive(Clone, Debug)]
pub(crate) struct BufferSizer {
    base: usize,
    recent: usize,
    /// Observations in a row after which the buffer was found oversized.
    oversized: u32,
    /// A size was observed since the last check.
    observed: bool,
}

/// Observations in a row after which a buffer must be found oversized
/// before it shrinks.
const SHRINK_AFTER: u32 = 32;

impl BufferSizer {
    pub(crate) fn new(base: usize) -> Self {
        Self { base, recent: 0, oversized: 0, observed: false }
    }

    pub(crate) fn observe(&mut self, size: usize) {
        self.recent = size.max(self.recent - self.recent / 4);
        self.observed = true;
    }

    pub(crate) fn shrink_target(&mut self, capacity: usize) -> Option<usize> {
        self.shrink_target_above(capacity, 0)
    }

    /// Like [`shrink_target`](Self::shrink_target), never going below `floor`.
    pub(crate) fn shrink_target_above(&mut self, capacity: usize, floor: usize) -> Option<usize> {
        let target = self.base.max(self.recent).max(floor);
        if capacity <= 4 * target {
            self.oversized = 0;
            return None;
        }
        // Checks come more often than sizes (every time the buffer is found
        // empty); only those after a new size count.
        if std::mem::take(&mut self.observed) {
            self.oversized += 1;
        }
        if self.oversized < SHRINK_AFTER {
            return None;
        }
        self.oversized = 0;
        Some(target)
    }

    pub(crate) fn reset(&mut self) {
        self.recent = 0;
        self.oversized = 0;
        self.observed = false;
    }
}
