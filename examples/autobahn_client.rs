//! The client driver for Autobahn|Testsuite's `fuzzingserver` mode: asks the
//! fuzzing server how many cases it has, runs each one as an echo client
//! (text back as text, binary back as binary), then asks it to write its
//! reports.
//!
//! ```text
//! wstest -m fuzzingserver -s autobahn/fuzzingserver.json --webport 0 &
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001
//! ```
//!
//! The base URL defaults to `ws://127.0.0.1:9001`; reports are filed under the
//! agent name `rfc6455`. `autobahn/run.sh client` does all of this and checks
//! the results. Over TLS (`autobahn/run.sh tls-client`): build with
//! `--features tls`, pass a `wss://` URL, and name the CA to trust in
//! `AUTOBAHN_CA_FILE`.

// Examples live outside the sans-IO core: sockets and threads are theirs.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::process::ExitCode;

use rfc6455::Event;
use rfc6455::blocking::{ClientBuilder, Error, MaybeTls, Options, WebSocket};

const AGENT: &str = "rfc6455";

fn main() -> ExitCode {
    let base = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001".to_string());
    let base = base.trim_end_matches('/');
    match run(base) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("autobahn_client: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(base: &str) -> Result<(), Error> {
    let count = case_count(base)?;
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        // A case that ends in a protocol error (on purpose, most of them in
        // sections 5 to 7) is not a failure of the driver: the fuzzing server
        // judges it.
        if let Err(error) = run_case(&url) {
            eprintln!("case {case}: {error}");
        }
    }
    let (mut ws, _) = connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    // The server closes as soon as the reports are written.
    while !matches!(ws.read_with(|event, _| matches!(event, Event::Close(_))), Ok(true) | Err(_)) {}
    eprintln!("autobahn_client: reports updated");
    Ok(())
}

/// `/getCaseCount` sends the number of cases as a text message, then closes.
fn case_count(base: &str) -> Result<u32, Error> {
    let (mut ws, _) = connect(&format!("{base}/getCaseCount"))?;
    let mut count = None;
    loop {
        match ws.read_with(|event, _| match event {
            Event::Text(text) => {
                count = text.trim().parse().ok();
                false
            }
            Event::Close(_) => true,
            _ => false,
        }) {
            Ok(true) => break,
            Ok(false) => {}
            // The count has arrived: how the server then hangs up is not our concern.
            Err(_) if count.is_some() => break,
            Err(error) => return Err(error),
        }
    }
    count.ok_or(Error::Unsupported("getCaseCount sent no number"))
}

/// Echoes until the close handshake ends or the connection fails. Payloads go
/// back straight from the receive buffer.
fn run_case(url: &str) -> Result<(), Error> {
    let (mut ws, _) = connect(url)?;
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

fn connect(url: &str) -> Result<(WebSocket<MaybeTls>, rfc6455::HandshakeResponse), Error> {
    let mut options = Options::default();
    // Autobahn sends messages of up to 16 MiB (section 9), some as a single
    // frame, others in up to 65,536 fragments: leave room above both.
    options.config.max_frame_size = 32 << 20;
    options.config.max_message_size = 64 << 20;
    options.config.max_write_buffer = 32 << 20;
    trust_ca_file(&mut options)?;
    ClientBuilder::new(url)?.options(options).connect()
}

/// For `wss://` runs: trusts the CA in the PEM file `AUTOBAHN_CA_FILE` names,
/// when set (the test certificate `autobahn/run.sh` makes).
#[cfg(feature = "tls")]
fn trust_ca_file(options: &mut Options) -> Result<(), Error> {
    use rfc6455::blocking::{ClientTls, TlsRoots};
    static TLS: std::sync::OnceLock<Option<ClientTls>> = std::sync::OnceLock::new();
    if TLS.get().is_none() {
        let tls = match std::env::var_os("AUTOBAHN_CA_FILE") {
            Some(file) => Some(ClientTls::with_roots(TlsRoots::from_pem_file(file)?)?),
            None => None,
        };
        let _ = TLS.set(tls);
    }
    options.tls = TLS.get().cloned().flatten();
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn trust_ca_file(_: &mut Options) -> Result<(), Error> {
    Ok(())
}
