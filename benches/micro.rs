//! Micro-benchmarks of the sans-IO core, each paired with tungstenite's
//! equivalent in the same run where it has one (issue 6).
//!
//! ```text
//! cargo bench --bench micro                 # everything (a few minutes)
//! cargo bench --bench micro -- decode/      # one group (criterion filter)
//! cargo bench --bench micro -- --quick      # criterion's quick mode
//! ```
//!
//! Groups: `header`, `decode`, `decode_offset`, `encode`, `unmask`, `utf8`,
//! `round_trip`. Within a group, the function names say whose code runs
//! (`rfc6455`, `tungstenite`, `memcpy`, `std`...) and the parameter is the
//! payload size (and alignment).

// Benchmarks are not the core: they may use clocks.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};
use std::time::Duration;

use criterion::{Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rfc6455::{Config, Connection, Event, FrameHeader, Role};
use tungstenite::Bytes;
use tungstenite::protocol::{Message, Role as TRole, WebSocketContext};

/// Payload sizes of the issue: the three length forms and their edges.
const SIZES: [usize; 6] = [0, 125, 126, 1 << 10, 16 << 10, 1 << 20];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

/// Bytes per second of payload; a message per iteration when there is none.
fn throughput(size: usize) -> Throughput {
    if size == 0 { Throughput::Elements(1) } else { Throughput::Bytes(size as u64) }
}

fn seeded(role: Role) -> Connection {
    let mut config = Config::default();
    config.rng_seed = Some([7; 32]);
    Connection::new(role, config)
}

/// Valid mixed UTF-8 of exactly `len` bytes (1-, 2-, 3- and 4-byte sequences).
fn mixed_text(len: usize) -> String {
    const PIECES: [&str; 10] = ["a", "é", "€", "𝄞", " ", "ж", "字", "ü", "😀", "z"];
    let mut text = String::with_capacity(len);
    let mut i = 0;
    while text.len() < len {
        let piece = PIECES[i % PIECES.len()];
        if text.len() + piece.len() <= len {
            text.push_str(piece);
        } else {
            text.push('x');
        }
        i += 1;
    }
    text
}

fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

/// A masked client frame, FIN set.
fn masked_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&KEY);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    frame
}

/// An in-memory stream for tungstenite: reads from `input` (rewound by the
/// benchmark), writes append to `output`. An exhausted input is `WouldBlock`,
/// as a non-blocking socket would say.
#[derive(Default)]
struct Mem {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite_context(role: TRole) -> WebSocketContext {
    WebSocketContext::new(role, None)
}

/// tungstenite as a server reading the one message in `wire`, from memory.
fn tungstenite_reads_one(b: &mut Bencher<'_>, wire: &[u8]) {
    let mut ctx = tungstenite_context(TRole::Server);
    let mut mem = Mem { input: wire.to_vec(), ..Mem::default() };
    b.iter(|| {
        mem.pos = 0;
        black_box(ctx.read(&mut mem).unwrap());
    });
}

/// Frame header decode: the three length forms, masked (as a server sees).
fn header(c: &mut Criterion) {
    let mut group = c.benchmark_group("header");
    for size in [125usize, 1 << 10, 1 << 20] {
        let frame = masked_frame(0x2, true, &binary(size));
        let head = frame[..frame.len() - size].to_vec();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("rfc6455", size_label(size)), &head, |b, head| {
            b.iter(|| FrameHeader::decode(black_box(head)).unwrap().unwrap());
        });
        group.bench_with_input(BenchmarkId::new("tungstenite", size_label(size)), &head, |b, head| {
            b.iter(|| {
                let mut cursor = Cursor::new(black_box(head.as_slice()));
                tungstenite::protocol::frame::FrameHeader::parse(&mut cursor).unwrap().unwrap()
            });
        });
    }
    group.finish();
}

