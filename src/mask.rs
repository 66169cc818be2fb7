//! Masking of frame payloads (RFC 6455 section 5.3).
//!
//! Masking XORs the payload with a 4-byte key repeated; doing it again unmasks.
//! The hot loop works eight bytes at a time in safe code, which the compiler
//! vectorises (16 bytes per instruction with the baseline SSE2; on x86-64
//! CPUs with AVX2, detected at run time, the same loop compiled for AVX2 does
//! 32, from the first 32-byte boundary on so that no access straddles two
//! cache lines); a payload that arrives in pieces is masked piece by piece
//! with the running offset.

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
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= WIDE_ENOUGH && std::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_key_avx2` only needs the CPU to support AVX2, which
        // was checked just above; the function itself is safe code.
        #[allow(unsafe_code)]
        unsafe {
            xor_key_avx2(buf, key)
        };
        return;
    }
    xor_key(buf, key);
}

/// Below this length the portable loop is as fast as the AVX2 one.
#[cfg(target_arch = "x86_64")]
const WIDE_ENOUGH: usize = 256;

/// [`xor_key`] compiled for AVX2, so the compiler vectorises it 32 bytes at
/// a time instead of SSE2's 16. The bytes before the first 32-byte boundary
/// go first, so that the wide loads and stores are aligned: a payload that
/// starts anywhere else (a frame's payload rarely starts on a boundary)
/// would otherwise split every other one across two cache lines, which cost
/// up to 40 % at 1 MiB.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_key_avx2(buf: &mut [u8], key: [u8; 4]) {
    let head = buf.as_ptr().align_offset(32).min(buf.len());
    let (head, body) = buf.split_at_mut(head);
    xor_key(head, key);
    xor_key(body, rotate_key(key, head.len()));
}

/// XORs `buf` with `key` repeated, eight bytes at a time in blocks of 32
/// (the compiler turns a block into vector instructions).
#[inline(always)]
fn xor_key(buf: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            xor_word(word, wide);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        xor_word(word, wide);
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// The key as seen from `offset` bytes into the payload.
const fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset % 4;
    [key[s], key[(s + 1) % 4], key[(s + 2) % 4], key[(s + 3) % 4]]
}

#[inline(always)]
fn xor_word(word: &mut [u8], key: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(word);
    word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ key).to_ne_bytes());
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
        // Past 256 bytes (the AVX2 path's threshold) too; fewer cases under
        // Miri, which is slow.
        let lengths: Vec<usize> = if cfg!(miri) { vec![0, 1, 7, 31, 33, 255, 256, 300] } else { (0..=300).collect() };
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
    fn rfc_example_masks_hello() {
        // Section 5.7: "Hello" masked with 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
