//! The close handshake (RFC 6455 sections 5.5.1 and 7): close frames and
//! codes, echoing, states, the end of the transport, and what may still be
//! sent or delivered at each point.

mod support;

use rfc6455::{CloseCode, Config, Connection, Message, ProtocolError, Role, SendError, State};
use support::*;

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn client() -> Connection {
    Connection::new(Role::Client, Config::default())
}

/// A close frame as `role`'s peer sends it.
fn peer_close(role: Role, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => cframe(true, CLOSE, payload),
        Role::Client => sframe(true, CLOSE, payload),
    }
}

fn peer_frame(role: Role, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => cframe(true, opcode, payload),
        Role::Client => sframe(true, opcode, payload),
    }
}

#[test]
fn peer_close_is_echoed_with_the_same_code() {
    for role in [Role::Server, Role::Client] {
        for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999] {
            let mut conn = Connection::new(role, Config::default());
            let trace = feed(&mut conn, &peer_close(role, &close_payload(code, "done, thanks")));
            assert_eq!(trace, Trace { messages: vec![close_msg(code, "done, thanks")], error: None });
            assert_eq!(take_frames(&mut conn), [(true, CLOSE, code.to_be_bytes().to_vec())], "{role:?} {code}");
            assert_eq!(conn.state(), State::Closed);
            assert_eq!(conn.should_close_transport(), role == Role::Server, "{role:?}");
            assert!(!conn.sender().is_failed());
        }
    }
}

#[test]
fn empty_close_is_delivered_as_none_and_echoed_empty() {
    for role in [Role::Server, Role::Client] {
        let mut conn = Connection::new(role, Config::default());
        assert_eq!(feed(&mut conn, &peer_close(role, b"")).messages, [Message::Close(None)]);
        assert_eq!(take_frames(&mut conn), [(true, CLOSE, vec![])]);
        assert_eq!(conn.state(), State::Closed);
    }
}

#[test]
fn one_byte_close_payload_fails_with_1002() {
    for role in [Role::Server, Role::Client] {
        let mut conn = Connection::new(role, Config::default());
        expect_failure(&mut conn, &peer_close(role, &[0x03]), ProtocolError::CloseFrameTooShort);
    }
}

#[test]
fn every_class_of_invalid_close_code_fails_with_1002() {
    for code in [0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        for role in [Role::Server, Role::Client] {
            let mut conn = Connection::new(role, Config::default());
            expect_failure(
                &mut conn,
                &peer_close(role, &close_payload(code, "")),
                ProtocolError::InvalidCloseCode(code),
            );
            let mut conn = Connection::new(role, Config::default());
            let with_reason = peer_close(role, &close_payload(code, "why"));
            expect_failure(&mut conn, &with_reason, ProtocolError::InvalidCloseCode(code));
        }
    }
}

#[test]
fn close_reason_that_is_not_utf8_fails_with_1007() {
    for reason in [&b"\xff"[..], b"ok\xe2\x82", b"\xed\xa0\x80", b"\xc0\x80"] {
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        expect_failure(&mut server(), &cframe(true, CLOSE, &payload), ProtocolError::InvalidCloseReason);
    }
    assert_eq!(ProtocolError::InvalidCloseReason.close_code().as_u16(), 1007);
}

#[test]
fn close_reason_may_use_all_123_bytes_of_utf8() {
    let reason = "é".repeat(61) + "x"; // 123 bytes
    assert_eq!(reason.len(), 123);
    let mut server = server();
    assert_eq!(
        feed(&mut server, &cframe(true, CLOSE, &close_payload(4321, &reason))).messages,
        [close_msg(4321, &reason)]
    );
}

#[test]
fn nothing_is_delivered_after_the_peer_close() {
    let mut server = server();
    let mut wire = cframe(true, TEXT, b"before");
    wire.extend(cframe(true, CLOSE, &close_payload(1000, "")));
    wire.extend(cframe(true, TEXT, b"after, same read"));
    wire.extend(cframe(true, PING, b"after"));
    wire.extend(cframe(true, 0x3, b"even garbage"));
    let trace = feed(&mut server, &wire);
    assert_eq!(trace, Trace { messages: vec![Message::Text("before".into()), close_msg(1000, "")], error: None });
    // A later read is dropped too, by both ways of reading.
    server.receive(&cframe(true, TEXT, b"after, next read"));
    let buf = server.read_buffer();
    let late = cframe(true, BINARY, b"read_buffer");
    buf[..late.len()].copy_from_slice(&late);
    server.commit_read(late.len());
    assert_eq!(events(&mut server), Ok(vec![]));
    assert_eq!(take_frames(&mut server), [(true, CLOSE, close_payload(1000, ""))], "no pong for the late ping");
}

