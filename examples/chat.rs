//! A chat room: one port serves the page (`GET /`) and the WebSocket
//! (`/ws?name=ada`). Every text message is broadcast to everyone as
//! `name: text`; joins and leaves are announced as `*** ada joined` and
//! `*** ada left`.
//!
//! Run with `cargo run --release --example chat [ADDR]` (default
//! `127.0.0.1:8080`) and open the printed URL in a few browser tabs. Over
//! TLS (https and wss): `cargo run --release --features tls --example chat --
//! [ADDR] --tls-cert cert.pem --tls-key key.pem`.
//!
//! Each connection is split: its reader loop runs on the connection's own
//! thread, a writer thread of its own does its writing, and its [`Writer`]
//! sits in a shared registry so any thread can broadcast to it. Sends only
//! queue, so a client that stops reading never holds up the others: its
//! bounded queue fills, the send fails, and it is removed. Keepalive pings
//! drop clients that vanished without closing.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // an example: sockets, threads and locks are the point

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use rfc6455::blocking::{Accepted, Error, Incoming, MaybeTls, Options, Reply, Server, Writer};
use rfc6455::{Accept, CloseCode, Message, PreparedMessage, Request, Response, SendError, UpgradeRequest};

/// The page, embedded at compile time.
const INDEX_HTML: &str = include_str!("chat/index.html");

/// Longest chat line accepted, in bytes.
const MAX_LINE: usize = 4 << 10;
/// Longest name, in characters.
const MAX_NAME: usize = 32;
/// Notices from the server start with this, so the page can tell them apart
/// from `name: text` lines.
const NOTICE: &str = "*** ";

/// One connected client, as the broadcaster sees it.
struct Client {
    name: String,
    writer: Writer<MaybeTls>,
}

/// Everyone connected, by connection id.
#[derive(Default)]
struct Room {
    next_id: AtomicU64,
    clients: Mutex<HashMap<u64, Client>>,
}

impl Room {
    fn clients(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // A panicking thread cannot leave the map half-updated: keep going.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn join(&self, name: &str, writer: Writer<MaybeTls>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.clients().insert(id, Client { name: name.to_owned(), writer });
        id
    }

    fn leave(&self, id: u64) -> bool {
        self.clients().remove(&id).is_some()
    }

    /// Sends `text` to everyone. Sends only queue (each connection has a
    /// writer thread), and the lock is held only to copy the writers, so no
    /// client can hold up the others. A client whose send fails is removed; if
    /// it failed because the client stopped reading (its queue is full), it is
    /// told to go with a close frame, and its reader thread announces the
    /// leave once the connection ends. The message is prepared once:
    /// browsers negotiate permessage-deflate, and a prepared message is
    /// compressed once for all of them.
    fn broadcast(&self, text: &str) {
        let writers: Vec<(u64, Writer<MaybeTls>)> =
            self.clients().iter().map(|(&id, client)| (id, client.writer.clone())).collect();
        let message = PreparedMessage::text(text);
        let mut dead = Vec::new();
        for (id, writer) in writers {
            match writer.send_prepared(&message) {
                Ok(()) => {}
                Err(Error::Send(SendError::WriteBufferFull { .. })) => {
                    let _ = writer.close(CloseCode::POLICY_VIOLATION, "too slow: messages piled up");
                    dead.push(id);
                }
                Err(_) => dead.push(id),
            }
        }
        if !dead.is_empty() {
            let mut clients = self.clients();
            for id in dead {
                clients.remove(&id);
            }
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.clients().values().map(|client| client.name.clone()).collect();
        names.sort();
        names
    }
}

/// The command line: `[ADDR] [--tls-cert FILE --tls-key FILE]`.
struct Args {
    addr: String,
    tls: Option<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Args { addr: addr.unwrap_or_else(|| "127.0.0.1:8080".into()), tls })
}

/// Serves over TLS with the certificate and key (PEM files).
#[cfg(feature = "tls")]
fn with_tls(server: Server, cert: &str, key: &str) -> Result<Server, String> {
    let tls = rfc6455::blocking::ServerTls::from_pem_files(cert, key).map_err(|e| e.to_string())?;
    Ok(server.tls(tls))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Server, _: &str, _: &str) -> Result<Server, String> {
    Err("TLS needs the tls feature: cargo run --release --features tls --example chat -- ...".into())
}

