//! permessage-deflate (RFC 7692) through the public API: negotiation in the
//! handshake, compressed messages both ways with and without context
//! takeover, RSV1 rules, the compression-bomb cap and corrupt data.

mod support;

use rfc6455::{
    Accept, ClientHandshake, ClientProgress, ClientRequest, Config, Connection, DeflateConfig, DeflateParams, Limit,
    Message, PreparedMessage, ProtocolError, Role, ServerHandshake, ServerProgress,
};
use support::*;

fn deflate_config(f: impl FnOnce(&mut DeflateConfig)) -> Config {
    let mut deflate = DeflateConfig::default();
    f(&mut deflate);
    let mut config = Config::default();
    config.deflate = Some(deflate);
    config.rng_seed = Some([9; 32]);
    config
}

/// Runs the handshake in memory; returns the client, the server and the
/// server's `Sec-WebSocket-Extensions` answer.
fn handshake(client: Config, server: Config) -> (Connection, Connection, Option<String>) {
    let hs = ClientHandshake::new(ClientRequest::new("ws://127.0.0.1/").unwrap(), client).unwrap();
    let ServerProgress::Request(request) = ServerHandshake::new(server).receive(hs.request_bytes()).unwrap() else {
        panic!("request incomplete")
    };
    let (response, server) = request.into_upgrade().unwrap().accept(Accept::new()).unwrap();
    let answer = String::from_utf8_lossy(&response)
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: ").map(str::to_owned));
    let ClientProgress::Done(client, _) = hs.receive(&response).unwrap() else { panic!("response incomplete") };
    (client, server, answer)
}

/// Sends `messages` from `from` to `to` (bytes moved in `chunk`-sized pieces)
/// and returns what arrived, plus the bytes that crossed the wire.
fn deliver(from: &mut Connection, to: &mut Connection, messages: &[Message], chunk: usize) -> (Vec<Message>, Vec<u8>) {
    for message in messages {
        match message {
            Message::Text(text) => from.send_text(text).unwrap(),
            Message::Binary(data) => from.send_binary(data).unwrap(),
            other => panic!("not a data message: {other:?}"),
        }
    }
    let mut wire = Vec::new();
    from.take_output(&mut wire);
    let mut received = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        to.receive(piece);
        while let Some(event) = to.poll_event().unwrap() {
            received.push(event.to_message());
        }
    }
    (received, wire)
}

