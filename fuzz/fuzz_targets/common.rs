//! The oracle shared by the connection targets: the same bytes fed whole and
//! in arbitrary chunks must give the same events, error, state and output, and
//! the buffers must stay proportional to the input.

use rfc6455::{Config, Connection, DeflateParams, Message, ProtocolError, Role, State};

/// Small limits, so that the limit paths are reached by short inputs.
pub fn config(seed: u8) -> Config {
    let mut config = Config::default();
    config.max_frame_size = 1 << 16;
    config.max_message_size = 1 << 18;
    config.max_fragments = 64;
    config.read_buffer_size = 64 + usize::from(seed);
    config.rng_seed = Some([seed; 32]);
    config
}

#[derive(Debug, PartialEq, Eq)]
pub struct Trace {
    pub events: Vec<Message>,
    pub error: Option<ProtocolError>,
    pub output: Vec<u8>,
    pub state: State,
}

/// Drains events, taking output after each one.
fn drain(conn: &mut Connection, trace: &mut Trace) {
    // Bounded: every event consumes input bytes, and the input is finite.
    loop {
        match conn.poll_event() {
            Ok(Some(event)) => trace.events.push(event.to_message()),
            Ok(None) => break,
            Err(error) => {
                // Sticky: asking again gives the same error.
                assert_eq!(conn.poll_event(), Err(error.clone()));
                trace.error = Some(error);
                break;
            }
        }
        conn.take_output(&mut trace.output);
    }
    conn.take_output(&mut trace.output);
}

/// Feeds `data` in the chunks `cuts` describes (each byte a chunk length,
/// 0 meaning "whole rest"), alternating `receive` and `read_buffer` so both
/// input paths are covered.
/// permessage-deflate parameters picked by the seed, when `deflate` is set.
fn deflate_params(deflate: bool, seed: u8) -> Option<DeflateParams> {
    deflate.then(|| DeflateParams {
        server_no_context_takeover: seed & 1 != 0,
        client_no_context_takeover: seed & 2 != 0,
        server_max_window_bits: 8 + (seed >> 2) % 8,
        client_max_window_bits: 8 + (seed >> 5) % 8,
    })
}

pub fn run(role: Role, deflate: bool, seed: u8, data: &[u8], cuts: &[u8]) -> Trace {
    let config = config(seed);
    // Inflating may legitimately produce up to a whole message from little input.
    let allowance = if deflate { config.max_message_size + 1 } else { 0 };
    let mut conn = Connection::with_extensions(role, config, deflate_params(deflate, seed));
    let mut trace = Trace { events: Vec::new(), error: None, output: Vec::new(), state: State::Open };
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let want = cuts.get(i).map_or(rest.len(), |&c| if c == 0 { rest.len() } else { usize::from(c) });
        let n = want.min(rest.len());
        if i % 2 == 0 {
            conn.receive(&rest[..n]);
        } else {
            let buf = conn.read_buffer();
            let n = n.min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            conn.commit_read(n);
            rest = &rest[n..];
            i += 1;
            drain(&mut conn, &mut trace);
            check_memory(&conn, data.len(), allowance);
            continue;
        }
        rest = &rest[n..];
        i += 1;
        drain(&mut conn, &mut trace);
        check_memory(&conn, data.len(), allowance);
    }
    conn.receive_eof();
    drain(&mut conn, &mut trace);
    trace.state = conn.state();
    trace
}

/// Memory follows the bytes received: never more than a small multiple of
/// the input plus the read buffer (plus, with compression, one message).
fn check_memory(conn: &Connection, input: usize, allowance: usize) {
    let held = conn.buffer_capacity();
    assert!(held <= 4 * input + (64 << 10) + allowance, "{held} bytes held for {input} bytes of input");
}

/// The whole oracle for one role.
pub fn check(role: Role, deflate: bool, input: &[u8]) {
    let Some((&seed, rest)) = input.split_first() else { return };
    let cut_len = usize::from(seed % 16);
    let (cuts, data) = rest.split_at(cut_len.min(rest.len()));
    let whole = run(role, deflate, seed, data, &[]);
    let chunked = run(role, deflate, seed, data, cuts);
    assert_eq!(whole, chunked, "chunking changed the result");
    let bytes = run(role, deflate, seed, data, &[1]);
    let single: Vec<u8> = std::iter::repeat_n(1, data.len()).collect();
    let one_by_one = run(role, deflate, seed, data, &single);
    assert_eq!(bytes.events, one_by_one.events);
    assert_eq!(whole, one_by_one, "byte-at-a-time changed the result");
}
