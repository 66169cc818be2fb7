//! Close codes and close frame payloads (RFC 6455 sections 5.5.1 and 7.4).
//!
//! [`CloseCode`] is a value type over the 16-bit code, with a constant for each
//! code the RFC and the IANA registry define, and the rule for which codes may
//! appear on the wire.

use std::fmt;

/// A WebSocket close status code (RFC 6455 section 7.4).
///
/// Any `u16` can be held; [`is_valid_on_wire`](Self::is_valid_on_wire) tells
/// whether it may be sent or received in a close frame.
///
/// ```
/// use rfc6455::CloseCode;
/// assert!(CloseCode::NORMAL.is_valid_on_wire());
/// assert!(!CloseCode::ABNORMAL.is_valid_on_wire()); // 1006 is never sent
/// assert!(CloseCode::from(4000).is_valid_on_wire()); // private use
/// assert_eq!(u16::from(CloseCode::PROTOCOL_ERROR), 1002);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection ended without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type, such as text that is not UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message is too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway received an invalid response (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a close frame: 1000-1003, 1007-1014
    /// (defined by the RFC and registered with IANA) and 3000-4999 (registered
    /// libraries and private use). Everything else, 1004-1006, 1015, the
    /// unassigned rest of 1000-2999 and anything outside 1000-4999, is invalid
    /// and a close frame carrying it fails the connection with 1002.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The payload of a close frame that carries a status code, borrowed from the
/// connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code; always [valid on the wire](CloseCode::is_valid_on_wire)
    /// when received.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8; often empty.
    pub reason: &'a str,
}

impl CloseFrame<'_> {
    /// Copies the reason so the frame can outlive the connection's buffer.
    pub fn to_owned_frame(&self) -> OwnedCloseFrame {
        OwnedCloseFrame { code: self.code, reason: self.reason.to_owned() }
    }
}

/// A close frame payload that owns its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedCloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: String,
}

/// Most bytes a close reason may take: a control frame carries at most 125
/// bytes and the code takes two.
pub const MAX_CLOSE_REASON: usize = 123;

/// Why a received close payload is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClosePayloadError {
    /// One byte: a code needs two.
    TooShort,
    /// A code that may not appear on the wire.
    InvalidCode(u16),
    /// The reason is not UTF-8.
    InvalidReason,
}

/// Parses a received close payload: `Ok(None)` when it is empty (no status).
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, ClosePayloadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ClosePayloadError::TooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ClosePayloadError::InvalidCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ClosePayloadError::InvalidReason)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_follows_section_7_4() {
        let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
        let invalid = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
        for code in valid {
            assert!(CloseCode::from(code).is_valid_on_wire(), "{code}");
        }
        for code in invalid {
            assert!(!CloseCode::from(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn parses_close_payloads() {
        assert_eq!(parse_close_payload(b""), Ok(None));
        assert_eq!(parse_close_payload(b"\x03"), Err(ClosePayloadError::TooShort));
        assert_eq!(parse_close_payload(b"\x03\xed"), Err(ClosePayloadError::InvalidCode(1005)));
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(ClosePayloadError::InvalidReason));
        let frame = parse_close_payload(b"\x03\xe8bye").unwrap().unwrap();
        assert_eq!(frame.code, CloseCode::NORMAL);
        assert_eq!(frame.reason, "bye");
    }
}
