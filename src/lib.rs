//! WebSocket (RFC 6455) as a sans-IO state machine.
//!
//! This crate implements the whole protocol (the HTTP/1.1 upgrade handshake,
//! framing, masking, fragmentation, UTF-8 validation and the close handshake)
//! without doing any I/O. It never opens a socket, reads a clock or starts a
//! thread: bytes go in, events come out; messages go in, bytes come out. The
//! same code can be driven by a blocking socket, an async runtime, a test or a
//! fuzzer, and behaves the same whichever way the bytes arrive.
//!
//! ```text
//!                 receive(bytes) / read_buffer + commit_read
//!   transport ─────────────────────────────────────────────▶ Receiver ──poll_event──▶ Event<'_>
//!       ▲                                                      │
//!       │                                pong, close echo,     │
//!       │                                failure close         ▼
//!       └──────────── output + advance_output ◀──────────── Sender ◀── send_text, send_binary,
//!                     (or take_output)                                   ping, pong, close
//! ```
//!
//! # Using it
//!
//! 1. Handshake: a client builds a [`ClientHandshake`] from a [`ClientRequest`]
//!    and sends [`request_bytes`](ClientHandshake::request_bytes); a server
//!    feeds what it reads to a [`ServerHandshake`], which yields a
//!    [`Request`]: plain HTTP, or an upgrade that the application accepts or
//!    rejects. Both ends come out with an open [`Connection`].
//! 2. Feed every byte read from the transport to
//!    [`Connection::receive`] and call [`Connection::poll_event`] until it
//!    returns `Ok(None)`.
//! 3. After receiving or sending, write [`Connection::output`] to the
//!    transport; close the transport when
//!    [`Connection::should_close_transport`] says so.
//!
//! A message sent to many connections (a broadcast) can be a
//! [`PreparedMessage`]: with permessage-deflate it is compressed once for all
//! of them rather than once per connection.
//!
//! Pings are answered, close frames echoed and protocol violations reported to
//! the peer with the right close code by the core itself: an adapter holds no
//! rule of the protocol. Failures are values with the close code attached
//! ([`ProtocolError::close_code`]); a clean close is an [`Event::Close`], not
//! an error. Every limit is a field of [`Config`], and the error for hitting
//! one names that field.
//!
//! # Example: a client and a server in memory
//!
//! ```
//! use rfc6455::{
//!     Accept, ClientHandshake, ClientProgress, ClientRequest, CloseCode, Config, Event, ServerHandshake,
//!     ServerProgress, State,
//! };
//!
//! // The client asks for /chat with a subprotocol.
//! let request = ClientRequest::new("ws://127.0.0.1:9001/chat?room=1")?.protocol("chat.v1");
//! let client_handshake = ClientHandshake::new(request, Config::default())?;
//!
//! // The server reads the request and accepts it.
//! let ServerProgress::Request(request) = ServerHandshake::new(Config::default()).receive(client_handshake.request_bytes())?
//! else {
//!     panic!("the request is complete");
//! };
//! let upgrade = request.into_upgrade()?;
//! assert_eq!((upgrade.path(), upgrade.query()), ("/chat", Some("room=1")));
//! let (response, mut server) = upgrade.accept(Accept::new().protocol("chat.v1"))?;
//!
//! // The client checks the response.
//! let ClientProgress::Done(mut client, response) = client_handshake.receive(&response)? else {
//!     panic!("the response is complete");
//! };
//! assert_eq!(response.protocol(), Some("chat.v1"));
//!
//! // A message each way; `wire` stands in for the transport.
//! let mut wire = Vec::new();
//! client.send_text("hello")?;
//! client.take_output(&mut wire);
//! server.receive(&wire);
//! wire.clear();
//! assert_eq!(server.poll_event()?, Some(Event::Text("hello")));
//! server.send_binary(&[1, 2, 3])?;
//! server.take_output(&mut wire);
//! client.receive(&wire);
//! wire.clear();
//! assert_eq!(client.poll_event()?, Some(Event::Binary(&[1, 2, 3])));
//!
//! // The client closes; the server echoes; the server closes the transport.
//! client.close(CloseCode::NORMAL, "bye")?;
//! client.take_output(&mut wire);
//! server.receive(&wire);
//! wire.clear();
//! assert!(matches!(server.poll_event()?, Some(Event::Close(Some(frame))) if frame.reason == "bye"));
//! server.take_output(&mut wire);
//! client.receive(&wire);
//! assert!(matches!(client.poll_event()?, Some(Event::Close(Some(frame))) if frame.code == CloseCode::NORMAL));
//! assert_eq!((client.state(), server.state()), (State::Closed, State::Closed));
//! assert!(server.should_close_transport());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design notes
//!
//! - **Zero-copy receiving.** A message that arrives as one frame is unmasked
//!   in place and handed out as a slice of the receive buffer.
//!   [`Connection::read_buffer`] lets a transport read straight into it.
//! - **Memory follows bytes received.** Buffers grow with the bytes that
//!   actually arrive, never with a length the peer declared, and shrink back
//!   after a large message.
//! - **Fail fast.** Text is validated as it arrives, even within a frame; an
//!   invalid byte fails the connection with 1007 before the rest is received.
//! - **Events before errors.** Every event parsed before bad input is delivered
//!   before the failure, which is then sticky.
//! - **Deterministic when asked.** [`Config::rng_seed`] fixes the masking keys
//!   and `Sec-WebSocket-Key` for tests and fuzzing.
//!
//! # Adapters and features
//!
//! [`blocking`] drives the core over `std::net` (or any `Read + Write`
//! stream): a server with a thread per connection, a client for `ws://`
//! URLs through HTTP and SOCKS5 proxies, timeouts, keepalive, and a reader/writer
//! split for full duplex. The `tls` feature (off by default) adds `wss://`
//! and TLS servers with rustls (`ClientTls`, `ServerTls`, `TlsStream` in
//! [`blocking`]); the sans-IO core itself never needs it.

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod blocking;
mod close;
mod config;
mod connection;
mod deflate;
mod error;
mod frame;
mod handshake;
mod mask;
mod prepared;
mod proxy;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON, OwnedCloseFrame};
pub use config::Config;
pub use connection::{Connection, Event, Message, Receiver, Role, Sender, State};
pub use deflate::{DeflateConfig, DeflateParams, PERMESSAGE_DEFLATE};
pub use error::{HandshakeError, Limit, ProtocolError, SendError};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
pub use handshake::{
    Accept, ClientHandshake, ClientProgress, ClientRequest, Extension, HandshakeResponse, Headers, Request, Response,
    ServerHandshake, ServerProgress, UpgradeRequest, accept_key, parse_extensions,
};
pub use mask::{apply_mask, apply_mask_reference};
pub use prepared::PreparedMessage;
pub use proxy::{
    ProxyConnect, ProxyError, ProxyProgress, ProxyScheme, ProxyUrl, Socks5Connect, Socks5Progress, Tunnel,
    no_proxy_matches,
};
/// The rustls this crate's TLS is built with (the `tls` feature), for
/// [`ClientTls::from_config`](blocking::ClientTls::from_config) and friends.
#[cfg(feature = "tls")]
pub use rustls;
