//! The configured limits: frame size, message size, fragment count, the
//! memory a declared length can claim, and the write buffer.

mod support;

use rfc6455::{Config, Connection, Limit, Message, ProtocolError, Role, SendError};
use support::*;

fn limited(f: impl FnOnce(&mut Config)) -> Connection {
    let mut config = Config::default();
    f(&mut config);
    Connection::new(Role::Server, config)
}

fn limit_error(limit: Limit, size: u64, max: usize) -> ProtocolError {
    ProtocolError::LimitExceeded { limit, size, max }
}

#[test]
fn frame_over_max_frame_size_is_rejected_at_the_header() {
    for opcode in [TEXT, BINARY] {
        let mut server = limited(|c| c.max_frame_size = 1000);
        let header = RawFrame::new(true, opcode, Some(KEY), &[]).declared_len(1001).header();
        let expected = limit_error(Limit::MaxFrameSize, 1001, 1000);
        expect_failure(&mut server, &header, expected.clone());
        assert_eq!(expected.close_code().as_u16(), 1009);
        let text = server.poll_event().unwrap_err().to_string();
        assert!(text.contains("max_frame_size"), "{text}");
        assert!(text.contains("1001") && text.contains("1000"), "{text}");

        // Exactly the limit is fine.
        let mut server = limited(|c| c.max_frame_size = 1000);
        let payload = vec![b'a'; 1000];
        assert_eq!(feed(&mut server, &cframe(true, opcode, &payload)).error, None);
    }
    // Continuation frames are frames too.
    let mut server = limited(|c| c.max_frame_size = 1000);
    let mut wire = cframe(false, BINARY, b"start");
    wire.extend(RawFrame::new(true, CONT, Some(KEY), &[]).declared_len(5000).header());
    expect_failure(&mut server, &wire, limit_error(Limit::MaxFrameSize, 5000, 1000));
}

#[test]
fn default_max_frame_size_is_16_mib() {
    let max = Config::default().max_frame_size;
    assert_eq!(max, 16 << 20);
    let mut server = Connection::new(Role::Server, Config::default());
    let header = RawFrame::new(true, BINARY, Some(KEY), &[]).declared_len(max as u64 + 1).header();
    expect_failure(&mut server, &header, limit_error(Limit::MaxFrameSize, max as u64 + 1, max));
}

#[test]
fn single_frame_over_max_message_size_fails_with_1009() {
    let mut server = limited(|c| c.max_message_size = 1000);
    let header = RawFrame::new(true, TEXT, Some(KEY), &[]).declared_len(1001).header();
    let expected = limit_error(Limit::MaxMessageSize, 1001, 1000);
    expect_failure(&mut server, &header, expected);
    let text = server.poll_event().unwrap_err().to_string();
    assert!(text.contains("max_message_size"), "{text}");
}

#[test]
fn fragmented_message_over_max_message_size_fails_with_1009() {
    // Ten fragments of 100 bytes fill the limit exactly.
    let mut server = limited(|c| c.max_message_size = 1000);
    let mut wire = cframe(false, BINARY, &[1; 100]);
    for i in 1..10 {
        wire.extend(cframe(i == 9, CONT, &[1; 100]));
    }
    assert_eq!(feed(&mut server, &wire).messages, [Message::Binary(vec![1; 100 * 10])]);

    // An eleventh fails as soon as its header arrives.
    let mut server = limited(|c| c.max_message_size = 1000);
    let mut wire = cframe(false, TEXT, &[b'a'; 100]);
    for _ in 1..10 {
        wire.extend(cframe(false, CONT, &[b'a'; 100]));
    }
    assert_eq!(feed(&mut server, &wire), Trace::default());
    let header = RawFrame::new(true, CONT, Some(KEY), &[]).declared_len(100).header();
    expect_failure(&mut server, &header, limit_error(Limit::MaxMessageSize, 1100, 1000));
    let text = server.poll_event().unwrap_err().to_string();
    assert!(text.contains("max_message_size"), "{text}");

    // Even a one-byte overshoot by many tiny fragments.
    let mut server = limited(|c| c.max_message_size = 10);
    let mut wire = cframe(false, BINARY, b"");
    for _ in 0..11 {
        wire.extend(cframe(false, CONT, b"x"));
    }
    expect_failure(&mut server, &wire, limit_error(Limit::MaxMessageSize, 11, 10));
}

