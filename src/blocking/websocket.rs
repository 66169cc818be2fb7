//! [`WebSocket`]: one connection driven by blocking reads and writes.

use std::io;
use std::time::{Duration, Instant};

use super::error::io_error;
use super::timers::{Tick, Timers};
use super::transport::{await_eof, close_without_reset, is_timeout, write_all, write_all_vectored};
use super::{Error, Options, Transport};
use crate::connection::{DEFER_MIN, Deferred, MAX_OUTPUT_PARTS};
use crate::{CloseCode, Connection, Event, Message, Receiver, SendError, Sender};

/// Output held back while received input is still being processed is written
/// at once when it reaches this size (payloads held in the receive buffer
/// included): as large as the payloads that get a write of their own, so
/// that every write under load carries about this much.
const FLUSH_THRESHOLD: usize = DEFER_MIN;

/// A message sent while no received input waits (or, on a split
/// connection, while no other thread writes) is written at once, so from
/// this size on its payload is written from the caller's memory rather than
/// copied into the output first. Below it the copy costs next to nothing;
/// above it, glibc's `memcpy` switches to `rep movsb`, which copied between
/// two large buffers at about 3 GB/s on an AMD EPYC host (BENCHMARKS.md,
/// "Server push").
pub(super) const LEND_WHEN_IDLE_MIN: usize = 2 << 10;

/// A WebSocket connection over a blocking stream.
///
/// Reads block until a whole message (or control frame) has arrived; pings are
/// answered and close frames echoed on the way. Sends are written at once,
/// except while received messages are still waiting to be read: then they are
/// gathered and written together before the next read blocks, so an echo or
/// broadcast loop costs one system call per batch rather than per message,
/// while a lone message is never delayed. A server's messages of 2 KiB and
/// up when written at once (256 KiB and up within a batch) are written from
/// the caller's memory rather than copied into the output buffer, and
/// payloads of 16 KiB and up sent back from inside
/// [`read_with`](Self::read_with) (an echo) are written, with the rest of the
/// batch, from the receive buffer.
///
/// For one thread reading while others send, see [`split`](Self::split).
#[derive(Debug)]
pub struct WebSocket<S: Transport> {
    stream: S,
    conn: Connection,
    timers: Timers,
    /// No read has filled the small stack buffer yet: reads go through it
    /// (see [`read_some`]).
    quiet: bool,
    /// The close handshake is over or the connection failed.
    finished: bool,
    /// [`Options::close_timeout`].
    close_timeout: Duration,
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a stream whose handshake is done, with the connection that
    /// handshake produced (or one made with [`Connection::new`] for a
    /// transport that upgrades some other way).
    pub fn from_connection(stream: S, conn: Connection, options: &Options) -> io::Result<Self> {
        stream.set_write_timeout(options.write_timeout)?;
        Ok(Self {
            stream,
            conn,
            timers: Timers::new(options, Instant::now()),
            quiet: true,
            finished: false,
            close_timeout: options.close_timeout,
        })
    }

    /// Reads the next message: text, binary, ping, pong or close.
    ///
    /// A [`Message::Close`] is the end of a clean close handshake (the reply
    /// has been sent); after it, reads return [`Error::Closed`]. A peer that
    /// vanishes without closing gives [`Error::Disconnected`].
    pub fn read(&mut self) -> Result<Message, Error> {
        self.read_with(|event, _| event.to_message())
    }

    /// Reads the next event and hands it to `f` without copying it, together
    /// with the [`Sender`] so `f` may answer from the borrowed payload (an
    /// echo, say). What `f` queues is written like any other send.
    ///
    /// ```no_run
    /// # use rfc6455::{Event, blocking::WebSocket};
    /// # fn echo(ws: &mut WebSocket<std::net::TcpStream>) -> Result<(), rfc6455::blocking::Error> {
    /// loop {
    ///     let closed = ws.read_with(|event, sender| match event {
    ///         Event::Text(text) => sender.send_text(text).map(|()| false),
    ///         Event::Binary(data) => sender.send_binary(data).map(|()| false),
    ///         Event::Close(_) => Ok(true),
    ///         Event::Ping(_) | Event::Pong(_) => Ok(false),
    ///     })??;
    ///     if closed {
    ///         return Ok(());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn read_with<R>(&mut self, f: impl FnOnce(Event<'_>, &mut Sender) -> R) -> Result<R, Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        loop {
            let (receiver, sender) = self.conn.halves();
            sender.drop_unfinished_loan();
            match receiver.poll_event(sender) {
                Ok(Some(event)) => {
                    let close = matches!(event, Event::Close(_));
                    // A large payload echoed from the receive buffer is
                    // written from there, not copied into the output first
                    // (with the rest of the output, before the next read).
                    let lent = match event {
                        Event::Text(text) => text.as_bytes(),
                        Event::Binary(data) => data,
                        _ => &[],
                    };
                    if !lent.is_empty() {
                        sender.lend_received(lent);
                    }
                    let result = f(event, sender);
                    let owes_pong = sender.owes_pong();
                    if let Some(deferred) = sender.end_loan()
                        && let Err(error) =
                            write_output_from(&mut self.stream, sender, (&[], 0), Some((&deferred, lent)))
                    {
                        return Err(self.fail(error));
                    }
                    if close {
                        self.finish_close();
                    } else if owes_pong {
                        // Answer each ping as it is read, not once the batch
                        // is done: the core keeps only one automatic pong
                        // waiting (the newest), so ten pings read at once would
                        // get a single pong (Autobahn 2.10).
                        self.flush()?;
                    } else {
                        self.flush_if_idle()?;
                    }
                    return Ok(result);
                }
                Ok(None) => {}
                Err(error) => return Err(self.fail(error.into())),
            }
            self.fill()?;
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.queue_lent(text.as_bytes(), |conn| conn.send_text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.queue_lent(data, |conn| conn.send_binary(data))
    }

