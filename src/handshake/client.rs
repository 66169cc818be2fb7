//! The client side of the opening handshake: the request of RFC 6455 section
//! 4.1 and the checks on the server's response that the same section requires
//! (its second list, "If the server's response is not valid ... the client
//! MUST _Fail the WebSocket Connection_").

use base64::Engine as _;
use rand::Rng as _;

use crate::{Config, Connection, HandshakeError, Role};

use super::headers::{is_token, list_contains, list_elements, trim_ows};
use super::http::{self, HeadScanner};
use super::url::{self, WsUrl};
use crate::deflate;

use super::{Extension, Headers, accept_key, check_user_header, is_field_value, parse_extensions, push_header};

/// What a client asks for: the URL and the optional parts of the request of
/// section 4.1.
///
/// Built from a `ws://` or `wss://` URL, then refined with the builder
/// methods. Nothing is validated until [`ClientHandshake::new`], except the
/// URL itself.
///
/// ```
/// let request = rfc6455::ClientRequest::new("wss://example.com:8443/chat?room=1")?
///     .origin("https://example.com")
///     .protocol("chat.v2")
///     .protocol("chat.v1")
///     .header("Authorization", "Bearer abc");
/// assert_eq!(request.host(), "example.com");
/// assert_eq!(request.port(), 8443);
/// assert!(request.is_secure());
/// assert_eq!(request.target(), "/chat?room=1");
/// # Ok::<(), rfc6455::HandshakeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    url: WsUrl,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// Parses a `ws` or `wss` URL (RFC 6455 section 3; schemes compared
    /// case-insensitively).
    ///
    /// The host may be a name, an IPv4 address or a bracketed IPv6 address;
    /// the port defaults to 80 for `ws` and 443 for `wss`; the path and query
    /// are kept exactly, an empty path becoming `/`.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::UnsupportedScheme`] for another scheme, and
    /// [`HandshakeError::InvalidUrl`] for a fragment, userinfo, a missing host,
    /// a bad port, non-ASCII characters, spaces or control characters.
    pub fn new(url: &str) -> Result<Self, HandshakeError> {
        Ok(Self {
            url: url::parse(url)?,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// Sends an `Origin` header (section 4.1, item 8; browsers always do).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol, in order of preference; call once per name.
    /// Names must be tokens, each offered once.
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Offers one or more extensions, written as in a
    /// `Sec-WebSocket-Extensions` value (for example
    /// `"permessage-deflate; client_max_window_bits"`). The server may accept
    /// only extensions whose names were offered.
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        self.extensions.push(offer.into());
        self
    }

    /// Adds a header to the request, after those the handshake writes.
    ///
    /// The name must be a token, the value free of control characters, and
    /// the name not one the handshake sets (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The host to connect to: a name, an IPv4 address, or an IPv6 address
    /// without its brackets (`::1` for `ws://[::1]/`), ready for a resolver.
    pub fn host(&self) -> &str {
        &self.url.host
    }

    /// The port to connect to: explicit, or 80 for `ws` and 443 for `wss`.
    pub fn port(&self) -> u16 {
        self.url.port
    }

    /// Whether the scheme is `wss`: the caller must run TLS below.
    pub fn is_secure(&self) -> bool {
        self.url.secure
    }

    /// The request target: the path and query, starting with `/`.
    pub fn target(&self) -> &str {
        &self.url.target
    }
}

/// The client side of the opening handshake, waiting for the server's
/// response.
///
/// Send [`request_bytes`](Self::request_bytes), then feed whatever the server
/// sends to [`receive`](Self::receive) until it returns
/// [`ClientProgress::Done`]. Bytes after the response's header block (the
/// first frames) go to the new [`Connection`].
///
/// ```
/// use rfc6455::{ClientHandshake, ClientProgress, ClientRequest, Config};
///
/// let hs = ClientHandshake::new(ClientRequest::new("ws://example.com/chat")?, Config::default())?;
/// assert!(hs.request_bytes().starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
/// let response = format!(
///     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///      Sec-WebSocket-Accept: {}\r\n\r\n",
///     rfc6455::accept_key(hs.key().as_bytes()),
/// );
/// let ClientProgress::Done(_connection, response) = hs.receive(response.as_bytes())? else {
///     panic!("incomplete");
/// };
/// assert_eq!(response.status(), 101);
/// # Ok::<(), rfc6455::HandshakeError>(())
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    config: Config,
    request: Vec<u8>,
    key: String,
    protocols: Vec<String>,
    extension_names: Vec<String>,
    scanner: HeadScanner,
}