fn json(n: usize) -> String {
    (0..n).map(|i| format!(r#"{{"id":{i},"user":"ada","text":"héllo wörld ✓","tags":["a","b"]}},"#)).collect()
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::Text(json(200)),
        Message::Binary(json(100).into_bytes()),
        Message::Text(String::new()),
        Message::Text("short".into()),
        Message::Binary((0..=255u8).cycle().take(70_000).collect()),
        Message::Text(json(2000)),
    ]
}

#[test]
fn negotiated_by_default_policy_with_no_context_takeover() {
    let (client, server, answer) = handshake(deflate_config(|_| {}), deflate_config(|_| {}));
    assert_eq!(answer.as_deref(), Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"));
    assert!(client.receiver().deflate_negotiated());
    assert!(server.receiver().deflate_negotiated());
}

#[test]
fn not_negotiated_unless_both_ends_want_it() {
    let (client, server, answer) = handshake(deflate_config(|_| {}), Config::default());
    assert_eq!(answer, None);
    assert!(!client.receiver().deflate_negotiated() && !server.receiver().deflate_negotiated());
    let (client, server, answer) = handshake(Config::default(), deflate_config(|_| {}));
    assert_eq!(answer, None);
    assert!(!client.receiver().deflate_negotiated() && !server.receiver().deflate_negotiated());
}

#[test]
fn messages_round_trip_both_ways_and_shrink() {
    let (mut client, mut server, _) = handshake(deflate_config(|_| {}), deflate_config(|_| {}));
    let messages = sample_messages();
    for chunk in [1 << 20, 1000, 7] {
        let (received, wire) = deliver(&mut client, &mut server, &messages, chunk);
        assert_eq!(received, messages, "client to server, chunk {chunk}");
        let total: usize = messages.iter().map(|m| if let Message::Text(t) = m { t.len() } else { 0 }).sum();
        assert!(wire.len() < total / 3, "JSON compresses: {} bytes on the wire for {total} of text", wire.len());
        let (received, _) = deliver(&mut server, &mut client, &messages, chunk);
        assert_eq!(received, messages, "server to client, chunk {chunk}");
    }
}

#[test]
fn context_takeover_on_either_side_and_both() {
    for (own, peer) in [(true, true), (true, false), (false, true)] {
        let config = || {
            deflate_config(|d| {
                d.own_context_takeover = own;
                d.peer_context_takeover = peer;
            })
        };
        let (mut client, mut server, answer) = handshake(config(), config());
        let answer = answer.unwrap();
        // Each side's policy: a side that keeps no context of its own says so.
        assert_eq!(answer.contains("server_no_context_takeover"), !own || !peer, "{answer}");
        let messages: Vec<Message> = (0..20).map(|i| Message::Text(format!("{}{i}", json(10)))).collect();
        let (received, wire) = deliver(&mut client, &mut server, &messages, 100);
        assert_eq!(received, messages);
        let (received, _) = deliver(&mut server, &mut client, &messages, 100);
        assert_eq!(received, messages);
        assert!(!wire.is_empty());
    }
}

#[test]
fn every_window_size_including_8() {
    for server_bits in 9..=15 {
        for client_bits in 8..=15 {
            let client = deflate_config(|d| d.peer_max_window_bits = server_bits);
            let server = deflate_config(|d| d.peer_max_window_bits = client_bits);
            let (mut client, mut server, answer) = handshake(client, server);
            let answer = answer.unwrap();
            if server_bits < 15 {
                assert!(answer.contains(&format!("server_max_window_bits={server_bits}")), "{answer}");
            }
            if client_bits < 15 {
                assert!(answer.contains(&format!("client_max_window_bits={client_bits}")), "{answer}");
            }
            let messages =
                vec![Message::Text(json(40)), Message::Binary(json(20).into_bytes()), Message::Text(String::new())];
            let (received, wire) = deliver(&mut client, &mut server, &messages, 4096);
            assert_eq!(received, messages);
            // A client held to 8 bits cannot compress (zlib has no 256-byte
            // raw window): every message goes out plain, which is allowed.
            let first_frames_compressed = decode_frames(&wire).iter().any(|f| f.rsv & 0b100 != 0);
            assert_eq!(first_frames_compressed, client_bits > 8, "client bits {client_bits}");
            let (received, _) = deliver(&mut server, &mut client, &messages, 4096);
            assert_eq!(received, messages);
        }
    }
}

#[test]
fn rsv1_only_on_the_first_frame_and_small_messages_go_plain() {
    let mut client_config = deflate_config(|d| d.threshold = 100);
    client_config.send_frame_size = 64;
    let (mut client, mut server, _) = handshake(client_config, deflate_config(|_| {}));
    let messages = vec![Message::Text(json(50)), Message::Text("tiny".into())];
    let (received, wire) = deliver(&mut client, &mut server, &messages, 1 << 20);
    assert_eq!(received, messages);
    let frames = decode_frames(&wire);
    assert!(frames.len() > 3, "split into frames of 64 bytes");
    assert_eq!(frames[0].rsv, 0b100, "first frame of the compressed message");
    let last = frames.len() - 1;
    assert!(frames[1..last].iter().all(|f| f.rsv == 0 && f.opcode == 0), "continuations carry no RSV1");
    assert_eq!((frames[last].rsv, frames[last].payload.as_slice()), (0, &b"tiny"[..]), "below the threshold: plain");
    // Control frames are never compressed.
    client.ping(&[b'x'; 100]).unwrap();
    client.close(1000.into(), "bye").unwrap();
    let mut out = Vec::new();
    client.take_output(&mut out);
    assert!(decode_frames(&out).iter().all(|f| f.rsv == 0));
}

/// A masked frame with the given RSV bits.
fn frame_rsv(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    RawFrame::new(fin, opcode, mask, payload).rsv(rsv).encode()
}

/// Connections with permessage-deflate in force, made without a handshake.
fn deflate_pair(max_message_size: usize) -> (Connection, Connection) {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut config = deflate_config(|d| d.threshold = 0);
    config.max_message_size = max_message_size;
    config.max_frame_size = max_message_size;
    (
        Connection::with_extensions(Role::Client, config.clone(), Some(params)),
        Connection::with_extensions(Role::Server, config, Some(params)),
    )
}

#[test]
fn a_compression_bomb_fails_with_1009_and_memory_stays_near_the_limit() {
    // 16 MiB of zeros deflate to about 16 KiB; the server allows 1 MiB.
    let (mut client, _) = deflate_pair(16 << 20);
    let (_, mut server) = deflate_pair(1 << 20);
    client.send_binary(&vec![0u8; 16 << 20]).unwrap();
    let mut wire = Vec::new();
    client.take_output(&mut wire);
    assert!(wire.len() < 32 << 10, "the bomb is small: {} bytes", wire.len());
    server.receive(&wire);
    let error = server.poll_event().unwrap_err();
    assert!(matches!(error, ProtocolError::LimitExceeded { limit: Limit::MaxMessageSize, max, .. } if max == 1 << 20));
    assert_eq!(error.close_code(), 1009.into());
    assert_failing(&mut server, 1009);
    // What the failure kept is let go; what inflated never passed the limit.
    assert!(server.buffer_capacity() < 2 << 20, "{} bytes held", server.buffer_capacity());
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    let (_, mut server) = deflate_pair(1 << 20);
    // RSV1 set, payload: a deflate block of the reserved type 3.
    server.receive(&frame_rsv(true, 0b100, 0x2, Some([1, 2, 3, 4]), &[0xff; 32]));
    assert_eq!(server.poll_event(), Err(ProtocolError::InvalidCompressedData));
    assert_failing(&mut server, 1007);
}

#[test]
fn invalid_utf8_inside_compressed_text_fails_with_1007() {
    let (mut client, mut server) = deflate_pair(1 << 20);
    // Send bytes that are not UTF-8 as binary, then relabel the frame as text.
    client.send_binary(b"\xff\xfe not text at all, repeated repeated repeated repeated").unwrap();
    let mut wire = Vec::new();
    client.take_output(&mut wire);
    wire[0] = (wire[0] & 0xf0) | 0x1;
    server.receive(&wire);
    assert_eq!(server.poll_event(), Err(ProtocolError::InvalidUtf8));
    assert_failing(&mut server, 1007);
}

#[test]
fn rsv1_on_a_continuation_or_a_control_frame_fails_with_1002() {
    for bad in [
        [frame_rsv(false, 0b100, 0x1, Some([1, 2, 3, 4]), b""), frame_rsv(true, 0b100, 0x0, Some([1, 2, 3, 4]), b"")]
            .concat(),
        frame_rsv(true, 0b100, 0x9, Some([1, 2, 3, 4]), b"ping"),
        frame_rsv(true, 0b010, 0x1, Some([1, 2, 3, 4]), b"rsv2"),
    ] {
        let (_, mut server) = deflate_pair(1 << 20);
        server.receive(&bad);
        assert!(matches!(server.poll_event(), Err(ProtocolError::ReservedBits(_))), "{bad:x?}");
        assert_failing(&mut server, 1002);
    }
}

#[test]
fn compressed_stream_fed_a_byte_at_a_time_gives_the_same_messages() {
    let messages = sample_messages();
    let (mut client, mut server) = deflate_pair(1 << 20);
    let (whole, _) = deliver(&mut client, &mut server, &messages, 1 << 20);
    let (mut client, mut server) = deflate_pair(1 << 20);
    let (bytewise, _) = deliver(&mut client, &mut server, &messages, 1);
    assert_eq!(whole, messages);
    assert_eq!(bytewise, messages);
}

#[test]
fn a_malformed_offer_never_panics_and_is_declined() {
    for offer in [
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=99999999999999999999",
        "permessage-deflate; x=\"",
        "permessage-deflate;;;",
        "permessage-deflate; server_no_context_takeover=\"\"",
    ] {
        let request = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {offer}\r\n\r\n"
        );
        match ServerHandshake::new(deflate_config(|_| {})).receive(request.as_bytes()) {
            Ok(ServerProgress::Request(request)) => match request.into_upgrade() {
                Ok(upgrade) => {
                    let (response, conn) = upgrade.accept(Accept::new()).unwrap();
                    assert!(!String::from_utf8_lossy(&response).contains("permessage-deflate"), "{offer}");
                    assert!(!conn.receiver().deflate_negotiated());
                }
                Err(error) => assert_eq!(error.http_status(), Some(400), "{offer}"),
            },
            other => panic!("{offer}: {other:?}"),
        }
    }
}

/// Found by the `connection_deflate` fuzz target: fed whole, a compressed text
/// frame failed as corrupt deflate data; fed a byte at a time, the text it had
/// already inflated failed UTF-8 validation first. What inflates before an
/// inflate error is now validated first, so the first error in the stream
/// wins however the input is cut.
#[test]
fn inflate_and_utf8_errors_come_in_stream_order_for_any_chunking() {
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 8,
        client_max_window_bits: 14,
    };
    // A masked, compressed, unfinished text frame declaring 66 bytes.
    let bytes = [0x41, 0xc2, 0x85, 0xff, 0xff, 0x29, 0xef, 0xff, 0x82, 0x9b];
    let server = || Connection::with_extensions(Role::Server, Config::default(), Some(params));
    let mut whole = server();
    whole.receive(&bytes);
    let whole_error = whole.poll_event().unwrap_err();
    let mut bytewise = server();
    let mut bytewise_error = None;
    for byte in bytes {
        bytewise.receive(&[byte]);
        if let Err(error) = bytewise.poll_event() {
            bytewise_error = Some(error);
            break;
        }
    }
    assert_eq!(Some(whole_error.clone()), bytewise_error);
    assert_eq!(whole_error.close_code(), 1007.into());
}

