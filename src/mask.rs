//! Masking of frame payloads (RFC 6455 section 5.3).
//!
//! Masking XORs the payload with a 4-byte key repeated; doing it again unmasks.
//! The routine is safe code with no byte-at-a-time loop: buffers of up to 128
//! bytes are covered by two or four overlapping pieces, inline at the caller;
//! longer ones by 32-byte blocks that the compiler turns into vector
//! instructions (two SSE2 instructions each with the baseline target; one on
//! x86-64 CPUs with AVX2, detected at run time, for which the same code is
//! compiled a second time). A payload that arrives in pieces is masked piece
//! by piece with the running offset. A client's outgoing payload is copied
//! and masked in one pass, straight into the output buffer's spare capacity
//! ([`extend_masked`]); with a key of zero the same loop copies payloads
//! where `memcpy` can be very slow ([`extend_copied`]).

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the payload.
///
/// Applying it twice with the same key and offset restores the input.
///
/// ```
/// let key = [1, 2, 3, 4];
/// let mut data = *b"Hello, world";
/// rfc6455::apply_mask(&mut data, key, 0);
/// // Masking in two pieces, with the running offset, gives the same result.
/// let mut split = *b"Hello, world";
/// let (a, b) = split.split_at_mut(5);
/// rfc6455::apply_mask(a, key, 0);
/// rfc6455::apply_mask(b, key, 5);
/// assert_eq!(data, split);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(u32::from_ne_bytes(key), offset);
    if buf.len() <= SHORT {
        xor_short(buf, key);
    } else {
        xor_long_dispatch(buf, key);
    }
}

/// Up to this length a buffer is a few fixed pieces, masked inline at the
/// caller with no call, no CPU feature check and no saved registers.
const SHORT: usize = 128;

