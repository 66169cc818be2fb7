//! Loopback integration tests of the blocking adapters: real TCP sockets on
//! 127.0.0.1 (port 0), a server and clients on threads.
//!
//! Every blocking call is bounded by a timeout from [`Options`] (or a socket
//! timeout on raw streams), every loop by a count, and every thread is joined.
//! No test asserts on elapsed time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rfc6455::blocking::{
    Accepted, ClientBuilder, Error, Incoming, MaybeTls, Options, Reply, Server, Timeout, Transport, WebSocket,
    accept_with, connect,
};
use rfc6455::{Accept, CloseCode, Config, Connection, Event, HandshakeError, Message, PreparedMessage, Response, Role};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Options with short, finite timeouts so that no test can hang forever.
/// permessage-deflate is off here: these tests are about the adapters, and
/// compressing their 16 MiB messages in a debug build can take longer than
/// their timeouts on a loaded machine (deflate has its own tests, and
/// `deflate_is_negotiated_by_default_and_messages_round_trip` below).
fn options() -> Options {
    let mut options = Options::default();
    options.config.deflate = None;
    options.connect_timeout = Some(Duration::from_secs(5));
    options.handshake_timeout = Some(Duration::from_secs(5));
    options.idle_timeout = Some(Duration::from_secs(20));
    options.write_timeout = Some(Duration::from_secs(20));
    options.close_timeout = Duration::from_secs(5);
    options
}

fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// `listener.accept()` that gives up after `timeout` instead of blocking
/// forever (so a failing client cannot hang the server thread).
fn accept_tcp(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("set_nonblocking(false)");
                listener.set_nonblocking(false).expect("listener blocking");
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection within {timeout:?}");
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// Accepts one TCP connection and upgrades it, accepting any request.
fn accept_ws(listener: &TcpListener, options: &Options) -> WebSocket<TcpStream> {
    let stream = accept_tcp(listener, Duration::from_secs(10));
    match accept_with(stream, options, |_| Reply::Accept(Accept::new(), ())).expect("accept_with") {
        Accepted::WebSocket(ws, ()) => ws,
        Accepted::Responded => panic!("expected an upgrade"),
    }
}

fn client(addr: SocketAddr, options: Options) -> WebSocket<MaybeTls> {
    ClientBuilder::new(&url(addr, "/")).expect("url").options(options).connect().expect("connect").0
}

/// The echo loop of `examples/echo_server.rs`: replies straight from the
/// receive buffer; returns the number of data messages echoed once the peer
/// has closed.
fn echo<S: Transport>(ws: &mut WebSocket<S>) -> Result<usize, Error> {
    let mut echoed = 0;
    loop {
        // Some(true): closed; Some(false): a data message echoed.
        let outcome = ws.read_with(|event, sender| match event {
            Event::Text(text) => sender.send_text(text).map(|()| Some(false)),
            Event::Binary(data) => sender.send_binary(data).map(|()| Some(false)),
            Event::Ping(_) | Event::Pong(_) => Ok(None),
            Event::Close(_) => Ok(Some(true)),
        })??;
        match outcome {
            Some(true) => return Ok(echoed),
            Some(false) => echoed += 1,
            None => {}
        }
    }
}

/// Text of exactly `len` bytes, mixing 1-, 2- and 3-byte characters.
fn text_of_len(len: usize) -> String {
    let mut s = String::with_capacity(len);
    let mut i = 0usize;
    while s.len() < len {
        let left = len - s.len();
        let c = match i % 7 {
            3 if left >= 2 => 'ж',
            5 if left >= 3 => '€',
            _ => char::from(b'a' + (i % 26) as u8),
        };
        s.push(c);
        i += 1;
    }
    assert_eq!(s.len(), len);
    s
}

fn binary_of_len(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn checksum(data: &[u8]) -> u32 {
    // FNV-1a.
    data.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

const RAW_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Sends an upgrade request by hand on a raw stream and reads the whole 101
/// response (and nothing after it: the server sends nothing unasked).
fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RAW_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_http_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "unexpected response: {head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "bad Sec-WebSocket-Accept: {head}");
    stream
}

/// Reads an upgrade request by hand on a raw stream and returns the 101
/// response for it, for the caller to write (with frames after it, if any).
fn raw_switching_protocols(stream: &mut TcpStream) -> Vec<u8> {
    let head = read_http_head(stream);
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })
        .expect("Sec-WebSocket-Key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        rfc6455::accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// Reads byte by byte up to and including the blank line ending an HTTP head.
fn read_http_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "response head too long");
        let n = stream.read(&mut byte).expect("read response head");
        assert_eq!(n, 1, "EOF inside the response head: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// Reads until EOF (bounded by the stream's read timeout and a size cap).
fn read_to_end_bounded(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf[..n]);
        assert!(all.len() < 1 << 20, "unbounded response");
    }
}

/// Joins a thread, failing the test (rather than hanging it) if the thread
/// has not finished within two minutes, as with a deadlock in the library.
fn join<T>(handle: thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "thread still running after 120 s: deadlock?");
        thread::sleep(Duration::from_millis(5));
    }
    handle.join().expect("thread panicked")
}

// ---------------------------------------------------------------------------
// 1. Echo at the length boundaries
// ---------------------------------------------------------------------------

#[test]
fn echo_text_and_binary_at_length_boundaries() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        echo(&mut ws).expect("echo")
    });

    let (mut ws, response) =
        ClientBuilder::new(&url(addr, "/")).unwrap().options(options()).connect().expect("connect");
    assert_eq!(response.status(), 101);
    let sizes = [0usize, 1, 125, 126, 127, 65535, 65536, 65537, 16 << 20];
    let mut sent = 0;
    for (i, &len) in sizes.iter().enumerate() {
        let text = text_of_len(len);
        ws.send_text(&text).expect("send text");
        match ws.read().expect("read text echo") {
            Message::Text(echoed) => {
                assert_eq!(echoed.len(), len);
                assert!(echoed == text, "text echo of {len} bytes differs");
            }
            other => panic!("expected text of {len} bytes, got {:?}", short(&other)),
        }
        let data = binary_of_len(len, i as u32);
        ws.send_binary(&data).expect("send binary");
        match ws.read().expect("read binary echo") {
            Message::Binary(echoed) => {
                assert_eq!(echoed.len(), len);
                assert!(echoed == data, "binary echo of {len} bytes differs");
            }
            other => panic!("expected binary of {len} bytes, got {:?}", short(&other)),
        }
        sent += 2;
    }
    ws.close(CloseCode::NORMAL, "").expect("close");
    assert!(ws.is_closed());
    assert_eq!(join(server), sent);
}

/// A message, without dumping megabytes into a panic message.
fn short(message: &Message) -> String {
    let s = format!("{message:?}");
    if s.len() > 200 { format!("{}...", &s[..200]) } else { s }
}

