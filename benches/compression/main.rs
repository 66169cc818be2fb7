//! permessage-deflate benchmark (issue 7): echo throughput of compressible
//! JSON-like messages with and without compression, wire bytes per message,
//! and server memory per connection with compression negotiated; our
//! `echo_server` example and peers that support the extension (Node `ws`,
//! Python `websockets`), one after another in the same run, all driven by the
//! same load generator written with `rfc6455::blocking`.
//!
//! ```text
//! cargo bench --bench compression                 # 2.5 s per case
//! cargo bench --bench compression -- --quick      # 1 s per case, to check the harness
//! cargo bench --bench compression -- --help
//! ```
//!
//! The load generator is the client, so it decides what is offered: nothing
//! (`off`), the adapters' default offer (`deflate`: no context takeover
//! either way) or an offer that lets both sides keep their compression
//! context (`takeover`). Each server then applies its own policy, and the
//! table shows what was negotiated.

// A benchmark lives outside the sans-IO core: sockets, threads and clocks.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
mod common;

use common::{Server, cpu_seconds, flag_number, flag_value, manifest_dir, our_echo_server, size_label, taskset_works};
use rfc6455::blocking::{ClientBuilder, Options as WsOptions, Transport, WebSocket};
use rfc6455::{CloseCode, DeflateConfig, Message};

const HELP: &str = "\
permessage-deflate echo benchmark

cargo bench --bench compression -- [OPTIONS]

  --quick              1 s per case (after 0.2 s of warm-up): checks the harness, figures are rough
  --duration SECS      measured time per throughput case (default 2.5)
  --servers LIST       comma-separated, from: rfc6455,node,python (default: all)
  --modes LIST         client offers, from: off,deflate,takeover (default: all)
  --sizes LIST         message sizes in bytes (default 1024,16384)
  --connections N      connections per throughput case (default 4)
  --window N           messages in flight per connection, at most (default 32)
  --memory N           connections for the memory figure (default 200; 0 skips)
  --no-pin             do not pin the server and the load generator to cores 0 and 1
  --no-build           do not run `cargo build --release --example echo_server` first
";

const ALL_SERVERS: [&str; 3] = ["rfc6455", "node", "python"];
const ALL_MODES: [Mode; 3] = [Mode::Off, Mode::Deflate, Mode::Takeover];
/// Distinct messages per size, sent round-robin (so that context takeover
/// cannot just point back at an identical previous message).
const POOL: usize = 64;
/// The size of the message sent on each connection of the memory figure.
const MEMORY_MESSAGE: usize = 16 << 10;
/// The last message of each connection in a throughput case.
const END: &str = "end";

/// Node `ws` echo server: permessage-deflate on (the server's default is off),
/// threshold 64 bytes like ours, every other setting ws's default (zlib
/// level 6 (Z_DEFAULT_COMPRESSION), memLevel 8, 15-bit windows, context
/// takeover kept on both sides unless the client asks otherwise).
const NODE_ECHO: &str = r#"
const { WebSocketServer } = require("ws");
const [host, port] = (process.argv[1] || "127.0.0.1:0").split(":");
const wss = new WebSocketServer({ host, port: Number(port), maxPayload: 64 << 20, perMessageDeflate: { threshold: 64 } });
wss.on("listening", () => console.error(`node ws echo listening on ws://127.0.0.1:${wss.address().port}`));
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => {});
});
"#;

/// Python `websockets` echo server with its default compression settings:
/// server_max_window_bits=12, client_max_window_bits=12, memLevel 5, level 6
/// (zlib's default), no threshold, context kept unless the client asks.
const PYTHON_ECHO: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass
async def main():
    host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0").split(":")
    async with serve(echo, host, int(port), max_size=None, ping_interval=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"python websockets echo listening on ws://127.0.0.1:{bound}", file=sys.stderr, flush=True)
        await server.serve_forever()
asyncio.run(main())
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No offer.
    Off,
    /// `DeflateConfig::default()`: no context takeover either way.
    Deflate,
    /// Context takeover allowed both ways.
    Takeover,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Deflate => "deflate",
            Self::Takeover => "takeover",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        ALL_MODES.into_iter().find(|m| m.name() == s)
    }

    fn client_options(self) -> WsOptions {
        let mut o = WsOptions::default();
        o.idle_timeout = Some(Duration::from_secs(10));
        o.config.max_message_size = 64 << 20;
        match self {
            Self::Off => o.config.deflate = None,
            Self::Deflate => o.config.deflate = Some(DeflateConfig::default()),
            Self::Takeover => {
                let mut d = DeflateConfig::default();
                d.own_context_takeover = true;
                d.peer_context_takeover = true;
                o.config.deflate = Some(d);
            }
        }
        o
    }
}

