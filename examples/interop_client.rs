//! The client side of the interoperability checks (`interop/run.sh`): runs
//! the same checks as `interop/py_client.py` and `interop/node_client.js`
//! with [`rfc6455::blocking::ClientBuilder`] against an echo server written
//! with another library (Python `websockets`, Node `ws`).
//!
//! ```text
//! cargo run --release --example interop_client -- ws://127.0.0.1:PORT [CHECK...]
//! INTEROP_CA_FILE=ca.pem cargo run --release --features tls --example interop_client -- wss://127.0.0.1:PORT
//! ```
//!
//! For `wss://`, `INTEROP_CA_FILE` names the PEM file of the certificate to
//! trust (the test certificate); without it the default roots apply.
//!
//! The server echoes text as text and binary as binary, chooses the first
//! subprotocol offered, and serves the helper paths `/close/ID`, `/seen/ID`
//! and `/server-close` (see `interop/README.md`). Prints `PASS name` or
//! `FAIL name: detail` per check; exits with status 1 if any failed.
//!
//! Every connection offers permessage-deflate (the adapters' default); the
//! `deflate` check asserts it was negotiated and that a large compressible
//! message crosses the wire compressed in both directions (bytes counted on
//! the socket), and `no-deflate` offers nothing and asserts the server
//! answers without the extension.

// Examples live outside the sans-IO core: sockets and clocks are theirs.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rfc6455::blocking::{ClientBuilder, MaybeTls, Options, Transport, WebSocket};
use rfc6455::{CloseCode, HandshakeResponse, Message, PERMESSAGE_DEFLATE};

type Ws = WebSocket<MaybeTls>;
type CheckResult = Result<Option<String>, String>;

const TEXT_UTF8: &str = "ascii, 2-byte é ñ ß, 3-byte € 漢字 ✓, 4-byte 𝄞 😀 🦀, mixed: a€𝄞é";

fn options() -> Options {
    let mut options = Options::default();
    // Every read is bounded: a peer that stops answering fails the check.
    options.idle_timeout = Some(Duration::from_secs(30));
    with_ca_file(&mut options);
    options
}

/// Trusts the certificate in `INTEROP_CA_FILE`, when set, for wss:// URLs.
#[cfg(feature = "tls")]
fn with_ca_file(options: &mut Options) {
    use rfc6455::blocking::{ClientTls, TlsRoots};
    static TLS: std::sync::OnceLock<Option<ClientTls>> = std::sync::OnceLock::new();
    options.tls = TLS
        .get_or_init(|| {
            let file = std::env::var("INTEROP_CA_FILE").ok()?;
            let roots = TlsRoots::from_pem_file(&file).unwrap_or_else(|e| panic!("INTEROP_CA_FILE {file}: {e}"));
            Some(ClientTls::with_roots(roots).expect("TLS configuration"))
        })
        .clone();
}

#[cfg(not(feature = "tls"))]
fn with_ca_file(_: &mut Options) {}

/// The stream for `host` (`HOST:PORT`): TLS over it for `wss://`.
#[cfg(feature = "tls")]
fn secure(stream: TcpStream, url: &str, host: &str, options: &Options) -> Result<MaybeTls, String> {
    if !url.starts_with("wss://") {
        return Ok(MaybeTls::Plain(stream));
    }
    let tls = options.tls.clone().map_or_else(rfc6455::blocking::ClientTls::new, Ok).map_err(|e| e.to_string())?;
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    Ok(MaybeTls::Tls(tls.connect(stream, name, options).map_err(|e| format!("TLS {host}: {e}"))?))
}

#[cfg(not(feature = "tls"))]
fn secure(stream: TcpStream, url: &str, _: &str, _: &Options) -> Result<MaybeTls, String> {
    if url.starts_with("wss://") {
        return Err("wss:// needs the tls feature".into());
    }
    Ok(MaybeTls::Plain(stream))
}

