//! Messages sent to many connections at once (broadcast).
//!
//! With permessage-deflate, sending the same message to a thousand
//! connections would compress it a thousand times. A [`PreparedMessage`]
//! keeps the compressed form the first connection made, and every other
//! connection whose compression settings are the same sends that instead.
//! This holds whenever the sending side does not keep its compression context
//! between messages (`server_no_context_takeover` for a server, which
//! [`DeflateConfig::default`](crate::DeflateConfig) negotiates): then a
//! message's compressed form depends on the settings alone (level and window
//! size; one form is kept per window size). Connections that do keep a
//! context compress their own copy, as with
//! [`Sender::send_text`](crate::Sender::send_text).

use std::sync::OnceLock;

use crate::deflate::{CompressionKey, compress_alone};

/// A text or binary message to send to many connections, compressed at most
/// once per compression setting instead of once per connection.
///
/// Send it with [`Sender::send_prepared`](crate::Sender::send_prepared) (or
/// the adapters' `send_prepared`); share it between threads by reference or
/// in an `Arc`. The bytes on the wire are the same as
/// [`send_text`](crate::Sender::send_text) or
/// [`send_binary`](crate::Sender::send_binary) would produce.
///
/// ```
/// use rfc6455::{Config, Connection, PreparedMessage, Role};
///
/// let notice = PreparedMessage::text("the server restarts in five minutes");
/// let mut connections: Vec<Connection> =
///     (0..3).map(|_| Connection::new(Role::Server, Config::default())).collect();
/// for conn in &mut connections {
///     conn.send_prepared(&notice).unwrap();
///     assert!(conn.sender().has_output());
/// }
/// ```
#[derive(Debug)]
pub struct PreparedMessage {
    text: bool,
    payload: Box<[u8]>,
    /// The compressed form for each window size (9 to 15 bits), made for the
    /// first connection with that window that needed one (`None` inside:
    /// better sent uncompressed). A connection whose level differs from that
    /// one's compresses for itself; a server rarely uses more than one level.
    compressed: [OnceLock<Form>; WINDOW_SIZES],
}

/// The settings a compressed form was made with, and the form (`None`:
/// better sent uncompressed).
type Form = (CompressionKey, Option<Box<[u8]>>);

/// Window sizes permessage-deflate compresses with: 9 to 15 bits.
const WINDOW_SIZES: usize = 7;

/// What a connection sends for a prepared message with its settings.
pub(crate) enum Compressed<'a> {
    /// This compressed payload (RSV1 set).
    Payload(&'a [u8]),
    /// The payload as it is: compression would not shrink it.
    Uncompressed,
    /// Not prepared for these settings: compress a copy.
    OtherSettings,
}

impl PreparedMessage {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(true, text.into().into_bytes().into_boxed_slice())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Self {
        Self::new(false, data.into().into_boxed_slice())
    }

    fn new(text: bool, payload: Box<[u8]>) -> Self {
        Self { text, payload, compressed: Default::default() }
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The payload, uncompressed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether a compressed form has been made (by a connection that sent it
    /// with permessage-deflate and no context takeover).
    pub fn is_compressed(&self) -> bool {
        self.compressed.iter().any(|slot| slot.get().is_some_and(|(_, compressed)| compressed.is_some()))
    }

    /// The compressed form for `key`, made on first use.
    pub(crate) fn compressed(&self, key: CompressionKey) -> Compressed<'_> {
        let Some(slot) = usize::from(key.window_bits()).checked_sub(9).and_then(|i| self.compressed.get(i)) else {
            return Compressed::OtherSettings;
        };
        let (made_for, compressed) =
            slot.get_or_init(|| (key, compress_alone(key, &self.payload).map(Vec::into_boxed_slice)));
        match compressed {
            _ if *made_for != key => Compressed::OtherSettings,
            Some(payload) => Compressed::Payload(payload),
            None => Compressed::Uncompressed,
        }
    }
}
