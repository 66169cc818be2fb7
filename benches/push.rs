//! Server push over loopback: a server sends messages of one size as fast as
//! the socket takes them to a client that reads and discards the bytes (a
//! live feed, a file or snapshot sent to a browser). Reports the server
//! thread's CPU time per message and the rate, for our blocking
//! `WebSocket`, our split `Writer` (as a broadcast server sends), and
//! tungstenite's blocking `WebSocket::send`, one after another in the same
//! run, with the ratios to tungstenite.
//!
//! ```text
//! cargo bench --bench push                      # medians of 3 runs of 2 s per case
//! cargo bench --bench push -- --quick           # one run of 0.5 s per case
//! cargo bench --bench push -- --sizes 65536 --runs 5
//! ```
//!
//! The server thread's CPU time comes from `/proc/thread-self/stat`, so on
//! systems without it only the rates are printed. The threads are not
//! pinned: the server and the client each keep a core busy on a 2-core
//! machine.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "common/mod.rs"]
#[allow(dead_code)] // the loopback benches' child-process helpers
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{cpu_seconds_from, flag_number, flag_value, size_label};

const HELP: &str = "\
server push benchmark

cargo bench --bench push -- [OPTIONS]

  --quick           one run of 0.5 s per case: checks the harness
  --runs N          runs per figure, the median is reported (default 3)
  --duration SECS   time each run sends for (default 2)
  --sizes LIST      message sizes in bytes (default 1024,4096,16384,65536,1048576)
  --servers LIST    comma-separated, from: websocket,writer,tungstenite (default: all)
";

const SERVERS: [&str; 3] = ["rfc6455 WebSocket", "rfc6455 split Writer", "tungstenite 0.30"];
const SERVER_FLAGS: [&str; 3] = ["websocket", "writer", "tungstenite"];

/// One run: messages sent, seconds taken, and the server thread's CPU
/// seconds if they could be read.
struct Run {
    messages: u64,
    seconds: f64,
    cpu: Option<f64>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Options { runs, duration, sizes, servers } = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    println!("# server push benchmark: {runs} run(s) of {duration:?} per case, medians\n");
    println!("| size | server | messages/s | MB/s | server CPU µs/msg | CPU ratio to tungstenite |");
    println!("|---|---|---|---|---|---|");
    for &size in &sizes {
        let mut cpu_per_message = [None; SERVERS.len()];
        let mut rows = Vec::new();
        // Runs alternate between the servers, each round in the opposite
        // order to the one before, so that the host drifting over the
        // minutes of a run does not favour whichever goes first.
        let chosen: Vec<usize> = (0..SERVERS.len()).filter(|&index| servers[index]).collect();
        let mut rates = vec![Vec::new(); SERVERS.len()];
        let mut cpus = vec![Vec::new(); SERVERS.len()];
        for round in 0..runs {
            let order: Vec<usize> =
                if round % 2 == 0 { chosen.clone() } else { chosen.iter().rev().copied().collect() };
            for index in order {
                match run(index, size, duration) {
                    Ok(result) => {
                        rates[index].push(result.messages as f64 / result.seconds);
                        if let Some(cpu) = result.cpu {
                            cpus[index].push(cpu * 1e6 / result.messages as f64);
                        }
                    }
                    Err(error) => eprintln!("{} at {}: {error}", SERVERS[index], size_label(size)),
                }
            }
        }
        for &index in &chosen {
            cpu_per_message[index] = median(&mut cpus[index]);
            rows.push((index, median(&mut rates[index])));
        }
        let tungstenite = cpu_per_message[SERVERS.len() - 1];
        for (index, rate) in rows {
            let (server, cpu) = (SERVERS[index], cpu_per_message[index]);
            let ratio = cpu.zip(tungstenite).map_or("–".into(), |(ours, theirs)| format!("{:.2}×", ours / theirs));
            println!(
                "| {} | {server} | {} | {} | {} | {ratio} |",
                size_label(size),
                rate.map_or("–".into(), |r| format!("{r:.0}")),
                rate.map_or("–".into(), |r| format!("{:.0}", r * size as f64 / 1e6)),
                cpu.map_or("–".into(), |c| format!("{c:.2}")),
            );
        }
    }
}

