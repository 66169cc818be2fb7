//! The HTTP/1.1 message head (RFC 7230 section 3): finding where it ends
//! incrementally, parsing it once with `httparse`, and writing responses.
//!
//! [`HeadScanner`] keeps the bytes received and how far it has looked for the
//! blank line that ends the header block (`CRLF CRLF`, or bare `LF LF`; RFC
//! 7230 section 3.5 allows the bare form). Each byte is examined once, however
//! the input is split, so the total work is linear in what was received; the
//! head is handed to `httparse` only once it is complete. Empty lines before
//! the start line are skipped (RFC 7230 section 3.5).

use crate::{HandshakeError, Limit};

use super::{Headers, headers::trim_ows, push_header};

/// Where the scanner stands within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineState {
    /// At the start of a line (or of the input).
    Start,
    /// At the start of a line, after a CR.
    StartCr,
    /// Inside a line.
    Inside,
}

/// Incremental search for the end of an HTTP message head.
#[derive(Clone, Debug)]
pub(crate) struct HeadScanner {
    /// Everything received so far.
    buf: Vec<u8>,
    /// How many bytes of `buf` have been examined.
    scanned: usize,
    /// Where the message starts, after any empty lines before it.
    start: usize,
    /// Once found: where the head ends (just after its blank line).
    end: Option<usize>,
    state: LineState,
    /// Whether the start line has begun.
    in_message: bool,
    /// [`Config::max_handshake_size`](crate::Config::max_handshake_size).
    max: usize,
    /// Bytes examined, counted separately to prove linear work in tests.
    #[cfg(test)]
    work: usize,
}

impl HeadScanner {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            start: 0,
            end: None,
            state: LineState::Start,
            in_message: false,
            max,
            #[cfg(test)]
            work: 0,
        }
    }

    /// Takes more bytes; `Ok(true)` once the head is complete.
    ///
    /// Fails with [`Limit::MaxHandshakeSize`] as soon as more than `max` bytes
    /// are held without the end of the head among the first `max`.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<bool, HandshakeError> {
        if self.end.is_some() {
            self.buf.extend_from_slice(bytes);
            return Ok(true);
        }
        // Until the end of the head is found, nothing past one byte over the
        // limit is kept: a huge chunk is not copied just to be refused.
        let room = (self.max + 1).saturating_sub(self.buf.len());
        let (head, rest) = bytes.split_at(bytes.len().min(room));
        self.buf.extend_from_slice(head);
        let found = self.scan();
        if found {
            // What follows the head (the first frames) belongs to the connection.
            self.buf.extend_from_slice(rest);
            return Ok(true);
        }
        if self.buf.len() > self.max {
            return Err(HandshakeError::LimitExceeded { limit: Limit::MaxHandshakeSize, max: self.max });
        }
        Ok(false)
    }

    /// Scans the bytes not scanned yet for the blank line ending the head.
    fn scan(&mut self) -> bool {
        let limit = self.buf.len().min(self.max);
        let window = self.buf.get(self.scanned..limit).unwrap_or_default();
        for (offset, &b) in window.iter().enumerate() {
            let pos = self.scanned + offset;
            #[cfg(test)]
            {
                self.work += 1;
            }
            self.state = match (self.state, b) {
                (LineState::Start | LineState::StartCr, b'\n') => {
                    if self.in_message {
                        self.end = Some(pos + 1);
                        self.scanned = pos + 1;
                        return true;
                    }
                    self.start = pos + 1;
                    LineState::Start
                }
                (LineState::Start, b'\r') => LineState::StartCr,
                (_, b'\n') => LineState::Start,
                _ => {
                    self.in_message = true;
                    LineState::Inside
                }
            };
        }
        self.scanned = limit;
        false
    }

    /// The first bytes of a message whose head is still incomplete (at most
    /// `max`), for checks that can fail early; empty before it starts.
    pub(crate) fn start_of_message(&self, max: usize) -> &[u8] {
        if !self.in_message {
            return &[];
        }
        let end = self.buf.len().min(self.start.saturating_add(max));
        self.buf.get(self.start..end).unwrap_or_default()
    }

    /// The complete head (start line to blank line, inclusive) and every byte
    /// received after it; `None` until [`feed`](Self::feed) returned `true`.
    pub(crate) fn parts(&self) -> Option<(&[u8], &[u8])> {
        let end = self.end?;
        let head = self.buf.get(self.start..end)?;
        let rest = self.buf.get(end..)?;
        Some((head, rest))
    }

    #[cfg(test)]
    pub(crate) fn work(&self) -> usize {
        self.work
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub(crate) version: u8,
    pub(crate) headers: Headers,
    /// The length of the head as `httparse` counted it.
    pub(crate) len: usize,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) version: u8,
    pub(crate) headers: Headers,
    pub(crate) len: usize,
}