/// A buffer longer than [`SHORT`]: with AVX2 where the CPU has it. The check
/// (a load of std's cached answer) is inline at the caller, so that either
/// way one call is made, as for `memcpy`.
#[inline(always)]
fn xor_long_dispatch(buf: &mut [u8], key: u32) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_long_avx2` only needs the CPU to support AVX2, which
        // was checked just above; the function itself is safe code.
        #[allow(unsafe_code)]
        unsafe {
            xor_long_avx2(buf, key)
        };
        return;
    }
    xor_long_baseline(buf, key);
}

/// [`xor_long`] compiled for AVX2, so the compiler vectorises its 32-byte
/// blocks with one instruction each instead of SSE2's two.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
fn xor_long_avx2(buf: &mut [u8], key: u32) {
    xor_long(buf, key);
}

/// [`xor_long`] for the baseline target, out of line like the AVX2 one.
#[inline(never)]
fn xor_long_baseline(buf: &mut [u8], key: u32) {
    xor_long(buf, key);
}

/// XORs a buffer of at most [`SHORT`] bytes with `key` repeated, without a
/// byte-at-a-time loop: from 4 bytes up it is covered by two or four pieces
/// of equal width that may overlap (the first and the last 4, 8, 16 or 32
/// bytes; from 64 bytes on the first two and the last two 32-byte pieces).
/// Every piece is read before any is written, so overlapping bytes receive
/// the same value twice.
#[inline(always)]
fn xor_short(buf: &mut [u8], key: u32) {
    let len = buf.len();
    if len > 64 {
        xor_four(buf, key);
    } else if len >= 32 {
        xor_ends::<32>(buf, key);
    } else if len >= 16 {
        xor_ends::<16>(buf, key);
    } else if len >= 8 {
        xor_ends::<8>(buf, key);
    } else if len >= 4 {
        xor_ends::<4>(buf, key);
    } else {
        for (byte, k) in buf.iter_mut().zip(key.to_ne_bytes()) {
            *byte ^= k;
        }
    }
}

/// The first and the last `N` bytes of `buf` (`N <= buf.len() <= 2 * N`, `N`
/// a multiple of 4).
#[inline(always)]
fn xor_ends<const N: usize>(buf: &mut [u8], key: u32) {
    let last = buf.len() - N;
    let first = xor_piece::<N>(&buf[..N], key);
    let end = xor_piece::<N>(&buf[last..], rotate_key(key, last));
    buf[..N].copy_from_slice(&first);
    buf[last..].copy_from_slice(&end);
}

/// A buffer of 64 to 128 bytes: its first two and its last two 32-byte
/// pieces, all read before any is written.
#[inline(always)]
fn xor_four(buf: &mut [u8], key: u32) {
    let len = buf.len();
    let (third, fourth) = (len - 64, len - 32);
    let tail_key = rotate_key(key, len);
    let a = xor_piece::<32>(&buf[..32], key);
    let b = xor_piece::<32>(&buf[32..64], key);
    let c = xor_piece::<32>(&buf[third..fourth], tail_key);
    let d = xor_piece::<32>(&buf[fourth..], tail_key);
    buf[..32].copy_from_slice(&a);
    buf[32..64].copy_from_slice(&b);
    buf[third..fourth].copy_from_slice(&c);
    buf[fourth..].copy_from_slice(&d);
}

/// A buffer of more than [`SHORT`] bytes (any of 32 or more would do). The
/// blocks start at the first 32-byte boundary, so that no wide load or store
/// straddles two cache lines (a frame's payload rarely starts on a boundary;
/// the splits cost up to 40 % at 1 MiB); the first 32 bytes cover what comes
/// before it, the last 32 what the blocks leave at the end.
#[inline(always)]
fn xor_long(buf: &mut [u8], key: u32) {
    let len = buf.len();
    let last = len - 32;
    let first = xor_piece::<32>(&buf[..32], key);
    let end = xor_piece::<32>(&buf[last..], rotate_key(key, last));
    // `align_offset` may decline (usize::MAX); the blocks then start at 0.
    let start = match buf.as_ptr().align_offset(32) {
        aligned @ 0..32 => aligned,
        _ => 0,
    };
    let body_key = rotate_key(key, start);
    for block in buf[start..].chunks_exact_mut(32) {
        let masked = xor_piece::<32>(block, body_key);
        block.copy_from_slice(&masked);
    }
    buf[..32].copy_from_slice(&first);
    buf[last..].copy_from_slice(&end);
}

/// `bytes` (exactly `N` of them, `N` a multiple of 4) XORed with `key`.
///
/// Written with plain indexing of a fixed-size array and no iterator
/// adapters: inlined into a large caller (the receiver's `poll_event`), an
/// adapter the compiler leaves out of line loses the constant `N` and
/// computes the chunk counts with two divisions per piece.
#[inline(always)]
fn xor_piece<const N: usize>(bytes: &[u8], key: u32) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    let mut i = 0;
    while i < N {
        let word = u32::from_ne_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]) ^ key;
        let [a, b, c, d] = word.to_ne_bytes();
        out[i] = a;
        out[i + 1] = b;
        out[i + 2] = c;
        out[i + 3] = d;
        i += 4;
    }
    out
}

/// Appends `payload` masked with `key` (from the payload's first byte) to
/// `out`, in one pass: each block is read from `payload`, XORed and written
/// into `out`'s spare capacity, where a copy followed by [`apply_mask`] would
/// go over the bytes twice (1.5 to 2 times slower from a few KiB up).
#[inline]
pub(crate) fn extend_masked(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    let key = u32::from_ne_bytes(key);
    if payload.len() <= SHORT {
        let start = out.len();
        out.extend_from_slice(payload);
        xor_short(&mut out[start..], key);
    } else {
        extend_masked_dispatch(out, payload, key);
    }
}

/// Appends `bytes` to `out` unchanged: from [`OWN_COPY_MIN`] bytes up to
/// [`OWN_COPY_MAX`], by the masked copy's loop with a key of zero rather
/// than by `memcpy`.
///
/// glibc's `memcpy` (2.36 on the AMD EPYC host, Zen 3) copies with
/// `rep movsb` from 2,112 bytes up to the size of the second-level cache
/// (512 KiB there; `ld.so --list-diagnostics`), and there `rep movsb` runs
/// about 20 times slower when the destination lies 1 to 31 bytes past the
/// source modulo 4 KiB: 34.5 µs instead of 1.8 for 64 KiB, 9.5 instead of
/// 0.4 for 16 KiB (a scratch program, 2026-12-07). Where a payload lands in
/// the output buffer, or where a new allocation lands against the receive
/// buffer, is up to the allocator, and with the same sizes it is the same
/// from one message to the next: a copy that is slow once is slow every
/// time. This loop takes 1.6 to 1.9 µs for 64 KiB at every distance.
#[inline]
pub(crate) fn extend_copied(out: &mut Vec<u8>, bytes: &[u8]) {
    if !(OWN_COPY_MIN..OWN_COPY_MAX).contains(&bytes.len()) {
        out.extend_from_slice(bytes);
    } else {
        extend_masked_dispatch(out, bytes, 0);
    }
}

/// Below this size `memcpy` copies with vector instructions, faster than
/// the loop (1 KiB: 55 ns to encode a server's message with it, 74 with the
/// loop; 165 against 207 ns to receive one as an owned message).
const OWN_COPY_MIN: usize = 2 << 10;

/// From this size on, `memcpy` no longer uses `rep movsb` where the second
/// level cache is at most this large (1 MiB on AMD Zen 4 and 5), and it was
/// as fast as the loop at every distance on the AMD host.
const OWN_COPY_MAX: usize = 1 << 20;

/// `bytes` in a new vector, copied as [`extend_copied`] copies.
pub(crate) fn copied(bytes: &[u8]) -> Vec<u8> {
    let mut copy = Vec::with_capacity(bytes.len());
    extend_copied(&mut copy, bytes);
    copy
}

/// `text` in a new string, copied as [`extend_copied`] copies.
pub(crate) fn copied_str(text: &str) -> String {
    let bytes = copied(text.as_bytes());
    debug_assert_eq!(bytes, text.as_bytes());
    // SAFETY: `bytes` holds the same bytes as `text` (`extend_copied`
    // appends its input unchanged), which is a `str` and so UTF-8.
    #[allow(unsafe_code)]
    unsafe {
        String::from_utf8_unchecked(bytes)
    }
}

/// A payload longer than [`SHORT`]: with AVX2 where the CPU has it.
#[inline(never)]
fn extend_masked_dispatch(out: &mut Vec<u8>, payload: &[u8], key: u32) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `extend_masked_avx2` only needs the CPU to support AVX2,
        // which was checked just above.
        #[allow(unsafe_code)]
        unsafe {
            extend_masked_avx2(out, payload, key)
        };
        return;
    }
    extend_masked_long(out, payload, key);
}

/// [`extend_masked_long`] compiled for AVX2 (see [`xor_long_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn extend_masked_avx2(out: &mut Vec<u8>, payload: &[u8], key: u32) {
    extend_masked_long(out, payload, key);
}

