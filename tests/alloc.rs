//! No heap allocation per message in steady state (issue 6).
//!
//! A counting global allocator wraps the system one. Each scenario warms a
//! connection up (its buffers grow to what the traffic needs), then counts
//! every allocation and reallocation made while 10,000 more messages of the
//! same shape go through. Messages that fit the buffers must cost none.
//!
//! The counter is process-wide, so everything runs inside one `#[test]`: no
//! other test thread allocates while a scenario is being counted.

use std::alloc::System;

use rfc6455::{Config, Connection, Event, Role};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Messages counted per scenario, after warm-up.
const MESSAGES: usize = 10_000;
/// Messages per batch of input (one "read" from the transport).
const BATCH: usize = 50;
/// Batches run before counting starts.
const WARM_UP_BATCHES: usize = 20;

fn config(seed: u8) -> Config {
    let mut config = Config::default();
    config.rng_seed = Some([seed; 32]);
    config
}

/// Mixed text of exactly `len` bytes: ASCII, 2-, 3- and 4-byte sequences.
fn mixed_text(len: usize) -> String {
    let pieces = ["a", "é", "€", "𝄞", "z", "ж", "字"];
    let mut text = String::with_capacity(len);
    let mut i = 0;
    while text.len() < len {
        let piece = pieces[i % pieces.len()];
        if text.len() + piece.len() <= len {
            text.push_str(piece);
        } else {
            text.push('x');
        }
        i += 1;
    }
    text
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Binary,
}

#[derive(Clone, Copy, Debug)]
enum Input {
    /// `Connection::receive(&bytes)`: one copy into the receive buffer.
    Receive,
    /// `read_buffer` + `commit_read`: the transport writes into the buffer.
    ReadBuffer,
}

/// The wire bytes of `BATCH` messages as the client would send them, each cut
/// into `fragments` frames.
fn client_batch(kind: Kind, payload: &str, fragments: usize) -> Vec<u8> {
    let mut client = Connection::new(Role::Client, config(7));
    let mut wire = Vec::new();
    for _ in 0..BATCH {
        let bytes = payload.as_bytes();
        if fragments <= 1 {
            match kind {
                Kind::Text => client.send_text(payload).unwrap(),
                Kind::Binary => client.send_binary(bytes).unwrap(),
            }
        } else {
            let step = bytes.len().div_ceil(fragments);
            let mut chunks = bytes.chunks(step);
            client.send_first_fragment(matches!(kind, Kind::Text), chunks.next().unwrap()).unwrap();
            let rest: Vec<&[u8]> = chunks.collect();
            for (i, chunk) in rest.iter().enumerate() {
                client.send_fragment(chunk, i + 1 == rest.len()).unwrap();
            }
        }
        client.take_output(&mut wire);
    }
    wire
}

/// Feeds `bytes` to `conn` in reads of at most `read_size` bytes.
/// Returns the events and the receive buffers' largest capacity on the way.
fn feed(conn: &mut Connection, bytes: &[u8], input: Input, read_size: usize) -> (usize, usize) {
    let mut events = 0;
    let mut peak = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = match input {
            Input::Receive => {
                let n = rest.len().min(read_size);
                conn.receive(&rest[..n]);
                n
            }
            Input::ReadBuffer => {
                let buf = conn.read_buffer();
                let n = rest.len().min(read_size).min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                conn.commit_read(n);
                n
            }
        };
        rest = &rest[n..];
        peak = peak.max(conn.receiver().buffer_capacity());
        events += drain_echo(conn);
    }
    (events, peak)
}

/// Polls every event and echoes data messages through the sender, without
/// copying them (as `examples/echo_server.rs` does).
fn drain_echo(conn: &mut Connection) -> usize {
    let mut events = 0;
    let (receiver, sender) = conn.halves();
    while let Some(event) = receiver.poll_event(sender).expect("valid input") {
        match event {
            Event::Text(text) => sender.send_text(text).unwrap(),
            Event::Binary(data) => sender.send_binary(data).unwrap(),
            other => panic!("unexpected event {other:?}"),
        }
        events += 1;
    }
    events
}

/// Polls every event without answering.
fn drain(conn: &mut Connection) -> usize {
    let mut events = 0;
    while let Some(event) = conn.poll_event().expect("valid input") {
        assert!(matches!(event, Event::Text(_) | Event::Binary(_)), "unexpected event {event:?}");
        events += 1;
    }
    events
}

struct Scenario {
    name: String,
    allocations: usize,
    reallocations: usize,
    bytes_allocated: usize,
}

