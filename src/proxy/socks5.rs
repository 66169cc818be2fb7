//! SOCKS5 proxies for clients, sans I/O: the `CONNECT` command of RFC 1928,
//! with optional user name and password authentication (RFC 1929).
//!
//! The exchange is in lockstep: the client greets the proxy with the
//! authentication methods it offers, the proxy picks one, the client
//! authenticates if the proxy picked user name and password, then asks for a
//! connection to the target, and the proxy answers. A success turns the
//! connection into a blind tunnel, as with an HTTP proxy's `CONNECT`.
//! [`Socks5Connect`] holds the state: it hands out what to send with
//! [`take_output`](Socks5Connect::take_output) and takes what the proxy sends
//! with [`receive`](Socks5Connect::receive), however it is split. The target
//! is a name the proxy resolves, or an address the caller resolved.

use core::fmt;
use core::net::IpAddr;

use super::{ProxyError, is_reg_name_char};

const VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASSWORD: u8 = 0x02;
const METHOD_NO_ACCEPTABLE: u8 = 0xff;
/// RFC 1929's sub-negotiation has a version of its own.
const AUTH_VERSION: u8 = 1;
const COMMAND_CONNECT: u8 = 1;
const ADDRESS_IPV4: u8 = 1;
const ADDRESS_NAME: u8 = 3;
const ADDRESS_IPV6: u8 = 4;

/// One `CONNECT` exchange with a SOCKS5 proxy (RFC 1928), with optional user
/// name and password authentication (RFC 1929).
///
/// Send what [`take_output`](Self::take_output) hands out, feed what the
/// proxy answers to [`receive`](Self::receive), and repeat until it returns
/// [`Socks5Progress::Established`]. `Debug` does not show the password.
///
/// ```
/// use rfc6455::{Socks5Connect, Socks5Progress};
///
/// let mut connect = Socks5Connect::new("example.com", 443, None)?;
/// // The greeting: version 5, one method offered, "no authentication".
/// assert_eq!(connect.take_output(), [5, 1, 0]);
/// // The proxy picks it; the client asks for example.com:443.
/// let Socks5Progress::Pending(mut connect) = connect.receive(&[5, 0])? else { panic!() };
/// assert_eq!(connect.take_output(), b"\x05\x01\x00\x03\x0bexample.com\x01\xbb");
/// // Success, bound to 10.0.0.1:4000; the tunnel is open.
/// let Socks5Progress::Established(leftover) = connect.receive(&[5, 0, 0, 1, 10, 0, 0, 1, 0x0f, 0xa0])? else {
///     panic!()
/// };
/// assert!(leftover.is_empty());
/// # Ok::<(), rfc6455::ProxyError>(())
/// ```
#[derive(Clone)]
pub struct Socks5Connect {
    step: Step,
    /// Bytes to send that the caller has not taken yet.
    output: Vec<u8>,
    /// Bytes received and not parsed yet (less than one answer).
    input: Vec<u8>,
    /// The RFC 1929 request, sent if the proxy picks user name and password.
    authentication: Option<Vec<u8>>,
    /// The `CONNECT` request, sent once the method is settled.
    request: Vec<u8>,
}

/// Where a [`Socks5Connect`] stands after [`receive`](Socks5Connect::receive).
#[derive(Debug)]
pub enum Socks5Progress {
    /// The proxy has not finished answering: send what
    /// [`take_output`](Socks5Connect::take_output) hands out, if anything,
    /// and keep feeding.
    Pending(Socks5Connect),
    /// The tunnel is open. The bytes are those received after the proxy's
    /// answer: they belong to the tunnel.
    Established(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the method the proxy picks.
    Method,
    /// Waiting for the verdict on the user name and password.
    Authentication,
    /// Waiting for the answer to `CONNECT`.
    Reply,
    /// The tunnel is open.
    Established,
}

impl fmt::Debug for Socks5Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Connect")
            .field("step", &self.step)
            .field("output_len", &self.output.len())
            .field("input_len", &self.input.len())
            .field("authenticates", &self.authentication.is_some())
            .finish_non_exhaustive()
    }
}