#[test]
fn close_initiated_by_us_waits_for_the_peer_without_echoing() {
    for role in [Role::Server, Role::Client] {
        let mut conn = Connection::new(role, Config::default());
        assert_eq!(conn.state(), State::Open);
        conn.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
        assert_eq!(conn.state(), State::CloseSent);
        assert!(!conn.should_close_transport());
        assert_eq!(take_frames(&mut conn), [(true, CLOSE, close_payload(1001, "shutting down"))]);

        // Messages still arrive while the peer has not closed.
        let mut wire = peer_frame(role, TEXT, b"in flight");
        wire.extend(peer_close(role, &close_payload(1000, "")));
        let trace = feed(&mut conn, &wire);
        assert_eq!(trace.messages, [Message::Text("in flight".into()), close_msg(1000, "")]);
        assert_eq!(conn.state(), State::Closed);
        assert!(!conn.has_output(), "our close already went: no echo");
        assert_eq!(conn.should_close_transport(), role == Role::Server, "{role:?}");
        assert!(!conn.sender().is_failed());
    }
}

#[test]
fn clean_eof_after_the_close_handshake() {
    for role in [Role::Server, Role::Client] {
        // Peer initiated.
        let mut conn = Connection::new(role, Config::default());
        feed(&mut conn, &peer_close(role, &close_payload(1000, "")));
        take_frames(&mut conn);
        conn.receive_eof();
        assert_eq!(events(&mut conn), Ok(vec![]));
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.should_close_transport());
        assert!(!conn.sender().is_failed());

        // We initiated.
        let mut conn = Connection::new(role, Config::default());
        conn.close(CloseCode::NORMAL, "").unwrap();
        feed(&mut conn, &peer_close(role, &close_payload(1000, "")));
        conn.receive_eof();
        assert_eq!(events(&mut conn), Ok(vec![]));
        assert_eq!(events(&mut conn), Ok(vec![]));
        assert!(conn.should_close_transport());
        assert!(!conn.sender().is_failed());
    }
}

#[test]
fn eof_before_the_close_handshake_is_unexpected() {
    let partial_frame = cframe(true, TEXT, b"cut short");
    let cases: [&[u8]; 4] = [&[], &partial_frame[..1], &partial_frame[..8], &partial_frame[..partial_frame.len() - 1]];
    for bytes in cases {
        let mut server = server();
        server.receive(bytes);
        assert_eq!(events(&mut server), Ok(vec![]));
        server.receive_eof();
        assert_eq!(events(&mut server), Err(ProtocolError::UnexpectedEof), "after {} bytes", bytes.len());
        assert_eq!(server.poll_event().unwrap_err(), ProtocolError::UnexpectedEof, "sticky");
        assert_eq!(server.state(), State::Closed);
        assert!(server.should_close_transport());
        assert!(server.sender().is_failed());
        assert!(!server.has_output(), "no close frame: nobody is left to read it");
        assert_eq!(ProtocolError::UnexpectedEof.close_code().as_u16(), 1006);
    }
}

#[test]
fn eof_delivers_complete_events_first() {
    let mut server = server();
    let mut wire = cframe(true, TEXT, b"one");
    wire.extend(cframe(true, PING, b"two"));
    wire.extend(&cframe(true, TEXT, b"three")[..4]);
    server.receive(&wire);
    server.receive_eof();
    let trace = trace(&mut server);
    assert_eq!(trace.messages, [Message::Text("one".into()), Message::Ping(b"two".to_vec())]);
    assert_eq!(trace.error, Some(ProtocolError::UnexpectedEof));
}

#[test]
fn eof_after_our_close_but_before_the_peers_is_unexpected() {
    let mut client = client();
    client.close(CloseCode::NORMAL, "").unwrap();
    client.take_output(&mut Vec::new());
    client.receive_eof();
    assert_eq!(events(&mut client), Err(ProtocolError::UnexpectedEof));
    assert_eq!(client.state(), State::Closed);
    assert!(client.should_close_transport());
}

