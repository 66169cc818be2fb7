//! A client and a server talking through memory, with every byte printed:
//! the upgrade handshake, a few messages, a ping, and the close handshake.
//!
//! Run with `cargo run --example in_memory`.

use rfc6455::{
    Accept, ClientHandshake, ClientProgress, ClientRequest, CloseCode, Config, Connection, Event, ServerHandshake,
    ServerProgress,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let request = ClientRequest::new("ws://127.0.0.1:8080/ws?name=ada")?.protocol("chat.v1");
    let client_handshake = ClientHandshake::new(request, Config::default())?;
    println!(
        "client -> server ({} bytes):\n{}",
        client_handshake.request_bytes().len(),
        text(client_handshake.request_bytes())
    );

    let ServerProgress::Request(request) =
        ServerHandshake::new(Config::default()).receive(client_handshake.request_bytes())?
    else {
        return Err("request incomplete".into());
    };
    let upgrade = request.into_upgrade()?;
    println!("server sees path {:?}, query {:?}, protocols {:?}", upgrade.path(), upgrade.query(), upgrade.protocols());
    let (response, mut server) = upgrade.accept(Accept::new().protocol("chat.v1"))?;
    println!("\nserver -> client ({} bytes):\n{}", response.len(), text(&response));

    let ClientProgress::Done(mut client, response) = client_handshake.receive(&response)? else {
        return Err("response incomplete".into());
    };
    println!("client negotiated subprotocol {:?}\n", response.protocol());

    client.send_text("hello, server")?;
    client.send_binary(&[0xde, 0xad, 0xbe, 0xef])?;
    client.ping(b"are you there?")?;
    deliver("client", &mut client, "server", &mut server)?;
    deliver("server", &mut server, "client", &mut client)?;

    server.send_text("héllo, client ✓")?;
    server.close(CloseCode::NORMAL, "done")?;
    deliver("server", &mut server, "client", &mut client)?;
    deliver("client", &mut client, "server", &mut server)?;
    println!("\nstates: client {:?}, server {:?}", client.state(), server.state());
    println!("server should close the TCP connection now: {}", server.should_close_transport());
    Ok(())
}

/// Moves everything `from` has to send into `to`, and prints the events.
fn deliver(
    from_name: &str,
    from: &mut Connection,
    to_name: &str,
    to: &mut Connection,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut wire = Vec::new();
    from.take_output(&mut wire);
    if wire.is_empty() {
        return Ok(());
    }
    println!("{from_name} -> {to_name}: {} bytes on the wire: {}", wire.len(), hex(&wire));
    to.receive(&wire);
    while let Some(event) = to.poll_event()? {
        match event {
            Event::Text(text) => println!("  {to_name} got text {text:?}"),
            Event::Binary(data) => println!("  {to_name} got binary {}", hex(data)),
            Event::Ping(data) => println!("  {to_name} got ping {:?} (pong queued)", String::from_utf8_lossy(data)),
            Event::Pong(data) => println!("  {to_name} got pong {:?}", String::from_utf8_lossy(data)),
            Event::Close(frame) => println!("  {to_name} got close {frame:?}"),
        }
    }
    Ok(())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n  ").trim_end().to_string().replacen("", "  ", 1)
}

fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(32).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 32 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}
