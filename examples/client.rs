//! A command-line client in the manner of `wscat`: every line typed (or piped)
//! on standard input goes out as a text message; what arrives is printed.
//!
//! ```text
//! cargo run --release --example client -- ws://127.0.0.1:9001/ [--reconnect] [--ping-interval SECS] [--protocol NAME]
//!     [--proxy http://[user:pass@]host:port | --no-proxy]   (or https://, socks5://, socks5h://)
//! cargo run --release --features tls --example client -- wss://127.0.0.1:9443/ [--ca-file ca.pem] ...
//! ```
//!
//! Received messages go to standard output (`< text`); the connection's
//! story (connected, closed, reconnecting) goes to standard error. End of
//! input closes the connection (1000) and exits once the close handshake is
//! over. With `--reconnect` a dropped connection is retried with exponential
//! backoff (0.5 s doubling to 30 s); without it, a failure exits with status 1.
//! Without `--proxy`, the usual environment variables (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) choose the proxy, if any.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // an example: sockets, threads and locks are the point

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use rfc6455::blocking::{ClientBuilder, Error, MaybeTls, Options, ProxyChoice, Reader, Writer};
use rfc6455::{CloseCode, Message, ProxyUrl};

const USAGE: &str = "\
usage: client URL [--ca-file FILE] [--reconnect] [--ping-interval SECS] [--protocol NAME]... [--proxy URL | --no-proxy]

  URL                   ws://host[:port]/path[?query], or wss://... (built with
                        --features tls)
  --ca-file FILE        for wss://, trust the certificates in this PEM file
                        (instead of the system's and the bundled web roots)
  --reconnect           reconnect with exponential backoff when the connection drops
  --ping-interval SECS  send a keepalive ping after SECS of silence; give up if
                        nothing comes back within SECS more
  --protocol NAME       offer this subprotocol (repeat to offer several)
  --proxy URL           connect through this proxy: http://, https:// (TLS to
                        the proxy, --features tls), socks5:// or socks5h://,
                        as scheme://[user:password@]host[:port]; without it,
                        the HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY
                        environment variables decide
  --no-proxy            connect directly, whatever the environment says