/// What a server connection puts on the wire for `messages`, sent with
/// `send_prepared` (`prepared`) or with `send_text`/`send_binary`.
fn server_wire(server: &mut Connection, messages: &[Message], prepared: bool) -> Vec<u8> {
    for message in messages {
        let (text, payload) = match message {
            Message::Text(text) => (true, text.as_bytes()),
            Message::Binary(data) => (false, data.as_slice()),
            other => panic!("not a data message: {other:?}"),
        };
        match (prepared, text) {
            (true, true) => server.send_prepared(&PreparedMessage::text(message_text(message))).unwrap(),
            (true, false) => server.send_prepared(&PreparedMessage::binary(payload)).unwrap(),
            (false, true) => server.send_text(message_text(message)).unwrap(),
            (false, false) => server.send_binary(payload).unwrap(),
        }
    }
    let mut wire = Vec::new();
    server.take_output(&mut wire);
    wire
}

fn message_text(message: &Message) -> &str {
    match message {
        Message::Text(text) => text,
        _ => unreachable!(),
    }
}

#[test]
fn a_prepared_message_goes_out_as_send_text_or_send_binary_would_send_it() {
    // Compression off, compression without context takeover (shared),
    // with context takeover (each connection's own), an 8-bit window that
    // compresses nothing, and frames split by send_frame_size.
    let setups: Vec<(&str, Config, Config)> = vec![
        ("off", Config::default(), Config::default()),
        ("no takeover", deflate_config(|_| {}), deflate_config(|_| {})),
        (
            "takeover",
            deflate_config(|d| {
                d.own_context_takeover = true;
                d.peer_context_takeover = true;
            }),
            deflate_config(|d| {
                d.own_context_takeover = true;
                d.peer_context_takeover = true;
            }),
        ),
        ("small frames", deflate_config(|_| {}), {
            let mut config = deflate_config(|_| {});
            config.send_frame_size = 100;
            config
        }),
    ];
    let messages = sample_messages();
    for (name, client_config, server_config) in setups {
        let (mut client, mut prepared, _) = handshake(client_config.clone(), server_config.clone());
        let (_, mut plain, _) = handshake(client_config, server_config);
        let wire = server_wire(&mut prepared, &messages, true);
        assert_eq!(wire, server_wire(&mut plain, &messages, false), "{name}: different bytes");
        // And the client reads them back as they were sent.
        client.receive(&wire);
        let mut received = Vec::new();
        while let Some(event) = client.poll_event().unwrap() {
            received.push(event.to_message());
        }
        assert_eq!(received, messages, "{name}");
    }
}

