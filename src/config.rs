//! Every limit and knob of a connection and its handshake, in one place.
//!
//! Each field has a default chosen for a server facing the open internet; the
//! reasons are given beside each one. Errors that come from hitting a limit name
//! the field, so the knob to turn is never a guess.

/// Limits and options shared by the handshake and the connection.
///
/// Start from [`Config::default()`] and change the fields you need:
///
/// ```
/// let mut config = rfc6455::Config::default();
/// config.max_message_size = 1 << 20;
/// assert_eq!(config.max_frame_size, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload a single incoming frame may declare, in bytes.
    ///
    /// Default 16 MiB: large enough for the 16 MiB single frames of Autobahn
    /// section 9 and the common maximum of other implementations, small enough
    /// that one frame cannot exhaust a server. Checked against the declared
    /// length, before any payload arrives. Exceeding it closes with 1009.
    pub max_frame_size: usize,
    /// Largest incoming message, in bytes, summed over all its fragments.
    ///
    /// Default 64 MiB: four maximum-size frames, the same as tungstenite, so
    /// that endless small fragments cannot add up without bound. Exceeding it
    /// closes with 1009.
    pub max_message_size: usize,
    /// Most frames a single incoming message may be split into, empty
    /// fragments included.
    ///
    /// Default 131,072: Autobahn sends 4 MiB in 64-byte fragments (65,536
    /// frames), and Node's `ws` settled on this figure after its 2026 advisory
    /// on floods of tiny fragments. Fragments are stored contiguously, so this
    /// bounds work, not memory. Exceeding it closes with 1009.
    pub max_fragments: usize,
    /// Largest HTTP header block of a handshake request or response, in bytes,
    /// request or status line included.
    ///
    /// Default 16 KiB, as in Node: room for browser cookies, and a bound on
    /// what a client that never finishes its request can make us hold.
    pub max_handshake_size: usize,
    /// Most header fields in a handshake request or response.
    ///
    /// Default 64: browsers send about fifteen, proxies add a few.
    pub max_headers: usize,
    /// Outgoing messages larger than this are split into frames of at most this
    /// many payload bytes.
    ///
    /// Default 16 MiB, the frame limit most peers enforce; smaller values trade
    /// a few header bytes for earlier interleaving of control frames.
    pub send_frame_size: usize,
    /// Sending a data message fails with
    /// [`SendError::WriteBufferFull`](crate::SendError::WriteBufferFull) while
    /// this many bytes or more are waiting in the output buffer.
    ///
    /// Default 8 MiB. A message is accepted whole whenever the buffer is below
    /// the limit, so the buffer never holds more than this plus one message.
    /// Control frames the protocol owes (pongs, close replies) are not subject
    /// to it, but at most one pong is ever pending.
    pub max_write_buffer: usize,
    /// Smallest free space offered for reading, and the size read buffers
    /// shrink back to after a large message, in bytes.
    ///
    /// Default 4 KiB: an idle connection holds no more than this, while bursts
    /// of small messages still arrive many per read (the read size doubles
    /// while reads fill it).
    pub read_buffer_size: usize,
    /// Accept unmasked frames from a client (server role only).
    ///
    /// Default `false`, as RFC 6455 section 5.1 requires. Only for peers on a
    /// trusted link that skip masking.
    pub accept_unmasked_frames: bool,
    /// permessage-deflate (RFC 7692): `Some` to offer it (client) or accept
    /// offers of it (server) with this policy.
    ///
    /// Default `None` in the core, so that a connection costs no compression
    /// memory unless asked; the blocking adapters' `Options` turn it on.
    pub deflate: Option<crate::DeflateConfig>,
    /// Seed for the random numbers (masking keys and `Sec-WebSocket-Key`).
    ///
    /// Default `None`: seeded from the operating system's CSPRNG, as RFC 6455
    /// section 10.3 requires. Set it only in tests and fuzzing, where
    /// reproducible output matters more than unpredictability.
    pub rng_seed: Option<[u8; 32]>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 131_072,
            max_handshake_size: 16 << 10,
            max_headers: 64,
            send_frame_size: 16 << 20,
            max_write_buffer: 8 << 20,
            read_buffer_size: 4 << 10,
            accept_unmasked_frames: false,
            deflate: None,
            rng_seed: None,
        }
    }
}

impl Config {
    /// The random number generator this configuration asks for: seeded from
    /// [`rng_seed`](Self::rng_seed) when set, from the operating system otherwise.
    pub(crate) fn rng(&self) -> rand::rngs::StdRng {
        use rand::SeedableRng;
        match self.rng_seed {
            Some(seed) => rand::rngs::StdRng::from_seed(seed),
            None => rand::make_rng(),
        }
    }
}
