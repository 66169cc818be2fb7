//! TLS in the blocking adapters (the `tls` feature): our client against our
//! server with certificates made here (rcgen), full duplex over a split TLS
//! stream, refused certificates, timeouts, and what happens when one side
//! does not speak TLS. Everything on 127.0.0.1; every wait is bounded.
#![cfg(feature = "tls")]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "support/microsocks.rs"]
mod microsocks;
#[path = "support/relay.rs"]
mod relay;
use relay::{copy_until_eof, read_head};
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/stunnel.rs"]
mod stunnel;
#[path = "support/tinyproxy.rs"]
mod tinyproxy;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rfc6455::blocking::{
    Accepted, ClientBuilder, ClientTls, Error, Incoming, MaybeTls, Options, Reply, Server, ServerTls, Timeout,
    TlsError, TlsRoots, TlsStream, WebSocket,
};
use rfc6455::{Accept, CloseCode, Message, Response};

/// A certificate authority made for one test, and a server certificate it
/// signed for `names` (DNS names or IP addresses).
struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(names: &[&str]) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "rfc6455 test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(names).expect("server params").signed_by(&key, &issuer).expect("server cert");
    TestPki { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

impl TestPki {
    fn server_tls(&self) -> ServerTls {
        ServerTls::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).expect("server TLS")
    }

    fn client_tls(&self) -> ClientTls {
        ClientTls::with_roots(TlsRoots::from_pem(self.ca_pem.as_bytes()).expect("roots")).expect("client TLS")
    }
}

/// A loopback listener whose first connection is TLS-accepted (server side,
/// `pki`'s certificate) on a thread of its own and handed to `serve`.
fn serve_one_tls<T: Send + 'static>(
    pki: &TestPki,
    serve: impl FnOnce(TlsStream<TcpStream>) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_tls = pki.server_tls();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(server_tls.accept(stream, &options()).unwrap())
    });
    (addr, server)
}

/// Short, finite timeouts, no compression (these tests are about TLS).
fn options() -> Options {
    let mut options = Options::default();
    options.config.deflate = None;
    options.proxy = rfc6455::blocking::ProxyChoice::Direct;
    options.connect_timeout = Some(Duration::from_secs(5));
    options.handshake_timeout = Some(Duration::from_secs(5));
    options.idle_timeout = Some(Duration::from_secs(20));
    options.write_timeout = Some(Duration::from_secs(20));
    options.close_timeout = Duration::from_secs(5);
    options
}

fn client_options(pki: &TestPki) -> Options {
    let mut options = options();
    options.tls = Some(pki.client_tls());
    options
}

/// A TLS echo server on its own thread (`Server::serve`), for the life of the
/// test process.
fn echo_server(pki: &TestPki) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0").expect("bind").with_options(options()).tls(pki.server_tls());
    let addr = server.local_addr().expect("addr");
    thread::spawn(move || {
        server.serve(
            |request| match request {
                Incoming::Upgrade(_) => Reply::accept(),
                Incoming::Http(_) => Reply::Respond(Response::new(200).body("hello over https")),
            },
            |mut ws, ()| {
                // Bounded by the idle timeout if a client vanishes.
                while let Ok(message) = ws.read() {
                    if matches!(message, Message::Close(_)) || ws.send(&message).is_err() {
                        break;
                    }
                }
            },
        )
    });
    addr
}

fn connect_tls(url: &str, options: Options) -> Result<WebSocket<MaybeTls>, Error> {
    Ok(ClientBuilder::new(url)?.options(options).connect()?.0)
}

#[test]
fn client_and_server_exchange_messages_over_tls() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let addr = echo_server(&pki);
    // No process-wide crypto provider is installed, and none is needed.
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{}/echo", addr.port());
        let mut ws = connect_tls(&url, client_options(&pki)).expect("connect");
        assert!(ws.get_ref().is_tls());
        let MaybeTls::Tls(tls) = ws.get_ref() else { panic!("not TLS") };
        tls.with_session(|session| {
            assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(session.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        });
        ws.send_text("hello, TLS").unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text("hello, TLS".into()));
        // Sizes around the TLS record size (16 KiB) and well past it.
        for len in [0, 1, 16_383, 16_384, 16_385, 70_000, 1 << 20] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            ws.send_binary(&payload).unwrap();
            assert_eq!(ws.read().unwrap(), Message::Binary(payload), "{len} bytes");
        }
        ws.close(CloseCode::NORMAL, "bye").unwrap();
    }
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
}

