//! The server side of the opening handshake: reading the client's request
//! (RFC 6455 section 4.2.1), answering it (section 4.2.2), and answering
//! requests that fail (section 4.2.1's "400 Bad Request", section 4.4's 426
//! for an unsupported version) or are plain HTTP.

use base64::Engine as _;

use crate::{Config, Connection, HandshakeError, Role};

use super::headers::{is_token, list_contains, list_elements};
use super::http::{self, HeadScanner};
use crate::deflate;

use super::{Extension, Headers, accept_key, check_header_syntax, check_user_header, parse_extensions};

/// The server side of the opening handshake, reading a request.
///
/// Feed whatever the client sends to [`receive`](Self::receive) until it
/// returns [`ServerProgress::Request`]. Any HTTP request is returned, so that
/// plain HTTP on the WebSocket port can be served too; see
/// [`Request::is_upgrade`] and [`Request::into_upgrade`].
///
/// ```
/// use rfc6455::{Accept, Config, ServerHandshake, ServerProgress};
///
/// let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// let ServerProgress::Request(request) = ServerHandshake::new(Config::default()).receive(request)? else {
///     panic!("incomplete");
/// };
/// let upgrade = match request.into_upgrade() {
///     Ok(upgrade) => upgrade,
///     // Send `e.http_response()` and close.
///     Err(e) => return Err(e),
/// };
/// assert_eq!(upgrade.protocols(), ["chat", "superchat"]);
/// let (response, _connection) = upgrade.accept(Accept::new().protocol("chat"))?;
/// assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// # Ok::<(), rfc6455::HandshakeError>(())
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    config: Config,
    scanner: HeadScanner,
}

/// How many bytes of an incomplete request are checked for a method token.
const METHOD_PREFIX: usize = 16;

/// What [`ServerHandshake::receive`] made of the bytes so far.
#[derive(Debug)]
pub enum ServerProgress {
    /// The request's header block is not complete yet: feed more bytes.
    Pending(ServerHandshake),
    /// A complete request, upgrade or not.
    Request(Request),
}

impl ServerHandshake {
    /// Waits for a request, with the limits of `config`.
    pub fn new(config: Config) -> Self {
        let scanner = HeadScanner::new(config.max_handshake_size);
        Self { config, scanner }
    }

    /// Feeds bytes received from the client.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::LimitExceeded`] for a header block over
    /// [`Config::max_handshake_size`] (checked as bytes arrive) or with more
    /// than [`Config::max_headers`] fields, [`HandshakeError::MalformedHttp`]
    /// when it is not an HTTP/1.x request, and
    /// [`HandshakeError::UnsupportedHttpVersion`] for another HTTP version.
    /// Answer them with [`HandshakeError::http_response`].
    pub fn receive(mut self, bytes: &[u8]) -> Result<ServerProgress, HandshakeError> {
        let fed = self.scanner.feed(bytes);
        // A request line starts with a method token: anything else (a TLS
        // ClientHello on a plain port, binary noise) is refused as soon as it
        // shows, rather than after waiting for a blank line that may never
        // come. The check looks at the same first bytes whether the head is
        // complete, incomplete or over the size limit, and comes before
        // either verdict, so any split of the input gets the same answer; at
        // most a few bytes are looked at per call, so the work stays linear.
        let start = self.scanner.start_of_message(METHOD_PREFIX);
        let method = start.split(|&b| b == b' ').next().unwrap_or_default();
        if !method.iter().all(|&b| super::headers::is_tchar(b)) {
            return Err(HandshakeError::MalformedHttp("not an HTTP request"));
        }
        if !fed? {
            return Ok(ServerProgress::Pending(self));
        }
        let (head, rest) = self.scanner.parts().ok_or(HandshakeError::MalformedHttp("incomplete message head"))?;
        let parsed = http::parse_request(head, self.config.max_headers)?;
        let mut leftover = head.get(parsed.len..).unwrap_or_default().to_vec();
        leftover.extend_from_slice(rest);
        Ok(ServerProgress::Request(Request {
            method: parsed.method,
            target: parsed.target,
            version: parsed.version,
            headers: parsed.headers,
            leftover,
            config: self.config,
        }))
    }