#[test]
fn a_prepared_message_is_compressed_once_for_connections_that_share_settings() {
    let message = PreparedMessage::text(json(200));
    let mut wires = Vec::new();
    for _ in 0..5 {
        let (_, mut server, _) = handshake(deflate_config(|_| {}), deflate_config(|_| {}));
        server.send_prepared(&message).unwrap();
        assert!(message.is_compressed());
        let mut wire = Vec::new();
        server.take_output(&mut wire);
        wires.push(wire);
    }
    assert!(wires.iter().all(|wire| *wire == wires[0]));
    // Compressed on the wire: RSV1 set, and much shorter than the text.
    assert_eq!(wires[0][0], 0x80 | 0x40 | 0x1);
    assert!(wires[0].len() < message.payload().len() / 4, "{} bytes", wires[0].len());
    // A connection with another window size gets a form made for that size
    // (once), and still sends what send_text would.
    let smaller = deflate_config(|d| d.own_max_window_bits = 10);
    let (mut client, mut server, _) = handshake(deflate_config(|_| {}), smaller.clone());
    let (_, mut twin, _) = handshake(deflate_config(|_| {}), smaller);
    server.send_prepared(&message).unwrap();
    twin.send_text(std::str::from_utf8(message.payload()).unwrap()).unwrap();
    let (mut wire, mut expected) = (Vec::new(), Vec::new());
    server.take_output(&mut wire);
    twin.take_output(&mut expected);
    assert_eq!(wire, expected);
    assert_ne!(wire, wires[0], "a 10-bit window should compress differently");
    client.receive(&wire);
    assert_eq!(client.poll_event().unwrap().map(|e| e.to_message()), Some(Message::Text(json(200))));
}

#[test]
fn an_incompressible_prepared_message_goes_uncompressed() {
    let noise = pseudo_random(4000, 5);
    let message = PreparedMessage::binary(noise.clone());
    let (mut client, mut server, _) = handshake(deflate_config(|_| {}), deflate_config(|_| {}));
    server.send_prepared(&message).unwrap();
    assert!(!message.is_compressed());
    let mut wire = Vec::new();
    server.take_output(&mut wire);
    assert_eq!(wire[0], 0x80 | 0x2, "RSV1 must be clear");
    client.receive(&wire);
    assert_eq!(client.poll_event().unwrap().map(|e| e.to_message()), Some(Message::Binary(noise)));
}
