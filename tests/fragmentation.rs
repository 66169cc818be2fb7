//! Fragmentation (RFC 6455 section 5.4) and text validation across fragments
//! (sections 5.6 and 8.1), receiving and sending.

mod support;

use rfc6455::{Config, Connection, Message, ProtocolError, Role, SendError};
use support::*;

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn frag(fin: bool, opcode: u8, key: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, Some([key, key.wrapping_mul(3), 0x5a, key ^ 0xff]), payload)
}

#[test]
fn text_in_three_fragments_is_reassembled() {
    let mut server = server();
    server.receive(&frag(false, TEXT, 1, "Hé".as_bytes()));
    assert_eq!(events(&mut server), Ok(vec![]));
    server.receive(&frag(false, CONT, 2, "ll".as_bytes()));
    assert_eq!(events(&mut server), Ok(vec![]));
    server.receive(&frag(true, CONT, 3, "ö wörld".as_bytes()));
    assert_eq!(events(&mut server), Ok(vec![Message::Text("Héllö wörld".into())]));
}

#[test]
fn binary_in_many_fragments_is_reassembled_in_one_receive() {
    let payload = pseudo_random(1000, 9);
    let mut wire = frag(false, BINARY, 0, &payload[..1]);
    for (i, chunk) in payload[1..].chunks(37).enumerate() {
        let last = 1 + (i + 1) * 37 >= payload.len();
        wire.extend(frag(last, CONT, i as u8, chunk));
    }
    let mut server = server();
    assert_eq!(feed(&mut server, &wire).messages, [Message::Binary(payload)]);
    assert_eq!(events(&mut server), Ok(vec![]));
}

#[test]
fn ping_between_fragments_is_answered_and_delivered_first() {
    let mut server = server();
    let mut wire = frag(false, TEXT, 1, b"frag");
    wire.extend(frag(true, PING, 2, b"are you there"));
    wire.extend(frag(false, CONT, 3, b"men"));
    wire.extend(frag(true, PONG, 4, b"unsolicited"));
    wire.extend(frag(true, CONT, 5, b"ted"));
    let trace = feed(&mut server, &wire);
    assert_eq!(
        trace,
        Trace {
            messages: vec![
                Message::Ping(b"are you there".to_vec()),
                Message::Pong(b"unsolicited".to_vec()),
                Message::Text("fragmented".into()),
            ],
            error: None
        }
    );
    assert_eq!(take_frames(&mut server), [(true, PONG, b"are you there".to_vec())]);
}

#[test]
fn ping_between_fragments_is_answered_before_the_message_completes() {
    let mut server = server();
    server.receive(&frag(false, BINARY, 1, b"first"));
    server.receive(&frag(true, PING, 2, b"now"));
    assert_eq!(events(&mut server), Ok(vec![Message::Ping(b"now".to_vec())]));
    assert_eq!(take_frames(&mut server), [(true, PONG, b"now".to_vec())]);
    server.receive(&frag(true, CONT, 3, b"second"));
    assert_eq!(events(&mut server), Ok(vec![Message::Binary(b"firstsecond".to_vec())]));
}

#[test]
fn continuation_without_a_start_fails() {
    for fin in [true, false] {
        expect_failure(&mut server(), &frag(fin, CONT, 1, b"x"), ProtocolError::UnexpectedContinuation);
    }
    // Also after a message that finished.
    let mut server = server();
    server.receive(&frag(false, TEXT, 1, b"a"));
    server.receive(&frag(true, CONT, 2, b"b"));
    server.receive(&frag(true, CONT, 3, b"c"));
    let trace = trace(&mut server);
    assert_eq!(trace.messages, [Message::Text("ab".into())]);
    assert_eq!(trace.error, Some(ProtocolError::UnexpectedContinuation));
    assert_failing(&mut server, 1002);
}

#[test]
fn new_data_frame_inside_a_fragmented_message_fails() {
    for (first, second) in [(TEXT, TEXT), (TEXT, BINARY), (BINARY, TEXT), (BINARY, BINARY)] {
        for fin in [true, false] {
            let mut server = server();
            let mut wire = frag(false, first, 1, b"start");
            wire.extend(frag(fin, second, 2, b"again"));
            expect_failure(&mut server, &wire, ProtocolError::ExpectedContinuation);
        }
    }
}

