//! TLS with rustls (the `tls` feature): [`ClientTls`] for `wss://` URLs,
//! [`ServerTls`] for a server with a certificate, and [`TlsStream`], the
//! encrypted [`Transport`] both produce.
//!
//! Every configuration names its crypto provider (rustls' `ring`), so nothing
//! depends on a process-wide default being installed, and nothing panics when
//! none is.
//!
//! # Full duplex
//!
//! A [`TlsStream`] can be [split](super::WebSocket::split) like a socket: the
//! two handles share one rustls session behind a lock that is held only while
//! records are encrypted or decrypted, never across a blocking read or
//! write. The reader reads ciphertext from its own socket handle without the
//! lock, then takes it to decrypt. The writer takes it to encrypt into a
//! queue of ciphertext, lets go, and writes the queue to the socket under a
//! second lock that orders writers. TLS records the reader must answer (a
//! TLS 1.3 key update, an alert) are written by the reader when no write is
//! in progress, and otherwise by the writer as soon as its write is done.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection};

use super::error::io_error;
use super::handshake_io::Deadline;
use super::transport::is_timeout;
use super::{Error, Options, Timeout, Transport};

/// The ALPN protocol both sides announce: the upgrade is an HTTP/1.1 request.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Ciphertext read from the socket per read: at most one full TLS record's
/// worth of plaintext comes out of it, which rustls always has room for.
const RAW_READ_SIZE: usize = 16 << 10;

/// rustls refuses more ciphertext once it holds more than 16 KiB of
/// plaintext; feeding stops at this much.
const MAX_PLAINTEXT_HELD: usize = 16 << 10;

/// Plaintext encrypted per `write` call, so that the queue of ciphertext stays
/// bounded whatever the caller hands over at once.
const ENCRYPT_CHUNK: usize = 256 << 10;

/// Why TLS could not be set up, or why its handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: io::Error,
    },
    /// PEM input that does not parse.
    #[error("invalid PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// The PEM input holds no certificate.
    #[error("no certificate found in the PEM input")]
    NoCertificate,
    /// The PEM input holds no private key (PKCS #8, PKCS #1 or SEC1).
    #[error("no private key found in the PEM input")]
    NoPrivateKey,
    /// No trusted root certificate could be loaded (for
    /// [`TlsRoots::Platform`], the system store is empty or missing).
    #[error("no trusted root certificates could be loaded{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    NoRoots {
        /// What the loaders reported, if anything.
        detail: String,
    },
    /// The peer's certificate was refused: see [`TlsError::is_certificate_error`].
    #[error("{}", certificate_message(.0))]
    Certificate(rustls::Error),
    /// rustls refused the configuration or the peer broke the TLS protocol.
    #[error("TLS: {0}")]
    Rustls(rustls::Error),
}

impl TlsError {
    /// Whether the peer's certificate was refused (wrong host name, untrusted
    /// issuer, expired...).
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, Self::Certificate(_))
    }

    /// The rustls error underneath, if there is one.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            Self::Certificate(error) | Self::Rustls(error) => Some(error),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        match error {
            rustls::Error::InvalidCertificate(_) => Self::Certificate(error),
            other => Self::Rustls(other),
        }
    }
}

/// Says in words what a refused certificate means, then what rustls said.
fn certificate_message(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    let meaning = match error {
        rustls::Error::InvalidCertificate(E::NotValidForName | E::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the host name connected to"
        }
        rustls::Error::InvalidCertificate(E::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted root (see TlsRoots to trust its CA)"
        }
        rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => "the certificate has expired",
        rustls::Error::InvalidCertificate(E::NotValidYet | E::NotValidYetContext { .. }) => {
            "the certificate is not valid yet"
        }
        _ => "the peer's certificate was refused",
    };
    format!("{meaning} ({error})")
}

/// The roots a client trusts when verifying a server's certificate.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The platform's store (on Linux the system bundle, for example
    /// `/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set)
    /// together with the bundled Mozilla roots of `webpki-roots`, so that a
    /// company CA installed on the machine works and so does a minimal
    /// container without a store. The default.
    #[default]
    PlatformAndBundled,
    /// The platform's store only.
    Platform,
    /// The bundled Mozilla roots only (the same everywhere).
    Bundled,
    /// These roots only (for example a private CA, or a test certificate).
    Custom(Arc<RootCertStore>),
}

