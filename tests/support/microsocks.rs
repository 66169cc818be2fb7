//! A real SOCKS5 proxy for the tests: Debian's `microsocks`, started on
//! 127.0.0.1, killed on drop. Shared by `tests/proxy.rs` and `tests/tls.rs`
//! (`#[path]` module, with `support/daemon.rs` beside it).

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

use super::daemon::Daemon;

/// A microsocks child process on 127.0.0.1, killed on drop.
pub(crate) struct Microsocks {
    _daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

impl Microsocks {
    /// Whether microsocks is installed.
    pub(crate) fn installed() -> bool {
        Daemon::find(&["microsocks"]).is_some()
    }

    /// Starts microsocks, with a user name and password if given, and waits
    /// (bounded) until it accepts connections.
    pub(crate) fn start(credentials: Option<(&str, &str)>) -> Self {
        static STARTED: AtomicU16 = AtomicU16::new(0);
        let binary = Daemon::find(&["microsocks"]).expect("microsocks installed");
        let (dir, addr) = Daemon::prepare("microsocks", STARTED.fetch_add(1, Ordering::Relaxed));
        let mut command = Command::new(binary);
        command.args(["-i", "127.0.0.1", "-p", &addr.port().to_string()]);
        if let Some((user, password)) = credentials {
            command.args(["-u", user, "-P", password]);
        }
        Self { _daemon: Daemon::spawn(command, dir, addr, &[]), addr }
    }
}