/// A split TLS stream: a flood of messages in both directions at once, with
/// the server echoing from its own split halves. Checks order and content.
#[test]
fn split_full_duplex_over_tls() {
    let pki = pki(&["127.0.0.1"]);
    let server = Server::bind("127.0.0.1:0").unwrap().with_options(options()).tls(pki.server_tls());
    let addr = server.local_addr().unwrap();
    let server = thread::spawn(move || {
        let stream = server.accept_stream().unwrap();
        let Accepted::WebSocket(ws, ()) = server.handshake(stream, |_| Reply::accept()).unwrap() else {
            panic!("expected an upgrade")
        };
        let (mut reader, writer) = ws.split().unwrap();
        // Echo on one thread, and flood on another, at the same time.
        let flooder = {
            let writer = writer.clone();
            thread::spawn(move || {
                for i in 0..2_000u32 {
                    writer.send_binary(&message(i, 0xA5)).unwrap();
                }
            })
        };
        let mut echoed = 0;
        loop {
            match reader.read().unwrap() {
                Message::Binary(data) => {
                    writer.send_binary(&data).unwrap();
                    echoed += 1;
                }
                Message::Close(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        flooder.join().unwrap();
        echoed
    });

    let url = format!("wss://127.0.0.1:{}/", addr.port());
    let ws = connect_tls(&url, client_options(&pki)).unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let sender = {
        let writer = writer.clone();
        thread::spawn(move || {
            for i in 0..2_000u32 {
                writer.send_binary(&message(i, 0x5A)).unwrap();
            }
        })
    };
    // Expect 2,000 echoes (tag 0x5A) and 2,000 flood messages (0xA5), each
    // stream in order, interleaved in any way.
    let (mut next_echo, mut next_flood) = (0u32, 0u32);
    while next_echo < 2_000 || next_flood < 2_000 {
        let Message::Binary(data) = reader.read().unwrap() else { panic!("expected binary") };
        let (tag, i) = (data[4], u32::from_le_bytes(data[..4].try_into().unwrap()));
        let next = if tag == 0x5A { &mut next_echo } else { &mut next_flood };
        assert_eq!(i, *next, "tag {tag:#x} out of order");
        assert_eq!(&data[..], &message(i, tag)[..], "message {i} tag {tag:#x} corrupted");
        *next += 1;
    }
    sender.join().unwrap();
    writer.close(CloseCode::NORMAL, "done").unwrap();
    assert!(matches!(reader.read(), Ok(Message::Close(_))));
    assert_eq!(server.join().unwrap(), 2_000);
}

/// Message `i` of a stream tagged `tag`: 0 to 40 KiB, so that records of
/// every size cross in both directions.
fn message(i: u32, tag: u8) -> Vec<u8> {
    let len = 5 + (i as usize * 7919) % (40 << 10);
    let mut data = vec![tag; len];
    data[..4].copy_from_slice(&i.to_le_bytes());
    data[4] = tag;
    for (j, byte) in data.iter_mut().enumerate().skip(5) {
        *byte = (j as u32 ^ i) as u8;
    }
    data
}

fn tls_error(result: Result<WebSocket<MaybeTls>, Error>) -> TlsError {
    match result {
        Err(Error::Tls(error)) => error,
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("expected a TLS error, got a connection"),
    }
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let pki = pki(&["example.test"]);
    let addr = echo_server(&pki);
    let error = tls_error(connect_tls(&format!("wss://127.0.0.1:{}/", addr.port()), client_options(&pki)));
    assert!(error.is_certificate_error(), "{error}");
    assert!(matches!(
        error.rustls_error(),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. }
        ))
    ));
    let message = Error::Tls(error).to_string();
    assert!(message.contains("not valid for the host name"), "{message}");
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = pki(&["127.0.0.1"]);
    let addr = echo_server(&pki);
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    // The web's roots (and another CA of our own) do not vouch for it.
    let mut options = options();
    options.tls = Some(ClientTls::with_roots(TlsRoots::Bundled).unwrap());
    let error = tls_error(connect_tls(&url, options));
    assert!(matches!(
        error.rustls_error(),
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
    ));
    assert!(error.to_string().contains("not signed by a trusted root"), "{error}");
    let mut options = self::options();
    options.tls = Some(self::pki(&["127.0.0.1"]).client_tls());
    assert!(tls_error(connect_tls(&url, options)).is_certificate_error());
}