fn connect(base: &str, path: &str, protocols: &[&str]) -> Result<(Ws, Option<String>), String> {
    let url = format!("{base}{path}");
    let mut builder = ClientBuilder::new(&url).map_err(|e| format!("{url}: {e}"))?.options(options());
    for protocol in protocols {
        builder = builder.protocol(*protocol);
    }
    let (ws, response) = builder.connect().map_err(|e| format!("connect {url}: {e}"))?;
    Ok((ws, response.protocol().map(str::to_owned)))
}

/// Bytes read from and written to one TCP connection, handshake included.
#[derive(Debug, Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

impl Counters {
    fn get(&self) -> (u64, u64) {
        (self.read.load(Ordering::Relaxed), self.written.load(Ordering::Relaxed))
    }
}

/// A stream that counts the bytes crossing it: what the wire carried (over
/// TLS, what went into and came out of it).
struct Counted {
    stream: MaybeTls,
    counters: Arc<Counters>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Transport for Counted {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_read_timeout(&self.stream, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_write_timeout(&self.stream, timeout)
    }

    fn shutdown(&self) -> io::Result<()> {
        Transport::shutdown(&self.stream)
    }
}

/// Connects to `base` + `/` offering permessage-deflate (`deflate`) or no
/// extension at all, over a [`Counted`] stream.
fn connect_counted(
    base: &str,
    deflate: bool,
) -> Result<(WebSocket<Counted>, HandshakeResponse, Arc<Counters>), String> {
    let url = format!("{base}/");
    let mut options = options();
    if !deflate {
        options.config.deflate = None;
    }
    let builder = ClientBuilder::new(&url).map_err(|e| format!("{url}: {e}"))?.options(options.clone());
    let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default().to_owned();
    let stream = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let stream = secure(stream, &url, &host, &options)?;
    let counters = Arc::new(Counters::default());
    let counted = Counted { stream, counters: Arc::clone(&counters) };
    let (ws, response) = builder.connect_on(counted).map_err(|e| format!("handshake {url}: {e}"))?;
    Ok((ws, response, counters))
}

/// About `len` bytes of JSON-like text (chat or dashboard records): compresses
/// five- to ten-fold.
fn json(len: usize) -> String {
    let mut out = String::with_capacity(len + 160);
    out.push('[');
    let mut i = 0u64;
    while out.len() < len {
        out.push_str(&format!(
            r#"{{"id":{i},"user":"user{}","room":"lobby","text":"message number {i} with some text","ts":{}}},"#,
            i % 97,
            1_700_000_000 + i * 7
        ));
        i += 1;
    }
    out.pop();
    out.push(']');
    out
}

/// Echoes `message` and returns the bytes (written, read) on the wire for it.
fn echo_counted(
    ws: &mut WebSocket<Counted>,
    counters: &Counters,
    message: Message,
    what: &str,
) -> Result<(u64, u64), String> {
    let (read0, written0) = counters.get();
    ws.send(&message).map_err(|e| format!("{what}: send failed: {e}"))?;
    let got = ws.read().map_err(|e| format!("{what}: read failed: {e}"))?;
    expect(&got, &message, what)?;
    let (read1, written1) = counters.get();
    Ok((written1 - written0, read1 - read0))
}

fn check_deflate(base: &str) -> CheckResult {
    let (mut ws, response, counters) = connect_counted(base, true)?;
    let header = response.headers().get_str("sec-websocket-extensions").unwrap_or("").to_owned();
    if !response.extensions().iter().any(|e| e.name == PERMESSAGE_DEFLATE) {
        return Err(format!("offered permessage-deflate: the response has extensions {header:?}"));
    }
    if !ws.connection().receiver().deflate_negotiated() {
        return Err(format!("response {header:?}, but the connection does not inflate"));
    }
    let text = json(256 << 10);
    let n = text.len() as u64;
    let (up, down) = echo_counted(&mut ws, &counters, Message::Text(text), "256 KiB JSON text")?;
    // Compressed, both ways: JSON shrinks far more than four-fold.
    if up * 4 > n || down * 4 > n {
        return Err(format!("{n} bytes of JSON took {up} bytes to send and {down} bytes to receive: not compressed"));
    }
    let (bup, bdown) =
        echo_counted(&mut ws, &counters, Message::Binary(json(64 << 10).into_bytes()), "64 KiB JSON binary")?;
    if bup * 4 > 64 << 10 || bdown * 4 > 64 << 10 {
        return Err(format!("64 KiB of binary JSON took {bup} / {bdown} bytes: not compressed"));
    }
    // Many small ones: contexts are reset or kept correctly between messages.
    for i in 0..20 {
        echo_counted(&mut ws, &counters, Message::Text(json(1024 + i)), &format!("1 KiB JSON #{i}"))?;
    }
    ws.close(CloseCode::NORMAL, "").map_err(|e| format!("close: {e}"))?;
    Ok(Some(format!("{header}; {n} B of JSON: {up} B sent, {down} B received")))
}

fn check_no_deflate(base: &str) -> CheckResult {
    let (mut ws, response, counters) = connect_counted(base, false)?;
    if let Some(header) = response.headers().get_str("sec-websocket-extensions") {
        return Err(format!("offered no extension: the response has Sec-WebSocket-Extensions {header:?}"));
    }
    if ws.connection().receiver().deflate_negotiated() {
        return Err("offered no extension, but the connection inflates".into());
    }
    let text = json(256 << 10);
    let n = text.len() as u64;
    let (up, down) = echo_counted(&mut ws, &counters, Message::Text(text), "256 KiB JSON text")?;
    if up < n || down < n {
        return Err(format!("{n} bytes of JSON took {up} bytes to send and {down} to receive without compression"));
    }
    ws.close(CloseCode::NORMAL, "").map_err(|e| format!("close: {e}"))?;
    Ok(Some(format!("no extension; {n} B of JSON: {up} B sent, {down} B received")))
}

fn describe(message: &Message) -> String {
    fn head(bytes: &[u8]) -> String {
        bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
    match message {
        Message::Text(text) => {
            format!("text {} bytes {:?}...", text.len(), text.chars().take(40).collect::<String>())
        }
        Message::Binary(data) => format!("binary {} bytes {}...", data.len(), head(data)),
        Message::Ping(data) => format!("ping {} bytes {}", data.len(), head(data)),
        Message::Pong(data) => format!("pong {} bytes {}", data.len(), head(data)),
        Message::Close(frame) => format!("close {frame:?}"),
    }
}

fn recv(ws: &mut Ws, what: &str) -> Result<Message, String> {
    ws.read().map_err(|e| format!("{what}: read failed: {e}"))
}

fn expect(got: &Message, want: &Message, what: &str) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: sent {}, received {}", describe(want), describe(got))) }
}

fn echo_one(ws: &mut Ws, message: Message, what: &str) -> Result<(), String> {
    ws.send(&message).map_err(|e| format!("{what}: send failed: {e}"))?;
    let got = recv(ws, what)?;
    expect(&got, &message, what)
}

fn close_normally(mut ws: Ws) -> Result<(), String> {
    ws.close(CloseCode::NORMAL, "").map_err(|e| format!("close: {e}"))
}

/// `n` bytes that are not a repetition of any short period.
fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| ((i.wrapping_mul(131) ^ (i >> 8)) as u8).wrapping_add(salt)).collect()
}

