//! A real TLS front for a proxy in the tests: Debian's `stunnel4`, in server
//! mode on 127.0.0.1, decrypting what arrives and passing it to a plain
//! upstream (tinyproxy, which makes the pair an `https://` proxy). Its files
//! live in a temp dir; the process is killed on drop. Used by `tests/tls.rs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// An stunnel child process, killed on drop.
pub(crate) struct Stunnel {
    child: Child,
    pub(crate) addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Stunnel {
    /// The stunnel binary, if installed (Debian names it `stunnel4`).
    pub(crate) fn binary() -> Option<PathBuf> {
        ["/usr/bin/stunnel4", "/usr/bin/stunnel", "/usr/local/bin/stunnel"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
    }

    /// Starts stunnel accepting TLS with `cert_pem` and `key_pem`, and
    /// passing each connection's plaintext to `upstream`.
    pub(crate) fn start(binary: &PathBuf, cert_pem: &str, key_pem: &str, upstream: SocketAddr) -> Self {
        let dir = std::env::temp_dir().join(format!("rfc6455-stunnel-{}-{}", std::process::id(), upstream.port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, cert_pem).expect("write cert");
        std::fs::write(&key, key_pem).expect("write key");
        // A fixed port is needed in the config: take a free one and release it.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let config = format!(
            "foreground = yes\npid =\noutput = {log}\ndebug = 5\n[https-proxy]\naccept = 127.0.0.1:{port}\n\
             connect = {upstream}\ncert = {cert}\nkey = {key}\n",
            log = dir.join("stunnel.log").display(),
            cert = cert.display(),
            key = key.display(),
        );
        let config_path = dir.join("stunnel.conf");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new(binary)
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr file"))
            .spawn()
            .expect("start stunnel");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stunnel = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return stunnel;
            }
            if let Ok(Some(status)) = stunnel.child.try_wait() {
                panic!("stunnel exited with {status}: {}", stunnel.logs());
            }
            assert!(Instant::now() < deadline, "stunnel not listening on {addr}: {}", stunnel.logs());
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("stderr:\n{}\nlog:\n{}", read("stderr.log"), read("stunnel.log"))
    }
}
