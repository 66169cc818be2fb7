//! Control frames (RFC 6455 section 5.5): size and fragmentation rules, the
//! automatic pong, and the bound on pongs owed to a flood of pings.

mod support;

use rfc6455::{Config, Connection, Message, ProtocolError, Role, SendError};
use support::*;

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

#[test]
fn control_frames_over_125_bytes_fail_with_1002() {
    for opcode in [PING, PONG, CLOSE] {
        for len in [126usize, 127, 1000, 65535] {
            let mut payload = pseudo_random(len, 5);
            if opcode == CLOSE {
                payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            }
            let raw = RawFrame::new(true, opcode, Some(KEY), &payload);
            // Rejected from the header alone.
            expect_failure(&mut server(), &raw.header(), ProtocolError::ControlFrameTooLong(len as u64));
            expect_failure(&mut server(), &raw.encode(), ProtocolError::ControlFrameTooLong(len as u64));
        }
        // The 64-bit form too.
        let raw = RawFrame::new(true, opcode, Some(KEY), &[]).declared_len(65536);
        expect_failure(&mut server(), &raw.header(), ProtocolError::ControlFrameTooLong(65536));
    }
}

#[test]
fn control_frames_of_exactly_125_bytes_are_accepted() {
    let payload = pseudo_random(125, 6);
    let mut server = server();
    server.receive(&cframe(true, PING, &payload));
    server.receive(&cframe(true, PONG, &payload));
    assert_eq!(events(&mut server), Ok(vec![Message::Ping(payload.clone()), Message::Pong(payload.clone())]));
    assert_eq!(take_frames(&mut server), [(true, PONG, payload.clone())]);
    let reason = "r".repeat(123);
    server.receive(&cframe(true, CLOSE, &close_payload(1000, &reason)));
    assert_eq!(events(&mut server), Ok(vec![close_msg(1000, &reason)]));
}

#[test]
fn fragmented_control_frames_fail_with_1002() {
    for opcode in [PING, PONG, CLOSE] {
        for payload in [&b""[..], b"\x03\xe8"] {
            expect_failure(&mut server(), &cframe(false, opcode, payload), ProtocolError::FragmentedControlFrame);
        }
        // Also in the middle of a fragmented message.
        let mut wire = cframe(false, TEXT, b"a");
        wire.extend(cframe(false, opcode, b""));
        expect_failure(&mut server(), &wire, ProtocolError::FragmentedControlFrame);
    }
}

#[test]
fn ping_is_answered_with_the_same_payload() {
    for payload in [&b""[..], b"x", b"\x00\xff binary \x80", &[0xAB; 125]] {
        let mut server = server();
        server.receive(&cframe(true, PING, payload));
        assert!(!server.has_output(), "nothing owed before the ping is parsed");
        assert_eq!(events(&mut server), Ok(vec![Message::Ping(payload.to_vec())]));
        assert!(server.has_output());
        assert_eq!(take_frames(&mut server), [(true, PONG, payload.to_vec())]);
        assert!(!server.has_output());

        let mut client = Connection::new(Role::Client, Config::default());
        client.receive(&sframe(true, PING, payload));
        assert_eq!(events(&mut client), Ok(vec![Message::Ping(payload.to_vec())]));
        assert_eq!(take_frames(&mut client), [(true, PONG, payload.to_vec())]); // masked
    }
}

#[test]
fn each_ping_is_answered_when_output_is_drained_between_them() {
    let mut server = server();
    for i in 0..20u8 {
        server.receive(&cframe(true, PING, &[i]));
        assert_eq!(events(&mut server), Ok(vec![Message::Ping(vec![i])]));
        let out = server.output().to_vec();
        server.advance_output(out.len());
        assert_eq!(parse_frames(&out, false), [(true, PONG, vec![i])]);
    }
}

fn pongs(frames: &[(bool, u8, Vec<u8>)]) -> Vec<Vec<u8>> {
    frames.iter().filter(|f| f.1 == PONG).map(|f| f.2.clone()).collect()
}

#[test]
fn ping_flood_in_one_read_owes_a_single_pong_with_the_latest_payload() {
    let mut server = server();
    let mut wire = Vec::new();
    for i in 0..1000u32 {
        wire.extend(cframe(true, PING, &i.to_be_bytes()));
    }
    let trace = feed(&mut server, &wire);
    assert_eq!(trace.messages.len(), 1000);
    assert_eq!(trace.error, None);
    let frames = take_frames(&mut server);
    assert_eq!(pongs(&frames), [999u32.to_be_bytes().to_vec()]);
    assert_eq!(frames.len(), 1);
}

#[test]
fn ping_flood_with_a_stalled_writer_keeps_output_bounded() {
    // The writer looks at the output after every event but cannot write any
    // of it: at most one automatic pong waits in the buffer, and the latest
    // payload goes out once the buffer drains.
    let mut server = server();
    let mut max_len = 0;
    for i in 0..1000u32 {
        server.receive(&cframe(true, PING, &i.to_be_bytes()));
        assert_eq!(events(&mut server), Ok(vec![Message::Ping(i.to_be_bytes().to_vec())]));
        max_len = max_len.max(server.output().len());
    }
    assert!(max_len <= 2 * (2 + 4), "output grew to {max_len} bytes");
    let first = server.output().to_vec();
    server.advance_output(first.len());
    let second = server.output().to_vec();
    server.advance_output(second.len());
    assert!(!server.has_output());
    let all = pongs(&parse_frames(&[first, second].concat(), false));
    assert!(all.len() <= 2, "{} pongs for a flood", all.len());
    assert_eq!(all.last(), Some(&999u32.to_be_bytes().to_vec()), "the last pong answers the latest ping");
}

