//! A client and a server driven against each other in memory.

mod support;

use rfc6455::{CloseCode, Config, Connection, Event, Message, Role, State};
use support::*;

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn texts_and_binaries_of_every_length_form_both_ways() {
    let (mut client, mut server) = pair(seeded(10));
    let mut expected = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        let text: String = "aé€😀".chars().cycle().take(len / 2).collect();
        let binary = pseudo_random(len, i as u64);
        client.send_text(&text).unwrap();
        client.send_binary(&binary).unwrap();
        server.send_text(&text).unwrap();
        server.send_binary(&binary).unwrap();
        expected.push(Message::Text(text));
        expected.push(Message::Binary(binary));
    }
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.a.error, None);
    assert_eq!(driven.b.error, None);
    assert!(driven.a.messages == expected, "client received something else");
    assert!(driven.b.messages == expected, "server received something else");
    assert_eq!((client.state(), server.state()), (State::Open, State::Open));
}

#[test]
fn tiny_transport_writes_deliver_the_same_messages() {
    for chunk in [1, 2, 3, 7, 13, 4096] {
        let (mut client, mut server) = pair(seeded(11));
        client.send_text("héllo").unwrap();
        client.ping(b"p").unwrap();
        client.send_binary(&pseudo_random(300, 1)).unwrap();
        server.send_text("wörld").unwrap();
        let driven = drive_chunked(&mut client, &mut server, chunk);
        assert_eq!(
            driven.b.messages,
            [Message::Text("héllo".into()), Message::Ping(b"p".to_vec()), Message::Binary(pseudo_random(300, 1))],
            "chunk {chunk}"
        );
        assert_eq!(driven.a.messages, [Message::Text("wörld".into()), Message::Pong(b"p".to_vec())], "chunk {chunk}");
    }
}

#[test]
fn fragmented_sends_both_ways() {
    let mut config = seeded(12);
    config.send_frame_size = 1000;
    let (mut client, mut server) = pair(config);
    let big = pseudo_random(5000, 3);
    // Split into 1000-byte frames by the sender.
    client.send_binary(&big).unwrap();
    // Fragmented by hand, with control frames in between.
    client.send_first_fragment(true, "frag".as_bytes()).unwrap();
    client.ping(b"mid-message").unwrap();
    client.send_fragment(&"ment€".as_bytes()[..5], false).unwrap();
    client.send_fragment(&"ment€".as_bytes()[5..], true).unwrap();
    server.send_first_fragment(false, &big[..2500]).unwrap();
    server.pong(b"heartbeat").unwrap();
    server.send_fragment(&big[2500..], true).unwrap();
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.b.messages.len(), 3);
    assert!(driven.b.messages[0] == Message::Binary(big.clone()));
    assert_eq!(driven.b.messages[1..], [Message::Ping(b"mid-message".to_vec()), Message::Text("fragment€".into())]);
    // The server's pong went out between its fragments; the automatic pong
    // is queued after them.
    assert_eq!(driven.a.messages.len(), 3);
    assert_eq!(driven.a.messages[0], Message::Pong(b"heartbeat".to_vec()));
    assert!(driven.a.messages[1] == Message::Binary(big), "binary message differs");
    assert_eq!(driven.a.messages[2], Message::Pong(b"mid-message".to_vec()));
}

#[test]
fn pings_are_answered_across_the_pair() {
    let (mut client, mut server) = pair(seeded(13));
    for i in 0..10u8 {
        client.ping(&[i]).unwrap();
        server.ping(&[i, i]).unwrap();
        let driven = drive(&mut client, &mut server);
        assert_eq!(driven.b.messages, [Message::Ping(vec![i]), Message::Pong(vec![i, i])]);
        assert_eq!(driven.a.messages, [Message::Ping(vec![i, i]), Message::Pong(vec![i])]);
    }
}

#[test]
fn close_handshake_initiated_by_either_side() {
    for initiator in [Role::Client, Role::Server] {
        let (mut client, mut server) = pair(seeded(14));
        client.send_text("last words from the client").unwrap();
        server.send_text("last words from the server").unwrap();
        let (closer, other) = match initiator {
            Role::Client => (&mut client, &mut server),
            Role::Server => (&mut server, &mut client),
        };
        closer.close(CloseCode::NORMAL, "goodbye").unwrap();
        assert_eq!(closer.state(), State::CloseSent);
        assert_eq!(other.state(), State::Open);
        let driven = drive(&mut client, &mut server);
        let (client_close, server_close) = match initiator {
            Role::Client => (close_msg(1000, ""), close_msg(1000, "goodbye")),
            Role::Server => (close_msg(1000, "goodbye"), close_msg(1000, "")),
        };
        assert_eq!(driven.a.messages, [Message::Text("last words from the server".into()), client_close]);
        assert_eq!(driven.b.messages, [Message::Text("last words from the client".into()), server_close]);
        assert_eq!((client.state(), server.state()), (State::Closed, State::Closed));
        assert!(server.should_close_transport());
        assert!(!client.should_close_transport());
        assert!(!client.has_output() && !server.has_output());
        // The server closes TCP: both see the end cleanly.
        server.receive_eof();
        client.receive_eof();
        assert_eq!(events(&mut server), Ok(vec![]));
        assert_eq!(events(&mut client), Ok(vec![]));
        assert!(client.should_close_transport());
        assert!(!client.sender().is_failed() && !server.sender().is_failed());
    }
}