#[test]
fn plain_http_over_tls_gets_its_answer() {
    let pki = pki(&["127.0.0.1"]);
    let addr = echo_server(&pki);
    let tcp = TcpStream::connect(addr).unwrap();
    let mut tls = pki.client_tls().connect(tcp, "127.0.0.1", &options()).unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello over https"), "{answer}");
}

#[test]
fn a_silent_client_times_out_in_the_tls_handshake() {
    let pki = pki(&["127.0.0.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = TcpStream::connect(addr).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut options = options();
    options.handshake_timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let result = pki.server_tls().accept(stream, &options);
    assert!(matches!(result, Err(Error::Timeout(Timeout::Handshake))), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_silent_server_times_out_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, then says nothing (keeps the socket open until the end).
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let (_stream, _) = listener.accept().unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
    });
    let pki = pki(&["127.0.0.1"]);
    let mut options = client_options(&pki);
    options.handshake_timeout = Some(Duration::from_millis(300));
    let result = connect_tls(&format!("wss://127.0.0.1:{}/", addr.port()), options);
    assert!(matches!(result, Err(Error::Timeout(Timeout::Handshake))), "{:?}", result.err());
    done_tx.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn a_tls_client_meets_a_plain_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // A plain WebSocket server reads the ClientHello as a bad request.
        rfc6455::blocking::accept_with(stream, &options(), |_| Reply::accept()).err()
    });
    let pki = pki(&["127.0.0.1"]);
    // rustls reads the server's "HTTP/1.1 400" as a broken record, unless the
    // server's close reset the connection first.
    match connect_tls(&format!("wss://127.0.0.1:{}/", addr.port()), client_options(&pki)) {
        Err(Error::Tls(error)) => assert!(!error.is_certificate_error(), "{error}"),
        Err(Error::Disconnected) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connected to a plain server over TLS"),
    }
    assert!(server.join().unwrap().is_some());
}

#[test]
fn a_plain_client_meets_a_tls_server() {
    let pki = pki(&["127.0.0.1"]);
    let addr = echo_server(&pki);
    let result = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port())).unwrap().options(options()).connect();
    assert!(result.is_err());
}

/// The server closes: the client sees the close frame, then the end.
#[test]
fn close_handshake_from_the_server_over_tls() {
    let pki = pki(&["127.0.0.1"]);
    let server = Server::bind("127.0.0.1:0").unwrap().with_options(options()).tls(pki.server_tls());
    let addr = server.local_addr().unwrap();
    let server = thread::spawn(move || {
        let stream = server.accept_stream().unwrap();
        let Accepted::WebSocket(mut ws, ()) = server.handshake(stream, |_| Reply::accept()).unwrap() else {
            panic!("expected an upgrade")
        };
        ws.close(CloseCode::from(4000), "server done").unwrap();
        assert!(matches!(ws.read(), Err(Error::Closed)));
    });
    let mut ws = connect_tls(&format!("wss://127.0.0.1:{}/", addr.port()), client_options(&pki)).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::from(4000));
            assert_eq!(frame.reason, "server done");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::Closed)));
    server.join().unwrap();
}

