//! What the fake proxies of the tests do with bytes: read an HTTP head, and
//! copy a stream one way. Shared by `tests/proxy.rs` and `tests/tls.rs`
//! (`#[path]` module).

use std::io::{Read, Write};

/// Reads up to the end of an HTTP head (byte by byte, so that nothing after
/// it is consumed; at most 16 KiB).
pub(crate) fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "head too long");
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => break,
            Err(e) => panic!("reading the CONNECT request: {e}"),
        }
    }
    String::from_utf8(head).expect("ASCII head")
}

/// Copies bytes from `from` to `to` (flushing each piece) until EOF or an
/// error on either side.
pub(crate) fn copy_until_eof(from: &mut impl Read, to: &mut impl Write) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
            break;
        }
    }
}
