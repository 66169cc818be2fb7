//! A deflate encoder (RFC 1951) for one whole message at a time, with tables
//! sized to the message.
//!
//! Without context takeover every message is compressed on its own, and a
//! general-purpose compressor pays for that in fixed costs: zlib-rs clears a
//! 128 KiB hash table before each message (more than half the time of a
//! 200-byte message) and sets up about 370 KiB of state per context. Here
//! the hash table and the match chains are as large as the message needs,
//! so a short message costs little more than finding its matches and
//! building its Huffman codes.
//!
//! The output is one block (fixed or dynamic Huffman codes, whichever is
//! smaller) that is not the last, followed by the header of an empty stored
//! block padded to a byte boundary: a sync flush without the four bytes
//! (`00 00 ff ff`) RFC 7692 has the sender remove. Matches never reach back
//! further than the negotiated window.

/// Shortest and longest match deflate can express.
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
/// Bytes hashed to find match candidates: four, so chains hold positions
/// that (nearly always) share four bytes; with three, the common trigrams
/// of text make long chains of candidates that match only three bytes,
/// which are rarely worth a match token.
const HASH_LEN: usize = 4;

/// Literal/length symbols: 256 literals, end of block, 29 length codes.
const LITLEN_SYMBOLS: usize = 286;
const END_OF_BLOCK: usize = 256;
const DIST_SYMBOLS: usize = 30;
/// Code length symbols (RFC 1951 section 3.2.7).
const CODE_LEN_SYMBOLS: usize = 19;
/// The order in which code length code lengths are written.
const CODE_LEN_ORDER: [usize; CODE_LEN_SYMBOLS] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Longest message this encoder takes: positions fit the `u16` tables.
pub(crate) const MAX_INPUT: usize = u16::MAX as usize - 1;

/// A match token has this bit set; its length is in bits 16-24, its
/// distance in bits 0-15. A literal token is the byte's value.
const MATCH: u32 = 1 << 31;

/// How hard to look for matches at each level (RFC 1951 leaves this to the
/// encoder; these follow zlib's table): chain links followed per position
/// (a quarter of them once a match of `good` bytes is in hand), the match
/// length that ends the search, below which length the next position is
/// tried before a match is taken (lazy matching; 0: never), and, without
/// lazy matching, the longest match whose positions all go into the chains
/// (longer ones only their first: less work, slightly fewer matches).
#[derive(Clone, Copy)]
struct Effort {
    chain: u16,
    good: u16,
    nice: u16,
    lazy: u16,
    insert_max: u16,
}

fn effort(level: u32) -> Effort {
    let (good, lazy, nice, chain, insert_max) = match level {
        0 | 1 => (4, 0, 8, 4, 4),
        2 => (4, 0, 16, 8, 5),
        3 => (4, 0, 32, 32, 6),
        4 => (4, 4, 16, 16, MAX_MATCH),
        5 => (8, 16, 32, 32, MAX_MATCH),
        6 => (8, 16, 128, 128, MAX_MATCH),
        7 => (8, 32, 128, 256, MAX_MATCH),
        8 => (32, 128, 258, 1024, MAX_MATCH),
        _ => (32, 258, 258, 4096, MAX_MATCH),
    };
    Effort { chain, good, nice, lazy, insert_max: insert_max as u16 }
}

/// Working memory, kept between the messages of a batch.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Most recent position + 1 for each hash value (0: none).
    head: Vec<u16>,
    /// For each position, the previous position + 1 with the same hash.
    prev: Vec<u16>,
    tokens: Vec<u32>,
}

/// Appends the compressed form of `input` (see the module doc for its shape)
/// to `out` and returns true, or returns false with `out` as it was when the
/// compressed form would not be shorter than `input` (then it should go
/// uncompressed). `window_bits` (9-15) bounds how far back matches reach.
///
/// `input` must be at most [`MAX_INPUT`] bytes; longer input is declined
/// (false).
pub(crate) fn compress(input: &[u8], level: u32, window_bits: u8, scratch: &mut Scratch, out: &mut Vec<u8>) -> bool {
    if input.len() > MAX_INPUT || !(9..=15).contains(&window_bits) {
        return false;
    }
    let max_dist = 1usize << window_bits;
    find_matches(input, effort(level), max_dist, scratch);
    let start = out.len();
    let mut bits = BitWriter::new(out);
    if !write_block(input.len(), &scratch.tokens, &mut bits) {
        return false;
    }
    // The empty stored block of a sync flush: BFINAL 0, BTYPE 00, padding;
    // its LEN and NLEN are the four bytes the sender leaves out.
    bits.put(0, 3);
    bits.finish();
    if out.len() - start >= input.len() {
        out.truncate(start);
        return false;
    }
    true
}