#[test]
fn simultaneous_close_completes_on_both_sides() {
    let (mut client, mut server) = pair(seeded(15));
    client.close(CloseCode::from(4001), "c").unwrap();
    server.close(CloseCode::from(4002), "s").unwrap();
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.a.messages, [close_msg(4002, "s")]);
    assert_eq!(driven.b.messages, [close_msg(4001, "c")]);
    assert_eq!((client.state(), server.state()), (State::Closed, State::Closed));
    assert!(server.should_close_transport());
}

#[test]
fn a_protocol_failure_reaches_the_peer_as_a_close() {
    let (mut client, mut server) = pair(seeded(16));
    // The server receives a frame no client would send: a reserved opcode.
    server.receive(&cframe(true, 0x3, b""));
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.b.error, Some(rfc6455::ProtocolError::ReservedOpcode(3)));
    assert_eq!(driven.a.messages, [close_msg(1002, "")]);
    assert_eq!(client.state(), State::Closed);
    assert!(server.should_close_transport());
}

#[test]
fn zero_copy_echo_with_halves() {
    let (mut client, mut server) = pair(seeded(17));
    let binary = pseudo_random(70_000, 5);
    client.send_text("echo me").unwrap();
    client.send_binary(&binary).unwrap();
    client.send_first_fragment(true, b"in ").unwrap();
    client.send_fragment(b"pieces", true).unwrap();
    client.ping(b"?").unwrap();
    client.close(CloseCode::NORMAL, "done").unwrap();
    let mut wire = Vec::new();
    client.take_output(&mut wire);
    server.receive(&wire);

    let mut seen = 0;
    let (receiver, sender) = server.halves();
    for _ in 0..100 {
        let Some(event) = receiver.poll_event(sender).unwrap() else { break };
        seen += 1;
        match event {
            Event::Text(text) => sender.send_text(text).unwrap(),
            Event::Binary(data) => sender.send_binary(data).unwrap(),
            Event::Ping(_) | Event::Pong(_) | Event::Close(_) => {}
        }
    }
    assert_eq!(seen, 5);
    assert_eq!(server.state(), State::Closed);
    assert!(server.should_close_transport());

    let mut back = Vec::new();
    server.take_output(&mut back);
    client.receive(&back);
    assert_eq!(
        events(&mut client),
        Ok(vec![
            Message::Text("echo me".into()),
            Message::Binary(binary),
            Message::Text("in pieces".into()),
            Message::Pong(b"?".to_vec()),
            close_msg(1000, ""),
        ])
    );
    assert_eq!(client.state(), State::Closed);
}

#[test]
fn split_halves_work_apart_and_rejoin() {
    let (mut client, server) = pair(seeded(18));
    let (mut receiver, mut sender) = server.into_split();
    assert_eq!(sender.role(), Role::Server);
    client.send_text("to the reader").unwrap();
    client.ping(b"owed").unwrap();
    let mut wire = Vec::new();
    client.take_output(&mut wire);
    receiver.receive(&wire);
    let first = receiver.poll_event(&mut sender).unwrap().map(|e| e.to_message());
    assert_eq!(first, Some(Message::Text("to the reader".into())));
    let second = receiver.poll_event(&mut sender).unwrap().map(|e| e.to_message());
    assert_eq!(second, Some(Message::Ping(b"owed".to_vec())));
    assert!(receiver.poll_event(&mut sender).unwrap().is_none());
    // The writer side sends on its own; the owed pong is in its output.
    sender.send_text("from the writer").unwrap();
    let mut server = Connection::from_split(receiver, sender);
    let driven = drive(&mut client, &mut server);
    let mut got = driven.a.messages;
    got.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(got, [Message::Pong(b"owed".to_vec()), Message::Text("from the writer".into())]);
    assert_eq!(server.state(), State::Open);
}

#[test]
fn many_small_messages_with_output_taken_in_bulk() {
    let (mut client, mut server) = pair(Config::default());
    for i in 0..1000 {
        client.send_text(&i.to_string()).unwrap();
    }
    let driven = drive(&mut client, &mut server);
    let expected: Vec<Message> = (0..1000).map(|i| Message::Text(i.to_string())).collect();
    assert_eq!(driven.b.messages, expected);
    assert_eq!(driven.a, Trace::default());
}
