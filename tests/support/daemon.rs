//! A program the tests start on a loopback port (tinyproxy, stunnel, microsocks), with
//! its files in a temp dir of its own: spawned, waited for (bounded) until it
//! listens, killed and cleaned up on drop. Included with `#[path]` by every
//! test file that includes a module built on it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running program, killed on drop, its temp dir removed.
pub(crate) struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Daemon {
    /// Where the first of `names` that is installed lives: the directories
    /// of `PATH`, then the system ones a test runner's `PATH` may lack.
    pub(crate) fn find(names: &[&str]) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs: Vec<PathBuf> = std::env::split_paths(&path)
            .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"].map(PathBuf::from))
            .collect();
        names.iter().flat_map(|name| dirs.iter().map(move |dir| dir.join(name))).find(|path| path.is_file())
    }

    /// Says that a test needing a program that is not installed did not run.
    /// Where `RFC6455_REQUIRE_PROGRAMS` is set (`.ci/run` sets it, having
    /// installed them all), it fails instead: a test that quietly stopped
    /// finding its program would otherwise pass there unseen.
    pub(crate) fn missing(what: &str) {
        if std::env::var_os("RFC6455_REQUIRE_PROGRAMS").is_some() {
            panic!("{what} not found, and RFC6455_REQUIRE_PROGRAMS is set");
        }
        eprintln!("SKIP: {what} not installed: the test did not run");
    }

    /// A new temp dir for `name`'s files (`tag` keeps several of one test
    /// process apart) and a free loopback address for it to listen on: the
    /// programs take a fixed port in their configuration, so one is bound
    /// and released here.
    pub(crate) fn prepare(name: &str, tag: u16) -> (PathBuf, SocketAddr) {
        let dir = std::env::temp_dir().join(format!("rfc6455-{name}-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        (dir, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Starts `command` (standard output discarded, standard error into
    /// `dir/stderr.log`) and waits up to 10 s until it listens on `addr`.
    /// `logs` names the files worth showing if it does not.
    pub(crate) fn spawn(mut command: Command, dir: PathBuf, addr: SocketAddr, logs: &[&str]) -> Self {
        let name = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut daemon = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{name} exited with {status}: {}", daemon.logs(logs));
            }
            assert!(Instant::now() < deadline, "{name} not listening on {addr}: {}", daemon.logs(logs));
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Standard error and the named files of the temp dir, for a failure
    /// message.
    pub(crate) fn logs(&self, files: &[&str]) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let mut all = format!("stderr:\n{}", read("stderr.log"));
        for file in files {
            all.push_str(&format!("\n{file}:\n{}", read(file)));
        }
        all
    }
}
