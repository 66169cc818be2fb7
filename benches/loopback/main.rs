//! Loopback echo benchmark (issue 6): drives our `echo_server` example and
//! the peers in the same run, case by case (each server in turn at each size
//! and kind), with its own load generator, and prints the table with ratios.
//!
//! ```text
//! cargo bench --bench loopback                 # medians of 3 runs
//! cargo bench --bench loopback -- --quick      # 1 short run, to check the harness
//! cargo bench --bench loopback -- --help
//! ```
//!
//! Servers run in child processes pinned to core 0 (`taskset -c 0`), the load
//! generator on core 1. Our server is `target/release/examples/echo_server`,
//! rebuilt first with `cargo build --release --example echo_server`; the
//! peers are this same program run as `loopback --serve KIND ADDR`.

// A benchmark lives outside the sans-IO core: sockets, threads and clocks.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "../common/mod.rs"]
mod common;
mod load;
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{Server, cpu_seconds, flag_number, flag_value, our_echo_server, size_label, taskset_works};
use load::{Kind, Load};

const HELP: &str = "\
loopback echo benchmark

cargo bench --bench loopback -- [OPTIONS]

  --quick              one short run (1 s per case): checks the harness, figures are rough
  --runs N             runs per figure, the median is reported (default 3)
  --duration SECS      measured time per throughput case (default 2.5)
  --servers LIST       comma-separated, from: rfc6455,tungstenite,fastwebsockets,raw
                       (default: all of them)
  --sizes LIST         message sizes in bytes (default 16,1024,65536,1048576)
  --connections N      connections per throughput case (default 4)
  --window N           messages in flight per connection, at most (default 256)
  --idle N             idle connections for the memory figure (default 1000; 0 skips)
  --latency-samples N  round trips for the latency figure (default 20000)
  --no-pin             do not pin the server and the load generator to cores 0 and 1
  --no-verify          do not compare echoed payloads byte for byte
  --no-build           do not run `cargo build --release --example echo_server` first
  --echo-server PATH   our echo server binary (default: the example next to this bench)
";

const ALL_SERVERS: [&str; 4] = ["rfc6455", "tungstenite", "fastwebsockets", "raw"];

#[derive(Clone, Debug)]
struct Options {
    runs: usize,
    warm_up: Duration,
    duration: Duration,
    servers: Vec<String>,
    sizes: Vec<usize>,
    connections: usize,
    window: usize,
    idle: usize,
    latency_samples: usize,
    pin: bool,
    verify: bool,
    build: bool,
    echo_server: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 3,
            warm_up: Duration::from_millis(500),
            duration: Duration::from_millis(2500),
            servers: ALL_SERVERS.iter().map(|s| s.to_string()).collect(),
            sizes: vec![16, 1024, 64 << 10, 1 << 20],
            connections: 4,
            window: 256,
            idle: 1000,
            latency_samples: 20_000,
            pin: true,
            verify: true,
            build: true,
            echo_server: None,
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
                o.runs = 1;
                o.warm_up = Duration::from_millis(200);
                o.duration = Duration::from_millis(1000);
                o.latency_samples = 5_000;
            }
            "--runs" => o.runs = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--duration" => o.duration = Duration::from_secs_f64(flag_number(flag_value(&mut it, arg)?, arg)?),
            "--servers" => {
                o.servers = flag_value(&mut it, arg)?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.servers.iter().find(|s| !ALL_SERVERS.contains(&s.as_str())) {
                    return Err(format!("unknown server {bad:?}; known: {}", ALL_SERVERS.join(",")));
                }
            }
            "--sizes" => {
                o.sizes =
                    flag_value(&mut it, arg)?.split(',').map(|s| flag_number(s, arg)).collect::<Result<_, _>>()?;
            }
            "--connections" => o.connections = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--window" => o.window = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--idle" => o.idle = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--latency-samples" => o.latency_samples = flag_number(flag_value(&mut it, arg)?, arg)?,
            "--no-pin" => o.pin = false,
            "--no-verify" => o.verify = false,
            "--no-build" => o.build = false,
            "--echo-server" => o.echo_server = Some(PathBuf::from(flag_value(&mut it, arg)?)),
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            // Flags cargo or libtest may pass (filters, --nocapture...).
            other if other.starts_with("--") => eprintln!("ignoring unknown flag {other}"),
            _ => {}
        }
    }
    if o.runs == 0 || o.connections == 0 || o.window == 0 {
        return Err("--runs, --connections and --window must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let (Some(kind), Some(addr)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: loopback --serve KIND ADDR");
            std::process::exit(2);
        };
        if let Err(e) = servers::serve(kind, addr) {
            eprintln!("{kind} server: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo test --all-targets` runs bench targets without `--bench`: this is
    // a benchmark, not a test, so do nothing there.
    if !args.iter().any(|a| a == "--bench") {
        println!("loopback: a benchmark; run it with `cargo bench --bench loopback` (nothing to test)");
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
        eprintln!("loopback: {e}");
        std::process::exit(1);
    }
}

/// One row of the table: a figure per column, each the median of the runs.
#[derive(Clone, Debug, Default)]
struct Figures {
    /// (size, kind) -> messages per second, one entry per run.
    rates: Vec<((usize, Kind), Vec<f64>)>,
    /// (size, kind) -> server CPU microseconds per message, one per run.
    cpu: Vec<((usize, Kind), Vec<f64>)>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    idle_bytes: Vec<f64>,
    errors: Vec<String>,
}

impl Figures {
    fn push_rate(&mut self, key: (usize, Kind), value: f64) {
        push(&mut self.rates, key, value);
    }

    fn rate(&self, key: (usize, Kind)) -> Option<f64> {
        find_median(&self.rates, key)
    }

    fn cpu(&self, key: (usize, Kind)) -> Option<f64> {
        find_median(&self.cpu, key)
    }
}

fn push(series: &mut Vec<((usize, Kind), Vec<f64>)>, key: (usize, Kind), value: f64) {
    match series.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) => values.push(value),
        None => series.push((key, vec![value])),
    }
}

