//! Incremental UTF-8 validation (RFC 6455 sections 5.6 and 8.1).
//!
//! Text arrives in pieces: frames, fragments, and partial reads within a frame.
//! [`Utf8Validator`] checks each piece as it arrives, carrying an unfinished
//! code point (at most three bytes) across piece boundaries, so an invalid byte
//! is caught as soon as it is received and a message that ends in the middle of
//! a code point is caught at its end.

use simdutf8::compat::from_utf8;

/// Validates a byte stream as UTF-8, one piece at a time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Utf8Validator {
    /// The start of a code point cut off at the end of the previous piece.
    partial: [u8; 4],
    /// How many bytes of `partial` are in use (0 to 3).
    partial_len: u8,
    /// Bytes accepted since the stream began.
    accepted: usize,
}

/// What [`Utf8Validator::finish`] hands back: a stream of `len` bytes was
/// accepted whole as UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Validated {
    len: usize,
}

/// The bytes are not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next piece. Fails as soon as any byte seen so far cannot be
    /// part of valid UTF-8, even if the piece ends in the middle of a code point.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> Result<(), InvalidUtf8> {
        self.check(piece)?;
        self.accepted += piece.len();
        Ok(())
    }

    fn check(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let want = sequence_len(self.partial[0]);
            let take = (want - have).min(piece.len());
            self.partial[have..have + take].copy_from_slice(&piece[..take]);
            let filled = have + take;
            piece = &piece[take..];
            match from_utf8(&self.partial[..filled]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still unfinished, but only because the piece ran out.
                    self.partial_len = filled as u8;
                    return Ok(());
                }
            }
        }
        // The bulk goes through the faster validator that only says yes or
        // no; an unfinished code point at the end is set aside first, and
        // only those few bytes need the one that says where input stops.
        let (whole, tail) = piece.split_at(complete_len(piece));
        simdutf8::basic::from_utf8(whole).map_err(|_| InvalidUtf8)?;
        if tail.is_empty() {
            return Ok(());
        }
        match from_utf8(tail) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(_) => {
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the stream: fails if it stopped in the middle of a code point.
    /// The validator is ready for a new stream afterwards.
    pub(crate) fn finish(&mut self) -> Result<Validated, InvalidUtf8> {
        let complete = self.partial_len == 0;
        let len = self.accepted;
        self.reset();
        if complete { Ok(Validated { len }) } else { Err(InvalidUtf8) }
    }

    /// Starts a new stream, forgetting any unfinished code point.
    pub(crate) fn reset(&mut self) {
        self.partial_len = 0;
        self.accepted = 0;
    }
}

impl Validated {
    /// `bytes` as text. They must be the bytes the validator was fed, in
    /// order and unchanged since; then they are not checked again. Bytes of
    /// another length are checked in full, so a caller's slip costs time,
    /// not soundness.
    pub(crate) fn as_str(self, bytes: &[u8]) -> Result<&str, InvalidUtf8> {
        if bytes.len() != self.len {
            debug_assert!(false, "validated {} bytes, handing out {}", self.len, bytes.len());
            return simdutf8::basic::from_utf8(bytes).map_err(|_| InvalidUtf8);
        }
        debug_assert!(std::str::from_utf8(bytes).is_ok(), "bytes changed after validation");
        // SAFETY: the validator accepted a stream of `self.len` bytes and
        // ended it on a code point boundary (`finish`), and the caller hands
        // back those bytes (same length, same content, per this method's
        // contract, which the receiver keeps: it feeds each payload byte
        // once, after unmasking, and does not touch it before handing it out).
        #[allow(unsafe_code)]
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        Ok(text)
    }
}

/// Length of `piece` without the code point it ends in the middle of, if it
/// does: the lead byte of such a sequence is among its last three bytes,
/// followed only by continuation bytes, fewer than the lead byte announces.
/// Whether any of it is valid is left to the validators.
fn complete_len(piece: &[u8]) -> usize {
    for back in 1..=piece.len().min(3) {
        let byte = piece[piece.len() - back];
        if byte < 0x80 {
            break;
        }
        if byte >= 0xC0 {
            return if sequence_len(byte) > back { piece.len() - back } else { piece.len() };
        }
    }
    piece.len()
}

/// Length of the sequence a byte of 0xC0 and up would start if it were a
/// valid lead byte (0xC0, 0xC1 and 0xF5 and up never are: the validators
/// reject them, whatever length this gives).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], split: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &end in split.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[start..end])?;
            start = end;
        }
        v.finish().map(|validated| assert_eq!(validated, Validated { len: bytes.len() }))
    }

    #[test]
    fn agrees_with_std_at_every_split_point() {
        let samples: [&[u8]; 12] = [
            "héllo wörld €uro 𝄞 clef".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
            b"\xc0\x80",
            b"\xe0\x80\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf5",
            b"\xff\xfe",
            b"abc\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"",
        ];
        for sample in samples {
            let expected = std::str::from_utf8(sample).is_ok();
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    assert_eq!(feed_split(sample, &[a, b]).is_ok(), expected, "{sample:x?} split {a} {b}");
                }
            }
        }
    }

    #[test]
    fn fails_fast_on_an_invalid_prefix() {
        // F4 90 can never start a valid sequence (above U+10FFFF): rejected
        // before the rest of the code point arrives.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"ok\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xed\xa0"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_sequence_fails_at_finish() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
        assert_eq!(v.finish(), Ok(Validated { len: 0 }), "finish resets");
    }

    #[test]
    fn validated_text_is_handed_out_unchanged() {
        let text = "héllo wörld €uro 𝄞";
        let mut v = Utf8Validator::default();
        let (a, b) = text.as_bytes().split_at(7);
        v.feed(a).unwrap();
        v.feed(b).unwrap();
        assert_eq!(v.finish().unwrap().as_str(text.as_bytes()), Ok(text));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "validated 0 bytes, handing out 1")]
    fn bytes_of_another_length_are_a_bug_debug_builds_stop_at() {
        let validated = Utf8Validator::default().finish().unwrap();
        let _ = validated.as_str(b"\xff");
    }

    /// Release builds (`cargo test --release --lib utf8`).
    #[test]
    #[cfg(not(debug_assertions))]
    fn bytes_of_another_length_are_checked_in_full() {
        let validated = Utf8Validator::default().finish().unwrap();
        assert_eq!(validated.as_str(b"\xff"), Err(InvalidUtf8));
        assert_eq!(validated.as_str(b"ok"), Ok("ok"));
    }
}