/// Valid UTF-8 exactly `n` bytes long, mixing 1- to 4-byte characters.
fn text_of(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let cycle = ['a', 'é', '€', '𝄞'];
    let mut k = 0;
    while out.len() < n {
        let ch = cycle[k % cycle.len()];
        if out.len() + ch.len_utf8() > n {
            out.push('z');
        } else {
            out.push(ch);
        }
        k += 1;
    }
    out
}

fn check_subprotocol(base: &str) -> CheckResult {
    let (mut ws, protocol) = connect(base, "/", &["chat", "superchat"])?;
    if protocol.as_deref() != Some("chat") {
        return Err(format!("offered chat, superchat: negotiated {protocol:?}, expected \"chat\""));
    }
    echo_one(&mut ws, Message::Text("after subprotocol".into()), "echo")?;
    close_normally(ws)?;
    let (ws, protocol) = connect(base, "/", &[])?;
    if protocol.is_some() {
        return Err(format!("offered none: negotiated {protocol:?}"));
    }
    close_normally(ws)?;
    Ok(None)
}

fn check_text_utf8(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    echo_one(&mut ws, Message::Text(TEXT_UTF8.into()), "text")?;
    for ch in ['é', '€', '𝄞', '\u{80}', '\u{7ff}', '\u{800}', '\u{ffff}', '\u{10000}', '\u{10ffff}'] {
        echo_one(&mut ws, Message::Text(ch.to_string().repeat(3)), &format!("text U+{:04X}", ch as u32))?;
    }
    close_normally(ws)?;
    Ok(None)
}

