//! Proxies for clients, sans I/O: the `CONNECT` tunnel of an HTTP proxy
//! (RFC 9110 section 9.3.6, with optional Basic authentication, RFC 7617)
//! and of a SOCKS5 proxy ([`Socks5Connect`]: RFC 1928, with optional user
//! name and password, RFC 1929).
//!
//! A client that must go through an HTTP proxy opens a TCP connection to the
//! proxy (and TLS over it, for an `https://` proxy: the exchange below is the
//! same, inside), sends `CONNECT host:port HTTP/1.1` and reads the proxy's
//! answer. Any 2xx (Successful) status turns the connection into a blind
//! tunnel to `host:port`: from then on the WebSocket handshake (or TLS, for
//! `wss://`) runs over it as if the connection were direct. Anything else is
//! a refusal.
//!
//! - [`ProxyConnect`] builds the request ([`request_bytes`]) and reads the
//!   answer incrementally ([`receive`]), in linear time however the bytes are
//!   split, bounded by [`Config::max_handshake_size`] and
//!   [`Config::max_headers`]. Interim 1xx responses are skipped (RFC 9110
//!   section 15.2). Bytes after the final response head belong to the tunnel
//!   and are handed back in [`Tunnel::leftover`].
//! - [`ProxyUrl`] parses a proxy URL, `http://[user:password@]host[:port]`
//!   (port 80 by default), `https://` (the same exchange inside TLS to the
//!   proxy; port 443) or `socks5://` / `socks5h://` (port 1080), as found in
//!   `HTTP_PROXY` and friends.
//! - [`no_proxy_matches`] answers whether a `NO_PROXY` list exempts a host.
//!
//! Nothing here reads the environment or a socket: the
//! [blocking client](crate::blocking::ClientBuilder) does, and passes strings
//! and bytes in.
//!
//! [`request_bytes`]: ProxyConnect::request_bytes
//! [`receive`]: ProxyConnect::receive
//! [`Config::max_handshake_size`]: crate::Config::max_handshake_size
//! [`Config::max_headers`]: crate::Config::max_headers

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};

use crate::handshake::http::{self, HeadScanner};
use crate::{Config, HandshakeError, Headers, Limit};

mod socks5;
pub use socks5::{Socks5Connect, Socks5Progress};

/// Why a proxy URL, a `CONNECT` request or a proxy's answer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL is not `scheme://[user:password@]host[:port][/]`.
    #[error("invalid proxy URL: {0}")]
    InvalidUrl(&'static str),
    /// The proxy URL names a scheme other than `http`, `https`, `socks5`
    /// and `socks5h` (such as `socks4`).
    #[error("unsupported proxy scheme {0:?}: http://, https://, socks5:// and socks5h:// proxies are supported")]
    UnsupportedScheme(String),
    /// The host or port to tunnel to cannot be written in a `CONNECT`
    /// request (empty, a control character, a character outside RFC 3986's
    /// host syntax, or port 0).
    #[error("invalid CONNECT target: {0}")]
    InvalidTarget(&'static str),
    /// The user name or password cannot be sent with Basic authentication
    /// (RFC 7617 section 2: no control characters, and no `:` in the user
    /// name), or its percent-encoding in the URL is broken.
    #[error("invalid proxy credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The proxy answered 407 (Proxy Authentication Required).
    #[error(
        "the proxy requires authentication (407 Proxy Authentication Required){}",
        if *.credentials_sent { ": it refused the credentials given" } else { ": no credentials were given" }
    )]
    AuthenticationRequired {
        /// Whether the request carried `Proxy-Authorization`.
        credentials_sent: bool,
    },
    /// The proxy answered with a final status other than 2xx and 407.
    #[error("the proxy refused the tunnel: {status} {reason}")]
    Refused {
        /// The status code.
        status: u16,
        /// The reason phrase, with anything but printable ASCII dropped and
        /// cut to 128 characters.
        reason: String,
    },
    /// The proxy's answer is not an HTTP/1.x response.
    #[error("malformed proxy response: {0}")]
    MalformedResponse(&'static str),
    /// The proxy's answer is over a limit of [`Config`].
    #[error("proxy response exceeds {limit} ({max})")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: usize,
    },
    /// The proxy closed the connection before its answer was complete.
    #[error("the proxy closed the connection before answering the CONNECT request")]
    UnexpectedEof,
    /// The SOCKS5 proxy accepts none of the authentication methods offered
    /// (RFC 1928 section 3: it answered `X'FF'`).
    #[error(
        "the SOCKS5 proxy accepts none of the authentication methods offered{}",
        if *.credentials_offered { " (none, user name and password)" } else { ": it may want a user name and password" }
    )]
    SocksNoAcceptableMethod {
        /// Whether user name and password authentication was offered.
        credentials_offered: bool,
    },
    /// The SOCKS5 proxy refused the user name and password (RFC 1929).
    #[error("the SOCKS5 proxy refused the user name and password")]
    SocksAuthenticationFailed,
    /// The SOCKS5 proxy refused the connection to the target (RFC 1928
    /// section 6).
    #[error("the SOCKS5 proxy refused the connection: {} (reply code {code})", socks5::reply_meaning(*.code))]
    SocksRefused {
        /// The reply code: 1 general failure, 2 not allowed by ruleset, 3
        /// network unreachable, 4 host unreachable, 5 connection refused, 6
        /// TTL expired, 7 command not supported, 8 address type not supported.
        code: u8,
    },
}

