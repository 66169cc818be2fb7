//! The HTTP/1.1 upgrade handshake (being written).