// ---------------------------------------------------------------------------
// 2. Full duplex over split halves
// ---------------------------------------------------------------------------

const DUPLEX_MESSAGES: u32 = 5_000;

/// Message `seq` from side `side`: seq, payload checksum, payload.
fn duplex_message(side: u32, seq: u32) -> Vec<u8> {
    let len = (seq.wrapping_mul(7919) ^ side.wrapping_mul(104_729)) as usize % 4097;
    let payload = binary_of_len(len, seq ^ (side << 24));
    let mut message = Vec::with_capacity(8 + len);
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(&checksum(&payload).to_be_bytes());
    message.extend_from_slice(&payload);
    message
}

/// Sends all messages of one side; every 5th goes as text (hex) to mix opcodes.
fn duplex_send<S: Transport>(writer: &rfc6455::blocking::Writer<S>, side: u32) -> u32 {
    let mut total = 0u32;
    for seq in 0..DUPLEX_MESSAGES {
        let message = duplex_message(side, seq);
        total = total.wrapping_add(checksum(&message));
        if seq % 5 == 0 {
            writer.send_text(&hex(&message)).expect("send text");
        } else {
            writer.send_binary(&message).expect("send binary");
        }
    }
    total
}

/// Reads and checks all messages from side `side`; returns the running
/// checksum over what arrived.
fn duplex_receive<S: Transport>(reader: &mut rfc6455::blocking::Reader<S>, side: u32) -> u32 {
    let mut total = 0u32;
    let mut seq = 0u32;
    while seq < DUPLEX_MESSAGES {
        let message = match reader.read().expect("duplex read") {
            Message::Binary(data) => {
                assert_ne!(seq % 5, 0, "message {seq} should be text");
                data
            }
            Message::Text(text) => {
                assert_eq!(seq % 5, 0, "message {seq} should be binary");
                unhex(&text)
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(frame) => panic!("early close after {seq} messages: {frame:?}"),
        };
        assert!(message.len() >= 8, "message {seq} too short");
        let got_seq = u32::from_be_bytes(message[..4].try_into().unwrap());
        assert_eq!(got_seq, seq, "out of order");
        let sum = u32::from_be_bytes(message[4..8].try_into().unwrap());
        assert_eq!(sum, checksum(&message[8..]), "message {seq} corrupted");
        assert!(message == duplex_message(side, seq), "message {seq} differs");
        total = total.wrapping_add(checksum(&message));
        seq += 1;
    }
    total
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2));
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn full_duplex_flood_both_ways_then_clean_close() {
    const SERVER: u32 = 1;
    const CLIENT: u32 = 2;
    let (listener, addr) = listen();

    let server = thread::spawn(move || {
        let ws = accept_ws(&listener, &options());
        let (mut reader, writer) = ws.split().expect("split");
        let sending = thread::spawn(move || duplex_send(&writer, SERVER));
        let received = duplex_receive(&mut reader, CLIENT);
        let sent = join(sending);
        // The client closes once it has everything.
        match reader.read().expect("close") {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, CloseCode::NORMAL);
                assert_eq!(frame.reason, "done");
            }
            other => panic!("expected close, got {}", short(&other)),
        }
        assert!(matches!(reader.read(), Err(Error::Closed)));
        (sent, received)
    });

    let ws = client(addr, options());
    let (mut reader, writer) = ws.split().expect("split");
    let sending = {
        let writer = writer.clone();
        thread::spawn(move || duplex_send(&writer, CLIENT))
    };
    let receiving = thread::spawn(move || {
        let total = duplex_receive(&mut reader, SERVER);
        (reader, total)
    });
    let client_sent = join(sending);
    let (mut reader, client_received) = join(receiving);

    writer.close(CloseCode::NORMAL, "done").expect("close");
    match reader.read().expect("close reply") {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected close reply, got {}", short(&other)),
    }
    assert!(reader.is_closed());
    assert!(matches!(reader.read(), Err(Error::Closed)));

    let (server_sent, server_received) = join(server);
    assert_eq!(client_sent, server_received, "client -> server checksum");
    assert_eq!(server_sent, client_received, "server -> client checksum");
}

// ---------------------------------------------------------------------------
// 3. Broadcast to many clients
// ---------------------------------------------------------------------------

#[test]
fn broadcast_to_fifty_clients() {
    const CLIENTS: usize = 50;
    const MESSAGES: usize = 20;
    let (listener, addr) = listen();

    let server = thread::spawn(move || {
        let writers = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for _ in 0..CLIENTS {
            let ws = accept_ws(&listener, &options());
            let (mut reader, writer) = ws.split().expect("split");
            writers.lock().unwrap().push(writer);
            // Each connection's reader runs until the close handshake ends.
            readers.push(thread::spawn(move || {
                let mut data_messages = 0;
                loop {
                    match reader.read() {
                        Ok(Message::Close(_)) => return data_messages,
                        Ok(Message::Text(_) | Message::Binary(_)) => data_messages += 1,
                        Ok(_) => {}
                        Err(error) => panic!("server reader: {error}"),
                    }
                }
            }));
        }
        // Everyone has joined: broadcast from a snapshot of the list.
        let snapshot: Vec<_> = writers.lock().unwrap().clone();
        for i in 0..MESSAGES {
            let text = format!("broadcast {i}");
            for writer in &snapshot {
                writer.send_text(&text).expect("broadcast");
            }
        }
        for writer in &snapshot {
            writer.close(CloseCode::NORMAL, "end").expect("close");
        }
        readers.into_iter().map(join).sum::<usize>()
    });

    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                let mut ws = client(addr, options());
                for i in 0..MESSAGES {
                    match ws.read().expect("client read") {
                        Message::Text(text) => assert_eq!(text, format!("broadcast {i}")),
                        other => panic!("expected broadcast {i}, got {other:?}"),
                    }
                }
                // Nothing duplicated or extra: the next thing is the close.
                match ws.read().expect("client read close") {
                    Message::Close(Some(frame)) => assert_eq!(frame.reason, "end"),
                    other => panic!("expected close, got {other:?}"),
                }
                assert!(matches!(ws.read(), Err(Error::Closed)));
            })
        })
        .collect();
    for handle in clients {
        join(handle);
    }
    assert_eq!(join(server), 0, "clients sent no data messages");
}