/// LZ77: fills `scratch.tokens` with literals and matches that reproduce
/// `input`.
fn find_matches(input: &[u8], effort: Effort, max_dist: usize, scratch: &mut Scratch) {
    let n = input.len();
    let hash_bits = (usize::BITS - n.max(256).saturating_sub(1).leading_zeros()).clamp(8, 15);
    let Scratch { head, prev, tokens } = scratch;
    head.clear();
    head.resize(1 << hash_bits, 0);
    prev.clear();
    prev.resize(n, 0);
    tokens.clear();
    tokens.reserve(n);
    let mut finder = Finder { input, head, prev, hash_bits, inserted: 0, max_dist, effort };

    let mut i = 0;
    let mut current = finder.find(i);
    while i < n {
        let (len, dist) = current;
        if len < MIN_MATCH {
            tokens.push(u32::from(input[i]));
            i += 1;
        } else if len < usize::from(effort.lazy) && i + 1 < n {
            let next = finder.find_longer(i + 1, len);
            if next.0 > len {
                // A longer match starts one byte later: take that instead.
                tokens.push(u32::from(input[i]));
                i += 1;
                current = next;
                continue;
            }
            tokens.push(MATCH | (len as u32) << 16 | dist as u32);
            i += len;
        } else {
            tokens.push(MATCH | (len as u32) << 16 | dist as u32);
            if len > usize::from(effort.insert_max) {
                finder.skip(i + 1, i + len);
            }
            i += len;
        }
        current = finder.find(i);
    }
}

/// Hash chains over the message's positions.
struct Finder<'a> {
    input: &'a [u8],
    head: &'a mut [u16],
    prev: &'a mut [u16],
    hash_bits: u32,
    /// Positions below this are in the chains.
    inserted: usize,
    max_dist: usize,
    effort: Effort,
}

impl Finder<'_> {
    fn hash(&self, pos: usize) -> usize {
        let key = u32::from_le_bytes(self.input[pos..pos + HASH_LEN].try_into().unwrap_or_default());
        (key.wrapping_mul(0x9E37_79B1) >> (32 - self.hash_bits)) as usize
    }

    /// Puts the positions before `upto` into the chains, each once, in
    /// order.
    fn insert_until(&mut self, upto: usize) {
        let last = self.input.len().saturating_sub(HASH_LEN - 1).min(upto);
        while self.inserted < last {
            let pos = self.inserted;
            let h = self.hash(pos);
            self.prev[pos] = self.head[h];
            // Positions are below MAX_INPUT, so pos + 1 fits.
            self.head[h] = (pos + 1) as u16;
            self.inserted += 1;
        }
        self.inserted = self.inserted.max(upto);
    }

    /// Puts the positions before `from` into the chains and leaves out
    /// those from there to `to`.
    fn skip(&mut self, from: usize, to: usize) {
        self.insert_until(from);
        self.inserted = self.inserted.max(to);
    }

    /// The longest match for the bytes at `pos` among the positions before
    /// it, as (length, distance); length 0 when there is none.
    fn find(&mut self, pos: usize) -> (usize, usize) {
        self.find_longer(pos, MIN_MATCH - 1)
    }

    /// The longest match for the bytes at `pos` longer than `shortest`
    /// bytes (then searched less hard if `shortest` is already good).
    fn find_longer(&mut self, pos: usize, shortest: usize) -> (usize, usize) {
        self.insert_until(pos);
        let input = self.input;
        let limit = (input.len() - pos.min(input.len())).min(MAX_MATCH);
        if limit < HASH_LEN {
            return (0, 0);
        }
        if shortest >= limit {
            return (0, 0);
        }
        let mut best = (shortest, 0);
        let mut link = self.head[self.hash(pos)];
        let mut chain = self.effort.chain;
        if shortest >= usize::from(self.effort.good) {
            chain >>= 2;
        }
        while link != 0 && chain > 0 {
            let candidate = usize::from(link) - 1;
            let dist = pos - candidate;
            if dist > self.max_dist {
                break;
            }
            // Only a candidate that beats the best so far at its last byte
            // is worth comparing in full.
            if input[candidate + best.0] == input[pos + best.0] {
                let len = match_len(input, candidate, pos, limit);
                if len > best.0 {
                    best = (len, dist);
                    if len >= limit || len >= usize::from(self.effort.nice) {
                        break;
                    }
                }
            }
            link = self.prev[candidate];
            chain -= 1;
        }
        if best.1 == 0 { (0, 0) } else { best }
    }
}

