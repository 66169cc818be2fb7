//! A real HTTP proxy for the tests: Debian's `tinyproxy`, started on
//! 127.0.0.1 with its files in a temp dir, killed on drop. Shared by
//! `tests/proxy.rs` and `tests/tls.rs` (`#[path]` module, with
//! `support/daemon.rs` beside it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::daemon::Daemon;

/// A tinyproxy child process, killed on drop, with its files in a temp dir.
pub(crate) struct Tinyproxy {
    daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

impl Tinyproxy {
    /// Where tinyproxy is installed, if it is.
    pub(crate) fn binary() -> Option<PathBuf> {
        Daemon::find(&["tinyproxy"])
    }

    /// Starts tinyproxy allowing CONNECT to `connect_port` only.
    pub(crate) fn start(binary: &Path, connect_port: u16) -> Self {
        let (dir, addr) = Daemon::prepare("tinyproxy", connect_port);
        let config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 10\nAllow 127.0.0.1\nConnectPort {connect_port}\n\
             LogFile \"{log}\"\nLogLevel Info\nPidFile \"{pid}\"\nDisableViaHeader Yes\n",
            port = addr.port(),
            log = dir.join("tinyproxy.log").display(),
            pid = dir.join("tinyproxy.pid").display(),
        );
        let config_path = dir.join("tinyproxy.conf");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(binary);
        command.arg("-d").arg("-c").arg(&config_path);
        let daemon = Daemon::spawn(command, dir, addr, &["tinyproxy.log"]);
        Self { daemon, addr }
    }

    pub(crate) fn logs(&self) -> String {
        self.daemon.logs(&["tinyproxy.log"])
    }
}
