//! The server side of the interoperability checks (`interop/run.sh`): an echo
//! server (text as text, binary as binary) that picks the first subprotocol
//! the client offers, plus two paths the checks use to see the close
//! handshake from this side:
//!
//! - `/close/ID`: echoes, and remembers the code and reason of the client's
//!   close frame under `ID`;
//! - `/seen/ID`: sends one text message, `CODE REASON` as remembered for
//!   `ID` (waiting up to 5 s for it), or `none`, then closes with 1000;
//! - `/server-close`: closes at once with 4001 `server bye`.
//!
//! Run with `cargo run --release --example interop_server [ADDR]` (default
//! `127.0.0.1:0`); the first line on standard output is
//! `listening on ws://HOST:PORT`.

// Examples live outside the sans-IO core: sockets, threads and clocks are theirs.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rfc6455::blocking::{Error, Incoming, MaybeTls, Reply, Server, WebSocket};
use rfc6455::{Accept, CloseCode, Event, Response};

/// Close frames seen on `/close/ID` connections, by ID.
static SEEN: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().filter(|arg| !arg.starts_with("--")).cloned().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let flag = |name: &str| args.iter().position(|arg| arg == name).and_then(|i| args.get(i + 1)).cloned();
    let mut server = Server::bind(&addr)?;
    let mut scheme = "ws";
    if let (Some(cert), Some(key)) = (flag("--tls-cert"), flag("--tls-key")) {
        server = with_tls(server, &cert, &key)?;
        scheme = "wss";
    }
    println!("listening on {scheme}://{}", server.local_addr()?);
    std::io::stdout().flush()?;
    server.serve(
        |request| match request {
            Incoming::Upgrade(upgrade) => {
                let mut accept = Accept::new();
                if let Some(first) = upgrade.protocols().first() {
                    accept = accept.protocol(first.clone());
                }
                Reply::Accept(accept, upgrade.path().to_owned())
            }
            Incoming::Http(_) => Reply::Respond(Response::new(404).body("WebSocket only")),
        },
        |mut ws, path| {
            let result = if let Some(id) = path.strip_prefix("/seen/") {
                report(&mut ws, id)
            } else if path == "/server-close" {
                ws.close(CloseCode::from(4001), "server bye")
            } else {
                echo(&mut ws, path.strip_prefix("/close/"))
            };
            if let Err(error) = result {
                eprintln!("{path}: connection ended: {error}");
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
    Err(std::io::Error::other("--tls-cert needs the tls feature"))
}

fn remember(id: &str, seen: String) {
    let mut map = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    map.get_or_insert_with(HashMap::new).insert(id.to_owned(), seen);
}

fn recall(id: &str) -> Option<String> {
    SEEN.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|map| map.get(id).cloned())
}

/// Echoes until the peer closes; with an ID, remembers the close frame.
fn echo(ws: &mut WebSocket<MaybeTls>, id: Option<&str>) -> Result<(), Error> {
    loop {
        let closed = ws.read_with(|event, sender| match event {
            Event::Text(text) => sender.send_text(text).map(|()| false),
            Event::Binary(data) => sender.send_binary(data).map(|()| false),
            Event::Ping(_) | Event::Pong(_) => Ok(false),
            Event::Close(frame) => {
                if let Some(id) = id {
                    let seen = match frame {
                        Some(frame) => format!("{} {}", frame.code.as_u16(), frame.reason),
                        None => "no-status".to_owned(),
                    };
                    remember(id, seen);
                }
                Ok(true)
            }
        })??;
        if closed {
            return Ok(());
        }
    }
}

/// Tells the client what the `/close/ID` connection saw.
fn report(ws: &mut WebSocket<MaybeTls>, id: &str) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        if let Some(seen) = recall(id) {
            break seen;
        }
        if Instant::now() >= deadline {
            break "none".to_owned();
        }
        thread::sleep(Duration::from_millis(20));
    };
    ws.send_text(&seen)?;
    ws.close(CloseCode::NORMAL, "")
}