/// Writes `payload` XORed with `key` into the first `payload.len()` bytes of
/// `out`'s spare capacity, 32 bytes at a time (what is left at the end
/// through a zero-padded block), then takes them into its length.
#[inline(always)]
fn extend_masked_long(out: &mut Vec<u8>, payload: &[u8], key: u32) {
    out.reserve(payload.len());
    let spare = &mut out.spare_capacity_mut()[..payload.len()];
    let mut blocks = spare.chunks_exact_mut(32);
    let mut sources = payload.chunks_exact(32);
    for (block, source) in (&mut blocks).zip(&mut sources) {
        let masked = xor_piece::<32>(source, key);
        for (slot, byte) in block.iter_mut().zip(masked) {
            slot.write(byte);
        }
    }
    // Blocks of 32 keep the key's phase, so the rest starts at offset 0 too.
    let rest = sources.remainder();
    let mut padded = [0u8; 32];
    padded[..rest.len()].copy_from_slice(rest);
    let masked = xor_piece::<32>(&padded, key);
    for (slot, byte) in blocks.into_remainder().iter_mut().zip(masked) {
        slot.write(byte);
    }
    let len = out.len() + payload.len();
    // SAFETY: the loops above wrote every one of the first `payload.len()`
    // bytes of the spare capacity (`reserve` made room for them): the blocks
    // of 32 and the remainder together cover the slice taken from it.
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len)
    };
}

