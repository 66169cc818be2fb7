//! What the blocking adapters need from a byte stream beyond `Read + Write`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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

    /// A second handle to the same stream, for a reader and a writer on two
    /// threads. Streams that cannot be split return `Unsupported`.
    fn try_clone(&self) -> io::Result<Self> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this stream cannot be split"))
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_write_timeout(self, timeout)
    }

    fn shutdown(&self) -> io::Result<()> {
        match Self::shutdown(self, Shutdown::Both) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn try_clone(&self) -> io::Result<Self> {
        Self::try_clone(self)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_write_timeout(self, timeout)
    }

    fn shutdown(&self) -> io::Result<()> {
        match Self::shutdown(self, Shutdown::Both) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn try_clone(&self) -> io::Result<Self> {
        Self::try_clone(self)
    }
}

/// Whether a read error only means the read timeout elapsed.
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