/// A server receiving one masked client message: bytes in, event out.
fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        group.throughput(throughput(size));
        for (kind, opcode, payload) in [("binary", 0x2, binary(size)), ("text", 0x1, mixed_text(size).into_bytes())] {
            let wire = masked_frame(opcode, true, &payload);
            let id = format!("{}/{kind}", size_label(size));
            group.bench_with_input(BenchmarkId::new("rfc6455", &id), &wire, |b, wire| {
                let mut server = seeded(Role::Server);
                b.iter(|| {
                    server.receive(black_box(wire));
                    let event = server.poll_event().unwrap().unwrap();
                    assert!(matches!(event, Event::Binary(_) | Event::Text(_)));
                    black_box(event);
                });
            });
            // What `blocking::WebSocket::read` does: the message handed
            // over as an owned value, as tungstenite's is.
            group.bench_with_input(BenchmarkId::new("rfc6455 owned", &id), &wire, |b, wire| {
                let mut server = seeded(Role::Server);
                b.iter(|| {
                    server.receive(black_box(wire));
                    let message = server.poll_event().unwrap().unwrap().to_message();
                    assert!(matches!(message, rfc6455::Message::Binary(_) | rfc6455::Message::Text(_)));
                    black_box(message);
                });
            });
            group.bench_with_input(BenchmarkId::new("tungstenite", &id), &wire, |b, wire| {
                tungstenite_reads_one(b, wire)
            });
        }
    }
    group.finish();
}

/// Decode with the main payload at offset 0..3 (mod 8) in the receive
/// buffer: a small binary frame goes first in the same input, so that both
/// libraries see the same bytes and return two messages.
fn decode_offset(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_offset");
    for size in [1usize << 10, 16 << 10, 1 << 20] {
        let payload = binary(size);
        let main = masked_frame(0x2, true, &payload);
        let main_header = main.len() - size;
        for offset in 0..4usize {
            // The prefix frame is 6 + p bytes; choose p so that the main
            // payload starts at `offset` mod 8.
            let p = (offset + 16 - (6 + main_header) % 8) % 8;
            let mut wire = masked_frame(0x2, true, &binary(p));
            wire.extend_from_slice(&main);
            group.throughput(Throughput::Bytes((size + p) as u64));
            let id = format!("{}/+{offset}", size_label(size));
            group.bench_with_input(BenchmarkId::new("rfc6455", &id), &wire, |b, wire| {
                let mut server = seeded(Role::Server);
                b.iter(|| {
                    server.receive(black_box(wire));
                    black_box(server.poll_event().unwrap().unwrap());
                    black_box(server.poll_event().unwrap().unwrap());
                });
            });
            group.bench_with_input(BenchmarkId::new("tungstenite", &id), &wire, |b, wire| {
                let mut ctx = tungstenite_context(TRole::Server);
                let mut mem = Mem { input: wire.clone(), ..Mem::default() };
                b.iter(|| {
                    mem.pos = 0;
                    black_box(ctx.read(&mut mem).unwrap());
                    black_box(ctx.read(&mut mem).unwrap());
                });
            });
        }
    }
    group.finish();
}

