//! How input is cut must not matter: the same bytes fed whole, at random
//! chunk boundaries or one byte at a time, through `receive` or through
//! `read_buffer`/`commit_read`, give the same events, the same final error and
//! the same output bytes.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use rfc6455::{Config, Connection, Message, ProtocolError, Role, State};
use support::*;

// ---- Valid streams ----

/// One message or control frame of a valid stream.
#[derive(Clone, Debug)]
enum Item {
    Text(String),
    Binary(Vec<u8>),
    /// A message cut at `cuts` (byte offsets, possibly inside a code point),
    /// with a ping or pong after some of the fragments.
    Fragmented {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<usize>,
        controls: Vec<Option<(bool, Vec<u8>)>>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// A valid stream: items and an optional final close frame.
#[derive(Clone, Debug)]
struct Stream {
    items: Vec<Item>,
    /// `Some(None)`: an empty close; `Some(Some((code, reason)))`: with a code.
    close: Option<Option<(u16, String)>>,
    /// Seeds the masking keys.
    key_seed: u64,
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 ]{0,40}", "[aé€😀ऄ\u{10FFFF}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}]{0,40}", "\\PC{0,30}",]
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![8 => vec(any::<u8>(), 0..300), 1 => vec(any::<u8>(), 60_000..70_000)]
}

fn control_payload() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=125)
}

fn fragmented_strategy() -> impl Strategy<Value = Item> {
    (
        any::<bool>(),
        text_strategy(),
        vec(any::<u8>(), 0..200),
        vec(any::<Index>(), 0..6),
        vec(proptest::option::weighted(0.4, (any::<bool>(), control_payload())), 6),
    )
        .prop_map(|(text, string, bytes, cuts, controls)| {
            let payload = if text { string.into_bytes() } else { bytes };
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            Item::Fragmented { text, payload, cuts, controls }
        })
}

fn item_strategy() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => text_strategy().prop_map(Item::Text),
        2 => bytes_strategy().prop_map(Item::Binary),
        3 => fragmented_strategy(),
        1 => control_payload().prop_map(Item::Ping),
        1 => control_payload().prop_map(Item::Pong),
    ]
}

fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![Just(1000u16), 1000..=1003u16, 1007..=1014u16, 3000..=4999u16]
}

fn reason_strategy() -> impl Strategy<Value = String> {
    "\\PC{0,20}".prop_map(|mut s: String| {
        while s.len() > 123 {
            s.pop();
        }
        s
    })
}

fn stream_strategy() -> impl Strategy<Value = Stream> {
    (
        vec(item_strategy(), 0..8),
        proptest::option::of(proptest::option::weighted(0.8, (close_code(), reason_strategy()))),
        any::<u64>(),
    )
        .prop_map(|(items, close, key_seed)| Stream { items, close, key_seed })
}

/// Encodes a stream as `sender` would send it (masked for a client), and
/// returns the messages the receiving end should report.
fn encode_stream(stream: &Stream, sender: Role) -> (Vec<u8>, Vec<Message>) {
    let mut state = stream.key_seed | 1;
    let mut next_key = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state as u32).to_be_bytes()
    };
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    let mut put = |bytes: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]| {
        let mask = (sender == Role::Client).then(&mut next_key);
        bytes.extend(frame(fin, opcode, mask, payload));
    };
    for item in &stream.items {
        match item {
            Item::Text(text) => {
                put(&mut bytes, true, TEXT, text.as_bytes());
                expected.push(Message::Text(text.clone()));
            }
            Item::Binary(data) => {
                put(&mut bytes, true, BINARY, data);
                expected.push(Message::Binary(data.clone()));
            }
            Item::Ping(data) => {
                put(&mut bytes, true, PING, data);
                expected.push(Message::Ping(data.clone()));
            }
            Item::Pong(data) => {
                put(&mut bytes, true, PONG, data);
                expected.push(Message::Pong(data.clone()));
            }
            Item::Fragmented { text, payload, cuts, controls } => {
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(payload.len());
                let pieces = bounds.len() - 1;
                for i in 0..pieces {
                    let opcode = match (i, text) {
                        (0, true) => TEXT,
                        (0, false) => BINARY,
                        _ => CONT,
                    };
                    let last = i + 1 == pieces;
                    put(&mut bytes, last, opcode, &payload[bounds[i]..bounds[i + 1]]);
                    if !last && let Some(Some((ping, data))) = controls.get(i) {
                        put(&mut bytes, true, if *ping { PING } else { PONG }, data);
                        expected.push(if *ping { Message::Ping(data.clone()) } else { Message::Pong(data.clone()) });
                    }
                }
                expected.push(if *text {
                    Message::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::Binary(payload.clone())
                });
            }
        }
    }
    match &stream.close {
        None => {}
        Some(None) => {
            put(&mut bytes, true, CLOSE, b"");
            expected.push(Message::Close(None));
        }
        Some(Some((code, reason))) => {
            put(&mut bytes, true, CLOSE, &close_payload(*code, reason));
            expected.push(close_msg(*code, reason));
        }
    }
    (bytes, expected)
}

