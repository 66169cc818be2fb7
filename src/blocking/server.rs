//! Accepting: the opening handshake with a deadline, the application's
//! decision, and a listener that serves each connection on its own thread.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::error::io_error;
use super::handshake_io::{Deadline, write_all_until};
use super::transport::{close_without_reset, is_timeout};
use super::{Error, MaybeTls, Options, Timeout, Transport, WebSocket};
use crate::{Accept, HandshakeError, Request, Response, Role, ServerHandshake, ServerProgress, UpgradeRequest};

/// A request as the application sees it when deciding.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A valid WebSocket upgrade request: accept it or reject it.
    Upgrade(&'a UpgradeRequest),
    /// A plain HTTP request on the same port: answer it (a page, a redirect,
    /// a 404).
    Http(&'a Request),
}

/// The application's answer to an [`Incoming`] request.
///
/// `T` is anything the decision wants to hand to the connection's handler
/// (a user name from the query string, an authenticated identity); it comes
/// back with the accepted connection.
#[derive(Debug)]
pub enum Reply<T = ()> {
    /// Upgrade, with the chosen subprotocol and extra headers. For a plain
    /// HTTP request this answers 426 Upgrade Required.
    Accept(Accept, T),
    /// Answer with this HTTP response and close (a rejection, or a page).
    Respond(Response),
}

impl Reply {
    /// Accepts with no subprotocol, no extra header and no context.
    pub fn accept() -> Self {
        Self::Accept(Accept::new(), ())
    }
}

/// What [`accept_with`] produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // made once per connection; boxing buys nothing
pub enum Accepted<S: Transport, T = ()> {
    /// An open WebSocket connection, with the context the decision gave.
    WebSocket(WebSocket<S>, T),
    /// The request was answered with an HTTP response and the stream closed.
    Responded,
}

/// Accepts any WebSocket upgrade on `stream` with default [`Options`]
/// (Nagle's algorithm off, as [`Options::nodelay`] says). A plain HTTP
/// request is answered 426 and fails with
/// [`HandshakeError::MissingUpgrade`].
pub fn accept(stream: TcpStream) -> Result<WebSocket<TcpStream>, Error> {
    let options = Options::default();
    stream.set_nodelay(options.nodelay).map_err(io_error)?;
    match accept_with(stream, &options, |_| Reply::accept())? {
        Accepted::WebSocket(ws, ()) => Ok(ws),
        Accepted::Responded => Err(Error::Handshake(HandshakeError::MissingUpgrade)),
    }
}

/// Reads the request (within [`Options::handshake_timeout`]) and lets
/// `decide` accept or reject it, or answer it as plain HTTP.
///
/// Invalid upgrade requests are answered with the right status (400, 426
/// with `Sec-WebSocket-Version: 13`, 431...) before the error is returned.
///
/// ```no_run
/// use rfc6455::blocking::{Accepted, Incoming, Options, Reply, accept_with};
/// use rfc6455::{Accept, Response};
/// let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
/// let (stream, _) = listener.accept()?;
/// let accepted = accept_with(stream, &Options::default(), |request| match request {
///     Incoming::Upgrade(upgrade) if upgrade.origin() == Some("http://127.0.0.1:8080") => {
///         Reply::Accept(Accept::new(), ())
///     }
///     Incoming::Upgrade(_) => Reply::Respond(Response::new(403)),
///     Incoming::Http(_) => Reply::Respond(Response::new(200).body("<h1>hello</h1>")),
/// })?;
/// if let Accepted::WebSocket(mut ws, ()) = accepted {
///     ws.send_text("welcome")?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn accept_with<S, T, F>(stream: S, options: &Options, decide: F) -> Result<Accepted<S, T>, Error>
where
    S: Transport,
    F: FnOnce(Incoming<'_>) -> Reply<T>,
{
    accept_until(stream, options, Deadline::after(options.handshake_timeout), decide)
}

/// [`accept_with`] within a deadline that may have started earlier (before a
/// TLS handshake).
fn accept_until<S, T, F>(
    mut stream: S,
    options: &Options,
    deadline: Deadline,
    decide: F,
) -> Result<Accepted<S, T>, Error>
where
    S: Transport,
    F: FnOnce(Incoming<'_>) -> Reply<T>,
{
    let request = match read_request(&mut stream, options, deadline) {
        Ok(request) => request,
        Err(Error::Handshake(error)) => return Err(answer_error(stream, error, deadline, options)),
        Err(error) => {
            let _ = stream.shutdown();
            return Err(error);
        }
    };
    if !request.is_upgrade() {
        let response = match decide(Incoming::Http(&request)) {
            Reply::Respond(response) => response,
            Reply::Accept(..) => Response::upgrade_required(),
        };
        let bytes = response.to_bytes_closing()?;
        respond_and_close(&mut stream, &bytes, deadline, options, request.has_more_input())?;
        return Ok(Accepted::Responded);
    }
    let upgrade = match request.into_upgrade() {
        Ok(upgrade) => upgrade,
        Err(error) => return Err(answer_error(stream, error, deadline, options)),
    };
    match decide(Incoming::Upgrade(&upgrade)) {
        Reply::Accept(accept, context) => {
            let (bytes, conn) = match upgrade.accept(accept) {
                Ok(accepted) => accepted,
                Err(error) => {
                    // The application's choice was invalid (say, a subprotocol
                    // the client did not offer): the client gets a 500.
                    let bytes = Response::new(500).to_bytes_closing()?;
                    let _ = respond_and_close(&mut stream, &bytes, deadline, options, false);
                    return Err(error.into());
                }
            };
            write_all_until(&mut stream, &bytes, deadline, options.write_timeout)?;
            Ok(Accepted::WebSocket(WebSocket::from_connection(stream, conn, options)?, context))
        }
        Reply::Respond(response) => {
            let bytes = upgrade.reject(response)?;
            respond_and_close(&mut stream, &bytes, deadline, options, false)?;
            Ok(Accepted::Responded)
        }
    }
}

fn read_request<S: Transport>(stream: &mut S, options: &Options, deadline: Deadline) -> Result<Request, Error> {
    let mut progress = ServerProgress::Pending(ServerHandshake::new(options.config.clone()));
    let mut buf = [0u8; 4096];
    loop {
        let handshake = match progress {
            ServerProgress::Pending(handshake) => handshake,
            ServerProgress::Request(request) => return Ok(request),
        };
        stream.set_read_timeout(deadline.remaining()?)?;
        progress = match stream.read(&mut buf) {
            Ok(0) => return Err(handshake.receive_eof().into()),
            Ok(n) => handshake.receive(&buf[..n])?,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => ServerProgress::Pending(handshake),
            Err(error) if is_timeout(&error) => return Err(Error::Timeout(Timeout::Handshake)),
            Err(error) => return Err(io_error(error)),
        };
    }
}

/// Answers a bad request with the status the core chose, closes, and returns
/// the error. The client may still be sending the request (say, a head too
/// large): the close waits for its end (see [`respond_and_close`]).
fn answer_error<S: Transport>(mut stream: S, error: HandshakeError, deadline: Deadline, options: &Options) -> Error {
    if let Some(bytes) = error.http_response() {
        let _ = respond_and_close(&mut stream, &bytes, deadline, options, true);
    } else {
        let _ = stream.shutdown();
    }
    Error::Handshake(error)
}

/// Writes `bytes`, an HTTP response after which the connection ends, and
/// closes; `more_input` says the client may still be sending.
fn respond_and_close<S: Transport>(
    stream: &mut S,
    bytes: &[u8],
    deadline: Deadline,
    options: &Options,
    more_input: bool,
) -> Result<(), Error> {
    let written = write_all_until(stream, bytes, deadline, options.write_timeout).and_then(|()| Ok(stream.flush()?));
    // A client still sending (a body, the rest of a bad request) is not
    // reset: within what is left of the handshake's time and close_timeout.
    // Others are closed at once: an HTTP client may keep its end open after
    // reading the answer, and the caller's thread would wait on it.
    match (&written, deadline.remaining()) {
        (Ok(()), Ok(left)) if more_input => {
            let linger = left.map_or(options.close_timeout, |left| left.min(options.close_timeout));
            close_without_reset(stream, Role::Server, linger);
        }
        _ => {
            let _ = stream.shutdown();
        }
    }
    written
}

/// Stack reserved for a handshake thread of [`Server::serve`] (only the
/// pages touched count): room for a TLS handshake, and well apart from the
/// default size of the connection threads.
const HANDSHAKE_STACK: usize = 256 << 10;

/// How many connections [`Server::serve`] holds at once unless told
/// otherwise ([`Server::max_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long [`Server::serve`] waits before accepting again when the process
/// or the system is out of file descriptors, or the kernel out of memory
/// (the pending connection stays queued, so accepting at once would fail
/// again at once, in a loop that holds a core).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// One connection counted against [`Server::max_connections`], from its
/// acceptance to the end of its handler (or of its failed handshake).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot if fewer than `max` are taken.
    fn take(live: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(Arc::clone(live)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// TLS when configured, then the WebSocket handshake, within one deadline.
fn handshake<T, F>(
    stream: TcpStream,
    options: &Options,
    tls: &TlsSetting,
    decide: F,
) -> Result<Accepted<MaybeTls, T>, Error>
where
    F: FnOnce(Incoming<'_>) -> Reply<T>,
{
    let deadline = Deadline::after(options.handshake_timeout);
    #[cfg(feature = "tls")]
    if let TlsSetting(Some(tls)) = tls {
        let stream = tls.accept_until(stream, deadline, options.write_timeout)?;
        return accept_until(MaybeTls::Tls(stream), options, deadline, decide);
    }
    #[cfg(not(feature = "tls"))]
    let TlsSetting() = tls;
    accept_until(MaybeTls::Plain(stream), options, deadline, decide)
}

/// A TCP listener that serves WebSocket connections (and plain HTTP requests
/// on the same port), each on its own thread.
///
/// ```no_run
/// use rfc6455::blocking::{Incoming, Reply, Server};
/// let server = Server::bind("127.0.0.1:9001")?;
/// server.serve(
///     // The decision may hand anything to the handler: here, the path.
///     |request| match request {
///         Incoming::Upgrade(upgrade) => Reply::Accept(rfc6455::Accept::new(), upgrade.path().to_owned()),
///         Incoming::Http(_) => Reply::Respond(rfc6455::Response::new(404)),
///     },
///     |mut ws, path| {
///         println!("connection on {path}");
///         while let Ok(message) = ws.read() {
///             if ws.send(&message).is_err() {
///                 break;
///             }
///         }
///     },
/// )?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    options: Options,
    tls: TlsSetting,
    max_connections: usize,
}

/// The certificate a [`Server`] serves with, if any (nothing to hold without
/// the `tls` feature).
#[derive(Clone, Debug, Default)]
struct TlsSetting(#[cfg(feature = "tls")] Option<super::ServerTls>);

impl Server {
    /// Listens on `addr` with default [`Options`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr)?,
            options: Options::default(),
            tls: TlsSetting::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    /// At most this many connections at once in [`serve`](Self::serve)
    /// (default [`DEFAULT_MAX_CONNECTIONS`]), counting those still in their
    /// handshake: each holds a thread and a socket. A connection beyond it
    /// is answered `503 Service Unavailable` and closed at once (over TLS,
    /// closed), without a thread, so that a client can back off and retry
    /// and a flood of connections costs the server no more than the limit.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Serves every connection over TLS with this certificate (the `tls`
    /// feature). The TLS handshake and the WebSocket handshake share one
    /// [`Options::handshake_timeout`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ServerTls) -> Self {
        self.tls = TlsSetting(Some(tls));
        self
    }

    /// Replaces the options used for every connection.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The options used for every connection.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The address listened on (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the next TCP connection, with the socket options applied.
    pub fn accept_stream(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.listener.accept()?;
        stream.set_nodelay(self.options.nodelay)?;
        Ok(stream)
    }

    /// The handshakes of a connection from [`accept_stream`](Self::accept_stream),
    /// with this server's options: TLS first when `tls` (the `tls` feature) was
    /// given, then the WebSocket handshake as [`accept_with`] does, within one
    /// [`Options::handshake_timeout`]. For an accept loop of one's own (to run
    /// it on a thread, share the server in an `Arc`).
    pub fn handshake<T, F>(&self, stream: TcpStream, decide: F) -> Result<Accepted<MaybeTls, T>, Error>
    where
        F: FnOnce(Incoming<'_>) -> Reply<T>,
    {
        handshake(stream, &self.options, &self.tls, decide)
    }

    /// Accepts connections forever. Each runs on its own thread (after its
    /// handshakes, on a short-lived one of their own): the request
    /// goes to `decide`, and an accepted connection to `handle` with the
    /// context `decide` gave. Failed handshakes have already been answered and
    /// are dropped, and so is a connection whose thread cannot be started.
    /// Beyond [`max_connections`](Self::max_connections) a connection is
    /// turned away with a 503. When file descriptors run out, accepting
    /// pauses briefly and resumes.
    /// Returns only if accepting fails for a reason other than a transient one.
    pub fn serve<T, D, H>(&self, decide: D, handle: H) -> io::Result<()>
    where
        T: Send + 'static,
        D: Fn(Incoming<'_>) -> Reply<T> + Send + Sync + 'static,
        H: Fn(WebSocket<MaybeTls>, T) + Send + Sync + 'static,
    {
        let decide = Arc::new(decide);
        let handle = Arc::new(handle);
        let live = Arc::new(AtomicUsize::new(0));
        loop {
            let stream = match self.accept_stream() {
                Ok(stream) => stream,
                // The peer gave up before we accepted: keep serving.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                // Out of descriptors (EMFILE, ENFILE) or kernel memory
                // (ENOBUFS, ENOMEM) for a moment: wait for connections to end.
                Err(error) if matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12)) => {
                    thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let Some(slot) = Slot::take(&live, self.max_connections) else {
                self.turn_away(stream);
                continue;
            };
            let decide = Arc::clone(&decide);
            let handle = Arc::clone(&handle);
            let options = self.options.clone();
            let tls = self.tls.clone();
            // The handshakes (TLS included) run on a short-lived thread, and
            // the connection then moves to a thread of its own: the pages of
            // stack a handshake touches (about 20 KiB) are not kept for the
            // life of an idle connection. The two stack sizes differ, so
            // glibc never hands a connection thread a finished handshake
            // thread's cached stack. A thread that cannot start (memory or
            // thread limits) costs this connection only.
            let _ =
                thread::Builder::new().name("rfc6455-handshake".into()).stack_size(HANDSHAKE_STACK).spawn(move || {
                    if let Ok(Accepted::WebSocket(ws, context)) =
                        handshake(stream, &options, &tls, |request| decide(request))
                    {
                        let _ = thread::Builder::new().name("rfc6455-conn".into()).spawn(move || {
                            let _slot = slot;
                            handle(ws, context);
                        });
                    }
                });
        }
    }

    /// Answers a connection beyond the limit with 503 and closes it, without
    /// reading its request or waiting: the answer fits the socket's send
    /// buffer (a write that would block is given up on).
    fn turn_away(&self, stream: TcpStream) {
        #[cfg(feature = "tls")]
        if self.tls.0.is_some() {
            return;
        }
        let answer = Response::new(503).body("Too many connections; try again later.\n").to_bytes_closing();
        if let (Ok(answer), Ok(())) = (answer, stream.set_nonblocking(true)) {
            let _ = io::Write::write(&mut &stream, &answer);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
    }
}
