//! Connecting: TCP with a timeout, then the opening handshake with a deadline.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use super::error::io_error;
use super::handshake_io::{Deadline, write_all_until};
use super::transport::is_timeout;
use super::{Error, Options, Timeout, Transport, WebSocket};
use crate::{ClientHandshake, ClientProgress, ClientRequest, HandshakeResponse};

/// Connects to a `ws://` URL with default [`Options`].
///
/// ```no_run
/// let (mut ws, _response) = rfc6455::blocking::connect("ws://127.0.0.1:9001/")?;
/// ws.send_text("hello")?;
/// println!("{:?}", ws.read()?);
/// # Ok::<(), rfc6455::blocking::Error>(())
/// ```
pub fn connect(url: &str) -> Result<(WebSocket<TcpStream>, HandshakeResponse), Error> {
    ClientBuilder::new(url)?.connect()
}

/// Builds a client connection: headers, subprotocols, Origin, timeouts.
///
/// ```no_run
/// use std::time::Duration;
/// use rfc6455::blocking::{ClientBuilder, Options};
/// let mut options = Options::default();
/// options.connect_timeout = Some(Duration::from_secs(3));
/// options.ping_interval = Some(Duration::from_secs(20));
/// let (ws, response) = ClientBuilder::new("ws://127.0.0.1:9001/chat?room=1")?
///     .protocol("chat.v1")
///     .origin("http://127.0.0.1:9001")
///     .header("Authorization", "Bearer abc")
///     .options(options)
///     .connect()?;
/// println!("subprotocol: {:?}", response.protocol());
/// # Ok::<(), rfc6455::blocking::Error>(())
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    request: ClientRequest,
    options: Options,
}

impl ClientBuilder {
    /// Starts from a `ws://host:port/path?query` URL.
    pub fn new(url: &str) -> Result<Self, Error> {
        Ok(Self { request: ClientRequest::new(url)?, options: Options::default() })
    }

    /// Offers a subprotocol (call again to offer several, in order of preference).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.request = self.request.protocol(name);
        self
    }

    /// Sets the Origin header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.request = self.request.origin(origin);
        self
    }

    /// Adds a header to the upgrade request (CR, LF and NUL are rejected).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// Replaces the options (timeouts, keepalive, protocol limits).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Opens a TCP connection (within
    /// [`Options::connect_timeout`]) and performs the handshake (within
    /// [`Options::handshake_timeout`]).
    pub fn connect(self) -> Result<(WebSocket<TcpStream>, HandshakeResponse), Error> {
        if self.request.is_secure() {
            return Err(Error::Unsupported("wss:// needs TLS, which this build does not include"));
        }
        let stream = connect_tcp(self.request.host(), self.request.port(), &self.options)?;
        self.connect_on(stream)
    }

    /// Performs the handshake over a stream that is already connected (a
    /// Unix socket, a tunnel, a test double).
    pub fn connect_on<S: Transport>(self, mut stream: S) -> Result<(WebSocket<S>, HandshakeResponse), Error> {
        let deadline = Deadline::after(self.options.handshake_timeout);
        let handshake = ClientHandshake::new(self.request, self.options.config.clone())?;
        write_all_until(&mut stream, handshake.request_bytes(), deadline, self.options.write_timeout)?;
        let mut progress = ClientProgress::Pending(handshake);
        let mut buf = [0u8; 4096];
        loop {
            let handshake = match progress {
                ClientProgress::Pending(handshake) => handshake,
                ClientProgress::Done(conn, response) => {
                    let ws = WebSocket::from_connection(stream, conn, &self.options)?;
                    return Ok((ws, response));
                }
            };
            stream.set_read_timeout(deadline.remaining()?)?;
            progress = match stream.read(&mut buf) {
                Ok(0) => return Err(handshake.receive_eof().into()),
                Ok(n) => handshake.receive(&buf[..n])?,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => ClientProgress::Pending(handshake),
                Err(error) if is_timeout(&error) => return Err(Error::Timeout(Timeout::Handshake)),
                Err(error) => return Err(io_error(error)),
            };
        }
    }
}

/// Tries each address the host resolves to, each within the connect timeout.
fn connect_tcp(host: &str, port: u16, options: &Options) -> Result<TcpStream, Error> {
    let started = Instant::now();
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs()? {
        let attempt = match options.connect_timeout {
            Some(timeout) => {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::Timeout(Timeout::Connect));
                }
                TcpStream::connect_timeout(&addr, left)
            }
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                stream.set_nodelay(options.nodelay)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) if is_timeout(&error) => Error::Timeout(Timeout::Connect),
        Some(error) => Error::Io(error),
        None => Error::Io(io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address"))),
    })
}
