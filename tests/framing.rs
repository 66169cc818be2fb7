//! Base framing (RFC 6455 sections 5.2 and 5.3): the three length forms, the
//! minimal-length rule, the 64-bit length's top bit, RSV bits, reserved
//! opcodes and masking in each direction.

mod support;

use std::collections::HashSet;

use rfc6455::{Config, Connection, FrameHeader, Limit, Message, OpCode, ProtocolError, Role};
use support::*;

const LENGTHS: [usize; 5] = [0, 125, 126, 65535, 65536];

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn client() -> Connection {
    Connection::new(Role::Client, Config::default())
}

/// The length form RFC 6455 prescribes for `len`, and the header size it gives.
fn minimal_form(len: usize) -> (LenForm, usize) {
    match len {
        0..=125 => (LenForm::Short, 2),
        126..=65535 => (LenForm::Ext16, 4),
        _ => (LenForm::Ext64, 10),
    }
}

#[test]
fn every_length_form_is_decoded_at_its_boundaries() {
    for len in LENGTHS {
        let payload = pseudo_random(len, 1);
        let (form, header_len) = minimal_form(len);
        for mask in [None, Some(KEY)] {
            let wire = RawFrame::new(true, BINARY, mask, &payload).form(form).encode();
            let key_len = if mask.is_some() { 4 } else { 0 };
            let expected = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask, payload_len: len as u64 };
            assert_eq!(FrameHeader::decode(&wire), Ok(Some((expected, header_len + key_len))), "len {len}");
            let mut encoded = Vec::new();
            expected.encode(&mut encoded);
            assert_eq!(encoded, wire[..header_len + key_len], "encode len {len}");
        }
        let mut server = server();
        let trace = feed(&mut server, &RawFrame::new(true, BINARY, Some(KEY), &payload).form(form).encode());
        assert_eq!(trace, Trace { messages: vec![Message::Binary(payload.clone())], error: None }, "len {len}");
        let mut client = client();
        let trace = feed(&mut client, &RawFrame::new(true, BINARY, None, &payload).form(form).encode());
        assert_eq!(trace, Trace { messages: vec![Message::Binary(payload.clone())], error: None }, "len {len}");
    }
}

#[test]
fn sent_frames_use_the_minimal_length_form() {
    for len in LENGTHS {
        let payload = pseudo_random(len, 2);
        for role in [Role::Server, Role::Client] {
            let mut conn = Connection::new(role, Config::default());
            conn.send_binary(&payload).unwrap();
            let out = conn.output().to_vec();
            let frames = decode_frames(&out);
            assert_eq!(frames.len(), 1);
            let key_len = if role == Role::Client { 4 } else { 0 };
            assert_eq!(frames[0].header_len, minimal_form(len).1 + key_len, "len {len} {role:?}");
            assert_eq!(frames[0].payload, payload);
            assert_eq!(out.len(), frames[0].header_len + len);
        }
    }
}

#[test]
fn non_minimal_lengths_fail_with_1002() {
    let cases: [(usize, LenForm); 6] = [
        (0, LenForm::Ext16),
        (125, LenForm::Ext16),
        (0, LenForm::Ext64),
        (125, LenForm::Ext64),
        (126, LenForm::Ext64),
        (65535, LenForm::Ext64),
    ];
    for (len, form) in cases {
        let raw = RawFrame::new(true, BINARY, Some(KEY), &pseudo_random(len, 3)).form(form);
        assert_eq!(FrameHeader::decode(&raw.header()), Err(ProtocolError::NonMinimalLength), "{len} {form:?}");
        // Rejected from the header alone, before any payload.
        expect_failure(&mut server(), &raw.header(), ProtocolError::NonMinimalLength);
        expect_failure(&mut server(), &raw.encode(), ProtocolError::NonMinimalLength);
        let unmasked = RawFrame::new(true, TEXT, None, &[]).form(form).declared_len(len as u64);
        expect_failure(&mut client(), &unmasked.header(), ProtocolError::NonMinimalLength);
    }
    assert_eq!(ProtocolError::NonMinimalLength.close_code().as_u16(), 1002);
}

#[test]
fn top_bit_of_the_64_bit_length_fails() {
    for declared in [1u64 << 63, (1 << 63) | 0x1_0000, u64::MAX] {
        let raw = RawFrame::new(true, BINARY, Some(KEY), &[]).form(LenForm::Ext64).declared_len(declared);
        assert_eq!(FrameHeader::decode(&raw.header()), Err(ProtocolError::LengthTooLarge));
        expect_failure(&mut server(), &raw.header(), ProtocolError::LengthTooLarge);
    }
    assert_eq!(ProtocolError::LengthTooLarge.close_code().as_u16(), 1002);
}

#[test]
fn largest_legal_length_hits_max_frame_size_by_default() {
    let declared = (1u64 << 63) - 1;
    let raw = RawFrame::new(true, BINARY, Some(KEY), &[]).declared_len(declared);
    let (header, _) = FrameHeader::decode(&raw.header()).unwrap().unwrap();
    assert_eq!(header.payload_len, declared);
    let expected = ProtocolError::LimitExceeded {
        limit: Limit::MaxFrameSize,
        size: declared,
        max: Config::default().max_frame_size,
    };
    let mut server = server();
    expect_failure(&mut server, &raw.header(), expected.clone());
    assert_eq!(expected.close_code().as_u16(), 1009);
    let text = server.poll_event().unwrap_err().to_string();
    assert!(text.contains("max_frame_size"), "{text}");
}