#[derive(Clone, Debug)]
struct Options {
    warm_up: Duration,
    duration: Duration,
    servers: Vec<String>,
    modes: Vec<Mode>,
    sizes: Vec<usize>,
    connections: usize,
    window: usize,
    memory: usize,
    pin: bool,
    build: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            warm_up: Duration::from_millis(500),
            duration: Duration::from_millis(2500),
            servers: ALL_SERVERS.iter().map(|s| s.to_string()).collect(),
            modes: ALL_MODES.to_vec(),
            sizes: vec![1024, 16 << 10],
            connections: 4,
            window: 32,
            memory: 200,
            pin: true,
            build: true,
        }
    }
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--quick" => {
                o.warm_up = Duration::from_millis(200);
                o.duration = Duration::from_millis(1000);
            }
            "--duration" => o.duration = Duration::from_secs_f64(flag_number(flag_value(&mut it, arg)?, arg)?),
            "--servers" => {
                o.servers = flag_value(&mut it, arg)?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.servers.iter().find(|s| !ALL_SERVERS.contains(&s.as_str())) {
                    return Err(format!("unknown server {bad:?}; known: {}", ALL_SERVERS.join(",")));
                }
            }
            "--modes" => {
                o.modes = flag_value(&mut it, arg)?
                    .split(',')
                    .map(|s| Mode::parse(s).ok_or_else(|| format!("unknown mode {s:?}; known: off,deflate,takeover")))
                    .collect::<Result<_, _>>()?;
            }
            "--sizes" => {
                o.sizes =
                    flag_value(&mut it, arg)?.split(',').map(|s| flag_number(s, arg)).collect::<Result<_, _>>()?;
            }
            "--connections" => o.connections = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--window" => o.window = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--memory" => o.memory = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--no-pin" => o.pin = false,
            "--no-build" => o.build = false,
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other if other.starts_with("--") => eprintln!("ignoring unknown flag {other}"),
            _ => {}
        }
    }
    if o.connections == 0 || o.window == 0 {
        return Err("--connections and --window must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs bench targets without `--bench`.
    if !args.iter().any(|a| a == "--bench") {
        println!("compression: a benchmark; run it with `cargo bench --bench compression` (nothing to test)");
        return;
    }
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("compression: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- payloads

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A JSON array of chat / dashboard records of exactly `len` bytes (padding
/// in the last string), different for each `seed`.
fn json(len: usize, seed: u64) -> String {
    const USERS: [&str; 12] =
        ["ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances", "alan", "radia", "edsger", "hedy"];
    const ROOMS: [&str; 5] = ["lobby", "ops", "dashboard", "support", "random"];
    const WORDS: [&str; 24] = [
        "the", "build", "is", "green", "again", "deploy", "latency", "p99", "looks", "fine", "after", "restart",
        "queue", "depth", "alert", "cleared", "who", "owns", "this", "ticket", "thanks", "merged", "rollback", "ok",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed + 1).wrapping_mul(0x1000_0000_01b3));
    let mut out = String::with_capacity(len + 256);
    out.push('[');
    let mut id = seed * 1000;
    loop {
        let mut text = String::new();
        for w in 0..(3 + rng.below(8)) {
            if w > 0 {
                text.push(' ');
            }
            text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        let record = format!(
            r#"{{"id":{id},"type":"message","user":"{}","room":"{}","ts":{},"text":"{text}","cpu":{}.{},"online":{}}}"#,
            USERS[rng.below(USERS.len() as u64) as usize],
            ROOMS[rng.below(ROOMS.len() as u64) as usize],
            1_700_000_000_000 + id * 1337 + rng.below(1000),
            rng.below(100),
            rng.below(100),
            rng.below(2) == 1,
        );
        // `[` + records + `]`, with room for one more record's separator.
        if out.len() + 1 + record.len() + 1 > len {
            break;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&record);
        id += 1;
    }
    // Pad to the exact length with one last record holding a string.
    let room = len.saturating_sub(out.len() + 1);
    let sep = usize::from(out.len() > 1);
    let pad_overhead = sep + r#"{"p":""}"#.len();
    if room >= pad_overhead {
        if sep == 1 {
            out.push(',');
        }
        out.push_str(r#"{"p":""#);
        out.extend(std::iter::repeat_n('.', room - pad_overhead));
        out.push_str(r#""}"#);
    } else {
        out.extend(std::iter::repeat_n(' ', room));
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------- wire counting

/// Bytes read and written by the load generator, handshakes included.
#[derive(Debug, Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// A TCP stream that counts what crosses it.
struct Counted {
    stream: TcpStream,
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
        self.stream.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }

    fn shutdown(&self) -> io::Result<()> {
        Transport::shutdown(&self.stream)
    }

    fn try_clone(&self) -> io::Result<Self> {
        Ok(Self { stream: self.stream.try_clone()?, counters: Arc::clone(&self.counters) })
    }
}

/// Connects with `mode`'s offer; returns the socket and the negotiated
/// `Sec-WebSocket-Extensions` (empty for none).
fn connect(addr: SocketAddr, mode: Mode, counters: &Arc<Counters>) -> Result<(WebSocket<Counted>, String), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let counted = Counted { stream, counters: Arc::clone(counters) };
    let (ws, response) = ClientBuilder::new(&format!("ws://{addr}/"))
        .map_err(|e| e.to_string())?
        .options(mode.client_options())
        .connect_on(counted)
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    let negotiated =
        response.extensions().iter().map(rfc6455::Extension::to_header_value).collect::<Vec<_>>().join(", ");
    let inflating = ws.connection().receiver().deflate_negotiated();
    if inflating != (mode != Mode::Off) {
        return Err(format!("offer {}: negotiated {negotiated:?}, deflate in force: {inflating}", mode.name()));
    }
    Ok((ws, negotiated))
}

// ---------------------------------------------------------------- load

/// Credits for messages in flight on one connection.
struct Window {
    free: Mutex<usize>,
    changed: Condvar,
}

impl Window {
    /// Takes a credit; `false` if none came within `wait`.
    fn acquire(&self, wait: Duration) -> bool {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut free, _) =
            self.changed.wait_timeout_while(free, wait, |f| *f == 0).unwrap_or_else(PoisonError::into_inner);
        if *free == 0 {
            return false;
        }
        *free -= 1;
        true
    }

    fn release(&self) {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.changed.notify_one();
    }
}

/// What one throughput case measured.
#[derive(Clone, Debug, Default)]
struct Throughput {
    messages_per_sec: f64,
    /// Wire bytes per message client → server (compressed by our client).
    up: f64,
    /// Wire bytes per message server → client (compressed by the server).
    down: f64,
    negotiated: String,
    /// Server process CPU time per echoed message, µs (all its threads).
    server_cpu_us: f64,
    /// Load generator CPU time per echoed message, µs.
    client_cpu_us: f64,
}

fn throughput(server: &Server, mode: Mode, size: usize, o: &Options) -> Result<Throughput, String> {
    let addr = server.addr;
    let pool: Arc<Vec<String>> = Arc::new((0..POOL as u64).map(|k| json(size, k)).collect());
    let counters = Arc::new(Counters::default());
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut negotiated = String::new();
    let mut threads = Vec::new();
    for c in 0..o.connections {
        let (ws, ext) = connect(addr, mode, &counters)?;
        negotiated = ext;
        let (mut reader, writer) = ws.split().map_err(|e| format!("split: {e}"))?;
        let window = Arc::new(Window { free: Mutex::new(o.window), changed: Condvar::new() });
        let w = {
            let (pool, sent, stop, window, writer) =
                (Arc::clone(&pool), Arc::clone(&sent), Arc::clone(&stop), Arc::clone(&window), writer.clone());
            thread::spawn(move || -> Result<(), String> {
                let mut i = c * 7;
                while !stop.load(Ordering::Relaxed) {
                    if !window.acquire(Duration::from_millis(50)) {
                        continue;
                    }
                    writer.send_text(&pool[i % POOL]).map_err(|e| format!("send: {e}"))?;
                    i += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // The reader stops at this one's echo.
                writer.send_text(END).map_err(|e| format!("send: {e}"))
            })
        };
        let r = {
            let (pool, received) = (Arc::clone(&pool), Arc::clone(&received));
            thread::spawn(move || -> Result<(), String> {
                let mut j = c * 7;
                loop {
                    match reader.read().map_err(|e| format!("read: {e}"))? {
                        Message::Text(text) if text == pool[j % POOL] => {}
                        Message::Text(text) if text == END => break,
                        other => return Err(format!("echo #{j}: unexpected {} bytes", other.to_owned_len())),
                    }
                    j += 1;
                    received.fetch_add(1, Ordering::Relaxed);
                    window.release();
                }
                writer.close(CloseCode::NORMAL, "").map_err(|e| format!("close: {e}"))?;
                // Up to the close timeout for the server's close frame.
                while reader.read().is_ok() {}
                Ok(())
            })
        };
        threads.push(w);
        threads.push(r);
    }
    thread::sleep(o.warm_up);
    let snapshot = || {
        (
            Instant::now(),
            sent.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
            counters.written.load(Ordering::Relaxed),
            counters.read.load(Ordering::Relaxed),
        )
    };
    let (t0, s0, r0, w0, rd0) = snapshot();
    let (server0, client0) = (cpu_seconds(server.pid()), cpu_seconds(std::process::id()));
    thread::sleep(o.duration);
    let (t1, s1, r1, w1, rd1) = snapshot();
    let (server1, client1) = (cpu_seconds(server.pid()), cpu_seconds(std::process::id()));
    stop.store(true, Ordering::SeqCst);
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a load thread panicked".into()),
        }
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let messages = r1 - r0;
    if messages == 0 || s1 == s0 {
        return Err("no message echoed in the measured time".into());
    }
    Ok(Throughput {
        messages_per_sec: messages as f64 / (t1 - t0).as_secs_f64(),
        up: (w1 - w0) as f64 / (s1 - s0) as f64,
        down: (rd1 - rd0) as f64 / messages as f64,
        negotiated,
        server_cpu_us: (server1? - server0?) * 1e6 / messages as f64,
        client_cpu_us: (client1? - client0?) * 1e6 / messages as f64,
    })
}

trait OwnedLen {
    fn to_owned_len(&self) -> usize;
}

impl OwnedLen for Message {
    fn to_owned_len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b.len(),
            Self::Close(_) => 0,
        }
    }
}

/// Opens `n` connections with `mode`'s offer, echoes one 16 KiB JSON message
/// on each (so compression contexts exist if the server keeps them) and
/// returns the server's RSS growth per connection, the connections still open.
fn memory(server: &Server, mode: Mode, n: usize) -> Result<Memory, String> {
    let counters = Arc::new(Counters::default());
    let pool: Vec<String> = (0..POOL as u64).map(|k| json(MEMORY_MESSAGE, k)).collect();
    thread::sleep(Duration::from_millis(300));
    let before = server.rss_bytes()?;
    let mut open = Vec::with_capacity(n);
    let mut negotiated = String::new();
    for i in 0..n {
        let (mut ws, ext) = connect(server.addr, mode, &counters)?;
        negotiated = ext;
        let message = &pool[i % POOL];
        ws.send_text(message).map_err(|e| format!("send: {e}"))?;
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Text(t) if t == *message => {}
            other => return Err(format!("memory echo #{i}: unexpected {} bytes", other.to_owned_len())),
        }
        open.push(ws);
    }
    thread::sleep(Duration::from_millis(700));
    let after = server.rss_bytes()?;
    for mut ws in open {
        let _ = ws.close(CloseCode::NORMAL, "");
    }
    Ok((after.saturating_sub(before) as f64 / n as f64, negotiated))
}

// ---------------------------------------------------------------- servers

/// How to start each server, and the settings it runs with.
struct ServerSpec {
    name: String,
    command: Vec<String>,
    envs: Vec<(String, String)>,
    settings: String,
}

fn server_spec(name: &str, exe: &Path, build: bool) -> Result<ServerSpec, String> {
    match name {
        "rfc6455" => Ok(ServerSpec {
            name: name.into(),
            command: vec![our_echo_server(exe, build)?.display().to_string()],
            envs: vec![],
            settings: "examples/echo_server, blocking::Options::default(): DeflateConfig::default() = level 6, \
                       threshold 64 B, 15-bit windows, no context takeover on either side (it answers \
                       server_no_context_takeover and client_no_context_takeover to every offer)"
                .into(),
        }),
        "node" => {
            let modules = node_modules()?;
            let version = Command::new("node").arg("--version").output().map_err(|e| format!("node: {e}"))?;
            let ws_version = package_version(&modules.join("ws").join("package.json"));
            Ok(ServerSpec {
                name: name.into(),
                command: vec!["node".into(), "-e".into(), NODE_ECHO.into()],
                envs: vec![("NODE_PATH".into(), modules.display().to_string())],
                settings: format!(
                    "Node {} ws {ws_version}, perMessageDeflate {{ threshold: 64 }}, otherwise ws defaults: zlib \
                     level 6, memLevel 8, 15-bit windows, keeps its contexts unless the client offers \
                     *_no_context_takeover",
                    String::from_utf8_lossy(&version.stdout).trim()
                ),
            })
        }
        "python" => {
            let python = python_venv()?;
            let version = Command::new(&python)
                .args(["-c", "import sys, websockets; print(sys.version.split()[0], websockets.__version__)"])
                .output()
                .map_err(|e| format!("python: {e}"))?;
            let version = String::from_utf8_lossy(&version.stdout).trim().replacen(' ', " websockets ", 1);
            Ok(ServerSpec {
                name: name.into(),
                command: vec![python.display().to_string(), "-c".into(), PYTHON_ECHO.into()],
                envs: vec![],
                settings: format!(
                    "Python {version} (asyncio), compression defaults: server_max_window_bits=12, \
                     client_max_window_bits=12, memLevel 5, level 6, no threshold, keeps its contexts unless the \
                     client offers *_no_context_takeover"
                ),
            })
        }
        other => Err(format!("unknown server {other}")),
    }
}

fn package_version(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split("\"version\"").nth(1).and_then(|rest| rest.split('"').nth(1)).map_or_else(|| "?".into(), str::to_string)
}

/// `interop/node_modules`, installed with `npm ci` if missing.
fn node_modules() -> Result<PathBuf, String> {
    let dir = manifest_dir().join("interop");
    let modules = dir.join("node_modules");
    if !modules.join("ws").join("package.json").exists() {
        eprintln!("interop/node_modules/ws missing: running `npm ci` in interop/...");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !status.success() {
            return Err("`npm ci` in interop/ failed".into());
        }
    }
    Ok(modules)
}

/// `target/interop/venv/bin/python` with `websockets`, created as
/// `interop/run.sh` does if missing.
fn python_venv() -> Result<PathBuf, String> {
    let venv = manifest_dir().join("target").join("interop").join("venv");
    let python = venv.join("bin").join("python");
    let ok = |p: &Path| {
        Command::new(p).args(["-c", "import websockets"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if python.exists() && ok(&python) {
        return Ok(python);
    }
    eprintln!("creating {} (websockets from interop/requirements.txt)...", venv.display());
    let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("python3 -m venv failed".into());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", "-r"])
        .arg(manifest_dir().join("interop").join("requirements.txt"))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() || !ok(&python) {
        return Err("installing websockets into the venv failed".into());
    }
    Ok(python)
}

// ---------------------------------------------------------------- run and report

/// Bytes per connection, and the negotiated extension.
type Memory = (f64, String);

#[derive(Default)]
struct Row {
    /// (mode, size) -> throughput
    cases: Vec<((Mode, usize), Result<Throughput, String>)>,
    /// mode -> (bytes per connection, negotiated)
    memory: Vec<(Mode, Result<Memory, String>)>,
}

impl Row {
    fn case(&self, mode: Mode, size: usize) -> Option<&Throughput> {
        self.cases.iter().find(|(k, _)| *k == (mode, size)).and_then(|(_, r)| r.as_ref().ok())
    }

    fn memory(&self, mode: Mode) -> Option<f64> {
        self.memory.iter().find(|(m, _)| *m == mode).and_then(|(_, r)| r.as_ref().ok().map(|(b, _)| *b))
    }
}

fn run(o: &Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let pin = o.pin && taskset_works() && cores >= 2;
    if pin {
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("note: could not pin the load generator to core 1");
        }
    }
    let specs: Vec<ServerSpec> = o.servers.iter().map(|s| server_spec(s, &exe, o.build)).collect::<Result<_, _>>()?;

    println!("# permessage-deflate echo benchmark");
    println!();
    println!(
        "JSON-like text messages ({POOL} distinct ones per size, sent round-robin, every echo compared); {} \
         connection(s), up to {} messages in flight each; {} s measured per case after {} s of warm-up; \
         pinned (server core 0, load generator core 1): {}",
        o.connections,
        o.window,
        o.duration.as_secs_f64(),
        o.warm_up.as_secs_f64(),
        if pin { "yes" } else { "no" }
    );
    for &size in &o.sizes {
        let sample = json(size, 0);
        println!("{} message, the start of one: {}…", size_label(size), &sample[..sample.len().min(120)]);
    }
    println!();
    println!("client offers (the load generator, rfc6455::blocking::ClientBuilder):");
    println!("- off: config.deflate = None (no Sec-WebSocket-Extensions)");
    println!(
        "- deflate: DeflateConfig::default() (the adapters' default): \"permessage-deflate; \
         client_no_context_takeover; server_no_context_takeover\""
    );
    println!(
        "- takeover: own_context_takeover = peer_context_takeover = true: \"permessage-deflate\" \
         (client_max_window_bits where supported), the server may keep its context"
    );
    println!();
    println!("servers:");
    for spec in &specs {
        println!("- {}: {}", spec.name, spec.settings);
    }
    println!();

    let mut rows: Vec<(String, Row)> = Vec::new();
    for spec in &specs {
        let mut row = Row::default();
        {
            let server = Server::start(&spec.command, &spec.envs, pin)?;
            for &mode in &o.modes {
                for &size in &o.sizes {
                    let result = throughput(&server, mode, size, o);
                    match &result {
                        Ok(t) => eprintln!(
                            "   {:<8} {:<9} {:>7} {:>9.0} msg/s  up {:>7.0} B/msg  down {:>7.0} B/msg  \
                             server {:>6.1} µs/msg  client {:>6.1} µs/msg  [{}]",
                            spec.name,
                            mode.name(),
                            size_label(size),
                            t.messages_per_sec,
                            t.up,
                            t.down,
                            t.server_cpu_us,
                            t.client_cpu_us,
                            if t.negotiated.is_empty() { "no extension" } else { &t.negotiated }
                        ),
                        Err(e) => {
                            eprintln!("   {:<8} {:<9} {:>7} FAILED: {e}", spec.name, mode.name(), size_label(size))
                        }
                    }
                    row.cases.push(((mode, size), result));
                }
            }
        }
        if o.memory > 0 {
            for &mode in &o.modes {
                // A fresh process per figure: nothing left from earlier cases.
                let result =
                    Server::start(&spec.command, &spec.envs, pin).and_then(|server| memory(&server, mode, o.memory));
                match &result {
                    Ok((bytes, negotiated)) => eprintln!(
                        "   {:<8} {:<9} memory {:>9.0} B per connection ({} connections) [{}]",
                        spec.name,
                        mode.name(),
                        bytes,
                        o.memory,
                        if negotiated.is_empty() { "no extension" } else { negotiated }
                    ),
                    Err(e) => eprintln!("   {:<8} {:<9} memory FAILED: {e}", spec.name, mode.name()),
                }
                row.memory.push((mode, result));
            }
        }
        rows.push((spec.name.clone(), row));
    }
    print_tables(o, &rows);
    Ok(())
}

fn rate(r: f64) -> String {
    if r >= 1e3 { format!("{:.1}k", r / 1e3) } else { format!("{r:.0}") }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

fn print_tables(o: &Options, rows: &[(String, Row)]) {
    println!("## Echo throughput and wire bytes per message");
    println!();
    println!(
        "msg/s: messages echoed per second (all connections). up: bytes on the wire per message from the load \
         generator (our client's compressor, frame header and mask included); down: per echoed message from the \
         server (the server's compressor). ratio: size / down."
    );
    println!();
    println!(
        "negotiated, abbreviated: pmd = permessage-deflate, s_/c_ = server_/client_, nct = no_context_takeover, \
         mwb = max_window_bits. server/client µs: CPU time (user + system, all threads) of the server process / \
         the load generator per echoed message."
    );
    println!();
    println!(
        "| server | offer | negotiated | size | msg/s | up B/msg | down B/msg | ratio | msg/s vs off | server µs/msg \
         | client µs/msg |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, row) in rows {
        for &size in &o.sizes {
            for &mode in &o.modes {
                let Some((_, result)) = row.cases.iter().find(|(k, _)| *k == (mode, size)) else { continue };
                match result {
                    Ok(t) => println!(
                        "| {name} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1}× | {} | {:.1} | {:.1} |",
                        mode.name(),
                        abbreviate(&t.negotiated),
                        size_label(size),
                        rate(t.messages_per_sec),
                        t.up,
                        t.down,
                        size as f64 / t.down,
                        ratio(Some(t.messages_per_sec), row.case(Mode::Off, size).map(|t| t.messages_per_sec)),
                        t.server_cpu_us,
                        t.client_cpu_us,
                    ),
                    Err(e) => {
                        println!("| {name} | {} | – | {} | failed: {e} | | | | | | |", mode.name(), size_label(size))
                    }
                }
            }
        }
    }
    println!();
    if let Some((_, ours)) = rows.iter().find(|(n, _)| n == "rfc6455") {
        let peers: Vec<&(String, Row)> = rows.iter().filter(|(n, _)| n != "rfc6455").collect();
        if !peers.is_empty() {
            println!("### rfc6455 relative to each peer (msg/s, server CPU per message, down bytes per message)");
            println!();
            let mut header = String::from("| offer | size |");
            let mut rule = String::from("|---|---|");
            for (peer, _) in &peers {
                header.push_str(&format!(" msg/s vs {peer} | server µs/msg vs {peer} | down B/msg vs {peer} |"));
                rule.push_str("---:|---:|---:|");
            }
            println!("{header}");
            println!("{rule}");
            for &size in &o.sizes {
                for &mode in &o.modes {
                    let mut line = format!("| {} | {} |", mode.name(), size_label(size));
                    let us = ours.case(mode, size);
                    for (_, peer) in &peers {
                        let them = peer.case(mode, size);
                        line.push_str(&format!(
                            " {} | {} | {} |",
                            ratio(us.map(|t| t.messages_per_sec), them.map(|t| t.messages_per_sec)),
                            ratio(us.map(|t| t.server_cpu_us), them.map(|t| t.server_cpu_us)),
                            ratio(us.map(|t| t.down), them.map(|t| t.down))
                        ));
                    }
                    println!("{line}");
                }
            }
            println!();
        }
    }
    if o.memory > 0 {
        println!(
            "## Server memory per connection ({} connections, one {} JSON message echoed on each, then held open)",
            o.memory,
            size_label(MEMORY_MESSAGE)
        );
        println!();
        println!("VmRSS growth of a fresh server process / connections. \"over off\": the part due to compression.");
        println!();
        let mut header = String::from("| server |");
        let mut rule = String::from("|---|");
        for &mode in &o.modes {
            header.push_str(&format!(" {} |", mode.name()));
            rule.push_str("---:|");
            if mode != Mode::Off && o.modes.contains(&Mode::Off) {
                header.push_str(&format!(" {} over off |", mode.name()));
                rule.push_str("---:|");
            }
        }
        println!("{header}");
        println!("{rule}");
        for (name, row) in rows {
            let mut line = format!("| {name} |");
            let off = row.memory(Mode::Off);
            for &mode in &o.modes {
                let m = row.memory(mode);
                line.push_str(&format!(" {} |", m.map_or("–".into(), bytes)));
                if mode != Mode::Off && o.modes.contains(&Mode::Off) {
                    let delta = m.zip(off).map(|(m, off)| m - off);
                    line.push_str(&format!(" {} |", delta.map_or("–".into(), bytes)));
                }
            }
            println!("{line}");
        }
        println!();
        for (name, row) in rows {
            for (mode, result) in &row.memory {
                if let Ok((_, negotiated)) = result
                    && !negotiated.is_empty()
                {
                    println!("- {name}, {}: negotiated `{negotiated}`", mode.name());
                }
            }
        }
        println!();
    }
}

/// The negotiated extension, short enough for a table column.
fn abbreviate(negotiated: &str) -> String {
    if negotiated.is_empty() {
        return "none".into();
    }
    let short = negotiated
        .replace("permessage-deflate", "pmd")
        .replace("server_", "s_")
        .replace("client_", "c_")
        .replace("no_context_takeover", "nct")
        .replace("max_window_bits", "mwb");
    format!("`{short}`")
}

fn bytes(b: f64) -> String {
    if b.abs() >= 1024.0 { format!("{:.1} KiB", b / 1024.0) } else { format!("{b:.0} B") }
}