impl Socks5Connect {
    /// A `CONNECT` exchange for `host:port`. An IPv4 or IPv6 address (with or
    /// without brackets) is sent as an address; anything else as a name for
    /// the proxy to resolve. With `credentials`, the greeting offers user
    /// name and password authentication as well as none.
    ///
    /// # Errors
    ///
    /// - [`ProxyError::InvalidTarget`] for port 0, or a name that is empty,
    ///   longer than 255 bytes, or has characters outside RFC 3986's host
    ///   syntax.
    /// - [`ProxyError::InvalidCredentials`] for an empty user name, or a user
    ///   name or password longer than 255 bytes (RFC 1929).
    pub fn new(host: &str, port: u16, credentials: Option<(&str, &str)>) -> Result<Self, ProxyError> {
        let request = connect_request(host, port)?;
        let authentication = credentials.map(|(user, password)| authentication_request(user, password)).transpose()?;
        let output = match authentication {
            Some(_) => vec![VERSION, 2, METHOD_NONE, METHOD_USER_PASSWORD],
            None => vec![VERSION, 1, METHOD_NONE],
        };
        Ok(Self { step: Step::Method, output, input: Vec::new(), authentication, request })
    }

    /// The bytes to send to the proxy now, all of them, before reading its
    /// next answer (empty while an answer is awaited).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Takes bytes the proxy sent.
    ///
    /// # Errors
    ///
    /// - [`ProxyError::SocksNoAcceptableMethod`]: the proxy accepts none of
    ///   the methods offered.
    /// - [`ProxyError::SocksAuthenticationFailed`]: it refused the user name
    ///   and password.
    /// - [`ProxyError::SocksRefused`]: it refused the connection, with its
    ///   reply code.
    /// - [`ProxyError::MalformedResponse`]: the answer is not SOCKS5 (a wrong
    ///   version byte, a method that was not offered, an unknown address
    ///   type).
    pub fn receive(mut self, bytes: &[u8]) -> Result<Socks5Progress, ProxyError> {
        self.input.extend_from_slice(bytes);
        loop {
            let Some(used) = self.parse()? else {
                return Ok(Socks5Progress::Pending(self));
            };
            self.input.drain(..used);
            if self.step == Step::Established {
                return Ok(Socks5Progress::Established(self.input));
            }
        }
    }

    /// The error for a proxy that closed the connection before its answer
    /// was complete.
    pub fn receive_eof(self) -> ProxyError {
        ProxyError::UnexpectedEof
    }

