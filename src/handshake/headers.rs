//! Field-value grammars of the handshake: RFC 7230 tokens and comma-separated
//! lists (sections 3.2.6 and 7), used by `Upgrade`, `Connection` and
//! `Sec-WebSocket-Protocol` (RFC 6455 section 4.1), and the
//! `Sec-WebSocket-Extensions` grammar of RFC 6455 section 9.1.
//!
//! Every parser here is a single forward pass: linear in the length of the
//! value whatever it holds (long runs of whitespace, endless escapes, an
//! unclosed quote).

use crate::HandshakeError;

use super::Headers;

/// `tchar` of RFC 7230 section 3.2.6.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// `token = 1*tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether `b` is optional whitespace (`OWS`): a space or a horizontal tab.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs.
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let rest = s.get(start..).unwrap_or_default();
    let end = rest.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    rest.get(..end).unwrap_or_default()
}

/// The elements of a `#list` value: split on commas, trimmed of spaces and
/// tabs, empty elements skipped. Linear in the length of `value`.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|e| !e.is_empty())
}

/// Whether any field `name` lists `token` (compared case-insensitively).
pub(crate) fn list_contains(headers: &Headers, name: &str, token: &str) -> bool {
    headers.get_all(name).any(|v| list_elements(v).any(|e| e.eq_ignore_ascii_case(token.as_bytes())))
}

/// One element of a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
/// an extension name and its parameters, in order.
///
/// Parameter values that were quoted are stored unescaped, without quotes.
/// Duplicate parameters are kept as given; rejecting them is up to the
/// extension that defines them.
///
/// ```
/// let ext = rfc6455::Extension {
///     name: "permessage-deflate".into(),
///     params: vec![("client_max_window_bits".into(), None)],
/// };
/// assert_eq!(ext.to_header_value(), "permessage-deflate; client_max_window_bits");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension {
    /// The extension token, such as `permessage-deflate`.
    pub name: String,
    /// The parameters, in order: a name and, when given, a value.
    pub params: Vec<(String, Option<String>)>,
}

