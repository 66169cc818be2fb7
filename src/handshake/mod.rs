//! The HTTP/1.1 opening handshake (RFC 6455 section 4), sans I/O.
//!
//! - The client side ([`ClientRequest`], [`ClientHandshake`]) builds the
//!   upgrade request of section 4.1 from a `ws://` or `wss://` URL (section 3)
//!   and checks the server's answer as section 4.1 requires (status 101,
//!   `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, and the subprotocol and
//!   extensions chosen among those offered).
//! - The server side ([`ServerHandshake`], [`Request`], [`UpgradeRequest`])
//!   reads any HTTP/1.1 request, tells upgrade attempts from plain HTTP,
//!   validates an upgrade as section 4.2.1 requires and writes the answer of
//!   section 4.2.2 ([`UpgradeRequest::accept`]) or a rejection
//!   ([`UpgradeRequest::reject`], [`HandshakeError::http_response`](crate::HandshakeError::http_response)).
//! - Shared pieces: [`accept_key`] (section 4.2.2), the parsed header fields
//!   ([`Headers`]), and the `Sec-WebSocket-Extensions` grammar of section 9.1
//!   ([`Extension`], [`parse_extensions`]), read with the RFC 7230 rules for
//!   tokens, optional whitespace, quoted strings and `#list` (sections 3.2.3,
//!   3.2.6 and 7).
//!
//! Nothing here reads or writes a socket: bytes go in through `receive`, bytes
//! to send come out as `Vec<u8>`. The header block is scanned incrementally in
//! linear time and bounded by [`Config::max_handshake_size`] and
//! [`Config::max_headers`]; bytes after it are handed to the [`Connection`].
//!
//! [`Config::max_handshake_size`]: crate::Config::max_handshake_size
//! [`Config::max_headers`]: crate::Config::max_headers
//! [`Connection`]: crate::Connection

mod client;
mod headers;
pub(crate) mod http;
mod server;
mod url;

use sha1::{Digest, Sha1};

pub use client::{ClientHandshake, ClientProgress, ClientRequest, HandshakeResponse};
pub use headers::{Extension, parse_extensions};
pub use server::{Accept, Request, Response, ServerHandshake, ServerProgress, UpgradeRequest};

/// The GUID that section 1.3 appends to the client's key.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
/// base64(SHA-1(key ++ "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), as section
/// 4.2.2 defines it.
///
/// The key is used exactly as sent (its base64 text, not the decoded bytes).
///
/// ```
/// assert_eq!(
///     rfc6455::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Parsed header fields of a handshake request or response, in the order
/// received, with names as received.
///
/// Names are looked up case-insensitively. Values are the raw bytes of the
/// field value without surrounding spaces and tabs; they may hold `obs-text`
/// (bytes 0x80-0xFF), so [`get_str`](Self::get_str) answers only when the value
/// is valid UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// Adds a field at the end.
    pub(crate) fn push(&mut self, name: String, value: Vec<u8>) {
        self.fields.push((name, value));
    }

    /// Every field, in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The value of the first field called `name` (compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The value of the first field called `name`, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.fields.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Header names the handshake writes itself; the application cannot give them
/// through `header()`.
const RESERVED_HEADERS: [&str; 8] = [
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
];

/// Checks a header the application wants to send: a token name, a value
/// without control characters (horizontal tab excepted), and not one of the
/// names the handshake controls.
fn check_user_header(name: &str, value: &str) -> Result<(), crate::HandshakeError> {
    check_header_syntax(name, value)?;
    if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(crate::HandshakeError::ReservedHeader(name.to_owned()));
    }
    Ok(())
}

/// Checks that `name` is a token and `value` holds no control characters
/// (horizontal tab excepted): nothing can end the line or the header block.
fn check_header_syntax(name: &str, value: &str) -> Result<(), crate::HandshakeError> {
    if !headers::is_token(name.as_bytes()) {
        return Err(crate::HandshakeError::InvalidHeaderName(name.to_owned()));
    }
    if !is_field_value(value) {
        return Err(crate::HandshakeError::InvalidHeaderValue(name.to_owned()));
    }
    Ok(())
}

/// No control character but horizontal tab (CR, LF and NUL included).
fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Appends `name: value\r\n`.
fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_section_1_3_accept_key() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn headers_lookup_is_case_insensitive_and_ordered() {
        let mut h = Headers::default();
        assert!(h.is_empty());
        h.push("Foo".into(), b"1".to_vec());
        h.push("bar".into(), b"\xff".to_vec());
        h.push("FOO".into(), b"2".to_vec());
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("foo"), Some(&b"1"[..]));
        assert_eq!(h.get_str("BAR"), None);
        assert_eq!(h.get("bar"), Some(&b"\xff"[..]));
        assert_eq!(h.get_all("foo").collect::<Vec<_>>(), [&b"1"[..], b"2"]);
        assert_eq!(h.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["Foo", "bar", "FOO"]);
        assert_eq!(h.get("baz"), None);
    }

    #[test]
    fn user_header_checks() {
        use crate::HandshakeError as E;
        assert_eq!(check_user_header("X-Ok", "a\tb c"), Ok(()));
        assert_eq!(check_user_header("X Bad", "v"), Err(E::InvalidHeaderName("X Bad".into())));
        assert_eq!(check_user_header("", "v"), Err(E::InvalidHeaderName("".into())));
        for bad in ["a\rb", "a\nb", "a\0b", "a\x7fb", "a\x01"] {
            assert_eq!(check_user_header("X", bad), Err(E::InvalidHeaderValue("X".into())));
        }
        assert_eq!(check_user_header("sec-websocket-key", "x"), Err(E::ReservedHeader("sec-websocket-key".into())));
    }
}
