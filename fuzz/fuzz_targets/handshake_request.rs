//! Arbitrary bytes as an HTTP upgrade request, whole and in two pieces: the
//! same outcome either way, and never a panic.
#![no_main]

use rfc6455::{Accept, Config, ServerHandshake, ServerProgress};

fn outcome(pieces: &[&[u8]]) -> String {
    let mut config = Config::default();
    config.max_handshake_size = 4096;
    config.max_headers = 16;
    let mut handshake = ServerHandshake::new(config);
    for piece in pieces {
        match handshake.receive(piece) {
            Ok(ServerProgress::Pending(next)) => handshake = next,
            Ok(ServerProgress::Request(request)) => {
                let plain = !request.is_upgrade();
                let leftover = request.leftover().to_vec();
                return match request.into_upgrade() {
                    Ok(upgrade) => {
                        let offered = upgrade.protocols().first().cloned();
                        let accept = offered.map_or_else(Accept::new, |p| Accept::new().protocol(p));
                        match upgrade.accept(accept) {
                            Ok((response, _conn)) => format!("accepted {response:?} {leftover:?}"),
                            Err(error) => format!("accept failed {error:?}"),
                        }
                    }
                    Err(error) => {
                        // Every server-side rejection has a response to send.
                        assert!(error.http_response().is_some(), "{error:?}");
                        format!("rejected plain={plain} {error:?}")
                    }
                };
            }
            Err(error) => return format!("error {error:?}"),
        }
    }
    "pending".into()
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else { return };
    let cut = usize::from(cut).min(data.len());
    let whole = outcome(&[data]);
    let split = outcome(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);
});