// ---- Running a connection over chunked input ----

#[derive(Clone, Copy, Debug)]
enum Feed {
    Receive,
    ReadBuffer,
}

#[derive(Clone, Copy, Debug)]
enum Drain {
    /// Take the output after every `poll_event` result.
    EachEvent,
    /// Take it only once everything has been fed.
    AtEnd,
}

/// Everything observable about a run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    messages: Vec<Message>,
    error: Option<ProtocolError>,
    /// What polling returned after `receive_eof`.
    after_eof: Result<(), ProtocolError>,
    output: Vec<u8>,
    state: State,
    close_transport: bool,
}

fn run(role: Role, config: &Config, bytes: &[u8], cuts: &[usize], feed: Feed, drain: Drain) -> Run {
    let mut conn = Connection::new(role, config.clone());
    let mut messages = Vec::new();
    let mut error = None;
    let mut output = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let piece = &bytes[start..end];
        start = end;
        match feed {
            Feed::Receive => conn.receive(piece),
            Feed::ReadBuffer => read_through(&mut conn, piece, |_| {}),
        }
        poll_all(&mut conn, &mut messages, &mut error, &mut output, drain);
    }
    conn.receive_eof();
    let before = error.clone();
    poll_all(&mut conn, &mut messages, &mut error, &mut output, drain);
    let after_eof = match (&before, &error) {
        (None, Some(e)) => Err(e.clone()),
        _ => Ok(()),
    };
    conn.take_output(&mut output);
    Run {
        messages,
        error: before,
        after_eof,
        output,
        state: conn.state(),
        close_transport: conn.should_close_transport(),
    }
}

fn poll_all(
    conn: &mut Connection,
    messages: &mut Vec<Message>,
    error: &mut Option<ProtocolError>,
    output: &mut Vec<u8>,
    drain: Drain,
) {
    for _ in 0..LOOP_BOUND {
        let result = conn.poll_event().map(|e| e.map(|e| e.to_message()));
        if let Drain::EachEvent = drain {
            conn.take_output(output);
        }
        match result {
            Ok(Some(message)) => {
                assert!(error.is_none(), "event {message:?} after the failure {error:?}");
                messages.push(message);
            }
            Ok(None) => {
                assert!(error.is_none(), "Ok(None) after the failure {error:?}");
                return;
            }
            Err(e) => {
                // Sticky: the same error on every later poll.
                if let Some(previous) = error.as_ref() {
                    assert_eq!(previous, &e, "the error changed");
                }
                *error = Some(e);
                return;
            }
        }
    }
    panic!("poll_all: loop bound reached");
}