impl ProxyError {
    /// The status the proxy answered with, for
    /// [`AuthenticationRequired`](Self::AuthenticationRequired) (407) and
    /// [`Refused`](Self::Refused).
    ///
    /// ```
    /// use rfc6455::ProxyError;
    /// assert_eq!(ProxyError::AuthenticationRequired { credentials_sent: false }.status(), Some(407));
    /// assert_eq!(ProxyError::UnexpectedEof.status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::AuthenticationRequired { .. } => Some(407),
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<HandshakeError> for ProxyError {
    /// The scanner and parser of HTTP heads report in the handshake's terms.
    fn from(error: HandshakeError) -> Self {
        match error {
            HandshakeError::LimitExceeded { limit, max } => Self::LimitExceeded { limit, max },
            HandshakeError::MalformedHttp(why) => Self::MalformedResponse(why),
            HandshakeError::UnsupportedHttpVersion => Self::MalformedResponse("unsupported HTTP version"),
            _ => Self::MalformedResponse("invalid response head"),
        }
    }
}

// ---------------------------------------------------------------------------
// The CONNECT exchange
// ---------------------------------------------------------------------------

/// One `CONNECT` exchange with an HTTP proxy (RFC 9110 section 9.3.6), with
/// optional Basic authentication (RFC 7617).
///
/// Send [`request_bytes`](Self::request_bytes) to the proxy, then feed what it
/// answers to [`receive`](Self::receive) until it returns
/// [`ProxyProgress::Established`].
///
/// ```
/// use rfc6455::{Config, ProxyConnect, ProxyProgress};
///
/// let connect = ProxyConnect::new("example.com", 443, Some(("alice", "secret")), &Config::default())?;
/// assert_eq!(
///     connect.request_bytes(),
///     b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
///       Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n"
/// );
/// let ProxyProgress::Established(tunnel) = connect.receive(b"HTTP/1.1 200 Connection established\r\n\r\n")? else {
///     panic!("the answer is complete");
/// };
/// assert_eq!(tunnel.status(), 200);
/// assert!(tunnel.leftover().is_empty());
/// # Ok::<(), rfc6455::ProxyError>(())
/// ```
#[derive(Clone)]
pub struct ProxyConnect {
    request: Vec<u8>,
    credentials_sent: bool,
    scanner: HeadScanner,
    /// Bytes of interim (1xx) responses already consumed; they count against
    /// `max_handshake_size` with the final response.
    consumed: usize,
    max_handshake_size: usize,
    max_headers: usize,
}

impl fmt::Debug for ProxyConnect {
    /// Shows the target, never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.request.split(|&b| b == b'\r').next().unwrap_or_default();
        f.debug_struct("ProxyConnect")
            .field("request_line", &String::from_utf8_lossy(line))
            .field("credentials_sent", &self.credentials_sent)
            .finish_non_exhaustive()
    }
}