#[test]
fn ten_pings_in_one_write_get_ten_pongs() {
    // The core keeps one automatic pong waiting (the newest); the adapter
    // writes it after each ping event, so pings read in one batch are each
    // answered, in order (Autobahn 2.10 does this with 10 pings).
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        let mut pings = 0;
        loop {
            match ws.read_with(|event, _| matches!(event, Event::Close(_)).then_some(pings)) {
                Ok(Some(n)) => return n,
                Ok(None) => pings += 1,
                Err(error) => panic!("server read: {error}"),
            }
        }
    });
    let mut raw = raw_upgrade(addr);
    let key = [1, 2, 3, 4];
    let mut wire = Vec::new();
    for i in 0..10u8 {
        let payload = [b'p', b'0' + i];
        wire.extend_from_slice(&[0x89, 0x80 | 2]);
        wire.extend_from_slice(&key);
        wire.extend(payload.iter().enumerate().map(|(j, b)| b ^ key[j % 4]));
    }
    raw.write_all(&wire).unwrap();
    // Ten unmasked pongs of 4 bytes each: 0x8A, length 2, the payload.
    let mut pongs = [0u8; 40];
    raw.read_exact(&mut pongs).expect("ten pongs");
    for (i, pong) in pongs.chunks(4).enumerate() {
        assert_eq!(pong, [0x8a, 2, b'p', b'0' + i as u8], "pong {i}");
    }
    raw.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
    assert_eq!(join(server), 10);
}

// ---------------------------------------------------------------------------
// 4. Timeouts
// ---------------------------------------------------------------------------

#[test]
fn keepalive_detects_a_silent_peer() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.idle_timeout = None;
        options.ping_interval = Some(Duration::from_millis(200));
        options.ping_timeout = Duration::from_millis(300);
        let mut ws = accept_ws(&listener, &options);
        let result = ws.read();
        let closed = ws.is_closed();
        (result, closed)
    });
    // Completes the handshake, then never reads or answers.
    let mut silent = raw_upgrade(addr);
    let (result, closed) = join(server);
    assert!(matches!(result, Err(Error::Timeout(Timeout::Keepalive))), "got {result:?}");
    assert!(closed);
    // The server closed the TCP connection: after the ping it sent, EOF (or a
    // reset) follows.
    let tail = read_to_end_bounded(&mut silent);
    if let Ok(bytes) = tail {
        assert!(bytes.starts_with(&[0x89]), "expected the keepalive ping first, got {bytes:02x?}");
    }
}

#[test]
fn keepalive_is_satisfied_by_a_live_peer() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.ping_interval = Some(Duration::from_millis(50));
        options.ping_timeout = Duration::from_secs(5);
        let mut ws = accept_ws(&listener, &options);
        // The client sends nothing for a while; the pings it answers keep the
        // connection alive until its message arrives.
        let mut pongs = 0;
        loop {
            match ws.read().expect("server read") {
                Message::Pong(payload) => {
                    assert_eq!(payload, b"keepalive");
                    pongs += 1;
                }
                Message::Text(text) => {
                    assert_eq!(text, "still here");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        ws.close(CloseCode::NORMAL, "").expect("server close");
        pongs
    });
    let mut ws = client(addr, options());
    // Answer pings (read answers them) until three have been seen.
    let mut pings = 0;
    while pings < 3 {
        match ws.read().expect("client read") {
            Message::Ping(payload) => {
                assert_eq!(payload, b"keepalive");
                pings += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.send_text("still here").expect("send");
    loop {
        match ws.read().expect("client read") {
            Message::Ping(_) => {}
            Message::Close(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(join(server) >= 3);
}

#[test]
fn half_handshake_is_cut_off() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.handshake_timeout = Some(Duration::from_millis(300));
        let stream = accept_tcp(&listener, Duration::from_secs(10));
        accept_with(stream, &options, |_| Reply::Accept(Accept::new(), ())).map(|_| ())
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let result = join(server);
    assert!(matches!(result, Err(Error::Timeout(Timeout::Handshake))), "got {result:?}");
    // The connection is closed: EOF or an error, never a timeout of our own.
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "unexpected bytes {:?}", &buf[..n]),
        Err(error) => assert!(
            !matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            "the server left the connection open"
        ),
    }
}

#[test]
fn idle_timeout_fires() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.idle_timeout = Some(Duration::from_millis(300));
        let mut ws = accept_ws(&listener, &options);
        ws.read()
    });
    let mut ws = client(addr, options());
    let result = join(server);
    assert!(matches!(result, Err(Error::Timeout(Timeout::Idle))), "got {result:?}");
    // The server closed the transport without a close handshake.
    let client_result = ws.read();
    assert!(matches!(client_result, Err(Error::Disconnected)), "got {client_result:?}");
}

// ---------------------------------------------------------------------------
// 5. Close handshakes and abrupt disconnects
// ---------------------------------------------------------------------------

#[test]
fn client_initiated_close() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        let first = ws.read();
        let second = ws.read();
        let third = ws.send_text("too late");
        (first, second, third)
    });
    let mut ws = client(addr, options());
    ws.close(CloseCode::NORMAL, "bye").expect("close");
    assert!(ws.is_closed());
    assert!(matches!(ws.read(), Err(Error::Closed)));
    assert!(matches!(ws.send_text("x"), Err(Error::Closed)));
    let (first, second, third) = join(server);
    match first.expect("server read") {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::NORMAL);
            assert_eq!(u16::from(frame.code), 1000);
            assert_eq!(frame.reason, "bye");
        }
        other => panic!("expected close, got {other:?}"),
    }
    assert!(matches!(second, Err(Error::Closed)), "got {second:?}");
    assert!(matches!(third, Err(Error::Closed)), "got {third:?}");
}

#[test]
fn server_initiated_close() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        ws.send_text("last words").expect("send");
        let closed = ws.close(CloseCode::from(4000), "bye");
        (closed, ws.read())
    });
    let mut ws = client(addr, options());
    assert_eq!(ws.read().expect("read"), Message::Text("last words".into()));
    match ws.read().expect("read close") {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason, "bye");
        }
        other => panic!("expected close, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::Closed)));
    let (closed, after) = join(server);
    closed.expect("server close");
    assert!(matches!(after, Err(Error::Closed)), "got {after:?}");
}

#[test]
fn abrupt_disconnect_is_reported() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        let first = ws.read();
        let second = ws.read();
        (first, second, ws.is_closed())
    });
    let mut ws = client(addr, options());
    ws.send_text("hello").expect("send");
    drop(ws); // No close frame: the TCP connection just ends.
    let (first, second, closed) = join(server);
    assert_eq!(first.expect("first"), Message::Text("hello".into()));
    assert!(matches!(second, Err(Error::Disconnected)), "got {second:?}");
    assert!(closed);
}

#[test]
fn abrupt_disconnect_of_a_split_reader() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let (mut reader, writer) = accept_ws(&listener, &options()).split().expect("split");
        let result = reader.read();
        // The writer learns of it too, at the latest on its next sends.
        let mut send_failed = false;
        for _ in 0..100 {
            if writer.send_binary(&[0u8; 1024]).is_err() {
                send_failed = true;
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        (result, send_failed)
    });
    let stream = raw_upgrade(addr);
    drop(stream);
    let (result, send_failed) = join(server);
    assert!(matches!(result, Err(Error::Disconnected)), "got {result:?}");
    assert!(send_failed, "sends kept succeeding on a dead connection");
}