/// What [`ClientHandshake::receive`] made of the bytes so far.
#[derive(Debug)]
// Both variants are short-lived values of the public API; boxing would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ClientProgress {
    /// The response's header block is not complete yet: feed more bytes.
    Pending(ClientHandshake),
    /// The server accepted: the connection is open.
    Done(Connection, HandshakeResponse),
}

/// The server's accepting response, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeResponse {
    status: u16,
    headers: Headers,
    protocol: Option<String>,
    extensions: Vec<Extension>,
}

impl HandshakeResponse {
    /// The status code (always 101 for a completed handshake).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header field of the response.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The subprotocol the server chose, if any (one of those offered).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extensions the server accepted, with their parameters, in order
    /// (each named in the offer).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }
}

impl ClientHandshake {
    /// Validates `request`, draws a random 16-byte key from
    /// [`Config::rng_seed`]'s generator (the operating system's by default)
    /// and writes the request of section 4.1.
    ///
    /// # Errors
    ///
    /// - [`HandshakeError::InvalidHeaderName`] for a header name that is not
    ///   a token;
    /// - [`HandshakeError::InvalidHeaderValue`] for CR, LF, NUL or another
    ///   control character in a header value or the origin;
    /// - [`HandshakeError::ReservedHeader`] for a header the handshake sets;
    /// - [`HandshakeError::InvalidSubprotocol`] for a subprotocol that is not
    ///   a token, or offered twice;
    /// - [`HandshakeError::InvalidExtensionOffer`] for an extension offer that
    ///   does not parse.
    pub fn new(request: ClientRequest, config: Config) -> Result<Self, HandshakeError> {
        let mut nonce = [0u8; 16];
        config.rng().fill_bytes(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        Self::with_key(request, config, key)
    }

    /// [`new`](Self::new) with a given key.
    fn with_key(request: ClientRequest, config: Config, key: String) -> Result<Self, HandshakeError> {
        let ClientRequest { url, origin, protocols, extensions, headers } = request;

        for (name, value) in &headers {
            check_user_header(name, value)?;
        }
        if let Some(origin) = &origin
            && !is_field_value(origin)
        {
            return Err(HandshakeError::InvalidHeaderValue("Origin".to_owned()));
        }
        for (i, p) in protocols.iter().enumerate() {
            if !is_token(p.as_bytes()) || protocols.get(..i).is_some_and(|prev| prev.contains(p)) {
                return Err(HandshakeError::InvalidSubprotocol(p.clone()));
            }
        }
        let mut offered = Vec::new();
        for offer in &extensions {
            let parsed = parse_extensions(offer).map_err(|_| HandshakeError::InvalidExtensionOffer(offer.clone()))?;
            // The core implements permessage-deflate and negotiates it itself
            // (Config::deflate); a hand-written offer would be accepted with
            // nothing to decompress its messages.
            if parsed.iter().any(|e| e.name.eq_ignore_ascii_case(deflate::PERMESSAGE_DEFLATE)) {
                return Err(HandshakeError::InvalidExtensionOffer(offer.clone()));
            }
            offered.extend(parsed);
        }
        if let Some(deflate_config) = &config.deflate {
            let offer = deflate::client_offer(deflate_config);
            offered.extend(parse_extensions(&offer).map_err(|_| HandshakeError::InvalidExtensionOffer(offer))?);
        }

        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(url.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        push_header(&mut out, "Host", url.host_header.as_bytes());
        push_header(&mut out, "Upgrade", b"websocket");
        push_header(&mut out, "Connection", b"Upgrade");
        push_header(&mut out, "Sec-WebSocket-Key", key.as_bytes());
        push_header(&mut out, "Sec-WebSocket-Version", b"13");
        if let Some(origin) = &origin {
            push_header(&mut out, "Origin", origin.as_bytes());
        }
        if !protocols.is_empty() {
            push_header(&mut out, "Sec-WebSocket-Protocol", protocols.join(", ").as_bytes());
        }
        if !offered.is_empty() {
            let value: Vec<String> = offered.iter().map(Extension::to_header_value).collect();
            push_header(&mut out, "Sec-WebSocket-Extensions", value.join(", ").as_bytes());
        }
        for (name, value) in &headers {
            push_header(&mut out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");

        let mut extension_names: Vec<String> = Vec::new();
        for e in offered {
            if !extension_names.contains(&e.name) {
                extension_names.push(e.name);
            }
        }
        let scanner = HeadScanner::new(config.max_handshake_size);
        Ok(Self { config, request: out, key, protocols, extension_names, scanner })
    }

    /// The whole request to send: request line, headers and blank line.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent: base64 of 16 random bytes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Feeds bytes received from the server.
    ///
    /// Returns [`ClientProgress::Pending`] until the response's header block
    /// is complete, then checks it and returns [`ClientProgress::Done`] with
    /// the open client [`Connection`] (already fed any bytes received after
    /// the header block) and the response.
    ///
    /// # Errors
    ///
    /// - [`HandshakeError::LimitExceeded`] for a header block over
    ///   [`Config::max_handshake_size`] or with more than
    ///   [`Config::max_headers`] fields;
    /// - [`HandshakeError::MalformedHttp`] when it is not HTTP/1.1;
    /// - [`HandshakeError::UnexpectedStatus`] for any status but 101;
    /// - [`HandshakeError::ResponseMissingUpgrade`],
    ///   [`HandshakeError::ResponseMissingConnectionUpgrade`],
    ///   [`HandshakeError::MissingAccept`], [`HandshakeError::AcceptMismatch`]
    ///   when the response does not confirm the upgrade of this key;
    /// - [`HandshakeError::UnexpectedSubprotocol`],
    ///   [`HandshakeError::UnexpectedExtension`],
    ///   [`HandshakeError::MalformedResponseExtensions`] when the server chose
    ///   something not offered.
    pub fn receive(mut self, bytes: &[u8]) -> Result<ClientProgress, HandshakeError> {
        if !self.scanner.feed(bytes)? {
            return Ok(ClientProgress::Pending(self));
        }
        let (head, rest) = self.scanner.parts().ok_or(HandshakeError::MalformedHttp("incomplete message head"))?;
        let parsed = http::parse_response(head, self.config.max_headers)?;
        let response = self.check(parsed.status, parsed.version, parsed.headers)?;
        let deflate = match &self.config.deflate {
            Some(deflate_config) => deflate::accept_response(&response.extensions, deflate_config)
                .map_err(HandshakeError::DeflateNegotiation)?,
            None => None,
        };
        // httparse never counts more than the head; anything it left over
        // belongs to the connection.
        let leftover_head = head.get(parsed.len..).unwrap_or_default();
        let mut connection = Connection::with_extensions(Role::Client, self.config.clone(), deflate);
        if !leftover_head.is_empty() {
            connection.receive(leftover_head);
        }
        if !rest.is_empty() {
            connection.receive(rest);
        }
        Ok(ClientProgress::Done(connection, response))
    }

    /// The transport ended before the response was complete: returns
    /// [`HandshakeError::UnexpectedEof`].
    pub fn receive_eof(self) -> HandshakeError {
        HandshakeError::UnexpectedEof
    }

    /// The checks of section 4.1 on a complete response.
    fn check(&self, status: u16, version: u8, headers: Headers) -> Result<HandshakeResponse, HandshakeError> {
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus { status });
        }
        if version != 1 {
            return Err(HandshakeError::MalformedHttp("response is not HTTP/1.1"));
        }
        if !list_contains(&headers, "Upgrade", "websocket") {
            return Err(HandshakeError::ResponseMissingUpgrade);
        }
        if !list_contains(&headers, "Connection", "upgrade") {
            return Err(HandshakeError::ResponseMissingConnectionUpgrade);
        }
        {
            let mut accepts = headers.get_all("Sec-WebSocket-Accept");
            let accept = accepts.next().ok_or(HandshakeError::MissingAccept)?;
            let expected = accept_key(self.key.as_bytes());
            if accepts.next().is_some() || trim_ows(accept) != expected.as_bytes() {
                return Err(HandshakeError::AcceptMismatch);
            }
        }

        let mut protocol = None;
        for value in headers.get_all("Sec-WebSocket-Protocol") {
            let chosen = String::from_utf8_lossy(value);
            if protocol.is_some() || !self.protocols.iter().any(|p| *p == chosen) {
                return Err(HandshakeError::UnexpectedSubprotocol(chosen.into_owned()));
            }
            protocol = Some(chosen.into_owned());
        }

        let mut extensions = Vec::new();
        for value in headers.get_all("Sec-WebSocket-Extensions") {
            let value = std::str::from_utf8(value).map_err(|_| HandshakeError::MalformedResponseExtensions)?;
            if list_elements(value.as_bytes()).next().is_none() {
                // An empty field: nothing accepted.
                continue;
            }
            let parsed = parse_extensions(value).map_err(|_| HandshakeError::MalformedResponseExtensions)?;
            for e in parsed {
                if !self.extension_names.contains(&e.name) {
                    return Err(HandshakeError::UnexpectedExtension(e.name));
                }
                extensions.push(e);
            }
        }

        Ok(HandshakeResponse { status, headers, protocol, extensions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";

    fn rfc_client() -> ClientHandshake {
        let request = ClientRequest::new("ws://server.example.com/chat")
            .unwrap()
            .origin("http://example.com")
            .protocol("chat")
            .protocol("superchat");
        ClientHandshake::with_key(request, Config::default(), "dGhlIHNhbXBsZSBub25jZQ==".into()).unwrap()
    }

    fn done(p: ClientProgress) -> (Connection, HandshakeResponse) {
        match p {
            ClientProgress::Done(c, r) => (c, r),
            ClientProgress::Pending(_) => panic!("pending"),
        }
    }

    #[test]
    fn rfc_section_1_3_example() {
        let hs = rfc_client();
        assert_eq!(
            hs.request_bytes(),
            &b"GET /chat HTTP/1.1\r\n\
               Host: server.example.com\r\n\
               Upgrade: websocket\r\n\
               Connection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
               Sec-WebSocket-Version: 13\r\n\
               Origin: http://example.com\r\n\
               Sec-WebSocket-Protocol: chat, superchat\r\n\r\n"[..]
        );
        let (_, r) = done(hs.receive(RFC_RESPONSE).unwrap());
        assert_eq!(r.status(), 101);
        assert_eq!(r.protocol(), Some("chat"));
        assert!(r.extensions().is_empty());
        assert_eq!(r.headers().len(), 4);
    }

    #[test]
    fn byte_at_a_time() {
        let mut hs = rfc_client();
        let mut response = RFC_RESPONSE.to_vec();
        response.extend_from_slice(&[0x81, 0x00]);
        let head_len = RFC_RESPONSE.len();
        for (i, b) in response.iter().enumerate() {
            match hs.receive(&[*b]).unwrap() {
                ClientProgress::Pending(next) => {
                    assert!(i + 1 < head_len);
                    hs = next;
                }
                ClientProgress::Done(_, r) => {
                    assert_eq!(i + 1, head_len);
                    assert_eq!(r.protocol(), Some("chat"));
                    return;
                }
            }
        }
        panic!("never completed");
    }

    #[test]
    fn random_keys_are_16_bytes_and_seeded() {
        let config = Config { rng_seed: Some([3; 32]), ..Config::default() };
        let req = || ClientRequest::new("ws://h/").unwrap();
        let a = ClientHandshake::new(req(), config.clone()).unwrap();
        let b = ClientHandshake::new(req(), config).unwrap();
        assert_eq!(a.key(), b.key());
        let decoded = base64::engine::general_purpose::STANDARD.decode(a.key()).unwrap();
        assert_eq!(decoded.len(), 16);
        let c = ClientHandshake::new(req(), Config::default()).unwrap();
        let d = ClientHandshake::new(req(), Config::default()).unwrap();
        assert_ne!(c.key(), d.key());
    }

    #[test]
    fn extension_offers_are_normalised_and_checked() {
        let request = ClientRequest::new("ws://h/").unwrap().extension("x-bar; max=\"15\", x-bar").extension("x-foo");
        let hs = ClientHandshake::with_key(request, Config::default(), "dGhlIHNhbXBsZSBub25jZQ==".into()).unwrap();
        let text = String::from_utf8(hs.request_bytes().to_vec()).unwrap();
        assert!(text.contains("\r\nSec-WebSocket-Extensions: x-bar; max=15, x-bar, x-foo\r\n"));
        assert_eq!(hs.extension_names, ["x-bar", "x-foo"]);
        let response = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Extensions: x-bar; mode\r\n\
             Sec-WebSocket-Extensions: x-foo\r\n\r\n";
        let (_, r) = done(hs.receive(response.as_bytes()).unwrap());
        assert_eq!(r.extensions().len(), 2);
        assert_eq!(r.extensions()[0].params[0].0, "mode");

        // permessage-deflate is the core's to offer (Config::deflate), not the
        // application's: by hand it would be accepted with nothing to inflate.
        let by_hand = ClientRequest::new("ws://h/").unwrap().extension("permessage-deflate");
        assert_eq!(
            ClientHandshake::new(by_hand, Config::default()).unwrap_err(),
            HandshakeError::InvalidExtensionOffer("permessage-deflate".into())
        );

        let bad = ClientRequest::new("ws://h/").unwrap().extension("a b");
        assert_eq!(
            ClientHandshake::new(bad, Config::default()).unwrap_err(),
            HandshakeError::InvalidExtensionOffer("a b".into())
        );
    }

    #[test]
    fn duplicate_or_bad_protocols() {
        let dup = ClientRequest::new("ws://h/").unwrap().protocol("a").protocol("a");
        assert_eq!(
            ClientHandshake::new(dup, Config::default()).unwrap_err(),
            HandshakeError::InvalidSubprotocol("a".into())
        );
        let bad = ClientRequest::new("ws://h/").unwrap().protocol("a,b");
        assert_eq!(
            ClientHandshake::new(bad, Config::default()).unwrap_err(),
            HandshakeError::InvalidSubprotocol("a,b".into())
        );
    }

    #[test]
    fn response_checks() {
        let base = |extra: &str| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
            )
        };
        let run = |response: String| rfc_client().receive(response.as_bytes()).map(|p| done(p).1);
        assert!(run(base("")).unwrap().protocol().is_none());
        assert_eq!(
            run(base("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n")).unwrap_err(),
            HandshakeError::UnexpectedSubprotocol("chat".into())
        );
        assert_eq!(
            run(base("Sec-WebSocket-Protocol: chat, superchat\r\n")).unwrap_err(),
            HandshakeError::UnexpectedSubprotocol("chat, superchat".into())
        );
        assert_eq!(
            run(base("Sec-WebSocket-Extensions: x;\r\n")).unwrap_err(),
            HandshakeError::MalformedResponseExtensions
        );
        assert_eq!(
            run(base("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")).unwrap_err(),
            HandshakeError::AcceptMismatch
        );
        assert_eq!(
            run("HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                .into())
            .unwrap_err(),
            HandshakeError::MalformedHttp("response is not HTTP/1.1")
        );
        assert!(matches!(run("HTTP/1.1 10x Nope\r\n\r\n".into()).unwrap_err(), HandshakeError::MalformedHttp(_)));
        assert_eq!(rfc_client().receive_eof(), HandshakeError::UnexpectedEof);
        // Case and list forms accepted.
        let ok = "HTTP/1.1 101 Switching Protocols\nupgrade: WebSocket\nconnection: keep-alive, UPGRADE\n\
                  sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \n\n";
        assert!(run(ok.into()).is_ok());
    }

    #[test]
    fn response_limits() {
        let config = Config { max_headers: 2, ..Config::default() };
        let hs = ClientHandshake::with_key(ClientRequest::new("ws://h/").unwrap(), config, "k".into()).unwrap();
        assert_eq!(
            hs.receive(b"HTTP/1.1 101 X\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").unwrap_err(),
            HandshakeError::LimitExceeded { limit: crate::Limit::MaxHeaders, max: 2 }
        );
        let config = Config { max_handshake_size: 20, ..Config::default() };
        let hs = ClientHandshake::with_key(ClientRequest::new("ws://h/").unwrap(), config, "k".into()).unwrap();
        assert_eq!(
            hs.receive(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            HandshakeError::LimitExceeded { limit: crate::Limit::MaxHandshakeSize, max: 20 }
        );
    }
}