#[test]
fn accept_with_over_a_tls_stream_of_ones_own() {
    let pki = pki(&["127.0.0.1"]);
    let (addr, server) = serve_one_tls(&pki, |tls| {
        let accepted = rfc6455::blocking::accept_with(tls, &options(), |request| match request {
            Incoming::Upgrade(upgrade) => Reply::Accept(Accept::new(), upgrade.path().to_owned()),
            Incoming::Http(_) => Reply::Respond(Response::new(404)),
        });
        let Ok(Accepted::WebSocket(mut ws, path)) = accepted else { panic!("expected an upgrade") };
        ws.send_text(&path).unwrap();
        assert!(matches!(ws.read(), Ok(Message::Close(_))));
    });
    let mut ws = connect_tls(&format!("wss://127.0.0.1:{}/room/7", addr.port()), client_options(&pki)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("/room/7".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap();
}

#[test]
fn configuration_errors_are_typed() {
    assert!(matches!(TlsRoots::from_pem(b"not PEM at all"), Err(TlsError::NoCertificate)));
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(TlsRoots::from_pem(broken), Err(TlsError::Pem(_))));
    let pki = pki(&["127.0.0.1"]);
    assert!(matches!(ServerTls::from_pem(b"", pki.key_pem.as_bytes()), Err(TlsError::NoCertificate)));
    assert!(matches!(ServerTls::from_pem(pki.cert_pem.as_bytes(), b""), Err(TlsError::NoPrivateKey)));
    // A key that does not belong to the certificate.
    let other = self::pki(&["127.0.0.1"]);
    assert!(ServerTls::from_pem(pki.cert_pem.as_bytes(), other.key_pem.as_bytes()).is_err());
    let missing = ServerTls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem");
    assert!(matches!(missing, Err(TlsError::File { .. })));
    assert!(missing.unwrap_err().to_string().contains("/nonexistent/cert.pem"));
}

#[test]
fn default_roots_load() {
    // The bundled roots are always there; the platform's may be missing on a
    // minimal machine, and then the default still works.
    ClientTls::with_roots(TlsRoots::Bundled).unwrap();
    ClientTls::new().unwrap();
}

/// wss:// through a real HTTP proxy: the CONNECT tunnel first, then TLS and
/// the upgrade inside it, verified against the URL's host.
#[test]
fn wss_through_tinyproxy() {
    let Some(binary) = tinyproxy::Tinyproxy::binary() else {
        return daemon::Daemon::missing("tinyproxy (apt-get install tinyproxy)");
    };
    let pki = pki(&["localhost"]);
    let addr = echo_server(&pki);
    let proxy = tinyproxy::Tinyproxy::start(&binary, addr.port());
    let connected = ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
        .unwrap()
        .options(client_options(&pki))
        .proxy(&format!("http://{}", proxy.addr))
        .unwrap()
        .connect();
    let (mut ws, _) = connected.unwrap_or_else(|e| panic!("wss through tinyproxy: {e}\n{}", proxy.logs()));
    assert!(ws.get_ref().is_tls());
    ws.send_text("through the tunnel").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("through the tunnel".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(proxy.logs().contains("CONNECT"), "tinyproxy saw no CONNECT: {}", proxy.logs());
}

/// wss:// through a real `https://` proxy: stunnel's TLS in front of
/// tinyproxy. TLS to stunnel (checked against 127.0.0.1 and the proxy's own
/// authority), CONNECT to tinyproxy inside it, then TLS to the server inside
/// the tunnel; and ws:// through the same pair.
#[test]
fn wss_and_ws_through_stunnel_and_tinyproxy() {
    let (Some(stunnel_binary), Some(tinyproxy_binary)) = (stunnel::Stunnel::binary(), tinyproxy::Tinyproxy::binary())
    else {
        return daemon::Daemon::missing("stunnel4 or tinyproxy (apt-get install stunnel4 tinyproxy)");
    };
    let (proxy_pki, server_pki) = (pki(&["127.0.0.1"]), pki(&["localhost"]));
    let echo = echo_server(&server_pki);
    let tinyproxy = tinyproxy::Tinyproxy::start(&tinyproxy_binary, echo.port());
    let stunnel = stunnel::Stunnel::start(&stunnel_binary, &proxy_pki.cert_pem, &proxy_pki.key_pem, tinyproxy.addr);
    let connected = ClientBuilder::new(&format!("wss://localhost:{}/", echo.port()))
        .unwrap()
        .options(options_trusting(&[&proxy_pki, &server_pki]))
        .proxy(&format!("https://{}", stunnel.addr))
        .unwrap()
        .connect();
    let (mut ws, _) = connected
        .unwrap_or_else(|e| panic!("wss through stunnel and tinyproxy: {e}\n{}\n{}", stunnel.logs(), tinyproxy.logs()));
    assert!(matches!(ws.get_ref(), MaybeTls::TlsOverProxyTls(_)));
    echo_through(&mut ws);
    assert!(tinyproxy.logs().contains("CONNECT"), "tinyproxy saw no CONNECT: {}", tinyproxy.logs());
    // ws:// through the same pair, to a plain server; tinyproxy allows
    // CONNECT to one port, so the plain server gets a tinyproxy of its own.
    let plain = plain_echo_server();
    let tinyproxy = tinyproxy::Tinyproxy::start(&tinyproxy_binary, plain.port());
    let stunnel = stunnel::Stunnel::start(&stunnel_binary, &proxy_pki.cert_pem, &proxy_pki.key_pem, tinyproxy.addr);
    let (mut ws, _) = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", plain.port()))
        .unwrap()
        .options(client_options(&proxy_pki))
        .proxy(&format!("https://{}", stunnel.addr))
        .unwrap()
        .connect()
        .unwrap_or_else(|e| panic!("ws through stunnel and tinyproxy: {e}\n{}", stunnel.logs()));
    assert!(matches!(ws.get_ref(), MaybeTls::ProxyTls(_)));
    echo_through(&mut ws);
}

#[test]
fn wss_through_microsocks() {
    if !microsocks::Microsocks::installed() {
        return daemon::Daemon::missing("microsocks (apt-get install microsocks)");
    }
    let pki = pki(&["localhost"]);
    let addr = echo_server(&pki);
    // The proxy resolves "localhost" (socks5h); the server listens on
    // 127.0.0.1 only, so this needs "localhost" to resolve there first.
    let first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", addr.port())).ok().and_then(|mut a| a.next());
    if first != Some(addr) {
        eprintln!("SKIP: localhost does not resolve to {addr} first here ({first:?}): the wss SOCKS5 test did not run");
        return;
    }
    let proxy = microsocks::Microsocks::start(Some(("alice", "s3cret")));
    let (mut ws, _) = ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
        .unwrap()
        .options(client_options(&pki))
        .proxy(&format!("socks5h://alice:s3cret@{}", proxy.addr))
        .unwrap()
        .connect()
        .expect("wss through microsocks");
    assert!(ws.get_ref().is_tls());
    ws.send_text("through the SOCKS5 tunnel").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("through the SOCKS5 tunnel".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

/// Copies bytes from `from` to `to` until EOF or an error, then shuts `to`.
fn pump<R: Read, W: Write + rfc6455::blocking::Transport>(mut from: R, mut to: W) {
    copy_until_eof(&mut from, &mut to);
    let _ = rfc6455::blocking::Transport::shutdown(&to);
}

/// A one-connection `https://` proxy: TLS with `pki`'s certificate, a
/// `CONNECT` request read inside it (the thread returns it), `200`, then the
/// tunnel: bytes relayed both ways between the TLS stream and `upstream`.
fn https_proxy(pki: &TestPki, upstream: SocketAddr) -> (SocketAddr, thread::JoinHandle<String>) {
    serve_one_tls(pki, move |mut tls| {
        let request = read_head(&mut tls);
        tls.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
        tls.flush().unwrap();
        let server = TcpStream::connect(upstream).unwrap();
        for socket in [&server, tls.get_ref()] {
            socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        let (tls_in, server_out) =
            (rfc6455::blocking::Transport::try_clone(&tls).unwrap(), server.try_clone().unwrap());
        let up = thread::spawn(move || pump(tls_in, server_out));
        pump(server, tls);
        up.join().unwrap();
        request
    })
}

/// A plain WebSocket echo server for one connection.
fn plain_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let Ok(Accepted::WebSocket(mut ws, ())) =
            rfc6455::blocking::accept_with(stream, &options(), |_| Reply::Accept(Accept::new(), ()))
        else {
            return;
        };
        while let Ok(message) = ws.read() {
            if matches!(message, Message::Close(_)) || ws.send(&message).is_err() {
                break;
            }
        }
    });
    addr
}

fn echo_through(ws: &mut WebSocket<MaybeTls>) {
    for len in [5, 16_385, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        ws.send_binary(&payload).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(payload), "{len} bytes");
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.read(), Err(Error::Closed)));
}