    /// The transport ended before the request was complete: returns
    /// [`HandshakeError::UnexpectedEof`]. There is no one to answer.
    pub fn receive_eof(self) -> HandshakeError {
        HandshakeError::UnexpectedEof
    }
}

/// A complete HTTP request: a WebSocket upgrade attempt, or plain HTTP for the
/// same port.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    target: String,
    version: u8,
    headers: Headers,
    leftover: Vec<u8>,
    config: Config,
}

/// Splits a request target into path and query at the first `?`.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

impl Request {
    /// The method, such as `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as received: the path and query, or another form
    /// such as `*` for plain HTTP.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target up to its first `?`.
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The target after its first `?`, if it has one.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// Every header field of the request.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first `Host` value, if present and valid UTF-8.
    pub fn host(&self) -> Option<&str> {
        self.headers.get_str("Host")
    }

    /// Whether this asks for a WebSocket upgrade: `Upgrade` lists `websocket`,
    /// or a `Sec-WebSocket-Key` is present. Such a request should go through
    /// [`into_upgrade`](Self::into_upgrade), whose errors say why it fails.
    ///
    /// `false` for plain HTTP, which the application answers itself with a
    /// [`Response`] (reading any body from [`leftover`](Self::leftover) on).
    pub fn is_upgrade(&self) -> bool {
        list_contains(&self.headers, "Upgrade", "websocket") || self.headers.get("Sec-WebSocket-Key").is_some()
    }

    /// Bytes received after the header block: for plain HTTP, the start of a
    /// body or of the next request.
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// Whether more of the request follows its header block: bytes already
    /// received after it ([`leftover`](Self::leftover)), or a body announced
    /// by a `Transfer-Encoding` or a `Content-Length` other than 0 (RFC 9112
    /// section 6.3).
    ///
    /// A server that answers without reading all of it should go on reading
    /// (and discarding) until the client ends its side before it closes:
    /// closing with input unread, or with more on the way, resets the
    /// connection, and the client may then lose the answer.
    pub fn has_more_input(&self) -> bool {
        !self.leftover.is_empty()
            || self.headers.get("Transfer-Encoding").is_some()
            || self.headers.get_all("Content-Length").any(|value| value.trim_ascii() != b"0")
    }

