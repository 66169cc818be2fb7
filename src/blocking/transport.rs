//! What the blocking adapters need from a byte stream beyond `Read + Write`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::Role;
use crate::connection::MAX_OUTPUT_PARTS;

/// A byte stream the blocking adapters can drive.
///
/// Any `Read + Write` type qualifies with an empty `impl Transport for MyStream {}`;
/// the methods add what timeouts, closing and [splitting](super::WebSocket::split)
/// need, and are implemented for [`TcpStream`] (and Unix sockets).
///
/// Timeouts and keepalive work by asking the stream to give up a read after a
/// while ([`set_read_timeout`](Self::set_read_timeout)): a stream that cannot
/// simply never times out.
pub trait Transport: Read + Write + Sized {
    /// Makes reads fail with `WouldBlock` or `TimedOut` after `timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Makes writes fail with `WouldBlock` or `TimedOut` after `timeout`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Closes the stream in both directions (TCP: sends FIN).
    fn shutdown(&self) -> io::Result<()> {
        Ok(())
    }

    /// Closes the sending direction only, so that the peer reads the end of
    /// the stream while this end can still read what the peer sends (TCP:
    /// sends FIN, `shutdown(SHUT_WR)`). The default closes both directions.
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown()
    }

    /// A second handle to the same stream, for a reader and a writer on two
    /// threads. Streams that cannot be split return `Unsupported`.
    fn try_clone(&self) -> io::Result<Self> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this stream cannot be split"))
    }
}

/// The impl for a socket type whose inherent methods already do each job.
macro_rules! socket_transport {
    ($socket:ty) => {
        impl Transport for $socket {
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                Self::set_read_timeout(self, timeout)
            }

            fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                Self::set_write_timeout(self, timeout)
            }

            fn shutdown(&self) -> io::Result<()> {
                already_closed_is_done(Self::shutdown(self, Shutdown::Both))
            }

            fn shutdown_write(&self) -> io::Result<()> {
                already_closed_is_done(Self::shutdown(self, Shutdown::Write))
            }

            fn try_clone(&self) -> io::Result<Self> {
                Self::try_clone(self)
            }
        }
    };
}

/// A shutdown that fails because the peer already closed the connection
/// (`NotConnected`) has nothing left to do.
fn already_closed_is_done(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

socket_transport!(TcpStream);
#[cfg(unix)]
socket_transport!(std::os::unix::net::UnixStream);

/// Writes all of `bytes` and flushes the stream (a TLS stream may hold
/// records back); a write that times out is
/// [`Timeout::Write`](super::Timeout::Write).
pub(crate) fn write_all<S: Transport>(stream: &mut S, mut bytes: &[u8]) -> Result<(), super::Error> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(super::Error::Disconnected),
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(write_failed(error)),
        }
    }
    stream.flush().map_err(write_failed)
}

/// [`write_all`] for several buffers (at most [`MAX_OUTPUT_PARTS`]), written
/// in as few vectored writes as the stream allows.
pub(crate) fn write_all_vectored<S: Transport>(stream: &mut S, parts: &[&[u8]]) -> Result<(), super::Error> {
    let mut slices = [IoSlice::new(&[]); MAX_OUTPUT_PARTS];
    for (slice, part) in slices.iter_mut().zip(parts) {
        *slice = IoSlice::new(part);
    }
    let mut left = &mut slices[..parts.len().min(MAX_OUTPUT_PARTS)];
    // Drops empty buffers in front, so that the loop ends once all is written.
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match stream.write_vectored(left) {
            Ok(0) => return Err(super::Error::Disconnected),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(write_failed(error)),
        }
    }
    stream.flush().map_err(write_failed)
}

fn write_failed(error: io::Error) -> super::Error {
    if is_timeout(&error) { super::Error::Timeout(super::Timeout::Write) } else { super::error::io_error(error) }
}

/// Closes the transport after a last word the peer may not have read yet (a
/// close frame after a failure, an HTTP error response), the way RFC 6455
/// section 7.1.1 asks ("a method that cleanly closes the TCP connection ...
/// discarding any trailing bytes"): the end that closes first
/// ([`Role::closes_transport_first`], the server) ends its sending side at
/// once, the other leaves that to it; both then read and discard until the
/// peer ends its side too, for at most `timeout`.
///
/// Such a peer is often still sending (the rest of a message or of a request,
/// a frame already on its way). Closing a socket with bytes unread, or with
/// more on the way, makes the kernel answer with a reset, and a peer that
/// gets the reset before it has read our last word loses it, and with it the
/// reason the connection ended, along with anything sent before it.
pub(crate) fn close_without_reset<S: Transport>(stream: &mut S, role: Role, timeout: Duration) {
    if role.closes_transport_first() {
        let _ = stream.shutdown_write();
    }
    await_eof(stream, timeout);
    let _ = stream.shutdown();
}

/// A client's last duty in the close handshake: wait, at most `timeout`, for
/// the server to close the TCP connection first (RFC 6455 section 7.1.1),
/// discarding anything that still arrives.
pub(crate) fn await_eof<S: Transport>(stream: &mut S, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    let mut scratch = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted || is_timeout(&error) => {}
            Err(_) => return,
        }
    }
}

/// Whether a read error only means the read timeout elapsed.
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
