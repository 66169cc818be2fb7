//! The load generator: raw sockets and hand-made frames, so that the client
//! costs as little as possible and the server is what gets measured.
//!
//! Frames are masked once, up front, with a fixed key (servers cannot tell),
//! and written a batch at a time; echoes are parsed with a minimal streaming
//! parser that checks every message's opcode, length and bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The client's masking key for every frame.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// Bytes written per system call by the load generator, at most.
const WRITE_BATCH_BYTES: usize = 256 << 10;
/// Most messages written per batch.
const WRITE_BATCH_MESSAGES: usize = 128;
/// A case whose sockets stay silent this long has failed.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Binary,
    Text,
}

impl Kind {
    fn opcode(self) -> u8 {
        match self {
            Self::Binary => 0x2,
            Self::Text => 0x1,
        }
    }
}

/// Valid mixed UTF-8 of exactly `len` bytes: ASCII and 2-, 3- and 4-byte
/// sequences (Latin, Cyrillic, CJK, symbols, emoji).
pub(crate) fn mixed_text(len: usize) -> Vec<u8> {
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
    text.into_bytes()
}

/// Pseudo-random bytes (xorshift), for binary payloads.
pub(crate) fn binary_payload(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) fn payload(kind: Kind, len: usize) -> Vec<u8> {
    match kind {
        Kind::Binary => binary_payload(len),
        Kind::Text => mixed_text(len),
    }
}

/// A complete masked client frame (FIN set).
pub(crate) fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
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

/// Opens a TCP connection and performs the opening handshake by hand (the
/// raw echo server sends the request back, which ends the same way).
pub(crate) fn connect(addr: SocketAddr, raw: bool) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    // Byte at a time, so nothing after the header is swallowed; a handshake
    // is a few hundred bytes, read once per connection.
    while !response.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed during the handshake"));
        }
        response.push(byte[0]);
        if response.len() > 16 << 10 {
            return Err(io::Error::other("handshake response too long"));
        }
    }
    if !raw && !response.starts_with(b"HTTP/1.1 101") {
        let head = String::from_utf8_lossy(&response);
        return Err(io::Error::other(format!("handshake refused: {}", head.lines().next().unwrap_or(""))));
    }
    Ok(stream)
}

/// What every echoed message must be.
struct Expect {
    opcode: u8,
    payload: Vec<u8>,
    /// The payload as masked by the client: what a raw TCP echo returns.
    masked: Vec<u8>,
    verify: bool,
}

/// A streaming parser of the server's frames that counts and checks whole
/// messages.
struct Parser {
    header: [u8; 14],
    header_len: usize,
    in_payload: bool,
    remaining: u64,
    fin: bool,
    opcode: u8,
    masked: bool,
    /// Offset of the next payload byte within the current message.
    message_offset: usize,
    messages: u64,
    closed: bool,
}

impl Parser {
    fn new() -> Self {
        Self {
            header: [0; 14],
            header_len: 0,
            in_payload: false,
            remaining: 0,
            fin: false,
            opcode: 0,
            masked: false,
            message_offset: 0,
            messages: 0,
            closed: false,
        }
    }

    fn needed_header_len(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Parses `data`; returns how many messages it completed.
    fn feed(&mut self, mut data: &[u8], expect: &Expect) -> Result<u64, String> {
        let before = self.messages;
        while !data.is_empty() && !self.closed {
            if !self.in_payload {
                let need = self.needed_header_len();
                let take = (need - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < need || need == 2 && self.needed_header_len() > 2 {
                    continue;
                }
                self.begin_frame(expect)?;
            } else {
                let n = (self.remaining.min(data.len() as u64)) as usize;
                let (chunk, rest) = data.split_at(n);
                if expect.verify && self.opcode != 0x9 && self.opcode != 0xA {
                    let reference = if self.masked { &expect.masked } else { &expect.payload };
                    let end = self.message_offset + n;
                    if end > reference.len() || reference[self.message_offset..end] != *chunk {
                        return Err(format!("echoed payload differs at byte {}", self.message_offset));
                    }
                }
                self.message_offset += n;
                self.remaining -= n as u64;
                data = rest;
                if self.remaining == 0 {
                    self.end_frame(expect)?;
                }
            }
        }
        Ok(self.messages - before)
    }

    fn begin_frame(&mut self, expect: &Expect) -> Result<(), String> {
        let b0 = self.header[0];
        let b1 = self.header[1];
        self.fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        self.masked = b1 & 0x80 != 0;
        self.remaining = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        self.header_len = 0;
        match opcode {
            0x8 => {
                self.closed = true;
                return Ok(());
            }
            0x9 | 0xA => self.opcode = opcode,
            0x0 => {
                if self.opcode != expect.opcode {
                    return Err("unexpected continuation frame".into());
                }
            }
            op if op == expect.opcode => {
                self.opcode = op;
                self.message_offset = 0;
            }
            op => return Err(format!("unexpected opcode {op:#x}")),
        }
        self.in_payload = true;
        if self.remaining == 0 {
            self.end_frame(expect)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, expect: &Expect) -> Result<(), String> {
        self.in_payload = false;
        if self.opcode == 0x9 || self.opcode == 0xA {
            return Ok(());
        }
        if self.fin {
            if self.message_offset != expect.payload.len() {
                return Err(format!("echoed {} bytes, sent {}", self.message_offset, expect.payload.len()));
            }
            self.messages += 1;
        }
        Ok(())
    }
}

/// One throughput case.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) window: usize,
    pub(crate) size: usize,
    pub(crate) kind: Kind,
    pub(crate) warm_up: Duration,
    pub(crate) duration: Duration,
    pub(crate) verify: bool,
    pub(crate) raw: bool,
}

/// Messages echoed per second over the measured interval, and what the
/// server spent on each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throughput {
    pub(crate) messages_per_sec: f64,
    /// Server CPU time (user and system) per message echoed, in
    /// microseconds, when the server's CPU time could be read.
    pub(crate) cpu_us_per_message: Option<f64>,
}

struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    writer_waiting: AtomicBool,
    stop: AtomicBool,
}

