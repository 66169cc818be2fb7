//! A real SOCKS5 proxy for the tests: Debian's `microsocks`, started on
//! 127.0.0.1, killed on drop. Shared by `tests/proxy.rs` and `tests/tls.rs`
//! (`#[path]` module).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long microsocks may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A microsocks child process on 127.0.0.1, killed on drop.
pub(crate) struct Microsocks {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Microsocks {
    /// Whether microsocks is installed.
    pub(crate) fn installed() -> bool {
        Command::new("microsocks").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    }

    /// Starts microsocks, with a user name and password if given; waits (at
    /// most `START_TIMEOUT`) until it accepts connections.
    pub(crate) fn start(credentials: Option<(&str, &str)>) -> Self {
        // microsocks needs a fixed port: take a free one and release it.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut command = Command::new("microsocks");
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = credentials {
            command.args(["-u", user, "-P", password]);
        }
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        let proxy = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&proxy.addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "microsocks did not listen on {} in time", proxy.addr);
            thread::sleep(Duration::from_millis(20));
        }
        proxy
    }
}
