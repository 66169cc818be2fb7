//! Connecting: TCP with a timeout (through an HTTP, HTTPS or SOCKS5 proxy's
//! tunnel when one applies), then the opening handshake with a deadline.

use std::io;
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::ops::ControlFlow;
use std::time::Instant;

use super::error::io_error;
use super::handshake_io::{Deadline, write_all_until};
use super::transport::is_timeout;
use super::{Error, MaybeTls, Options, ProxyChoice, Timeout, Transport, WebSocket};
use crate::{
    ClientHandshake, ClientProgress, ClientRequest, HandshakeResponse, ProxyConnect, ProxyError, ProxyProgress,
    ProxyScheme, ProxyUrl, Socks5Connect, Socks5Progress, no_proxy_matches,
};

/// Connects to a `ws://` URL (or, with the `tls` feature, a `wss://` URL)
/// with default [`Options`].
///
/// ```no_run
/// let (mut ws, _response) = rfc6455::blocking::connect("ws://127.0.0.1:9001/")?;
/// ws.send_text("hello")?;
/// println!("{:?}", ws.read()?);
/// # Ok::<(), rfc6455::blocking::Error>(())
/// ```
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTls>, HandshakeResponse), Error> {
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
    /// Set by [`proxy`](Self::proxy) or [`no_proxy`](Self::no_proxy): wins
    /// over [`Options::proxy`], whichever was called last.
    proxy: Option<ProxyChoice>,
}

impl ClientBuilder {
    /// Starts from a `ws://host:port/path?query` URL.
    pub fn new(url: &str) -> Result<Self, Error> {
        Ok(Self { request: ClientRequest::new(url)?, options: Options::default(), proxy: None })
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

    /// Goes through this proxy (`http://`, `https://`, `socks5://` or
    /// `socks5h://` `[user:password@]host[:port]`, see [`ProxyUrl`]) with a
    /// `CONNECT` tunnel, whatever the environment and [`Options::proxy`] say.
    ///
    /// ```no_run
    /// use rfc6455::blocking::ClientBuilder;
    /// let (ws, _) = ClientBuilder::new("ws://echo.example/")?.proxy("http://user:pass@proxy.example:3128")?.connect()?;
    /// let (ws, _) = ClientBuilder::new("ws://echo.example/")?.proxy("socks5h://127.0.0.1:1080")?.connect()?;
    /// # Ok::<(), rfc6455::blocking::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Proxy`] when the URL is not a valid proxy URL.
    pub fn proxy(mut self, url: &str) -> Result<Self, Error> {
        self.proxy = Some(ProxyChoice::Proxy(ProxyUrl::parse(url)?));
        Ok(self)
    }

    /// Connects directly, whatever the environment and [`Options::proxy`] say.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = Some(ProxyChoice::Direct);
        self
    }

    /// Opens a TCP connection (within [`Options::connect_timeout`]) and
    /// performs the handshake (within [`Options::handshake_timeout`]; for
    /// `wss://`, the TLS handshake comes first and the same timeout covers
    /// both).
    ///
    /// When a proxy applies ([`proxy`](Self::proxy), [`Options::proxy`], by
    /// default the environment), the TCP connection goes to the proxy, which
    /// is asked to `CONNECT` to the URL's host and port (the proxy resolves
    /// the name, except with `socks5://`, where this client resolves it and
    /// gives the proxy the first address); [`Options::connect_timeout`]
    /// covers both. TLS and the handshake then run through the tunnel. An
    /// `https://` proxy is reached over TLS first (verified against the
    /// proxy's name with the roots of `Options::tls`, within the connect
    /// timeout too), and the exchange and the tunnel run inside it.
    ///
    /// # Errors
    ///
    /// For a `wss://` URL or an `https://` proxy without the `tls` feature,
    /// [`Error::Unsupported`].
    pub fn connect(self) -> Result<(WebSocket<MaybeTls>, HandshakeResponse), Error> {
        if self.request.is_secure() {
            return self.connect_tls();
        }
        let (link, leftover) = self.open_link()?;
        let deadline = Deadline::after(self.options.handshake_timeout);
        let stream = match link {
            Link::Tcp(stream) => MaybeTls::Plain(stream),
            #[cfg(feature = "tls")]
            Link::ProxyTls(stream) => MaybeTls::ProxyTls(stream),
        };
        self.handshake_on(stream, &leftover, deadline)
    }