#[test]
fn max_fragments_counts_every_frame_of_a_message() {
    let mut server = limited(|c| c.max_fragments = 3);
    let mut wire = cframe(false, TEXT, b"a");
    wire.extend(cframe(false, CONT, b""));
    wire.extend(cframe(true, CONT, b"b"));
    assert_eq!(feed(&mut server, &wire).messages, [Message::Text("ab".into())]);

    // Control frames in between do not count; a fourth data frame does.
    let mut wire = cframe(false, TEXT, b"a");
    wire.extend(cframe(true, PING, b""));
    wire.extend(cframe(false, CONT, b""));
    wire.extend(cframe(false, CONT, b""));
    wire.extend(cframe(true, CONT, b""));
    let trace = feed(&mut server, &wire);
    assert_eq!(trace.messages, [Message::Ping(vec![])]);
    assert_eq!(trace.error, Some(limit_error(Limit::MaxFragments, 4, 3)));
    assert_failing(&mut server, 1009);
    assert!(server.poll_event().unwrap_err().to_string().contains("max_fragments"));
}

/// A million empty continuation frames that never finish their message.
fn fragment_flood(read_buffer: bool) {
    let max = Config::default().max_fragments;
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(&cframe(false, TEXT, b""));
    assert_eq!(events(&mut server), Ok(vec![]));
    let chunk: Vec<u8> = (0..1000).flat_map(|_| cframe(false, CONT, b"")).collect();
    let mut frames_fed = 1;
    let mut result = None;
    for _ in 0..1000 {
        if read_buffer {
            read_through(&mut server, &chunk, |_| {});
        } else {
            server.receive(&chunk);
        }
        frames_fed += 1000;
        let trace = trace(&mut server);
        assert_eq!(trace.messages, []);
        assert!(
            server.receiver().buffer_capacity() < 64 << 10,
            "receive buffers hold {} bytes after {frames_fed} fragments",
            server.receiver().buffer_capacity()
        );
        if let Some(error) = trace.error {
            result = Some((error, frames_fed));
            break;
        }
    }
    let (error, frames_fed) = result.expect("a million fragments were accepted");
    assert_eq!(error, limit_error(Limit::MaxFragments, max as u64 + 1, max));
    assert!(frames_fed > max && frames_fed <= max + 1000, "failed after {frames_fed} frames");
    assert_failing(&mut server, 1009);
}

#[test]
fn fragment_flood_fails_at_max_fragments_with_bounded_memory() {
    fragment_flood(false);
}

#[test]
fn fragment_flood_through_read_buffer_fails_at_max_fragments_with_bounded_memory() {
    fragment_flood(true);
}

#[test]
fn declared_lengths_alone_do_not_claim_memory() {
    let header = RawFrame::new(true, BINARY, Some(KEY), &[]).declared_len(16 << 20).header();
    let mut connections: Vec<Connection> =
        (0..1000).map(|_| Connection::new(Role::Server, Config::default())).collect();
    for conn in &mut connections {
        conn.receive(&header);
        assert_eq!(events(conn), Ok(vec![]));
        let offered = conn.read_buffer().len();
        assert!(offered < 16 << 10, "read_buffer offers {offered} bytes for a bare header");
        assert_eq!(events(conn), Ok(vec![]));
    }
    for conn in &connections {
        assert!(conn.receiver().buffer_capacity() < 16 << 10, "{} bytes", conn.receiver().buffer_capacity());
        assert!(conn.buffer_capacity() < 16 << 10, "{} bytes", conn.buffer_capacity());
    }
}

