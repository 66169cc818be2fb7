//! Payloads written from where they lie instead of being copied into the
//! output: a large payload sent back from inside `read_with` is written
//! straight from the receive buffer, and a large message a server sends is
//! written from the caller's memory (a vectored write of what was queued
//! before, the frame header, the payload and whatever was queued after it).
//! These tests check that the bytes on the wire are the same as with a copy:
//! messages in order, around small frames and pongs, through a transport that
//! accepts only a few bytes per write.
#![cfg(unix)]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use rfc6455::blocking::{Options, Transport, WebSocket};
use rfc6455::{Config, Connection, Event, Message, PreparedMessage, Role};

fn options() -> Options {
    let mut options = Options::default();
    options.config.deflate = None;
    options.idle_timeout = Some(Duration::from_secs(20));
    options.write_timeout = Some(Duration::from_secs(20));
    options.close_timeout = Duration::from_secs(5);
    options
}

/// A stream that takes at most `max_write` bytes per write, vectored or not,
/// and records the most buffers one vectored write was given.
struct Trickle {
    inner: UnixStream,
    max_write: usize,
    most_parts: Arc<AtomicUsize>,
}

impl Trickle {
    fn new(inner: UnixStream, max_write: usize) -> Self {
        Self { inner, max_write, most_parts: Arc::default() }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(&buf[..buf.len().min(self.max_write)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let parts = bufs.iter().filter(|buf| !buf.is_empty()).count();
        self.most_parts.fetch_max(parts, Ordering::Relaxed);
        let mut capped = Vec::new();
        let mut room = self.max_write;
        for buf in bufs {
            if room == 0 {
                break;
            }
            let take = buf.len().min(room);
            capped.push(IoSlice::new(&buf[..take]));
            room -= take;
        }
        self.inner.write_vectored(&capped)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Trickle {
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

/// A server connection over `stream`, configured by `options`.
fn server_over<S: Transport>(stream: S, options: &Options) -> WebSocket<S> {
    WebSocket::from_connection(stream, Connection::new(Role::Server, options.config.clone()), options).expect("wrap")
}

fn mixed_text(len: usize) -> String {
    let pieces = ["a", "é", "€", "𝄞", "z"];
    let mut text = String::new();
    let mut i = 0;
    while text.len() < len {
        let piece = pieces[i % pieces.len()];
        text.push_str(if text.len() + piece.len() <= len { piece } else { "x" });
        i += 1;
    }
    text
}

/// Runs an echo server on `server` whose callback answers every data
/// message with `reply`, and has the client send `messages` (and a ping
/// after each); returns what the client read back, pongs included, until
/// the server's close reply.
fn exchange<S: Transport + Send + 'static>(
    server: S,
    client: UnixStream,
    messages: Vec<Message>,
    reply: fn(Event<'_>, &mut rfc6455::Sender) -> Result<(), rfc6455::SendError>,
) -> Vec<Message> {
    let server = thread::spawn(move || {
        let mut ws = server_over(server, &options());
        loop {
            let closed = ws
                .read_with(|event, sender| match event {
                    Event::Close(_) => Ok(true),
                    Event::Text(_) | Event::Binary(_) => reply(event, sender).map(|()| false),
                    Event::Ping(_) | Event::Pong(_) => Ok(false),
                })
                .expect("server read")
                .expect("server send");
            if closed {
                break;
            }
        }
    });
    let mut ws =
        WebSocket::from_connection(client, Connection::new(Role::Client, Config::default()), &options()).expect("wrap");
    // One message at a time, so that neither side blocks on a full socket
    // buffer while the other does too.
    let mut received = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        ws.send(message).expect("client send");
        ws.ping(&[i as u8]).expect("client ping");
        loop {
            let message = ws.read().expect("client read");
            let done = message == Message::Pong(vec![i as u8]);
            received.push(message);
            if done {
                break;
            }
        }
    }
    ws.close(rfc6455::CloseCode::NORMAL, "").expect("close");
    server.join().expect("server thread");
    received
}

fn data_only(received: &[Message]) -> Vec<Message> {
    received.iter().filter(|m| matches!(m, Message::Text(_) | Message::Binary(_))).cloned().collect()
}

fn echo(event: Event<'_>, sender: &mut rfc6455::Sender) -> Result<(), rfc6455::SendError> {
    match event {
        Event::Text(text) => sender.send_text(text),
        Event::Binary(data) => sender.send_binary(data),
        _ => Ok(()),
    }
}

fn large_messages() -> Vec<Message> {
    let binary: Vec<u8> = (0..(1u32 << 20) + 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    vec![
        // Payloads from 16 KiB up are written from the receive buffer;
        // smaller ones are copied into the output.
        Message::Binary(binary[..256 << 10].to_vec()),
        Message::Text("small".into()),
        Message::Binary(binary.clone()),
        Message::Text(mixed_text(300_001)),
        Message::Binary(binary[..(256 << 10) - 1].to_vec()),
        Message::Binary(binary[..64 << 10].to_vec()),
        Message::Binary(Vec::new()),
    ]
}

#[test]
fn large_echoes_are_written_from_the_receive_buffer_byte_for_byte() {
    for max_write in [usize::MAX, 7_001] {
        let (server, client) = UnixStream::pair().expect("pair");
        let messages = large_messages();
        let received = exchange(Trickle::new(server, max_write), client, messages.clone(), echo);
        assert_eq!(data_only(&received), messages, "max_write {max_write}");
        // Each pong answers the ping sent after a message, so it comes after
        // that message's echo.
        let mut expected_pong = 0u8;
        let mut echoes = 0;
        for message in &received {
            match message {
                Message::Pong(payload) => {
                    assert_eq!(payload, &[expected_pong], "pongs in order");
                    assert!(echoes > usize::from(expected_pong), "pong {expected_pong} overtook its echo");
                    expected_pong += 1;
                }
                Message::Text(_) | Message::Binary(_) => echoes += 1,
                _ => {}
            }
        }
    }
}

#[test]
fn frames_queued_around_an_in_place_payload_keep_their_order() {
    fn twice(event: Event<'_>, sender: &mut rfc6455::Sender) -> Result<(), rfc6455::SendError> {
        let data = match event {
            Event::Text(text) => text.as_bytes(),
            Event::Binary(data) => data,
            _ => return Ok(()),
        };
        sender.send_text("before")?;
        sender.send_binary(data)?;
        sender.ping(b"between")?;
        sender.send_binary(data)?;
        sender.send_text("after")
    }
    for max_write in [usize::MAX, 10_007] {
        let (server, client) = UnixStream::pair().expect("pair");
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let received = exchange(Trickle::new(server, max_write), client, vec![Message::Binary(big.clone())], twice);
        let expected = [
            Message::Text("before".into()),
            Message::Binary(big.clone()),
            Message::Binary(big.clone()),
            Message::Text("after".into()),
        ];
        assert_eq!(data_only(&received), expected, "max_write {max_write}");
    }
}

/// Reads `count` messages on a client over `stream`, whose connection may
/// have sent something already; then closes.
fn read_messages(stream: UnixStream, conn: Connection, count: usize) -> Vec<Message> {
    let mut ws = WebSocket::from_connection(stream, conn, &options()).expect("wrap");
    let received = (0..count).map(|_| ws.read().expect("client read")).collect();
    ws.close(rfc6455::CloseCode::NORMAL, "").expect("close");
    received
}

/// Reads until the close handshake is over.
fn until_closed<S: Transport>(ws: &mut WebSocket<S>) {
    while !matches!(ws.read().expect("server read"), Message::Close(_)) {}
}

#[test]
fn large_sends_are_written_from_the_callers_memory_byte_for_byte() {
    let binary: Vec<u8> = (0..(1u32 << 20) + 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    // From 2 KiB up, a server's message sent while nothing received waits
    // is written from where it lies; smaller ones are copied.
    let messages = vec![
        Message::Binary(binary[..(2 << 10) - 1].to_vec()),
        Message::Text("small".into()),
        Message::Binary(binary[..2 << 10].to_vec()),
        Message::Binary(binary[..16 << 10].to_vec()),
        Message::Text(mixed_text(64 << 10)),
        Message::Binary(binary[..300_000].to_vec()),
        Message::Binary(binary.clone()),
        Message::Binary(Vec::new()),
    ];
    for max_write in [usize::MAX, 7_001] {
        let (server, client) = UnixStream::pair().expect("pair");
        let to_send = messages.clone();
        let prepared = PreparedMessage::binary(binary[..100_000].to_vec());
        let server = thread::spawn(move || {
            let trickle = Trickle::new(server, max_write);
            let mut ws = server_over(trickle, &options());
            for message in &to_send {
                ws.send(message).expect("send");
            }
            ws.send_prepared(&prepared).expect("send prepared");
            let capacity = ws.connection().sender().buffer_capacity();
            until_closed(&mut ws);
            capacity
        });
        let received = read_messages(client, Connection::new(Role::Client, Config::default()), messages.len() + 1);
        let capacity = server.join().expect("server thread");
        let mut expected = messages.clone();
        expected.push(Message::Binary(binary[..100_000].to_vec()));
        assert_eq!(received, expected, "max_write {max_write}");
        // Only the copied messages (under 2 KiB) went through the output
        // buffer: had a larger one been copied, it would hold 16 KiB.
        assert!(capacity < 16 << 10, "output buffer grew to {capacity} bytes");
    }
}

#[test]
fn a_large_send_while_input_waits_goes_out_after_what_was_queued() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let medium = big[..20_000].to_vec();
    // Two messages in one write: the server reads them in one go, so while
    // it handles the first the second waits, and its replies are held back
    // to be written together.
    let sent = [Message::Text("first".into()), Message::Text("second".into())];
    for max_write in [usize::MAX, 10_007] {
        let (big_sent, medium_sent) = (big.clone(), medium.clone());
        let received = serve_waiting_input(&sent, max_write, options(), 3, move |ws| {
            ws.read_with(|event, sender| {
                assert_eq!(event, Event::Text("first"));
                sender.send_text("reply")
            })
            .expect("read")
            .expect("reply");
            assert!(ws.connection().receiver().buffered_len() > 0, "the second message waits");
            // Written at once, after the reply queued before it.
            ws.send_binary(&big_sent).expect("send big");
            // Copied and held back with the batch, as input still waits.
            ws.send_binary(&medium_sent).expect("send medium");
            assert_eq!(ws.read().expect("read"), Message::Text("second".into()));
        });
        assert_eq!(
            received,
            [Message::Text("reply".into()), Message::Binary(big.clone()), Message::Binary(medium.clone())],
            "max_write {max_write}"
        );
    }
}

/// A client connection and the wire bytes of `messages` sent on it, binary
/// or (when the flag is set) text, with a ping after the message at
/// `ping_after`.
fn client_sends(messages: &[Message], ping_after: usize) -> (Connection, Vec<u8>) {
    let mut conn = Connection::new(Role::Client, Config::default());
    for (i, message) in messages.iter().enumerate() {
        match message {
            Message::Text(text) => conn.send_text(text).expect("queue"),
            Message::Binary(data) => conn.send_binary(data).expect("queue"),
            _ => unreachable!("data messages only"),
        }
        if i == ping_after {
            conn.ping(b"p").expect("queue");
        }
    }
    let mut wire = Vec::new();
    conn.take_output(&mut wire);
    (conn, wire)
}

/// Has a client send `sent` in one write before the server reads; the server,
/// over a stream that takes at most `max_write` bytes per write, runs `serve`
/// and then waits for the close. Returns the first `count` messages the client
/// reads back.
fn serve_waiting_input(
    sent: &[Message],
    max_write: usize,
    options: Options,
    count: usize,
    serve: impl FnOnce(&mut WebSocket<Trickle>) + Send + 'static,
) -> Vec<Message> {
    let (server, mut client) = UnixStream::pair().expect("pair");
    let (conn, wire) = client_sends(sent, usize::MAX);
    client.write_all(&wire).expect("write");
    let server = thread::spawn(move || {
        let mut ws = server_over(Trickle::new(server, max_write), &options);
        serve(&mut ws);
        until_closed(&mut ws);
    });
    let received = read_messages(client, conn, count);
    server.join().expect("server thread");
    received
}

/// Options whose reads take all that has arrived (up to 256 KiB) at once.
fn large_reads() -> Options {
    let mut options = options();
    options.config.read_buffer_size = 256 << 10;
    options
}

#[test]
fn several_echoes_go_out_from_the_receive_buffer_in_one_write() {
    let binary: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    // The first message is read up to its end alone (large frames are read
    // exactly to their end) and goes out alone; the rest then arrive in one
    // read, and those of 16 KiB and up are echoed from where they lie.
    let messages = vec![
        Message::Binary(binary[..20_000].to_vec()),
        Message::Binary(binary[..30_000].to_vec()),
        Message::Text(mixed_text(17_000)),
        Message::Binary(binary[..100].to_vec()),
        Message::Binary(binary.clone()),
        Message::Binary(binary[..16 << 10].to_vec()),
        Message::Text("last".into()),
    ];
    for max_write in [usize::MAX, 7_001] {
        let (server, mut client) = UnixStream::pair().expect("pair");
        // A ping is answered at once, with what was queued before it.
        let (conn, wire) = client_sends(&messages, 5);
        // All of it waits in the socket before the server reads.
        client.write_all(&wire).expect("write");
        let server = thread::spawn(move || {
            let trickle = Trickle::new(server, max_write);
            let most_parts = Arc::clone(&trickle.most_parts);
            let mut ws = server_over(trickle, &large_reads());
            let mut capacity = 0;
            while !ws
                .read_with(|event, sender| matches!(event, Event::Close(_)) || echo(event, sender).is_err())
                .expect("read")
            {
                capacity = capacity.max(ws.connection().sender().buffer_capacity());
            }
            (capacity, most_parts.load(Ordering::Relaxed))
        });
        let mut expected = messages.clone();
        expected.insert(6, Message::Pong(b"p".to_vec()));
        let received = read_messages(client, conn, expected.len());
        let (capacity, most_parts) = server.join().expect("server thread");
        assert_eq!(received, expected, "max_write {max_write}");
        // Four payloads in one write, and the output around them: 9 parts.
        assert!(most_parts >= 9, "at most {most_parts} parts in a write");
        // Had one of the large payloads been copied, the output buffer would
        // hold 16 KiB.
        assert!(capacity < 16 << 10, "output buffer grew to {capacity} bytes");
    }
}

#[test]
fn echoes_held_when_the_input_turns_bad_go_out_before_the_close_frame() {
    let binary: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
    let messages = vec![
        Message::Binary(binary[..20_000].to_vec()),
        Message::Binary(binary[..25_000].to_vec()),
        Message::Binary(binary.clone()),
    ];
    let (_, mut wire) = client_sends(&messages, usize::MAX);
    // A masked frame with a reserved opcode: a protocol error (1002).
    wire.extend_from_slice(&[0x83, 0x80, 1, 2, 3, 4]);
    let (server, mut client) = UnixStream::pair().expect("pair");
    client.write_all(&wire).expect("write");
    let server = thread::spawn(move || {
        let mut ws = server_over(server, &large_reads());
        loop {
            match ws.read_with(echo) {
                Ok(sent) => sent.expect("echo"),
                Err(error) => return (error, ws.connection().receiver().buffer_capacity()),
            }
        }
    });
    let mut answer = Vec::new();
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    client.read_to_end(&mut answer).expect("read to the server's end");
    drop(client);
    let (error, capacity) = server.join().expect("server thread");
    assert!(matches!(error, rfc6455::blocking::Error::Protocol(_)), "{error:?}");
    // Kept until the held echoes were written, then given back, as a
    // failure without held echoes does at once.
    assert_eq!(capacity, 0, "receive buffers kept after the failure");
    let mut conn = Connection::new(Role::Client, Config::default());
    conn.receive(&answer);
    let mut received = Vec::new();
    while let Some(event) = conn.poll_event().expect("valid frames") {
        received.push(event.to_message());
    }
    let mut expected = messages.clone();
    expected.push(Message::Close(Some(rfc6455::OwnedCloseFrame {
        code: rfc6455::CloseCode::PROTOCOL_ERROR,
        reason: String::new(),
    })));
    assert_eq!(received, expected);
}

#[test]
fn an_echo_held_when_the_connection_is_split_still_goes_out() {
    let binary: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
    let messages = vec![
        Message::Binary(binary.clone()),
        Message::Binary(binary[..18_000].to_vec()),
        Message::Text("second".into()),
    ];
    let (server, mut client) = UnixStream::pair().expect("pair");
    let (conn, wire) = client_sends(&messages, usize::MAX);
    client.write_all(&wire).expect("write");
    let server = thread::spawn(move || {
        let mut ws = server_over(server, &large_reads());
        ws.read_with(echo).expect("read").expect("echo");
        // The second message's echo is held in the receive buffer: the third
        // message waits, so nothing is written yet.
        ws.read_with(echo).expect("read").expect("echo");
        assert!(ws.connection().receiver().buffered_len() > 0, "the third message waits");
        let (mut reader, writer) = ws.split().expect("split");
        writer.flush().expect("flush");
        assert_eq!(reader.read().expect("read"), Message::Text("second".into()));
        writer.send_text("done").expect("send");
        while !matches!(reader.read().expect("read"), Message::Close(_)) {}
    });
    let received = read_messages(client, conn, 3);
    server.join().expect("server thread");
    assert_eq!(received, [messages[0].clone(), messages[1].clone(), Message::Text("done".into())]);
}

#[test]
fn a_large_send_after_a_held_echo_goes_out_after_it() {
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
    let messages = vec![
        Message::Binary(binary[..20_000].to_vec()),
        Message::Binary(binary[..17_000].to_vec()),
        Message::Text("second".into()),
    ];
    for max_write in [usize::MAX, 10_007] {
        let big = binary.clone();
        let received = serve_waiting_input(&messages, max_write, large_reads(), 3, move |ws| {
            ws.read_with(echo).expect("read").expect("echo");
            ws.read_with(echo).expect("read").expect("echo");
            assert!(ws.connection().receiver().buffered_len() > 0, "the third message waits");
            // Written at once from `big`, after the echo held before it.
            ws.send_binary(&big).expect("send");
            assert_eq!(ws.read().expect("read"), Message::Text("second".into()));
        });
        assert_eq!(
            received,
            [messages[0].clone(), messages[1].clone(), Message::Binary(binary.clone())],
            "max_write {max_write}"
        );
    }
}