fn check_binary_256(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    echo_one(&mut ws, Message::Binary((0..=255).collect()), "binary 0..255")?;
    echo_one(&mut ws, Message::Binary((0..=255u8).rev().cycle().take(1024).collect()), "binary 255..0 x4")?;
    close_normally(ws)?;
    Ok(None)
}

fn check_lengths(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    for n in [0, 1, 125, 126, 127, 65535, 65536, 65537] {
        echo_one(&mut ws, Message::Binary(pattern(n, n as u8)), &format!("binary length {n}"))?;
        echo_one(&mut ws, Message::Text(text_of(n)), &format!("text length {n}"))?;
    }
    close_normally(ws)?;
    Ok(None)
}

fn check_large(base: &str, n: usize) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    echo_one(&mut ws, Message::Binary(pattern(n, 7)), &format!("binary {n} bytes"))?;
    if n <= 1 << 20 {
        echo_one(&mut ws, Message::Text(text_of(n)), &format!("text {n} bytes"))?;
    }
    close_normally(ws)?;
    Ok(None)
}

/// Reads until both the pong for `ping` and the echo of `message` arrived.
fn expect_pong_and_echo(ws: &mut Ws, ping: &[u8], message: &Message, what: &str) -> Result<(), String> {
    let mut pong = false;
    let mut echoed = false;
    for _ in 0..4 {
        if pong && echoed {
            break;
        }
        match recv(ws, what)? {
            Message::Pong(data) if !pong && data == ping => pong = true,
            got if !echoed => {
                expect(&got, message, what)?;
                echoed = true;
            }
            got => return Err(format!("{what}: unexpected {}", describe(&got))),
        }
    }
    if pong && echoed { Ok(()) } else { Err(format!("{what}: pong {pong}, echo {echoed}")) }
}

fn check_fragmented_ping(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    let send = |r: Result<(), rfc6455::blocking::Error>| r.map_err(|e| format!("send fragment: {e}"));
    // Text, with a 4-byte character split across fragments.
    let text = "fragménted 𝄞!";
    let bytes = text.as_bytes();
    let split = text.find('𝄞').unwrap() + 2;
    send(ws.send_fragment(Some(true), &bytes[..4], false))?;
    send(ws.ping(b"mid-text"))?;
    send(ws.send_fragment(None, &bytes[4..split], false))?;
    send(ws.send_fragment(None, &bytes[split..], true))?;
    expect_pong_and_echo(&mut ws, b"mid-text", &Message::Text(text.into()), "fragmented text")?;
    // Binary, with an empty fragment.
    let data: Vec<u8> = (0..=255).collect();
    send(ws.send_fragment(Some(false), &data[..100], false))?;
    send(ws.ping(b"mid-binary"))?;
    send(ws.send_fragment(None, &data[100..200], false))?;
    send(ws.send_fragment(None, &[], false))?;
    send(ws.send_fragment(None, &data[200..], true))?;
    expect_pong_and_echo(&mut ws, b"mid-binary", &Message::Binary(data), "fragmented binary")?;
    close_normally(ws)?;
    Ok(None)
}

