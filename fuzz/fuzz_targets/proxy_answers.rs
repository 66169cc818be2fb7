//! What a proxy may answer, and the proxy settings a user may give: the HTTP
//! `CONNECT` exchange and the SOCKS5 exchange on arbitrary answers cut at an
//! arbitrary point (the outcome must not depend on the cut), and proxy URLs
//! and `NO_PROXY` lists on arbitrary text. Nothing may panic.
#![no_main]

use rfc6455::{Config, ProxyConnect, ProxyProgress, ProxyUrl, Socks5Connect, Socks5Progress, no_proxy_matches};

/// The SOCKS5 outcome for `answer` fed in two pieces: `None` while pending,
/// else the leftover bytes or the error.
fn socks5(answer: &[u8], cut: usize) -> Option<Result<Vec<u8>, String>> {
    let mut connect = Socks5Connect::new("example.com", 443, Some(("user", "password"))).ok()?;
    let _ = connect.take_output();
    let mut out = None;
    for (i, piece) in [&answer[..cut], &answer[cut..]].into_iter().enumerate() {
        match connect.receive(piece) {
            Ok(Socks5Progress::Pending(mut next)) => {
                let _ = next.take_output();
                connect = next;
            }
            Ok(Socks5Progress::Established(mut leftover)) => {
                // What follows in the second piece is the tunnel's too.
                if i == 0 {
                    leftover.extend_from_slice(&answer[cut..]);
                }
                out = Some(Ok(leftover));
                break;
            }
            Err(error) => {
                out = Some(Err(error.to_string()));
                break;
            }
        }
    }
    out
}

/// The same for the HTTP exchange.
fn http(answer: &[u8], cut: usize) -> Option<Result<(u16, Vec<u8>), String>> {
    let mut connect = ProxyConnect::new("example.com", 443, None, &Config::default()).ok()?;
    for (i, piece) in [&answer[..cut], &answer[cut..]].into_iter().enumerate() {
        match connect.receive(piece) {
            Ok(ProxyProgress::Pending(next)) => connect = next,
            Ok(ProxyProgress::Established(tunnel)) => {
                let mut leftover = tunnel.leftover().to_vec();
                if i == 0 {
                    leftover.extend_from_slice(&answer[cut..]);
                }
                return Some(Ok((tunnel.status(), leftover)));
            }
            Err(error) => return Some(Err(error.to_string())),
        }
    }
    None
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&cut, answer)) = input.split_first() else { return };
    let cut = usize::from(cut).min(answer.len());
    assert_eq!(socks5(answer, cut), socks5(answer, answer.len()), "SOCKS5 outcome depends on the cut");
    assert_eq!(http(answer, cut), http(answer, answer.len()), "HTTP outcome depends on the cut");
    let text = String::from_utf8_lossy(answer);
    if let Ok(url) = ProxyUrl::parse(&text) {
        // What parses prints back (without credentials) to the same proxy.
        let again = ProxyUrl::parse(&url.to_string()).expect("a printed proxy URL parses");
        assert_eq!((again.scheme(), again.host(), again.port()), (url.scheme(), url.host(), url.port()));
    }
    let (list, host) = text.split_once('|').unwrap_or((&text, "example.com"));
    let _ = no_proxy_matches(list, host, 443);
});