    #[cfg(not(feature = "tls"))]
    fn connect_tls(self) -> Result<(WebSocket<MaybeTls>, HandshakeResponse), Error> {
        Err(Error::Unsupported("wss:// needs the `tls` feature of rfc6455"))
    }

    #[cfg(feature = "tls")]
    fn connect_tls(self) -> Result<(WebSocket<MaybeTls>, HandshakeResponse), Error> {
        let tls = super::ClientTls::for_options(&self.options)?;
        let (link, leftover) = self.open_link()?;
        if !leftover.is_empty() {
            // The server cannot speak before our ClientHello.
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes arrived through the proxy's tunnel before the TLS handshake began",
            )));
        }
        let deadline = Deadline::after(self.options.handshake_timeout);
        let (host, write_timeout) = (self.request.host(), self.options.write_timeout);
        let stream = match link {
            Link::Tcp(stream) => MaybeTls::Tls(tls.connect_until(stream, host, deadline, write_timeout)?),
            Link::ProxyTls(stream) => {
                MaybeTls::TlsOverProxyTls(tls.connect_until(stream, host, deadline, write_timeout)?)
            }
        };
        self.handshake_on(stream, &[], deadline)
    }

    /// Performs the handshake over a stream that is already connected (a
    /// Unix socket, a tunnel, a test double). No proxy is used.
    /// Nothing is added to the stream: for a `wss://` URL, wrap it with
    /// `ClientTls::connect` first (the `tls` feature).
    pub fn connect_on<S: Transport>(self, stream: S) -> Result<(WebSocket<S>, HandshakeResponse), Error> {
        let deadline = Deadline::after(self.options.handshake_timeout);
        self.handshake_on(stream, &[], deadline)
    }

    /// The proxy to use for this URL, if any.
    fn resolve_proxy(&self) -> Result<Option<ProxyUrl>, Error> {
        match self.proxy.as_ref().unwrap_or(&self.options.proxy) {
            ProxyChoice::Direct => Ok(None),
            ProxyChoice::Proxy(proxy) => Ok(Some(proxy.clone())),
            ProxyChoice::FromEnvironment => {
                proxy_from_env(self.request.is_secure(), self.request.host(), self.request.port(), |name| {
                    std::env::var(name).ok()
                })
            }
        }
    }

    /// A connection to the server, direct or through a proxy's tunnel, and
    /// any bytes the proxy passed on after opening the tunnel (they come from
    /// the server).
    fn open_link(&self) -> Result<(Link, Vec<u8>), Error> {
        let (host, port) = (self.request.host(), self.request.port());
        match self.resolve_proxy()? {
            None => Ok((Link::Tcp(connect_tcp(host, port, &self.options)?), Vec::new())),
            Some(proxy) => tunnel(&proxy, host, port, &self.options),
        }
    }

    /// The opening handshake; `leftover` holds bytes of the server's answer
    /// already received (after a proxy's answer).
    fn handshake_on<S: Transport>(
        self,
        mut stream: S,
        leftover: &[u8],
        deadline: Deadline,
    ) -> Result<(WebSocket<S>, HandshakeResponse), Error> {
        let handshake = ClientHandshake::new(self.request, self.options.config.clone())?;
        write_all_until(&mut stream, handshake.request_bytes(), deadline, self.options.write_timeout)?;
        let mut progress =
            if leftover.is_empty() { ClientProgress::Pending(handshake) } else { handshake.receive(leftover)? };
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

/// The proxy the environment asks for to reach `host:port`, if any: see
/// [`ProxyChoice::FromEnvironment`]. `lookup` reads a variable.
fn proxy_from_env(
    secure: bool,
    host: &str,
    port: u16,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, Error> {
    let first_set = |names: &[&str]| names.iter().find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()));
    if is_loopback(host) {
        return Ok(None);
    }
    if first_set(&["no_proxy", "NO_PROXY"]).is_some_and(|list| no_proxy_matches(&list, host, port)) {
        return Ok(None);
    }
    let scheme_proxy = if secure {
        first_set(&["https_proxy", "HTTPS_PROXY"])
    } else if lookup("REQUEST_METHOD").is_some() {
        // CGI: HTTP_PROXY may come from a request's `Proxy` header.
        first_set(&["http_proxy"])
    } else {
        first_set(&["http_proxy", "HTTP_PROXY"])
    };
    match scheme_proxy.or_else(|| first_set(&["all_proxy", "ALL_PROXY"])) {
        Some(url) => Ok(Some(ProxyUrl::parse(&url)?)),
        None => Ok(None),
    }
}

