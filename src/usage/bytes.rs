//! Byte search used by the hot loops: a word-at-a-time (SWAR) `memchr2` in safe Rust.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Nonzero with the high bit of the lowest zero byte of `x` set (bits above it may be spurious).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Index of the first byte of `hay` equal to `a` or `b`.
#[inline]
pub(super) fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let va = LO.wrapping_mul(u64::from(a));
    let vb = LO.wrapping_mul(u64::from(b));
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
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
pub(super) fn find_quote_or_bracket(hay: &[u8]) -> Option<usize> {
    // `[` and `]` differ from `{` and `}` only by the 0x20 bit: fold it in.
    let fold = LO.wrapping_mul(0x20);
    let quote = LO.wrapping_mul(u64::from(b'"'));
    let open = LO.wrapping_mul(u64::from(b'{'));
    let close = LO.wrapping_mul(u64::from(b'}'));
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
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
    use crate::testing::test;

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
        let mut state = 0x853c_49e6_748f_ea9bu64;
        for _ in 0..20_000 {
            let hay: Vec<u8> = (0..(state % 40) as usize)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"[]{}\"{;};\\\x5b\x7b\x5d\x7d\x02\xa2\xfbx "[(state % 17) as usize]
                })
                .collect();
            let naive = hay.iter().position(|&x| b"\"[]{}".contains(&x));
            assert_eq!(find_quote_or_bracket(&hay), naive, "{hay:?}");
        }
    }

    #[test]
    fn find2_agrees_with_a_naive_search_for_every_position_and_length() {
        let alphabet = [b'a', b'"', b'\\', 0x80, 0xff, 0x00, 0x21, 0x5b, 0x5d];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
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