Lines read from standard input are sent as text messages; end of input
closes the connection.";

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Args {
    url: String,
    reconnect: bool,
    ping_interval: Option<Duration>,
    protocols: Vec<String>,
    proxy: ProxyChoice,
    ca_file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut reconnect = false;
    let mut ping_interval = None;
    let mut protocols = Vec::new();
    let mut proxy = ProxyChoice::FromEnvironment;
    let mut ca_file = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--reconnect" => reconnect = true,
            "--ping-interval" => {
                let value = args.next().ok_or("--ping-interval needs a number of seconds")?;
                let secs: f64 = value.parse().map_err(|_| format!("--ping-interval: not a number: {value}"))?;
                let interval = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|interval| !interval.is_zero() && *interval <= Duration::from_secs(86_400))
                    .ok_or_else(|| format!("--ping-interval: out of range (0, 86400]: {value}"))?;
                ping_interval = Some(interval);
            }
            "--protocol" => protocols.push(args.next().ok_or("--protocol needs a name")?),
            "--proxy" => {
                let value = args.next().ok_or("--proxy needs a URL")?;
                proxy = ProxyChoice::Proxy(ProxyUrl::parse(&value).map_err(|error| format!("--proxy: {error}"))?);
            }
            "--no-proxy" => proxy = ProxyChoice::Direct,
            "--ca-file" => ca_file = Some(args.next().ok_or("--ca-file needs a file")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option: {flag}")),
            _ if url.is_some() => return Err(format!("unexpected argument: {arg}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or("missing URL")?;
    Ok(Args { url, reconnect, ping_interval, protocols, proxy, ca_file })
}

/// Trusts only the certificates in `file` for wss:// servers.
#[cfg(feature = "tls")]
fn trust(options: &mut Options, file: &str) -> Result<(), String> {
    use rfc6455::blocking::{ClientTls, TlsRoots};
    let roots = TlsRoots::from_pem_file(file).map_err(|error| error.to_string())?;
    options.tls = Some(ClientTls::with_roots(roots).map_err(|error| error.to_string())?);
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn trust(_: &mut Options, _: &str) -> Result<(), String> {
    Err("TLS needs the tls feature (cargo run --features tls --example client -- ...)".into())
}

/// The current connection's writer, shared with the stdin thread, which waits
/// here while there is none (connecting, or between reconnects).
#[derive(Default)]
struct Link {
    writer: Mutex<Option<Writer<MaybeTls>>>,
    changed: Condvar,
    /// Standard input has ended: close and exit rather than reconnect.
    eof: AtomicBool,
}

impl Link {
    fn slot(&self) -> MutexGuard<'_, Option<Writer<MaybeTls>>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs (or clears) the current connection's writer. Returns whether
    /// standard input has already ended.
    fn set(&self, writer: Option<Writer<MaybeTls>>) -> bool {
        let mut slot = self.slot();
        *slot = writer;
        let eof = self.eof.load(Ordering::Acquire);
        drop(slot);
        self.changed.notify_all();
        eof
    }

    /// Waits for a connection, then returns its writer.
    fn wait(&self) -> Writer<MaybeTls> {
        let mut slot = self.slot();
        loop {
            if let Some(writer) = slot.as_ref() {
                return writer.clone();
            }
            slot = self.changed.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Sleeps for `delay`, waking early if standard input ends. Returns
    /// whether it ended.
    fn sleep_unless_eof(&self, delay: Duration) -> bool {
        let slot = self.slot();
        let (_slot, _) = self
            .changed
            .wait_timeout_while(slot, delay, |_| !self.eof.load(Ordering::Acquire))
            .unwrap_or_else(PoisonError::into_inner);
        self.eof.load(Ordering::Acquire)
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Check the URL once, up front: a bad one is a usage error, not something
    // to retry.
    if let Err(error) = ClientBuilder::new(&args.url) {
        eprintln!("error: {}: {error}\n\n{USAGE}", args.url);
        return ExitCode::from(2);
    }
    let mut options = Options::default();
    options.proxy = args.proxy.clone();
    if let Some(interval) = args.ping_interval {
        options.ping_interval = Some(interval);
        options.ping_timeout = interval;
    }
    if let Some(file) = &args.ca_file
        && let Err(error) = trust(&mut options, file)
    {
        eprintln!("error: --ca-file {file}: {error}");
        return ExitCode::from(2);
    }

    let link = Arc::new(Link::default());
    let mut stdin_started = false;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match &args.proxy {
            ProxyChoice::Proxy(proxy) => eprintln!("connecting to {} through {proxy}", args.url),
            _ => eprintln!("connecting to {}", args.url),
        }
        match connect(&args, &options) {
            Ok((reader, writer)) => {
                backoff = FIRST_BACKOFF;
                if link.set(Some(writer.clone())) {
                    // Input ended while we were reconnecting: just close.
                    let _ = writer.close(CloseCode::NORMAL, "");
                }
                // Started after the first connect, so piped input is not read
                // (and lost) before there is anywhere to send it.
                if !stdin_started {
                    stdin_started = true;
                    let link = Arc::clone(&link);
                    if let Err(error) = thread::Builder::new().name("stdin".into()).spawn(move || send_stdin(&link)) {
                        eprintln!("error: cannot start the input thread: {error}");
                        return ExitCode::FAILURE;
                    }
                }
                let ended = receive(reader);
                link.set(None);
                if link.eof.load(Ordering::Acquire) {
                    // We closed (end of input): done, however the close went.
                    return ExitCode::SUCCESS;
                }
                match ended {
                    Ok(()) if !args.reconnect => return ExitCode::SUCCESS,
                    Err(()) if !args.reconnect => return ExitCode::FAILURE,
                    _ => {}
                }
            }
            Err(error) => {
                eprintln!("connection failed: {error}");
                if !args.reconnect {
                    return ExitCode::FAILURE;
                }
            }
        }
        eprintln!("reconnecting in {:.1}s", backoff.as_secs_f64());
        if link.sleep_unless_eof(backoff) {
            return ExitCode::SUCCESS;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn connect(args: &Args, options: &Options) -> Result<(Reader<MaybeTls>, Writer<MaybeTls>), Error> {
    let mut builder = ClientBuilder::new(&args.url)?.options(options.clone());
    for protocol in &args.protocols {
        builder = builder.protocol(protocol.clone());
    }
    let (ws, response) = builder.connect()?;
    let extensions: Vec<String> = response.extensions().iter().map(|extension| extension.to_header_value()).collect();
    let extensions =
        if extensions.is_empty() { String::new() } else { format!(", extensions: {}", extensions.join(", ")) };
    eprintln!("connected (subprotocol: {}{extensions})", response.protocol().unwrap_or("none"));
    Ok(ws.split()?)
}

/// Prints what arrives until the connection ends. `Ok` for a clean close
/// (1000, 1001 or no code), `Err` for anything else.
fn receive(mut reader: Reader<MaybeTls>) -> Result<(), ()> {
    loop {
        match reader.read() {
            Ok(Message::Text(text)) => println!("< {text}"),
            Ok(Message::Binary(data)) => println!("< {}", hex_summary(&data)),
            Ok(Message::Ping(data)) => eprintln!("< ping ({} bytes)", data.len()),
            Ok(Message::Pong(data)) => eprintln!("< pong ({} bytes)", data.len()),
            Ok(Message::Close(frame)) => {
                return match frame {
                    Some(frame) => {
                        eprintln!("closed: {} {}", frame.code, frame.reason);
                        if frame.code == CloseCode::NORMAL || frame.code == CloseCode::GOING_AWAY {
                            Ok(())
                        } else {
                            Err(())
                        }
                    }
                    None => {
                        eprintln!("closed (no status code)");
                        Ok(())
                    }
                };
            }
            Err(error) => {
                eprintln!("connection lost: {error}");
                return Err(());
            }
        }
    }
}

/// `[binary 300 bytes] 00 01 02 ... ` with at most 32 bytes shown.
fn hex_summary(data: &[u8]) -> String {
    const SHOWN: usize = 32;
    let mut out = format!("[binary {} bytes]", data.len());
    for byte in data.iter().take(SHOWN) {
        out.push_str(&format!(" {byte:02x}"));
    }
    if data.len() > SHOWN {
        out.push_str(" ...");
    }
    out
}

/// Sends each line of standard input through whichever connection is
/// current; at end of input, starts the close handshake.
fn send_stdin(link: &Link) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("cannot read standard input: {error}");
                break;
            }
        };
        let writer = link.wait();
        if let Err(error) = writer.send_text(&line) {
            eprintln!("not sent ({error}): {line}");
        }
    }
    // Under the lock, so that either this thread sees the connection and
    // closes it, or the main thread sees the end of input when it installs
    // the next one (and closes that).
    let writer = {
        let slot = link.slot();
        link.eof.store(true, Ordering::Release);
        slot.clone()
    };
    // Wake a reconnect backoff, if one is waiting.
    link.changed.notify_all();
    if let Some(writer) = writer {
        // The reader sees the server's reply (or the close timeout), and the
        // main thread exits.
        if let Err(error) = writer.close(CloseCode::NORMAL, "") {
            eprintln!("close failed: {error}");
        }
    }
}
