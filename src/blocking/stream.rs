//! [`MaybeTls`]: the stream of a connection made by [`connect`](super::connect)
//! or served by [`Server`](super::Server), plain TCP or TLS over TCP (and,
//! through an `https://` proxy, TLS to the proxy beneath).

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Transport;

/// A TCP stream, encrypted or not: what [`connect`](super::connect) returns
/// for `ws://` and `wss://` URLs alike, and what [`Server`](super::Server)
/// hands to its handler with or without `Server::tls`.
///
/// The `Tls` variant exists with the `tls` feature; the enum is
/// `#[non_exhaustive]` so that code written without the feature still
/// compiles with it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    #[cfg(feature = "tls")]
    Tls(super::TlsStream<TcpStream>),
    /// `ws://` through an `https://` proxy: TLS to the proxy, and the
    /// tunnel to the server inside it, so encrypted only as far as the
    /// proxy. The session is the proxy's.
    #[cfg(feature = "tls")]
    ProxyTls(super::TlsStream<TcpStream>),
    /// `wss://` through an `https://` proxy: TLS to the server inside the
    /// tunnel, inside TLS to the proxy. The outer stream's session is the
    /// proxy's; [`TlsStream::with_session`](super::TlsStream::with_session)
    /// of this one is the server's.
    #[cfg(feature = "tls")]
    TlsOverProxyTls(super::TlsStream<super::TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// The TCP stream beneath (for its addresses or socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            Self::Tls(stream) | Self::ProxyTls(stream) => stream.get_ref(),
            #[cfg(feature = "tls")]
            Self::TlsOverProxyTls(stream) => stream.get_ref().get_ref(),
        }
    }

    /// Whether the stream is encrypted to the server (`wss://`). A `ws://`
    /// connection through an `https://` proxy is encrypted only as far as
    /// the proxy, and is not.
    pub fn is_tls(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::ProxyTls(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(_) | Self::TlsOverProxyTls(_) => true,
        }
    }
}

/// Runs `$body` with `$stream` bound to the stream inside, whichever it is.
macro_rules! each {
    ($self:expr, $stream:ident => $body:expr) => {
        match $self {
            MaybeTls::Plain($stream) => $body,
            #[cfg(feature = "tls")]
            MaybeTls::Tls($stream) | MaybeTls::ProxyTls($stream) => $body,
            #[cfg(feature = "tls")]
            MaybeTls::TlsOverProxyTls($stream) => $body,
        }
    };
}

impl Read for MaybeTls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, stream => stream.read(buf))
    }
}

impl Write for MaybeTls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, stream => stream.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, stream => stream.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        each!(self, stream => stream.flush())
    }
}

impl Transport for MaybeTls {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, stream => Transport::set_read_timeout(stream, timeout))
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, stream => Transport::set_write_timeout(stream, timeout))
    }

    fn shutdown(&self) -> io::Result<()> {
        each!(self, stream => Transport::shutdown(stream))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        each!(self, stream => Transport::shutdown_write(stream))
    }

    fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Plain(stream) => Self::Plain(Transport::try_clone(stream)?),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => Self::Tls(stream.try_clone()?),
            #[cfg(feature = "tls")]
            Self::ProxyTls(stream) => Self::ProxyTls(stream.try_clone()?),
            #[cfg(feature = "tls")]
            Self::TlsOverProxyTls(stream) => Self::TlsOverProxyTls(stream.try_clone()?),
        })
    }
}

impl From<TcpStream> for MaybeTls {
    fn from(stream: TcpStream) -> Self {
        Self::Plain(stream)
    }
}