fn main() {
    let args = parse_args().unwrap_or_else(|error| {
        eprintln!("chat: {error}\nusage: chat [ADDR] [--tls-cert FILE --tls-key FILE]");
        std::process::exit(2);
    });
    let addr = args.addr;
    let mut options = Options::default();
    // Keepalive: ping after 15 s of silence, drop the client if nothing comes
    // back within 10 s more.
    options.ping_interval = Some(Duration::from_secs(15));
    options.ping_timeout = Duration::from_secs(10);
    // A client that stops reading is dropped when its queue
    // (config.max_write_buffer) fills, or when a write to it blocks this long.
    options.write_timeout = Some(Duration::from_secs(5));
    options.config.max_write_buffer = 256 << 10;
    // Chat lines are short; refuse anything much bigger at the protocol level.
    options.config.max_message_size = 64 << 10;

    let mut server = match Server::bind(&addr) {
        Ok(server) => server.with_options(options),
        Err(error) => {
            eprintln!("cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    if let Some((cert, key)) = &args.tls {
        server = with_tls(server, cert, key).unwrap_or_else(|error| {
            eprintln!("chat: {error}");
            std::process::exit(1);
        });
    }
    let scheme = if args.tls.is_some() { "https" } else { "http" };
    match server.local_addr() {
        Ok(local) => println!("chat server listening: open {scheme}://{local}/"),
        Err(_) => println!("chat server listening: open {scheme}://{addr}/"),
    }
    let server = Arc::new(server);

    let room = Arc::new(Room::default());
    // An accept loop of its own rather than `Server::serve`, to show one: each
    // connection's handshakes (`Server::handshake`: TLS when configured, then
    // the upgrade) run on that connection's thread.
    loop {
        let stream = match server.accept_stream() {
            Ok(stream) => stream,
            Err(error) => {
                // Transient (a reset before accept, out of descriptors): wait
                // a moment rather than spin.
                eprintln!("accept failed: {error}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let room = Arc::clone(&room);
        let server = Arc::clone(&server);
        let spawned = thread::Builder::new().name("chat-conn".into()).spawn(move || serve(&server, stream, &room));
        if let Err(error) = spawned {
            eprintln!("cannot start a thread: {error}");
        }
    }
}

/// Answers one TCP connection: the page, a 404, or a chat session.
fn serve(server: &Server, stream: TcpStream, room: &Room) {
    let peer = stream.peer_addr().map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    let mut name = None;
    let accepted = server.handshake(stream, |request| match request {
        Incoming::Http(request) => http(request),
        Incoming::Upgrade(upgrade) if upgrade.path() != "/ws" => Reply::Respond(not_found()),
        Incoming::Upgrade(upgrade) if !same_origin(upgrade) => Reply::Respond(
            Response::new(403).header("Content-Type", "text/plain").body("cross-origin request refused\n"),
        ),
        Incoming::Upgrade(upgrade) => {
            name = Some(parse_name(upgrade.query()));
            Reply::Accept(Accept::new(), ())
        }
    });
    match (accepted, name) {
        (Ok(Accepted::WebSocket(ws, ())), Some(name)) => match ws.split_with_writer_thread() {
            Ok((reader, writer)) => chat(reader, writer, &name, &peer, room),
            Err(error) => eprintln!("{peer}: cannot split the connection: {error}"),
        },
        (Ok(_), _) => {}
        (Err(error), _) => eprintln!("{peer}: handshake failed: {error}"),
    }
}

/// Plain HTTP on the same port: the page at `/`, 404 elsewhere.
fn http(request: &Request) -> Reply {
    let response = match (request.method(), request.path()) {
        ("GET" | "HEAD", "/" | "/index.html") => Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(INDEX_HTML),
        // Browsers ask for it; an empty answer keeps their console quiet.
        ("GET" | "HEAD", "/favicon.ico") => Response::new(204),
        (_, "/") => Response::new(405).header("Allow", "GET").body("method not allowed\n"),
        _ => not_found(),
    };
    Reply::Respond(response)
}

fn not_found() -> Response {
    Response::new(404).header("Content-Type", "text/plain").body("not found\n")
}

/// Browsers always send `Origin`; refuse pages from other sites (cross-site
/// WebSocket hijacking). Clients that send none (command-line tools) are let
/// in.
fn same_origin(upgrade: &UpgradeRequest) -> bool {
    match upgrade.origin() {
        None => true,
        Some(origin) => {
            let origin = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
            origin.eq_ignore_ascii_case(upgrade.host())
        }
    }
}

/// One chat session, on the connection's thread: announce, relay every line,
/// announce the leave.
fn chat(
    mut reader: rfc6455::blocking::Reader<MaybeTls>,
    writer: Writer<MaybeTls>,
    name: &str,
    peer: &str,
    room: &Room,
) {
    let online = room.names();
    let id = room.join(name, writer.clone());
    eprintln!("{peer}: {name} joined");
    let greeting = if online.is_empty() {
        format!("{NOTICE}welcome, {name}! nobody else is here yet")
    } else {
        format!("{NOTICE}welcome, {name}! online: {}", online.join(", "))
    };
    // If this fails the read below fails too, and the leave is handled there.
    let _ = writer.send_text(&greeting);
    room.broadcast(&format!("{NOTICE}{name} joined"));

    let ended = loop {
        match reader.read() {
            Ok(Message::Text(text)) => {
                let text = text.trim_end();
                if text.trim().is_empty() {
                    continue;
                }
                if text.len() > MAX_LINE {
                    let _ = writer.send_text(&format!("{NOTICE}message not sent: longer than {MAX_LINE} bytes"));
                    continue;
                }
                room.broadcast(&format!("{name}: {text}"));
            }
            Ok(Message::Binary(_)) => {
                let _ = writer.send_text(&format!("{NOTICE}binary messages are not relayed"));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(frame)) => {
                break match frame {
                    Some(frame) => format!("closed ({} {})", frame.code, frame.reason),
                    None => "closed".to_string(),
                };
            }
            Err(Error::Timeout(timeout)) => break format!("dropped: timed out: {timeout}"),
            Err(error) => break format!("ended: {error}"),
        }
    };
    room.leave(id);
    eprintln!("{peer}: {name} left, {ended}");
    room.broadcast(&format!("{NOTICE}{name} left"));
}

/// The `name` parameter of the query string: percent-decoded, control
/// characters dropped, trimmed, at most [`MAX_NAME`] characters, and
/// `anonymous` when empty or absent.
fn parse_name(query: Option<&str>) -> String {
    let raw = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("name="))
        .map(percent_decode)
        .unwrap_or_default();
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
    // Names may not pass for a server notice.
    let cleaned = cleaned.trim().trim_start_matches('*').trim();
    let name: String = cleaned.chars().take(MAX_NAME).collect();
    let name = name.trim_end();
    if name.is_empty() { "anonymous".to_string() } else { name.to_string() }
}

/// Decodes `%XX` escapes and `+` (a space, in a query string); malformed
/// escapes are kept as they are, and invalid UTF-8 becomes U+FFFD.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