/// How many bytes at `a` and `b` (`a < b`) agree, up to `limit`
/// (`b + limit` is within `input`).
fn match_len(input: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let mut len = 0;
    while len + 8 <= limit {
        let x = u64::from_le_bytes(input[a + len..a + len + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(input[b + len..b + len + 8].try_into().unwrap_or_default());
        let diff = x ^ y;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < limit && input[a + len] == input[b + len] {
        len += 1;
    }
    len
}

/// The length symbol (257-285) for a match length, with its extra bits
/// and their value.
fn length_code(len: usize) -> (usize, u32, u32) {
    if len == MAX_MATCH {
        return (285, 0, 0);
    }
    let l = len - MIN_MATCH;
    if l < 8 {
        return (257 + l, 0, 0);
    }
    let top = usize::BITS - 1 - l.leading_zeros(); // 3 to 7
    let extra = top - 2;
    let step = (l >> extra) & 3;
    let base = (4 + step) << extra;
    (257 + 4 * (top as usize - 1) + step, extra, (l - base) as u32)
}

/// The distance symbol (0-29) for a distance, with its extra bits and their
/// value.
fn distance_code(dist: usize) -> (usize, u32, u32) {
    let d = dist - 1;
    if d < 4 {
        return (d, 0, 0);
    }
    let top = usize::BITS - 1 - d.leading_zeros(); // 2 to 14
    let extra = top - 1;
    let half = (d >> extra) & 1;
    let base = (2 + half) << extra;
    (2 * top as usize + half, extra, (d - base) as u32)
}

/// Writes one non-final block holding `tokens`, with fixed or dynamic codes,
/// whichever is smaller. Returns false, writing nothing, when a stored
/// block would be smaller than both (the message should go uncompressed).
fn write_block(input_len: usize, tokens: &[u32], bits: &mut BitWriter<'_>) -> bool {
    let mut litlen_freq = [0u32; LITLEN_SYMBOLS];
    let mut dist_freq = [0u32; DIST_SYMBOLS];
    let mut extra_bits = 0u64;
    for &token in tokens {
        if token & MATCH == 0 {
            litlen_freq[token as usize] += 1;
        } else {
            let (lsym, lextra, _) = length_code((token >> 16 & 0x1ff) as usize);
            let (dsym, dextra, _) = distance_code((token & 0xffff) as usize);
            litlen_freq[lsym] += 1;
            dist_freq[dsym] += 1;
            extra_bits += u64::from(lextra + dextra);
        }
    }
    litlen_freq[END_OF_BLOCK] = 1;

    let fixed = FixedCodes::get();
    let fixed_size = 3 + cost(&litlen_freq, &fixed.litlen_len) + cost(&dist_freq, &fixed.dist_len) + extra_bits;

    let mut litlen_len = [0u8; LITLEN_SYMBOLS];
    let mut dist_len = [0u8; DIST_SYMBOLS];
    if !code_lengths(&litlen_freq, 15, &mut litlen_len) || !code_lengths(&dist_freq, 15, &mut dist_len) {
        return false;
    }
    // Inflaters want a distance code even when no match was made.
    if dist_len.iter().all(|&l| l == 0) {
        dist_len[..2].fill(1);
    }
    let Some(header) = DynamicHeader::new(&litlen_len, &dist_len) else { return false };
    let dynamic_size = 3 + header.bits() + cost(&litlen_freq, &litlen_len) + cost(&dist_freq, &dist_len) + extra_bits;

    // A stored block: header, padding (up to 7 bits), LEN and NLEN, bytes.
    let stored_size = 3 + 7 + 32 + 8 * input_len as u64;
    if stored_size <= fixed_size.min(dynamic_size) {
        return false;
    }
    if dynamic_size < fixed_size {
        bits.put(0b100, 3); // BFINAL 0, BTYPE 10
        header.write(bits);
        let mut litlen = [0u16; LITLEN_SYMBOLS];
        let mut dist = [0u16; DIST_SYMBOLS];
        canonical_codes(&litlen_len, &mut litlen);
        canonical_codes(&dist_len, &mut dist);
        write_tokens(tokens, &litlen, &litlen_len, &dist, &dist_len, bits);
    } else {
        bits.put(0b010, 3); // BFINAL 0, BTYPE 01
        write_tokens(tokens, &fixed.litlen_code, &fixed.litlen_len, &fixed.dist_code, &fixed.dist_len, bits);
    }
    true
}

fn cost(freq: &[u32], lengths: &[u8]) -> u64 {
    freq.iter().zip(lengths).map(|(&f, &l)| u64::from(f) * u64::from(l)).sum()
}

fn write_tokens(
    tokens: &[u32],
    litlen_code: &[u16],
    litlen_len: &[u8],
    dist_code: &[u16],
    dist_len: &[u8],
    bits: &mut BitWriter<'_>,
) {
    for &token in tokens {
        if token & MATCH == 0 {
            let sym = token as usize;
            bits.put(u64::from(litlen_code[sym]), u32::from(litlen_len[sym]));
        } else {
            let (lsym, lextra, lvalue) = length_code((token >> 16 & 0x1ff) as usize);
            let (dsym, dextra, dvalue) = distance_code((token & 0xffff) as usize);
            bits.put(u64::from(litlen_code[lsym]), u32::from(litlen_len[lsym]));
            bits.put(u64::from(lvalue), lextra);
            bits.put(u64::from(dist_code[dsym]), u32::from(dist_len[dsym]));
            bits.put(u64::from(dvalue), dextra);
        }
    }
    bits.put(u64::from(litlen_code[END_OF_BLOCK]), u32::from(litlen_len[END_OF_BLOCK]));
}

/// The fixed codes of RFC 1951 section 3.2.6.
struct FixedCodes {
    litlen_len: [u8; LITLEN_SYMBOLS],
    litlen_code: [u16; LITLEN_SYMBOLS],
    dist_len: [u8; DIST_SYMBOLS],
    dist_code: [u16; DIST_SYMBOLS],
}

impl FixedCodes {
    fn get() -> &'static Self {
        static FIXED: std::sync::OnceLock<FixedCodes> = std::sync::OnceLock::new();
        FIXED.get_or_init(|| {
            // The code covers 288 literal/length symbols; 286 and 287 are
            // never used but shape the code.
            let mut all = [0u8; 288];
            for (sym, len) in all.iter_mut().enumerate() {
                *len = match sym {
                    0..=143 => 8,
                    144..=255 => 9,
                    256..=279 => 7,
                    _ => 8,
                };
            }
            let mut codes = [0u16; 288];
            canonical_codes(&all, &mut codes);
            let mut litlen_len = [0u8; LITLEN_SYMBOLS];
            let mut litlen_code = [0u16; LITLEN_SYMBOLS];
            litlen_len.copy_from_slice(&all[..LITLEN_SYMBOLS]);
            litlen_code.copy_from_slice(&codes[..LITLEN_SYMBOLS]);
            let dist_len = [5u8; DIST_SYMBOLS];
            let mut dist_code = [0u16; DIST_SYMBOLS];
            canonical_codes(&dist_len, &mut dist_code);
            Self { litlen_len, litlen_code, dist_len, dist_code }
        })
    }
}

/// The canonical Huffman codes for `lengths` (RFC 1951 section 3.2.2), bit
/// reversed, ready to be written least significant bit first, into `codes`
/// (as long as `lengths`).
fn canonical_codes(lengths: &[u8], codes: &mut [u16]) {
    // The used symbols, in order, gathered without a branch per symbol;
    // unused ones get code 0 (never written).
    let mut used = [0u16; 288];
    let mut count = 0;
    for (symbol, (&len, code)) in lengths.iter().zip(codes.iter_mut()).enumerate() {
        used[count] = symbol as u16;
        count += usize::from(len > 0);
        *code = 0;
    }
    let used = &used[..count];
    let mut per_len = [0u16; 16];
    for &symbol in used {
        per_len[usize::from(lengths[usize::from(symbol)])] += 1;
    }
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + per_len[bits - 1]) << 1;
        next[bits] = code;
    }
    for &symbol in used {
        let len = lengths[usize::from(symbol)];
        let code = next[usize::from(len)];
        next[usize::from(len)] += 1;
        codes[usize::from(symbol)] = code.reverse_bits() >> (16 - u32::from(len));
    }
}