/// Server side: receives the client's masked frames, echoes them, and takes
/// the output into a reused buffer (the transport's write).
fn server_scenario(kind: Kind, size: usize, fragments: usize, input: Input, read_size: usize) -> Scenario {
    let payload = mixed_text(size);
    let wire = client_batch(kind, &payload, fragments);
    let mut server = Connection::new(Role::Server, config(1));
    let mut out = Vec::new();
    let mut capacities = (0, 0);
    let mut round = |server: &mut Connection, out: &mut Vec<u8>| {
        let (events, peak) = feed(server, &wire, input, read_size);
        assert_eq!(events, BATCH);
        capacities = (peak, server.receiver().buffer_capacity());
        server.take_output(out);
        assert!(!out.is_empty());
        out.clear();
    };
    for _ in 0..WARM_UP_BATCHES {
        round(&mut server, &mut out);
    }
    let region = Region::new(GLOBAL);
    for _ in 0..MESSAGES / BATCH {
        round(&mut server, &mut out);
    }
    let change = region.change();
    let reads = if read_size == usize::MAX { "as large as offered".to_string() } else { format!("of {read_size} B") };
    Scenario {
        name: format!(
            "server {kind:?} {size} B in {fragments} frame(s), {input:?}, reads {reads} \
             (receive buffers {} B while a batch is in, {} B after)",
            capacities.0, capacities.1
        ),
        allocations: change.allocations,
        reallocations: change.reallocations,
        bytes_allocated: change.bytes_allocated,
    }
}

/// Client side: sends messages (masked, with fresh keys) and receives the
/// server's unmasked echoes of them.
fn client_scenario(kind: Kind, size: usize) -> Scenario {
    let payload = mixed_text(size);
    // What the server sends back: the same messages, unmasked.
    let mut server = Connection::new(Role::Server, config(1));
    let mut echoes = Vec::new();
    for _ in 0..BATCH {
        match kind {
            Kind::Text => server.send_text(&payload).unwrap(),
            Kind::Binary => server.send_binary(payload.as_bytes()).unwrap(),
        }
    }
    server.take_output(&mut echoes);
    let mut client = Connection::new(Role::Client, config(2));
    let mut out = Vec::new();
    let round = |client: &mut Connection, out: &mut Vec<u8>| {
        for _ in 0..BATCH {
            match kind {
                Kind::Text => client.send_text(&payload).unwrap(),
                Kind::Binary => client.send_binary(payload.as_bytes()).unwrap(),
            }
        }
        client.take_output(out);
        assert!(out.len() > BATCH * size);
        out.clear();
        client.receive(&echoes);
        assert_eq!(drain(client), BATCH);
    };
    for _ in 0..WARM_UP_BATCHES {
        round(&mut client, &mut out);
    }
    let region = Region::new(GLOBAL);
    for _ in 0..MESSAGES / BATCH {
        round(&mut client, &mut out);
    }
    let change = region.change();
    Scenario {
        name: format!("client {kind:?} {size} B: send + take_output, receive + poll"),
        allocations: change.allocations,
        reallocations: change.reallocations,
        bytes_allocated: change.bytes_allocated,
    }
}

#[test]
fn no_heap_allocation_per_message_in_steady_state() {
    // Every scenario must make no allocation and no reallocation: the receive
    // buffer keeps the size reads are offered at (it once shrank after every
    // drained batch and regrew on the next read).
    let scenarios = [
        (server_scenario(Kind::Text, 1024, 1, Input::Receive, usize::MAX)),
        (server_scenario(Kind::Binary, 1024, 1, Input::Receive, usize::MAX)),
        (server_scenario(Kind::Text, 1024, 1, Input::ReadBuffer, 4096)),
        (server_scenario(Kind::Binary, 16, 1, Input::ReadBuffer, 4096)),
        // As a socket read does: fill whatever space is offered.
        (server_scenario(Kind::Binary, 16, 1, Input::ReadBuffer, usize::MAX)),
        (server_scenario(Kind::Text, 1024, 1, Input::ReadBuffer, usize::MAX)),
        // Reads that cut frames (and code points) anywhere.
        (server_scenario(Kind::Text, 1024, 1, Input::Receive, 1000)),
        // Fragmented messages go through the reassembly buffer.
        (server_scenario(Kind::Text, 1024, 4, Input::Receive, usize::MAX)),
        (server_scenario(Kind::Binary, 1024, 4, Input::ReadBuffer, 4096)),
        (client_scenario(Kind::Text, 1024)),
        (client_scenario(Kind::Binary, 16)),
    ];
    let mut failures = Vec::new();
    for s in &scenarios {
        let line = format!(
            "{}: {} allocations, {} reallocations, {} bytes over {MESSAGES} messages",
            s.name, s.allocations, s.reallocations, s.bytes_allocated
        );
        if s.allocations + s.reallocations > 0 {
            println!("FAIL      {line}");
            failures.push(line);
        } else {
            println!("ok        {line}");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
