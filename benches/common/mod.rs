//! What the loopback benchmarks share: starting a server in a child process
//! (pinned to a core when `taskset` works), reading its resident memory and
//! CPU time, building `examples/echo_server`, and small parsing and
//! labelling helpers.
//! Included with `#[path]` by `benches/loopback` and `benches/compression`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;

/// A server in a child process, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `command 127.0.0.1:0` with `envs` (pinned to core 0 with
    /// `pin`) and waits for the `ws://HOST:PORT` it prints on standard error.
    pub(crate) fn start(command: &[String], envs: &[(String, String)], pin: bool) -> Result<Self, String> {
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).args(command);
            c
        } else {
            let mut c = Command::new(&command[0]);
            c.args(&command[1..]);
            c
        };
        cmd.arg("127.0.0.1:0").envs(envs.iter().cloned()).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("starting {}: {e}", command[0]))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let parsed = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.split("ws://").nth(1) {
                        break addr.trim().parse::<SocketAddr>().map_err(|e| format!("bad address {line:?}: {e}"));
                    }
                }
                _ => break Err(format!("{} exited before listening", command.join(" "))),
            }
        };
        let addr = match parsed {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        // Keep draining the server's stderr (it logs each connection's end).
        thread::spawn(move || for _ in lines {});
        Ok(Self { child, addr })
    }

    /// The process id (with `taskset`, the process it became).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident memory of the server process.
    pub(crate) fn rss_bytes(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|e| format!("reading /proc: {e}"))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS in /proc/PID/status")?;
        let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or("bad VmRSS line")?;
        Ok(kib * 1024)
    }
}

/// CPU time (user + system, all threads) a process has used so far, in
/// seconds, from `/proc/PID/stat` (clock ticks of `getconf CLK_TCK`).
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64, String> {
    cpu_seconds_from(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) from a `/proc` stat file: a process's, or a
/// thread's (`/proc/thread-self/stat`).
pub(crate) fn cpu_seconds_from(path: &str) -> Result<f64, String> {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or("bad /proc/PID/stat");
    Ok((field(11)? + field(12)?) / ticks)
}

/// The crate's root directory.
pub(crate) fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release `examples/echo_server` binary, built first when `build` is
/// set, in the target directory of the running bench (`exe`, which lives in
/// `<target>/release/deps/`).
pub(crate) fn our_echo_server(exe: &Path, build: bool) -> Result<PathBuf, String> {
    let profile_dir = exe.parent().and_then(Path::parent).ok_or("cannot locate the target directory")?;
    let target_dir = profile_dir.parent().ok_or("cannot locate the target directory")?;
    if build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("building examples/echo_server (release)...");
        let status = Command::new(cargo)
            .args(["build", "--release", "--example", "echo_server", "--manifest-path"])
            .arg(manifest_dir().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err("`cargo build --release --example echo_server` failed".into());
        }
    }
    let path = target_dir.join("release").join("examples").join("echo_server");
    if !path.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release --example echo_server`, or pass --echo-server PATH",
            path.display()
        ));
    }
    Ok(path)
}

/// Whether `taskset` can pin processes here.
pub(crate) fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `1 MiB`, `16 KiB`, `16 B`.
pub(crate) fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// The value after a command-line flag.
pub(crate) fn flag_value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

/// A flag's value as a number.
pub(crate) fn flag_number<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{flag}: not a number: {s}"))
}