fn check_pipelined(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    let sent: Vec<Message> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                Message::Text(format!("message {i} €"))
            } else {
                Message::Binary(pattern(i * 10, i as u8))
            }
        })
        .collect();
    for message in &sent {
        ws.send(message).map_err(|e| format!("send: {e}"))?;
    }
    for (i, message) in sent.iter().enumerate() {
        let what = format!("pipelined #{i}");
        let got = recv(&mut ws, &what)?;
        expect(&got, message, &what)?;
    }
    close_normally(ws)?;
    Ok(None)
}

fn check_ping_pong(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/", &[])?;
    let payloads: [Vec<u8>; 4] = [vec![], b"hello".to_vec(), (0..125).collect(), "pïng €".as_bytes().to_vec()];
    for payload in payloads {
        ws.ping(&payload).map_err(|e| format!("ping: {e}"))?;
        let got = recv(&mut ws, "pong")?;
        expect(&got, &Message::Pong(payload), "ping")?;
    }
    echo_one(&mut ws, Message::Text("still open".into()), "echo after pings")?;
    close_normally(ws)?;
    Ok(None)
}

fn unique_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("rust-{}-{nanos}", std::process::id())
}

fn check_close_4000(base: &str) -> CheckResult {
    let id = unique_id();
    let (mut ws, _) = connect(base, &format!("/close/{id}"), &[])?;
    echo_one(&mut ws, Message::Text("before close".into()), "echo")?;
    // Send our close, then read the peer's answer ourselves so we can see it
    // (`close` would discard it).
    ws.send(&Message::Close(Some(rfc6455::OwnedCloseFrame { code: CloseCode::from(4000), reason: "bye".into() })))
        .map_err(|e| format!("close: {e}"))?;
    let answer = recv(&mut ws, "close answer")?;
    let echoed = match &answer {
        Message::Close(Some(frame)) if frame.code == CloseCode::from(4000) => format!("4000 {:?}", frame.reason),
        other => return Err(format!("closed with 4000 \"bye\": peer answered {}", describe(other))),
    };
    let (mut report, _) = connect(base, &format!("/seen/{id}"), &[])?;
    let seen = recv(&mut report, "report")?;
    if seen != Message::Text("4000 bye".into()) {
        return Err(format!("closed with 4000 \"bye\": the server saw {}", describe(&seen)));
    }
    let _ = recv(&mut report, "report close");
    Ok(Some(format!("echoed close: {echoed}")))
}

fn check_server_close(base: &str) -> CheckResult {
    let (mut ws, _) = connect(base, "/server-close", &[])?;
    match recv(&mut ws, "server close")? {
        Message::Close(Some(frame)) if frame.code == CloseCode::from(4001) && frame.reason == "server bye" => Ok(None),
        other => Err(format!("expected close 4001 \"server bye\", received {}", describe(&other))),
    }
}

type Check = fn(&str) -> CheckResult;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next() else {
        eprintln!("usage: interop_client ws://HOST:PORT [CHECK...]");
        return ExitCode::from(2);
    };
    let base = base.trim_end_matches('/').to_owned();
    let only: Vec<String> = args.collect();
    let checks: [(&str, Check); 13] = [
        ("subprotocol", check_subprotocol),
        ("text-utf8", check_text_utf8),
        ("binary-256", check_binary_256),
        ("length-boundaries", check_lengths),
        ("large-1MiB", |base| check_large(base, 1 << 20)),
        ("large-16MiB", |base| check_large(base, 16 << 20)),
        ("fragmented-ping", check_fragmented_ping),
        ("pipelined-100", check_pipelined),
        ("ping-pong", check_ping_pong),
        ("close-4000", check_close_4000),
        ("server-close-4001", check_server_close),
        ("deflate", check_deflate),
        ("no-deflate", check_no_deflate),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        match check(&base) {
            Ok(None) => println!("PASS {name}"),
            Ok(Some(note)) => println!("PASS {name} ({note})"),
            Err(detail) => {
                failed += 1;
                println!("FAIL {name}: {detail}");
            }
        }
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
