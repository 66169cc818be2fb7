//! Arbitrary messages and fragmentations sent by one end and decoded by the
//! other, with or without permessage-deflate: what arrives must equal what
//! was sent, in both directions. Prepared messages (one shared across the
//! input, as a broadcast would) go through the same check.
#![no_main]

use arbitrary::Arbitrary;
use rfc6455::{Config, Connection, DeflateConfig, DeflateParams, Message, PreparedMessage, Role};

#[derive(Arbitrary, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    /// A message sent in pieces, cut at the given byte positions.
    Fragmented {
        text: String,
        binary: bool,
        cuts: Vec<u16>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The input's prepared message (see `Input::prepared`).
    Prepared,
}

#[derive(Arbitrary, Debug)]
struct Input {
    client_sends: bool,
    /// permessage-deflate: None, or Some(context takeover on both sides).
    deflate: Option<bool>,
    /// Compression level (mod 10) and window bits (9 + mod 7): the receiver
    /// inflates with exactly the negotiated window, so a match that reaches
    /// further fails the check.
    level: u8,
    window: u8,
    /// One message prepared once and sent by every `Op::Prepared`.
    prepared: (bool, String),
    frame_size: u16,
    ops: Vec<Op>,
    chunk: u8,
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let mut config = Config::default();
    config.send_frame_size = usize::from(input.frame_size).max(1);
    config.rng_seed = Some([7; 32]);
    let (from_role, to_role) =
        if input.client_sends { (Role::Client, Role::Server) } else { (Role::Server, Role::Client) };
    let bits = 9 + input.window % 7;
    let params = input.deflate.map(|takeover| DeflateParams {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    });
    if params.is_some() {
        let mut deflate = DeflateConfig::default();
        deflate.level = u32::from(input.level % 10);
        config.deflate = Some(deflate);
    }
    let mut from = Connection::with_extensions(from_role, config.clone(), params);
    let mut to = Connection::with_extensions(to_role, config, params);
    let (prepared_binary, prepared_text) = &input.prepared;
    let (prepared, prepared_message) = if *prepared_binary {
        (PreparedMessage::binary(prepared_text.as_bytes()), Message::Binary(prepared_text.as_bytes().to_vec()))
    } else {
        (PreparedMessage::text(prepared_text.as_str()), Message::Text(prepared_text.clone()))
    };
    let mut expected = Vec::new();
    for op in input.ops.iter().take(64) {
        match op {
            Op::Text(text) => {
                from.send_text(text).unwrap();
                expected.push(Message::Text(text.clone()));
            }
            Op::Binary(data) => {
                from.send_binary(data).unwrap();
                expected.push(Message::Binary(data.clone()));
            }
            Op::Fragmented { text, binary, cuts } => {
                let bytes = text.as_bytes();
                let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (bytes.len() + 1)).collect();
                points.sort_unstable();
                points.dedup();
                let mut start = 0;
                from.send_first_fragment(!binary, &bytes[..points.first().copied().unwrap_or(0)]).unwrap();
                start = start.max(points.first().copied().unwrap_or(0));
                for &point in points.iter().skip(1) {
                    from.send_fragment(&bytes[start..point], false).unwrap();
                    start = point;
                }
                from.send_fragment(&bytes[start..], true).unwrap();
                expected.push(if *binary { Message::Binary(bytes.to_vec()) } else { Message::Text(text.clone()) });
            }
            Op::Ping(data) => {
                let data = &data[..data.len().min(125)];
                from.ping(data).unwrap();
                expected.push(Message::Ping(data.to_vec()));
            }
            Op::Pong(data) => {
                let data = &data[..data.len().min(125)];
                from.pong(data).unwrap();
                expected.push(Message::Pong(data.to_vec()));
            }
            Op::Prepared => {
                from.send_prepared(&prepared).unwrap();
                expected.push(prepared_message.clone());
            }
        }
    }
    let mut wire = Vec::new();
    from.take_output(&mut wire);
    let chunk = usize::from(input.chunk).max(1);
    let mut received = Vec::new();
    for piece in wire.chunks(chunk) {
        to.receive(piece);
        while let Some(event) = to.poll_event().unwrap() {
            received.push(event.to_message());
        }
    }
    assert_eq!(received, expected);
});
