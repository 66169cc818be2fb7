//! WebSocket URIs (RFC 6455 section 3): `ws://host[:port][/path][?query]` and
//! the `wss` equivalent, with the authority rules of RFC 3986 section 3.2.
//!
//! Fragments are refused (section 3: they "MUST NOT be used"), as is userinfo,
//! which a WebSocket URI has no place for. The path and query are kept byte for
//! byte; only an empty path becomes `/` (section 3).

use crate::HandshakeError;

/// The parts of a WebSocket URI the handshake needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WsUrl {
    /// The host: a name, an IPv4 address, or an IPv6 address without brackets.
    pub(crate) host: String,
    /// `host` or `host:port` when the port is not the scheme's default, with
    /// brackets around an IPv6 address: the `Host` header of section 4.1.
    pub(crate) host_header: String,
    /// The port, explicit or the scheme's default (80 or 443).
    pub(crate) port: u16,
    /// `wss`.
    pub(crate) secure: bool,
    /// `path[?query]`, starting with `/`.
    pub(crate) target: String,
}

fn invalid(reason: &'static str) -> HandshakeError {
    HandshakeError::InvalidUrl(reason)
}

/// Parses a `ws` or `wss` URI.
pub(crate) fn parse(url: &str) -> Result<WsUrl, HandshakeError> {
    if !url.is_ascii() {
        return Err(invalid("non-ASCII characters (percent-encode them)"));
    }
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid("spaces or control characters"));
    }
    if url.contains('#') {
        return Err(invalid("fragments are not allowed"));
    }
    let (scheme, rest) = url.split_once(':').ok_or(invalid("missing scheme"))?;
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(invalid("missing scheme"));
    }
    let (secure, default_port) = if scheme.eq_ignore_ascii_case("ws") {
        (false, 80)
    } else if scheme.eq_ignore_ascii_case("wss") {
        (true, 443)
    } else {
        return Err(HandshakeError::UnsupportedScheme(scheme.to_owned()));
    };
    let rest = rest.strip_prefix("//").ok_or(invalid("missing // after the scheme"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(invalid("userinfo is not allowed"));
    }

    let (host, bracketed, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or(invalid("unclosed IPv6 bracket"))?;
        if !is_ipv6(addr) {
            return Err(invalid("invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(invalid("unexpected characters after the IPv6 address"))?),
        };
        (addr, true, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        if !host.bytes().all(is_reg_name_char) {
            return Err(invalid("invalid characters in host"));
        }
        (host, false, port)
    };

    let port = match port {
        None => default_port,
        Some(p) => parse_port(p).ok_or(invalid("invalid port"))?,
    };

    let mut host_header = if bracketed { format!("[{host}]") } else { host.to_owned() };
    if port != default_port {
        host_header.push(':');
        host_header.push_str(&port.to_string());
    }

    let target = if path_query.starts_with('/') {
        path_query.to_owned()
    } else {
        // Empty, or a query with no path.
        format!("/{path_query}")
    };

    Ok(WsUrl { host: host.to_owned(), host_header, port, secure, target })
}

/// `port = 1*5DIGIT`, from 1 to 65535.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&port| port != 0)
}

/// `reg-name` characters (RFC 3986 section 3.2.2): unreserved, `%` of
/// pct-encoded, and sub-delims. IPv4 addresses are a subset.
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// `IPv6address` of RFC 3986 section 3.2.2 (zone identifiers not supported).
fn is_ipv6(s: &str) -> bool {
    match s.split_once("::") {
        None => ipv6_groups(s, true) == Some(8),
        Some((head, tail)) => {
            if tail.contains("::") {
                return false;
            }
            match (ipv6_groups(head, false), ipv6_groups(tail, true)) {
                (Some(a), Some(b)) => a + b <= 7,
                _ => false,
            }
        }
    }
}

/// The number of 16-bit groups in a run of `h16` separated by `:`, the last of
/// which may be an IPv4 address (two groups) when `v4_last`.
fn ipv6_groups(part: &str, v4_last: bool) -> Option<usize> {
    if part.is_empty() {
        return Some(0);
    }
    let mut groups = 0;
    let mut pieces = part.split(':').peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        if last && v4_last && piece.contains('.') {
            if !is_ipv4(piece) {
                return None;
            }
            groups += 2;
        } else if (1..=4).contains(&piece.len()) && piece.bytes().all(|b| b.is_ascii_hexdigit()) {
            groups += 1;
        } else {
            return None;
        }
    }
    Some(groups)
}

/// A dotted-decimal IPv4 address.
fn is_ipv4(s: &str) -> bool {
    let mut count = 0;
    for octet in s.split('.') {
        count += 1;
        if octet.is_empty()
            || octet.len() > 3
            || !octet.bytes().all(|b| b.is_ascii_digit())
            || octet.parse::<u16>().map_or(true, |v| v > 255)
        {
            return false;
        }
    }
    count == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> WsUrl {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn basics() {
        let u = ok("ws://example.com/chat");
        assert_eq!(
            u,
            WsUrl {
                host: "example.com".into(),
                host_header: "example.com".into(),
                port: 80,
                secure: false,
                target: "/chat".into(),
            }
        );
        let u = ok("WSS://Example.com");
        assert!(u.secure);
        assert_eq!((u.port, u.target.as_str()), (443, "/"));
        assert_eq!(u.host_header, "Example.com");
        let u = ok("ws://h?x=1");
        assert_eq!(u.target, "/?x=1");
        let u = ok("ws://h:80/");
        assert_eq!((u.port, u.host_header.as_str()), (80, "h"));
        let u = ok("wss://h:80/");
        assert_eq!((u.port, u.host_header.as_str()), (80, "h:80"));
        let u = ok("ws://127.0.0.1:9001/a/b?c=d&e=%20f");
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.host_header, "127.0.0.1:9001");
        assert_eq!(u.target, "/a/b?c=d&e=%20f");
    }

    #[test]
    fn ipv6() {
        let u = ok("ws://[::1]:9001/x");
        assert_eq!(u.host, "::1");
        assert_eq!(u.host_header, "[::1]:9001");
        assert_eq!(u.port, 9001);
        let u = ok("wss://[2001:db8::ff00:42:8329]");
        assert_eq!(u.host_header, "[2001:db8::ff00:42:8329]");
        assert_eq!(u.port, 443);
        ok("ws://[::ffff:192.0.2.1]/");
        ok("ws://[1:2:3:4:5:6:7:8]/");
        ok("ws://[1::]/");
        for bad in [
            "ws://[]/",
            "ws://[:::]/",
            "ws://[1:2:3:4:5:6:7:8:9]/",
            "ws://[1::2::3]/",
            "ws://[12345::]/",
            "ws://[::1/",
            "ws://[::1]x/",
            "ws://[g::]/",
            "ws://[::1.2.3.256]/",
            "ws://[1:2:3:4:5:6:7::8]/",
        ] {
            assert!(matches!(parse(bad), Err(HandshakeError::InvalidUrl(_))), "{bad}");
        }
    }

    #[test]
    fn rejects() {
        use HandshakeError::*;
        assert_eq!(parse("http://h/"), Err(UnsupportedScheme("http".into())));
        assert_eq!(parse("HTTPS://h/"), Err(UnsupportedScheme("HTTPS".into())));
        for bad in [
            "",
            "example.com/chat",
            "ws:/h",
            "ws:h",
            "ws://",
            "ws:///path",
            "ws://:80/",
            "ws://h/#frag",
            "ws://h#",
            "ws://user@h/",
            "ws://user:pw@h/",
            "ws://h:/",
            "ws://h:0/",
            "ws://h:65536/",
            "ws://h:123456/",
            "ws://h:+80/",
            "ws://h:8a/",
            "ws://h:80:80/",
            "ws://h /",
            "ws://h/a b",
            "ws://h/\r\n",
            "ws://h/\0",
            "ws://hé/",
            "ws://h/é",
            "ws://h\"/",
            "1ws://h/",
        ] {
            assert!(matches!(parse(bad), Err(InvalidUrl(_))), "{bad:?}: {:?}", parse(bad));
        }
    }
}
