//! HTTP proxies: the sans-IO `CONNECT` exchange, `NO_PROXY` and proxy URLs
//! (core), then the blocking client through fake proxies on loopback and
//! through a real one (Debian's `tinyproxy`, skipped with a message when it is
//! not installed).
//!
//! Every socket has a timeout, every accept a deadline, every thread is
//! joined and every child process killed.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/tinyproxy.rs"]
mod tinyproxy;
use daemon::Daemon;
use tinyproxy::Tinyproxy;
#[path = "support/microsocks.rs"]
mod microsocks;
use microsocks::Microsocks;
#[path = "support/relay.rs"]
mod relay;
use relay::{copy_until_eof, read_head};

use rfc6455::blocking::{Accepted, ClientBuilder, Error, Options, ProxyChoice, Reply, accept_with};
use rfc6455::{
    Accept, CloseCode, Config, Limit, Message, ProxyConnect, ProxyError, ProxyProgress, ProxyScheme, ProxyUrl, Tunnel,
};
use rfc6455::{ClientHandshake, ClientRequest, no_proxy_matches};

// ---------------------------------------------------------------------------
// Core: the CONNECT request
// ---------------------------------------------------------------------------

fn connect_request(host: &str, port: u16, credentials: Option<(&str, &str)>) -> Result<String, ProxyError> {
    let connect = ProxyConnect::new(host, port, credentials, &Config::default())?;
    Ok(String::from_utf8(connect.request_bytes().to_vec()).expect("ASCII"))
}

#[test]
fn request_bytes_without_and_with_auth() {
    assert_eq!(
        connect_request("example.com", 443, None).unwrap(),
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    );
    // RFC 7617 section 2's own example.
    assert_eq!(
        connect_request("example.com", 80, Some(("Aladdin", "open sesame"))).unwrap(),
        "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\
         Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
    );
    // UTF-8, as RFC 7617 section 2.1 recommends; an empty password.
    assert!(connect_request("h", 1, Some(("test", "123\u{a3}"))).unwrap().contains("Basic dGVzdDoxMjPCow==\r\n"));
    assert!(connect_request("h", 1, Some(("u", ""))).unwrap().contains("Basic dTo=\r\n"));
    // IPv6 targets get brackets, given with or without them.
    for host in ["::1", "[::1]"] {
        assert!(
            connect_request(host, 9001, None)
                .unwrap()
                .starts_with("CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n")
        );
    }
    assert!(connect_request("10.0.0.1", 8080, None).unwrap().starts_with("CONNECT 10.0.0.1:8080 "));
}

#[test]
fn request_rejects_injection_and_bad_targets() {
    for host in ["", "a\r\nX: y", "a\nb", "a\0b", "a b", "a/b", "a@b", "a?b", "[::1", "[:::]", "1:2", "h\t"] {
        assert!(
            matches!(connect_request(host, 80, None), Err(ProxyError::InvalidTarget(_))),
            "{host:?}: {:?}",
            connect_request(host, 80, None)
        );
    }
    assert!(matches!(connect_request("h", 0, None), Err(ProxyError::InvalidTarget(_))));
    for (user, password) in
        [("a\r\nX: y", "p"), ("u", "p\r\n"), ("u", "p\0"), ("u\n", "p"), ("a:b", "p"), ("u", "\x7f")]
    {
        assert!(
            matches!(connect_request("h", 80, Some((user, password))), Err(ProxyError::InvalidCredentials(_))),
            "{user:?} {password:?}"
        );
    }
    // A colon in the password is fine (only the first one separates).
    assert!(connect_request("h", 80, Some(("u", "a:b"))).is_ok());
}

// ---------------------------------------------------------------------------
// Core: the proxy's answer
// ---------------------------------------------------------------------------

/// Feeds `answer` whole and one byte at a time; both must agree. Returns the
/// outcome, with `Ok(None)` when still pending.
fn answer(answer: &[u8], config: &Config) -> Result<Option<Tunnel>, ProxyError> {
    let fresh = || ProxyConnect::new("example.com", 443, None, config).unwrap();
    let whole = match fresh().receive(answer) {
        Ok(ProxyProgress::Established(tunnel)) => Ok(Some(tunnel)),
        Ok(ProxyProgress::Pending(_)) => Ok(None),
        Err(error) => Err(error),
    };
    let mut state = Some(fresh());
    let mut bytewise = Ok(None);
    let mut after_done = Vec::new();
    for &b in answer {
        match state.take() {
            Some(connect) => match connect.receive(&[b]) {
                Ok(ProxyProgress::Pending(connect)) => state = Some(connect),
                Ok(ProxyProgress::Established(tunnel)) => bytewise = Ok(Some(tunnel)),
                Err(error) => {
                    bytewise = Err(error);
                    break;
                }
            },
            // Bytes after the head, fed one at a time, are the caller's.
            None => after_done.push(b),
        }
    }
    if let Ok(Some(tunnel)) = &mut bytewise {
        let mut leftover = tunnel.leftover().to_vec();
        leftover.extend_from_slice(&after_done);
        // Bytewise, the leftover arrives after the tunnel is established.
        assert_eq!(Some(&leftover[..]), whole.as_ref().ok().and_then(|t| t.as_ref()).map(Tunnel::leftover));
        assert_eq!(whole.as_ref().ok().and_then(|t| t.as_ref()).map(Tunnel::status), Some(tunnel.status()));
    } else {
        assert_eq!(whole, bytewise, "whole and byte-at-a-time disagree for {:?}", String::from_utf8_lossy(answer));
    }
    whole
}

