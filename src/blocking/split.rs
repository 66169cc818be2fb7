//! Full duplex: a [`Reader`] for one thread and cloneable [`Writer`]s for any
//! number of others.
//!
//! The connection's sending half sits behind a lock held only while frames are
//! encoded, never during I/O. Writing to the socket is serialised by a second
//! lock. Whoever holds it writes until nothing is queued, so sends from many
//! threads that arrive while a write is in progress go out together in the
//! next write ("group commit"), and a send only waits for the socket when the
//! queue is over [`Config::max_write_buffer`](crate::Config::max_write_buffer).
//! The reader never blocks on the writer: a pong or close reply it owes is
//! queued, and written by whichever thread holds the write lock, or by the
//! reader itself when nobody does. A message of 2 KiB or more sent while
//! nobody writes is written by its sender from where it lies, with what was
//! queued before it, instead of being copied into the queue.
//!
//! [`WebSocket::split_with_writer_thread`](super::WebSocket::split_with_writer_thread)
//! adds a thread per connection that does all the writing: sends then only
//! queue, so a broadcast never waits on one slow client, and a client that
//! stops reading fills its bounded queue and is refused with
//! [`SendError::WriteBufferFull`] at once.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use super::error::io_error;
use super::timers::{Tick, Timers};
use super::transport::{await_eof, close_without_reset, is_timeout, write_all, write_all_vectored};
use super::websocket::{LEND_WHEN_IDLE_MIN, read_some};
use super::{Error, Transport};
use crate::connection::MAX_OUTPUT_PARTS;
use crate::mask::extend_copied;
use crate::{CloseCode, Connection, Event, Message, Receiver, Role, SendError, Sender};

pub(crate) fn new<S: Transport>(
    read_stream: S,
    write_stream: S,
    conn: Connection,
    timers: Timers,
    close_timeout: Duration,
    writer_thread: bool,
) -> (Reader<S>, Writer<S>) {
    // The reader's stream may not share the read timeout armed so far.
    let mut timers = timers;
    timers.disarm();
    let (receiver, sender) = conn.into_split();
    let role = sender.role();
    let shared = Arc::new(Shared {
        sender: Mutex::new(sender),
        writing: Mutex::new(WriteSide { stream: write_stream, scratch: Vec::new() }),
        failed: AtomicBool::new(false),
        writer_thread,
        wake: Condvar::new(),
        stopping: AtomicBool::new(false),
    });
    let reader = Reader {
        stream: read_stream,
        receiver,
        shared: Arc::clone(&shared),
        timers,
        quiet: true,
        finished: false,
        role,
        close_timeout,
    };
    (reader, Writer { shared })
}

struct Shared<S> {
    sender: Mutex<Sender>,
    writing: Mutex<WriteSide<S>>,
    /// A write failed: the transport is gone.
    failed: AtomicBool,
    /// A thread of its own does the writing; sends only queue.
    writer_thread: bool,
    /// Wakes the writer thread: output was queued, or it should stop.
    wake: Condvar,
    /// The reader is done: the writer thread stops once the output is written.
    stopping: AtomicBool,
}