impl TlsRoots {
    /// Trusts exactly the certificates in this PEM input.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            store.add(cert?).map_err(TlsError::from)?;
        }
        if store.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        Ok(Self::Custom(Arc::new(store)))
    }

    /// Trusts exactly the certificates in this PEM file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::from_pem(&read_file(path.as_ref())?)
    }

    fn load(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let bundled = || RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let platform = |store: &mut RootCertStore| {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            let detail = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            (added, detail)
        };
        match self {
            Self::Custom(store) => Ok(Arc::clone(store)),
            Self::Bundled => Ok(Arc::new(bundled())),
            Self::PlatformAndBundled => {
                let mut store = bundled();
                platform(&mut store);
                Ok(Arc::new(store))
            }
            Self::Platform => {
                let mut store = RootCertStore::empty();
                let (added, detail) = platform(&mut store);
                if added == 0 {
                    return Err(TlsError::NoRoots { detail });
                }
                Ok(Arc::new(store))
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::File { path: path.to_owned(), error })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How a client speaks TLS: the roots it trusts, and everything else rustls
/// can be told through a [`ClientConfig`]. Cheap to clone.
///
/// [`Options::tls`](super::Options::tls) holds one; when it is `None`, `wss://`
/// connections use [`ClientTls::new`], built once per process.
///
/// ```no_run
/// use rfc6455::blocking::{ClientBuilder, ClientTls, Options, TlsRoots};
/// let mut options = Options::default();
/// options.tls = Some(ClientTls::with_roots(TlsRoots::from_pem_file("ca.pem")?)?);
/// let (ws, _) = ClientBuilder::new("wss://127.0.0.1:9443/")?.options(options).connect()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").field("alpn_protocols", &self.config.alpn_protocols).finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Verifies servers against the default roots ([`TlsRoots::PlatformAndBundled`]),
    /// with TLS 1.2 and 1.3, SNI, and ALPN `http/1.1`.
    pub fn new() -> Result<Self, TlsError> {
        Self::with_roots(TlsRoots::default())
    }

    /// Verifies servers against these roots, otherwise as [`new`](Self::new).
    pub fn with_roots(roots: TlsRoots) -> Result<Self, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.load()?)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Self { config: Arc::new(config) })
    }

    /// Uses a configuration built by the caller as it is (client
    /// certificates, a custom verifier...). Its ALPN list should offer
    /// `http/1.1` or nothing.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The configuration `options` asks for: [`Options::tls`](super::Options::tls),
    /// or the shared default when that is `None`.
    pub(crate) fn for_options(options: &Options) -> Result<Self, TlsError> {
        match &options.tls {
            Some(tls) => Ok(tls.clone()),
            None => Self::shared_default(),
        }
    }

    /// The configuration used when [`Options::tls`](super::Options::tls) is `None`.
    fn shared_default() -> Result<Self, TlsError> {
        static DEFAULT: OnceLock<ClientTls> = OnceLock::new();
        if let Some(tls) = DEFAULT.get() {
            return Ok(tls.clone());
        }
        let tls = Self::new()?;
        Ok(DEFAULT.get_or_init(|| tls).clone())
    }

    /// Runs the TLS handshake on `stream` for `host` (a DNS name, checked
    /// against the certificate and sent as SNI, or an IP address), within
    /// [`Options::handshake_timeout`].
    pub fn connect<S: Transport>(&self, stream: S, host: &str, options: &Options) -> Result<TlsStream<S>, Error> {
        self.connect_until(stream, host, Deadline::after(options.handshake_timeout), options.write_timeout)
    }

    pub(crate) fn connect_until<S: Transport>(
        &self,
        stream: S,
        host: &str,
        deadline: Deadline,
        write_timeout: Option<Duration>,
    ) -> Result<TlsStream<S>, Error> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Error::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a valid TLS server name")))
        })?;
        let session = ClientConnection::new(Arc::clone(&self.config), name).map_err(TlsError::from)?;
        TlsStream::handshake(stream, session.into(), deadline, write_timeout)
    }
}