/// What [`ProxyConnect::receive`] has made of the proxy's answer so far.
#[derive(Debug)]
pub enum ProxyProgress {
    /// The answer is not complete yet: feed more bytes.
    Pending(ProxyConnect),
    /// The proxy answered 2xx: the connection is now a tunnel to the target.
    Established(Tunnel),
}

/// A tunnel the proxy opened: its answer, and any bytes that followed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    status: u16,
    headers: Headers,
    leftover: Vec<u8>,
}

impl Tunnel {
    /// The 2xx status the proxy answered with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields of the proxy's answer. `Content-Length` and
    /// `Transfer-Encoding`, if any, mean nothing here (RFC 9110 section 9.3.6
    /// tells the client to ignore them).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Bytes received after the answer's head: the first bytes from the
    /// target, to be read before anything else from the tunnel.
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// Takes the [`leftover`](Self::leftover) bytes.
    pub fn into_leftover(self) -> Vec<u8> {
        self.leftover
    }
}

impl ProxyConnect {
    /// Prepares `CONNECT host:port HTTP/1.1` with a matching `Host` header
    /// and, given `credentials` (user name, password), a
    /// `Proxy-Authorization: Basic` header (RFC 7617: base64 of
    /// `user:password` in UTF-8).
    ///
    /// `host` is a name, an IPv4 address or an IPv6 address (with or without
    /// brackets). The limits on the answer come from `config`.
    ///
    /// # Errors
    ///
    /// - [`ProxyError::InvalidTarget`] for an empty host, one with control
    ///   characters (CR, LF and NUL included), spaces or characters outside
    ///   RFC 3986's host syntax, or port 0;
    /// - [`ProxyError::InvalidCredentials`] for a user name or password with
    ///   a control character, or a user name with `:`.
    pub fn new(host: &str, port: u16, credentials: Option<(&str, &str)>, config: &Config) -> Result<Self, ProxyError> {
        let authority = connect_authority(host, port)?;
        let mut request = Vec::with_capacity(128);
        request.extend_from_slice(b"CONNECT ");
        request.extend_from_slice(authority.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        request.extend_from_slice(authority.as_bytes());
        request.extend_from_slice(b"\r\n");
        if let Some((user, password)) = credentials {
            request.extend_from_slice(b"Proxy-Authorization: ");
            request.extend_from_slice(basic_credentials(user, password)?.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        Ok(Self {
            request,
            credentials_sent: credentials.is_some(),
            scanner: HeadScanner::new(config.max_handshake_size),
            consumed: 0,
            max_handshake_size: config.max_handshake_size,
            max_headers: config.max_headers,
        })
    }

    /// The request to send to the proxy.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// Feeds bytes received from the proxy.
    ///
    /// Returns [`ProxyProgress::Pending`] until a final response head is
    /// complete. Interim 1xx responses (other than 101) are skipped; their
    /// bytes count against [`Config::max_handshake_size`] with the final one.
    ///
    /// # Errors
    ///
    /// - [`ProxyError::AuthenticationRequired`] for 407;
    /// - [`ProxyError::Refused`] for any other final status but 2xx;
    /// - [`ProxyError::MalformedResponse`] when the answer is not HTTP/1.x;
    /// - [`ProxyError::LimitExceeded`] for a head over
    ///   [`Config::max_handshake_size`] or with more than
    ///   [`Config::max_headers`] fields.
    pub fn receive(mut self, bytes: &[u8]) -> Result<ProxyProgress, ProxyError> {
        let mut bytes = bytes;
        let mut carried;
        loop {
            if !self.scanner.feed(bytes)? {
                return Ok(ProxyProgress::Pending(self));
            }
            let (head, rest) = self.scanner.parts().ok_or(ProxyError::MalformedResponse("incomplete message head"))?;
            let parsed = http::parse_response(head, self.max_headers)?;
            if parsed.version > 1 {
                return Err(ProxyError::MalformedResponse("not an HTTP/1.x response"));
            }
            // httparse never counts more than the head; anything it left over
            // follows the response, like `rest`.
            let after_head = head.get(parsed.len..).unwrap_or_default();
            let mut following = Vec::with_capacity(after_head.len() + rest.len());
            following.extend_from_slice(after_head);
            following.extend_from_slice(rest);
            match parsed.status {
                200..=299 => {
                    return Ok(ProxyProgress::Established(Tunnel {
                        status: parsed.status,
                        headers: parsed.headers,
                        leftover: following,
                    }));
                }
                100 | 102..=199 => {
                    // An interim response: the final one follows. Every byte
                    // is scanned once, and all heads share one size budget.
                    self.consumed += parsed.len;
                    let left = self.max_handshake_size.saturating_sub(self.consumed);
                    self.scanner = HeadScanner::new(left);
                    carried = following;
                    bytes = &carried;
                }
                407 => return Err(ProxyError::AuthenticationRequired { credentials_sent: self.credentials_sent }),
                status => return Err(ProxyError::Refused { status, reason: reason_phrase(head) }),
            }
            if self.consumed >= self.max_handshake_size {
                return Err(ProxyError::LimitExceeded { limit: Limit::MaxHandshakeSize, max: self.max_handshake_size });
            }
        }
    }

    /// The proxy closed the connection before its answer was complete:
    /// returns [`ProxyError::UnexpectedEof`].
    pub fn receive_eof(self) -> ProxyError {
        ProxyError::UnexpectedEof
    }
}

/// The reason phrase of a status line, printable ASCII only, at most 128
/// characters.
fn reason_phrase(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.splitn(3, |&b| b == b' ');
    let reason = words.nth(2).unwrap_or_default();
    reason.iter().filter(|b| b.is_ascii_graphic() || **b == b' ').take(128).map(|&b| char::from(b)).collect()
}

/// `host:port` for the request line and `Host`, with brackets around an IPv6
/// address.
fn connect_authority(host: &str, port: u16) -> Result<String, ProxyError> {
    if port == 0 {
        return Err(ProxyError::InvalidTarget("port 0"));
    }
    if host.is_empty() {
        return Err(ProxyError::InvalidTarget("empty host"));
    }
    if host.bytes().any(|b| b.is_ascii_control()) {
        return Err(ProxyError::InvalidTarget("control characters in the host"));
    }
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if inner.contains(':') {
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(ProxyError::InvalidTarget("invalid IPv6 address"));
        }
        return Ok(format!("[{inner}]:{port}"));
    }
    if !host.bytes().all(is_reg_name_char) {
        return Err(ProxyError::InvalidTarget("characters outside the host syntax"));
    }
    Ok(format!("{host}:{port}"))
}

/// `reg-name` characters (RFC 3986 section 3.2.2): unreserved, `%` of
/// pct-encoded, and sub-delims.
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// `Basic base64(user:password)` (RFC 7617 section 2).
fn basic_credentials(user: &str, password: &str) -> Result<String, ProxyError> {
    use base64::Engine as _;
    if user.contains(':') {
        return Err(ProxyError::InvalidCredentials("a user name cannot contain ':' (RFC 7617)"));
    }
    if user.chars().chain(password.chars()).any(char::is_control) {
        return Err(ProxyError::InvalidCredentials("control characters (CR, LF, NUL...) in the user name or password"));
    }
    let pair = format!("{user}:{password}");
    Ok(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
}

// ---------------------------------------------------------------------------
// Proxy URLs
// ---------------------------------------------------------------------------

/// A proxy: `scheme://[user:password@]host[:port][/]`, where the scheme is
/// `http` or `https` (see [`ProxyConnect`]), `socks5` or `socks5h` (see
/// [`Socks5Connect`] and [`ProxyScheme`]).
///
/// The port defaults to 80 for `http`, 443 for `https` and 1080 for SOCKS5.
/// A URL without a scheme (`proxy.example:3128`, as often found in
/// `HTTP_PROXY`) is taken as `http://`. The user name and password are
/// percent-decoded. Other schemes are refused with
/// [`ProxyError::UnsupportedScheme`].
///
/// Neither `Debug` nor `Display` shows the password.
///
/// ```
/// let proxy = rfc6455::ProxyUrl::parse("http://alice:p%40ss@proxy.example:3128")?;
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
/// assert_eq!(proxy.credentials(), Some(("alice", "p@ss")));
/// assert_eq!(proxy.to_string(), "http://proxy.example:3128");
/// let socks = rfc6455::ProxyUrl::parse("socks5h://proxy.example")?;
/// assert_eq!((socks.scheme(), socks.port()), (rfc6455::ProxyScheme::Socks5h, 1080));
/// # Ok::<(), rfc6455::ProxyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ProxyUrl {
    /// `scheme://host:port`, without the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The kind of proxy a [`ProxyUrl`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// `http://`: an HTTP proxy's `CONNECT` tunnel ([`ProxyConnect`]).
    Http,
    /// `https://`: the same `CONNECT` exchange inside TLS to the proxy
    /// itself, which then carries the tunnel (and, for `wss://`, the
    /// server's own TLS inside it), so that the proxy's name, the target's
    /// name and the credentials cross the network encrypted.
    Https,
    /// `socks5://`: a SOCKS5 proxy ([`Socks5Connect`]); the client resolves
    /// the server's name and sends the proxy an address.
    Socks5,
    /// `socks5h://`: a SOCKS5 proxy that resolves the server's name itself
    /// (the client's resolver never sees it).
    Socks5h,
}

impl ProxyUrl {
    /// Parses a proxy URL (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// [`ProxyError::InvalidUrl`], [`ProxyError::UnsupportedScheme`] or
    /// [`ProxyError::InvalidCredentials`].
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        let url = url.trim_matches(|c: char| c.is_ascii_whitespace());
        if !url.is_ascii() {
            return Err(ProxyError::InvalidUrl("non-ASCII characters (percent-encode them)"));
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ProxyError::InvalidUrl("spaces or control characters"));
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => {
                if scheme.eq_ignore_ascii_case("http") {
                    (ProxyScheme::Http, rest)
                } else if scheme.eq_ignore_ascii_case("socks5") {
                    (ProxyScheme::Socks5, rest)
                } else if scheme.eq_ignore_ascii_case("socks5h") {
                    (ProxyScheme::Socks5h, rest)
                } else if scheme.eq_ignore_ascii_case("https") {
                    (ProxyScheme::Https, rest)
                } else {
                    return Err(ProxyError::UnsupportedScheme(scheme.to_owned()));
                }
            }
            None => (ProxyScheme::Http, url),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() && tail != "/" {
            return Err(ProxyError::InvalidUrl("a proxy URL has no path, query or fragment"));
        }
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user)?;
                let password = percent_decode(password)?;
                // Checked now rather than at CONNECT time.
                if matches!(scheme, ProxyScheme::Http | ProxyScheme::Https) {
                    basic_credentials(&user, &password)?;
                } else {
                    socks5::authentication_request(&user, &password)?;
                }
                (Some((user, password)), host_port)
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
            let (addr, after) = inner.split_once(']').ok_or(ProxyError::InvalidUrl("unclosed IPv6 bracket"))?;
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(ProxyError::InvalidUrl("invalid IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(ProxyError::InvalidUrl("characters after the IPv6 address"))?),
            };
            (addr, port)
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(ProxyError::InvalidUrl("missing host"));
        }
        if !host.contains(':') && !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err(ProxyError::InvalidUrl("invalid characters in the host"));
        }
        let port = match port {
            None => match scheme {
                ProxyScheme::Http => 80,
                ProxyScheme::Https => 443,
                ProxyScheme::Socks5 | ProxyScheme::Socks5h => 1080,
            },
            Some(p) => parse_port(p).ok_or(ProxyError::InvalidUrl("invalid port"))?,
        };
        Ok(Self { scheme, host: host.to_owned(), port, credentials })
    }

    /// Which kind of proxy this is.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The proxy's host: a name, an IPv4 address, or an IPv6 address without
    /// brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (unless given, 80 for `http`, 443 for `https`, 1080
    /// for SOCKS5).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password (percent-decoded), if the URL has any. A
    /// user name without a password gives an empty password.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(user, password)| (user.as_str(), password.as_str()))
    }
}