struct WriteSide<S> {
    stream: S,
    /// Output taken from the sender, being written.
    scratch: Vec<u8>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Transport> Shared<S> {
    /// Writes what is queued. With `wait` false, returns at once if another
    /// thread is writing (it will write what was queued too).
    fn flush(&self, mut wait: bool) -> Result<(), Error> {
        loop {
            let guard = if wait {
                Some(lock(&self.writing))
            } else {
                match self.writing.try_lock() {
                    Ok(guard) => Some(guard),
                    Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                }
            };
            let Some(mut side) = guard else {
                return Ok(());
            };
            loop {
                side.scratch.clear();
                lock(&self.sender).take_output(&mut side.scratch);
                if side.scratch.is_empty() {
                    break;
                }
                let WriteSide { stream, scratch } = &mut *side;
                if let Err(error) = write_all(stream, scratch) {
                    self.failed.store(true, Ordering::Release);
                    let _ = stream.shutdown();
                    return Err(error);
                }
            }
            drop(side);
            // A thread that queued while we held the write lock, and found it
            // taken, left its bytes for us: check once more after letting go.
            if !lock(&self.sender).has_output() {
                return Ok(());
            }
            wait = false;
        }
    }

    /// Gets queued output written: by the writer thread if there is one,
    /// otherwise here, unless another thread is writing already.
    fn request_write(&self) -> Result<(), Error> {
        if self.writer_thread {
            self.wake.notify_one();
            Ok(())
        } else {
            self.flush(false)
        }
    }

    fn shutdown(&self) {
        let _ = lock(&self.writing).stream.shutdown();
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.failed.load(Ordering::Acquire) {
            Err(Error::Disconnected)
        } else if self.writer_thread && self.stopping.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

/// Starts the thread that does all the writing for a split connection.
pub(crate) fn spawn_writer_thread<S: Transport + Send + 'static>(writer: &Writer<S>) -> io::Result<()> {
    let shared = Arc::clone(&writer.shared);
    thread::Builder::new().name("rfc6455-writer".into()).stack_size(64 << 10).spawn(move || {
        loop {
            {
                let mut sender = lock(&shared.sender);
                while !sender.has_output()
                    && !shared.stopping.load(Ordering::Acquire)
                    && !shared.failed.load(Ordering::Acquire)
                {
                    sender = shared.wake.wait(sender).unwrap_or_else(PoisonError::into_inner);
                }
                let done = !sender.has_output() && shared.stopping.load(Ordering::Acquire);
                if done || shared.failed.load(Ordering::Acquire) {
                    return;
                }
            }
            // On a write error, flush marks the connection failed and shuts
            // the socket, which also wakes the reader.
            if shared.flush(true).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}

/// The sending side of a split connection: cloneable, `Send` and `Sync`, so a
/// broadcast server can keep one per client and send from any thread.
pub struct Writer<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<S> fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl<S: Transport> Writer<S> {
    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.queue_lent(text.as_bytes(), |sender| sender.send_text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.queue_lent(data, |sender| sender.send_binary(data))
    }

    /// Sends a message prepared for many connections (a broadcast): with
    /// permessage-deflate it is compressed once for all the connections that
    /// share its settings; see [`PreparedMessage`](crate::PreparedMessage).
    pub fn send_prepared(&self, message: &crate::PreparedMessage) -> Result<(), Error> {
        self.queue_lent(message.payload(), |sender| sender.send_prepared(message))
    }

    /// Sends a ping (at most 125 bytes).
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.queue(|sender| sender.ping(payload))
    }

    /// Sends a message; `Message::Close` starts the close handshake.
    pub fn send(&self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
            Message::Ping(data) => self.ping(data),
            Message::Pong(data) => self.queue(|sender| sender.pong(data)),
            Message::Close(frame) => {
                let (code, reason) = frame.as_ref().map_or((CloseCode::NORMAL, ""), |f| (f.code, f.reason.as_str()));
                self.close(code, reason)
            }
        }
    }

    /// Starts the close handshake: sends a close frame (with a writer
    /// thread: queues it, even when the queue is full). The [`Reader`] sees
    /// its end (the peer's close, or a close timeout).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.check_open()?;
        lock(&self.shared.sender).close(code, reason)?;
        if self.shared.writer_thread { self.shared.request_write() } else { self.shared.flush(true) }
    }

    /// Waits until everything queued so far has been written.
    pub fn flush(&self) -> Result<(), Error> {
        self.shared.check_open()?;
        self.shared.flush(true)
    }

    /// Like [`queue`](Self::queue) for a data message whose payload is
    /// `payload`. Without a writer thread, a large one that goes out as it
    /// is (a server's, uncompressed) is written from the caller's memory
    /// rather than copied twice (into the output, then out of it for the
    /// write) when the socket is free: this thread takes what was queued
    /// before the message and its header, and writes them with the payload.
    /// What others queue meanwhile follows it. While another thread writes,
    /// the message is queued as usual, to go out with that thread's batch.
    fn queue_lent(&self, payload: &[u8], op: impl Fn(&mut Sender) -> Result<(), SendError>) -> Result<(), Error> {
        if self.shared.writer_thread || payload.len() < LEND_WHEN_IDLE_MIN {
            return self.queue(op);
        }
        self.shared.check_open()?;
        // The write lock first, then the sender's: the order `flush` takes.
        let mut side = match self.shared.writing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return self.queue(op),
        };
        let mut sender = lock(&self.shared.sender);
        if sender.buffered_len() >= sender.max_write_buffer() {
            // The queue is full: wait for the socket like any send.
            drop(sender);
            drop(side);
            return self.queue(op);
        }
        sender.lend(payload, LEND_WHEN_IDLE_MIN);
        let queued = op(&mut sender);
        let deferred = sender.end_loan();
        let WriteSide { stream, scratch } = &mut *side;
        scratch.clear();
        if let Some(deferred) = &deferred {
            let mut parts = [&[][..]; MAX_OUTPUT_PARTS];
            match sender.output_parts((&[], 0), Some((deferred, payload)), &mut parts) {
                // The output before the payload, its header last; what was
                // queued after it stays queued.
                Some(_) => extend_copied(scratch, parts[0]),
                // Not reachable: the sender only defers payloads inside `payload`.
                None => sender.discard_deferred(deferred),
            }
            sender.advance_output(scratch.len());
        }
        drop(sender);
        if !scratch.is_empty()
            && let Err(error) = write_all_vectored(stream, &[scratch, payload])
        {
            self.shared.failed.store(true, Ordering::Release);
            let _ = stream.shutdown();
            return Err(error);
        }
        drop(side);
        queued?;
        self.shared.request_write()
    }

    fn queue(&self, op: impl Fn(&mut Sender) -> Result<(), SendError>) -> Result<(), Error> {
        self.shared.check_open()?;
        if self.shared.writer_thread {
            // Never wait for the socket: a full queue means the peer is not
            // keeping up, and the caller decides what to do about it.
            let queued = op(&mut lock(&self.shared.sender));
            self.shared.wake.notify_one();
            return queued.map_err(Error::from);
        }
        // Backpressure: wait for the socket, then try again. This must loop:
        // between our flush and our retry another writer thread may refill
        // the buffer, and a single retry then failed a perfectly good send
        // with `SendError::WriteBufferFull`. Each flush writes out everything
        // queued (or fails, ending the loop with its error), so every round
        // makes progress. (The sender lock must be released before the
        // flush, hence the separate `let`: a guard in the `match` scrutinee
        // would live through the whole `match`.)
        loop {
            let queued = op(&mut lock(&self.shared.sender));
            match queued {
                Err(SendError::WriteBufferFull { .. }) => self.shared.flush(true)?,
                other => break other?,
            }
        }
        self.shared.request_write()
    }
}

/// The receiving side of a split connection, for one thread. It answers pings
/// and close frames through the shared sending side, and runs the keepalive
/// and close timers.
pub struct Reader<S> {
    stream: S,
    receiver: Receiver,
    shared: Arc<Shared<S>>,
    timers: Timers,
    /// See [`read_some`].
    quiet: bool,
    finished: bool,
    role: Role,
    close_timeout: Duration,
}

impl<S> fmt::Debug for Reader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("receiver", &self.receiver).finish_non_exhaustive()
    }
}

