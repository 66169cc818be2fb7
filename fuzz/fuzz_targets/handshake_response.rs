//! Arbitrary bytes as the server's response to a client handshake. Half the
//! inputs start from a valid 101 response (with the right accept key), so the
//! checks after the status line are reached too.
#![no_main]

use rfc6455::{ClientHandshake, ClientProgress, ClientRequest, Config, accept_key};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else { return };
    let mut config = Config::default();
    config.rng_seed = Some([mode; 32]);
    config.max_handshake_size = 4096;
    let request =
        ClientRequest::new("ws://127.0.0.1:9001/path?q").unwrap().protocol("a").protocol("b").extension("x; y=1");
    let handshake = ClientHandshake::new(request, config).unwrap();
    let mut bytes = Vec::new();
    if mode & 1 == 1 {
        let accept = accept_key(handshake.key().as_bytes());
        bytes.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        bytes.extend_from_slice(format!("Sec-WebSocket-Accept: {accept}\r\n").as_bytes());
    }
    bytes.extend_from_slice(data);
    let cut = usize::from(mode >> 1).min(bytes.len());
    let mut progress = ClientProgress::Pending(handshake);
    for piece in [&bytes[..cut], &bytes[cut..]] {
        progress = match progress {
            ClientProgress::Pending(handshake) => match handshake.receive(piece) {
                Ok(next) => next,
                Err(_) => return,
            },
            done => done,
        };
    }
    if let ClientProgress::Done(mut conn, response) = progress {
        assert_eq!(response.status(), 101);
        if let Some(protocol) = response.protocol() {
            assert!(protocol == "a" || protocol == "b");
        }
        while let Ok(Some(_)) = conn.poll_event() {}
    }
});