/// Huffman code lengths for `freq`, none longer than `limit`, written to
/// `lengths` (0 for unused symbols). The code is always complete, as
/// inflaters require: a single used symbol gets a one-bit code and so does
/// an unused neighbour. Nothing is used: all lengths 0. Returns false if the
/// lengths could not be made complete (not expected; the caller then sends
/// the message uncompressed rather than trust them).
#[must_use]
fn code_lengths<const N: usize>(freq: &[u32; N], limit: u8, lengths: &mut [u8; N]) -> bool {
    lengths.iter_mut().for_each(|l| *l = 0);
    // Used symbols, least frequent first: keys of frequency and symbol
    // (alphabets have at most 286 symbols, frequencies fit 32 bits).
    let mut keys = [0u64; N];
    let mut leaves = 0;
    // Written for every symbol, kept for used ones: no branch to mispredict
    // on the pattern of used and unused symbols.
    for (symbol, &f) in freq.iter().enumerate() {
        keys[leaves] = u64::from(f) << 16 | symbol as u64;
        leaves += usize::from(f > 0);
    }
    let symbol_of = |key: u64| (key & 0xffff) as usize;
    match leaves {
        0 => return true,
        1 => {
            let used = symbol_of(keys[0]);
            lengths[used] = 1;
            lengths[if used == 0 { 1 } else { used - 1 }] = 1;
            return true;
        }
        _ => {}
    }
    let keys = &mut keys[..leaves];
    keys.sort_unstable();

    // Build the tree bottom up with two queues: the sorted leaves, and the
    // inner nodes, which are made in order of weight. Node numbers below
    // `leaves` are leaves, the others inner nodes (`leaves + i` is inner
    // node `i`); each records its parent's inner index.
    let mut inner_weight = [0u64; N];
    let mut leaf_parent = [0u16; N];
    let mut inner_parent = [0u16; N];
    let weight = |node: usize, inner_weight: &[u64]| {
        if node < leaves { keys[node] >> 16 } else { inner_weight[node - leaves] }
    };
    let (mut next_leaf, mut next_inner) = (0, leaves);
    for inner in 0..leaves - 1 {
        let mut pick = || {
            let take_leaf = next_leaf < leaves
                && (next_inner == leaves + inner
                    || weight(next_leaf, &inner_weight) <= weight(next_inner, &inner_weight));
            let node = if take_leaf { &mut next_leaf } else { &mut next_inner };
            *node += 1;
            *node - 1
        };
        let (a, b) = (pick(), pick());
        inner_weight[inner] = weight(a, &inner_weight) + weight(b, &inner_weight);
        for child in [a, b] {
            if child < leaves {
                leaf_parent[child] = inner as u16;
            } else {
                inner_parent[child - leaves] = inner as u16;
            }
        }
    }
    // Depths, from the root (the last inner node) down: a parent comes
    // after its children.
    let mut inner_depth = [0u8; N];
    for inner in (0..leaves - 2).rev() {
        inner_depth[inner] = inner_depth[usize::from(inner_parent[inner])] + 1;
    }
    let depth = |leaf: usize| inner_depth[usize::from(leaf_parent[leaf])] + 1;

    // How many codes of each length. Codes deeper than the limit are cut to
    // it, which oversubscribes the code; each step below then takes one
    // code off the limit and hangs it, with a code of the longest shorter
    // length, one level under where that code was: one unit (2^-limit) of
    // the Kraft sum less per step, until the code is exactly complete.
    let limit = usize::from(limit);
    let mut per_len = [0u32; 16];
    for leaf in 0..leaves {
        per_len[usize::from(depth(leaf)).min(limit)] += 1;
    }
    let full = 1u64 << limit;
    let mut kraft: u64 = (1..=limit).map(|l| u64::from(per_len[l]) << (limit - l)).sum();
    while kraft > full && per_len[limit] > 0 {
        let Some(shorter) = (1..limit).rev().find(|&l| per_len[l] > 0) else { break };
        per_len[limit] -= 1;
        per_len[shorter] -= 1;
        per_len[shorter + 1] += 2;
        kraft -= 1;
    }
    if kraft != full {
        debug_assert!(false, "Kraft sum {kraft} against {full}");
        return false;
    }
    // Shortest codes to the most frequent symbols.
    let mut len = 1;
    for &key in keys.iter().rev() {
        while per_len[len] == 0 {
            len += 1;
        }
        per_len[len] -= 1;
        lengths[symbol_of(key)] = len as u8;
    }
    true
}