impl<S: Transport> Reader<S> {
    /// Reads the next message; see [`WebSocket::read`](super::WebSocket::read).
    pub fn read(&mut self) -> Result<Message, Error> {
        self.read_with(|event| event.to_message())
    }

    /// Reads the next event and hands it to `f` without copying it.
    pub fn read_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R, Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        loop {
            let mut sender = lock(&self.shared.sender);
            // Only output this event produced (a pong) is the reader's to
            // get written: sends that other threads queued are their writers'
            // business, and a reader blocked writing them to a peer that is
            // itself busy writing would stop reading, and both sides stall.
            let queued_before = sender.buffered_len();
            let polled = self.receiver.poll_event(&mut sender);
            let owes_output = sender.buffered_len() > queued_before || sender.owes_pong();
            drop(sender);
            match polled {
                Ok(Some(event)) => {
                    let close = matches!(event, Event::Close(_));
                    let result = f(event);
                    if close {
                        self.finish_close();
                    } else if owes_output {
                        // A pong: written now unless a writer is busy (then
                        // it goes out with that writer's next batch).
                        if let Err(error) = self.shared.request_write() {
                            return Err(self.fail(error));
                        }
                    }
                    return Ok(result);
                }
                Ok(None) => {}
                Err(error) => return Err(self.fail(error.into())),
            }
            self.fill()?;
        }
    }

    /// Whether the close handshake is over or the connection failed.
    pub fn is_closed(&self) -> bool {
        self.finished
    }

    fn fill(&mut self) -> Result<(), Error> {
        loop {
            if lock(&self.shared.sender).close_sent() {
                self.timers.closing(Instant::now());
            }
            match self.timers.check(self.timers.now()) {
                Tick::Nothing => {}
                Tick::SendPing => {
                    let queued = lock(&self.shared.sender).ping(b"keepalive");
                    if queued.is_ok()
                        && let Err(error) = self.shared.request_write()
                    {
                        return Err(self.fail(error));
                    }
                }
                Tick::Expired(which) => return Err(self.fail(Error::Timeout(which))),
            }
            if let Some(timeout) = self.timers.rearm(self.timers.now())
                && let Err(error) = self.stream.set_read_timeout(timeout)
            {
                self.timers.disarm();
                return Err(self.fail(error.into()));
            }
            match read_some(&mut self.stream, &mut self.receiver, &mut self.quiet) {
                Ok(0) => {
                    self.receiver.receive_eof();
                    return Ok(());
                }
                Ok(_) => {
                    self.timers.received(self.timers.now());
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted || is_timeout(&error) => {}
                Err(error) => return Err(self.fail(io_error(error))),
            }
        }
    }

    fn finish_close(&mut self) {
        self.finished = true;
        if self.shared.flush(true).is_err() {
            return;
        }
        if !self.role.closes_transport_first() && !lock(&self.shared.sender).should_close_transport() {
            await_eof(&mut self.stream, self.close_timeout);
        }
        self.shared.shutdown();
        self.shared.stop();
    }

    fn fail(&mut self, error: Error) -> Error {
        if !self.finished {
            self.finished = true;
            // Writers learn at once that the connection is gone.
            self.shared.failed.store(true, Ordering::Release);
            let written = self.shared.flush(true).is_ok();
            // As in `WebSocket::fail`: no reset for a peer still sending. The
            // read handle shares the socket (and TLS session) of the write one.
            if written && matches!(error, Error::Protocol(_)) {
                close_without_reset(&mut self.stream, self.role, self.close_timeout);
            }
            self.shared.shutdown();
            self.shared.stop();
        }
        error
    }
}

impl<S> Drop for Reader<S> {
    /// A writer thread, if any, ends once it has written what is queued.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}
