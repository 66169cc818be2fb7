//! Timeouts, keepalive and socket settings of the blocking adapters.

use std::time::Duration;

use crate::{Config, ProxyUrl};

/// How a blocking connection behaves: the protocol [`Config`], timeouts and
/// keepalive.
///
/// ```
/// use std::time::Duration;
/// let mut options = rfc6455::blocking::Options::default();
/// options.ping_interval = Some(Duration::from_secs(20));
/// options.config.max_message_size = 1 << 20;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Protocol limits and knobs. Unlike the core's own default, it offers
    /// and accepts permessage-deflate ([`Config::deflate`]) with the default
    /// policy, which keeps no compression context between messages, so idle
    /// connections cost no compression memory. Set `config.deflate = None` to
    /// turn it off.
    pub config: Config,
    /// Longest wait for a TCP connection to be established (client). Through
    /// a proxy, it covers the connection to the proxy and the `CONNECT`
    /// exchange, until the proxy reports the tunnel open (when it is `None`,
    /// [`handshake_timeout`](Self::handshake_timeout) bounds the exchange).
    /// Default 10 s.
    pub connect_timeout: Option<Duration>,
    /// Longest time the whole opening handshake may take, from the first byte
    /// to the last; a peer that sends half a request is cut off after it.
    /// Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Fail the connection when nothing at all arrives for this long.
    /// Default `None` (idle connections are fine; use keepalive to detect
    /// dead peers).
    pub idle_timeout: Option<Duration>,
    /// Longest a single write may block, for example on a peer that stopped
    /// reading. Default 30 s.
    pub write_timeout: Option<Duration>,
    /// Longest wait for the peer's part of the close handshake. Default 10 s.
    ///
    /// It also bounds the wait after this end failed the connection (a
    /// protocol error, a limit): the close frame goes out, and the transport
    /// is closed once the peer has ended its side (a server ends its own side
    /// first), reading and discarding what the peer still sends meanwhile.
    /// Closing at once would reset a peer that is still sending, which can
    /// make it lose the close frame and the messages sent before it.
    pub close_timeout: Duration,
    /// Send a ping after this long without receiving anything. Default
    /// `None` (no keepalive).
    pub ping_interval: Option<Duration>,
    /// With keepalive on, fail the connection when nothing (pong or data)
    /// arrives within this long after a ping. Default 20 s.
    pub ping_timeout: Duration,
    /// Disable Nagle's algorithm on TCP sockets. Default `true`: the adapter
    /// batches writes itself, so the kernel need not delay them.
    pub nodelay: bool,
    /// Which proxy (HTTP, HTTPS or SOCKS5) a client goes through. Default
    /// [`ProxyChoice::FromEnvironment`]. [`ClientBuilder::proxy`] and
    /// [`ClientBuilder::no_proxy`] override it.
    ///
    /// [`ClientBuilder::proxy`]: super::ClientBuilder::proxy
    /// [`ClientBuilder::no_proxy`]: super::ClientBuilder::no_proxy
    pub proxy: ProxyChoice,
    /// How a client speaks TLS to `wss://` servers (and `https://`
    /// proxies): trusted roots and the rest of the rustls configuration.
    /// Default `None`:
    /// [`ClientTls::new`](super::ClientTls::new) (platform and bundled roots),
    /// built once per process.
    #[cfg(feature = "tls")]
    pub tls: Option<super::ClientTls>,
}

/// Which proxy a client reaches its server through: an HTTP proxy's
/// `CONNECT` tunnel (see [`ProxyConnect`](crate::ProxyConnect); inside TLS
/// to the proxy for `https://`) or a SOCKS5 proxy's (see
/// [`Socks5Connect`](crate::Socks5Connect)).
///
/// ```
/// use rfc6455::{ProxyUrl, blocking::{Options, ProxyChoice}};
/// let mut options = Options::default();
/// options.proxy = ProxyChoice::Proxy(ProxyUrl::parse("http://proxy.example:3128")?);
/// options.proxy = ProxyChoice::Direct; // or never use one
/// # Ok::<(), rfc6455::ProxyError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyChoice {
    /// The usual environment variables, read at each connect: for `wss://`
    /// URLs `https_proxy` or `HTTPS_PROXY`, for `ws://` URLs `http_proxy` or
    /// `HTTP_PROXY`, and failing those `all_proxy` or `ALL_PROXY` (the
    /// lowercase name first; empty values count as unset). A host that
    /// `no_proxy` or `NO_PROXY` lists (see
    /// [`no_proxy_matches`](crate::no_proxy_matches)) is reached directly, as
    /// are `localhost` and loopback addresses. Under CGI (`REQUEST_METHOD`
    /// set), `HTTP_PROXY` is ignored, since a request header can set it
    /// ("httpoxy"). A variable that holds no valid proxy URL fails the
    /// connect with [`Error::Proxy`](super::Error::Proxy).
    #[default]
    FromEnvironment,
    /// No proxy: connect directly, whatever the environment says.
    Direct,
    /// This proxy, for every host (the environment is not read, `NO_PROXY`
    /// included).
    Proxy(ProxyUrl),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: Config { deflate: Some(crate::DeflateConfig::default()), ..Config::default() },
            connect_timeout: Some(Duration::from_secs(10)),
            handshake_timeout: Some(Duration::from_secs(10)),
            idle_timeout: None,
            write_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(10),
            ping_interval: None,
            ping_timeout: Duration::from_secs(20),
            nodelay: true,
            proxy: ProxyChoice::FromEnvironment,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