#[test]
fn empty_fragments_are_accepted() {
    let mut server = server();
    let mut wire = frag(false, TEXT, 1, b"");
    wire.extend(frag(false, CONT, 2, b""));
    wire.extend(frag(true, CONT, 3, b""));
    wire.extend(frag(false, BINARY, 4, b""));
    wire.extend(frag(false, CONT, 5, b"x"));
    wire.extend(frag(false, CONT, 6, b""));
    wire.extend(frag(true, CONT, 7, b""));
    let trace = feed(&mut server, &wire);
    assert_eq!(
        trace,
        Trace { messages: vec![Message::Text(String::new()), Message::Binary(b"x".to_vec())], error: None }
    );
}

#[test]
fn four_byte_character_split_across_fragments_is_accepted() {
    let clef = "a𝄞b".as_bytes(); // 61 f0 9d 84 9e 62
    for i in 0..=clef.len() {
        for j in i..=clef.len() {
            let mut server = server();
            let mut wire = frag(false, TEXT, 1, &clef[..i]);
            wire.extend(frag(false, CONT, 2, &clef[i..j]));
            wire.extend(frag(true, CONT, 3, &clef[j..]));
            assert_eq!(feed(&mut server, &wire).messages, [Message::Text("a𝄞b".into())], "split {i} {j}");
            // And delivered one fragment at a time, one byte at a time.
            let mut server = self::server();
            let mut got = Vec::new();
            for &byte in &wire {
                let trace = feed(&mut server, &[byte]);
                assert_eq!(trace.error, None);
                got.extend(trace.messages);
            }
            assert_eq!(got, [Message::Text("a𝄞b".into())], "bytewise split {i} {j}");
        }
    }
}

#[test]
fn invalid_utf8_split_across_fragments_fails_with_1007_before_the_end() {
    // ED A0 80 encodes a surrogate; each half alone is a valid prefix.
    let mut server = server();
    server.receive(&frag(false, TEXT, 1, b"ok\xed"));
    assert_eq!(events(&mut server), Ok(vec![]));
    server.receive(&frag(false, CONT, 2, b"\xa0\x80 more"));
    assert_eq!(events(&mut server), Err(ProtocolError::InvalidUtf8));
    assert_failing(&mut server, 1007);

    // An overlong encoding and a code point above U+10FFFF, also split.
    for (a, b) in [(&b"\xc0"[..], &b"\x80"[..]), (b"\xf4", b"\x90\x80\x80"), (b"\xe0", b"\x80\x80")] {
        let mut server = self::server();
        let mut wire = frag(false, TEXT, 1, a);
        wire.extend(frag(false, CONT, 2, b));
        expect_failure(&mut server, &wire, ProtocolError::InvalidUtf8);
    }
}

#[test]
fn truncated_code_point_at_the_end_of_the_final_fragment_fails_with_1007() {
    for tail in [&b"\xe2\x82"[..], b"\xf0", b"\xf0\x9d\x84", b"\xc3"] {
        let mut server = server();
        let mut wire = frag(false, TEXT, 1, b"euro ");
        wire.extend(frag(true, CONT, 2, tail));
        expect_failure(&mut server, &wire, ProtocolError::InvalidUtf8);
        // Same in an unfragmented frame, whole and byte by byte.
        let mut whole = self::server();
        let single = frag(true, TEXT, 3, &[&b"euro "[..], tail].concat());
        expect_failure(&mut whole, &single, ProtocolError::InvalidUtf8);
        let mut bytewise = self::server();
        let mut result = Trace::default();
        for &byte in &single {
            result = feed(&mut bytewise, &[byte]);
            if result.error.is_some() {
                break;
            }
        }
        assert_eq!(result.error, Some(ProtocolError::InvalidUtf8));
    }
    // A binary message may end anywhere.
    let mut server = server();
    let mut wire = frag(false, BINARY, 1, b"euro ");
    wire.extend(frag(true, CONT, 2, b"\xe2\x82"));
    assert_eq!(feed(&mut server, &wire).messages, [Message::Binary(b"euro \xe2\x82".to_vec())]);
}