#[test]
fn each_rsv_bit_fails_with_1002() {
    for rsv in [0b100, 0b010, 0b001, 0b111] {
        for opcode in [TEXT, BINARY, PING, CLOSE] {
            let raw = RawFrame::new(true, opcode, Some(KEY), b"").rsv(rsv);
            // The header decoder keeps the bits for the connection to judge.
            let (header, _) = FrameHeader::decode(&raw.header()).unwrap().unwrap();
            assert_eq!(header.rsv, rsv);
            expect_failure(&mut server(), &raw.encode(), ProtocolError::ReservedBits(rsv));
            let unmasked = RawFrame::new(true, opcode, None, b"").rsv(rsv);
            expect_failure(&mut client(), &unmasked.encode(), ProtocolError::ReservedBits(rsv));
        }
    }
}

#[test]
fn every_reserved_opcode_fails_with_1002() {
    for opcode in (3..=7).chain(0xB..=0xF) {
        assert_eq!(OpCode::from_u8(opcode), Err(ProtocolError::ReservedOpcode(opcode)));
        for fin in [true, false] {
            let wire = frame(fin, opcode, Some(KEY), b"x");
            assert_eq!(FrameHeader::decode(&wire), Err(ProtocolError::ReservedOpcode(opcode)));
            expect_failure(&mut server(), &wire, ProtocolError::ReservedOpcode(opcode));
            expect_failure(&mut client(), &frame(fin, opcode, None, b"x"), ProtocolError::ReservedOpcode(opcode));
        }
    }
    // And every defined one is accepted by the decoder.
    for opcode in [CONT, TEXT, BINARY, CLOSE, PING, PONG] {
        assert_eq!(OpCode::from_u8(opcode).map(OpCode::as_u8), Ok(opcode));
    }
}

#[test]
fn server_rejects_unmasked_frames() {
    for opcode in [TEXT, BINARY, PING, PONG, CLOSE] {
        expect_failure(&mut server(), &frame(true, opcode, None, b""), ProtocolError::UnmaskedFrame);
    }
}

#[test]
fn server_accepts_unmasked_frames_when_configured() {
    let mut config = Config::default();
    config.accept_unmasked_frames = true;
    let mut server = Connection::new(Role::Server, config);
    server.receive(&sframe(true, TEXT, b"plain"));
    server.receive(&cframe(true, TEXT, b"masked"));
    server.receive(&sframe(true, PING, b"p"));
    assert_eq!(
        events(&mut server),
        Ok(vec![Message::Text("plain".into()), Message::Text("masked".into()), Message::Ping(b"p".to_vec())])
    );
    assert_eq!(take_frames(&mut server), [(true, PONG, b"p".to_vec())]);
}

#[test]
fn accept_unmasked_frames_does_not_let_a_client_accept_masked_ones() {
    let mut config = Config::default();
    config.accept_unmasked_frames = true;
    let mut client = Connection::new(Role::Client, config);
    expect_failure(&mut client, &cframe(true, TEXT, b"x"), ProtocolError::MaskedFrame);
}

#[test]
fn client_rejects_masked_frames() {
    for opcode in [TEXT, BINARY, PING, PONG, CLOSE] {
        expect_failure(&mut client(), &frame(true, opcode, Some([0, 0, 0, 0]), b""), ProtocolError::MaskedFrame);
    }
}

#[test]
fn client_masks_every_frame_with_a_fresh_key() {
    let mut client = client();
    for i in 0..50 {
        client.send_text(&format!("message {i}")).unwrap();
    }
    let out = client.output().to_vec();
    let frames = decode_frames(&out);
    assert_eq!(frames.len(), 50);
    let mut keys = HashSet::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.fin, f.rsv, f.opcode), (true, 0, TEXT));
        assert_eq!(f.payload, format!("message {i}").as_bytes());
        keys.insert(f.mask.expect("client frames are masked"));
    }
    assert!(keys.len() >= 45, "only {} distinct keys in 50 frames", keys.len());
    // Two unseeded clients do not share keys either.
    let mut other = Connection::new(Role::Client, Config::default());
    other.send_text("message 0").unwrap();
    let other_key = decode_frames(other.output())[0].mask.unwrap();
    assert_ne!(Some(other_key), frames[0].mask, "two OS-seeded clients picked the same first key");
}

#[test]
fn client_masks_control_frames_too() {
    let mut client = client();
    client.ping(b"a").unwrap();
    client.pong(b"b").unwrap();
    client.close(1000.into(), "c").unwrap();
    let frames = take_frames(&mut client); // checks the mask bit on each
    assert_eq!(
        frames,
        [(true, PING, b"a".to_vec()), (true, PONG, b"b".to_vec()), (true, CLOSE, close_payload(1000, "c"))]
    );
}

#[test]
fn server_output_is_never_masked() {
    let mut server = server();
    server.send_text("t").unwrap();
    server.send_binary(&[1, 2, 3]).unwrap();
    server.send_first_fragment(false, b"a").unwrap();
    server.send_fragment(b"b", true).unwrap();
    server.ping(b"p").unwrap();
    server.pong(b"q").unwrap();
    server.close(1001.into(), "").unwrap();
    let frames = take_frames(&mut server); // checks that no frame is masked
    assert_eq!(frames.len(), 7);
    assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [TEXT, BINARY, BINARY, CONT, PING, PONG, CLOSE]);
}

#[test]
fn header_split_anywhere_waits_for_more() {
    // A 64-bit length with mask key: 14 header bytes, delivered one at a time.
    let payload = pseudo_random(70_000, 4);
    let wire = cframe(true, BINARY, &payload);
    let mut server = server();
    for &byte in &wire[..14] {
        server.receive(&[byte]);
        assert_eq!(events(&mut server), Ok(vec![]));
    }
    server.receive(&wire[14..]);
    assert_eq!(events(&mut server), Ok(vec![Message::Binary(payload)]));
}
