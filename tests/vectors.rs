//! The examples of RFC 6455 section 5.7, in both directions: bytes to frames
//! and events, and frames and sends to bytes.

mod support;

use rfc6455::{Config, Connection, FrameHeader, Message, OpCode, Role, apply_mask};
use support::*;

const HELLO_UNMASKED: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
const HEL: [u8; 5] = [0x01, 0x03, 0x48, 0x65, 0x6c];
const LO: [u8; 4] = [0x80, 0x02, 0x6c, 0x6f];
const PING_HELLO: [u8; 7] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const PONG_HELLO_MASKED: [u8; 11] = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

fn header(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload_len: u64) -> FrameHeader {
    FrameHeader { fin, rsv: 0, opcode, mask, payload_len }
}

/// Decodes the header at the start of `wire` and checks it against `expected`.
fn check_decode(wire: &[u8], expected: FrameHeader, expected_len: usize) {
    assert_eq!(FrameHeader::decode(wire), Ok(Some((expected, expected_len))), "{wire:x?}");
    // Any prefix shorter than the header is "need more".
    for cut in 0..expected_len {
        assert_eq!(FrameHeader::decode(&wire[..cut]), Ok(None), "cut at {cut}");
    }
    let mut encoded = Vec::new();
    expected.encode(&mut encoded);
    assert_eq!(encoded, wire[..expected_len], "encode");
    assert_eq!(expected.encoded_len(), expected_len);
}

/// The 256-byte and 64 KiB examples' payloads (the RFC leaves the content open).
fn binary_payload(len: usize) -> Vec<u8> {
    pseudo_random(len, len as u64)
}

fn binary_256_wire() -> Vec<u8> {
    let mut wire = vec![0x82, 0x7E, 0x01, 0x00];
    wire.extend(binary_payload(256));
    wire
}

fn binary_64k_wire() -> Vec<u8> {
    let mut wire = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    wire.extend(binary_payload(65536));
    wire
}

// ---- Bytes to frames ----

#[test]
fn decode_single_frame_unmasked_text() {
    check_decode(&HELLO_UNMASKED, header(true, OpCode::Text, None, 5), 2);
}

#[test]
fn decode_single_frame_masked_text() {
    check_decode(&HELLO_MASKED, header(true, OpCode::Text, Some(KEY), 5), 6);
    let mut payload = HELLO_MASKED[6..].to_vec();
    apply_mask(&mut payload, KEY, 0);
    assert_eq!(payload, b"Hello");
}

#[test]
fn decode_fragmented_unmasked_text() {
    check_decode(&HEL, header(false, OpCode::Text, None, 3), 2);
    check_decode(&LO, header(true, OpCode::Continuation, None, 2), 2);
}

#[test]
fn decode_ping_and_masked_pong() {
    check_decode(&PING_HELLO, header(true, OpCode::Ping, None, 5), 2);
    check_decode(&PONG_HELLO_MASKED, header(true, OpCode::Pong, Some(KEY), 5), 6);
}

#[test]
fn decode_256_byte_binary() {
    check_decode(&binary_256_wire(), header(true, OpCode::Binary, None, 256), 4);
}

#[test]
fn decode_64k_binary() {
    check_decode(&binary_64k_wire(), header(true, OpCode::Binary, None, 65536), 10);
}

#[test]
fn client_receives_unmasked_hello() {
    let mut client = Connection::new(Role::Client, Config::default());
    assert_eq!(events(&mut client), Ok(vec![]));
    client.receive(&HELLO_UNMASKED);
    assert_eq!(events(&mut client), Ok(vec![Message::Text("Hello".into())]));
    assert!(!client.has_output());
}

#[test]
fn server_receives_masked_hello() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(&HELLO_MASKED);
    assert_eq!(events(&mut server), Ok(vec![Message::Text("Hello".into())]));
    assert!(!server.has_output());
}

#[test]
fn client_receives_fragmented_hello() {
    let mut client = Connection::new(Role::Client, Config::default());
    client.receive(&HEL);
    assert_eq!(events(&mut client), Ok(vec![]), "no event for the first fragment alone");
    client.receive(&LO);
    assert_eq!(events(&mut client), Ok(vec![Message::Text("Hello".into())]));
}

#[test]
fn client_receives_ping_and_answers_with_masked_pong() {
    let mut client = Connection::new(Role::Client, Config::default());
    client.receive(&PING_HELLO);
    assert_eq!(events(&mut client), Ok(vec![Message::Ping(b"Hello".to_vec())]));
    let out = client.output().to_vec();
    // 8a 85 <key> <masked "Hello">: the shape of the RFC's masked pong.
    assert_eq!(out.len(), 11);
    assert_eq!(out[..2], [0x8a, 0x85]);
    let key: [u8; 4] = out[2..6].try_into().unwrap();
    let mut expected = b"Hello".to_vec();
    apply_mask(&mut expected, key, 0);
    assert_eq!(out[6..], expected[..]);
}

#[test]
fn server_receives_masked_pong() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(&PONG_HELLO_MASKED);
    assert_eq!(events(&mut server), Ok(vec![Message::Pong(b"Hello".to_vec())]));
    assert!(!server.has_output(), "a pong is not answered");
}