/// "hello" as a text frame, then a frame with the reserved opcode 7 and a
/// payload (Autobahn case 4.1.5), masked (with a zero key) as a client sends
/// them or not as a server does.
fn hello_then_reserved_opcode(masked: bool) -> Vec<u8> {
    let mut wire = Vec::new();
    for first in [0x81, 0x87] {
        if masked {
            wire.extend_from_slice(&[first, 0x80 | 5, 0, 0, 0, 0]);
        } else {
            wire.extend_from_slice(&[first, 5]);
        }
        wire.extend_from_slice(b"hello");
    }
    wire
}

/// Reads one masked frame of at most 125 bytes: its first byte and its
/// unmasked payload.
fn read_masked_frame(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 6];
    stream.read_exact(&mut head)?;
    assert!(head[1] & 0x80 != 0 && head[1] & 0x7f <= 125, "not a short masked frame: {head:?}");
    let mut payload = vec![0; usize::from(head[1] & 0x7f)];
    stream.read_exact(&mut payload)?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= head[2 + i % 4];
    }
    Ok((head[0], payload))
}

/// What a peer saw of the end of a connection the other side failed, after
/// it had read the close frame and then sent more (as a peer that has not
/// read the close frame yet does): whether that last send, its half-close
/// and its read to the end of the stream went through, and the socket error
/// left over, if any (a reset leaves one).
#[derive(Debug, PartialEq)]
struct EndSeen {
    sent_after_close: bool,
    half_closed: bool,
    trailing: Result<usize, io::ErrorKind>,
    socket_error: Option<io::ErrorKind>,
}

/// Sends `trailing` after the close frame, reads to the end of the stream,
/// waits for `other_side_gone`, ends this side (first of all when
/// `close_first`), reads once more and reports.
fn end_seen(stream: &mut TcpStream, trailing: &[u8], close_first: bool, other_side_gone: impl FnOnce()) -> EndSeen {
    let sent_after_close = stream.write_all(trailing).is_ok();
    let mut half_closed = !close_first || stream.shutdown(std::net::Shutdown::Write).is_ok();
    let rest = read_to_end_bounded(stream).map(|rest| rest.len()).map_err(|error| error.kind());
    other_side_gone();
    if !close_first {
        half_closed = stream.shutdown(std::net::Shutdown::Write).is_ok();
    }
    // One more read: a reset that came after the end of the stream shows here.
    let trailing = rest.and_then(|n| stream.read(&mut [0u8; 16]).map(|more| n + more).map_err(|error| error.kind()));
    let socket_error = stream.take_error().ok().flatten().map(|error| error.kind());
    EndSeen { sent_after_close, half_closed, trailing, socket_error }
}

const CLEAN_END: EndSeen = EndSeen { sent_after_close: true, half_closed: true, trailing: Ok(0), socket_error: None };

/// A server that fails the connection ends its side, then reads (and
/// discards) what the client still sends until the client ends its side:
/// closing at once, with those bytes unread or still on their way, would
/// reset the connection, and a client that gets the reset before it has read
/// the close frame loses it (Autobahn case 4.1.5 over TLS saw this: the echo
/// of the message before the bad frame went missing).
#[test]
fn a_failing_server_reads_on_until_the_client_ends_instead_of_resetting() {
    for split in [false, true] {
        let (listener, addr) = listen();
        let server = thread::spawn(move || {
            let ws = accept_ws(&listener, &options());
            if split {
                let (mut reader, writer) = ws.split().expect("split");
                let echoed = reader.read().map(|message| writer.send(&message));
                (echoed.is_ok(), reader.read().map(drop))
            } else {
                let mut ws = ws;
                (true, echo(&mut ws).map(drop))
            }
        });
        let mut stream = raw_upgrade(addr);
        stream.write_all(&hello_then_reserved_opcode(true)).expect("send");
        let mut replies = [0u8; 11];
        stream.read_exact(&mut replies).expect("echo and close frame");
        assert_eq!(replies, *b"\x81\x05hello\x88\x02\x03\xea", "split: {split}");
        // The client ends its side once it has read the server's end.
        let seen = end_seen(&mut stream, &[0x89, 0x80, 0, 0, 0, 0], false, || {});
        let (echoed, failed) = join(server);
        assert!(echoed, "split: {split}");
        assert!(matches!(failed, Err(Error::Protocol(_))), "split: {split}: {failed:?}");
        assert_eq!(seen, CLEAN_END, "split: {split}");
    }
}

/// The wait after a failure is bounded by `close_timeout`, not by the
/// peer: a client that never stops sending (and never ends its side) does
/// not hold a failing server, which reads only into a small scratch buffer
/// meanwhile. The client's flood ends when the server has closed.
#[test]
fn a_peer_that_keeps_sending_holds_a_failing_server_only_until_the_close_timeout() {
    const MAX_WRITES: usize = 1_000_000; // 4 GB: far more than 300 ms of loopback
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.close_timeout = Duration::from_millis(300);
        let mut ws = accept_ws(&listener, &options);
        echo(&mut ws).map(drop)
    });
    let mut stream = raw_upgrade(addr);
    stream.write_all(&hello_then_reserved_opcode(true)).expect("send");
    let mut replies = [0u8; 11];
    stream.read_exact(&mut replies).expect("echo and close frame");
    // Binary frame headers with 4 KiB payloads, masked with a zero key,
    // written until a write fails.
    let mut chunk = vec![0u8; 4096];
    chunk[..8].copy_from_slice(&[0x82, 0x80 | 126, 0x0f, 0xf8, 0, 0, 0, 0]);
    let writes = (0..MAX_WRITES).find(|_| stream.write_all(&chunk).is_err());
    assert!(writes.is_some(), "the server was still reading after {MAX_WRITES} writes of 4 KiB");
    let failed = join(server);
    assert!(matches!(failed, Err(Error::Protocol(_))), "{failed:?}");
}