/// Runs `load` against the server at `addr`; `server_cpu` reads the server's
/// CPU time so far, in seconds (see `common::cpu_seconds`).
pub(crate) fn throughput(
    addr: SocketAddr,
    load: Load,
    server_cpu: &dyn Fn() -> Option<f64>,
) -> Result<Throughput, String> {
    let payload = payload(load.kind, load.size);
    let frame = masked_frame(load.kind.opcode(), &payload);
    let per_batch = (WRITE_BATCH_BYTES / frame.len()).clamp(1, WRITE_BATCH_MESSAGES).min(load.window);
    let batch: Arc<Vec<u8>> = Arc::new(frame.repeat(per_batch));
    let expect = Arc::new(Expect {
        opcode: load.kind.opcode(),
        masked: frame[frame.len() - payload.len()..].to_vec(),
        payload,
        verify: load.verify,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut shared = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..load.connections {
        let stream = connect(addr, load.raw).map_err(|e| format!("connect: {e}"))?;
        let state = Arc::new(Shared {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            writer_waiting: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let write_stream = stream.try_clone().map_err(|e| e.to_string())?;
        let writer = {
            let state = Arc::clone(&state);
            let batch = Arc::clone(&batch);
            let stop = Arc::clone(&stop);
            let window = load.window as u64;
            thread::spawn(move || writer(write_stream, &state, &stop, &batch, per_batch as u64, window))
        };
        let reader = {
            let state = Arc::clone(&state);
            let expect = Arc::clone(&expect);
            let writer_thread = writer.thread().clone();
            thread::spawn(move || reader(stream, &state, &expect, &writer_thread))
        };
        shared.push(state);
        threads.push((writer, reader));
    }
    let total = || shared.iter().map(|s| s.received.load(Ordering::Relaxed)).sum::<u64>();
    thread::sleep(load.warm_up);
    let (start, at_start, cpu_start) = (Instant::now(), total(), server_cpu());
    thread::sleep(load.duration);
    let (end, at_end, cpu_end) = (Instant::now(), total(), server_cpu());
    stop.store(true, Ordering::SeqCst);
    let mut failure = None;
    for (writer, reader) in threads {
        let written = writer.join().map_err(|_| "writer panicked".to_string())?;
        let read = reader.join().map_err(|_| "reader panicked".to_string())?;
        if let Err(e) = written.and(read) {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let messages = at_end - at_start;
    if messages == 0 {
        return Err("no message echoed during the measurement".into());
    }
    let cpu_us_per_message = cpu_start.zip(cpu_end).map(|(a, b)| (b - a) * 1e6 / messages as f64);
    Ok(Throughput { messages_per_sec: messages as f64 / (end - start).as_secs_f64(), cpu_us_per_message })
}

fn writer(
    mut stream: TcpStream,
    state: &Shared,
    stop: &AtomicBool,
    batch: &[u8],
    per_batch: u64,
    window: u64,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let sent = state.sent.load(Ordering::Relaxed);
        if sent + per_batch - state.received.load(Ordering::SeqCst) > window {
            state.writer_waiting.store(true, Ordering::SeqCst);
            if sent + per_batch - state.received.load(Ordering::SeqCst) > window {
                thread::park_timeout(Duration::from_millis(5));
            }
            state.writer_waiting.store(false, Ordering::SeqCst);
            continue;
        }
        if let Err(e) = stream.write_all(batch) {
            state.stop.store(true, Ordering::SeqCst);
            return Err(format!("write: {e}"));
        }
        state.sent.store(sent + per_batch, Ordering::SeqCst);
    }
    // Close: the server answers after echoing everything sent before, so the
    // reader knows when it has all the echoes.
    state.stop.store(true, Ordering::SeqCst);
    stream.write_all(&masked_frame(0x8, &1000u16.to_be_bytes())).map_err(|e| format!("write close: {e}"))
}

fn reader(mut stream: TcpStream, state: &Shared, expect: &Expect, writer: &thread::Thread) -> Result<(), String> {
    // Each read lands at another offset within a page: the kernel's copy
    // into a buffer 1 to 31 bytes past the sender's data modulo 4 KiB costs
    // about three times the CPU on the AMD host, and reads that all started
    // at one address would meet that distance every time or never, so that
    // a case's figures would depend on where the buffers happened to be
    // (BENCHMARKS.md, "The kernel's copies and the distance between
    // buffers"). The servers' figures must not.
    let mut buf = vec![0u8; (256 << 10) + 4096];
    let mut reads = 0u32;
    let mut parser = Parser::new();
    let all_in = |state: &Shared| {
        state.stop.load(Ordering::SeqCst) && state.received.load(Ordering::SeqCst) == state.sent.load(Ordering::SeqCst)
    };
    let result = loop {
        reads = reads.wrapping_add(1);
        let at = (reads.wrapping_mul(0x9E37_79B9) >> 23) as usize * 8;
        let buf = &mut buf[at..at + (256 << 10)];
        let n = match stream.read(buf) {
            Ok(0) if all_in(state) => break Ok(()),
            Ok(0) => break Err("the server closed the connection".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("read: {e}")),
        };
        match parser.feed(&buf[..n], expect) {
            Ok(0) => {}
            Ok(messages) => {
                state.received.fetch_add(messages, Ordering::SeqCst);
                if state.writer_waiting.load(Ordering::SeqCst) {
                    writer.unpark();
                }
            }
            Err(e) => break Err(e),
        }
        if parser.closed {
            if all_in(state) {
                break Ok(());
            }
            break Err(format!(
                "the server closed after {} of {} echoes",
                state.received.load(Ordering::SeqCst),
                state.sent.load(Ordering::SeqCst)
            ));
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    result
}

/// The closing handshake, best effort: a close frame, then read until the
/// server's close frame or EOF.
fn close(stream: &mut TcpStream, parser: &mut Parser, buf: &mut [u8], expect: &Expect) {
    if stream.write_all(&masked_frame(0x8, &1000u16.to_be_bytes())).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    while !parser.closed {
        match stream.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if parser.feed(&buf[..n], expect).is_err() {
                    return;
                }
            }
        }
    }
}

/// Round-trip latency of a lone message: one in flight, `samples` times.
/// Returns the sorted round-trip times in microseconds.
pub(crate) fn latency(
    addr: SocketAddr,
    raw: bool,
    size: usize,
    warm_up: usize,
    samples: usize,
    max_duration: Duration,
) -> Result<Vec<f64>, String> {
    let mut stream = connect(addr, raw).map_err(|e| format!("connect: {e}"))?;
    let payload = binary_payload(size);
    let frame = masked_frame(0x2, &payload);
    let expect = Expect { opcode: 0x2, masked: frame[frame.len() - payload.len()..].to_vec(), payload, verify: true };
    let mut parser = Parser::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut times = Vec::with_capacity(samples);
    let deadline = Instant::now() + max_duration;
    for i in 0..warm_up + samples {
        let start = Instant::now();
        stream.write_all(&frame).map_err(|e| format!("write: {e}"))?;
        loop {
            let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            if parser.feed(&buf[..n], &expect)? > 0 {
                break;
            }
        }
        if i >= warm_up {
            times.push(start.elapsed().as_secs_f64() * 1e6);
            if Instant::now() > deadline {
                break;
            }
        }
    }
    close(&mut stream, &mut parser, &mut buf, &expect);
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Opens `count` WebSocket connections, echoes one small message on each (so
/// that the server has set each one up completely), and returns them, idle.
pub(crate) fn open_idle(addr: SocketAddr, raw: bool, count: usize) -> Result<Vec<TcpStream>, String> {
    let payload = binary_payload(32);
    let frame = masked_frame(0x2, &payload);
    let expect = Expect { opcode: 0x2, masked: frame[frame.len() - 32..].to_vec(), payload, verify: true };
    let mut streams = Vec::with_capacity(count);
    let mut buf = [0u8; 256];
    for i in 0..count {
        let mut stream = connect(addr, raw).map_err(|e| format!("connection {i}: {e}"))?;
        stream.write_all(&frame).map_err(|e| format!("write: {e}"))?;
        let mut parser = Parser::new();
        while parser.messages == 0 {
            let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!("connection {i} closed by the server"));
            }
            parser.feed(&buf[..n], &expect)?;
        }
        streams.push(stream);
    }
    Ok(streams)
}