/// `port = 1*5DIGIT`, from 1 to 65535.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&port| port != 0)
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, ProxyError> {
    const BAD: ProxyError = ProxyError::InvalidCredentials("broken percent-encoding");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|h| char::from(h).to_digit(16)).ok_or(BAD)?;
            let lo = bytes.next().and_then(|l| char::from(l).to_digit(16)).ok_or(BAD)?;
            // Two hex digits: at most 0xFF.
            out.push(u8::try_from(hi * 16 + lo).map_err(|_| BAD)?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| ProxyError::InvalidCredentials("not UTF-8 once percent-decoded"))
}

// ---------------------------------------------------------------------------
// NO_PROXY
// ---------------------------------------------------------------------------

/// Whether a `NO_PROXY` list exempts `host:port` from the proxy.
///
/// The list is comma-separated; spaces around entries and empty entries are
/// ignored. An entry is:
///
/// - `*`: every host;
/// - a domain, optionally with a leading `.` or `*.`: that domain and its
///   subdomains (`example.com` and `.example.com` both match `example.com`
///   and `a.example.com`, never `badexample.com`);
/// - an IP address (IPv6 with or without brackets): that address exactly,
///   however it is written (`::1` matches `0:0::1`); an IP host is matched by
///   IP entries only;
/// - any of these followed by `:port`: only that port.
///
/// Names compare case-insensitively, a trailing `.` ignored. Entries that are
/// neither (`10.0.0.0/8`, a bad port) match nothing. The work is linear in the
/// length of the list.
///
/// ```
/// use rfc6455::no_proxy_matches;
/// let list = "localhost, .internal.example, example.com:8080, 10.1.2.3";
/// assert!(no_proxy_matches(list, "ws.internal.example", 443));
/// assert!(no_proxy_matches(list, "example.com", 8080));
/// assert!(!no_proxy_matches(list, "example.com", 443));
/// assert!(!no_proxy_matches(list, "badexample.com", 8080));
/// assert!(no_proxy_matches(list, "10.1.2.3", 80));
/// assert!(no_proxy_matches("*", "anything", 1));
/// ```
pub fn no_proxy_matches(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = strip_brackets(host);
    let host_ip = host.parse::<IpAddr>().ok();
    let host = host.strip_suffix('.').unwrap_or(host);
    no_proxy.split(',').any(|entry| entry_matches(entry.trim_matches([' ', '\t']), host, host_ip, port))
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry.is_empty() {
        return false;
    }
    if entry == "*" {
        return true;
    }
    let Some((name, entry_port)) = split_entry_port(entry) else {
        return false;
    };
    if let Some(entry_port) = entry_port {
        match parse_port(entry_port) {
            Some(p) if p == port => {}
            _ => return false,
        }
    }
    let name = strip_brackets(name);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    if host_ip.is_some() {
        return false;
    }
    let name = name.strip_prefix('*').unwrap_or(name);
    let name = name.strip_prefix('.').unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return false;
    }
    if host.len() == name.len() {
        return host.eq_ignore_ascii_case(name);
    }
    // A subdomain: `host` ends with `.name`.
    match host.len().checked_sub(name.len() + 1).map(|dot| host.as_bytes().split_at(dot)) {
        Some((_, [b'.', suffix @ ..])) => suffix.eq_ignore_ascii_case(name.as_bytes()),
        _ => false,
    }
}

/// `name[:port]`, `[v6][:port]`, or a bare IPv6 address (several colons, no
/// port); `None` for a bracket left open or followed by anything but `:port`.
fn split_entry_port(entry: &str) -> Option<(&str, Option<&str>)> {
    if entry.starts_with('[') {
        let close = entry.find(']')?;
        let (name, after) = entry.split_at(close + 1);
        return match after {
            "" => Some((name, None)),
            _ => Some((name, Some(after.strip_prefix(':')?))),
        };
    }
    Some(match entry.split_once(':') {
        Some((name, port)) if !port.contains(':') => (name, Some(port)),
        _ => (entry, None),
    })
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}