/// The code lengths of a dynamic block, run-length encoded with the code
/// length alphabet, and that alphabet's own code.
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    /// (symbol, extra bits value) pairs: `runs[..run_count]`.
    runs: [(u8, u8); LITLEN_SYMBOLS + DIST_SYMBOLS],
    run_count: usize,
    cl_len: [u8; CODE_LEN_SYMBOLS],
    cl_code: [u16; CODE_LEN_SYMBOLS],
}

impl DynamicHeader {
    fn new(litlen_len: &[u8; LITLEN_SYMBOLS], dist_len: &[u8; DIST_SYMBOLS]) -> Option<Self> {
        let hlit = 257 + litlen_len[257..].iter().rposition(|&l| l > 0).map_or(0, |p| p + 1);
        let hdist = 1 + dist_len.iter().rposition(|&l| l > 0).unwrap_or(0);
        let mut lengths = [0u8; LITLEN_SYMBOLS + DIST_SYMBOLS];
        lengths[..hlit].copy_from_slice(&litlen_len[..hlit]);
        lengths[hlit..hlit + hdist].copy_from_slice(&dist_len[..hdist]);
        let mut runs = [(0u8, 0u8); LITLEN_SYMBOLS + DIST_SYMBOLS];
        let run_count = run_lengths(&lengths[..hlit + hdist], &mut runs);
        let mut cl_freq = [0u32; CODE_LEN_SYMBOLS];
        for &(sym, _) in &runs[..run_count] {
            cl_freq[usize::from(sym)] += 1;
        }
        let mut cl_len = [0u8; CODE_LEN_SYMBOLS];
        if !code_lengths(&cl_freq, 7, &mut cl_len) {
            return None;
        }
        let hclen = 4.max(CODE_LEN_ORDER.iter().rposition(|&s| cl_len[s] > 0).map_or(0, |p| p + 1));
        let mut cl_code = [0u16; CODE_LEN_SYMBOLS];
        canonical_codes(&cl_len, &mut cl_code);
        Some(Self { hlit, hdist, hclen, runs, run_count, cl_len, cl_code })
    }

