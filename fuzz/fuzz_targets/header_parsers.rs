//! The subprotocol and extension header parsers on arbitrary values: linear,
//! total, and what parses serialises back to something that parses the same.
#![no_main]

use rfc6455::{Config, ServerHandshake, ServerProgress, parse_extensions};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    if let Ok(extensions) = parse_extensions(&text) {
        let again: Vec<String> = extensions.iter().map(|e| e.to_header_value()).collect();
        let reparsed = parse_extensions(&again.join(", ")).expect("serialised extensions parse");
        assert_eq!(reparsed, extensions);
    }
    // The same value as Sec-WebSocket-Protocol and -Extensions of a request.
    let value: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {value}\r\nSec-WebSocket-Extensions: {value}\r\n\r\n"
    );
    if let Ok(ServerProgress::Request(request)) = ServerHandshake::new(Config::default()).receive(request.as_bytes()) {
        let _ = request.into_upgrade();
    }
});
