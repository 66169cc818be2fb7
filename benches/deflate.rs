//! Why flate2 with the zlib-rs backend: raw deflate with window-bit control
//! (which permessage-deflate's `*_max_window_bits` needs and miniz_oxide
//! lacks) at a speed measured here against miniz_oxide, the other pure-Rust
//! deflate, on the JSON-like messages WebSocket applications send. Also: the
//! cost of a whole compressed message round trip through the connection, and
//! of a broadcast to 100 connections with and without `PreparedMessage`, of
//! a batch of replies written at once, and of a burst of compressed messages
//! received in one read.
//!
//! `cargo bench --bench deflate`
#![allow(clippy::field_reassign_with_default)] // Config is non_exhaustive

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rfc6455::{Config, Connection, DeflateConfig, DeflateParams, PreparedMessage, Role};
use std::hint::black_box;

fn json(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            r#"{{"id":{i},"user":"user{}","room":"lobby","text":"message number {i} with some text","ts":{}}},"#,
            i % 97,
            1_700_000_000 + i * 7
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn zlib_rs_compress(input: &[u8], level: u32) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, 15);
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&input[before..], &mut out, FlushCompress::Sync).unwrap();
        if c.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

fn zlib_rs_decompress(input: &[u8], expected: usize) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(expected + 64);
    d.decompress_vec(input, &mut out, FlushDecompress::Sync).unwrap();
    out
}

fn backends(c: &mut Criterion) {
    for size in [1 << 10, 16 << 10, 256 << 10] {
        let input = json(size);
        let mut group = c.benchmark_group(format!("deflate_backend/{}KiB", size >> 10));
        group.throughput(Throughput::Bytes(size as u64));
        for level in [1u8, 6] {
            group.bench_with_input(BenchmarkId::new("zlib-rs compress", level), &input, |b, input| {
                b.iter(|| zlib_rs_compress(black_box(input), u32::from(level)))
            });
            group.bench_with_input(BenchmarkId::new("miniz_oxide compress", level), &input, |b, input| {
                b.iter(|| miniz_oxide::deflate::compress_to_vec(black_box(input), level))
            });
        }
        let compressed = zlib_rs_compress(&input, 6);
        let plain = miniz_oxide::deflate::compress_to_vec(&input, 6);
        group.bench_with_input(BenchmarkId::new("zlib-rs decompress", 6), &compressed, |b, data| {
            b.iter(|| zlib_rs_decompress(black_box(data), size))
        });
        group.bench_with_input(BenchmarkId::new("miniz_oxide decompress", 6), &plain, |b, data| {
            b.iter(|| miniz_oxide::inflate::decompress_to_vec(black_box(data)).unwrap())
        });
        group.finish();
        println!(
            "{}KiB JSON at level 6: zlib-rs {} bytes, miniz_oxide {} bytes",
            size >> 10,
            compressed.len(),
            plain.len()
        );
    }
}

/// What the adapters negotiate by default: 15-bit windows, no context kept
/// between messages on either side.
fn no_context_takeover() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

/// A connection configuration with permessage-deflate at its defaults and a
/// fixed seed for the client's masking keys (the same bytes every run).
fn deflate_config() -> Config {
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    config.rng_seed = Some([1; 32]);
    config
}

/// A message sent through a client connection and received by a server, with
/// and without permessage-deflate (no context takeover, the default policy).
fn round_trip(c: &mut Criterion) {
    let params = no_context_takeover();
    for size in [1 << 10, 16 << 10] {
        let text = String::from_utf8(json(size)).unwrap();
        let mut group = c.benchmark_group(format!("deflate_round_trip/{}KiB", size >> 10));
        group.throughput(Throughput::Bytes(size as u64));
        for (name, deflate) in [("plain", None), ("deflate", Some(params))] {
            let config = deflate_config();
            let mut client = Connection::with_extensions(Role::Client, config.clone(), deflate);
            let mut server = Connection::with_extensions(Role::Server, config, deflate);
            let mut wire = Vec::new();
            group.bench_function(name, |b| {
                b.iter(|| {
                    client.send_text(black_box(&text)).unwrap();
                    wire.clear();
                    client.take_output(&mut wire);
                    server.receive(&wire);
                    let event = server.poll_event().unwrap().unwrap();
                    black_box(event);
                })
            });
        }
        group.finish();
    }
}

