//! The fast masking routine against the byte-at-a-time definition, at every
//! length, alignment and offset the input picks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((head, data)) = input.split_first_chunk::<6>() else { return };
    let key = [head[0], head[1], head[2], head[3]];
    // Masked where they lie in a copy of the whole input, so that the start
    // moves against the allocation's alignment (a copy of the slice alone
    // would start wherever the allocator puts it).
    let align = usize::from(head[4] % 32).min(data.len());
    let offset = usize::from(head[5]);
    let mut fast = data.to_vec();
    let mut slow = fast.clone();
    rfc6455::apply_mask(&mut fast[align..], key, offset);
    rfc6455::apply_mask_reference(&mut slow[align..], key, offset);
    assert_eq!(fast, slow);
    // Masking twice restores the input.
    rfc6455::apply_mask(&mut fast[align..], key, offset);
    assert_eq!(fast, data);
});