#[test]
fn large_frame_memory_grows_with_the_bytes_received() {
    let len = 16 << 20;
    let payload = pseudo_random(len, 11);
    let wire = cframe(true, BINARY, &payload);
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(&wire[..14 + 1024]);
    assert_eq!(events(&mut server), Ok(vec![]));
    let offered = server.read_buffer().len();
    assert!(offered < 64 << 10, "offered {offered} bytes after 1 KiB of a 16 MiB frame");
    assert!(server.receiver().buffer_capacity() < 64 << 10, "{}", server.receiver().buffer_capacity());

    // Read the rest the way an adapter would, filling what is offered: the
    // space offered stays within a small factor of what has arrived.
    let mut at = 14 + 1024;
    let mut got = None;
    for _ in 0..wire.len() {
        if at == wire.len() {
            break;
        }
        let received = at - 14;
        let buf = server.read_buffer();
        assert!(buf.len() <= 2 * received + (256 << 10), "offered {} with {received} received", buf.len());
        let n = buf.len().min(wire.len() - at);
        buf[..n].copy_from_slice(&wire[at..at + n]);
        server.commit_read(n);
        at += n;
        let trace = trace(&mut server);
        assert_eq!(trace.error, None);
        if let Some(message) = trace.messages.into_iter().next() {
            got = Some(message);
        }
    }
    assert_eq!(at, wire.len());
    assert!(got == Some(Message::Binary(payload)), "the 16 MiB message was not delivered intact");
    // Back to small after a few small messages.
    for _ in 0..20 {
        server.receive(&cframe(true, TEXT, b"small"));
        assert_eq!(events(&mut server), Ok(vec![Message::Text("small".into())]));
    }
    server.shrink_buffers();
    assert!(server.buffer_capacity() < 64 << 10, "{} bytes after shrinking", server.buffer_capacity());
}

#[test]
fn write_buffer_full_refuses_data_until_output_drains() {
    let mut config = Config::default();
    config.max_write_buffer = 100;
    let mut server = Connection::new(Role::Server, config);
    // Accepted whole while below the limit, even if the message is larger.
    server.send_binary(&[0; 200]).unwrap();
    let buffered = server.output().len();
    assert_eq!(buffered, 4 + 200);
    let full = SendError::WriteBufferFull { buffered, limit: Limit::MaxWriteBuffer, max: 100 };
    assert_eq!(server.send_binary(b"x"), Err(full.clone()));
    assert_eq!(server.send_text("x"), Err(full.clone()));
    assert_eq!(server.send_first_fragment(false, b"x"), Err(full.clone()));
    assert!(full.to_string().contains("max_write_buffer"), "{full}");
    // Control frames are not subject to it.
    server.ping(b"p").unwrap();
    // Draining below the limit lets data through again.
    let out_len = server.output().len();
    server.advance_output(out_len - 50);
    server.send_text("again").unwrap();
    let mut rest = Vec::new();
    server.take_output(&mut rest);
    assert_eq!(parse_frames(&rest[50 - 3..], false), [(true, PING, b"p".to_vec()), (true, TEXT, b"again".to_vec())]);

    // A fragmented send is held back the same way between fragments.
    let mut config = Config::default();
    config.max_write_buffer = 10;
    let mut server = Connection::new(Role::Server, config);
    server.send_first_fragment(true, b"0123456789").unwrap();
    assert!(matches!(server.send_fragment(b"x", true), Err(SendError::WriteBufferFull { .. })));
    server.take_output(&mut Vec::new());
    server.send_fragment(b"x", true).unwrap();
    assert_eq!(take_frames(&mut server), [(true, CONT, b"x".to_vec())]);
}

#[test]
fn output_memory_stays_bounded_when_the_writer_never_quite_catches_up() {
    // A busy connection whose transport always leaves a few bytes unwritten:
    // the bytes already written must not pile up in the output buffer.
    let mut server = Connection::new(Role::Server, Config::default());
    let payload = vec![7u8; 1000];
    let mut written = Vec::new();
    for _ in 0..10_000 {
        server.send_binary(&payload).unwrap();
        let out = server.output();
        let n = out.len() - 10;
        written.extend_from_slice(&out[..n]);
        server.advance_output(n);
        assert!(server.sender().buffered_len() == 10);
    }
    assert!(
        server.sender().buffer_capacity() < 64 << 10,
        "output buffer holds {} bytes for 10 unwritten ones",
        server.sender().buffer_capacity()
    );
    written.extend_from_slice(server.output());
    let frames = parse_frames(&written, false);
    assert_eq!(frames.len(), 10_000);
    assert!(frames.iter().all(|f| *f == (true, BINARY, payload.clone())));
}

