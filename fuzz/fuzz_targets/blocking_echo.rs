//! The blocking adapter's echo path: payloads of 16 KiB and more sent back
//! from inside `read_with` stay in the receive buffer and are written from
//! there, several to a vectored write. Over a transport that hands the input
//! out in arbitrary pieces and takes an arbitrary number of bytes per write,
//! an echo server must write exactly what the sans-IO core writes when every
//! echo is copied, whatever the input: frames of any size, kind and
//! fragmentation, with bytes that break the protocol anywhere among them.
#![no_main]

use std::io::{self, IoSlice, Read, Write};

use arbitrary::Arbitrary;
use rfc6455::blocking::{Options, Transport, WebSocket};
use rfc6455::{Config, Connection, Event, FrameHeader, Message, OpCode, Role, apply_mask};

/// Longest payload a frame piece asks for: above the hold threshold and the
/// largest frame the configuration accepts, so both sides of each are met.
const MAX_PAYLOAD: u32 = 80_000;

/// Pieces past this much wire are left out: a short input may describe
/// thousands of large frames, which would make each run slow and large
/// without reaching anything new.
const MAX_WIRE: usize = 1 << 20;

#[derive(Arbitrary, Debug)]
enum Piece {
    /// A frame: first byte `head` as given (FIN, RSV bits, opcode), masked
    /// with `key` when there is one, and a payload of `len` bytes that
    /// repeats `fill`.
    Frame { head: u8, key: Option<[u8; 4]>, len: u32, fill: Fill },
    /// Bytes as they are.
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Fill {
    Bytes(Vec<u8>),
    /// Repeated whole (valid UTF-8 unless cut short at the end).
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    /// Bytes per read, in turn (each taken modulo 70,000, plus 1).
    reads: Vec<u16>,
    /// Bytes taken per write, in turn (0: everything offered).
    writes: Vec<u16>,
    read_buffer_size: u16,
}

fn payload(len: u32, fill: &Fill) -> Vec<u8> {
    let len = (len % (MAX_PAYLOAD + 1)) as usize;
    let unit: &[u8] = match fill {
        Fill::Bytes(bytes) => bytes,
        Fill::Text(text) => text.as_bytes(),
    };
    if unit.is_empty() {
        return vec![b'x'; len];
    }
    unit.iter().copied().cycle().take(len).collect()
}

fn wire(pieces: &[Piece]) -> Vec<u8> {
    let mut wire = Vec::new();
    for piece in pieces {
        if wire.len() > MAX_WIRE {
            break;
        }
        match piece {
            Piece::Raw(bytes) => wire.extend_from_slice(bytes),
            Piece::Frame { head, key, len, fill } => {
                let mut payload = payload(*len, fill);
                // The crate's own header encoder for the length forms and the
                // key; the first byte as the input gives it, reserved opcodes
                // and RSV bits included.
                let header = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask: *key,
                    payload_len: payload.len() as u64,
                };
                let start = wire.len();
                header.encode(&mut wire);
                wire[start] = *head;
                if let Some(key) = key {
                    apply_mask(&mut payload, *key, 0);
                }
                wire.extend_from_slice(&payload);
            }
        }
    }
    wire
}

/// Hands out the input in the pieces `reads` gives, then the end of the
/// stream; keeps what is written, taking at most what `writes` gives each
/// time.
struct Script {
    input: Vec<u8>,
    at: usize,
    reads: Vec<u16>,
    read_count: usize,
    writes: Vec<u16>,
    write_count: usize,
    written: Vec<u8>,
}

impl Script {
    fn next_write_cap(&mut self) -> usize {
        let cap = self.writes.get(self.write_count % self.writes.len().max(1)).copied().unwrap_or(0);
        self.write_count += 1;
        if cap == 0 { usize::MAX } else { usize::from(cap) }
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self
            .reads
            .get(self.read_count % self.reads.len().max(1))
            .map_or(usize::MAX, |&r| usize::from(r) % 70_000 + 1);
        self.read_count += 1;
        let n = size.min(buf.len()).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.next_write_cap());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = self.next_write_cap();
        let mut n = 0;
        for buf in bufs {
            let take = buf.len().min(room);
            self.written.extend_from_slice(&buf[..take]);
            room -= take;
            n += take;
            if room == 0 {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Script {}

fn config(read_buffer_size: u16) -> Config {
    let mut config = Config::default();
    config.deflate = None;
    config.max_frame_size = 1 << 16;
    config.max_message_size = 1 << 18;
    config.max_fragments = 64;
    config.read_buffer_size = usize::from(read_buffer_size % 8192) + 1;
    config
}

/// The echo server of `examples/echo_server.rs`, over the script; what it wrote.
fn adapter_echo(input: &Input, wire: Vec<u8>) -> Vec<u8> {
    let script = Script {
        input: wire,
        at: 0,
        reads: input.reads.clone(),
        read_count: 0,
        writes: input.writes.clone(),
        write_count: 0,
        written: Vec::new(),
    };
    let conn = Connection::new(Role::Server, config(input.read_buffer_size));
    let options = Options::default();
    let mut ws = WebSocket::from_connection(script, conn, &options).expect("an in-memory transport");
    // Bounded: every call reads at least one byte, or ends the loop.
    let bound = ws.get_ref().input.len() + 2;
    for _ in 0..bound {
        let result = ws.read_with(|event, sender| match event {
            Event::Text(text) => sender.send_text(text).map(|()| false),
            Event::Binary(data) => sender.send_binary(data).map(|()| false),
            Event::Close(_) => Ok(true),
            Event::Ping(_) | Event::Pong(_) => Ok(false),
        });
        match result {
            Ok(Ok(false)) => {}
            Ok(Ok(true) | Err(_)) | Err(_) => return ws.get_ref().written.clone(),
        }
    }
    panic!("the echo loop read {bound} times without ending");
}

/// The same echo over the sans-IO core alone, every payload copied.
fn core_echo(input: &Input, wire: &[u8]) -> Vec<u8> {
    let mut conn = Connection::new(Role::Server, config(input.read_buffer_size));
    let mut written = Vec::new();
    conn.receive(wire);
    conn.receive_eof();
    // Bounded: every event consumes input bytes, and the input is finite.
    while let Ok(Some(event)) = conn.poll_event() {
        let message = event.to_message();
        let sent = match &message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
            _ => Ok(()),
        };
        conn.take_output(&mut written);
        if sent.is_err() || matches!(message, Message::Close(_)) {
            break;
        }
    }
    conn.take_output(&mut written);
    written
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let wire = wire(&input.pieces);
    let expected = core_echo(&input, &wire);
    let written = adapter_echo(&input, wire);
    assert!(written == expected, "the adapter wrote {} bytes, the core {}", written.len(), expected.len());
});
