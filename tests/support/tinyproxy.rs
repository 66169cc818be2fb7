//! A real HTTP proxy for the tests: Debian's `tinyproxy`, started on
//! 127.0.0.1 with its files in a temp dir, killed on drop. Shared by
//! `tests/proxy.rs` and `tests/tls.rs` (`#[path]` module).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A tinyproxy child process, killed on drop, with its files in a temp dir.
pub(crate) struct Tinyproxy {
    child: Child,
    pub(crate) addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tinyproxy {
    /// Where tinyproxy is installed, if it is.
    pub(crate) fn binary() -> Option<PathBuf> {
        ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy", "/usr/local/bin/tinyproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .or_else(|| {
                std::env::var_os("PATH")?
                    .to_str()?
                    .split(':')
                    .map(|dir| PathBuf::from(dir).join("tinyproxy"))
                    .find(|path| path.exists())
            })
    }

    /// Starts tinyproxy allowing CONNECT to `connect_port` only.
    pub(crate) fn start(binary: &Path, connect_port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("rfc6455-tinyproxy-{}-{connect_port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // tinyproxy needs a fixed port: take a free one and release it.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 10\nAllow 127.0.0.1\nConnectPort {connect_port}\n\
             LogFile \"{log}\"\nLogLevel Info\nPidFile \"{pid}\"\nDisableViaHeader Yes\n",
            log = dir.join("tinyproxy.log").display(),
            pid = dir.join("tinyproxy.pid").display(),
        );
        let config_path = dir.join("tinyproxy.conf");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new(binary)
            .arg("-d")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr file"))
            .spawn()
            .expect("start tinyproxy");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut proxy = Self { child, addr, dir };
        // Wait (bounded) until it listens.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("tinyproxy exited with {status}: {}", proxy.logs());
            }
            assert!(Instant::now() < deadline, "tinyproxy not listening on {addr}: {}", proxy.logs());
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("stderr:\n{}\nlog:\n{}", read("stderr.log"), read("tinyproxy.log"))
    }
}