/// A client that fails the connection waits, reading and discarding, for
/// the server to close first (RFC 6455 section 7.1.1), here in vain: the
/// server does not close, so the wait ends at the close timeout, and the
/// client closes with nothing unread, not with a reset.
#[test]
fn a_failing_client_reads_on_until_it_closes_instead_of_resetting() {
    let (listener, addr) = listen();
    let (gone_tx, gone_rx) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let mut stream = accept_tcp(&listener, Duration::from_secs(10));
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut bytes = raw_switching_protocols(&mut stream);
        bytes.extend_from_slice(&hello_then_reserved_opcode(false));
        stream.write_all(&bytes).unwrap();
        let echo = read_masked_frame(&mut stream).map_err(|error| error.kind());
        let close = read_masked_frame(&mut stream).map_err(|error| error.kind());
        let seen = end_seen(&mut stream, &[0x89, 0], false, || {
            let _ = gone_rx.recv_timeout(Duration::from_secs(60));
        });
        (echo, close, seen)
    });
    let mut options = options();
    options.close_timeout = Duration::from_millis(300);
    let mut ws = client(addr, options);
    let failed = echo(&mut ws);
    assert!(matches!(failed, Err(Error::Protocol(_))), "{failed:?}");
    drop(ws);
    gone_tx.send(()).unwrap();
    let (echo, close, seen) = join(server);
    assert_eq!(echo, Ok((0x81, b"hello".to_vec())));
    assert_eq!(close, Ok((0x88, vec![0x03, 0xea])));
    assert_eq!(seen, CLEAN_END);
}

// ---------------------------------------------------------------------------
// 6. Rejections and plain HTTP on the same port
// ---------------------------------------------------------------------------

/// A plain HTTP request answered without reading its body: the server
/// answers, ends its side, and reads (and discards) the rest of the body
/// until the client ends its side, instead of closing with the body unread,
/// which would reset the connection under a client still sending it.
#[test]
fn an_answer_that_leaves_a_body_unread_comes_without_a_reset() {
    const BODY: usize = 256 << 10;
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let stream = accept_tcp(&listener, Duration::from_secs(10));
        let accepted = accept_with(stream, &options(), |request| match request {
            Incoming::Http(_) => Reply::<()>::Respond(Response::new(413)),
            Incoming::Upgrade(_) => panic!("expected a plain request"),
        });
        matches!(accepted, Ok(Accepted::Responded))
    });
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut request = format!("POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    request.resize(request.len() + BODY, b'x');
    let sent = stream.write_all(&request).map_err(|error| error.kind());
    let response = read_to_end_bounded(&mut stream).map_err(|error| error.kind());
    let half_closed = stream.shutdown(std::net::Shutdown::Write).map_err(|error| error.kind());
    assert!(join(server), "accept_with did not return Accepted::Responded");
    let after = stream.read(&mut [0u8; 16]).map_err(|error| error.kind());
    let socket_error = stream.take_error().ok().flatten().map(|error| error.kind());
    assert_eq!(sent, Ok(()));
    let response = response.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    assert!(response.as_ref().is_ok_and(|text| text.starts_with("HTTP/1.1 413")), "{response:?}");
    assert_eq!((half_closed, after, socket_error), (Ok(()), Ok(0), None));
}

#[test]
fn reject_with_403() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let stream = accept_tcp(&listener, Duration::from_secs(10));
        let accepted = accept_with(stream, &options(), |request| match request {
            Incoming::Upgrade(upgrade) => {
                assert_eq!(upgrade.path(), "/private");
                Reply::<()>::Respond(Response::new(403).body("go away"))
            }
            Incoming::Http(_) => panic!("expected an upgrade"),
        });
        matches!(accepted, Ok(Accepted::Responded))
    });
    let result = ClientBuilder::new(&url(addr, "/private")).unwrap().options(options()).connect();
    match result {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status })) => assert_eq!(status, 403),
        Err(other) => panic!("expected a 403, got {other:?}"),
        Ok(_) => panic!("expected a 403, got a connection"),
    }
    assert!(join(server), "accept_with did not return Accepted::Responded");
}

#[test]
fn http_page_and_websocket_on_the_same_port() {
    const PAGE: &str = "<h1>hello</h1>";
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let decide = |request: Incoming<'_>| match request {
            Incoming::Http(http) => {
                assert_eq!(http.method(), "GET");
                assert_eq!(http.path(), "/");
                Reply::Respond(Response::new(200).header("Content-Type", "text/html").body(PAGE))
            }
            Incoming::Upgrade(upgrade) if upgrade.path() == "/ws" => Reply::Accept(Accept::new(), ()),
            Incoming::Upgrade(_) => Reply::Respond(Response::new(404)),
        };
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let stream = accept_tcp(&listener, Duration::from_secs(10));
            match accept_with(stream, &options(), decide).expect("accept_with") {
                Accepted::Responded => outcomes.push("http"),
                Accepted::WebSocket(mut ws, ()) => {
                    outcomes.push("ws");
                    assert_eq!(echo(&mut ws).expect("echo"), 1);
                }
            }
        }
        outcomes
    });

    let mut http = TcpStream::connect(addr).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    http.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
    let response = String::from_utf8(read_to_end_bounded(&mut http).expect("read page")).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "got {response}");
    assert!(response.ends_with(PAGE), "got {response}");
    assert!(response.to_ascii_lowercase().contains("content-type: text/html"), "got {response}");

    let (mut ws, _) = ClientBuilder::new(&url(addr, "/ws")).unwrap().options(options()).connect().expect("upgrade");
    ws.send_text("ping?").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("ping?".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(join(server), ["http", "ws"]);
}

// ---------------------------------------------------------------------------
// 7. Subprotocols and response headers
// ---------------------------------------------------------------------------

#[test]
fn subprotocol_negotiation() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let stream = accept_tcp(&listener, Duration::from_secs(10));
        let mut offered = Vec::new();
        let accepted = accept_with(stream, &options(), |request| match request {
            Incoming::Upgrade(upgrade) => {
                offered = upgrade.protocols().to_vec();
                // Prefer v1 whatever the client's order.
                let chosen = offered.iter().find(|p| *p == "chat.v1").cloned().expect("chat.v1 offered");
                Reply::Accept(Accept::new().protocol(chosen).header("X-Server", "rfc6455-test"), ())
            }
            Incoming::Http(_) => panic!("expected an upgrade"),
        })
        .expect("accept_with");
        let Accepted::WebSocket(mut ws, ()) = accepted else { panic!("expected a WebSocket") };
        echo(&mut ws).expect("echo");
        offered
    });
    let (mut ws, response) = ClientBuilder::new(&url(addr, "/chat"))
        .unwrap()
        .protocol("chat.v2")
        .protocol("chat.v1")
        .options(options())
        .connect()
        .expect("connect");
    assert_eq!(response.status(), 101);
    assert_eq!(response.protocol(), Some("chat.v1"));
    assert_eq!(response.headers().get_str("x-server"), Some("rfc6455-test"));
    assert_eq!(response.headers().get_str("Sec-WebSocket-Protocol"), Some("chat.v1"));
    ws.send_text("hi").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hi".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(join(server), ["chat.v2", "chat.v1"]);
}

#[test]
fn accepting_a_protocol_not_offered_fails() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let stream = accept_tcp(&listener, Duration::from_secs(10));
        accept_with(stream, &options(), |_| Reply::Accept(Accept::new().protocol("nope"), ())).map(|_| ())
    });
    let result = ClientBuilder::new(&url(addr, "/")).unwrap().protocol("chat.v1").options(options()).connect();
    assert!(result.is_err(), "the client accepted a protocol it never offered");
    assert!(join(server).is_err());
}