    /// Validates the request as a WebSocket upgrade (section 4.2.1).
    ///
    /// # Errors
    ///
    /// In the order checked; answer each with
    /// [`HandshakeError::http_response`]:
    ///
    /// - [`HandshakeError::MethodNotGet`] (405);
    /// - [`HandshakeError::UnsupportedHttpVersion`] for HTTP/1.0 (505);
    /// - [`HandshakeError::MissingHost`] for no or an empty `Host`, and
    ///   [`HandshakeError::MalformedHttp`] for several `Host` fields or one that
    ///   is not UTF-8 (400);
    /// - [`HandshakeError::MissingUpgrade`] when no `Upgrade` lists
    ///   `websocket`, [`HandshakeError::MissingConnectionUpgrade`] when no
    ///   `Connection` lists `upgrade` (case-insensitive; 400);
    /// - [`HandshakeError::MissingKey`], [`HandshakeError::DuplicateKey`],
    ///   [`HandshakeError::InvalidKey`] unless there is exactly one
    ///   `Sec-WebSocket-Key` that is base64 of 16 bytes (400);
    /// - [`HandshakeError::UnsupportedVersion`] unless there is exactly one
    ///   `Sec-WebSocket-Version` and it is `13` (426);
    /// - [`HandshakeError::MalformedProtocols`] when a `Sec-WebSocket-Protocol`
    ///   element is not a token, [`HandshakeError::MalformedExtensions`] when a
    ///   `Sec-WebSocket-Extensions` field does not parse (400). All fields of
    ///   each are read as one list; fields with no element are ignored.
    pub fn into_upgrade(self) -> Result<UpgradeRequest, HandshakeError> {
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotGet(self.method));
        }
        if self.version != 1 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        let host = {
            let mut hosts = self.headers.get_all("Host");
            let host = hosts.next().ok_or(HandshakeError::MissingHost)?;
            if hosts.next().is_some() {
                return Err(HandshakeError::MalformedHttp("more than one Host field"));
            }
            if host.is_empty() {
                return Err(HandshakeError::MissingHost);
            }
            std::str::from_utf8(host).map_err(|_| HandshakeError::MalformedHttp("Host is not valid UTF-8"))?.to_owned()
        };
        if !list_contains(&self.headers, "Upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !list_contains(&self.headers, "Connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let key = {
            let mut keys = self.headers.get_all("Sec-WebSocket-Key");
            let key = keys.next().ok_or(HandshakeError::MissingKey)?;
            if keys.next().is_some() {
                return Err(HandshakeError::DuplicateKey);
            }
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(key).map_err(|_| HandshakeError::InvalidKey)?;
            if decoded.len() != 16 {
                return Err(HandshakeError::InvalidKey);
            }
            // Valid base64 is ASCII.
            String::from_utf8(key.to_vec()).map_err(|_| HandshakeError::InvalidKey)?
        };
        {
            let versions: Vec<&[u8]> = self.headers.get_all("Sec-WebSocket-Version").collect();
            match versions.as_slice() {
                [] => return Err(HandshakeError::UnsupportedVersion(None)),
                [v] if *v == b"13" => {}
                _ => {
                    let joined: Vec<String> =
                        versions.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
                    return Err(HandshakeError::UnsupportedVersion(Some(joined.join(", "))));
                }
            }
        }
        let mut protocols = Vec::new();
        for value in self.headers.get_all("Sec-WebSocket-Protocol") {
            for element in list_elements(value) {
                if !is_token(element) {
                    return Err(HandshakeError::MalformedProtocols);
                }
                // Tokens are ASCII.
                protocols.push(String::from_utf8_lossy(element).into_owned());
            }
        }
        let mut extensions = Vec::new();
        for value in self.headers.get_all("Sec-WebSocket-Extensions") {
            if list_elements(value).next().is_none() {
                continue;
            }
            let value = std::str::from_utf8(value).map_err(|_| HandshakeError::MalformedExtensions)?;
            extensions.extend(parse_extensions(value)?);
        }
        let origin = self.headers.get_str("Origin").map(str::to_owned);
        Ok(UpgradeRequest {
            target: self.target,
            headers: self.headers,
            host,
            origin,
            protocols,
            extensions,
            key,
            leftover: self.leftover,
            config: self.config,
        })
    }
}

/// A valid WebSocket upgrade request, waiting for the application's answer:
/// [`accept`](Self::accept) or [`reject`](Self::reject).
#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    target: String,
    headers: Headers,
    host: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
    key: String,
    leftover: Vec<u8>,
    config: Config,
}