/// The key (its four bytes read in memory order as one `u32`) as seen from
/// `offset` bytes into the payload: the byte at `offset % 4` comes first.
const fn rotate_key(key: u32, offset: usize) -> u32 {
    let bits = (offset % 4) as u32 * 8;
    if cfg!(target_endian = "little") { key.rotate_right(bits) } else { key.rotate_left(bits) }
}

/// The byte-at-a-time definition, kept as the reference the fast routine is
/// tested (and fuzzed) against.
#[doc(hidden)]
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_at_every_length_alignment_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let source: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        // Every length up to 300: each piece width (4, 8, 16, 32), where
        // they overlap and where they meet, the four pieces of 65 to 128
        // bytes, and the aligned blocks (with AVX2 where the CPU has it) past
        // 128; fewer cases under Miri, which is slow.
        let lengths: Vec<usize> = if cfg!(miri) {
            vec![0, 1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 160, 255, 256, 300]
        } else {
            (0..=300).collect()
        };
        // Masked where they lie in one buffer, at every start within a
        // 32-byte block, so the AVX2 path's unaligned head takes every length
        // from 0 to 31 (a copy would start wherever the allocator puts it).
        let mut fast = source.clone();
        let block_start = fast.as_ptr().align_offset(32);
        let aligns = if cfg!(miri) { 0..4 } else { 0..32 };
        for align in aligns {
            let start = block_start + align;
            for &len in &lengths {
                for offset in 0..4 {
                    fast.copy_from_slice(&source);
                    let mut slow = source.clone();
                    apply_mask(&mut fast[start..start + len], key, offset);
                    apply_mask_reference(&mut slow[start..start + len], key, offset);
                    assert_eq!(fast, slow, "align {align} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn extend_masked_appends_what_masking_a_copy_gives() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let source: Vec<u8> = (0..400u32).map(|i| (i * 11 + 5) as u8).collect();
        let lengths: Vec<usize> =
            if cfg!(miri) { vec![0, 3, 4, 31, 64, 128, 129, 160, 161, 191, 300] } else { (0..=300).collect() };
        for &len in &lengths {
            let payload = &source[source.len() - len..];
            let mut expected = b"head".to_vec();
            expected.extend_from_slice(payload);
            apply_mask_reference(&mut expected[4..], key, 0);
            // Into a buffer that must grow, and into one with room to spare
            // that holds stale bytes past its length.
            let mut grown = b"head".to_vec();
            grown.shrink_to_fit();
            extend_masked(&mut grown, payload, key);
            assert_eq!(grown, expected, "len {len}, growing");
            let mut roomy = vec![0xaa; 512];
            roomy.truncate(0);
            roomy.extend_from_slice(b"head");
            extend_masked(&mut roomy, payload, key);
            assert_eq!(roomy, expected, "len {len}, with room");
        }
    }

    #[test]
    fn copies_are_unchanged_at_every_length_and_alignment() {
        let source: String = "héllo wörld €uro 𝄞 ".repeat(120);
        // Around the sizes where the loop takes over from `memcpy`.
        let lengths: Vec<usize> =
            if cfg!(miri) { vec![31, 2081] } else { (0..=300).chain(OWN_COPY_MIN - 40..OWN_COPY_MIN + 300).collect() };
        for &len in &lengths {
            for start in if cfg!(miri) { 1..2 } else { 0..32 } {
                let bytes = &source.as_bytes()[start..start + len];
                let mut appended = b"head".to_vec();
                extend_copied(&mut appended, bytes);
                assert_eq!(&appended[..4], b"head");
                assert_eq!(&appended[4..], bytes, "len {len} start {start}");
                assert_eq!(copied(bytes), bytes, "len {len} start {start}");
            }
            if let Some(text) = source.get(..len) {
                assert_eq!(copied_str(text), text);
            }
        }
    }

    #[test]
    fn rfc_example_masks_hello() {
        // Section 5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