struct Options {
    runs: usize,
    duration: Duration,
    sizes: Vec<usize>,
    /// Which of [`SERVERS`] to run.
    servers: [bool; SERVERS.len()],
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let (mut runs, mut duration, mut sizes) =
        (3, Duration::from_secs(2), vec![1 << 10, 4 << 10, 16 << 10, 64 << 10, 1 << 20]);
    let mut servers = [true; SERVERS.len()];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => (runs, duration) = (1, Duration::from_millis(500)),
            "--runs" => runs = flag_number(flag_value(&mut it, "--runs")?, "--runs")?,
            "--duration" => {
                duration = Duration::from_secs_f64(flag_number(flag_value(&mut it, "--duration")?, "--duration")?)
            }
            "--sizes" => {
                sizes = flag_value(&mut it, "--sizes")?
                    .split(',')
                    .map(|s| flag_number(s, "--sizes"))
                    .collect::<Result<_, _>>()?
            }
            "--servers" => {
                servers = [false; SERVERS.len()];
                for name in flag_value(&mut it, "--servers")?.split(',') {
                    let index = SERVER_FLAGS.iter().position(|&flag| flag == name);
                    servers[index.ok_or_else(|| format!("unknown server {name:?}"))?] = true;
                }
            }
            "--bench" => {} // passed by `cargo bench`
            "--help" | "-h" => return Err("usage:".into()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if runs == 0 || sizes.is_empty() {
        return Err("--runs and --sizes need at least one".into());
    }
    Ok(Options { runs, duration, sizes, servers })
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// One run of server `index` at `size`: a client thread that reads and
/// discards, the server sending on this thread's child for `duration`.
fn run(index: usize, size: usize, duration: Duration) -> Result<Run, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let client = thread::spawn(move || -> Result<u64, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream
            .write_all(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        // Ends when the server closes the connection.
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(total),
                Ok(n) => total += n as u64,
            }
        }
    });
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let payload = vec![0x5au8; size];
    let server = thread::spawn(move || -> Result<Run, String> {
        let cpu = || cpu_seconds_from("/proc/thread-self/stat").ok();
        let mut sent = 0u64;
        let (start, cpu_start);
        match index {
            0 | 1 => {
                let ws = rfc6455::blocking::accept(stream).map_err(|e| e.to_string())?;
                (start, cpu_start) = (Instant::now(), cpu());
                if index == 0 {
                    let mut ws = ws;
                    while start.elapsed() < duration {
                        ws.send_binary(&payload).map_err(|e| e.to_string())?;
                        sent += 1;
                    }
                    ws.flush().map_err(|e| e.to_string())?;
                } else {
                    let (_reader, writer) = ws.split().map_err(|e| e.to_string())?;
                    while start.elapsed() < duration {
                        writer.send_binary(&payload).map_err(|e| e.to_string())?;
                        sent += 1;
                    }
                    writer.flush().map_err(|e| e.to_string())?;
                }
            }
            _ => {
                let mut ws = tungstenite::accept(stream).map_err(|e| e.to_string())?;
                let payload = tungstenite::Bytes::from(payload);
                (start, cpu_start) = (Instant::now(), cpu());
                while start.elapsed() < duration {
                    ws.send(tungstenite::Message::Binary(payload.clone())).map_err(|e| e.to_string())?;
                    sent += 1;
                }
            }
        }
        let (seconds, cpu_end) = (start.elapsed().as_secs_f64(), cpu());
        Ok(Run { messages: sent, seconds, cpu: cpu_start.zip(cpu_end).map(|(a, b)| b - a) })
    });
    let result = server.join().map_err(|_| "server thread panicked".to_string())?;
    // The server's socket is closed once its thread is done; the client
    // then reads to the end.
    client.join().map_err(|_| "client thread panicked".to_string())??;
    result
}
