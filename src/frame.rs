//! Frame headers: opcodes, the three payload-length forms, RSV bits and the
//! masking key (RFC 6455 section 5.2), and the rules every frame obeys on its
//! own (sections 5.2 and 5.5).
//!
//! Rules that depend on the connection (which RSV bits an extension claims,
//! which side must mask, limits, fragmentation order) are checked by the
//! connection, not here.

use crate::error::ProtocolError;

/// A frame's opcode (section 5.2). Reserved opcodes are rejected when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The 4-bit value on the wire.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Parses the 4-bit value; reserved values fail.
    pub const fn from_u8(value: u8) -> Result<Self, ProtocolError> {
        Ok(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// Close, ping and pong are control frames (section 5.5).
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// Largest payload of a control frame (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest possible frame header: 2 bytes, 8 of extended length, 4 of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
///
/// ```
/// use rfc6455::{FrameHeader, OpCode};
/// // Section 5.7: a single-frame unmasked text message "Hello".
/// let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// let (header, len) = FrameHeader::decode(&wire).unwrap().unwrap();
/// assert_eq!(len, 2);
/// assert_eq!(header, FrameHeader { fin: true, rsv: 0, opcode: OpCode::Text, mask: None, payload_len: 5 });
/// let mut out = Vec::new();
/// header.encode(&mut out);
/// assert_eq!(out, wire[..2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final frame of its message.
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as the three low bits `0bRRR` (RSV1 is `0b100`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (at most 2^63 - 1).
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `input`.
    ///
    /// Returns `Ok(None)` when `input` is too short to hold the whole header,
    /// and `Ok(Some((header, header_len)))` otherwise. Fails on a reserved
    /// opcode, a non-minimal length, a 64-bit length with its top bit set, and
    /// a control frame that is fragmented or longer than 125 bytes. Only the
    /// header is read; the payload need not be present.
    pub fn decode(input: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, rest @ ..] = input else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, len_bytes) = match b1 & 0x7F {
            126 => {
                let Some(&[hi, lo]) = rest.first_chunk::<2>() else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([hi, lo]);
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (u64::from(len), 2)
            }
            127 => {
                let Some(bytes) = rest.first_chunk::<8>() else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(*bytes);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTooLarge);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 8)
            }
            short => (u64::from(short), 0),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(payload_len));
            }
        }
        let rest = &rest[len_bytes..];
        let mask = if masked {
            let Some(key) = rest.first_chunk::<4>() else {
                return Ok(None);
            };
            Some(*key)
        } else {
            None
        };
        let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
        Ok(Some((Self { fin, rsv, opcode, mask, payload_len }, header_len)))
    }

    /// The number of bytes [`encode`](Self::encode) writes.
    pub const fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, always with the minimal length form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.encode_into(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }

    /// Writes the header to the start of `buf` and returns its length.
    pub fn encode_into(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        buf[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = 2;
        match self.payload_len {
            len @ 0..=125 => buf[1] = mask_bit | len as u8,
            len @ 126..=0xFFFF => {
                buf[1] = mask_bit | 126;
                buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                n = 4;
            }
            len => {
                buf[1] = mask_bit | 127;
                buf[2..10].copy_from_slice(&len.to_be_bytes());
                n = 10;
            }
        }
        if let Some(key) = self.mask {
            buf[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload_len: u64) -> FrameHeader {
        FrameHeader { fin, rsv: 0, opcode, mask, payload_len }
    }

    #[test]
    fn every_length_form_round_trips_at_its_boundaries() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 1 << 32, (1 << 63) - 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = header(OpCode::Binary, true, mask, len);
                let mut out = Vec::new();
                h.encode(&mut out);
                assert_eq!(out.len(), h.encoded_len());
                assert_eq!(FrameHeader::decode(&out), Ok(Some((h, out.len()))));
                for cut in 0..out.len() {
                    assert_eq!(FrameHeader::decode(&out[..cut]), Ok(None), "len {len} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn rejects_what_section_5_2_forbids() {
        let cases: [(&[u8], ProtocolError); 8] = [
            (&[0x83, 0x00], ProtocolError::ReservedOpcode(3)),
            (&[0x8B, 0x00], ProtocolError::ReservedOpcode(0xB)),
            (&[0x82, 0x7E, 0x00, 0x7D], ProtocolError::NonMinimalLength),
            (&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], ProtocolError::NonMinimalLength),
            (&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], ProtocolError::LengthTooLarge),
            (&[0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], ProtocolError::LengthTooLarge),
            (&[0x09, 0x00], ProtocolError::FragmentedControlFrame),
            (&[0x89, 0x7E, 0x00, 0x7E], ProtocolError::ControlFrameTooLong(126)),
        ];
        for (bytes, err) in cases {
            assert_eq!(FrameHeader::decode(bytes), Err(err), "{bytes:x?}");
        }
    }

    #[test]
    fn largest_legal_length_decodes() {
        let bytes = [0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let (h, n) = FrameHeader::decode(&bytes).unwrap().unwrap();
        assert_eq!((h.payload_len, n), ((1 << 63) - 1, 10));
    }

    #[test]
    fn keeps_rsv_bits_for_the_connection_to_judge() {
        let (h, _) = FrameHeader::decode(&[0xC1, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b100);
        let (h, _) = FrameHeader::decode(&[0x91, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b001);
    }
}
