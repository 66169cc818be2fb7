//! An echo server: every text message comes back as text, every binary
//! message as binary. Serves many clients at once, one thread each. It is the
//! server the Autobahn test suite and the benchmarks drive.
//!
//! Run with `cargo run --release --example echo_server [ADDR]` (default
//! `127.0.0.1:9001`).

// Examples live outside the sans-IO core: sockets and threads are theirs.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use rfc6455::Event;
use rfc6455::blocking::{Error, Reply, Server, WebSocket};

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let server = Server::bind(&addr)?;
    eprintln!("echo server listening on ws://{}", server.local_addr()?);
    server.serve(
        |_request| Reply::accept(),
        |mut ws, ()| {
            if let Err(error) = echo(&mut ws) {
                eprintln!("connection ended: {error}");
            }
        },
    )
}

/// Echoes until the peer closes. Payloads go back straight from the receive
/// buffer (no copy, no allocation); replies are written in batches.
fn echo(ws: &mut WebSocket<std::net::TcpStream>) -> Result<(), Error> {
    loop {
        let closed = ws.read_with(|event, sender| match event {
            Event::Text(text) => sender.send_text(text).map(|()| false),
            Event::Binary(data) => sender.send_binary(data).map(|()| false),
            Event::Ping(_) | Event::Pong(_) => Ok(false),
            Event::Close(_) => Ok(true),
        })??;
        if closed {
            return Ok(());
        }
    }
}
