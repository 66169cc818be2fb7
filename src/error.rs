//! The errors of the core, one type per kind of operation.
//!
//! - [`ProtocolError`]: the peer broke RFC 6455, a limit was hit, or the
//!   transport ended early. Each maps to the close code sent to the peer.
//! - [`SendError`]: the application asked for something the protocol forbids.
//! - [`HandshakeError`]: the HTTP/1.1 upgrade failed; server-side failures map
//!   to the HTTP status to answer with.
//!
//! None of them wraps an I/O error: the core does no I/O.

use std::fmt;

use crate::close::CloseCode;

/// A limit from [`Config`](crate::Config), named after its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Config::max_frame_size`](crate::Config::max_frame_size).
    MaxFrameSize,
    /// [`Config::max_message_size`](crate::Config::max_message_size).
    MaxMessageSize,
    /// [`Config::max_fragments`](crate::Config::max_fragments).
    MaxFragments,
    /// [`Config::max_handshake_size`](crate::Config::max_handshake_size).
    MaxHandshakeSize,
    /// [`Config::max_headers`](crate::Config::max_headers).
    MaxHeaders,
    /// [`Config::max_write_buffer`](crate::Config::max_write_buffer).
    MaxWriteBuffer,
}

impl Limit {
    /// The name of the [`Config`](crate::Config) field that sets this limit.
    pub const fn config_field(self) -> &'static str {
        match self {
            Self::MaxFrameSize => "max_frame_size",
            Self::MaxMessageSize => "max_message_size",
            Self::MaxFragments => "max_fragments",
            Self::MaxHandshakeSize => "max_handshake_size",
            Self::MaxHeaders => "max_headers",
            Self::MaxWriteBuffer => "max_write_buffer",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Config::{}", self.config_field())
    }
}

/// The connection failed: the peer broke the protocol, a limit was hit, or the
/// transport ended before the close handshake.
///
/// Returned by [`Connection::poll_event`](crate::Connection::poll_event). It is
/// sticky: every later poll returns it again. By the time it is returned, the
/// close frame carrying [`close_code`](Self::close_code) is already queued in
/// the output (except for [`UnexpectedEof`](Self::UnexpectedEof), where there
/// is nobody left to tell), so the caller's one duty is to send the pending
/// output and then close the transport.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode that RFC 6455 reserves (3-7, 0xB-0xF).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV bits set that no negotiated extension claims (bits as `0bRRR`, RSV1 first).
    #[error("reserved bits {0:#05b} set without an extension that defines them")]
    ReservedBits(u8),
    /// A payload length encoded in more bytes than needed (section 5.2: "the
    /// minimal number of bytes MUST be used").
    #[error("payload length is not minimally encoded")]
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set.
    #[error("64-bit payload length has its most significant bit set")]
    LengthTooLarge,
    /// A control frame (close, ping, pong) without FIN.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame with a payload over 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooLong(u64),
    /// A client sent an unmasked frame to a server.
    #[error("frame from client is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame to a client.
    #[error("frame from server is masked")]
    MaskedFrame,
    /// A continuation frame with no fragmented message to continue.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A close frame whose payload is a single byte.
    #[error("close frame payload of one byte")]
    CloseFrameTooShort,
    /// A close frame with a code that may not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A compressed message (permessage-deflate) that is not a valid deflate
    /// stream.
    #[error("compressed message is not a valid deflate stream")]
    InvalidCompressedData,
    /// Text that is not valid UTF-8 (checked as the bytes arrive).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close reason that is not valid UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A frame, a message or a fragment count over its configured limit.
    #[error("{size} exceeds {limit} ({max})")]
    LimitExceeded {
        /// Which limit; its [`config_field`](Limit::config_field) is the knob.
        limit: Limit,
        /// The size reached or declared (bytes, or frames for
        /// [`Limit::MaxFragments`]).
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The transport ended before the close handshake completed: an abnormal
    /// closure (1006), distinct from a clean [`Event::Close`](crate::Event::Close).
    #[error("connection ended without a close handshake")]
    UnexpectedEof,
}

impl ProtocolError {
    /// The close code this failure is reported with: 1002 for protocol
    /// violations, 1007 for invalid UTF-8, 1009 for limits, and 1006 (never sent)
    /// for an unexpected end of the transport.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::LimitExceeded { .. } => CloseCode::TOO_BIG,
            Self::UnexpectedEof => CloseCode::ABNORMAL,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The application asked to send something the protocol forbids, or the
/// connection can no longer send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A ping or pong payload over 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlPayloadTooLong(usize),
    /// A close code that may not be sent (see [`CloseCode::is_valid_on_wire`]).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    #[error("close reason of {0} bytes exceeds 123")]
    CloseReasonTooLong(usize),
    /// Text fragments that are not valid UTF-8 once joined.
    #[error("text fragments are not valid UTF-8")]
    InvalidUtf8,
    /// A continuation fragment with no fragmented message started.
    #[error("no fragmented message in progress")]
    NoMessageInProgress,
    /// A new message while a fragmented one is unfinished.
    #[error("a fragmented message is in progress")]
    MessageInProgress,
    /// The output buffer holds [`Config::max_write_buffer`](crate::Config::max_write_buffer)
    /// bytes or more: send the pending output first.
    #[error("{buffered} bytes waiting to be sent reach {limit} ({max})")]
    WriteBufferFull {
        /// Bytes waiting in the output buffer.
        buffered: usize,
        /// Always [`Limit::MaxWriteBuffer`].
        limit: Limit,
        /// The configured maximum.
        max: usize,
    },
    /// A close frame was already sent (or the connection failed): nothing more
    /// may be sent.
    #[error("the connection is closing or closed")]
    Closed,
}