fn find_median(series: &[((usize, Kind), Vec<f64>)], key: (usize, Kind)) -> Option<f64> {
    series.iter().find(|(k, _)| *k == key).and_then(|(_, v)| median(v))
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

fn run(o: &Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let pin = o.pin && taskset_works() && available_cores() >= 2;
    if o.pin && !pin {
        eprintln!("note: not pinning (needs `taskset` and at least 2 cores)");
    }
    if pin {
        // Threads started from now on inherit core 1.
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("note: could not pin the load generator to core 1");
        }
    }
    let echo_server = match &o.echo_server {
        Some(path) => path.clone(),
        None => our_echo_server(&exe, o.build)?,
    };
    print_header(o, pin, &echo_server);

    let mut figures: Vec<(String, Figures)> = o.servers.iter().map(|s| (s.clone(), Figures::default())).collect();
    for run in 1..=o.runs {
        eprintln!("== run {run} of {}", o.runs);
        // Every server of the run is started up front and stays up (idle
        // between its turns), so that each case is measured on all of them
        // within seconds, not minutes, of each other. Each run starts one
        // server later than the one before, so that no server always goes
        // first (or always follows the same one) while the machine drifts.
        let count = figures.len();
        let mut servers = Vec::new();
        for i in (0..count).map(|i| (i + run - 1) % count) {
            let (name, f) = &mut figures[i];
            let command = match name.as_str() {
                "rfc6455" => vec![echo_server.display().to_string()],
                other => vec![exe.display().to_string(), "--serve".into(), other.into()],
            };
            match Server::start(&command, &[], pin) {
                Ok(server) => {
                    // Idle memory first, on the fresh process.
                    if o.idle > 0
                        && let Err(e) = measure_idle(name, &server, o, f)
                    {
                        eprintln!("   {name}: {e}");
                        f.errors.push(e);
                    }
                    servers.push((i, server));
                }
                Err(e) => {
                    eprintln!("   {name}: {e}");
                    f.errors.push(e);
                }
            }
        }
        for &size in &o.sizes {
            for kind in [Kind::Binary, Kind::Text] {
                for (i, server) in &servers {
                    let (name, f) = &mut figures[*i];
                    measure_throughput(name, server, size, kind, o, f);
                }
            }
        }
        for (i, server) in &servers {
            let (name, f) = &mut figures[*i];
            measure_latency(name, server, o, f);
        }
    }
    print_table(o, &figures);
    Ok(())
}

/// The cores this process may run on.
fn available_cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Resident memory per idle connection: 1,000 (`--idle`) connections, each
/// of which has echoed one message, opened on the fresh server process.
fn measure_idle(name: &str, server: &Server, o: &Options, f: &mut Figures) -> Result<(), String> {
    thread::sleep(Duration::from_millis(200));
    let before = server.rss_bytes()?;
    let idle = load::open_idle(server.addr, name == "raw", o.idle)?;
    thread::sleep(Duration::from_millis(500));
    let after = server.rss_bytes()?;
    let per = after.saturating_sub(before) as f64 / o.idle as f64;
    eprintln!("   {name:<15} idle: {per:>10.0} B per connection ({} connections)", o.idle);
    f.idle_bytes.push(per);
    drop(idle);
    thread::sleep(Duration::from_millis(300));
    Ok(())
}

