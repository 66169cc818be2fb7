//! Blocking adapters over `std::io`: a [`Server`] and [`connect`] for TCP
//! (and, with the `tls` feature, TLS: `ServerTls`, `ClientTls`), a
//! [`WebSocket`] over any [`Transport`], and [`Reader`]/[`Writer`] halves for
//! full duplex across threads.
//!
//! These adapters hold no rule of the protocol: they move bytes between a
//! stream and the sans-IO [`Connection`](crate::Connection), and add what
//! needs a clock or a socket: timeouts, keepalive pings, and closing the
//! transport.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod client;
mod error;
mod handshake_io;
mod options;
mod server;
mod split;
mod stream;
mod timers;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod websocket;

pub use client::{ClientBuilder, connect};
pub use error::{Error, Timeout};
pub use options::{Options, ProxyChoice};
pub use server::{Accepted, DEFAULT_MAX_CONNECTIONS, Incoming, Reply, Server, accept, accept_with};
pub use split::{Reader, Writer};
pub use stream::MaybeTls;
#[cfg(feature = "tls")]
pub use tls::{ClientTls, ServerTls, TlsError, TlsRoots, TlsStream};
pub use transport::Transport;
pub use websocket::WebSocket;