/// Sending one message and taking the bytes for the transport: as a server
/// (unmasked) and as a client (masked with a fresh key per frame).
/// tungstenite's figure includes copying into its `Write` stream, which its
/// API cannot avoid; ours hands its buffer over with `take_output`.
fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        group.throughput(throughput(size));
        let data = binary(size);
        let text = mixed_text(size);
        let bytes = Bytes::from(data.clone());
        let utf8 = tungstenite::Utf8Bytes::from(text.clone());
        for (role, trole, role_name) in
            [(Role::Server, TRole::Server, "server"), (Role::Client, TRole::Client, "client")]
        {
            for kind in ["binary", "text"] {
                if role == Role::Client && kind == "text" {
                    continue; // the same as binary plus nothing: text is not validated on send
                }
                let id = format!("{}/{role_name}/{kind}", size_label(size));
                group.bench_function(BenchmarkId::new("rfc6455", &id), |b| {
                    let mut conn = seeded(role);
                    let mut out = Vec::new();
                    b.iter(|| {
                        if kind == "text" {
                            conn.send_text(black_box(&text)).unwrap();
                        } else {
                            conn.send_binary(black_box(&data)).unwrap();
                        }
                        conn.take_output(&mut out);
                        black_box(&out);
                        out.clear();
                    });
                });
                group.bench_function(BenchmarkId::new("tungstenite", &id), |b| {
                    let mut ctx = tungstenite_context(trole);
                    let mut mem = Mem::default();
                    b.iter(|| {
                        let message =
                            if kind == "text" { Message::Text(utf8.clone()) } else { Message::Binary(bytes.clone()) };
                        ctx.write(&mut mem, message).unwrap();
                        ctx.flush(&mut mem).unwrap();
                        black_box(&mem.output);
                        mem.output.clear();
                    });
                });
            }
        }
    }
    group.finish();
}

/// XOR unmasking in place against a plain copy of the same number of bytes,
/// at aligned and misaligned starts. fastwebsockets' `unmask` is there for
/// reference.
///
/// A received payload is unmasked once, long after the copy that brought it
/// in: small sizes take turns over several buffers (together within the
/// first-level cache), so that no iteration reads bytes the one before has
/// just written. Masking one small buffer over and over measures instead the
/// stall of loading bytes that two recent overlapping stores wrote, which
/// a payload never meets.
fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for size in [125usize, 1 << 10, 16 << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        let turns: usize = if size <= 1 << 10 { 16 } else { 1 }; // a power of two
        for offset in [0usize, 1, 2, 3] {
            let id = format!("{}/+{offset}", size_label(size));
            let mut bufs: Vec<Vec<u8>> = (0..turns).map(|_| binary(size + 8)).collect();
            let mut turn = 0;
            let mut next = move || {
                turn = (turn + 1) & (turns - 1);
                turn
            };
            group.bench_function(BenchmarkId::new("rfc6455", &id), |b| {
                b.iter(|| {
                    let buf = &mut bufs[next()];
                    rfc6455::apply_mask(black_box(&mut buf[offset..offset + size]), KEY, 0)
                });
            });
            group.bench_function(BenchmarkId::new("fastwebsockets", &id), |b| {
                b.iter(|| {
                    let buf = &mut bufs[next()];
                    fastwebsockets::unmask(black_box(&mut buf[offset..offset + size]), KEY)
                });
            });
            let src = binary(size + 8);
            group.bench_function(BenchmarkId::new("memcpy", &id), |b| {
                b.iter(|| {
                    let buf = &mut bufs[next()];
                    buf[offset..offset + size].copy_from_slice(black_box(&src[offset..offset + size]))
                });
            });
        }
    }
    group.finish();
}