/// Room for the header fields `httparse` may find: `max_headers`, but never
/// more than the head could hold (a field takes at least three bytes), so the
/// allocation is bounded by what was received as well as by the configuration.
fn header_slots(head: &[u8], max_headers: usize) -> Vec<httparse::Header<'_>> {
    vec![httparse::EMPTY_HEADER; max_headers.min(head.len() / 2 + 1)]
}

fn map_error(e: httparse::Error, max_headers: usize) -> HandshakeError {
    use httparse::Error as H;
    HandshakeError::MalformedHttp(match e {
        H::TooManyHeaders => {
            return HandshakeError::LimitExceeded { limit: Limit::MaxHeaders, max: max_headers };
        }
        H::HeaderName => "invalid header name",
        H::HeaderValue => "invalid header value",
        H::NewLine => "invalid line ending",
        H::Status => "invalid response status",
        H::Token => "invalid token in the start line",
        H::Version => "invalid HTTP version",
    })
}

fn collect_headers(fields: &[httparse::Header<'_>]) -> Headers {
    let mut headers = Headers::default();
    for h in fields {
        headers.push(h.name.to_owned(), trim_ows(h.value).to_vec());
    }
    headers
}

const INCOMPLETE: HandshakeError = HandshakeError::MalformedHttp("incomplete message head");

/// Parses a complete request head.
pub(crate) fn parse_request(head: &[u8], max_headers: usize) -> Result<RequestHead, HandshakeError> {
    let mut slots = header_slots(head, max_headers);
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(INCOMPLETE),
        Err(httparse::Error::Version) if names_http_version(head) => {
            // A well-formed "HTTP/x.y" other than 1.0 and 1.1.
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        Err(e) => return Err(map_error(e, max_headers)),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(INCOMPLETE);
    };
    Ok(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        version,
        headers: collect_headers(req.headers),
        len,
    })
}

/// Whether the request line ends in `HTTP/<digit>.<digit>` or `HTTP/<digit>`.
fn names_http_version(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match word.strip_prefix(b"HTTP/") {
        Some([major]) => major.is_ascii_digit(),
        Some([major, b'.', minor]) => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    }
}

/// Parses a complete response head.
pub(crate) fn parse_response(head: &[u8], max_headers: usize) -> Result<ResponseHead, HandshakeError> {
    let mut slots = header_slots(head, max_headers);
    let mut res = httparse::Response::new(&mut slots);
    let len = match res.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(INCOMPLETE),
        Err(e) => return Err(map_error(e, max_headers)),
    };
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Err(INCOMPLETE);
    };
    Ok(ResponseHead { status, version, headers: collect_headers(res.headers), len })
}