fn measure_throughput(name: &str, server: &Server, size: usize, kind: Kind, o: &Options, f: &mut Figures) {
    let load = Load {
        connections: o.connections,
        window: o.window,
        size,
        kind,
        warm_up: o.warm_up,
        duration: o.duration,
        verify: o.verify,
        raw: name == "raw",
    };
    match load::throughput(server.addr, load, &|| cpu_seconds(server.pid()).ok()) {
        Ok(t) => {
            eprintln!(
                "   {name:<15} {:>8} {:<6} {:>12.0} msg/s {:>9.1} MB/s {:>10}",
                size_label(size),
                kind_label(kind),
                t.messages_per_sec,
                t.messages_per_sec * size as f64 / 1e6,
                t.cpu_us_per_message.map_or("".into(), |us| format!("{us:.3} µs CPU/msg")),
            );
            f.push_rate((size, kind), t.messages_per_sec);
            if let Some(us) = t.cpu_us_per_message {
                push(&mut f.cpu, (size, kind), us);
            }
        }
        Err(e) => {
            eprintln!("   {name:<15} {:>8} {:<6} FAILED: {e}", size_label(size), kind_label(kind));
            f.errors.push(format!("{} {}: {e}", size_label(size), kind_label(kind)));
        }
    }
}

fn measure_latency(name: &str, server: &Server, o: &Options, f: &mut Figures) {
    let warm_up = (o.latency_samples / 10).max(100);
    match load::latency(server.addr, name == "raw", 32, warm_up, o.latency_samples, o.duration * 2) {
        Ok(times) if !times.is_empty() => {
            let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            eprintln!(
                "   {name:<15} latency 32 B: p50 {:.1} µs, p99 {:.1} µs ({} samples)",
                p(0.5),
                p(0.99),
                times.len()
            );
            f.p50.push(p(0.5));
            f.p99.push(p(0.99));
        }
        Ok(_) => f.errors.push("latency: no sample".into()),
        Err(e) => {
            eprintln!("   {name:<15} latency FAILED: {e}");
            f.errors.push(format!("latency: {e}"));
        }
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Binary => "binary",
        Kind::Text => "text",
    }
}

fn display_name(name: &str) -> &str {
    match name {
        "rfc6455" => "rfc6455 `echo_server` (blocking)",
        "tungstenite" => "tungstenite 0.30, blocking, flush per message",
        "fastwebsockets" => "fastwebsockets 0.10 (tokio, 1 thread)",
        "raw" => "raw TCP echo (the limit)",
        other => other,
    }
}

/// Messages per second below 64 KiB, MB/s (10^6 bytes of payload echoed
/// per second) from 64 KiB up.
fn per_second(size: usize) -> bool {
    size < 64 << 10
}

fn format_rate(size: usize, rate: Option<f64>) -> String {
    match rate {
        None => "–".into(),
        Some(r) if per_second(size) => match r {
            r if r >= 1e6 => format!("{:.2}M", r / 1e6),
            r if r >= 1e3 => format!("{:.0}k", r / 1e3),
            r => format!("{r:.0}"),
        },
        Some(r) => format!("{:.0}", r * size as f64 / 1e6),
    }
}

fn format_ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.2}×") }
        }
        _ => "–".into(),
    }
}

fn print_header(o: &Options, pin: bool, echo_server: &Path) {
    println!("# loopback echo benchmark");
    println!();
    println!(
        "{} connection(s), up to {} messages in flight each; {} s measured per case after {} s of warm-up; \
         median of {} run(s); payloads checked: {}; pinned (server core 0, load generator core 1): {}",
        o.connections,
        o.window,
        o.duration.as_secs_f64(),
        o.warm_up.as_secs_f64(),
        o.runs,
        if o.verify { "yes" } else { "no" },
        if pin { "yes" } else { "no" }
    );
    println!("our server: {}", echo_server.display());
    let congestion = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .map_or_else(|_| "unknown".into(), |name| name.trim().to_string());
    println!("TCP congestion control (system default, used on both ends): {congestion}");
    if congestion == "bbr" {
        // Seen on the project's VM: see BENCHMARKS.md, "The machine".
        eprintln!(
            "note: with BBR on loopback the large-message figures of every server swing by up to 2x from case \
             to case; the published tables use cubic (sudo sysctl -w net.ipv4.tcp_congestion_control=cubic)"
        );
    }
    println!();
}