    fn bits(&self) -> u64 {
        let runs: u64 = self.runs[..self.run_count]
            .iter()
            .map(|&(sym, _)| u64::from(self.cl_len[usize::from(sym)]) + extra_len(sym))
            .sum();
        14 + 3 * self.hclen as u64 + runs
    }

    fn write(&self, bits: &mut BitWriter<'_>) {
        bits.put((self.hlit - 257) as u64, 5);
        bits.put((self.hdist - 1) as u64, 5);
        bits.put((self.hclen - 4) as u64, 4);
        for &sym in &CODE_LEN_ORDER[..self.hclen] {
            bits.put(u64::from(self.cl_len[sym]), 3);
        }
        for &(sym, extra) in &self.runs[..self.run_count] {
            let s = usize::from(sym);
            bits.put(u64::from(self.cl_code[s]), u32::from(self.cl_len[s]));
            bits.put(u64::from(extra), extra_len(sym) as u32);
        }
    }
}

/// Extra bits after a code length symbol: 16 repeats the previous length
/// 3-6 times, 17 writes 3-10 zeros, 18 writes 11-138 zeros.
fn extra_len(sym: u8) -> u64 {
    match sym {
        16 => 2,
        17 => 3,
        18 => 7,
        _ => 0,
    }
}

/// Code lengths as code length symbols with their extra bits values, into
/// `runs` (never more entries than lengths); returns how many.
fn run_lengths(lengths: &[u8], runs: &mut [(u8, u8)]) -> usize {
    let mut count = 0;
    let mut push = |entry: (u8, u8)| {
        runs[count] = entry;
        count += 1;
    };
    let mut i = 0;
    while i < lengths.len() {
        let len = lengths[i];
        let mut run = 1;
        while i + run < lengths.len() && lengths[i + run] == len {
            run += 1;
        }
        i += run;
        if len == 0 {
            while run >= 11 {
                let n = run.min(138);
                push((18, (n - 11) as u8));
                run -= n;
            }
            if run >= 3 {
                push((17, (run - 3) as u8));
                run = 0;
            }
        } else {
            push((len, 0));
            run -= 1;
            while run >= 3 {
                let n = run.min(6);
                push((16, (n - 3) as u8));
                run -= n;
            }
        }
        for _ in 0..run {
            push((len, 0));
        }
    }
    count
}