/// One message sent by a server to 100 connections with permessage-deflate
/// (no context takeover): `send_text` on each, which compresses it 100
/// times, against one `PreparedMessage`, compressed once.
fn broadcast(c: &mut Criterion) {
    let params = no_context_takeover();
    const CONNECTIONS: usize = 100;
    for size in [1 << 10, 16 << 10] {
        let text = String::from_utf8(json(size)).unwrap();
        let mut group = c.benchmark_group(format!("deflate_broadcast_100/{}KiB", size >> 10));
        group.throughput(Throughput::Bytes((size * CONNECTIONS) as u64));
        let config = deflate_config();
        let mut servers: Vec<Connection> =
            (0..CONNECTIONS).map(|_| Connection::with_extensions(Role::Server, config.clone(), Some(params))).collect();
        let mut wire = Vec::new();
        group.bench_function("send_text", |b| {
            b.iter(|| {
                for server in &mut servers {
                    server.send_text(black_box(&text)).unwrap();
                    wire.clear();
                    server.take_output(&mut wire);
                }
            })
        });
        group.bench_function("send_prepared", |b| {
            b.iter(|| {
                let message = PreparedMessage::text(black_box(text.as_str()));
                for server in &mut servers {
                    server.send_prepared(&message).unwrap();
                    wire.clear();
                    server.take_output(&mut wire);
                }
            })
        });
        group.finish();
    }
}

/// Bursts of 32 compressed 1 KiB JSON messages, no context kept between
/// messages: 32 replies queued, then written at once (what an echo server
/// does with a batch of requests), and 32 messages from a client received
/// in one read (a browser that sent a burst). Either way the compression
/// context is set up once per burst, not per message.
fn bursts(c: &mut Criterion) {
    let params = Some(no_context_takeover());
    let text = String::from_utf8(json(1 << 10)).unwrap();
    let config = deflate_config();
    let mut wire = Vec::new();

    let mut group = c.benchmark_group("deflate_batch_32/1KiB");
    group.throughput(Throughput::Bytes(32 << 10));
    let mut server = Connection::with_extensions(Role::Server, config.clone(), params);
    group.bench_function("send_text x 32, one write", |b| {
        b.iter(|| {
            for _ in 0..32 {
                server.send_text(black_box(&text)).unwrap();
            }
            wire.clear();
            server.take_output(&mut wire);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("inflate_batch_32/1KiB");
    group.throughput(Throughput::Bytes(32 << 10));
    let mut client = Connection::with_extensions(Role::Client, config.clone(), params);
    for _ in 0..32 {
        client.send_text(&text).unwrap();
    }
    wire.clear();
    client.take_output(&mut wire);
    let mut server = Connection::with_extensions(Role::Server, config, params);
    group.bench_function("32 messages, one read", |b| {
        b.iter(|| {
            server.receive(black_box(&wire));
            let mut events = 0;
            while let Some(event) = server.poll_event().unwrap() {
                black_box(event);
                events += 1;
            }
            assert_eq!(events, 32);
        })
    });
    group.finish();
}

/// One message compressed on its own, as without context takeover (the
/// default), by a server connection whose output is taken after each
/// message (a reply written at once: the common case), against zlib-rs
/// through flate2 with a new context per message (what the connection did
/// before the whole-message encoder) and with one context reset per message
/// (the best zlib-rs can do: a batch of replies). Same level (6), same
/// 15-bit window.
fn per_message(c: &mut Criterion) {
    let params = Some(no_context_takeover());
    for size in [200, 1 << 10, 4 << 10, 8 << 10, 16 << 10] {
        let input = json(size);
        let text = String::from_utf8(input.clone()).unwrap();
        let mut group = c.benchmark_group(format!(
            "deflate_message/{}",
            if size < 1024 { format!("{size}B") } else { format!("{}KiB", size >> 10) }
        ));
        group.throughput(Throughput::Bytes(size as u64));
        let mut server = Connection::with_extensions(Role::Server, deflate_config(), params);
        let mut wire = Vec::new();
        group.bench_function("rfc6455 send_text, output taken", |b| {
            b.iter(|| {
                server.send_text(black_box(&text)).unwrap();
                wire.clear();
                server.take_output(&mut wire);
            })
        });
        let mut out = Vec::with_capacity(size + 64);
        let deflate = |state: &mut Compress, out: &mut Vec<u8>| {
            out.clear();
            state.compress_vec(black_box(&input), out, FlushCompress::Sync).unwrap();
            assert!(state.total_in() as usize == input.len());
        };
        group.bench_function("zlib-rs, new context", |b| {
            b.iter(|| deflate(&mut Compress::new_with_window_bits(Compression::new(6), false, 15), &mut out))
        });
        let mut state = Compress::new_with_window_bits(Compression::new(6), false, 15);
        group.bench_function("zlib-rs, context reset", |b| {
            b.iter(|| {
                state.reset();
                deflate(&mut state, &mut out)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, backends, round_trip, broadcast, bursts, per_message);
criterion_main!(benches);