#[test]
fn client_receives_256_and_64k_binary() {
    let mut client = Connection::new(Role::Client, Config::default());
    client.receive(&binary_256_wire());
    client.receive(&binary_64k_wire());
    assert_eq!(
        events(&mut client),
        Ok(vec![Message::Binary(binary_payload(256)), Message::Binary(binary_payload(65536))])
    );
}

#[test]
fn server_receives_masked_256_and_64k_binary() {
    let mut server = Connection::new(Role::Server, Config::default());
    let mut wire = binary_256_wire();
    wire[1] |= 0x80;
    wire.splice(4..4, KEY);
    let mut masked = binary_payload(256);
    apply_mask(&mut masked, KEY, 0);
    wire.truncate(8);
    wire.extend(masked);
    server.receive(&wire);
    server.receive(&frame(true, BINARY, Some([9, 8, 7, 6]), &binary_payload(65536)));
    assert_eq!(
        events(&mut server),
        Ok(vec![Message::Binary(binary_payload(256)), Message::Binary(binary_payload(65536))])
    );
}

// ---- Frames to bytes ----

#[test]
fn server_sends_the_unmasked_examples_byte_for_byte() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.send_text("Hello").unwrap();
    assert_eq!(server.output(), HELLO_UNMASKED);
    server.advance_output(HELLO_UNMASKED.len());
    assert!(!server.has_output());

    server.send_first_fragment(true, b"Hel").unwrap();
    server.send_fragment(b"lo", true).unwrap();
    assert_eq!(server.output(), [&HEL[..], &LO[..]].concat());
    server.advance_output(usize::MAX);

    server.ping(b"Hello").unwrap();
    assert_eq!(server.output(), PING_HELLO);
    server.advance_output(usize::MAX);

    server.send_binary(&binary_payload(256)).unwrap();
    assert_eq!(server.output(), binary_256_wire());
    server.advance_output(usize::MAX);

    server.send_binary(&binary_payload(65536)).unwrap();
    assert_eq!(server.output(), binary_64k_wire());
    server.advance_output(usize::MAX);
    assert!(!server.has_output());
}

#[test]
fn server_answers_masked_ping_with_unmasked_pong() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(&frame(true, PING, Some(KEY), b"Hello"));
    assert_eq!(events(&mut server), Ok(vec![Message::Ping(b"Hello".to_vec())]));
    assert_eq!(server.output(), [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

/// Checks one masked client frame: header bits, a key read from the output,
/// and the masked payload equal to `apply_mask` of the expected payload.
fn check_masked(out: &[u8], first_byte: u8, len_field: &[u8], payload: &[u8]) -> usize {
    assert_eq!(out[0], first_byte);
    assert_eq!(out[1] & 0x80, 0x80, "mask bit");
    assert_eq!(out[1] & 0x7F, len_field[0]);
    let key_at = 1 + len_field.len();
    assert_eq!(&out[2..key_at], &len_field[1..], "extended length");
    let key: [u8; 4] = out[key_at..key_at + 4].try_into().unwrap();
    let mut expected = payload.to_vec();
    apply_mask(&mut expected, key, 0);
    let end = key_at + 4 + payload.len();
    assert_eq!(out[key_at + 4..end], expected[..]);
    end
}

#[test]
fn client_sends_the_examples_masked() {
    let mut client = Connection::new(Role::Client, Config::default());
    client.send_text("Hello").unwrap();
    client.send_first_fragment(true, b"Hel").unwrap();
    client.send_fragment(b"lo", true).unwrap();
    client.ping(b"Hello").unwrap();
    client.pong(b"Hello").unwrap();
    client.send_binary(&binary_payload(256)).unwrap();
    client.send_binary(&binary_payload(65536)).unwrap();
    let out = client.output().to_vec();
    let mut at = 0;
    at += check_masked(&out[at..], 0x81, &[5], b"Hello");
    at += check_masked(&out[at..], 0x01, &[3], b"Hel");
    at += check_masked(&out[at..], 0x80, &[2], b"lo");
    at += check_masked(&out[at..], 0x89, &[5], b"Hello");
    at += check_masked(&out[at..], 0x8a, &[5], b"Hello");
    at += check_masked(&out[at..], 0x82, &[126, 0x01, 0x00], &binary_payload(256));
    at += check_masked(&out[at..], 0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0], &binary_payload(65536));
    assert_eq!(at, out.len());
}

#[test]
fn seeded_client_masks_hello_like_the_rfc_when_the_key_matches() {
    // The output with a fixed seed is reproducible; whatever key it picks, the
    // frame must equal the RFC's layout with that key.
    let mut a = Connection::new(Role::Client, seeded(7));
    let mut b = Connection::new(Role::Client, seeded(7));
    a.send_text("Hello").unwrap();
    b.send_text("Hello").unwrap();
    let out = a.output().to_vec();
    assert_eq!(out, b.output(), "same seed, same bytes");
    let key: [u8; 4] = out[2..6].try_into().unwrap();
    let rebuilt = frame(true, TEXT, Some(key), b"Hello");
    assert_eq!(out, rebuilt);
    // And the RFC's exact bytes, when built with its key.
    assert_eq!(frame(true, TEXT, Some(KEY), b"Hello"), HELLO_MASKED);
    assert_eq!(frame(true, PONG, Some(KEY), b"Hello"), PONG_HELLO_MASKED);
}