// ---------------------------------------------------------------------------
// 8. Coalescing of replies
// ---------------------------------------------------------------------------

/// A `TcpStream` that counts its `write` calls.
struct CountingStream {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for CountingStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    fn shutdown(&self) -> io::Result<()> {
        Transport::shutdown(&self.inner)
    }
}

/// Upgrades a raw connection to the server at `addr`, writes every client
/// frame `frames` queues in one go (pipelined), and returns a client-role
/// WebSocket over the same stream to read the replies with.
fn pipeline(addr: SocketAddr, frames: impl FnOnce(&mut Connection)) -> WebSocket<TcpStream> {
    let stream = raw_upgrade(addr);
    let mut encoder = Connection::new(Role::Client, Config::default());
    frames(&mut encoder);
    let mut wire = Vec::new();
    encoder.take_output(&mut wire);
    (&stream).write_all(&wire).unwrap();
    WebSocket::from_connection(stream, Connection::new(Role::Client, Config::default()), &options()).expect("wrap")
}

#[test]
fn pipelined_messages_are_echoed_in_order_with_few_writes() {
    const N: usize = 1_000;
    let (listener, addr) = listen();
    let writes = Arc::new(AtomicUsize::new(0));
    let server = {
        let writes = Arc::clone(&writes);
        thread::spawn(move || {
            let stream = accept_tcp(&listener, Duration::from_secs(10));
            let stream = CountingStream { inner: stream, writes: Arc::clone(&writes) };
            let accepted = accept_with(stream, &options(), |_| Reply::Accept(Accept::new(), ())).expect("accept");
            let Accepted::WebSocket(mut ws, ()) = accepted else { panic!("expected a WebSocket") };
            let after_handshake = writes.load(Ordering::Relaxed);
            let echoed = echo(&mut ws).expect("echo");
            (echoed, after_handshake)
        })
    };

    let mut ws = pipeline(addr, |encoder| {
        for i in 0..N {
            encoder.send_text(&format!("message {i}")).unwrap();
        }
    });
    for i in 0..N {
        assert_eq!(ws.read().expect("reply"), Message::Text(format!("message {i}")));
    }
    ws.close(CloseCode::NORMAL, "").expect("close");
    let (echoed, after_handshake) = join(server);
    assert_eq!(echoed, N);
    // The replies plus the close reply went out in batches, one write per
    // read of the pipelined requests rather than one per message.
    let reply_writes = writes.load(Ordering::Relaxed) - after_handshake;
    assert!(reply_writes >= 1);
    assert!(reply_writes < N / 4, "{reply_writes} writes for {N} pipelined replies");
}

#[test]
fn pipelined_echoes_stay_under_a_small_write_buffer_limit() {
    // Replies held back for batching are written before they reach
    // `max_write_buffer`, so an echo loop never sees `WriteBufferFull`.
    const N: usize = 300;
    let mut server_options = options();
    server_options.config.max_write_buffer = 16 << 10;
    let (listener, addr) = listen();
    let server = thread::spawn(move || echo(&mut accept_ws(&listener, &server_options)));
    let payload = vec![0x3cu8; 1000];
    let mut ws = pipeline(addr, |encoder| {
        for _ in 0..N {
            encoder.send_binary(&payload).unwrap();
        }
    });
    for i in 0..N {
        assert_eq!(ws.read().unwrap_or_else(|e| panic!("reply {i}: {e}")), Message::Binary(payload.clone()));
    }
    ws.close(CloseCode::NORMAL, "").expect("close");
    assert_eq!(join(server).expect("echo"), N);
}

// ---------------------------------------------------------------------------
// 9. Backpressure
// ---------------------------------------------------------------------------

fn backpressure_options() -> Options {
    let mut options = options();
    options.write_timeout = Some(Duration::from_millis(300));
    options.config.max_write_buffer = 64 << 10;
    options
}

const BIG: usize = 1 << 20;
/// Loopback socket buffers hold a few MiB at most; 256 MiB is far beyond.
const MAX_SENDS: usize = 256;

#[test]
fn split_writer_to_a_peer_that_never_reads_times_out() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let ws = accept_ws(&listener, &backpressure_options());
        let (_reader, writer) = ws.split().expect("split");
        let message = vec![0x5au8; BIG];
        let mut outcome = None;
        for sends in 1..=MAX_SENDS {
            if let Err(error) = writer.send_binary(&message) {
                outcome = Some((sends, error));
                break;
            }
        }
        let after = writer.send_binary(b"more");
        (outcome, after)
    });
    // Handshake done, then never read.
    let stream = raw_upgrade(addr);
    let (outcome, after) = join(server);
    drop(stream);
    let (sends, error) = outcome.expect("sending never blocked");
    assert!(matches!(error, Error::Timeout(Timeout::Write)), "after {sends} sends: {error:?}");
    assert!(sends > 0);
    // The connection is failed for good.
    assert!(after.is_err(), "a send after the write timeout succeeded");
}

#[test]
fn websocket_write_buffer_stays_bounded_when_the_peer_never_reads() {
    let (listener, addr) = listen();
    let options = backpressure_options();
    let limit = options.config.max_write_buffer;
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options);
        let message = vec![0xa5u8; BIG];
        let mut max_buffered = 0;
        let mut outcome = None;
        for sends in 1..=MAX_SENDS {
            let result = ws.send_binary(&message);
            max_buffered = max_buffered.max(ws.connection().sender().buffered_len());
            if let Err(error) = result {
                outcome = Some((sends, error));
                break;
            }
        }
        (outcome, max_buffered, ws.is_closed())
    });
    let stream = raw_upgrade(addr);
    let (outcome, max_buffered, closed) = join(server);
    drop(stream);
    let (sends, error) = outcome.expect("sending never blocked");
    assert!(matches!(error, Error::Timeout(Timeout::Write)), "after {sends} sends: {error:?}");
    assert!(closed);
    // Frame header of a 1 MiB server frame: 10 bytes.
    assert!(max_buffered <= limit + BIG + 10, "buffered {max_buffered} bytes, limit {limit} + one message");
}