/// `localhost` or a loopback address: never sent to an environment proxy.
fn is_loopback(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What reaches the server: a TCP connection, direct or through a tunnel,
/// or a tunnel inside TLS to an `https://` proxy.
enum Link {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    ProxyTls(super::TlsStream<TcpStream>),
}

/// Opens a tunnel to `host:port` through `proxy`, within the connect timeout
/// (or, without one, the handshake timeout): the connection to the proxy,
/// TLS to it for an `https://` proxy, and the exchange.
fn tunnel(proxy: &ProxyUrl, host: &str, port: u16, options: &Options) -> Result<(Link, Vec<u8>), Error> {
    let deadline = match (options.connect_timeout, options.handshake_timeout) {
        (Some(timeout), _) => Deadline::reported_as(Some(timeout), Timeout::Connect),
        (None, timeout) => Deadline::after(timeout),
    };
    // The request is built (and checked) before any connection is made.
    let exchange = match proxy.scheme() {
        ProxyScheme::Http | ProxyScheme::Https => {
            ProxyExchange::Http(ProxyConnect::new(host, port, proxy.credentials(), &options.config)?, false)
        }
        ProxyScheme::Socks5h => ProxyExchange::Socks5(Socks5Connect::new(host, port, proxy.credentials())?),
        // The client resolves the name; the proxy is given an address.
        ProxyScheme::Socks5 => {
            let name = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            let address = (name, port).to_socket_addrs()?.next().ok_or_else(|| {
                Error::Io(io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address")))
            })?;
            ProxyExchange::Socks5(Socks5Connect::new(&address.ip().to_string(), port, proxy.credentials())?)
        }
    };
    #[cfg(not(feature = "tls"))]
    if proxy.scheme() == ProxyScheme::Https {
        return Err(Error::Unsupported("https:// proxies need the `tls` feature of rfc6455"));
    }
    let stream = connect_tcp(proxy.host(), proxy.port(), options).map_err(|error| match error {
        // Name the proxy, so that "connection refused" is not blamed on the server.
        Error::Io(error) => Error::Io(io::Error::new(error.kind(), format!("proxy {proxy}: {error}"))),
        other => other,
    })?;
    #[cfg(feature = "tls")]
    if proxy.scheme() == ProxyScheme::Https {
        let tls = super::ClientTls::for_options(options)?;
        // The TLS handshake with the proxy is part of reaching it: its
        // timeout is the connect timeout's.
        let stream =
            tls.connect_until(stream, proxy.host(), deadline, options.write_timeout).map_err(|error| match error {
                Error::Timeout(Timeout::Handshake) => deadline.expired(),
                other => other,
            })?;
        let (stream, leftover) = run_exchange(stream, exchange, deadline, options)?;
        return Ok((Link::ProxyTls(stream), leftover));
    }
    let (stream, leftover) = run_exchange(stream, exchange, deadline, options)?;
    Ok((Link::Tcp(stream), leftover))
}

/// Sends the proxy its request and reads its answer, over `stream`, until
/// the tunnel is open; returns the stream and the bytes that followed the
/// answer.
fn run_exchange<S: Transport>(
    mut stream: S,
    mut exchange: ProxyExchange,
    deadline: Deadline,
    options: &Options,
) -> Result<(S, Vec<u8>), Error> {
    let mut buf = [0u8; 4096];
    loop {
        write_all_until(&mut stream, &exchange.take_output(), deadline, options.write_timeout)?;
        stream.set_read_timeout(deadline.remaining()?)?;
        exchange = match stream.read(&mut buf) {
            Ok(0) => return Err(exchange.receive_eof().into()),
            Ok(n) => match exchange.receive(&buf[..n])? {
                ControlFlow::Continue(exchange) => exchange,
                ControlFlow::Break(leftover) => return Ok((stream, leftover)),
            },
            Err(error) if error.kind() == io::ErrorKind::Interrupted => exchange,
            Err(error) if is_timeout(&error) => return Err(deadline.expired()),
            Err(error) => return Err(io_error(error)),
        };
    }
}

/// The exchange with a proxy of either kind, as [`tunnel`] drives it.
enum ProxyExchange {
    /// The `CONNECT` request, and whether it was handed out to send.
    Http(ProxyConnect, bool),
    Socks5(Socks5Connect),
}

impl ProxyExchange {
    /// What to send to the proxy now.
    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Self::Http(connect, sent) => {
                if std::mem::replace(sent, true) {
                    Vec::new()
                } else {
                    connect.request_bytes().to_vec()
                }
            }
            Self::Socks5(connect) => connect.take_output(),
        }
    }

    /// The exchange, still pending, or the bytes after the proxy's answer
    /// once the tunnel is open.
    fn receive(self, bytes: &[u8]) -> Result<ControlFlow<Vec<u8>, Self>, ProxyError> {
        Ok(match self {
            Self::Http(connect, sent) => match connect.receive(bytes)? {
                ProxyProgress::Pending(connect) => ControlFlow::Continue(Self::Http(connect, sent)),
                ProxyProgress::Established(tunnel) => ControlFlow::Break(tunnel.into_leftover()),
            },
            Self::Socks5(connect) => match connect.receive(bytes)? {
                Socks5Progress::Pending(connect) => ControlFlow::Continue(Self::Socks5(connect)),
                Socks5Progress::Established(leftover) => ControlFlow::Break(leftover),
            },
        })
    }

    fn receive_eof(self) -> ProxyError {
        match self {
            Self::Http(connect, _) => connect.receive_eof(),
            Self::Socks5(connect) => connect.receive_eof(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    fn chosen(secure: bool, host: &str, vars: &[(&str, &str)]) -> Option<String> {
        proxy_from_env(secure, host, 443, env(vars)).expect("valid").map(|proxy| proxy.to_string())
    }

    #[test]
    fn environment_variables_by_scheme() {
        let vars = [("http_proxy", "http://plain:1"), ("HTTPS_PROXY", "secure:2"), ("ALL_PROXY", "all:3")];
        assert_eq!(chosen(false, "example.com", &vars).as_deref(), Some("http://plain:1"));
        assert_eq!(chosen(true, "example.com", &vars).as_deref(), Some("http://secure:2"));
        assert_eq!(chosen(false, "example.com", &vars[1..]).as_deref(), Some("http://all:3"));
        assert_eq!(chosen(true, "example.com", &[("HTTP_PROXY", "http://plain:1")]), None);
        // Lowercase first; empty counts as unset.
        let vars = [("http_proxy", "lower:1"), ("HTTP_PROXY", "upper:2")];
        assert_eq!(chosen(false, "example.com", &vars).as_deref(), Some("http://lower:1"));
        let vars = [("http_proxy", " "), ("HTTP_PROXY", "upper:2")];
        assert_eq!(chosen(false, "example.com", &vars).as_deref(), Some("http://upper:2"));
        assert_eq!(chosen(false, "example.com", &[]), None);
    }

    #[test]
    fn no_proxy_loopback_and_cgi() {
        let vars = [("HTTP_PROXY", "http://p:1"), ("NO_PROXY", ".internal, example.org")];
        assert_eq!(chosen(false, "a.internal", &vars), None);
        assert_eq!(chosen(false, "example.org", &vars), None);
        assert_eq!(chosen(false, "example.com", &vars).as_deref(), Some("http://p:1"));
        let vars = [("HTTP_PROXY", "http://p:1"), ("no_proxy", "example.com"), ("NO_PROXY", "")];
        assert_eq!(chosen(false, "example.com", &vars), None);
        for host in ["localhost", "LOCALHOST.", "127.0.0.1", "127.1.2.3", "::1"] {
            assert_eq!(chosen(false, host, &[("HTTP_PROXY", "http://p:1")]), None, "{host}");
        }
        let vars = [("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(false, "example.com", &vars), None);
        let vars = [("http_proxy", "http://p:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(false, "example.com", &vars).as_deref(), Some("http://p:1"));
    }

    #[test]
    fn a_bad_environment_proxy_is_an_error() {
        let result = proxy_from_env(false, "example.com", 80, env(&[("ALL_PROXY", "socks4://p:1080")]));
        assert!(matches!(result, Err(Error::Proxy(ProxyError::UnsupportedScheme(s))) if s == "socks4"));
    }
}