    /// Parses the answer awaited, if it is complete; returns how many bytes
    /// it took.
    fn parse(&mut self) -> Result<Option<usize>, ProxyError> {
        let input = &self.input[..];
        match self.step {
            Step::Established => Ok(None),
            Step::Method => {
                let &[version, method, ..] = input else { return Ok(None) };
                if version != VERSION {
                    return Err(ProxyError::MalformedResponse("not a SOCKS5 proxy (its version byte is not 5)"));
                }
                match method {
                    METHOD_NONE => self.send_request(),
                    METHOD_USER_PASSWORD if self.authentication.is_some() => {
                        self.output = self.authentication.take().unwrap_or_default();
                        self.step = Step::Authentication;
                    }
                    METHOD_NO_ACCEPTABLE => {
                        return Err(ProxyError::SocksNoAcceptableMethod {
                            credentials_offered: self.authentication.is_some(),
                        });
                    }
                    _ => return Err(ProxyError::MalformedResponse("the SOCKS5 proxy picked a method not offered")),
                }
                Ok(Some(2))
            }
            Step::Authentication => {
                let &[version, status, ..] = input else { return Ok(None) };
                if version != AUTH_VERSION {
                    return Err(ProxyError::MalformedResponse("the SOCKS5 authentication answer's version is not 1"));
                }
                if status != 0 {
                    return Err(ProxyError::SocksAuthenticationFailed);
                }
                self.send_request();
                Ok(Some(2))
            }
            Step::Reply => {
                let &[version, code, _reserved, address_type, ..] = input else {
                    // A refusal is reported as soon as its code is in.
                    return match *input {
                        [VERSION, code, ..] if code != 0 => Err(ProxyError::SocksRefused { code }),
                        [version, ..] if version != VERSION => Err(reply_version()),
                        _ => Ok(None),
                    };
                };
                if version != VERSION {
                    return Err(reply_version());
                }
                if code != 0 {
                    return Err(ProxyError::SocksRefused { code });
                }
                let address_len = match address_type {
                    ADDRESS_IPV4 => 4,
                    ADDRESS_IPV6 => 16,
                    ADDRESS_NAME => match input.get(4) {
                        Some(&len) => 1 + usize::from(len),
                        None => return Ok(None),
                    },
                    _ => return Err(ProxyError::MalformedResponse("unknown address type in the SOCKS5 reply")),
                };
                // Header, bound address, bound port (neither is needed).
                let len = 4 + address_len + 2;
                if input.len() < len {
                    return Ok(None);
                }
                self.step = Step::Established;
                Ok(Some(len))
            }
        }
    }

    fn send_request(&mut self) {
        self.output = self.request.clone();
        self.step = Step::Reply;
    }
}