/// Packs bit fields least significant bit first into bytes.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits in `acc`, fewer than 32 between calls.
    len: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, acc: 0, len: 0 }
    }

    /// Appends the low `n` bits of `value` (`n` at most 32).
    fn put(&mut self, value: u64, n: u32) {
        self.acc |= (value & ((1u64 << n) - 1)) << self.len;
        self.len += n;
        if self.len >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.len -= 32;
        }
    }

    /// Writes what is left, padding the last byte with zeros.
    fn finish(self) {
        let bytes = self.len.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    fn inflate(compressed: &[u8], bits: u8, expected_len: usize) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut d = Decompress::new_with_window_bits(false, bits);
        let mut out = Vec::with_capacity(expected_len + 64);
        let status = d.decompress_vec(&input, &mut out, FlushDecompress::Sync).expect("valid deflate");
        assert_eq!(status, Status::Ok);
        assert_eq!(d.total_in() as usize, input.len(), "all input consumed");
        out
    }

    fn round_trip(input: &[u8], level: u32, bits: u8) -> Option<usize> {
        let mut scratch = Scratch::default();
        let mut out = vec![0xAA]; // appended to, not overwritten
        if !compress(input, level, bits, &mut scratch, &mut out) {
            assert_eq!(out, [0xAA], "declined output leaves `out` alone");
            return None;
        }
        assert_eq!(out[0], 0xAA);
        // Inflating with exactly the window proves no match reaches further.
        assert_eq!(inflate(&out[1..], bits, input.len()), input, "level {level} bits {bits}");
        Some(out.len() - 1)
    }

    fn json(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!(
                    r#"{{"id":{i},"user":"user{}","text":"message {i} with text","ts":{}}},"#,
                    i % 37,
                    1_700_000 + i * 7
                )
                .as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// A small deterministic generator, so failures reproduce.
    fn noise(seed: u64, len: usize, alphabet: u8) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % u64::from(alphabet)) as u8
            })
            .collect()
    }

    #[test]
    fn length_and_distance_codes_match_the_rfc_tables() {
        // RFC 1951 section 3.2.5: (code, extra bits, first length).
        let lengths = [
            (257, 0, 3),
            (264, 0, 10),
            (265, 1, 11),
            (268, 1, 17),
            (269, 2, 19),
            (273, 3, 35),
            (277, 4, 67),
            (281, 5, 131),
            (284, 5, 227),
        ];
        for (code, extra, first) in lengths {
            assert_eq!(length_code(first), (code, extra, 0), "length {first}");
        }
        assert_eq!(length_code(257), (284, 5, 30));
        assert_eq!(length_code(258), (285, 0, 0));
        let distances = [(0, 0, 1), (3, 0, 4), (4, 1, 5), (6, 2, 9), (10, 4, 33), (20, 9, 1025), (29, 13, 24577)];
        for (code, extra, first) in distances {
            assert_eq!(distance_code(first), (code, extra, 0), "distance {first}");
        }
        assert_eq!(distance_code(32768), (29, 13, 8191));
        // Every length and distance decodes back to itself.
        let length_base = |code: usize| (3..=258).find(|&l| length_code(l).0 == code).unwrap();
        for len in 3..=258 {
            let (code, extra, value) = length_code(len);
            assert!(value < 1 << extra);
            assert_eq!(length_base(code) + value as usize, len);
        }
        let dist_base = |code: usize| (1..=32768).find(|&d| distance_code(d).0 == code).unwrap();
        for dist in (1..=32768).step_by(7).chain([32767, 32768]) {
            let (code, extra, value) = distance_code(dist);
            assert!(value < 1 << extra);
            assert_eq!(dist_base(code) + value as usize, dist);
        }
    }

    #[test]
    fn code_lengths_respect_the_limit_and_are_complete() {
        // Fibonacci frequencies make the deepest possible tree.
        let mut freq = vec![1u32, 1];
        while freq.len() < 30 {
            let n = freq.len();
            freq.push(freq[n - 1] + freq[n - 2]);
        }
        let freq: [u32; 30] = freq.try_into().unwrap();
        for limit in [7u8, 15] {
            let mut lengths = [0u8; 30];
            assert!(code_lengths(&freq, limit, &mut lengths));
            assert!(lengths.iter().all(|&l| (1..=limit).contains(&l)), "{lengths:?}");
            let kraft: u64 = lengths.iter().map(|&l| 1u64 << (15 - l)).sum();
            assert_eq!(kraft, 1 << 15, "complete code");
            // More frequent symbols never get longer codes.
            for pair in lengths.windows(2) {
                assert!(pair[0] >= pair[1], "{lengths:?}");
            }
        }
    }

    #[test]
    fn run_lengths_expand_back() {
        let lengths: Vec<u8> =
            [vec![0; 150], vec![8; 10], vec![5], vec![0; 4], vec![7; 3], vec![0; 2], vec![9; 7]].concat();
        let mut expanded = Vec::new();
        let mut runs = vec![(0, 0); lengths.len()];
        let count = run_lengths(&lengths, &mut runs);
        for &(sym, extra) in &runs[..count] {
            match sym {
                16 => {
                    let last = *expanded.last().unwrap();
                    expanded.extend(std::iter::repeat_n(last, 3 + usize::from(extra)));
                }
                17 => expanded.extend(std::iter::repeat_n(0, 3 + usize::from(extra))),
                18 => expanded.extend(std::iter::repeat_n(0, 11 + usize::from(extra))),
                len => expanded.push(len),
            }
        }
        assert_eq!(expanded, lengths);
    }

    #[test]
    fn messages_round_trip_at_every_level_and_window() {
        let inputs = [
            json(64),
            json(200),
            json(1024),
            json(16 << 10),
            b"a".repeat(1000),
            b"ab".repeat(3000),
            noise(1, 4096, 4),
            noise(2, 3000, 20),
            [json(5000), noise(3, 3000, 255), json(5000)].concat(),
        ];
        for input in &inputs {
            for level in [1, 4, 6, 9] {
                for bits in [9, 12, 15] {
                    round_trip(input, level, bits).expect("compressible");
                }
            }
        }
    }

    #[test]
    fn long_matches_reach_the_whole_window_and_no_further() {
        // A 40 KiB message whose second half repeats its first at a
        // distance of exactly 32 KiB, then of more.
        for gap in [32 << 10, (32 << 10) + 1] {
            let block = noise(9, 8 << 10, 255);
            let input = [block.clone(), noise(10, gap - block.len(), 255), block].concat();
            let size = round_trip(&input, 6, 15);
            if gap == 32 << 10 {
                assert!(size.expect("compressible") < input.len() - 7000, "the repeat is found");
            }
        }
        let small = [noise(11, 600, 255), noise(11, 600, 255)].concat();
        assert_eq!(round_trip(&small, 6, 9), None, "beyond a 512-byte window: nothing to find");
        assert!(round_trip(&small, 6, 10).is_some(), "within a 1 KiB window");
    }

    #[test]
    fn incompressible_input_is_declined() {
        for len in [1, 64, 1000, 20_000] {
            assert_eq!(round_trip(&noise(5, len, 255), 6, 15), None, "{len}");
        }
        assert_eq!(round_trip(b"", 6, 15), None);
        assert_eq!(round_trip(b"xyz", 6, 15), None);
    }

    #[test]
    fn random_inputs_round_trip() {
        for seed in 0..300u64 {
            let len = (seed * 37 % 3000) as usize;
            let alphabet = [2u8, 3, 16, 100, 255][seed as usize % 5];
            let mut input = noise(seed, len, alphabet);
            if seed % 3 == 0 && len > 20 {
                let copy = input[..len / 3].to_vec();
                input.extend_from_slice(&copy);
            }
            let level = (seed % 10) as u32;
            let bits = 9 + (seed % 7) as u8;
            round_trip(&input, level, bits);
        }
    }

    #[test]
    fn ratio_is_close_to_zlib_level_6_on_json() {
        for len in [200, 1024, 4096, 16 << 10] {
            let input = json(len);
            let ours = round_trip(&input, 6, 15).unwrap();
            let mut zlib = flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 15);
            let mut out = Vec::with_capacity(len + 64);
            zlib.compress_vec(&input, &mut out, flate2::FlushCompress::Sync).unwrap();
            let theirs = out.len() - 4;
            assert!(ours * 100 <= theirs * 110, "{len}: ours {ours}, zlib {theirs}");
        }
    }

    #[test]
    fn too_long_input_or_bad_window_is_declined() {
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        assert!(!compress(&vec![0; MAX_INPUT + 1], 6, 15, &mut scratch, &mut out));
        assert!(!compress(&json(1000), 6, 8, &mut scratch, &mut out));
        assert!(out.is_empty());
        assert!(compress(&vec![0; MAX_INPUT], 6, 15, &mut scratch, &mut out));
    }
}