/// How a server speaks TLS: its certificate chain and key, and everything
/// else a rustls [`ServerConfig`] says. Cheap to clone.
///
/// ```no_run
/// use rfc6455::blocking::{Server, ServerTls};
/// let server = Server::bind("127.0.0.1:9443")?.tls(ServerTls::from_pem_files("cert.pem", "key.pem")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("alpn_protocols", &self.config.alpn_protocols).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A certificate chain (leaf first) and its private key, both PEM; TLS
    /// 1.2 and 1.3, no client certificates, ALPN `http/1.1`.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain).collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = match PrivateKeyDer::from_pem_slice(key) {
            Ok(key) => key,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(TlsError::NoPrivateKey),
            Err(error) => return Err(error.into()),
        };
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Self { config: Arc::new(config) })
    }

    /// As [`from_pem`](Self::from_pem), reading the two files.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::from_pem(&read_file(cert_chain.as_ref())?, &read_file(key.as_ref())?)
    }

    /// Uses a configuration built by the caller as it is. Its ALPN list
    /// should hold `http/1.1` only, or nothing.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self { config }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the TLS handshake on an accepted `stream` within
    /// [`Options::handshake_timeout`]; pass the result to
    /// [`accept_with`](super::accept_with). ([`Server`](super::Server) runs
    /// both within one handshake timeout.)
    pub fn accept<S: Transport>(&self, stream: S, options: &Options) -> Result<TlsStream<S>, Error> {
        self.accept_until(stream, Deadline::after(options.handshake_timeout), options.write_timeout)
    }

    pub(crate) fn accept_until<S: Transport>(
        &self,
        stream: S,
        deadline: Deadline,
        write_timeout: Option<Duration>,
    ) -> Result<TlsStream<S>, Error> {
        let session = ServerConnection::new(Arc::clone(&self.config)).map_err(TlsError::from)?;
        TlsStream::handshake(stream, session.into(), deadline, write_timeout)
    }
}

/// A stream encrypted with TLS, over any [`Transport`]; made by
/// [`ClientTls::connect`] or [`ServerTls::accept`] (the handshake is over by
/// then). It is a [`Transport`] itself, splittable when the stream beneath is.
///
/// The two handles of a split share one rustls session behind a lock held
/// only while records are encrypted or decrypted, never across a blocking
/// read or write: the reader reads ciphertext from its own handle on the
/// stream without the lock, then takes it to decrypt; a writer takes it to
/// encrypt into a queue, lets go, and writes the queue under a second lock
/// that orders writers. Records the reader must answer (a TLS 1.3 key
/// update) are written by the reader when no write is in progress, and
/// otherwise by the writer when its write is done.
pub struct TlsStream<S> {
    socket: S,
    shared: Arc<Session>,
    /// Ciphertext read from the socket, handed to rustls at once.
    raw: Box<[u8]>,
}

struct Session {
    tls: Mutex<TlsState>,
    /// Ciphertext waiting to be written; holding this lock is the right to
    /// write to the socket.
    out: Mutex<Vec<u8>>,
    /// A reader left TLS records in the session to be written while a writer
    /// held `out`.
    reader_left_output: AtomicBool,
}

struct TlsState {
    conn: Connection,
    /// Ciphertext read but not yet handed to rustls (it holds at most so
    /// much plaintext at a time), from `unfed_start` on.
    unfed: Vec<u8>,
    unfed_start: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A rustls error met while reading or writing, as an I/O error that keeps it.
fn tls_io_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.tls);
        f.debug_struct("TlsStream")
            .field("protocol_version", &state.conn.protocol_version())
            .field("cipher_suite", &state.conn.negotiated_cipher_suite().map(|suite| suite.suite()))
            .finish_non_exhaustive()
    }
}

impl<S: Transport> TlsStream<S> {
    /// Drives the handshake to its end before `deadline`.
    fn handshake(
        mut socket: S,
        mut tls: Connection,
        deadline: Deadline,
        write_timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let result = (|| {
            loop {
                while tls.wants_write() {
                    socket.set_write_timeout(deadline.remaining()?)?;
                    match tls.write_tls(&mut socket) {
                        Ok(0) => return Err(Error::Disconnected),
                        Ok(_) => {}
                        Err(error) => return Err(handshake_io_error(error)),
                    }
                }
                if !tls.is_handshaking() {
                    return Ok(());
                }
                socket.set_read_timeout(deadline.remaining()?)?;
                match tls.read_tls(&mut socket) {
                    Ok(0) => return Err(Error::Disconnected),
                    Ok(_) => {}
                    Err(error) => return Err(handshake_io_error(error)),
                }
                if let Err(error) = tls.process_new_packets() {
                    // Tell the peer why (an alert), if it is listening.
                    let _ = socket.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ = tls.write_tls(&mut socket);
                    return Err(Error::Tls(error.into()));
                }
            }
        })();
        if let Err(error) = result {
            let _ = socket.shutdown();
            return Err(error);
        }
        socket.set_read_timeout(None)?;
        socket.set_write_timeout(write_timeout)?;
        Ok(Self {
            socket,
            shared: Arc::new(Session {
                tls: Mutex::new(TlsState { conn: tls, unfed: Vec::new(), unfed_start: 0 }),
                out: Mutex::new(Vec::new()),
                reader_left_output: AtomicBool::new(false),
            }),
            raw: Box::default(),
        })
    }
}