/// `ws://` through an `https://` proxy: the CONNECT request and the tunnel
/// travel inside TLS to the proxy (checked against the proxy's name); the
/// stream is encrypted only as far as the proxy, and says so.
#[test]
fn ws_through_an_https_proxy() {
    let proxy_pki = pki(&["127.0.0.1"]);
    let echo = plain_echo_server();
    let (proxy, proxy_thread) = https_proxy(&proxy_pki, echo);
    let (mut ws, response) = ClientBuilder::new(&format!("ws://echo.invalid:{}/", echo.port()))
        .unwrap()
        .options(client_options(&proxy_pki))
        .proxy(&format!("https://alice:s3cret@{proxy}"))
        .unwrap()
        .connect()
        .expect("ws through the https proxy");
    assert_eq!(response.status(), 101);
    assert!(matches!(ws.get_ref(), MaybeTls::ProxyTls(_)));
    assert!(!ws.get_ref().is_tls());
    echo_through(&mut ws);
    drop(ws);
    let request = proxy_thread.join().unwrap();
    let port = echo.port();
    assert_eq!(
        request,
        format!(
            "CONNECT echo.invalid:{port} HTTP/1.1\r\nHost: echo.invalid:{port}\r\nProxy-Authorization: Basic \
             YWxpY2U6czNjcmV0\r\n\r\n"
        )
    );
}