fn ok(bytes: &[u8]) -> Tunnel {
    match answer(bytes, &Config::default()) {
        Ok(Some(tunnel)) => tunnel,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

fn err(bytes: &[u8]) -> ProxyError {
    match answer(bytes, &Config::default()) {
        Err(error) => error,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn answer_200_and_other_2xx() {
    let tunnel = ok(b"HTTP/1.1 200 Connection established\r\n\r\n");
    assert_eq!(tunnel.status(), 200);
    assert!(tunnel.headers().is_empty());
    assert!(tunnel.leftover().is_empty());
    // tinyproxy answers in HTTP/1.0, with headers; bare LF line ends.
    let tunnel = ok(b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n");
    assert_eq!(tunnel.headers().get_str("proxy-agent"), Some("tinyproxy/1.11.1"));
    ok(b"HTTP/1.1 200 OK\nVia: 1.1 p\n\n");
    // Content-Length on a 2xx to CONNECT is ignored (RFC 9110 section 9.3.6).
    let tunnel = ok(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
    assert_eq!((tunnel.status(), tunnel.leftover()), (204, &b""[..]));
    assert_eq!(ok(b"HTTP/1.1 299 Whatever\r\n\r\n").status(), 299);
}

#[test]
fn answer_keeps_the_bytes_after_the_head() {
    let tunnel = ok(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n");
    assert_eq!(tunnel.leftover(), b"HTTP/1.1 101 Switching Protocols\r\n");
    assert_eq!(tunnel.clone().into_leftover(), tunnel.leftover());
    // Binary bytes too.
    assert_eq!(ok(b"HTTP/1.1 200 OK\r\n\r\n\x81\x00\xff").leftover(), b"\x81\x00\xff");
}

#[test]
fn answer_skips_interim_responses() {
    let tunnel =
        ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest");
    assert_eq!((tunnel.status(), tunnel.leftover()), (200, &b"rest"[..]));
    // Interim heads share the size budget with the final one.
    let mut config = Config::default();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    config.max_handshake_size = interim.len() * 3;
    let many = interim.repeat(4);
    assert_eq!(
        answer(&many, &config),
        Err(ProxyError::LimitExceeded { limit: Limit::MaxHandshakeSize, max: config.max_handshake_size })
    );
    // A 101 to CONNECT is no tunnel.
    assert_eq!(err(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").status(), Some(101));
}

#[test]
fn answer_407_is_its_own_error() {
    let error = err(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n");
    assert_eq!(error, ProxyError::AuthenticationRequired { credentials_sent: false });
    assert_eq!(error.status(), Some(407));
    assert!(error.to_string().contains("requires authentication"), "{error}");
    let with_auth = ProxyConnect::new("h", 1, Some(("u", "p")), &Config::default()).unwrap();
    assert_eq!(
        with_auth.receive(b"HTTP/1.1 407 Nope\r\n\r\n").unwrap_err(),
        ProxyError::AuthenticationRequired { credentials_sent: true }
    );
}

#[test]
fn answer_refusals_carry_the_status() {
    let error = err(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad");
    assert_eq!(error, ProxyError::Refused { status: 502, reason: "Bad Gateway".into() });
    assert_eq!(error.to_string(), "the proxy refused the tunnel: 502 Bad Gateway");
    assert_eq!(err(b"HTTP/1.0 403 Access violation\r\n\r\n").status(), Some(403));
    assert_eq!(err(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n").status(), Some(302));
    // The reason phrase is cleaned of anything but printable ASCII, and cut.
    let long = format!("HTTP/1.1 503 \u{e9}{}\r\n\r\n", "x".repeat(300));
    assert!(matches!(err(long.as_bytes()), ProxyError::Refused { status: 503, reason } if reason == "x".repeat(128)));
    assert!(matches!(err(b"HTTP/1.1 500\r\n\r\n"), ProxyError::Refused { status: 500, reason } if reason.is_empty()));
}

#[test]
fn answer_malformed_and_over_limits() {
    for bad in [
        &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
    ] {
        assert!(
            matches!(err(bad), ProxyError::MalformedResponse(_)),
            "{:?}: {:?}",
            String::from_utf8_lossy(bad),
            err(bad)
        );
    }
    let mut config = Config::default();
    config.max_handshake_size = 64;
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
    assert_eq!(
        answer(big.as_bytes(), &config),
        Err(ProxyError::LimitExceeded { limit: Limit::MaxHandshakeSize, max: 64 })
    );
    // A head that never ends is cut off at the limit, not buffered forever.
    assert_eq!(
        answer(&[b'a'; 65], &config),
        Err(ProxyError::LimitExceeded { limit: Limit::MaxHandshakeSize, max: 64 })
    );
    assert_eq!(answer(&[b'a'; 64], &config), Ok(None));
    let mut config = Config::default();
    config.max_headers = 2;
    assert_eq!(
        answer(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &config),
        Err(ProxyError::LimitExceeded { limit: Limit::MaxHeaders, max: 2 })
    );
    assert!(answer(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", &config).is_ok());
    // Incomplete: pending, then EOF.
    assert_eq!(answer(b"HTTP/1.1 200 OK\r\n", &Config::default()), Ok(None));
    let connect = ProxyConnect::new("h", 1, None, &Config::default()).unwrap();
    assert_eq!(connect.receive_eof(), ProxyError::UnexpectedEof);
}

#[test]
fn debug_output_hides_credentials() {
    let connect = ProxyConnect::new("h", 1, Some(("user", "hunter2")), &Config::default()).unwrap();
    let shown = format!("{connect:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("aHVudGVyMg") && !shown.contains("dXNlcjpodW50ZXIy"),
        "{shown}"
    );
    let url = ProxyUrl::parse("http://user:hunter2@p:1").unwrap();
    assert!(!format!("{url:?} {url}").contains("hunter2"));
}

// ---------------------------------------------------------------------------
// Core: NO_PROXY and proxy URLs
// ---------------------------------------------------------------------------

#[test]
fn no_proxy_table() {
    #[rustfmt::skip]
    let table: &[(&str, &str, u16, bool)] = &[
        ("", "example.com", 80, false),
        ("*", "example.com", 80, true),
        (" * ", "anything.at.all", 1, true),
        ("example.com", "example.com", 80, true),
        ("example.com", "a.example.com", 80, true),
        ("example.com", "a.b.example.com", 80, true),
        ("example.com", "badexample.com", 80, false),
        ("example.com", "example.com.evil", 80, false),
        ("example.com", "com", 80, false),
        (".example.com", "example.com", 80, true),
        (".example.com", "a.example.com", 80, true),
        (".example.com", "badexample.com", 80, false),
        ("*.example.com", "a.example.com", 80, true),
        ("EXAMPLE.com", "Example.COM", 80, true),
        ("example.com.", "a.example.com", 80, true),
        ("example.com", "example.com.", 80, true),
        ("other.org, example.com", "example.com", 80, true),
        ("other.org,,example.com ,", "example.com", 80, true),
        ("other.org", "example.com", 80, false),
        ("example.com:8080", "example.com", 8080, true),
        ("example.com:8080", "example.com", 80, false),
        ("example.com:http", "example.com", 80, false),
        ("127.0.0.1", "127.0.0.1", 9001, true),
        ("127.0.0.1", "127.0.0.2", 9001, false),
        ("127.0.0.1:9001", "127.0.0.1", 9001, true),
        ("127.0.0.1:9001", "127.0.0.1", 9002, false),
        ("0.0.1", "127.0.0.1", 80, false),
        ("10.0.0.0/8", "10.1.2.3", 80, false),
        ("::1", "::1", 80, true),
        ("::1", "[::1]", 80, true),
        ("[::1]", "0:0::1", 80, true),
        ("[::1]:8080", "::1", 8080, true),
        ("[::1]:8080", "::1", 80, false),
        ("[::1]x", "::1", 80, false),
        ("[::1", "::1", 80, false),
        ("::2", "::1", 80, false),
        ("localhost", "127.0.0.1", 80, false),
        ("127.0.0.1", "localhost", 80, false),
        (".", "example.com", 80, false),
    ];
    for &(list, host, port, expected) in table {
        assert_eq!(no_proxy_matches(list, host, port), expected, "NO_PROXY={list:?} host={host:?} port={port}");
    }
}

#[test]
fn no_proxy_is_linear() {
    // 100,000 entries against a 100,000-byte host: each entry costs its own
    // length, so this is instant; quadratic matching would take minutes.
    let host = format!("{}example.com", "a.".repeat(50_000));
    let list = vec!["xample.com"; 100_000].join(",");
    assert!(!no_proxy_matches(&list, &host, 80));
    assert!(no_proxy_matches(&(list + ",example.com"), &host, 80));
}

/// A user name and password.
type Credentials<'a> = Option<(&'a str, &'a str)>;

#[test]
fn proxy_url_table() {
    #[rustfmt::skip]
    let good: &[(&str, &str, u16, Credentials<'_>)] = &[
        ("http://proxy.example", "proxy.example", 80, None),
        ("http://proxy.example:3128", "proxy.example", 3128, None),
        ("http://proxy.example:3128/", "proxy.example", 3128, None),
        ("HTTP://Proxy.Example:8080", "Proxy.Example", 8080, None),
        ("proxy.example:3128", "proxy.example", 3128, None),
        ("  http://p:1  ", "p", 1, None),
        ("http://127.0.0.1:8888", "127.0.0.1", 8888, None),
        ("http://[::1]:8888", "::1", 8888, None),
        ("http://[2001:db8::1]", "2001:db8::1", 80, None),
        ("http://user:pass@p:1", "p", 1, Some(("user", "pass"))),
        ("http://user@p:1", "p", 1, Some(("user", ""))),
        ("http://us%65r:p%40ss%3Aw%25rd@p:1", "p", 1, Some(("user", "p@ss:w%rd"))),
        ("http://user:p@ss@p:1", "p", 1, Some(("user", "p@ss"))),
        ("http://%C3%A9:%E2%82%AC@p", "p", 80, Some(("\u{e9}", "\u{20ac}"))),
        ("http://:@p", "p", 80, Some(("", ""))),
    ];
    for &(url, host, port, credentials) in good {
        let parsed = ProxyUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!((parsed.host(), parsed.port(), parsed.credentials()), (host, port, credentials), "{url}");
    }
    assert_eq!(ProxyUrl::parse("http://[::1]:3128").unwrap().to_string(), "http://[::1]:3128");
    // https: the same exchange inside TLS; port 443 unless given.
    let https = ProxyUrl::parse("HTTPS://u:p%3A@p").unwrap();
    assert_eq!((https.scheme(), https.port(), https.credentials()), (ProxyScheme::Https, 443, Some(("u", "p:"))));
    assert_eq!(https.to_string(), "https://p:443");
    assert_eq!(ProxyUrl::parse("https://p:8443").unwrap().port(), 8443);
    assert_eq!(ProxyUrl::parse("https://a:b@p").unwrap().scheme(), ProxyScheme::Https);
    assert!(matches!(ProxyUrl::parse("https://a\u{1}:b@p"), Err(ProxyError::InvalidUrl(_))));
    // SOCKS5: port 1080 unless given; RFC 1929's credentials (a non-empty
    // user name, at most 255 bytes each; ':' is fine in a user name there).
    let socks = ProxyUrl::parse("socks5://p").unwrap();
    assert_eq!((socks.scheme(), socks.host(), socks.port()), (ProxyScheme::Socks5, "p", 1080));
    assert_eq!(socks.to_string(), "socks5://p:1080");
    let socks = ProxyUrl::parse("SOCKS5H://u%3Ax:pw@[::1]:9050").unwrap();
    assert_eq!((socks.scheme(), socks.port(), socks.credentials()), (ProxyScheme::Socks5h, 9050, Some(("u:x", "pw"))));
    assert_eq!(socks.to_string(), "socks5h://[::1]:9050");
    assert_eq!(ProxyUrl::parse("p:3128").unwrap().scheme(), ProxyScheme::Http);
    assert!(matches!(ProxyUrl::parse("socks5://:pw@p"), Err(ProxyError::InvalidCredentials(_))));
    let long = format!("socks5://{}@p", "u".repeat(256));
    assert!(matches!(ProxyUrl::parse(&long), Err(ProxyError::InvalidCredentials(_))));
    for scheme in ["socks4", "socks4a", "socks", "ftp"] {
        assert_eq!(ProxyUrl::parse(&format!("{scheme}://p:1080")), Err(ProxyError::UnsupportedScheme(scheme.into())));
    }
    for bad in [
        "",
        "http://",
        "http://:80",
        "http://p:",
        "http://p:0",
        "http://p:65536",
        "http://p:8a",
        "http://p:1:2",
        "http://p/path",
        "http://p?q",
        "http://p#f",
        "http://p q",
        "http://p\r\nx",
        "http://pé",
        "http://[::1",
        "http://[::1]x",
        "http://[zz::]",
        "http://p/x",
        "http://a_b$c",
    ] {
        assert!(matches!(ProxyUrl::parse(bad), Err(ProxyError::InvalidUrl(_))), "{bad:?}: {:?}", ProxyUrl::parse(bad));
    }
    for bad in
        ["http://u%0d%0a:p@h", "http://u:p%00@h", "http://u%3Ax:p@h", "http://u%zz@h", "http://u%4@h", "http://%ff@h"]
    {
        assert!(
            matches!(ProxyUrl::parse(bad), Err(ProxyError::InvalidCredentials(_))),
            "{bad:?}: {:?}",
            ProxyUrl::parse(bad)
        );
    }
}

// ---------------------------------------------------------------------------
// Loopback helpers
// ---------------------------------------------------------------------------

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn options() -> Options {
    let mut options = Options::default();
    options.config.deflate = None;
    options.connect_timeout = Some(Duration::from_secs(5));
    options.handshake_timeout = Some(Duration::from_secs(5));
    options.idle_timeout = Some(Duration::from_secs(20));
    options.close_timeout = Duration::from_secs(5);
    // The tests say where to go: the environment has no say.
    options.proxy = ProxyChoice::Direct;
    options
}

fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// `accept()` with a deadline.
fn accept_tcp(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking stream");
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection within {IO_TIMEOUT:?}");
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// An echo server for `connections` WebSocket connections, one after the
/// other; returns the number of messages echoed.
fn echo_server(connections: usize) -> (SocketAddr, thread::JoinHandle<usize>) {
    let (listener, addr) = listen();
    let handle = thread::spawn(move || {
        let mut echoed = 0;
        for _ in 0..connections {
            let stream = accept_tcp(&listener);
            let Accepted::WebSocket(mut ws, ()) =
                accept_with(stream, &options(), |_| Reply::Accept(Accept::new(), ())).expect("accept")
            else {
                panic!("expected an upgrade");
            };
            loop {
                match ws.read() {
                    Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                        ws.send(&message).expect("echo");
                        echoed += 1;
                    }
                    Ok(Message::Close(_)) | Err(Error::Closed) => break,
                    Ok(_) => {}
                    Err(error) => panic!("echo server: {error}"),
                }
            }
        }
        echoed
    });
    (addr, handle)
}

/// Sends a few messages through `ws`, checks the echoes and closes.
fn exchange(ws: &mut rfc6455::blocking::WebSocket<rfc6455::blocking::MaybeTls>) {
    for i in 0..5 {
        let text = format!("through the proxy {i}");
        ws.send_text(&text).expect("send");
        assert_eq!(ws.read().expect("read"), Message::Text(text));
    }
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send_binary(&big).expect("send binary");
    assert_eq!(ws.read().expect("read binary"), Message::Binary(big));
    // Waits for the server's close frame.
    ws.close(CloseCode::NORMAL, "bye").expect("close");
    assert!(matches!(ws.read(), Err(Error::Closed)));
}

/// Copies bytes one way until EOF or an error, then half-closes the other side.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    copy_until_eof(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Connects to `upstream` and copies bytes both ways until both sides end.
fn relay(client: TcpStream, upstream: SocketAddr) {
    let server = TcpStream::connect_timeout(&upstream, IO_TIMEOUT).expect("upstream");
    server.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = thread::spawn(move || pump(c2, s2));
    pump(server, client);
    up.join().expect("pump");
}

/// What a fake proxy does with a CONNECT request.
enum Behaviour {
    /// Answer 200 and relay to `upstream`, whatever host was asked for.
    Tunnel { upstream: SocketAddr, answer: &'static str },
    /// Answer this and close.
    Answer(&'static str),
    /// Demand `Proxy-Authorization: Basic <expected>`: 407 without, a tunnel with.
    RequireAuth { upstream: SocketAddr, expected: &'static str },
    /// Read the request and say nothing.
    Silent,
}

/// A one-connection fake proxy. The thread returns the CONNECT request it got.
fn fake_proxy(behaviour: Behaviour) -> (SocketAddr, thread::JoinHandle<String>) {
    let (listener, addr) = listen();
    let handle = thread::spawn(move || {
        let mut client = accept_tcp(&listener);
        let request = read_head(&mut client);
        let upstream = match behaviour {
            Behaviour::Tunnel { upstream, answer } => {
                client.write_all(answer.as_bytes()).unwrap();
                upstream
            }
            Behaviour::Answer(answer) => {
                client.write_all(answer.as_bytes()).unwrap();
                return request;
            }
            Behaviour::RequireAuth { upstream, expected } => {
                let header =
                    request.lines().find_map(|line| line.strip_prefix("Proxy-Authorization: ")).map(str::to_owned);
                if header.as_deref() != Some(&format!("Basic {expected}")[..]) {
                    client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                    return request;
                }
                client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                upstream
            }
            Behaviour::Silent => {
                // Hold the connection until the client gives up.
                let mut rest = Vec::new();
                let _ = client.read_to_end(&mut rest);
                return request;
            }
        };
        relay(client, upstream);
        request
    });
    (addr, handle)
}

// ---------------------------------------------------------------------------
// The blocking client through fake proxies
// ---------------------------------------------------------------------------

#[test]
fn through_a_fake_proxy() {
    let (echo, server) = echo_server(1);
    let (proxy, proxy_thread) =
        fake_proxy(Behaviour::Tunnel { upstream: echo, answer: "HTTP/1.1 200 Connection established\r\n\r\n" });
    // A name the proxy resolves (here: ignores); the client must not resolve it.
    let url = format!("ws://echo.invalid:{}/chat", echo.port());
    let (mut ws, response) = ClientBuilder::new(&url)
        .unwrap()
        .options(options())
        .proxy(&format!("http://{proxy}"))
        .unwrap()
        .connect()
        .expect("connect through the proxy");
    assert_eq!(response.status(), 101);
    exchange(&mut ws);
    drop(ws);
    let request = proxy_thread.join().expect("proxy");
    let port = echo.port();
    assert_eq!(request, format!("CONNECT echo.invalid:{port} HTTP/1.1\r\nHost: echo.invalid:{port}\r\n\r\n"));
    assert_eq!(server.join().expect("server"), 6);
}

#[test]
fn options_proxy_is_used_and_the_builder_wins() {
    let (echo, server) = echo_server(1);
    let (proxy, proxy_thread) =
        fake_proxy(Behaviour::Tunnel { upstream: echo, answer: "HTTP/1.0 200 OK\r\nVia: fake\r\n\r\n" });
    let mut opts = options();
    opts.proxy = ProxyChoice::Proxy(ProxyUrl::parse(&format!("http://{proxy}")).unwrap());
    let url = format!("ws://127.0.0.1:{}/", echo.port());
    let (mut ws, _) = ClientBuilder::new(&url).unwrap().options(opts.clone()).connect().expect("via Options::proxy");
    exchange(&mut ws);
    drop(ws);
    assert!(proxy_thread.join().unwrap().starts_with("CONNECT 127.0.0.1:"));
    assert_eq!(server.join().unwrap(), 6);
    // no_proxy() overrides Options::proxy: straight to the server.
    let (echo, server) = echo_server(1);
    let url = format!("ws://127.0.0.1:{}/", echo.port());
    let (mut ws, _) = ClientBuilder::new(&url).unwrap().no_proxy().options(opts).connect().expect("direct");
    exchange(&mut ws);
    drop(ws);
    assert_eq!(server.join().unwrap(), 6);
}

#[test]
fn the_handshake_answer_may_follow_the_proxy_answer_at_once() {
    // The proxy's 200, the server's 101 and a first frame in one write, before
    // the client has even sent its upgrade request: what follows the proxy's
    // answer must reach the WebSocket handshake. A fixed seed makes the key
    // known in advance.
    let mut opts = options();
    opts.config.rng_seed = Some([7; 32]);
    let url = "ws://echo.invalid:9001/";
    let key = ClientHandshake::new(ClientRequest::new(url).unwrap(), opts.config.clone()).unwrap().key().to_owned();
    let (listener, addr) = listen();
    let proxy = thread::spawn(move || {
        let mut client = accept_tcp(&listener);
        let connect = read_head(&mut client);
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            rfc6455::accept_key(key.as_bytes())
        )
        .into_bytes();
        bytes.extend_from_slice(b"\x81\x02hi");
        client.write_all(&bytes).unwrap();
        let upgrade = read_head(&mut client);
        (connect, upgrade)
    });
    let (mut ws, response) =
        ClientBuilder::new(url).unwrap().options(opts).proxy(&addr.to_string()).unwrap().connect().expect("connect");
    assert_eq!(response.status(), 101);
    assert_eq!(ws.read().expect("first frame"), Message::Text("hi".into()));
    drop(ws);
    let (connect, upgrade) = proxy.join().unwrap();
    assert!(connect.starts_with("CONNECT echo.invalid:9001 HTTP/1.1\r\n"), "{connect}");
    assert!(upgrade.starts_with("GET / HTTP/1.1\r\n"), "{upgrade}");

    // The same in the core alone.
    let handshake = ClientHandshake::new(ClientRequest::new(url).unwrap(), Config::default()).unwrap();
    let connect = ProxyConnect::new("echo.invalid", 9001, None, &Config::default()).unwrap();
    let mut wire = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    wire.extend_from_slice(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            rfc6455::accept_key(handshake.key().as_bytes())
        )
        .as_bytes(),
    );
    wire.extend_from_slice(b"\x81\x02hi");
    let ProxyProgress::Established(tunnel) = connect.receive(&wire).unwrap() else { panic!("complete") };
    let rfc6455::ClientProgress::Done(mut conn, _) = handshake.receive(tunnel.leftover()).unwrap() else {
        panic!("complete")
    };
    assert_eq!(conn.poll_event().unwrap(), Some(rfc6455::Event::Text("hi")));
}

#[test]
fn proxy_answers_407() {
    let (proxy, proxy_thread) = fake_proxy(Behaviour::Answer(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n\r\n",
    ));
    let result = ClientBuilder::new("ws://echo.invalid:9/")
        .unwrap()
        .options(options())
        .proxy(&format!("http://{proxy}"))
        .unwrap()
        .connect();
    match result {
        Err(Error::Proxy(ProxyError::AuthenticationRequired { credentials_sent: false })) => {}
        other => panic!("expected 407: {other:?}"),
    }
    proxy_thread.join().unwrap();
}

#[test]
fn proxy_with_basic_auth() {
    let (echo, server) = echo_server(1);
    // "alice:s3cr:t@x" in base64.
    let expected = "YWxpY2U6czNjcjp0QHg=";
    let (proxy, proxy_thread) = fake_proxy(Behaviour::RequireAuth { upstream: echo, expected });
    let url = format!("ws://echo.invalid:{}/", echo.port());
    let (mut ws, _) = ClientBuilder::new(&url)
        .unwrap()
        .options(options())
        .proxy(&format!("http://alice:s3cr%3At%40x@{proxy}"))
        .unwrap()
        .connect()
        .expect("authenticated tunnel");
    exchange(&mut ws);
    drop(ws);
    assert!(proxy_thread.join().unwrap().contains(&format!("\r\nProxy-Authorization: Basic {expected}\r\n")));
    assert_eq!(server.join().unwrap(), 6);

    // Wrong password: a 407, reported as refused credentials.
    let (proxy, proxy_thread) = fake_proxy(Behaviour::RequireAuth { upstream: echo, expected });
    let result = ClientBuilder::new(&url)
        .unwrap()
        .options(options())
        .proxy(&format!("http://alice:nope@{proxy}"))
        .unwrap()
        .connect();
    assert!(
        matches!(result, Err(Error::Proxy(ProxyError::AuthenticationRequired { credentials_sent: true }))),
        "{result:?}"
    );
    proxy_thread.join().unwrap();
}

#[test]
fn proxy_refusal_and_eof_and_silence() {
    let (proxy, proxy_thread) = fake_proxy(Behaviour::Answer("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"));
    let result = ClientBuilder::new("ws://echo.invalid:9/")
        .unwrap()
        .options(options())
        .proxy(&proxy.to_string())
        .unwrap()
        .connect();
    let error = result.expect_err("refused");
    assert!(matches!(&error, Error::Proxy(e) if e.status() == Some(502)), "{error}");
    assert_eq!(error.to_string(), "proxy: the proxy refused the tunnel: 502 Bad Gateway");
    proxy_thread.join().unwrap();

    let (proxy, proxy_thread) = fake_proxy(Behaviour::Answer("HTTP/1.1 200 Conn"));
    let result = ClientBuilder::new("ws://echo.invalid:9/")
        .unwrap()
        .options(options())
        .proxy(&proxy.to_string())
        .unwrap()
        .connect();
    assert!(matches!(result, Err(Error::Proxy(ProxyError::UnexpectedEof))), "{result:?}");
    proxy_thread.join().unwrap();

    // A proxy that never answers: the connect timeout covers the exchange.
    let (proxy, proxy_thread) = fake_proxy(Behaviour::Silent);
    let mut opts = options();
    opts.connect_timeout = Some(Duration::from_millis(300));
    let result =
        ClientBuilder::new("ws://echo.invalid:9/").unwrap().options(opts).proxy(&proxy.to_string()).unwrap().connect();
    assert!(matches!(result, Err(Error::Timeout(rfc6455::blocking::Timeout::Connect))), "{result:?}");
    drop(result);
    proxy_thread.join().unwrap();
}

#[test]
fn a_proxy_that_is_not_there_is_named() {
    // A socket bound to the port but not listening: connections to it are
    // refused, and no other test running meanwhile can take the port (as it
    // could after dropping a listener, and then accept this connection).
    let closed_port = tokio::net::TcpSocket::new_v4().expect("socket");
    closed_port.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = closed_port.local_addr().expect("local_addr");
    let result = ClientBuilder::new("ws://echo.invalid:9/")
        .unwrap()
        .options(options())
        .proxy(&addr.to_string())
        .unwrap()
        .connect();
    match result {
        Err(Error::Io(error)) => {
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
            assert!(error.to_string().contains(&format!("proxy http://{addr}")), "{error}");
        }
        other => panic!("expected a refused connection: {other:?}"),
    }
    drop(closed_port);
    // Without the `tls` feature an https:// proxy is refused before any
    // connection is made (with it, tests/tls.rs goes through one).
    #[cfg(not(feature = "tls"))]
    assert!(matches!(
        ClientBuilder::new("ws://h/").unwrap().options(options()).proxy("https://p").unwrap().connect(),
        Err(Error::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------
// The blocking client through a fake SOCKS5 proxy
// ---------------------------------------------------------------------------

/// What a fake SOCKS5 proxy does once it has read the greeting.
enum Socks {
    /// Pick "no authentication", answer the request with success and relay
    /// to `upstream`, whatever target was asked for.
    Tunnel { upstream: SocketAddr },
    /// Pick user name and password; relay to `upstream` if they are `alice`
    /// and `s3cret`, answer status 1 and close otherwise.
    RequireAuth { upstream: SocketAddr },
    /// Answer the request with this reply code and close.
    Refuse(u8),
}

/// Reads exactly `n` bytes (bounded by the stream's timeout).
fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    stream.read_exact(&mut bytes).expect("reading from the SOCKS5 client");
    bytes
}

/// The request's `ATYP DST.ADDR DST.PORT`, as read.
fn read_socks_target(stream: &mut TcpStream) -> Vec<u8> {
    let mut target = read_n(stream, 1);
    let len = match target[0] {
        1 => 4,
        4 => 16,
        3 => {
            let len = read_n(stream, 1);
            target.extend_from_slice(&len);
            usize::from(len[0])
        }
        other => panic!("address type {other}"),
    };
    target.extend(read_n(stream, len + 2));
    target
}

/// A one-connection fake SOCKS5 proxy. The thread returns every byte the
/// client sent before the tunnel opened (or before the refusal).
fn fake_socks_proxy(behaviour: Socks) -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
    let (listener, addr) = listen();
    let handle = thread::spawn(move || {
        let mut client = accept_tcp(&listener);
        let mut seen = read_n(&mut client, 2);
        assert_eq!(seen[0], 5, "greeting version");
        let methods = read_n(&mut client, usize::from(seen[1]));
        seen.extend_from_slice(&methods);
        let upstream = match behaviour {
            Socks::RequireAuth { upstream } => {
                assert!(methods.contains(&2), "user name and password offered");
                client.write_all(&[5, 2]).unwrap();
                let head = read_n(&mut client, 2);
                let user = read_n(&mut client, usize::from(head[1]));
                let plen = read_n(&mut client, 1);
                let password = read_n(&mut client, usize::from(plen[0]));
                seen.extend(head.iter().chain(&user).chain(&plen).chain(&password));
                if (&user[..], &password[..]) != (b"alice", b"s3cret") {
                    client.write_all(&[1, 1]).unwrap();
                    return seen;
                }
                client.write_all(&[1, 0]).unwrap();
                upstream
            }
            Socks::Tunnel { upstream } => {
                client.write_all(&[5, 0]).unwrap();
                upstream
            }
            Socks::Refuse(code) => {
                client.write_all(&[5, 0]).unwrap();
                seen.extend(read_n(&mut client, 3));
                seen.extend(read_socks_target(&mut client));
                client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
                return seen;
            }
        };
        let request = read_n(&mut client, 3);
        assert_eq!(request, [5, 1, 0], "a CONNECT request");
        seen.extend(request);
        seen.extend(read_socks_target(&mut client));
        // Bound to 127.0.0.1:1, a name would do as well.
        client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1]).unwrap();
        relay(client, upstream);
        seen
    });
    (addr, handle)
}

fn connect_via(url: &str, proxy: &str) -> Result<rfc6455::blocking::WebSocket<rfc6455::blocking::MaybeTls>, Error> {
    let builder = ClientBuilder::new(url).unwrap().options(options()).proxy(proxy)?;
    builder.connect().map(|(ws, _)| ws)
}

#[test]
fn through_a_fake_socks5_proxy_that_resolves_the_name() {
    let (echo, server) = echo_server(1);
    let (proxy, proxy_thread) = fake_socks_proxy(Socks::Tunnel { upstream: echo });
    // socks5h: the name goes to the proxy; the client must not resolve it.
    let port = echo.port();
    let mut ws =
        connect_via(&format!("ws://echo.invalid:{port}/chat"), &format!("socks5h://{proxy}")).expect("connect");
    exchange(&mut ws);
    drop(ws);
    let mut expected = vec![5, 1, 0, 5, 1, 0, 3, 12];
    expected.extend_from_slice(b"echo.invalid");
    expected.extend_from_slice(&port.to_be_bytes());
    assert_eq!(proxy_thread.join().expect("proxy"), expected);
    assert_eq!(server.join().expect("server"), 6);
}

#[test]
fn through_a_fake_socks5_proxy_given_an_address_with_a_password() {
    let (echo, server) = echo_server(1);
    let (proxy, proxy_thread) = fake_socks_proxy(Socks::RequireAuth { upstream: echo });
    // socks5: the client resolves "localhost" itself and sends an address.
    let port = echo.port();
    let mut ws =
        connect_via(&format!("ws://localhost:{port}/"), &format!("socks5://alice:s3cret@{proxy}")).expect("connect");
    exchange(&mut ws);
    drop(ws);
    let seen = proxy_thread.join().expect("proxy");
    let (greeting_and_auth, request) = seen.split_at(4 + 2 + 5 + 1 + 6);
    assert_eq!(greeting_and_auth, b"\x05\x02\x00\x02\x01\x05alice\x06s3cret");
    let loopback = match request[3] {
        1 => request[4..8] == [127, 0, 0, 1] && request.len() == 10,
        4 => request[4..20] == std::net::Ipv6Addr::LOCALHOST.octets() && request.len() == 22,
        other => panic!("address type {other}: {request:?}"),
    };
    assert!(loopback && request.ends_with(&port.to_be_bytes()), "{request:?}");
    assert_eq!(server.join().expect("server"), 6);
}

#[test]
fn socks5_refusals_are_typed_errors() {
    let (proxy, proxy_thread) = fake_socks_proxy(Socks::RequireAuth { upstream: "127.0.0.1:9".parse().unwrap() });
    let result = connect_via("ws://echo.invalid:9/", &format!("socks5h://alice:wrong@{proxy}"));
    assert!(matches!(result, Err(Error::Proxy(ProxyError::SocksAuthenticationFailed))), "{result:?}");
    proxy_thread.join().expect("proxy");

    let (proxy, proxy_thread) = fake_socks_proxy(Socks::Refuse(5));
    let result = connect_via("ws://echo.invalid:9/", &format!("socks5h://{proxy}"));
    match result {
        Err(Error::Proxy(error @ ProxyError::SocksRefused { code: 5 })) => {
            assert!(error.to_string().contains("connection refused"), "{error}");
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    proxy_thread.join().expect("proxy");
    assert!(matches!(
        ClientBuilder::new("ws://h/").unwrap().proxy("socks4://p"),
        Err(Error::Proxy(ProxyError::UnsupportedScheme(scheme))) if scheme == "socks4"
    ));
}

// ---------------------------------------------------------------------------
// The environment, in a child process (the test binary itself)
// ---------------------------------------------------------------------------

const CHILD_MODE: &str = "RFC6455_PROXY_TEST_CHILD";

/// Run only as a child of `environment_variables_choose_the_proxy`: connects
/// with default options, so the environment decides.
#[test]
#[ignore = "run by environment_variables_choose_the_proxy"]
fn child_connects_with_default_options() {
    let Ok(mode) = std::env::var(CHILD_MODE) else { return };
    let url = std::env::var("RFC6455_PROXY_TEST_URL").expect("url");
    let mut opts = Options::default();
    opts.connect_timeout = Some(Duration::from_secs(5));
    opts.handshake_timeout = Some(Duration::from_secs(5));
    let result = ClientBuilder::new(&url).unwrap().options(opts).connect();
    match mode.as_str() {
        "proxied" => {
            let (mut ws, _) = result.expect("connect through the environment's proxy");
            exchange(&mut ws);
        }
        // NO_PROXY: straight to echo.invalid, which does not resolve.
        "direct" => assert!(matches!(result, Err(Error::Io(_))), "{result:?}"),
        other => panic!("unknown mode {other}"),
    }
}

fn run_child(mode: &str, url: &str, env: &[(&str, String)]) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", "child_connects_with_default_options", "--ignored", "--nocapture", "--test-threads=1"]);
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "REQUEST_METHOD",
    ] {
        command.env_remove(name);
    }
    command.env(CHILD_MODE, mode).env("RFC6455_PROXY_TEST_URL", url);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.stdin(Stdio::null()).output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child ({mode}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn environment_variables_choose_the_proxy() {
    let (echo, server) = echo_server(1);
    let (proxy, proxy_thread) =
        fake_proxy(Behaviour::Tunnel { upstream: echo, answer: "HTTP/1.1 200 Connection established\r\n\r\n" });
    let url = format!("ws://echo.invalid:{}/", echo.port());
    run_child("proxied", &url, &[("HTTP_PROXY", format!("http://{proxy}")), ("NO_PROXY", "example.com".into())]);
    assert!(proxy_thread.join().unwrap().starts_with("CONNECT echo.invalid:"));
    assert_eq!(server.join().unwrap(), 6);
    // NO_PROXY lists the host: no proxy (the child fails to resolve the name).
    run_child("direct", &url, &[("http_proxy", format!("http://{proxy}")), ("no_proxy", ".invalid".into())]);
    // HTTPS_PROXY does not apply to ws://.
    run_child("direct", &url, &[("HTTPS_PROXY", format!("http://{proxy}"))]);
}

// ---------------------------------------------------------------------------
// A real proxy: tinyproxy
// ---------------------------------------------------------------------------

#[test]
fn through_tinyproxy() {
    let Some(binary) = Tinyproxy::binary() else {
        return Daemon::missing("tinyproxy (apt-get install tinyproxy)");
    };
    let (echo, server) = echo_server(1);
    let proxy = Tinyproxy::start(&binary, echo.port());
    let url = format!("ws://127.0.0.1:{}/", echo.port());
    let connected = ClientBuilder::new(&url)
        .unwrap()
        .options(options())
        .proxy(&format!("http://{}", proxy.addr))
        .unwrap()
        .connect();
    let (mut ws, response) = connected.unwrap_or_else(|e| panic!("through tinyproxy: {e}\n{}", proxy.logs()));
    assert_eq!(response.status(), 101);
    exchange(&mut ws);
    drop(ws);
    assert_eq!(server.join().unwrap(), 6);
    assert!(proxy.logs().contains("CONNECT"), "tinyproxy saw no CONNECT: {}", proxy.logs());

    // A port outside ConnectPort: tinyproxy refuses, and says so.
    let (other, other_addr) = listen();
    let url = format!("ws://127.0.0.1:{}/", other_addr.port());
    let result = ClientBuilder::new(&url)
        .unwrap()
        .options(options())
        .proxy(&format!("http://{}", proxy.addr))
        .unwrap()
        .connect();
    drop(other);
    match result {
        Err(Error::Proxy(ProxyError::Refused { status, reason })) => {
            assert_eq!(status, 403, "{reason}");
            eprintln!("tinyproxy refused as expected: {status} {reason}");
        }
        other => panic!("expected tinyproxy to refuse: {other:?}\n{}", proxy.logs()),
    }
}

// ---------------------------------------------------------------------------
// A real SOCKS5 proxy: Debian's `microsocks`
// ---------------------------------------------------------------------------

#[test]
fn through_microsocks() {
    if !Microsocks::installed() {
        return Daemon::missing("microsocks (apt-get install microsocks)");
    }
    // The proxy resolves "localhost" (socks5h); then an address the client
    // resolved (socks5), with a user name and password.
    let (echo, server) = echo_server(2);
    // The echo server listens on 127.0.0.1 only: "localhost" serves where it
    // resolves there first (for microsocks as for us: the same resolver).
    let first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", echo.port())).ok().and_then(|mut a| a.next());
    let host = if first == Some(echo) { "localhost" } else { "127.0.0.1" };
    let url = format!("ws://{host}:{}/", echo.port());
    let open = Microsocks::start(None);
    let mut ws = connect_via(&url, &format!("socks5h://{}", open.addr)).expect("through microsocks, socks5h");
    exchange(&mut ws);
    drop(ws);
    let guarded = Microsocks::start(Some(("alice", "s3cret")));
    let mut ws =
        connect_via(&url, &format!("socks5://alice:s3cret@{}", guarded.addr)).expect("through microsocks, socks5");
    exchange(&mut ws);
    drop(ws);
    assert_eq!(server.join().unwrap(), 12);

    // The wrong password, and no credentials at all, where they are required.
    let result = connect_via(&url, &format!("socks5h://alice:wrong@{}", guarded.addr));
    assert!(matches!(result, Err(Error::Proxy(ProxyError::SocksAuthenticationFailed))), "{result:?}");
    let result = connect_via(&url, &format!("socks5h://{}", guarded.addr));
    assert!(
        matches!(result, Err(Error::Proxy(ProxyError::SocksNoAcceptableMethod { credentials_offered: false }))),
        "{result:?}"
    );
    // A port nothing listens on: microsocks reports the refusal.
    let (closed, closed_addr) = listen();
    drop(closed);
    let result = connect_via(&format!("ws://127.0.0.1:{}/", closed_addr.port()), &format!("socks5h://{}", open.addr));
    assert!(matches!(result, Err(Error::Proxy(ProxyError::SocksRefused { .. }))), "{result:?}");
}