#[test]
fn text_frame_received_in_pieces_is_handed_out_whole() {
    // Mixed 1- to 4-byte characters, longer than the vectorised masking
    // threshold; each piece size cuts code points in different places. The
    // text is validated piece by piece and handed out without a second pass.
    let text = "aé€😀 ".repeat(40);
    let wire = cframe(true, TEXT, text.as_bytes());
    for piece in [1, 2, 3, 5, 64, 255, wire.len()] {
        let mut server = server();
        let mut messages = Vec::new();
        for chunk in wire.chunks(piece) {
            server.receive(chunk);
            messages.extend(events(&mut server).unwrap());
        }
        assert_eq!(messages, [Message::Text(text.clone())], "pieces of {piece} bytes");
    }
}

#[test]
fn invalid_text_fails_fast_before_the_rest_of_the_frame_arrives() {
    // A 100 000 byte text frame: only its header and first bytes are sent.
    let payload = [&b"\xff"[..], &vec![b'a'; 99_999]].concat();
    let wire = cframe(true, TEXT, &payload);
    let mut server = server();
    // 14 header bytes (64-bit length and masking key), then 3 payload bytes.
    server.receive(&wire[..14 + 3]);
    assert_eq!(events(&mut server), Err(ProtocolError::InvalidUtf8));
    assert_failing(&mut server, 1007);

    // Same for the first fragment of a fragmented message, and for an invalid
    // byte in the middle of a frame that arrives in pieces.
    let mut server = self::server();
    server.receive(&cframe(false, TEXT, &payload)[..20]);
    assert_eq!(events(&mut server), Err(ProtocolError::InvalidUtf8));

    let mut payload = vec![b'a'; 100_000];
    payload[50_000] = 0x80;
    let wire = cframe(true, TEXT, &payload);
    let mut server = self::server();
    server.receive(&wire[..40_000]);
    assert_eq!(events(&mut server), Ok(vec![]));
    server.receive(&wire[40_000..50_020]);
    assert_eq!(events(&mut server), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn close_inside_a_fragmented_message_drops_it() {
    let mut server = server();
    let mut wire = frag(false, TEXT, 1, b"never ");
    wire.extend(frag(true, CLOSE, 2, &close_payload(1000, "")));
    wire.extend(frag(true, CONT, 3, b"finished"));
    assert_eq!(feed(&mut server, &wire).messages, [close_msg(1000, "")]);
    assert_eq!(events(&mut server), Ok(vec![]));
}

// ---- Sending ----

#[test]
fn sent_fragments_have_the_right_opcodes_and_fin_bits() {
    let mut server = server();
    server.send_first_fragment(true, "Hé".as_bytes()).unwrap();
    server.ping(b"between").unwrap();
    server.send_fragment(b"", false).unwrap();
    server.send_fragment("llo".as_bytes(), true).unwrap();
    server.send_first_fragment(false, &[1, 2]).unwrap();
    server.send_fragment(&[3], true).unwrap();
    assert_eq!(
        take_frames(&mut server),
        [
            (false, TEXT, "Hé".as_bytes().to_vec()),
            (true, PING, b"between".to_vec()),
            (false, CONT, vec![]),
            (true, CONT, b"llo".to_vec()),
            (false, BINARY, vec![1, 2]),
            (true, CONT, vec![3]),
        ]
    );
}

#[test]
fn client_fragments_round_trip_through_a_server() {
    let (mut client, mut server) = pair(seeded(3));
    client.send_first_fragment(true, &"😀".as_bytes()[..1]).unwrap();
    client.send_fragment(&"😀".as_bytes()[1..3], false).unwrap();
    client.send_fragment(&"😀".as_bytes()[3..], true).unwrap();
    let driven = drive(&mut client, &mut server);
    assert_eq!(driven.b.messages, [Message::Text("😀".into())]);
}

#[test]
fn fragment_order_is_enforced_on_send() {
    let mut server = server();
    assert_eq!(server.send_fragment(b"x", false), Err(SendError::NoMessageInProgress));
    assert_eq!(server.send_fragment(b"x", true), Err(SendError::NoMessageInProgress));
    server.send_first_fragment(false, b"a").unwrap();
    assert_eq!(server.send_first_fragment(true, b"b"), Err(SendError::MessageInProgress));
    assert_eq!(server.send_text("c"), Err(SendError::MessageInProgress));
    assert_eq!(server.send_binary(b"d"), Err(SendError::MessageInProgress));
    server.ping(b"control frames may interleave").unwrap();
    server.send_fragment(b"e", true).unwrap();
    assert_eq!(server.send_fragment(b"f", true), Err(SendError::NoMessageInProgress));
    server.send_text("g").unwrap();
    assert_eq!(
        take_frames(&mut server),
        [
            (false, BINARY, b"a".to_vec()),
            (true, PING, b"control frames may interleave".to_vec()),
            (true, CONT, b"e".to_vec()),
            (true, TEXT, b"g".to_vec()),
        ]
    );
}

#[test]
fn invalid_utf8_across_sent_fragments_is_refused() {
    // Invalid within the first fragment.
    let mut server = server();
    assert_eq!(server.send_first_fragment(true, b"\xff"), Err(SendError::InvalidUtf8));
    assert!(!server.has_output(), "nothing queued for a refused fragment");
    // Refused first fragment leaves no message in progress.
    assert_eq!(server.send_fragment(b"x", true), Err(SendError::NoMessageInProgress));

    // Invalid only once joined: ED then A0 80 (a surrogate).
    let mut server = self::server();
    server.send_first_fragment(true, b"ok\xed").unwrap();
    assert_eq!(server.send_fragment(b"\xa0\x80", false), Err(SendError::InvalidUtf8));
    assert_eq!(take_frames(&mut server), [(false, TEXT, b"ok\xed".to_vec())]);

    // Truncated at the end of the message.
    let mut server = self::server();
    server.send_first_fragment(true, b"\xe2").unwrap();
    server.send_fragment(b"\x82", false).unwrap();
    assert_eq!(server.send_fragment(b"", true), Err(SendError::InvalidUtf8));

    // A code point split over three fragments is fine; binary is not checked.
    let mut server = self::server();
    server.send_first_fragment(true, b"\xe2").unwrap();
    server.send_fragment(b"\x82", false).unwrap();
    server.send_fragment(b"\xac", true).unwrap();
    server.send_first_fragment(false, b"\xff").unwrap();
    server.send_fragment(b"\xe2", true).unwrap();
    let frames = take_frames(&mut server);
    assert_eq!(frames.len(), 5);
    let text: Vec<u8> = frames[..3].iter().flat_map(|f| f.2.clone()).collect();
    assert_eq!(String::from_utf8(text).unwrap(), "€");
}

#[test]
fn send_binary_splits_at_send_frame_size() {
    let mut config = Config::default();
    config.send_frame_size = 10;
    let payload: Vec<u8> = (0..25).collect();
    let mut server = Connection::new(Role::Server, config.clone());
    server.send_binary(&payload).unwrap();
    assert_eq!(
        take_frames(&mut server),
        [
            (false, BINARY, payload[..10].to_vec()),
            (false, CONT, payload[10..20].to_vec()),
            (true, CONT, payload[20..].to_vec())
        ]
    );
    // Exactly one frame's worth is not split; the empty message is one frame.
    server.send_binary(&payload[..10]).unwrap();
    server.send_binary(&[]).unwrap();
    assert_eq!(take_frames(&mut server), [(true, BINARY, payload[..10].to_vec()), (true, BINARY, vec![])]);

    // Text is split the same way (cutting a code point is allowed on the wire)
    // and the halves still reassemble.
    let (mut client, mut server) = pair(config.clone());
    let text = "ééééééééééé"; // 22 bytes
    client.send_text(text).unwrap();
    let out = client.output().to_vec();
    let frames = parse_frames(&out, true);
    assert_eq!(
        frames.iter().map(|f| (f.0, f.1, f.2.len())).collect::<Vec<_>>(),
        [(false, TEXT, 10), (false, CONT, 10), (true, CONT, 2)]
    );
    assert_eq!(drive(&mut client, &mut server).b.messages, [Message::Text(text.into())]);

    // The fragment calls split large fragments too, FIN only on the very last.
    let mut server = Connection::new(Role::Server, config);
    server.send_first_fragment(false, &payload).unwrap();
    server.send_fragment(&payload[..12], true).unwrap();
    let frames = take_frames(&mut server);
    assert_eq!(
        frames.iter().map(|f| (f.0, f.1, f.2.len())).collect::<Vec<_>>(),
        [(false, BINARY, 10), (false, CONT, 10), (false, CONT, 5), (false, CONT, 10), (true, CONT, 2)]
    );
}