fn reply_version() -> ProxyError {
    ProxyError::MalformedResponse("the SOCKS5 reply's version byte is not 5")
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT` (RFC 1928 section 4).
fn connect_request(host: &str, port: u16) -> Result<Vec<u8>, ProxyError> {
    if port == 0 {
        return Err(ProxyError::InvalidTarget("port 0"));
    }
    let mut request = vec![VERSION, COMMAND_CONNECT, 0];
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match unbracketed.unwrap_or(host).parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if unbracketed.is_none() => {
            request.push(ADDRESS_IPV4);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(ADDRESS_IPV6);
            request.extend_from_slice(&ip.octets());
        }
        _ if unbracketed.is_some() || host.contains(':') => {
            return Err(ProxyError::InvalidTarget("invalid IPv6 address"));
        }
        _ => {
            if host.is_empty() {
                return Err(ProxyError::InvalidTarget("empty host"));
            }
            let len = u8::try_from(host.len())
                .map_err(|_| ProxyError::InvalidTarget("a SOCKS5 host name has at most 255 bytes"))?;
            if !host.bytes().all(is_reg_name_char) {
                return Err(ProxyError::InvalidTarget("characters outside the host syntax"));
            }
            request.push(ADDRESS_NAME);
            request.push(len);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    Ok(request)
}

/// `VER ULEN UNAME PLEN PASSWD` (RFC 1929 section 2).
pub(super) fn authentication_request(user: &str, password: &str) -> Result<Vec<u8>, ProxyError> {
    const TOO_LONG: ProxyError =
        ProxyError::InvalidCredentials("a SOCKS5 user name and password have at most 255 bytes each (RFC 1929)");
    if user.is_empty() {
        return Err(ProxyError::InvalidCredentials("a SOCKS5 user name cannot be empty (RFC 1929)"));
    }
    let user_len = u8::try_from(user.len()).map_err(|_| TOO_LONG)?;
    let password_len = u8::try_from(password.len()).map_err(|_| TOO_LONG)?;
    let mut request = Vec::with_capacity(3 + user.len() + password.len());
    request.extend_from_slice(&[AUTH_VERSION, user_len]);
    request.extend_from_slice(user.as_bytes());
    request.push(password_len);
    request.extend_from_slice(password.as_bytes());
    Ok(request)
}

/// What a reply code of RFC 1928 section 6 means.
pub(super) fn reply_meaning(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv6Addr;

    /// Runs an exchange against the proxy's answers (one per step, fed whole
    /// and then byte by byte, which must agree); returns what the client sent
    /// and the outcome.
    fn exchange(
        host: &str,
        credentials: Option<(&str, &str)>,
        answers: &[&[u8]],
    ) -> (Vec<u8>, Result<Vec<u8>, ProxyError>) {
        let run = |bytewise: bool| {
            let mut connect = Socks5Connect::new(host, 443, credentials).unwrap();
            let mut sent = connect.take_output();
            // Byte by byte, the bytes not yet fed when the tunnel opens are
            // the tunnel's, as the leftover is when the answers come whole.
            let pieces: Vec<&[u8]> =
                if bytewise { answers.iter().flat_map(|a| a.chunks(1)).collect() } else { answers.to_vec() };
            for (i, piece) in pieces.iter().enumerate() {
                match connect.receive(piece) {
                    Ok(Socks5Progress::Pending(mut next)) => {
                        sent.extend(next.take_output());
                        connect = next;
                    }
                    Ok(Socks5Progress::Established(mut leftover)) => {
                        leftover.extend(pieces[i + 1..].concat());
                        return (sent, Ok(leftover));
                    }
                    Err(error) => return (sent, Err(error)),
                }
            }
            (sent, Err(ProxyError::UnexpectedEof))
        };
        let whole = run(false);
        let bytewise = run(true);
        match (&whole.1, &bytewise.1) {
            // Whole, the request goes out only after the method answer was
            // parsed; when both answers come in one piece it is never taken.
            (Ok(_), Ok(_)) => assert_eq!(whole.1, bytewise.1),
            _ => assert_eq!(whole, bytewise),
        }
        whole
    }

    const SUCCESS_V4: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];

    #[test]
    fn without_authentication_by_name_ipv4_and_ipv6() {
        let (sent, outcome) = exchange("ws.example", None, &[&[5, 0], SUCCESS_V4]);
        assert_eq!(sent, b"\x05\x01\x00\x05\x01\x00\x03\x0aws.example\x01\xbb");
        assert_eq!(outcome, Ok(vec![]));
        let (sent, _) = exchange("192.0.2.7", None, &[&[5, 0], SUCCESS_V4]);
        assert_eq!(sent, [5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 1, 0xbb]);
        for host in ["::1", "[::1]"] {
            let (sent, _) = exchange(host, None, &[&[5, 0], SUCCESS_V4]);
            let mut expected = vec![5, 1, 0, 5, 1, 0, 4];
            expected.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
            expected.extend_from_slice(&[1, 0xbb]);
            assert_eq!(sent, expected, "{host}");
        }
    }

    #[test]
    fn with_user_name_and_password() {
        let answers: [&[u8]; 3] = [&[5, 2], &[1, 0], SUCCESS_V4];
        let (sent, outcome) = exchange("h", Some(("alice", "s3cret")), &answers);
        assert_eq!(sent, b"\x05\x02\x00\x02\x01\x05alice\x06s3cret\x05\x01\x00\x03\x01h\x01\xbb");
        assert_eq!(outcome, Ok(vec![]));
        // Offered both; the proxy may pick none, and the password is not sent.
        let (sent, outcome) = exchange("h", Some(("alice", "s3cret")), &[&[5, 0], SUCCESS_V4]);
        assert_eq!(sent, b"\x05\x02\x00\x02\x05\x01\x00\x03\x01h\x01\xbb");
        assert_eq!(outcome, Ok(vec![]));
        let (_, outcome) = exchange("h", Some(("alice", "wrong")), &[&[5, 2], &[1, 1]]);
        assert_eq!(outcome, Err(ProxyError::SocksAuthenticationFailed));
    }

    #[test]
    fn replies_of_every_address_type_and_the_bytes_after_them() {
        let mut name_reply = vec![5, 0, 0, 3, 9];
        name_reply.extend_from_slice(b"proxy.lan\x00\x50");
        let mut v6_reply = vec![5, 0, 0, 4];
        v6_reply.extend_from_slice(&[0; 18]);
        for reply in [SUCCESS_V4.to_vec(), name_reply, v6_reply] {
            let mut with_more = reply.clone();
            with_more.extend_from_slice(b"HTTP/1.1 101");
            // The method answer and the reply may also arrive together.
            let mut together = vec![5, 0];
            together.extend_from_slice(&with_more);
            assert_eq!(exchange("h", None, &[&together]).1, Ok(b"HTTP/1.1 101".to_vec()), "{reply:?}");
            assert_eq!(exchange("h", None, &[&[5, 0], &reply[..reply.len() - 1]]).1, Err(ProxyError::UnexpectedEof));
        }
    }

    #[test]
    fn refusals_and_malformed_answers() {
        for code in 1..=9 {
            assert_eq!(exchange("h", None, &[&[5, 0], &[5, code]]).1, Err(ProxyError::SocksRefused { code }));
        }
        assert_eq!(
            exchange("h", None, &[&[5, 0xff]]).1,
            Err(ProxyError::SocksNoAcceptableMethod { credentials_offered: false })
        );
        assert_eq!(
            exchange("h", Some(("u", "p")), &[&[5, 0xff]]).1,
            Err(ProxyError::SocksNoAcceptableMethod { credentials_offered: true })
        );
        let malformed: [&[&[u8]]; 6] = [
            &[&[4, 0]],                      // a SOCKS4 answer
            &[b"HTTP/1.1 400 Bad Request"],  // an HTTP proxy
            &[&[5, 2]],                      // user name and password, not offered
            &[&[5, 1]],                      // GSSAPI, not offered
            &[&[5, 0], &[4, 0, 0, 1]],       // the reply's version
            &[&[5, 0], &[5, 0, 0, 2, 0, 0]], // no address type 2
        ];
        for answers in malformed {
            assert!(matches!(exchange("h", None, answers).1, Err(ProxyError::MalformedResponse(_))), "{answers:?}");
        }
        let (_, outcome) = exchange("h", Some(("u", "p")), &[&[5, 2], &[5, 0]]);
        assert!(matches!(outcome, Err(ProxyError::MalformedResponse(_))), "RFC 1929's answer has version 1");
    }

    #[test]
    fn targets_and_credentials_that_cannot_be_sent() {
        let long = "a".repeat(256);
        for host in ["", "a b", "a\r\nb", "a/b", "[::1", "1:2", "[1.2.3.4]", &long] {
            assert!(matches!(Socks5Connect::new(host, 80, None), Err(ProxyError::InvalidTarget(_))), "{host:?}");
        }
        assert!(Socks5Connect::new(&long[..255], 80, None).is_ok());
        assert!(matches!(Socks5Connect::new("h", 0, None), Err(ProxyError::InvalidTarget(_))));
        for (user, password) in [("", "p"), (&long[..], "p"), ("u", &long[..])] {
            let result = Socks5Connect::new("h", 80, Some((user, password)));
            assert!(matches!(result, Err(ProxyError::InvalidCredentials(_))), "{} {}", user.len(), password.len());
        }
        assert!(Socks5Connect::new("h", 80, Some((&long[..255], &long[..255]))).is_ok());
        assert!(Socks5Connect::new("h", 80, Some(("u", ""))).is_ok());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let connect = Socks5Connect::new("h", 80, Some(("alice", "hunter2"))).unwrap();
        let shown = format!("{connect:?}");
        assert!(!shown.contains("hunter2") && shown.contains("authenticates: true"), "{shown}");
    }

    #[test]
    fn reply_codes_have_their_meaning() {
        assert_eq!(reply_meaning(5), "connection refused");
        assert_eq!(reply_meaning(9), "unassigned reply code");
        assert_eq!(
            ProxyError::SocksRefused { code: 2 }.to_string(),
            "the SOCKS5 proxy refused the connection: connection not allowed by ruleset (reply code 2)"
        );
    }
}