fn assert_cannot_send(conn: &mut Connection) {
    assert_eq!(conn.send_text("x"), Err(SendError::Closed));
    assert_eq!(conn.send_binary(b"x"), Err(SendError::Closed));
    assert_eq!(conn.send_first_fragment(true, b"x"), Err(SendError::Closed));
    assert_eq!(conn.ping(b"x"), Err(SendError::Closed));
    assert_eq!(conn.pong(b"x"), Err(SendError::Closed));
    assert_eq!(conn.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
    assert!(!conn.has_output(), "nothing queued after the close");
}

#[test]
fn nothing_may_be_sent_after_a_close() {
    // After our close.
    let mut conn = server();
    conn.send_first_fragment(false, b"a").unwrap();
    conn.close(CloseCode::NORMAL, "").unwrap();
    take_frames(&mut conn);
    assert_eq!(conn.send_fragment(b"b", true), Err(SendError::Closed));
    assert_cannot_send(&mut conn);

    // After echoing the peer's close.
    let mut conn = client();
    feed(&mut conn, &sframe(true, CLOSE, b""));
    take_frames(&mut conn);
    assert_cannot_send(&mut conn);

    // After a failure.
    let mut conn = server();
    feed(&mut conn, &sframe(true, TEXT, b"unmasked"));
    take_frames(&mut conn);
    assert_cannot_send(&mut conn);
}

#[test]
fn nothing_may_be_sent_after_the_transport_failed() {
    let mut conn = server();
    conn.receive_eof();
    assert_eq!(events(&mut conn), Err(ProtocolError::UnexpectedEof));
    assert!(conn.sender().is_failed());
    assert_cannot_send(&mut conn);
}

#[test]
fn close_with_an_invalid_code_or_long_reason_is_refused() {
    let mut conn = server();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(conn.close(code.into(), ""), Err(SendError::InvalidCloseCode(code)));
    }
    assert_eq!(conn.close(CloseCode::NORMAL, &"r".repeat(124)), Err(SendError::CloseReasonTooLong(124)));
    assert_eq!(conn.close(CloseCode::NORMAL, &"é".repeat(62)), Err(SendError::CloseReasonTooLong(124)));
    assert_eq!(conn.state(), State::Open, "a refused close changes nothing");
    assert!(!conn.has_output());
    conn.send_text("still open").unwrap();
    conn.close(CloseCode::from(4999), &"r".repeat(123)).unwrap();
    assert_eq!(
        take_frames(&mut conn),
        [(true, TEXT, b"still open".to_vec()), (true, CLOSE, close_payload(4999, &"r".repeat(123)))]
    );
}

#[test]
fn events_before_a_bad_frame_come_first_and_the_error_is_sticky() {
    let mut server = server();
    let mut wire = cframe(true, TEXT, b"first");
    wire.extend(cframe(true, TEXT, b"second"));
    wire.extend(cframe(true, 0x3, b"reserved"));
    wire.extend(cframe(true, TEXT, b"never"));
    server.receive(&wire);
    assert_eq!(server.poll_event().unwrap().unwrap().to_message(), Message::Text("first".into()));
    assert_eq!(server.poll_event().unwrap().unwrap().to_message(), Message::Text("second".into()));
    assert_eq!(server.poll_event(), Err(ProtocolError::ReservedOpcode(3)));
    assert_eq!(server.poll_event(), Err(ProtocolError::ReservedOpcode(3)));
    server.receive(&cframe(true, TEXT, b"ignored"));
    assert_eq!(server.poll_event(), Err(ProtocolError::ReservedOpcode(3)));
    assert_failing(&mut server, 1002);
    assert_eq!(take_frames(&mut server), [(true, CLOSE, 1002u16.to_be_bytes().to_vec())]);
}

#[test]
fn failure_after_our_close_sends_no_second_close() {
    let mut server = server();
    server.close(CloseCode::NORMAL, "").unwrap();
    take_frames(&mut server);
    assert_eq!(feed(&mut server, &cframe(true, 0xF, b"")).error, Some(ProtocolError::ReservedOpcode(0xF)));
    assert!(!server.has_output(), "a close frame already went");
    assert_eq!(server.state(), State::Closed);
    assert!(server.should_close_transport());
}

#[test]
fn close_handshake_between_a_client_and_a_server() {
    for server_first in [false, true] {
        let (mut client, mut server) = pair(seeded(4));
        if server_first {
            server.close(CloseCode::from(3001), "server").unwrap();
        } else {
            client.close(CloseCode::from(3002), "client").unwrap();
        }
        let driven = drive(&mut client, &mut server);
        let (a, b) = if server_first {
            (vec![close_msg(3001, "server")], vec![close_msg(3001, "")])
        } else {
            (vec![close_msg(3002, "")], vec![close_msg(3002, "client")])
        };
        assert_eq!(driven.a.messages, a);
        assert_eq!(driven.b.messages, b);
        assert_eq!((driven.a.error, driven.b.error), (None, None));
        assert_eq!((client.state(), server.state()), (State::Closed, State::Closed));
        assert!(server.should_close_transport());
        assert!(!client.should_close_transport(), "the client waits for the server to close TCP");
        // The server closes TCP; the client sees a clean EOF.
        client.receive_eof();
        assert_eq!(events(&mut client), Ok(vec![]));
        assert!(client.should_close_transport());
        assert!(!client.sender().is_failed());
    }
}

#[test]
fn eof_signalled_before_the_close_frame_is_polled_is_still_clean() {
    let mut server = server();
    let mut wire = cframe(true, TEXT, b"last");
    wire.extend(cframe(true, CLOSE, &close_payload(1000, "")));
    server.receive(&wire);
    server.receive_eof();
    let trace = trace(&mut server);
    assert_eq!(trace, Trace { messages: vec![Message::Text("last".into()), close_msg(1000, "")], error: None });
    assert_eq!(events(&mut server), Ok(vec![]));
    assert_eq!(server.state(), State::Closed);
    assert!(!server.sender().is_failed());
    assert!(server.should_close_transport());
    assert_eq!(take_frames(&mut server), [(true, CLOSE, close_payload(1000, ""))]);
}
