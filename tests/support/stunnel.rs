//! A real TLS front for a proxy in the tests: Debian's `stunnel4`, in server
//! mode on 127.0.0.1, decrypting what arrives and passing it to a plain
//! upstream (tinyproxy, which makes the pair an `https://` proxy). Its files
//! live in a temp dir; the process is killed on drop. Used by `tests/tls.rs`
//! (`#[path]` module, with `support/daemon.rs` beside it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use super::daemon::Daemon;

/// An stunnel child process, killed on drop.
pub(crate) struct Stunnel {
    daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

impl Stunnel {
    /// The stunnel binary, if installed (Debian names it `stunnel4`).
    pub(crate) fn binary() -> Option<PathBuf> {
        Daemon::find(&["stunnel4", "stunnel"])
    }

    /// Starts stunnel accepting TLS with `cert_pem` and `key_pem`, and
    /// passing each connection's plaintext to `upstream`.
    pub(crate) fn start(binary: &PathBuf, cert_pem: &str, key_pem: &str, upstream: SocketAddr) -> Self {
        let (dir, addr) = Daemon::prepare("stunnel", upstream.port());
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, cert_pem).expect("write cert");
        std::fs::write(&key, key_pem).expect("write key");
        let config = format!(
            "foreground = yes\npid =\noutput = {log}\ndebug = 5\n[https-proxy]\naccept = {addr}\n\
             connect = {upstream}\ncert = {cert}\nkey = {key}\n",
            log = dir.join("stunnel.log").display(),
            cert = cert.display(),
            key = key.display(),
        );
        let config_path = dir.join("stunnel.conf");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(binary);
        command.arg(&config_path);
        let daemon = Daemon::spawn(command, dir, addr, &["stunnel.log"]);
        Self { daemon, addr }
    }

    pub(crate) fn logs(&self) -> String {
        self.daemon.logs(&["stunnel.log"])
    }
}
