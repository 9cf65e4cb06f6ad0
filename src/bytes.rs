//! Word-at-a-time (SWAR) byte helpers for the hot loops, in safe Rust: the per-byte constants
//! and word loads the body scanner (`body/scan.rs`) and the SSE look-ahead (`usage/skim.rs`)
//! build on, and the `memchr2`-like searches of the usage scanner (`usage/json.rs`,
//! `usage/sse.rs`). Words are little-endian: byte `i` of the slice is in the low bits.

/// `0x01` in every byte.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;
/// `0x7f` in every byte.
pub(crate) const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Nonzero with the high bit of the lowest zero byte of `x` set; bits above it may be
/// spurious (a borrow), never bits below.
#[inline(always)]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// The high bit of exactly every zero byte of `x` (no borrow between bytes).
#[inline(always)]
pub(crate) fn zero_bytes_exact(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x) & HI
}

/// `b` in every byte.
#[inline(always)]
pub(crate) fn splat(b: u8) -> u64 {
    LO.wrapping_mul(u64::from(b))
}

/// The 8 bytes of `bytes` (exactly 8 long) as one word.
#[inline(always)]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The 8 bytes at `i..i + 8` as one word (byte `i` in the low bits), or `None` when fewer
/// than 8 are left.
#[inline(always)]
pub(crate) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
}

/// Index of the first byte of `hay` equal to `a` or `b`.
#[inline]
pub(crate) fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let va = LO.wrapping_mul(u64::from(a));
    let vb = LO.wrapping_mul(u64::from(b));
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut words {
        let w = word(chunk);
        let hits = zero_bytes(w ^ va) | zero_bytes(w ^ vb);
        if hits != 0 {
            // Little-endian: the lowest set bit belongs to the first matching byte, and the
            // borrow of the zero-byte trick only ever spoils bits above a true match.
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&x| x == a || x == b)
        .map(|p| base + p)
}

/// Index of the first `"`, `[`, `]`, `{` or `}` of `hay`.
#[inline]
pub(crate) fn find_quote_or_bracket(hay: &[u8]) -> Option<usize> {
    // `[` and `]` differ from `{` and `}` only by the 0x20 bit: fold it in.
    let fold = LO.wrapping_mul(0x20);
    let quote = LO.wrapping_mul(u64::from(b'"'));
    let open = LO.wrapping_mul(u64::from(b'{'));
    let close = LO.wrapping_mul(u64::from(b'}'));
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut words {
        let w = word(chunk);
        let folded = w | fold;
        let hits = zero_bytes(w ^ quote) | zero_bytes(folded ^ open) | zero_bytes(folded ^ close);
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&x| is_quote_or_bracket(x))
        .map(|p| base + p)
}

#[inline(always)]
fn is_quote_or_bracket(x: u8) -> bool {
    x == b'"' || (x | 0x20) == b'{' || (x | 0x20) == b'}'
}

#[cfg(test)]
mod tests {
    use super::{find2, find_quote_or_bracket};
    use crate::testing::{test, RngCore, SplitMix64, TestRng};

    #[test]
    fn find_quote_or_bracket_agrees_with_a_naive_search_for_every_byte_value_and_position() {
        for len in 0..24 {
            for pos in 0..len {
                for byte in 0..=255u8 {
                    let mut hay = vec![b'a'; len];
                    hay[pos] = byte;
                    let naive = hay.iter().position(|&x| b"\"[]{}".contains(&x));
                    assert_eq!(find_quote_or_bracket(&hay), naive, "{hay:?}");
                }
            }
        }
        let mut rng = SplitMix64::new(0x853c_49e6_748f_ea9b);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let hay: Vec<u8> = (0..len)
                .map(|_| b"[]{}\"{;};\\\x5b\x7b\x5d\x7d\x02\xa2\xfbx "[rng.below(17)])
                .collect();
            let naive = hay.iter().position(|&x| b"\"[]{}".contains(&x));
            assert_eq!(find_quote_or_bracket(&hay), naive, "{hay:?}");
        }
    }

    #[test]
    fn find2_agrees_with_a_naive_search_for_every_position_and_length() {
        let alphabet = [b'a', b'"', b'\\', 0x80, 0xff, 0x00, 0x21, 0x5b, 0x5d];
        let mut rng = SplitMix64::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let state = rng.next_u64();
            let len = (state % 40) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|k| alphabet[((state >> (k % 48)) as usize + k * 7) % alphabet.len()])
                .collect();
            let naive = hay.iter().position(|&x| x == b'"' || x == b'\\');
            assert_eq!(find2(&hay, b'"', b'\\'), naive, "{hay:?}");
        }
        for len in 0..40 {
            for pos in 0..len {
                let mut hay = vec![b'x'; len];
                hay[pos] = b'\\';
                assert_eq!(find2(&hay, b'"', b'\\'), Some(pos));
            }
        }
    }
}