impl UpgradeRequest {
    /// The target up to its first `?` (the resource name of section 3).
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The target after its first `?`, if it has one.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// The request target as received.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every header field of the request.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The `Host` value.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The first `Origin` value, if present and valid UTF-8. Browsers always
    /// send it; check it against the origins you serve (section 10.2).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The subprotocols offered, in the client's order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The extensions offered, in order.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The `Sec-WebSocket-Key`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Accepts the upgrade: returns the 101 response to send (section 4.2.2)
    /// and the open server [`Connection`], already fed the bytes that followed
    /// the request.
    ///
    /// # Errors
    ///
    /// - [`HandshakeError::SubprotocolNotOffered`] if the chosen subprotocol
    ///   was not offered;
    /// - [`HandshakeError::InvalidExtensionOffer`] if an accepted extension
    ///   does not parse, and [`HandshakeError::UnexpectedExtension`] if its
    ///   name was not offered;
    /// - [`HandshakeError::InvalidHeaderName`],
    ///   [`HandshakeError::InvalidHeaderValue`],
    ///   [`HandshakeError::ReservedHeader`] for extra headers, as on the
    ///   client.
    pub fn accept(self, accept: Accept) -> Result<(Vec<u8>, Connection), HandshakeError> {
        if let Some(protocol) = &accept.protocol
            && !self.protocols.contains(protocol)
        {
            return Err(HandshakeError::SubprotocolNotOffered(protocol.clone()));
        }
        let mut accepted = Vec::new();
        // permessage-deflate first: the core negotiates it from the client's
        // offers (in their order of preference) when Config::deflate is set.
        let deflate =
            self.config.deflate.as_ref().and_then(|config| deflate::negotiate_offer(&self.extensions, config));
        if let Some(params) = &deflate {
            accepted.push(params.to_header_value());
        }
        for value in &accept.extensions {
            let parsed = parse_extensions(value).map_err(|_| HandshakeError::InvalidExtensionOffer(value.clone()))?;
            for e in parsed {
                // Accepting it by hand would leave its messages undecoded.
                if e.name.eq_ignore_ascii_case(deflate::PERMESSAGE_DEFLATE) {
                    return Err(HandshakeError::InvalidExtensionOffer(value.clone()));
                }
                if !self.extensions.iter().any(|offered| offered.name == e.name) {
                    return Err(HandshakeError::UnexpectedExtension(e.name));
                }
                accepted.push(e.to_header_value());
            }
        }
        for (name, value) in &accept.headers {
            check_user_header(name, value)?;
        }

        let accept_value = accept_key(self.key.as_bytes());
        let mut fixed =
            vec![("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_value.as_str())];
        if let Some(protocol) = &accept.protocol {
            fixed.push(("Sec-WebSocket-Protocol", protocol.as_str()));
        }
        let extensions = accepted.join(", ");
        if !accepted.is_empty() {
            fixed.push(("Sec-WebSocket-Extensions", extensions.as_str()));
        }
        let response = http::write_response(101, &fixed, &accept.headers, &[], false, &[]);

        let mut connection = Connection::with_extensions(Role::Server, self.config, deflate);
        if !self.leftover.is_empty() {
            connection.receive(&self.leftover);
        }
        Ok((response, connection))
    }

    /// Refuses the upgrade with any status but 101: returns the response to
    /// send, with `Content-Length` (unless given) and `Connection: close`
    /// added. Close the connection after sending it.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidStatus`] for 101 or a status outside 100-999,
    /// [`HandshakeError::ReservedHeader`] for a `Connection` header, and the
    /// header errors of [`Response::to_bytes`].
    pub fn reject(self, response: Response) -> Result<Vec<u8>, HandshakeError> {
        if response.status == 101 {
            return Err(HandshakeError::InvalidStatus(101));
        }
        if let Some((name, _)) = response.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Connection")) {
            return Err(HandshakeError::ReservedHeader(name.clone()));
        }
        response.encode(&[("Connection", "close")])
    }
}

/// The application's choice when accepting an upgrade: a subprotocol, accepted
/// extensions, extra headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    protocol: Option<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// No subprotocol, no extension, no extra header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses a subprotocol; it must be one the client offered
    /// ([`UpgradeRequest::protocols`]).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocol = Some(name.into());
        self
    }

    /// Accepts one or more extensions, written as in a
    /// `Sec-WebSocket-Extensions` value (for example
    /// `"permessage-deflate; server_no_context_takeover"`); each name must be
    /// one the client offered ([`UpgradeRequest::extensions`]).
    pub fn extension(mut self, response: impl Into<String>) -> Self {
        self.extensions.push(response.into());
        self
    }

    /// Adds a header to the 101 response. The name must be a token, the value
    /// free of control characters, and the name not one the handshake sets
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Host`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A plain HTTP/1.1 response: a rejected upgrade
/// ([`UpgradeRequest::reject`]) or a page served on the WebSocket port
/// ([`to_bytes`](Self::to_bytes)).
///
/// ```
/// let bytes = rfc6455::Response::new(200)
///     .header("Content-Type", "text/plain")
///     .body("hello")
///     .to_bytes()?;
/// assert_eq!(
///     bytes,
///     b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
/// );
/// # Ok::<(), rfc6455::HandshakeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with this status, no header and an empty body. The reason
    /// phrase comes from a table of common statuses, `Unknown` otherwise.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// 426 Upgrade Required, the answer to a plain HTTP request on an
    /// endpoint that only speaks WebSocket: it names the protocol to upgrade
    /// to (`Upgrade: websocket`, as RFC 9110 section 15.5.22 requires) and the
    /// version (`Sec-WebSocket-Version: 13`).
    pub fn upgrade_required() -> Self {
        Self::new(426)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .body("This endpoint speaks WebSocket only.\n")
    }

    /// Adds a header. The name must be a token and the value free of control
    /// characters (checked by [`to_bytes`](Self::to_bytes)).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The bytes to send: status line, headers, `Content-Length` (unless a
    /// `Content-Length` or `Transfer-Encoding` was given, or the status is 1xx
    /// or 204, which may not carry one), blank line, body.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidStatus`] for a status outside 100-999,
    /// [`HandshakeError::InvalidHeaderName`] for a name that is not a token,
    /// [`HandshakeError::InvalidHeaderValue`] for a value with CR, LF, NUL or
    /// another control character.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HandshakeError> {
        self.encode(&[])
    }

    /// The bytes to send when the connection closes after this response, as
    /// it does after any answer to a request that was not upgraded: like
    /// [`to_bytes`](Self::to_bytes), plus `Connection: close` unless the
    /// application set a `Connection` header itself.
    ///
    /// # Errors
    ///
    /// As [`to_bytes`](Self::to_bytes).
    pub fn to_bytes_closing(&self) -> Result<Vec<u8>, HandshakeError> {
        if self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("Connection")) {
            self.encode(&[])
        } else {
            self.encode(&[("Connection", "close")])
        }
    }

    fn encode(&self, extra: &[(&str, &str)]) -> Result<Vec<u8>, HandshakeError> {
        if !(100..=999).contains(&self.status) {
            return Err(HandshakeError::InvalidStatus(self.status));
        }
        for (name, value) in &self.headers {
            check_header_syntax(name, value)?;
        }
        let content_length = self.status >= 200 && self.status != 204;
        let out = http::write_response(self.status, &[], &self.headers, extra, content_length, &self.body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn request(bytes: &[u8]) -> Request {
        match ServerHandshake::new(Config::default()).receive(bytes).unwrap() {
            ServerProgress::Request(r) => r,
            ServerProgress::Pending(_) => panic!("pending"),
        }
    }

    #[test]
    fn more_input_is_a_body_announced_or_bytes_after_the_head() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:  0 \r\n\r\n", false),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n", true),
            (RFC_REQUEST, false),
        ];
        for (bytes, more) in cases {
            assert_eq!(request(bytes).has_more_input(), more, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn rfc_section_1_3_example() {
        let r = request(RFC_REQUEST);
        assert!(r.is_upgrade());
        assert_eq!(r.host(), Some("server.example.com"));
        let u = r.into_upgrade().unwrap();
        assert_eq!(u.path(), "/chat");
        assert_eq!(u.query(), None);
        assert_eq!(u.origin(), Some("http://example.com"));
        assert_eq!(u.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(u.protocols(), ["chat", "superchat"]);
        let (response, _) = u.accept(Accept::new().protocol("chat")).unwrap();
        assert_eq!(
            response,
            &b"HTTP/1.1 101 Switching Protocols\r\n\
               Upgrade: websocket\r\n\
               Connection: Upgrade\r\n\
               Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
               Sec-WebSocket-Protocol: chat\r\n\r\n"[..]
        );
    }

    #[test]
    fn accept_checks() {
        let u = || request(RFC_REQUEST).into_upgrade().unwrap();
        assert_eq!(
            u().accept(Accept::new().protocol("other")).unwrap_err(),
            HandshakeError::SubprotocolNotOffered("other".into())
        );
        assert_eq!(
            u().accept(Accept::new().header("Sec-WebSocket-Accept", "x")).unwrap_err(),
            HandshakeError::ReservedHeader("Sec-WebSocket-Accept".into())
        );
        assert_eq!(
            u().accept(Accept::new().header("X", "a\r\nB: c")).unwrap_err(),
            HandshakeError::InvalidHeaderValue("X".into())
        );
        assert_eq!(
            u().accept(Accept::new().extension("x-foo")).unwrap_err(),
            HandshakeError::UnexpectedExtension("x-foo".into())
        );
        let (response, _) = u().accept(Accept::new().header("Set-Cookie", "a=b")).unwrap();
        assert!(response.ends_with(b"\r\nSet-Cookie: a=b\r\n\r\n"));
    }

    #[test]
    fn extensions_offered_and_accepted() {
        let req = String::from_utf8(RFC_REQUEST.to_vec()).unwrap().replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Sec-WebSocket-Extensions: \r\nSec-WebSocket-Extensions: x-foo, x-bar\r\n\r\n",
        );
        let u = request(req.as_bytes()).into_upgrade().unwrap();
        let names: Vec<_> = u.extensions().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["permessage-deflate", "x-foo", "x-bar"]);
        let (response, _) = u.clone().accept(Accept::new().extension("x-foo; level=\"10\"")).unwrap();
        let text = String::from_utf8(response).unwrap();
        assert!(text.contains("\r\nSec-WebSocket-Extensions: x-foo; level=10\r\n"));
        // permessage-deflate is the core's to accept (Config::deflate).
        assert!(u.accept(Accept::new().extension("permessage-deflate")).is_err());
    }

    #[test]
    fn reject_and_plain_responses() {
        let u = request(RFC_REQUEST).into_upgrade().unwrap();
        let required = String::from_utf8(Response::upgrade_required().to_bytes_closing().unwrap()).unwrap();
        assert!(required.starts_with("HTTP/1.1 426 "));
        assert!(
            required.contains("\r\nUpgrade: websocket\r\n") && required.contains("\r\nSec-WebSocket-Version: 13\r\n")
        );
        let plain = Response::new(200).body("ok");
        assert!(plain.to_bytes_closing().unwrap().ends_with(b"Content-Length: 2\r\nConnection: close\r\n\r\nok"));
        let kept = Response::new(200).header("Connection", "keep-alive").to_bytes_closing().unwrap();
        assert!(!String::from_utf8(kept).unwrap().contains("close"));
        let bytes = u.clone().reject(Response::new(403).body("go away")).unwrap();
        assert_eq!(bytes, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nConnection: close\r\n\r\ngo away");
        assert_eq!(u.clone().reject(Response::new(101)).unwrap_err(), HandshakeError::InvalidStatus(101));
        assert_eq!(u.clone().reject(Response::new(99)).unwrap_err(), HandshakeError::InvalidStatus(99));
        assert_eq!(u.clone().reject(Response::new(1000)).unwrap_err(), HandshakeError::InvalidStatus(1000));
        assert_eq!(
            u.reject(Response::new(400).header("connection", "keep-alive")).unwrap_err(),
            HandshakeError::ReservedHeader("connection".into())
        );
        assert_eq!(Response::new(599).to_bytes().unwrap(), b"HTTP/1.1 599 Unknown\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(Response::new(204).to_bytes().unwrap(), b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            Response::new(200).header("Content-Length", "3").body("abc").to_bytes().unwrap(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        );
        assert_eq!(
            Response::new(200).header("Bad:Name", "x").to_bytes().unwrap_err(),
            HandshakeError::InvalidHeaderName("Bad:Name".into())
        );
        assert_eq!(
            Response::new(200).header("X", "\0").to_bytes().unwrap_err(),
            HandshakeError::InvalidHeaderValue("X".into())
        );
    }

    #[test]
    fn target_split_and_leftover() {
        let r = request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\nabc");
        assert!(!r.is_upgrade());
        assert_eq!((r.method(), r.target(), r.path(), r.query()), ("OPTIONS", "*", "*", None));
        assert_eq!(r.leftover(), b"abc");
        let r = request(b"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((r.path(), r.query()), ("/a", Some("b?c")));
        let r = request(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((r.path(), r.query()), ("/a", Some("")));
    }

    #[test]
    fn host_edge_cases() {
        let with = |host_lines: &str| {
            let req = format!(
                "GET / HTTP/1.1\r\n{host_lines}Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            request(req.as_bytes()).into_upgrade()
        };
        assert_eq!(with("Host:\r\n").unwrap_err(), HandshakeError::MissingHost);
        assert!(matches!(with("Host: a\r\nHost: b\r\n").unwrap_err(), HandshakeError::MalformedHttp(_)));
        assert_eq!(with("host: a:1\r\n").unwrap().host(), "a:1");
    }

    #[test]
    fn version_list_is_unsupported() {
        let req = String::from_utf8(RFC_REQUEST.to_vec()).unwrap().replace("Version: 13", "Version: 13, 8");
        assert_eq!(
            request(req.as_bytes()).into_upgrade().unwrap_err(),
            HandshakeError::UnsupportedVersion(Some("13, 8".into()))
        );
    }
}