    /// Sends a message prepared for many connections (a broadcast): with
    /// permessage-deflate it is compressed once for all the connections that
    /// share its settings; see [`PreparedMessage`](crate::PreparedMessage).
    pub fn send_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        self.queue_lent(message.payload(), |conn| conn.send_prepared(message))
    }

    /// Sends a message; `Message::Close` starts the close handshake like
    /// [`close`](Self::close) without waiting for its end.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
            Message::Ping(data) => self.ping(data),
            Message::Pong(data) => self.queue(|conn| conn.pong(data)),
            Message::Close(frame) => {
                let (code, reason) = frame.as_ref().map_or((CloseCode::NORMAL, ""), |f| (f.code, f.reason.as_str()));
                self.queue(|conn| conn.close(code, reason))?;
                self.timers.closing(Instant::now());
                self.flush()
            }
        }
    }

    /// Sends one fragment of a message whose size is not known up front:
    /// `first` starts it (as text or binary), `fin` ends it.
    pub fn send_fragment(&mut self, first: Option<bool>, payload: &[u8], fin: bool) -> Result<(), Error> {
        match first {
            Some(text) => {
                self.queue(|conn| conn.send_first_fragment(text, payload))?;
                if fin { self.queue(|conn| conn.send_fragment(&[], true)) } else { Ok(()) }
            }
            None => self.queue(|conn| conn.send_fragment(payload, fin)),
        }
    }

    /// Sends a ping (at most 125 bytes). The pong arrives as a
    /// [`Message::Pong`] from [`read`](Self::read).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.queue(|conn| conn.ping(payload))
    }

    /// Closes the connection: sends a close frame with `code` and `reason`,
    /// then reads (and discards) until the peer's close frame arrives or
    /// [`Options::close_timeout`] runs out, and closes the transport.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        self.conn.close(code, reason)?;
        self.timers.closing(Instant::now());
        self.flush()?;
        loop {
            if self.read_with(|event, _| matches!(event, Event::Close(_)))? {
                return Ok(());
            }
        }
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.conn.halves().1.drop_unfinished_loan();
        match write_output(&mut self.stream, &mut self.conn, None) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(error)),
        }
    }

    /// The subprotocol-independent protocol state.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Whether the close handshake is over or the connection has failed.
    pub fn is_closed(&self) -> bool {
        self.finished
    }

    /// Splits into a [`Reader`](super::Reader) and a cloneable
    /// [`Writer`](super::Writer) for use on different threads. Needs a stream
    /// that [`Transport::try_clone`] can duplicate, such as a `TcpStream`.
    pub fn split(self) -> io::Result<(super::Reader<S>, super::Writer<S>)> {
        let read_stream = self.stream.try_clone()?;
        Ok(super::split::new(read_stream, self.stream, self.conn, self.timers, self.close_timeout, false))
    }

    /// Like [`split`](Self::split), plus a thread of the connection's own that
    /// does all the writing. Sends then only queue and never wait for the
    /// socket, which is what a broadcast to many clients wants: one slow
    /// client cannot hold up the others. A client that stops reading fills
    /// its queue ([`Config::max_write_buffer`](crate::Config::max_write_buffer))
    /// and further sends fail at once with
    /// [`SendError::WriteBufferFull`],
    /// typically the moment to drop it. The thread ends with the connection
    /// (or when the reader is dropped), after writing what is queued.
    pub fn split_with_writer_thread(self) -> io::Result<(super::Reader<S>, super::Writer<S>)>
    where
        S: Send + 'static,
    {
        let read_stream = self.stream.try_clone()?;
        let (reader, writer) =
            super::split::new(read_stream, self.stream, self.conn, self.timers, self.close_timeout, true);
        super::split::spawn_writer_thread(&writer)?;
        Ok((reader, writer))
    }

    /// Queues a frame, making room by writing first if the output buffer is
    /// full, then writes unless received input is waiting to be processed.
    fn queue(&mut self, op: impl Fn(&mut Connection) -> Result<(), SendError>) -> Result<(), Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        match op(&mut self.conn) {
            Err(SendError::WriteBufferFull { .. }) => {
                self.flush()?;
                op(&mut self.conn)?;
            }
            other => other?,
        }
        self.flush_if_idle()
    }

    /// Like [`queue`](Self::queue) for a data message whose payload is
    /// `payload`: a large one that goes out as it is (a server's frames are
    /// not masked, and a compressed message is not this payload) is written
    /// from the caller's memory, with what was queued before it, instead of
    /// being copied into the output first.
    fn queue_lent(
        &mut self,
        payload: &[u8],
        op: impl Fn(&mut Connection) -> Result<(), SendError>,
    ) -> Result<(), Error> {
        // While received input waits, output is gathered into batches, and
        // only payloads that would fill one are worth a write of their own.
        let min = if self.conn.receiver().buffered_len() == 0 { LEND_WHEN_IDLE_MIN } else { DEFER_MIN };
        if payload.len() < min || self.finished {
            return self.queue(op);
        }
        let sender = self.conn.halves().1;
        sender.drop_unfinished_loan();
        if sender.buffered_len() >= sender.max_write_buffer() {
            // What `queue` does on `WriteBufferFull`, before the loan: its
            // flush would end the loan.
            self.flush()?;
        }
        let sender = self.conn.halves().1;
        sender.lend(payload, min);
        let queued = op(&mut self.conn);
        let sender = self.conn.halves().1;
        if let Some(deferred) = sender.end_loan()
            && let Err(error) = write_output(&mut self.stream, &mut self.conn, Some((&deferred, payload)))
        {
            return Err(self.fail(error));
        }
        queued?;
        self.flush_if_idle()
    }

    /// Writes queued output now unless more received input is waiting (then
    /// the next blocking read writes it, batched), or enough has piled up:
    /// [`FLUSH_THRESHOLD`], or the configured write buffer limit if that is
    /// lower, so that the next reply does not find the buffer full.
    fn flush_if_idle(&mut self) -> Result<(), Error> {
        let sender = self.conn.sender();
        let enough = FLUSH_THRESHOLD.min(sender.max_write_buffer());
        if sender.has_output() && (self.conn.receiver().buffered_len() == 0 || sender.buffered_len() >= enough) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes pending output, then blocks until more input arrives (or a timer
    /// fires).
    fn fill(&mut self) -> Result<(), Error> {
        self.flush()?;
        loop {
            match self.timers.check(self.timers.now()) {
                Tick::Nothing => {}
                Tick::SendPing => {
                    // Keepalive: the payload is arbitrary; a pong is what counts.
                    if let Err(error) = self.conn.ping(b"keepalive") {
                        return Err(self.fail(error.into()));
                    }
                    self.flush()?;
                }
                Tick::Expired(which) => return Err(self.fail(Error::Timeout(which))),
            }
            if let Err(error) = self.arm_read_timeout() {
                return Err(self.fail(error.into()));
            }
            let (receiver, _) = self.conn.halves();
            match read_some(&mut self.stream, receiver, &mut self.quiet) {
                Ok(0) => {
                    self.conn.receive_eof();
                    return Ok(());
                }
                Ok(_) => {
                    self.timers.received(self.timers.now());
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_timeout(&error) => {}
                Err(error) => return Err(self.fail(io_error(error))),
            }
        }
    }

    /// Sets the stream's read timeout for the nearest deadline, avoiding a
    /// system call when the one already set will do (see [`Timers::rearm`]).
    fn arm_read_timeout(&mut self) -> io::Result<()> {
        if let Some(timeout) = self.timers.rearm(self.timers.now()) {
            let set = self.stream.set_read_timeout(timeout);
            if set.is_err() {
                self.timers.disarm();
            }
            set?;
        }
        Ok(())
    }

    /// The close handshake is complete on our side: send the reply, and close
    /// the transport (a server at once; a client once the server has, or the
    /// close timeout runs out).
    fn finish_close(&mut self) {
        self.finished = true;
        if write_output(&mut self.stream, &mut self.conn, None).is_err() {
            let _ = self.stream.shutdown();
            return;
        }
        if !self.conn.role().closes_transport_first() && !self.conn.should_close_transport() {
            await_eof(&mut self.stream, self.close_timeout);
        }
        let _ = self.stream.shutdown();
    }

    /// The connection is over because of `error`: send the close frame the
    /// core queued (best effort), close the transport, and return `error`.
    ///
    /// After a protocol error whose close frame went out, the peer may still
    /// be sending: the transport is closed without a reset (see
    /// [`close_without_reset`]), which may take up to the close timeout.
    /// A transport that failed or timed out is closed at once.
    fn fail(&mut self, error: Error) -> Error {
        if !self.finished {
            self.finished = true;
            let written = write_output(&mut self.stream, &mut self.conn, None).is_ok();
            // The echoes held in the receive buffer are written (or lost with
            // the transport): its memory can go.
            self.conn.halves().0.release_failed_input();
            if written && matches!(error, Error::Protocol(_)) {
                close_without_reset(&mut self.stream, self.conn.role(), self.close_timeout);
            } else {
                let _ = self.stream.shutdown();
            }
        }
        error
    }
}

/// Reads go through a buffer of this size on the stack until one fills it.
const QUIET_READ: usize = 1024;

/// Reads from `stream` into `receiver`; returns the byte count (0 at the end
/// of the stream, which the caller reports).
///
/// A connection starts quiet: it reads into a small buffer on the stack and
/// hands the bytes over with [`Receiver::receive`](crate::Receiver::receive),
/// which stores only what arrived. A connection that only ever exchanges
/// small messages (an idle one, blocked in this read, above all) thus holds
/// no receive buffer larger than its messages. The first read that fills the
/// stack buffer ends the quiet for good: from then on reads go straight into
/// the receiver's buffer (no copy), whose offered size follows the traffic.
/// (Going back to quiet reads would not give memory back: what a connection
/// freed stays with the allocator, and the switches cost system calls under
/// load.)
pub(crate) fn read_some<S: Transport>(stream: &mut S, receiver: &mut Receiver, quiet: &mut bool) -> io::Result<usize> {
    if *quiet && receiver.buffered_len() == 0 {
        let mut scratch = [0u8; QUIET_READ];
        let n = stream.read(&mut scratch)?;
        receiver.receive(&scratch[..n]);
        *quiet = n < QUIET_READ;
        Ok(n)
    } else {
        let n = stream.read(receiver.read_buffer())?;
        receiver.commit_read(n);
        Ok(n)
    }
}

/// Writes all of the connection's pending output: what is queued, with the
/// payloads of frames held in the receive buffer, and `lent`'s deferred frame
/// with its payload from `lent`'s memory.
fn write_output<S: Transport>(
    stream: &mut S,
    conn: &mut Connection,
    lent: Option<(&Deferred, &[u8])>,
) -> Result<(), Error> {
    let (receiver, sender) = conn.halves();
    write_output_from(stream, sender, receiver.held_input(), lent)
}

/// [`write_output`] for a sender whose held payloads are in `input` (the
/// receive buffer and its epoch). While an event is borrowed the receive
/// buffer cannot be, so the event's callback passes an empty `input`: the
/// sender then holds nothing, since it defers a frame only when it holds
/// none (see `Sender::lend_received`).
fn write_output_from<S: Transport>(
    stream: &mut S,
    sender: &mut Sender,
    input: (&[u8], u32),
    lent: Option<(&Deferred, &[u8])>,
) -> Result<(), Error> {
    if lent.is_none() && !sender.holds_input() {
        let pending = sender.output().len();
        write_all(stream, sender.output())?;
        sender.advance_output(pending);
        return Ok(());
    }
    write_output_parts(stream, sender, input, lent)
}

/// [`write_output_from`] when a payload lies outside the output buffer: one
/// vectored write of all the parts. Kept out of line, so that the stack
/// frame every connection's write goes through stays small: the parts take
/// 2 KiB of stack, and inlined they cost each idle connection another page of
/// thread stack (4 KiB of resident memory, measured).
#[inline(never)]
fn write_output_parts<S: Transport>(
    stream: &mut S,
    sender: &mut Sender,
    input: (&[u8], u32),
    lent: Option<(&Deferred, &[u8])>,
) -> Result<(), Error> {
    // An owed pong joins the output first, as in the plain case.
    let _ = sender.output();
    let mut parts = [&[][..]; MAX_OUTPUT_PARTS];
    let Some(count) = sender.output_parts(input, lent, &mut parts) else {
        // Not reachable: payloads are held only until the output is written,
        // which happens before the receive buffer changes, and deferred only
        // inside `lent`. Should it happen, no header goes out without its
        // payload.
        discard_lent(sender, lent);
        return write_output_from(stream, sender, input, None);
    };
    let written = write_all_vectored(stream, &parts[..count]);
    if written.is_ok() {
        sender.all_output_written();
    } else {
        discard_lent(sender, lent);
    }
    written
}

/// Drops the frames whose payloads lie elsewhere, and what follows them.
fn discard_lent(sender: &mut Sender, lent: Option<(&Deferred, &[u8])>) {
    if let Some((deferred, _)) = lent {
        sender.discard_deferred(deferred);
    }
    sender.discard_held();
}
