//! CRATE DOC PLACEHOLDER
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, unused_qualifications, elided_lifetimes_in_paths)]

mod close;
mod config;
mod connection;
mod error;
mod frame;
mod handshake;
mod mask;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON, OwnedCloseFrame};
pub use config::Config;
pub use connection::{Connection, Event, Message, Receiver, Role, Sender, State};
pub use frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
pub use mask::{apply_mask, apply_mask_reference};
pub use error::{HandshakeError, Limit, ProtocolError, SendError};