#[test]
fn split_writers_on_many_threads_to_a_slow_reader() {
    // Several writer threads share one connection while the peer reads slowly
    // at first: all messages arrive, in per-thread order, none lost. Every
    // fourth message is large enough (2 KiB and up) to be written from the
    // sending thread's memory when the socket is free, in between the
    // others' batches.
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 300;
    let size = |i: u32| if i % 4 == 3 { 20_000 + 1_000 * (i as usize % 7) } else { 2000 };
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.config.max_write_buffer = 16 << 10;
        let (mut reader, writer) = accept_ws(&listener, &options).split().expect("split");
        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let mut message = vec![t as u8; size(i)];
                        message[..4].copy_from_slice(&i.to_be_bytes());
                        writer.send_binary(&message).expect("send");
                    }
                })
            })
            .collect();
        for handle in senders {
            join(handle);
        }
        writer.close(CloseCode::NORMAL, "").expect("close");
        match reader.read().expect("close reply") {
            Message::Close(_) => {}
            other => panic!("expected close, got {}", short(&other)),
        }
    });
    let mut ws = client(addr, options());
    thread::sleep(Duration::from_millis(100)); // let the socket fill up
    let mut next = [0u32; THREADS as usize];
    let mut total = 0;
    loop {
        match ws.read().expect("read") {
            Message::Binary(data) => {
                let t = usize::from(data[4]);
                assert!(data[4..].iter().all(|&b| usize::from(b) == t), "corrupted message");
                let i = u32::from_be_bytes(data[..4].try_into().unwrap());
                assert_eq!(i, next[t], "thread {t} out of order");
                assert_eq!(data.len(), size(i), "message {i} of thread {t}");
                next[t] += 1;
                total += 1;
            }
            Message::Close(_) => break,
            other => panic!("unexpected {}", short(&other)),
        }
    }
    assert_eq!(total, THREADS * PER_THREAD);
    join(server);
}

// ---------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------

#[test]
fn accept_turns_nagle_off_as_the_default_options_say() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(false).expect("nodelay off");
        let mut ws = rfc6455::blocking::accept(stream).expect("upgrade");
        let nodelay = ws.get_ref().nodelay().expect("nodelay");
        while !matches!(ws.read(), Ok(Message::Close(_)) | Err(_)) {}
        nodelay
    });
    let mut ws = client(addr, options());
    ws.close(CloseCode::NORMAL, "").expect("close");
    assert!(join(server), "Nagle's algorithm still on after accept");
}

#[test]
fn connect_helper_and_ping_pong() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        echo(&mut ws).expect("echo")
    });
    let (mut ws, response) = connect(&url(addr, "/")).expect("connect");
    ws.ping(b"are you there").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"are you there".to_vec()));
    assert!(matches!(ws.ping(&[0u8; 126]), Err(Error::Send(_))), "oversized ping accepted");
    // A rejected send is not fatal: the connection still works.
    ws.send(&Message::Binary(vec![1, 2, 3])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![1, 2, 3]));
    assert_eq!(response.status(), 101);
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(join(server), 1);
}

/// Without the `tls` feature, a `wss://` URL is refused up front.
#[cfg(not(feature = "tls"))]
#[test]
fn wss_is_unsupported() {
    assert!(matches!(connect("wss://127.0.0.1:1/"), Err(Error::Unsupported(_))));
}

// ---------------------------------------------------------------------------
// Bytes that arrive together with the handshake
// ---------------------------------------------------------------------------

#[test]
fn frames_pipelined_behind_the_upgrade_request_are_not_lost() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &options());
        echo(&mut ws).expect("echo")
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RAW_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    let mut encoder = Connection::new(Role::Client, Config::default());
    encoder.send_text("early 1").unwrap();
    encoder.send_binary(b"early 2").unwrap();
    encoder.take_output(&mut bytes);
    // Request and frames in a single write.
    stream.write_all(&bytes).unwrap();
    let head = read_http_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "got {head}");
    let mut ws =
        WebSocket::from_connection(stream, Connection::new(Role::Client, Config::default()), &options()).expect("wrap");
    assert_eq!(ws.read().unwrap(), Message::Text("early 1".into()));
    assert_eq!(ws.read().unwrap(), Message::Binary(b"early 2".to_vec()));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(join(server), 2);
}

#[test]
fn a_message_in_the_same_segment_as_the_101_is_not_lost() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut stream = accept_tcp(&listener, Duration::from_secs(10));
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut bytes = raw_switching_protocols(&mut stream);
        bytes.extend_from_slice(&[0x81, 5]);
        bytes.extend_from_slice(b"hello");
        // Response and first frame in a single write.
        stream.write_all(&bytes).unwrap();
        // Then wait for the client to go away.
        read_to_end_bounded(&mut stream).map(|rest| rest.len())
    });
    let mut ws = client(addr, options());
    assert_eq!(ws.read().expect("read"), Message::Text("hello".into()));
    drop(ws);
    let _ = join(server);
}