/// UTF-8 validation of mixed non-ASCII text. `std` and `simdutf8` validate a
/// slice; the others are whole receive paths of a masked text message (copy
/// in, unmask, validate), with the same path for binary as the baseline: the
/// difference is what text costs. At 16 B (a chat line, a game tick) only
/// the single-read paths, ours and tungstenite's: there is nothing to split.
fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for size in [16usize, 64 << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        let text = mixed_text(size);
        let label = size_label(size);
        group.bench_function(BenchmarkId::new("std::str::from_utf8", &label), |b| {
            b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).unwrap().len());
        });
        group.bench_function(BenchmarkId::new("simdutf8", &label), |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(text.as_bytes())).unwrap().len());
        });
        let one_frame = masked_frame(0x1, true, text.as_bytes());
        let binary_frame = masked_frame(0x2, true, text.as_bytes());
        for (name, wire, read) in [
            ("rfc6455 binary, one frame, one read", &binary_frame, usize::MAX),
            ("rfc6455 text, one frame, one read", &one_frame, usize::MAX),
            ("rfc6455 text, one frame, 16 KiB reads", &one_frame, 16 << 10),
        ] {
            if read != usize::MAX && size <= read {
                continue; // the same as one read
            }
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                let mut server = seeded(Role::Server);
                b.iter(|| {
                    let mut events = 0;
                    for chunk in wire.chunks(read) {
                        server.receive(black_box(chunk));
                        while let Some(event) = server.poll_event().unwrap() {
                            black_box(event);
                            events += 1;
                        }
                    }
                    assert_eq!(events, 1);
                });
            });
        }
        group.bench_function(BenchmarkId::new("tungstenite text, one frame", &label), |b| {
            tungstenite_reads_one(b, &one_frame)
        });
        if size < 64 << 10 {
            continue;
        }
        // 64 fragments, received in one read.
        let mut fragmented = Vec::new();
        let step = size / 64;
        for (i, piece) in text.as_bytes().chunks(step).enumerate() {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            fragmented.extend_from_slice(&masked_frame(opcode, (i + 1) * step >= size, piece));
        }
        group.bench_function(BenchmarkId::new("rfc6455 text, 64 fragments, one read", &label), |b| {
            let mut server = seeded(Role::Server);
            b.iter(|| {
                server.receive(black_box(&fragmented));
                black_box(server.poll_event().unwrap().unwrap());
            });
        });
        group.bench_function(BenchmarkId::new("tungstenite text, 64 fragments", &label), |b| {
            tungstenite_reads_one(b, &fragmented)
        });
    }
    group.finish();
}

/// One message there and back in memory: client send, server receive and
/// echo, client receive.
fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    for size in [16usize, 1 << 10, 64 << 10] {
        group.throughput(Throughput::Bytes(size as u64));
        let data = binary(size);
        let text = mixed_text(size);
        for kind in ["binary", "text"] {
            let id = format!("{}/{kind}", size_label(size));
            group.bench_function(BenchmarkId::new("rfc6455", &id), |b| {
                let mut client = seeded(Role::Client);
                let mut server = seeded(Role::Server);
                let mut wire = Vec::new();
                b.iter(|| {
                    if kind == "text" {
                        client.send_text(&text).unwrap();
                    } else {
                        client.send_binary(&data).unwrap();
                    }
                    client.take_output(&mut wire);
                    server.receive(&wire);
                    wire.clear();
                    let (receiver, sender) = server.halves();
                    while let Some(event) = receiver.poll_event(sender).unwrap() {
                        match event {
                            Event::Text(text) => sender.send_text(text).unwrap(),
                            Event::Binary(data) => sender.send_binary(data).unwrap(),
                            _ => unreachable!(),
                        }
                    }
                    server.take_output(&mut wire);
                    client.receive(&wire);
                    wire.clear();
                    black_box(client.poll_event().unwrap().unwrap());
                });
            });
            group.bench_function(BenchmarkId::new("tungstenite", &id), |b| {
                let mut client = tungstenite_context(TRole::Client);
                let mut server = tungstenite_context(TRole::Server);
                let mut to_server = Mem::default();
                let mut to_client = Mem::default();
                b.iter(|| {
                    let message = if kind == "text" {
                        Message::Text(text.as_str().into())
                    } else {
                        Message::Binary(Bytes::copy_from_slice(&data))
                    };
                    client.write(&mut to_server, message).unwrap();
                    client.flush(&mut to_server).unwrap();
                    std::mem::swap(&mut to_server.input, &mut to_server.output);
                    to_server.pos = 0;
                    to_server.output.clear();
                    let echo = server.read(&mut to_server).unwrap();
                    server.write(&mut to_client, echo).unwrap();
                    server.flush(&mut to_client).unwrap();
                    std::mem::swap(&mut to_client.input, &mut to_client.output);
                    to_client.pos = 0;
                    to_client.output.clear();
                    black_box(client.read(&mut to_client).unwrap());
                });
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = header, decode, decode_offset, encode, unmask, utf8, round_trip
}
criterion_main!(benches);