fn handshake_io_error(error: io::Error) -> Error {
    if is_timeout(&error) { Error::Timeout(Timeout::Handshake) } else { io_error(error) }
}

impl<S> TlsStream<S> {
    /// The stream beneath.
    pub fn get_ref(&self) -> &S {
        &self.socket
    }

    /// Looks at the rustls session: the negotiated version, cipher suite,
    /// ALPN protocol, the peer's certificates.
    pub fn with_session<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&lock(&self.shared.tls).conn)
    }
}

impl<S: Write> TlsStream<S> {
    /// Writes the queued ciphertext; `out` is the held write lock.
    fn write_queued(socket: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
        let mut written = 0;
        let result = loop {
            if written == out.len() {
                break Ok(());
            }
            match socket.write(&out[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Err(error),
            }
        };
        out.drain(..written);
        result
    }

    /// Moves what the session has to send into `out`.
    fn take_records(tls: &mut Connection, out: &mut Vec<u8>) -> io::Result<()> {
        while tls.wants_write() {
            tls.write_tls(out)?;
        }
        Ok(())
    }

    /// Writes records a reader left behind while this handle held the write
    /// lock, unless someone else is writing (who will then do it).
    fn write_left_output(&mut self) -> io::Result<()> {
        while self.shared.reader_left_output.swap(false, Ordering::AcqRel) {
            let Ok(mut out) = self.shared.out.try_lock() else {
                return Ok(());
            };
            Self::take_records(&mut lock(&self.shared.tls).conn, &mut out)?;
            Self::write_queued(&mut self.socket, &mut out)?;
        }
        Ok(())
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.raw.is_empty() {
            self.raw = vec![0; RAW_READ_SIZE].into_boxed_slice();
        }
        loop {
            let wants_write = {
                let mut guard = lock(&self.shared.tls);
                let state = &mut *guard;
                match state.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    // The peer closed the TCP connection without close_notify:
                    // the WebSocket close handshake (or its absence) is what
                    // tells a clean end from a cut one, so this is just the end.
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(error) => return Err(error),
                }
                if state.unfed_start == state.unfed.len() {
                    None
                } else {
                    let unfed = std::mem::take(&mut state.unfed);
                    let fed = state.feed(&unfed[state.unfed_start..], &self.shared.reader_left_output);
                    state.unfed = unfed;
                    state.unfed_start += fed?;
                    if state.unfed_start == state.unfed.len() {
                        state.unfed.clear();
                        state.unfed_start = 0;
                    }
                    Some(state.conn.wants_write())
                }
            };
            let wants_write = match wants_write {
                Some(wants_write) => wants_write,
                None => {
                    // Nothing decrypted or left to decrypt: read ciphertext
                    // without holding the lock.
                    let n = loop {
                        match self.socket.read(&mut self.raw) {
                            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                            other => break other?,
                        }
                    };
                    let mut guard = lock(&self.shared.tls);
                    let state = &mut *guard;
                    if n == 0 {
                        // Tells rustls the stream ended.
                        state.conn.read_tls(&mut &[][..])?;
                    } else {
                        let fed = state.feed(&self.raw[..n], &self.shared.reader_left_output)?;
                        // rustls holds enough plaintext: keep the rest for later.
                        state.unfed.extend_from_slice(&self.raw[fed..n]);
                    }
                    state.conn.wants_write()
                }
            };
            if wants_write {
                // A key update or an alert to answer: write it now unless a
                // writer holds the socket, which then writes it when done.
                self.shared.reader_left_output.store(true, Ordering::Release);
                self.write_left_output()?;
            }
        }
    }
}

