//! The peer echo servers, run in a child process of the benchmark
//! (`loopback --serve KIND ADDR`) so that each can be pinned to its own core
//! and its resident memory read from `/proc`.
//!
//! Each prints `listening on ws://ADDR` to stderr once bound, as
//! `examples/echo_server.rs` does, and serves until killed.

use std::cell::RefCell;
use std::io;
use std::net::TcpListener;
use std::thread;

/// Serves `kind` on `addr` forever.
pub(crate) fn serve(kind: &str, addr: &str) -> io::Result<()> {
    match kind {
        "tungstenite" => tungstenite_server(addr),
        "fastwebsockets" => fastwebsockets_server(addr),
        "raw" => raw_tcp_server(addr),
        other => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown server kind {other:?}"))),
    }
}

/// tungstenite 0.30, blocking: one thread per connection, `read()` then
/// `send()`, which writes and flushes each message on its own.
fn tungstenite_server(addr: &str) -> io::Result<()> {
    use tungstenite::Message;
    let listener = TcpListener::bind(addr)?;
    eprintln!("listening on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // As our adapter does: batching (or not) is the library's business.
        let _ = stream.set_nodelay(true);
        let _ = thread::Builder::new().spawn(move || {
            let Ok(mut ws) = tungstenite::accept(stream) else { return };
            loop {
                match ws.read() {
                    Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                        if ws.send(message).is_err() {
                            return;
                        }
                    }
                    // Pings are answered and the close frame echoed by the
                    // library; the read after a close ends the loop.
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    }
    Ok(())
}

/// fastwebsockets 0.10 behind hyper 1, on a single-threaded tokio runtime,
/// as in fastwebsockets' own `echo_server` example (frames are collected into
/// whole messages, which validates text, and written back).
fn fastwebsockets_server(addr: &str) -> io::Result<()> {
    use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn handle(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
    }

    async fn upgrade(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut request)?;
        tokio::spawn(async move {
            let _ = tokio::task::unconstrained(handle(fut)).await;
        });
        Ok(response)
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("listening on ws://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = http1::Builder::new().serve_connection(io, service_fn(upgrade)).with_upgrades().await;
            });
        }
    })
}

thread_local! {
    /// The raw server's one read buffer, shared by every connection: an idle
    /// connection holds none.
    static RAW_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 << 10]);
}

/// Raw TCP echo (the limit): every byte read is written back, WebSocket
/// frames and handshake alike. Single-threaded epoll (tokio), one shared read
/// buffer, so an idle connection costs only its socket.
fn raw_tcp_server(addr: &str) -> io::Result<()> {
    async fn echo(stream: tokio::net::TcpStream) -> io::Result<()> {
        let mut pending = Vec::new();
        loop {
            stream.readable().await?;
            let read = RAW_BUF.with_borrow_mut(|buf| -> io::Result<Option<usize>> {
                let n = match stream.try_read(buf) {
                    Ok(0) => return Ok(None),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(0)),
                    Err(e) => return Err(e),
                };
                let mut written = 0;
                while written < n {
                    match stream.try_write(&buf[written..n]) {
                        Ok(m) => written += m,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                pending.extend_from_slice(&buf[written..n]);
                Ok(Some(n))
            })?;
            if read.is_none() {
                return Ok(());
            }
            let mut written = 0;
            while written < pending.len() {
                stream.writable().await?;
                match stream.try_write(&pending[written..]) {
                    Ok(m) => written += m,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            pending.clear();
            if pending.capacity() > 1 << 20 {
                pending = Vec::new();
            }
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("listening on ws://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = echo(stream).await;
            });
        }
    })
}