fn cut_points(len: usize, picks: &[Index], bytewise: bool) -> Vec<usize> {
    if bytewise && len <= 600 {
        return (1..len).collect();
    }
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Runs `bytes` whole and cut at `cuts`, each way of feeding and draining,
/// and checks that every run matches the whole one. Returns the whole runs.
fn check_chunking(role: Role, config: &Config, bytes: &[u8], cuts: &[usize]) -> Result<Run, TestCaseError> {
    let mut first = None;
    for drain in [Drain::EachEvent, Drain::AtEnd] {
        let whole = run(role, config, bytes, &[], Feed::Receive, drain);
        for feed in [Feed::Receive, Feed::ReadBuffer] {
            let chunked = run(role, config, bytes, cuts, feed, drain);
            prop_assert!(chunked == whole, "{feed:?} {drain:?} cuts {cuts:?}:\nwhole {whole:?}\nchunked {chunked:?}");
        }
        first.get_or_insert(whole);
    }
    Ok(first.unwrap())
}

/// What the receiving end should send back for a valid stream when output is
/// taken after every event: a pong per ping, then the echo of the close.
fn expected_replies(expected: &[Message]) -> Vec<(bool, u8, Vec<u8>)> {
    expected
        .iter()
        .filter_map(|m| match m {
            Message::Ping(data) => Some((true, PONG, data.clone())),
            Message::Close(None) => Some((true, CLOSE, vec![])),
            Message::Close(Some(frame)) => Some((true, CLOSE, frame.code.as_u16().to_be_bytes().to_vec())),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_events_and_output_do_not_depend_on_chunking(
        stream in stream_strategy(),
        picks in vec(any::<Index>(), 0..24),
        bytewise in any::<bool>(),
    ) {
        let (bytes, expected) = encode_stream(&stream, Role::Client);
        let cuts = cut_points(bytes.len(), &picks, bytewise);
        let whole = check_chunking(Role::Server, &Config::default(), &bytes, &cuts)?;
        prop_assert!(whole.messages == expected, "events differ from the stream sent");
        prop_assert_eq!(whole.error, None);
        prop_assert_eq!(parse_frames(&whole.output, false), expected_replies(&expected));
        let closed = stream.close.is_some();
        prop_assert_eq!(whole.after_eof.is_err(), !closed);
        prop_assert_eq!(whole.state, State::Closed); // by the close or by the EOF
        prop_assert!(whole.close_transport);
    }

    #[test]
    fn client_events_and_output_do_not_depend_on_chunking(
        stream in stream_strategy(),
        picks in vec(any::<Index>(), 0..24),
        bytewise in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let (bytes, expected) = encode_stream(&stream, Role::Server);
        let cuts = cut_points(bytes.len(), &picks, bytewise);
        let whole = check_chunking(Role::Client, &seeded(seed), &bytes, &cuts)?;
        prop_assert!(whole.messages == expected, "events differ from the stream sent");
        prop_assert_eq!(whole.error, None);
        prop_assert_eq!(parse_frames(&whole.output, true), expected_replies(&expected));
    }
}

// ---- Arbitrary, mostly invalid, input ----

/// A frame with every header field random: any 7-bit length marker (126 and
/// 127 followed by any extended length), any opcode, RSV bits, mask or not
/// (masked as `sender` would, most of the time).
fn noisy_frame(sender: Role) -> impl Strategy<Value = Vec<u8>> {
    let opcode = prop_oneof![6 => prop::sample::select(vec![CONT, TEXT, BINARY, CLOSE, PING, PONG]), 1 => 0u8..16];
    let rsv = prop_oneof![8 => Just(0u8), 1 => 0u8..8];
    let len7 = prop_oneof![4 => Just(None), 2 => (0u8..126).prop_map(Some), 1 => Just(Some(126)), 1 => Just(Some(127))];
    let payload = prop_oneof![
        vec(any::<u8>(), 0..40),
        text_strategy().prop_map(String::into_bytes),
        (any::<u16>(), text_strategy()).prop_map(|(code, reason)| close_payload(code, &reason)),
        (close_code(), reason_strategy()).prop_map(|(code, reason)| close_payload(code, &reason)),
        vec(any::<u8>(), 100..400),
    ];
    let masked = if sender == Role::Client { 0.9 } else { 0.1 };
    (
        proptest::bool::weighted(0.8),
        rsv,
        opcode,
        proptest::option::weighted(masked, any::<[u8; 4]>()),
        len7,
        any::<u64>(),
        payload,
    )
        .prop_map(|(fin, rsv, opcode, mask, len7, ext, payload)| {
            let mut raw = RawFrame::new(fin, opcode, mask, &payload).rsv(rsv);
            match len7 {
                // A correct header for the payload.
                None => raw.encode(),
                Some(marker) => {
                    raw.form = match marker {
                        126 => LenForm::Ext16,
                        127 => LenForm::Ext64,
                        _ => LenForm::Short,
                    };
                    raw.declared_len = Some(match marker {
                        126 => ext & 0xFFFF,
                        127 => [ext, ext >> 40, ext & 0x1FFFF][(ext % 3) as usize],
                        short => u64::from(short),
                    });
                    raw.encode()
                }
            }
        })
}

/// Input for a connection whose peer is `sender`: random bytes, random
/// frames, or a valid stream with a few bytes flipped, a random frame spliced
/// in between two valid streams, and perhaps its tail cut off.
fn noisy_input(sender: Role) -> impl Strategy<Value = Vec<u8>> {
    let spliced = (
        stream_strategy(),
        proptest::option::of(noisy_frame(sender)),
        stream_strategy(),
        vec((any::<Index>(), 1u8..=255), 0..3),
        any::<Index>(),
    )
        .prop_map(move |(a, noise, b, flips, keep)| {
            let mut bytes = encode_stream(&Stream { close: None, ..a }, sender).0;
            bytes.extend(noise.unwrap_or_default());
            bytes.extend(encode_stream(&b, sender).0);
            if !bytes.is_empty() {
                for (at, bits) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= bits;
                }
            }
            let keep = keep.index(bytes.len() + 1).max(bytes.len() * 3 / 4);
            bytes.truncate(keep);
            bytes
        });
    prop_oneof![
        1 => vec(any::<u8>(), 0..200),
        2 => vec(noisy_frame(sender), 0..8).prop_map(|frames| frames.concat()),
        5 => spliced,
    ]
}

fn noisy_config() -> impl Strategy<Value = (Role, Config)> {
    let defaults = Config::default();
    // (max_frame_size, max_message_size, max_fragments)
    let limits = prop_oneof![
        4 => Just((defaults.max_frame_size, defaults.max_message_size, defaults.max_fragments)),
        1 => Just((300, 500, 4)),
        1 => Just((10, 20, 1)),
    ];
    (prop::sample::select(vec![Role::Server, Role::Client]), proptest::bool::weighted(0.2), limits, any::<u8>())
        .prop_map(|(role, unmasked, (frame, message, fragments), seed)| {
            let mut config = seeded(seed);
            config.accept_unmasked_frames = unmasked;
            config.max_frame_size = frame;
            config.max_message_size = message;
            config.max_fragments = fragments;
            (role, config)
        })
}

fn noisy_case() -> impl Strategy<Value = (Role, Config, Vec<u8>)> {
    noisy_config().prop_flat_map(|(role, config)| {
        let peer = if role == Role::Server { Role::Client } else { Role::Server };
        (Just(role), Just(config), noisy_input(peer))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_gives_the_same_events_and_error_for_any_chunking(
        (role, config, bytes) in noisy_case(),
        picks in vec(any::<Index>(), 0..24),
        bytewise in any::<bool>(),
    ) {
        let cuts = cut_points(bytes.len(), &picks, bytewise);
        let whole = check_chunking(role, &config, &bytes, &cuts)?;
        // A failure leaves its close frame, with the error's code, as the last
        // frame of the output (nothing else closes in these runs).
        if let Some(error) = &whole.error {
            prop_assert_eq!(whole.state, State::Closed);
            prop_assert!(whole.close_transport);
            let frames = parse_frames(&whole.output, role == Role::Client);
            let last = frames.last();
            prop_assert!(last.is_some_and(|f| f.1 == CLOSE), "no close frame after {:?}", error);
            prop_assert_eq!(&last.unwrap().2[..], &error.close_code().as_u16().to_be_bytes()[..]);
        }
    }
}