/// The HTTP/1.1 upgrade handshake failed.
///
/// Client-side variants describe what was wrong with the request being built
/// or the server's response. Server-side variants describe what was wrong with
/// the client's request; [`http_status`](Self::http_status) gives the status
/// to answer with and [`http_response`](Self::http_response) the whole answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    // ---- Building a client request ----
    /// The URL could not be parsed; the text says which part is wrong.
    #[error("invalid URL: {0}")]
    InvalidUrl(&'static str),
    /// The URL's scheme is neither `ws` nor `wss`.
    #[error("unsupported URL scheme {0:?} (expected ws or wss)")]
    UnsupportedScheme(String),
    /// A header name given by the application is not an HTTP token.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value given by the application contains CR, LF, NUL or
    /// another control character.
    #[error("invalid value for header {0:?}: control characters are not allowed")]
    InvalidHeaderValue(String),
    /// The application tried to set a header the handshake itself controls.
    #[error("header {0:?} is set by the handshake and cannot be given")]
    ReservedHeader(String),
    /// A subprotocol name that is not an HTTP token.
    #[error("invalid subprotocol name {0:?}")]
    InvalidSubprotocol(String),
    /// An extension offer that is not valid `Sec-WebSocket-Extensions` syntax.
    #[error("invalid extension offer {0:?}")]
    InvalidExtensionOffer(String),

    // ---- Limits, both sides ----
    /// The header block exceeded a limit ([`Limit::MaxHandshakeSize`] or
    /// [`Limit::MaxHeaders`]).
    #[error("handshake exceeds {limit} ({max})")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The configured maximum.
        max: usize,
    },
    /// The bytes are not a valid HTTP/1.1 message; the text is the parser's.
    #[error("malformed HTTP: {0}")]
    MalformedHttp(&'static str),
    /// The transport ended before the handshake completed.
    #[error("connection ended during the handshake")]
    UnexpectedEof,

    // ---- Checking the server's response (client side) ----
    /// The response status is not 101.
    #[error("server answered {status} instead of 101 Switching Protocols")]
    UnexpectedStatus {
        /// The status code received.
        status: u16,
    },
    /// The response has no `Upgrade: websocket` header.
    #[error("response lacks Upgrade: websocket")]
    ResponseMissingUpgrade,
    /// The response's `Connection` header lacks the `upgrade` token.
    #[error("response lacks Connection: upgrade")]
    ResponseMissingConnectionUpgrade,
    /// The response has no `Sec-WebSocket-Accept` header.
    #[error("response lacks Sec-WebSocket-Accept")]
    MissingAccept,
    /// `Sec-WebSocket-Accept` does not match the key that was sent.
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    AcceptMismatch,
    /// The server chose a subprotocol that was not offered (or any when none was).
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnexpectedSubprotocol(String),
    /// The server accepted an extension that was not offered.
    #[error("server accepted extension {0:?}, which was not offered")]
    UnexpectedExtension(String),
    /// The server's permessage-deflate parameters break RFC 7692 (the text
    /// says how).
    #[error("invalid permessage-deflate response: {0}")]
    DeflateNegotiation(&'static str),
    /// The response's `Sec-WebSocket-Extensions` header is malformed.
    #[error("malformed Sec-WebSocket-Extensions in response")]
    MalformedResponseExtensions,

    // ---- Checking the client's request (server side) ----
    /// The request method is not GET (answered 405).
    #[error("method {0} is not GET")]
    MethodNotGet(String),
    /// The request is not HTTP/1.1 (answered 505).
    #[error("HTTP version is not 1.1")]
    UnsupportedHttpVersion,
    /// The request has no `Host` header (answered 400).
    #[error("request lacks Host")]
    MissingHost,
    /// `Upgrade` does not list `websocket` (answered 400).
    #[error("request lacks Upgrade: websocket")]
    MissingUpgrade,
    /// `Connection` does not list `upgrade` (answered 400).
    #[error("request lacks Connection: upgrade")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key` (answered 400).
    #[error("request lacks Sec-WebSocket-Key")]
    MissingKey,
    /// More than one `Sec-WebSocket-Key` (answered 400).
    #[error("request has more than one Sec-WebSocket-Key")]
    DuplicateKey,
    /// `Sec-WebSocket-Key` is not base64 of exactly 16 bytes (answered 400).
    #[error("Sec-WebSocket-Key is not base64 of 16 bytes")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13 (answered 426 with
    /// `Sec-WebSocket-Version: 13`).
    #[error("unsupported Sec-WebSocket-Version {0:?} (only 13 is supported)")]
    UnsupportedVersion(Option<String>),
    /// `Sec-WebSocket-Protocol` is not a comma-separated list of tokens
    /// (answered 400).
    #[error("malformed Sec-WebSocket-Protocol")]
    MalformedProtocols,
    /// `Sec-WebSocket-Extensions` is malformed (answered 400).
    #[error("malformed Sec-WebSocket-Extensions")]
    MalformedExtensions,
    /// The application chose a subprotocol the client did not offer.
    #[error("subprotocol {0:?} was not offered by the client")]
    SubprotocolNotOffered(String),
    /// A status code outside 100-999 was given for a response.
    #[error("invalid HTTP status {0}")]
    InvalidStatus(u16),
}