/// The reason phrase sent with `status`.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a response: status line, `fixed` headers, `user` headers,
/// `Content-Length` when `content_length` and no `Content-Length` or
/// `Transfer-Encoding` was given, `last` headers, the blank line and the body.
/// The caller has validated every name and value.
pub(crate) fn write_response(
    status: u16,
    fixed: &[(&str, &str)],
    user: &[(String, String)],
    last: &[(&str, &str)],
    content_length: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    for (name, value) in fixed {
        push_header(&mut out, name, value.as_bytes());
    }
    for (name, value) in user {
        push_header(&mut out, name, value.as_bytes());
    }
    let framed = user
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Content-Length") || n.eq_ignore_ascii_case("Transfer-Encoding"));
    if content_length && !framed {
        push_header(&mut out, "Content-Length", body.len().to_string().as_bytes());
    }
    for (name, value) in last {
        push_header(&mut out, name, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

impl HandshakeError {
    /// The HTTP status a server answers this error with: 400 for a malformed
    /// or incomplete upgrade request, 405 for a method other than GET, 426 for
    /// an unsupported `Sec-WebSocket-Version`, 431 for a request over
    /// [`Config::max_handshake_size`](crate::Config::max_handshake_size) or
    /// [`Config::max_headers`](crate::Config::max_headers), 505 for an HTTP
    /// version other than 1.1.
    ///
    /// `None` for errors that are not about a received request: client-side
    /// errors, [`UnexpectedEof`](Self::UnexpectedEof) (nobody is left to
    /// answer), and the application's own mistakes
    /// ([`SubprotocolNotOffered`](Self::SubprotocolNotOffered),
    /// [`InvalidStatus`](Self::InvalidStatus)).
    ///
    /// ```
    /// use rfc6455::HandshakeError;
    /// assert_eq!(HandshakeError::MissingKey.http_status(), Some(400));
    /// assert_eq!(HandshakeError::UnsupportedVersion(None).http_status(), Some(426));
    /// assert_eq!(HandshakeError::MissingAccept.http_status(), None);
    /// ```
    pub fn http_status(&self) -> Option<u16> {
        Some(match self {
            Self::MalformedHttp(_)
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::MissingKey
            | Self::DuplicateKey
            | Self::InvalidKey
            | Self::MalformedProtocols
            | Self::MalformedExtensions => 400,
            Self::MethodNotGet(_) => 405,
            Self::UnsupportedVersion(_) => 426,
            Self::LimitExceeded { .. } => 431,
            Self::UnsupportedHttpVersion => 505,
            _ => return None,
        })
    }

    /// The whole response a server sends for this error, when
    /// [`http_status`](Self::http_status) is `Some`: the status line, the
    /// error's text as a `text/plain` body, `Content-Length` and
    /// `Connection: close`. A 426 carries `Sec-WebSocket-Version: 13` (RFC 6455
    /// section 4.4) and a 405 carries `Allow: GET`.
    ///
    /// After sending it, the server closes the connection.
    pub fn http_response(&self) -> Option<Vec<u8>> {
        let status = self.http_status()?;
        let mut fixed = vec![("Content-Type", "text/plain; charset=utf-8")];
        match status {
            426 => fixed.push(("Sec-WebSocket-Version", "13")),
            405 => fixed.push(("Allow", "GET")),
            _ => {}
        }
        let body = format!("{self}\n");
        Some(write_response(status, &fixed, &[], &[("Connection", "close")], true, body.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_chunk_is_not_copied_past_the_limit() {
        let mut scanner = HeadScanner::new(1024);
        let huge = vec![b'a'; 20 << 20];
        assert!(scanner.feed(&huge).is_err());
        assert!(scanner.buf.capacity() <= 4096, "{} bytes kept of 20 MiB", scanner.buf.capacity());
        // Bytes after a complete head are the connection's, however many.
        let mut scanner = HeadScanner::new(1024);
        let mut chunk = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        chunk.extend(std::iter::repeat_n(0x82, 1 << 20));
        assert_eq!(scanner.feed(&chunk), Ok(true));
        assert_eq!(scanner.parts().map(|(_, rest)| rest.len()), Some(1 << 20));
    }

    fn scan_all(s: &mut HeadScanner, input: &[u8]) -> Result<bool, HandshakeError> {
        s.feed(input)
    }

    #[test]
    fn finds_crlf_and_lf_ends() {
        for (input, head, rest) in [
            (&b"GET / HTTP/1.1\r\nA: b\r\n\r\nxyz"[..], &b"GET / HTTP/1.1\r\nA: b\r\n\r\n"[..], &b"xyz"[..]),
            (b"GET / HTTP/1.1\nA: b\n\nxyz", b"GET / HTTP/1.1\nA: b\n\n", b"xyz"),
            (b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b""),
            (b"\r\n\nGET / HTTP/1.1\r\n\n\r\n", b"GET / HTTP/1.1\r\n\n", b"\r\n"),
        ] {
            let mut s = HeadScanner::new(1024);
            assert_eq!(scan_all(&mut s, input), Ok(true));
            assert_eq!(s.parts(), Some((head, rest)));
            // Byte at a time, same answer.
            let mut s = HeadScanner::new(1024);
            let mut done_at = None;
            for (i, b) in input.iter().enumerate() {
                if s.feed(&[*b]).unwrap() && done_at.is_none() {
                    done_at = Some(i + 1);
                }
            }
            assert_eq!(done_at, Some(head.len() + (input.len() - head.len() - rest.len())));
            assert_eq!(s.parts(), Some((head, rest)));
        }
    }

    #[test]
    fn not_fooled_by_lone_crs() {
        let mut s = HeadScanner::new(1024);
        assert_eq!(s.feed(b"GET / HTTP/1.1\r\nA: b\r\r\n"), Ok(false));
        assert_eq!(s.feed(b"\r"), Ok(false));
        assert_eq!(s.feed(b"\n"), Ok(true));
    }

    #[test]
    fn limit_is_exact() {
        let head = b"GET / HTTP/1.1\r\n\r\n";
        let mut s = HeadScanner::new(head.len());
        assert_eq!(s.feed(head), Ok(true));
        let mut s = HeadScanner::new(head.len() - 1);
        assert!(matches!(
            s.feed(head),
            Err(HandshakeError::LimitExceeded { limit: Limit::MaxHandshakeSize, max }) if max == head.len() - 1
        ));
        // A head within the limit followed by more data is fine.
        let mut s = HeadScanner::new(head.len());
        assert_eq!(s.feed(&[&head[..], &[0u8; 1000][..]].concat()), Ok(true));
        assert_eq!(s.parts().unwrap().1.len(), 1000);
    }

    #[test]
    fn byte_at_a_time_is_linear() {
        let max = 16 << 10;
        let mut s = HeadScanner::new(max);
        let mut fed = 0;
        let mut line = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        line.resize(max + 10, b'a');
        let mut result = Ok(false);
        for b in &line {
            fed += 1;
            result = s.feed(&[*b]);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HandshakeError::LimitExceeded { limit: Limit::MaxHandshakeSize, max }));
        assert_eq!(fed, max + 1);
        assert!(s.work() <= 2 * fed, "work {} for {fed} bytes", s.work());
    }

    #[test]
    fn complete_head_byte_at_a_time_is_linear() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..500 {
            req.extend_from_slice(format!("X-H{i}: value\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let mut s = HeadScanner::new(1 << 20);
        let mut done = false;
        for b in &req {
            done = s.feed(&[*b]).unwrap();
        }
        assert!(done);
        assert!(s.work() <= 2 * req.len());
    }

    #[test]
    fn parse_request_errors() {
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\n", 1),
            Err(HandshakeError::LimitExceeded { limit: Limit::MaxHeaders, max: 1 })
        ));
        assert!(parse_request(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 1).is_ok());
        assert_eq!(parse_request(b"GET / HTTP/2.0\r\n\r\n", 8).unwrap_err(), HandshakeError::UnsupportedHttpVersion);
        assert!(matches!(parse_request(b"GET / FOO\r\n\r\n", 8), Err(HandshakeError::MalformedHttp(_))));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 8),
            Err(HandshakeError::MalformedHttp(_))
        ));
        assert!(matches!(parse_request(b"\r\n", 8), Err(HandshakeError::MalformedHttp(_))));
        assert!(matches!(parse_request(b"", 8), Err(HandshakeError::MalformedHttp(_))));
        assert!(matches!(parse_request(b"", 0), Err(HandshakeError::MalformedHttp(_))));
        let r = parse_request(b"GET /a?b HTTP/1.0\nX: \t v \xff \t\n\n", 8).unwrap();
        assert_eq!((r.method.as_str(), r.target.as_str(), r.version), ("GET", "/a?b", 0));
        assert_eq!(r.headers.get("x"), Some(&b"v \xff"[..]));
    }

    #[test]
    fn error_responses() {
        let r = String::from_utf8(HandshakeError::UnsupportedVersion(None).http_response().unwrap()).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        let r = String::from_utf8(HandshakeError::MethodNotGet("POST".into()).http_response().unwrap()).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(r.contains("\r\nAllow: GET\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(HandshakeError::AcceptMismatch.http_response(), None);
        assert_eq!(HandshakeError::UnexpectedEof.http_status(), None);
    }
}
