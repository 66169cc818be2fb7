//! The errors of the blocking adapters.

use std::fmt;
use std::io;

use crate::{HandshakeError, ProtocolError, ProxyError, SendError};

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// [`Options::connect_timeout`](super::Options::connect_timeout).
    Connect,
    /// [`Options::handshake_timeout`](super::Options::handshake_timeout).
    Handshake,
    /// [`Options::idle_timeout`](super::Options::idle_timeout).
    Idle,
    /// No pong or data within [`Options::ping_timeout`](super::Options::ping_timeout)
    /// of a keepalive ping: the peer is presumed dead.
    Keepalive,
    /// [`Options::close_timeout`](super::Options::close_timeout).
    Close,
    /// [`Options::write_timeout`](super::Options::write_timeout).
    Write,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect (Options::connect_timeout)",
            Self::Handshake => "handshake (Options::handshake_timeout)",
            Self::Idle => "idle read (Options::idle_timeout)",
            Self::Keepalive => "keepalive: no pong within Options::ping_timeout",
            Self::Close => "close handshake (Options::close_timeout)",
            Self::Write => "write (Options::write_timeout)",
        })
    }
}

/// Why a blocking operation failed.
///
/// A clean close is not an error: it arrives as
/// [`Message::Close`](crate::Message::Close). Once it has, further reads
/// return [`Error::Closed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer went away (EOF or reset) without a close handshake: an
    /// abnormal closure (1006).
    #[error("the peer disconnected without a close handshake")]
    Disconnected,
    /// The opening handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer broke the protocol or hit a limit; the close frame with
    /// [`ProtocolError::close_code`] has been sent.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// A send the protocol forbids.
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
    /// A timer fired.
    #[error("timed out: {0}")]
    Timeout(Timeout),
    /// The close handshake is over (or the connection failed earlier):
    /// nothing more can be read or sent.
    #[error("the connection is closed")]
    Closed,
    /// The HTTP proxy could not be used: a bad proxy URL (given, or from the
    /// environment), or the proxy refused or botched the `CONNECT` tunnel
    /// ([`ProxyError::status`] gives its answer).
    #[error("proxy: {0}")]
    Proxy(#[from] ProxyError),
    /// The URL needs something this build lacks (such as TLS for `wss://`
    /// without the `tls` feature).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// TLS could not be set up, or its handshake failed (a refused
    /// certificate among others: [`TlsError::is_certificate_error`](super::TlsError::is_certificate_error)).
    #[cfg(feature = "tls")]
    #[error("TLS: {0}")]
    Tls(#[from] super::TlsError),
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        match error {
            ProtocolError::UnexpectedEof => Self::Disconnected,
            other => Self::Protocol(other),
        }
    }
}

impl Error {
    /// Whether the connection is gone for good. A refused send (a ping over
    /// 125 bytes, a full write buffer, text fragments that are not UTF-8...)
    /// leaves the connection usable; everything else, including
    /// [`SendError::Closed`], does not.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Send(error) if *error != SendError::Closed)
    }
}

/// Maps I/O errors that mean "the peer is gone" to [`Error::Disconnected`].
pub(crate) fn io_error(error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Error::Disconnected,
        _ => Error::Io(error),
    }
}