impl Extension {
    /// Serialises this element as it appears in a `Sec-WebSocket-Extensions`
    /// value: `name; param; param=value`.
    ///
    /// Values that are not tokens are written as quoted strings (with `"` and
    /// `\` escaped). Such values, and names that are not tokens, do not satisfy
    /// section 9.1, so [`parse_extensions`] rejects the result; the handshake
    /// checks what it sends.
    pub fn to_header_value(&self) -> String {
        let mut out = self.name.clone();
        for (name, value) in &self.params {
            out.push_str("; ");
            out.push_str(name);
            if let Some(value) = value {
                out.push('=');
                if is_token(value.as_bytes()) {
                    out.push_str(value);
                } else {
                    out.push('"');
                    for c in value.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
        out
    }
}

/// Parses a whole `Sec-WebSocket-Extensions` value (`1#extension`, RFC 6455
/// section 9.1, with the list rules of RFC 7230 section 7).
///
/// ```text
/// extension = token *( OWS ";" OWS param )
/// param     = token [ OWS "=" OWS ( token / quoted-string ) ]
/// ```
///
/// Empty list elements are skipped, but at least one extension must be
/// present. A quoted value is unescaped and must then be a token, as section
/// 9.1 requires. The parser makes a single pass: its work is linear in the
/// length of `value`.
///
/// # Errors
///
/// [`HandshakeError::MalformedExtensions`] for anything else.
///
/// ```
/// let exts = rfc6455::parse_extensions(
///     "permessage-deflate; client_max_window_bits=\"10\", x-foo",
/// ).unwrap();
/// assert_eq!(exts[0].name, "permessage-deflate");
/// assert_eq!(exts[0].params, [("client_max_window_bits".to_string(), Some("10".to_string()))]);
/// assert_eq!(exts[1].name, "x-foo");
/// assert!(rfc6455::parse_extensions("a; b=\"unclosed").is_err());
/// ```
pub fn parse_extensions(value: &str) -> Result<Vec<Extension>, HandshakeError> {
    ExtensionParser { s: value.as_bytes(), pos: 0 }.list().ok_or(HandshakeError::MalformedExtensions)
}

/// A cursor over a `Sec-WebSocket-Extensions` value. Each method moves
/// forward only; `None` means a syntax error.
struct ExtensionParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl ExtensionParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let token = self.s.get(start..self.pos)?;
        if token.is_empty() {
            return None;
        }
        // Tokens are ASCII.
        String::from_utf8(token.to_vec()).ok()
    }

    /// `quoted-string` (RFC 7230 section 3.2.6), the opening quote already
    /// seen; returns the unescaped content.
    fn quoted_string(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    let e = self.peek()?;
                    if !(e == b'\t' || e >= 0x20) || e == 0x7f {
                        return None;
                    }
                    self.pos += 1;
                    out.push(e);
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                b'\t' | 0x20..=0x7e | 0x80..=0xff => out.push(b),
                _ => return None,
            }
        }
    }

    /// `param` (the leading `;` already consumed).
    fn param(&mut self) -> Option<(String, Option<String>)> {
        let name = self.token()?;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Some((name, None));
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.pos += 1;
            let raw = self.quoted_string()?;
            // Section 9.1: a quoted value must be a token once unescaped.
            if !is_token(&raw) {
                return None;
            }
            String::from_utf8(raw).ok()?
        } else {
            self.token()?
        };
        Some((name, Some(value)))
    }

    /// `extension`, up to (not including) the next comma or the end.
    fn extension(&mut self) -> Option<Extension> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_ows();
            match self.peek() {
                None | Some(b',') => return Some(Extension { name, params }),
                Some(b';') => {
                    self.pos += 1;
                    self.skip_ows();
                    params.push(self.param()?);
                }
                Some(_) => return None,
            }
        }
    }

    /// `1#extension`.
    fn list(mut self) -> Option<Vec<Extension>> {
        let mut out = Vec::new();
        loop {
            self.skip_ows();
            match self.peek() {
                None => break,
                Some(b',') => self.pos += 1,
                Some(_) => {
                    out.push(self.extension()?);
                    // extension() stops only at a comma or the end.
                    if self.peek() == Some(b',') {
                        self.pos += 1;
                    }
                }
            }
        }
        if out.is_empty() { None } else { Some(out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params.iter().map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned))).collect(),
        }
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"chat"));
        assert!(is_token(b"v1.chat_x-y~!#$%&'*+^`|"));
        for bad in [&b""[..], b"a b", b"a,b", b"a;b", b"\"a\"", b"a/b", b"\xc3\xa9", b"a\x7f"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn trim_and_list() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b""), b"");
        let v = b" keep-alive ,, Upgrade\t,";
        assert_eq!(list_elements(v).collect::<Vec<_>>(), [&b"keep-alive"[..], b"Upgrade"]);
        assert_eq!(list_elements(b" , ,").count(), 0);
    }

    #[test]
    fn long_whitespace_runs_are_linear() {
        let mut v = b"chat,".to_vec();
        v.extend(std::iter::repeat_n(b' ', 32_000));
        v.extend_from_slice(b"superchat");
        let els: Vec<_> = list_elements(&v).collect();
        assert_eq!(els, [&b"chat"[..], b"superchat"]);
    }

    #[test]
    fn extensions_parse() {
        assert_eq!(parse_extensions("permessage-deflate").unwrap(), [ext("permessage-deflate", &[])]);
        assert_eq!(
            parse_extensions(
                " , permessage-deflate ;client_max_window_bits; server_max_window_bits = \"10\" ,, x ; a=b;a=c ,"
            )
            .unwrap(),
            [
                ext("permessage-deflate", &[("client_max_window_bits", None), ("server_max_window_bits", Some("10"))]),
                ext("x", &[("a", Some("b")), ("a", Some("c"))]),
            ]
        );
        // Escapes are undone; the result must still be a token.
        assert_eq!(parse_extensions(r#"x; a="\1\0""#).unwrap(), [ext("x", &[("a", Some("10"))])]);
    }

    #[test]
    fn extensions_reject() {
        for bad in [
            "",
            " , ",
            "a b",
            "a;",
            "a; ",
            "a;=b",
            "a; b=",
            "a; b=\"\"",
            "a; b=\"c d\"",
            "a; b=\"c",
            "a; b=\"c\\",
            "a; b=\"c\"d",
            "a; b=c d",
            ";a",
            "a,;b",
            "a; b=\"x\\\"\"",
            "a; b=\"\x01\"",
            "a; b=\"\\\x01\"",
            "é",
            "a; b=\"é\"",
            "a=b",
        ] {
            assert_eq!(parse_extensions(bad), Err(HandshakeError::MalformedExtensions), "{bad:?}");
        }
    }

    #[test]
    fn unclosed_quote_with_many_escapes_fails() {
        let mut v = String::from("x; a=\"");
        for _ in 0..10_000 {
            v.push_str("\\a");
        }
        assert_eq!(parse_extensions(&v), Err(HandshakeError::MalformedExtensions));
        // Closed, it is a long but valid token.
        v.push('"');
        let exts = parse_extensions(&v).unwrap();
        assert_eq!(exts[0].params[0].1.as_deref().map(str::len), Some(10_000));
    }

    #[test]
    fn to_header_value_quotes_non_tokens() {
        let e = ext("x", &[("a", Some("1")), ("b", None), ("c", Some("p q\"\\"))]);
        assert_eq!(e.to_header_value(), r#"x; a=1; b; c="p q\"\\""#);
        let e = ext("x", &[("a", Some("1")), ("b", None)]);
        assert_eq!(parse_extensions(&e.to_header_value()).unwrap(), [e]);
    }
}