impl TlsState {
    /// Hands ciphertext to rustls and decrypts it, until all of it is taken
    /// or more plaintext waits than rustls accepts to hold; returns how many
    /// bytes were taken.
    fn feed(&mut self, input: &[u8], left_output: &AtomicBool) -> io::Result<usize> {
        let mut rest = input;
        while !rest.is_empty() {
            let fed = self.conn.read_tls(&mut rest)?;
            match self.conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > MAX_PLAINTEXT_HELD => break,
                Ok(_) => {}
                Err(error) => {
                    if self.conn.wants_write() {
                        // An alert, sent if anyone writes again.
                        left_output.store(true, Ordering::Release);
                    }
                    return Err(tls_io_error(error));
                }
            }
            if fed == 0 {
                break;
            }
        }
        Ok(input.len() - rest.len())
    }
}

impl<S: Write> TlsStream<S> {
    /// Encrypts what `encrypt` hands rustls and writes the records out;
    /// returns how many plaintext bytes were accepted.
    fn encrypt_and_write(&mut self, encrypt: impl FnOnce(&mut Connection) -> io::Result<usize>) -> io::Result<usize> {
        let accepted = {
            let mut out = lock(&self.shared.out);
            // Ciphertext an earlier call could not write goes first; until it
            // has, nothing more is accepted.
            Self::write_queued(&mut self.socket, &mut out)?;
            let accepted = {
                let tls = &mut lock(&self.shared.tls).conn;
                let accepted = encrypt(tls)?;
                Self::take_records(tls, &mut out)?;
                accepted
            };
            // The plaintext is accepted and encrypted now: a failure to write
            // it out is reported by the next write or flush, which retry.
            let _ = Self::write_queued(&mut self.socket, &mut out);
            accepted
        };
        let _ = self.write_left_output();
        Ok(accepted)
    }
}

/// At most this many buffers of a vectored write are taken at once (the
/// adapters write three: what was queued, a payload, what followed).
const MAX_VECTORED: usize = 4;

impl<S: Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.encrypt_and_write(|tls| tls.writer().write(&buf[..buf.len().min(ENCRYPT_CHUNK)]))
    }

    /// The buffers are encrypted together, records spanning them, so a frame
    /// header and its payload written from elsewhere share records as they
    /// would from one buffer.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut parts = [io::IoSlice::new(&[]); MAX_VECTORED];
        let (mut count, mut room) = (0, ENCRYPT_CHUNK);
        for buf in bufs.iter().filter(|buf| !buf.is_empty()) {
            if count == MAX_VECTORED || room == 0 {
                break;
            }
            let take = buf.len().min(room);
            parts[count] = io::IoSlice::new(&buf[..take]);
            (count, room) = (count + 1, room - take);
        }
        if count == 0 {
            return Ok(0);
        }
        self.encrypt_and_write(|tls| tls.writer().write_vectored(&parts[..count]))
    }

    fn flush(&mut self) -> io::Result<()> {
        {
            let mut out = lock(&self.shared.out);
            Self::take_records(&mut lock(&self.shared.tls).conn, &mut out)?;
            Self::write_queued(&mut self.socket, &mut out)?;
        }
        self.write_left_output()?;
        self.socket.flush()
    }
}

impl<S: Transport> TlsStream<S> {
    /// Queues TLS `close_notify` and writes it, best effort, unless a write
    /// is in progress (whose records it would cut into).
    fn send_close_notify(&self) {
        if let Ok(mut out) = self.shared.out.try_lock() {
            let mut state = lock(&self.shared.tls);
            state.conn.send_close_notify();
            let _ = Self::take_records(&mut state.conn, &mut out);
            drop(state);
            // Best effort, without waiting on a peer that does not read.
            let _ = self.socket.set_write_timeout(Some(Duration::from_millis(100)));
            if let Ok(mut socket) = self.socket.try_clone() {
                let _ = Self::write_queued(&mut socket, &mut out);
            }
        }
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }

    /// Sends TLS `close_notify` if no write is in progress, then shuts the
    /// stream beneath.
    fn shutdown(&self) -> io::Result<()> {
        self.send_close_notify();
        self.socket.shutdown()
    }

    /// Sends TLS `close_notify` if no write is in progress, then shuts the
    /// sending side of the stream beneath; records can still be read.
    fn shutdown_write(&self) -> io::Result<()> {
        self.send_close_notify();
        self.socket.shutdown_write()
    }

    /// A second handle on the same session and a clone of the stream beneath.
    fn try_clone(&self) -> io::Result<Self> {
        Ok(Self { socket: self.socket.try_clone()?, shared: Arc::clone(&self.shared), raw: Box::default() })
    }
}