#[test]
fn shrinking_buffers_mid_message_keeps_the_data() {
    // Half of a large in-place frame, and half of a fragmented message.
    let payload = pseudo_random(300_000, 12);
    let single = cframe(true, BINARY, &payload);
    let mut fragmented = cframe(false, TEXT, &[b'x'; 150_000]);
    fragmented.extend(cframe(true, CONT, &[b'y'; 150_000]));
    for (wire, expected) in
        [(single, Message::Binary(payload)), (fragmented, Message::Text("x".repeat(150_000) + &"y".repeat(150_000)))]
    {
        let mut server = Connection::new(Role::Server, Config::default());
        let mut got = Vec::new();
        for piece in wire.chunks(70_000) {
            server.receive(piece);
            got.extend(events(&mut server).unwrap());
            server.shrink_buffers();
            assert!(server.buffer_capacity() <= wire.len() + (8 << 10), "{}", server.buffer_capacity());
        }
        assert!(got == [expected], "message lost or changed across shrink_buffers");
        server.shrink_buffers();
        assert!(server.buffer_capacity() <= 8 << 10, "{} bytes once idle", server.buffer_capacity());
    }
}

/// Hands `wire` to `conn` through `read_buffer`, polling after each read;
/// returns the messages it completes.
fn read_in(conn: &mut Connection, wire: &[u8]) -> Vec<Message> {
    let mut messages = Vec::new();
    read_through(conn, wire, |conn| {
        let trace = trace(conn);
        assert_eq!(trace.error, None);
        messages.extend(trace.messages);
    });
    messages
}

#[test]
fn buffers_shrink_back_within_a_few_dozen_small_messages_after_a_large_one() {
    let mut server = Connection::new(Role::Server, Config::default());
    let big = pseudo_random(1 << 20, 3);
    assert_eq!(read_in(&mut server, &cframe(true, BINARY, &big)), [Message::Binary(big.clone())]);
    server.send_binary(&big).unwrap();
    let pending = server.output().len();
    server.advance_output(pending);
    let capacities = |c: &Connection| (c.receiver().buffer_capacity(), c.sender().buffer_capacity());
    for i in 0..64 {
        assert_eq!(read_in(&mut server, &cframe(true, TEXT, b"small")), [Message::Text("small".into())]);
        server.send_text("small").unwrap();
        let pending = server.output().len();
        server.advance_output(pending);
        let (received, sent) = capacities(&server);
        if i < 16 {
            // A few small messages in a row are no reason to give memory back.
            assert!(received >= 1 << 20 && sent >= 1 << 20, "{:?} after {} small messages", (received, sent), i + 1);
        }
    }
    let (received, sent) = capacities(&server);
    assert!(received < 64 << 10 && sent < 64 << 10, "{:?} after 64 small messages", (received, sent));
}

#[test]
fn a_busy_output_buffer_does_not_shrink_between_full_batches() {
    // A loaded echo server drains its output in full batches with a few
    // small writes in between; giving the buffer back after each run of
    // small ones would make every batch fault in fresh pages again.
    let mut server = Connection::new(Role::Server, Config::default());
    let batch = vec![5u8; 1000];
    let mut capacities = Vec::new();
    for _ in 0..50 {
        for _ in 0..256 {
            server.send_binary(&batch).unwrap();
        }
        let pending = server.output().len();
        server.advance_output(pending);
        for _ in 0..10 {
            server.send_binary(&batch[..10]).unwrap();
            let pending = server.output().len();
            server.advance_output(pending);
        }
        capacities.push(server.sender().buffer_capacity());
    }
    assert!(capacities[0] >= 256 * 1000, "{capacities:?}");
    assert!(capacities.iter().all(|&c| c == capacities[0]), "the buffer was resized: {capacities:?}");
}