/// Options whose TLS trusts the authorities of every `pki` given (a proxy's
/// and a server's).
fn options_trusting(pkis: &[&TestPki]) -> Options {
    let roots: String = pkis.iter().map(|pki| pki.ca_pem.as_str()).collect();
    let mut options = options();
    options.tls = Some(ClientTls::with_roots(TlsRoots::from_pem(roots.as_bytes()).unwrap()).unwrap());
    options
}

/// A `wss://` connection to a TLS echo server through a fake `https://`
/// proxy; also the proxy's address, the server's port and the proxy thread.
fn wss_through_https_proxy() -> (WebSocket<MaybeTls>, SocketAddr, u16, thread::JoinHandle<String>) {
    let proxy_pki = pki(&["127.0.0.1"]);
    let server_pki = pki(&["localhost"]);
    let echo = echo_server(&server_pki);
    let (proxy, proxy_thread) = https_proxy(&proxy_pki, echo);
    let (ws, _) = ClientBuilder::new(&format!("wss://localhost:{}/", echo.port()))
        .unwrap()
        .options(options_trusting(&[&proxy_pki, &server_pki]))
        .proxy(&format!("https://{proxy}"))
        .unwrap()
        .connect()
        .expect("wss through the https proxy");
    (ws, proxy, echo.port(), proxy_thread)
}

/// `wss://` through an `https://` proxy: TLS to the server inside the
/// tunnel inside TLS to the proxy, each checked against its own name and
/// its own authority.
#[test]
fn wss_through_an_https_proxy() {
    let (mut ws, proxy, echo_port, proxy_thread) = wss_through_https_proxy();
    assert!(ws.get_ref().is_tls());
    let MaybeTls::TlsOverProxyTls(tls) = ws.get_ref() else { panic!("not TLS inside TLS: {:?}", ws.get_ref()) };
    // The inner session is the server's, the outer one the proxy's.
    let names = |session: &rustls::Connection| session.peer_certificates().map(<[_]>::len);
    assert_eq!(tls.with_session(names), Some(1));
    assert_eq!(tls.get_ref().with_session(names), Some(1));
    assert_eq!(ws.get_ref().tcp().peer_addr().unwrap(), proxy);
    echo_through(&mut ws);
    drop(ws);
    assert!(proxy_thread.join().unwrap().starts_with(&format!("CONNECT localhost:{echo_port} HTTP/1.1\r\n")));
}