#[test]
fn contending_split_writers_never_fail_with_write_buffer_full() {
    // Messages as large as the write buffer limit, sent from several threads:
    // a send that finds the buffer full must wait for room, not fail because
    // another thread refilled the buffer between its flush and its retry.
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 100;
    const SIZE: usize = 64 << 10;
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut options = options();
        options.config.max_write_buffer = SIZE;
        let (mut reader, writer) = accept_ws(&listener, &options).split().expect("split");
        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    let message = vec![t as u8; SIZE];
                    for i in 0..PER_THREAD {
                        if let Err(error) = writer.send_binary(&message) {
                            return Err(format!("thread {t}, message {i}: {error}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let results: Vec<_> = senders.into_iter().map(join).collect();
        let _ = writer.close(CloseCode::NORMAL, "");
        let _ = reader.read();
        results
    });
    let mut ws = client(addr, options());
    let mut per_thread = [0u32; THREADS as usize];
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => {
                assert_eq!(data.len(), SIZE);
                assert!(data.iter().all(|&b| b == data[0]), "corrupted message");
                per_thread[usize::from(data[0])] += 1;
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(other) => panic!("unexpected {}", short(&other)),
        }
        // A slow reader, so that the writers contend for room.
        if per_thread.iter().sum::<u32>() % 16 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    let results = join(server);
    for result in results {
        result.expect("send failed");
    }
    assert_eq!(per_thread, [PER_THREAD; THREADS as usize]);
}

/// The issue's requirement, checked by the compiler: a broadcast server keeps
/// one cloneable writer per client and sends from any thread.
#[test]
fn writer_is_clone_send_and_sync_and_reader_is_send() {
    fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    clone_send_sync::<rfc6455::blocking::Writer<TcpStream>>();
    send::<rfc6455::blocking::Reader<TcpStream>>();
    send::<WebSocket<TcpStream>>();
    clone_send_sync::<rfc6455::blocking::Writer<MaybeTls>>();
    send::<rfc6455::blocking::Reader<MaybeTls>>();
    send::<WebSocket<MaybeTls>>();
    send::<Connection>();
}

/// A broadcast must not wait on a client that stopped reading. With a writer
/// thread per connection, sends only queue: the stuck client's queue fills and
/// its sends are refused with `WriteBufferFull`, while a healthy client gets
/// every message. (Had the broadcaster written to the stuck socket itself, it
/// would have blocked until the 60 s write timeout and failed with
/// `Timeout::Write` instead: the assertion tells the two apart without timing.)
#[test]
fn broadcast_is_not_held_up_by_a_client_that_stopped_reading() {
    const MESSAGES: usize = 400;
    let payload = vec![0x5a; 16 << 10];
    let (listener, addr) = listen();
    let mut server_options = options();
    server_options.write_timeout = Some(Duration::from_secs(60));
    server_options.config.max_write_buffer = 256 << 10;

    let stuck = thread::spawn(move || {
        let stream = raw_upgrade(addr);
        // Never read; keep the socket open until the server is done.
        let mut probe = [0u8; 1];
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = (&stream).take(0).read(&mut probe);
        stream
    });
    let stuck_ws = accept_ws(&listener, &server_options);
    let healthy = thread::spawn(move || {
        let mut ws = client(addr, options());
        let mut received = 0;
        while received < MESSAGES {
            match ws.read() {
                Ok(Message::Binary(data)) => {
                    assert_eq!(data.len(), 16 << 10);
                    received += 1;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(error) => panic!("healthy client failed after {received} messages: {error}"),
            }
        }
        ws.close(CloseCode::NORMAL, "").expect("close");
        received
    });
    let healthy_ws = accept_ws(&listener, &server_options);

    let (_stuck_reader, stuck_writer) = stuck_ws.split_with_writer_thread().expect("split");
    let (mut healthy_reader, healthy_writer) = healthy_ws.split_with_writer_thread().expect("split");
    let mut stuck_refused = None;
    for i in 0..MESSAGES {
        if stuck_refused.is_none() {
            match stuck_writer.send_binary(&payload) {
                Ok(()) => {}
                Err(Error::Send(rfc6455::SendError::WriteBufferFull { .. })) => stuck_refused = Some(i),
                Err(other) => panic!("stuck client: expected WriteBufferFull, got {other}"),
            }
        }
        // Backpressure from a healthy but momentarily busy client: retry.
        let mut attempts = 0;
        loop {
            match healthy_writer.send_binary(&payload) {
                Ok(()) => break,
                Err(Error::Send(rfc6455::SendError::WriteBufferFull { .. })) if attempts < 10_000 => {
                    attempts += 1;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(other) => panic!("healthy client send {i}: {other}"),
            }
        }
    }
    assert!(stuck_refused.is_some_and(|i| i < MESSAGES), "the stuck client's queue never filled");
    // The healthy client closes once it has everything: its reader sees the
    // close (and answers it), then the client's close returns.
    assert!(matches!(healthy_reader.read(), Ok(Message::Close(_))));
    assert_eq!(join(healthy), MESSAGES);
    drop(stuck_writer);
    drop(join(stuck));
}

/// The adapters negotiate permessage-deflate by default, and compressed
/// messages round-trip over a real socket.
#[test]
fn deflate_is_negotiated_by_default_and_messages_round_trip() {
    let (listener, addr) = listen();
    let server = thread::spawn(move || {
        let mut ws = accept_ws(&listener, &Options::default());
        assert!(ws.connection().receiver().deflate_negotiated());
        echo(&mut ws).expect("echo")
    });
    let (mut ws, response) = ClientBuilder::new(&url(addr, "/")).unwrap().connect().expect("connect");
    assert!(response.extensions().iter().any(|e| e.name == "permessage-deflate"));
    let json: String = (0..2000).map(|i| format!(r#"{{"seq":{i},"text":"hello"}},"#)).collect();
    for message in [Message::Text(json.clone()), Message::Binary(json.into_bytes()), Message::Text(String::new())] {
        ws.send(&message).expect("send");
        assert_eq!(ws.read().expect("echo"), message);
    }
    ws.close(CloseCode::NORMAL, "").expect("close");
    assert_eq!(join(server), 3);
}

#[test]
fn prepared_messages_reach_clients_through_websocket_and_split_writers() {
    // With permessage-deflate negotiated, as browsers do.
    let mut deflating = options();
    deflating.config.deflate = Some(rfc6455::DeflateConfig::default());
    let (listener, addr) = listen();
    let server_options = deflating.clone();
    let text = "{\"room\":\"lobby\",\"text\":\"hello everyone\"},".repeat(30);
    let message = Arc::new(PreparedMessage::text(text.clone()));
    let server = {
        let message = Arc::clone(&message);
        thread::spawn(move || {
            let mut first = accept_ws(&listener, &server_options);
            let second = accept_ws(&listener, &server_options);
            first.send_prepared(&message).expect("send on a WebSocket");
            let (_reader, writer) = second.split().expect("split");
            writer.send_prepared(&message).expect("send on a split writer");
            writer.close(CloseCode::NORMAL, "").expect("close");
            first.close(CloseCode::NORMAL, "").expect("close");
            // Until each client has read everything and answered the close.
            let _ = first.read();
        })
    };
    let mut a = client(addr, deflating.clone());
    let mut b = client(addr, deflating);
    for ws in [&mut a, &mut b] {
        assert!(ws.connection().receiver().deflate_negotiated());
        assert_eq!(ws.read().expect("message"), Message::Text(text.clone()));
        assert!(matches!(ws.read(), Ok(Message::Close(_))), "close");
    }
    join(server);
    assert!(message.is_compressed(), "sent compressed, once");
}

/// `Server::max_connections`: beyond the limit a connection is answered 503
/// and closed at once, without waiting for its request; when a connection
/// ends its slot is free again.
#[test]
fn a_server_at_its_connection_limit_turns_new_connections_away() {
    let server = Server::bind("127.0.0.1:0").unwrap().with_options(options()).max_connections(2);
    let addr = server.local_addr().unwrap();
    thread::spawn(move || {
        server.serve(
            |_| Reply::accept(),
            |mut ws, ()| {
                let _ = echo(&mut ws);
            },
        )
    });
    let mut first = client(addr, options());
    let mut second = client(addr, options());
    // A third connection that sends nothing reads the whole answer, then EOF.
    let mut third = TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let answer = String::from_utf8(read_to_end_bounded(&mut third).unwrap()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    // A client is refused (the 503, or a reset if its request arrived after
    // the server closed), and the two connections are still served.
    let url = url(addr, "/");
    assert!(ClientBuilder::new(&url).unwrap().options(options()).connect().is_err());
    for ws in [&mut first, &mut second] {
        ws.send_text("still here").unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text("still here".into()));
    }
    // One ends; its slot comes back once its handler returns.
    first.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(first.read(), Err(Error::Closed)));
    let mut served = None;
    for _ in 0..500 {
        if let Ok((ws, _)) = ClientBuilder::new(&url).unwrap().options(options()).connect() {
            served = Some(ws);
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let mut fourth = served.expect("no connection served within 5 s after one ended");
    fourth.send_text("in").unwrap();
    assert_eq!(fourth.read().unwrap(), Message::Text("in".into()));
}
