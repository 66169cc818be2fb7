//! An echo server: every text message comes back as text, every binary
//! message as binary. Serves many clients at once, one thread each. It is the
//! server the Autobahn test suite and the benchmarks drive.
//!
//! Run with `cargo run --release --example echo_server [ADDR]` (default
//! `127.0.0.1:9001`). Over TLS: `cargo run --release --features tls
//! --example echo_server -- [ADDR] --tls-cert cert.pem --tls-key key.pem`.

// Examples live outside the sans-IO core: sockets and threads are theirs.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use rfc6455::Event;
use rfc6455::blocking::{Error, MaybeTls, Reply, Server, WebSocket};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().filter(|arg| !arg.starts_with("--")).cloned().unwrap_or_else(|| "127.0.0.1:9001".into());
    let flag = |name: &str| args.iter().position(|arg| arg == name).map(|i| args.get(i + 1).cloned());
    let mut server = Server::bind(&addr)?;
    let scheme = match (flag("--tls-cert"), flag("--tls-key")) {
        (None, None) => "ws",
        (Some(Some(cert)), Some(Some(key))) => {
            server = with_tls(server, &cert, &key)?;
            "wss"
        }
        _ => return Err(std::io::Error::other("usage: echo_server [ADDR] [--tls-cert FILE --tls-key FILE]")),
    };
    eprintln!("echo server listening on {scheme}://{}", server.local_addr()?);
    // `Server::serve` runs each connection's handshakes on a short-lived
    // thread and the connection on a thread of its own, so the stack pages
    // a handshake touches are not kept by idle connections.
    server.serve(
        |_request| Reply::accept(),
        |mut ws, ()| {
            if let Err(error) = echo(&mut ws) {
                eprintln!("connection ended: {error}");
            }
        },
    )
}

#[cfg(feature = "tls")]
fn with_tls(server: Server, cert: &str, key: &str) -> std::io::Result<Server> {
    let tls = rfc6455::blocking::ServerTls::from_pem_files(cert, key).map_err(std::io::Error::other)?;
    Ok(server.tls(tls))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Server, _: &str, _: &str) -> std::io::Result<Server> {
    Err(std::io::Error::other("--tls-cert needs the tls feature: cargo run --features tls --example echo_server"))
}

/// Echoes until the peer closes. Payloads go back straight from the receive
/// buffer (no allocation; payloads of 16 KiB and more are not even copied
/// into the output buffer, but written from where they lie, several in one
/// vectored write); replies are written in batches.
fn echo(ws: &mut WebSocket<MaybeTls>) -> Result<(), Error> {
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