/// A split connection over TLS inside TLS: one thread sends while another
/// reads the echoes, each layer's lock taken by both.
#[test]
fn split_full_duplex_through_an_https_proxy() {
    let (ws, _, _, proxy_thread) = wss_through_https_proxy();
    let (mut reader, writer) = ws.split().unwrap();
    let sender = {
        let writer = writer.clone();
        thread::spawn(move || {
            for i in 0..500u32 {
                writer.send_binary(&message(i, 0x5A)).unwrap();
            }
        })
    };
    for i in 0..500u32 {
        assert_eq!(reader.read().unwrap(), Message::Binary(message(i, 0x5A)), "echo {i}");
    }
    sender.join().unwrap();
    writer.close(CloseCode::NORMAL, "done").unwrap();
    assert!(matches!(reader.read(), Ok(Message::Close(_))));
    drop((reader, writer));
    proxy_thread.join().unwrap();
}

/// The proxy's certificate is checked like a server's: one the client's
/// roots do not vouch for ends the connection before any CONNECT is sent.
#[test]
fn an_https_proxy_with_an_untrusted_certificate_is_refused() {
    let proxy_pki = pki(&["127.0.0.1"]);
    let (proxy, proxy_thread) = serve_one_tls_expecting_failure(&proxy_pki);
    let result = ClientBuilder::new("ws://echo.invalid:1/")
        .unwrap()
        .options(client_options(&pki(&["127.0.0.1"])))
        .proxy(&format!("https://{proxy}"))
        .unwrap()
        .connect()
        .map(|(ws, _)| ws);
    assert!(tls_error(result).is_certificate_error());
    proxy_thread.join().unwrap();
}

/// A TLS listener whose one handshake is expected to fail (the client
/// refuses the certificate).
fn serve_one_tls_expecting_failure(pki: &TestPki) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_tls = pki.server_tls();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        assert!(server_tls.accept(stream, &options()).is_err());
    });
    (addr, server)
}

/// Bytes that are not valid TLS records where records should be, after the
/// handshake: a record that fails authentication, and a record header
/// claiming more than TLS allows. The server's read fails at once with an
/// I/O error that carries rustls' reason (no panic, no wait for the claimed
/// length).
#[test]
fn broken_records_after_the_handshake_fail_the_read() {
    let forged: Vec<u8> = [&[0x17, 0x03, 0x03, 0x40, 0x00][..], &[0xAB; 0x4000]].concat();
    let oversized: Vec<u8> = [&[0x17, 0x03, 0x03, 0xFF, 0xFF][..], &[0xAB; 64]].concat();
    for (what, bytes) in [("forged", forged), ("oversized", oversized)] {
        let pki = pki(&["127.0.0.1"]);
        let (addr, server) = serve_one_tls(&pki, |tls| {
            let Ok(Accepted::WebSocket(mut ws, ())) =
                rfc6455::blocking::accept_with(tls, &options(), |_| Reply::accept())
            else {
                panic!("expected an upgrade")
            };
            ws.read()
        });
        let ws = connect_tls(&format!("wss://127.0.0.1:{}/", addr.port()), client_options(&pki)).unwrap();
        let MaybeTls::Tls(tls) = ws.get_ref() else { panic!("not TLS") };
        // Past TLS, straight onto the socket beneath.
        let mut socket: &TcpStream = tls.get_ref();
        socket.write_all(&bytes).unwrap();
        // A read that waited for more would end in Timeout::Idle instead.
        let result = server.join().unwrap();
        match result {
            Err(Error::Io(error)) => {
                assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{what}: {error}");
                assert!(error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()), "{what}: {error}");
            }
            other => panic!("{what}: expected a TLS error, got {other:?}"),
        }
    }
}