#[test]
fn ping_flood_with_a_partially_written_pong_keeps_output_bounded() {
    let mut server = server();
    let mut total = Vec::new();
    for i in 0..1000u32 {
        server.receive(&cframe(true, PING, &i.to_be_bytes()));
        events(&mut server).unwrap();
        // Write a single byte each time.
        let out = server.output();
        assert!(out.len() <= 2 * (2 + 4), "output grew to {} bytes at ping {i}", out.len());
        if let Some(&byte) = out.first() {
            total.push(byte);
            server.advance_output(1);
        }
    }
    for _ in 0..100 {
        let out = server.output().to_vec();
        if out.is_empty() {
            break;
        }
        total.extend_from_slice(&out);
        server.advance_output(out.len());
    }
    let all = pongs(&parse_frames(&total, false));
    assert!(all.len() < 1000 / 2, "{} pongs for 1000 pings", all.len());
    assert_eq!(all.last(), Some(&999u32.to_be_bytes().to_vec()));
}

#[test]
fn sending_a_control_payload_over_125_bytes_is_refused() {
    for role in [Role::Server, Role::Client] {
        let mut conn = Connection::new(role, Config::default());
        assert_eq!(conn.ping(&[0; 126]), Err(SendError::ControlPayloadTooLong(126)));
        assert_eq!(conn.pong(&[0; 126]), Err(SendError::ControlPayloadTooLong(126)));
        assert_eq!(conn.ping(&[0; 1000]), Err(SendError::ControlPayloadTooLong(1000)));
        assert!(!conn.has_output());
        conn.ping(&[1; 125]).unwrap();
        conn.pong(&[2; 125]).unwrap();
        assert_eq!(take_frames(&mut conn), [(true, PING, vec![1; 125]), (true, PONG, vec![2; 125])]);
    }
}

#[test]
fn unsolicited_pong_is_delivered_and_not_answered() {
    let mut server = server();
    server.receive(&cframe(true, PONG, b"heartbeat"));
    assert_eq!(events(&mut server), Ok(vec![Message::Pong(b"heartbeat".to_vec())]));
    assert!(!server.has_output());
    // And one may be sent without any ping.
    let (mut client, mut server) = pair(seeded(1));
    client.pong(b"one-way").unwrap();
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.b.messages, [Message::Pong(b"one-way".to_vec())]);
    assert_eq!(driven.a.messages, []);
}

#[test]
fn ping_sent_is_answered_by_the_peer() {
    let (mut client, mut server) = pair(seeded(2));
    client.ping(b"from client").unwrap();
    server.ping(b"from server").unwrap();
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.a.messages, [Message::Ping(b"from server".to_vec()), Message::Pong(b"from client".to_vec())]);
    assert_eq!(driven.b.messages, [Message::Ping(b"from client".to_vec()), Message::Pong(b"from server".to_vec())]);
}

#[test]
fn owed_pong_is_sent_before_a_message_echoed_after_the_ping() {
    // Autobahn 5.6 and 5.19: a ping between the fragments of a message must
    // be answered before the echo of that message, which is queued later.
    let mut server = server();
    let mut input = cframe(false, 0x1, b"fragm");
    input.extend(cframe(true, PING, b"between"));
    input.extend(cframe(true, 0x0, b"ented"));
    server.receive(&input);
    let (receiver, sender) = server.halves();
    let mut seen = Vec::new();
    while let Some(event) = receiver.poll_event(sender).unwrap() {
        if let rfc6455::Event::Text(text) = event {
            sender.send_text(text).unwrap();
        }
        seen.push(event.to_message());
    }
    assert_eq!(seen, [Message::Ping(b"between".to_vec()), Message::Text("fragmented".into())]);
    assert_eq!(take_frames(&mut server), [(true, PONG, b"between".to_vec()), (true, 0x1, b"fragmented".to_vec())]);
}

#[test]
fn owed_pong_is_sent_before_our_own_close() {
    // Event::Ping promises "the pong is already queued": closing right after
    // must not lose it.
    let mut server = server();
    server.receive(&cframe(true, PING, b"owed"));
    assert_eq!(events(&mut server), Ok(vec![Message::Ping(b"owed".to_vec())]));
    server.close(1000.into(), "bye").unwrap();
    assert_eq!(take_frames(&mut server), [(true, PONG, b"owed".to_vec()), (true, CLOSE, close_payload(1000, "bye"))]);
}

#[test]
fn owed_pong_is_sent_before_the_echo_of_a_close() {
    let mut server = server();
    let mut wire = cframe(true, PING, b"owed");
    wire.extend(cframe(true, CLOSE, &close_payload(1001, "")));
    let trace = feed(&mut server, &wire);
    assert_eq!(trace.messages, [Message::Ping(b"owed".to_vec()), close_msg(1001, "")]);
    assert_eq!(take_frames(&mut server), [(true, PONG, b"owed".to_vec()), (true, CLOSE, close_payload(1001, ""))]);
}

#[test]
fn ping_after_our_close_is_delivered_but_not_answered() {
    let mut server = server();
    server.close(1000.into(), "").unwrap();
    take_frames(&mut server);
    server.receive(&cframe(true, PING, b"late"));
    assert_eq!(events(&mut server), Ok(vec![Message::Ping(b"late".to_vec())]));
    assert!(!server.has_output(), "nothing may follow our close frame");
}