fn print_table(o: &Options, figures: &[(String, Figures)]) {
    let columns: Vec<String> = o
        .sizes
        .iter()
        .map(|&s| format!("{} {} bin / text", size_label(s), if per_second(s) { "msg/s" } else { "MB/s" }))
        .collect();
    let header = |first: &str, last: &[&str]| {
        let mut line = format!("| {first} |");
        for c in &columns {
            line.push_str(&format!(" {c} |"));
        }
        for c in last {
            line.push_str(&format!(" {c} |"));
        }
        println!("{line}");
        println!("|{}", "---|".repeat(columns.len() + last.len() + 1));
    };
    println!();
    println!("## figures (median of {} run(s))", o.runs);
    println!();
    header("server", &["p50 / p99 µs (32 B)", "bytes per idle conn"]);
    for (name, f) in figures {
        let mut line = format!("| {} |", display_name(name));
        for &s in &o.sizes {
            line.push_str(&format!(
                " {} / {} |",
                format_rate(s, f.rate((s, Kind::Binary))),
                format_rate(s, f.rate((s, Kind::Text)))
            ));
        }
        let lat = match (median(&f.p50), median(&f.p99)) {
            (Some(a), Some(b)) => format!("{a:.1} / {b:.1}"),
            _ => "–".into(),
        };
        let idle = median(&f.idle_bytes).map_or("–".into(), |b| format!("{b:.0}"));
        println!("{line} {lat} | {idle} |");
    }
    let find = |name: &str| figures.iter().find(|(n, _)| n == name).map(|(_, f)| f);
    for (reference, title) in [
        ("tungstenite", "ratio to tungstenite (higher is better; latency and memory: lower)"),
        ("raw", "ratio to raw TCP"),
    ] {
        let Some(r) = find(reference) else { continue };
        println!();
        println!("## {title}");
        println!();
        header("server", &["p50 / p99", "idle memory"]);
        for (name, f) in figures.iter().filter(|(n, _)| n != reference) {
            let mut line = format!("| {} |", display_name(name));
            for &s in &o.sizes {
                line.push_str(&format!(
                    " {} / {} |",
                    format_ratio(f.rate((s, Kind::Binary)), r.rate((s, Kind::Binary))),
                    format_ratio(f.rate((s, Kind::Text)), r.rate((s, Kind::Text)))
                ));
            }
            println!(
                "{line} {} / {} | {} |",
                format_ratio(median(&f.p50), median(&r.p50)),
                format_ratio(median(&f.p99), median(&r.p99)),
                format_ratio(median(&f.idle_bytes), median(&r.idle_bytes))
            );
        }
    }
    print_cpu_table(o, figures);
    let failures: Vec<_> = figures.iter().filter(|(_, f)| !f.errors.is_empty()).collect();
    if !failures.is_empty() {
        println!();
        println!("## failures");
        for (name, f) in failures {
            for e in &f.errors {
                println!("- {name}: {e}");
            }
        }
    }
}

/// Server CPU time per message echoed, and its ratio to raw TCP's: what each
/// server spends, whether or not the load generator kept it busy.
fn print_cpu_table(o: &Options, figures: &[(String, Figures)]) {
    if figures.iter().all(|(_, f)| f.cpu.is_empty()) {
        return;
    }
    let raw = figures.iter().find(|(n, _)| n == "raw").map(|(_, f)| f);
    println!();
    println!("## server CPU time per message, µs (lower is better; ratio to raw TCP in brackets)");
    println!();
    let mut line = "| server |".to_string();
    for &s in &o.sizes {
        line.push_str(&format!(" {} bin / text |", size_label(s)));
    }
    println!("{line}");
    println!("|{}", "---|".repeat(o.sizes.len() + 1));
    for (name, f) in figures {
        let mut line = format!("| {} |", display_name(name));
        for &s in &o.sizes {
            let cell = |kind| {
                let Some(us) = f.cpu((s, kind)) else { return "–".to_string() };
                match raw.filter(|_| name != "raw").and_then(|r| r.cpu((s, kind))) {
                    Some(r) => format!("{us:.3} [{}]", format_ratio(Some(us), Some(r))),
                    None => format!("{us:.3}"),
                }
            };
            line.push_str(&format!(" {} / {} |", cell(Kind::Binary), cell(Kind::Text)));
        }
        println!("{line}");
    }
}
