//! 16-byte vector helpers for the body scan, on 64-byte [`Block`]s: UTF-8 validation
//! ([`Utf8`], block by block) and the mask of the bytes that end a run of plain string text
//! ([`Block::string_mask`]).
//!
//! One small vector type, [`V`], with exactly the operations the two need. Built for wasm32
//! with the `simd128` feature (the filter: `.cargo/config.toml` enables it, and V8 runs it),
//! `V` is a `v128` and every operation is one `core::arch::wasm32` intrinsic. Everywhere else
//! (native tests, fuzzing, the CLI) it is a `u128` and each operation safe word arithmetic
//! with the same semantics, so the algorithms above it are one code, tested natively on the
//! emulation and under Node (`make wasm-test`, which builds with `simd128` too) on the
//! intrinsics.
//!
//! This is the only module of the crate allowed `unsafe`, and only in [`V::load`] on wasm32:
//! `v128_load` takes a raw pointer. Its argument is a `&[u8; 16]`, so the 16 bytes it reads
//! are in bounds, and `v128_load` has no alignment requirement.
//!
//! UTF-8 is validated with the "lookup" algorithm of Keiser and Lemire ("Validating UTF-8 in
//! less than one instruction per byte", 2021): for each byte and the one before it, three
//! 16-entry tables indexed by the high nibble of the previous byte, its low nibble and the
//! high nibble of the current byte give a set of error bits each; their AND is not zero
//! exactly where the pair is a bad one (ASCII followed by a continuation byte, a lead byte not
//! followed by one, an overlong form, a surrogate, a code point above U+10FFFF). The third and
//! fourth byte of a 3- and 4-byte sequence are checked apart: they must be continuations
//! exactly where the byte two (three) places back is a 3- (4-) byte lead. A sequence cut off
//! by the end of the input is caught by the space padding of the last block (a space is not a
//! continuation byte), or when the input ends on a block boundary, by an "incomplete" check
//! on the last three bytes. 64-byte blocks of pure ASCII skip all of this.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::{
        i8x16_shuffle, i8x16_swizzle, u16x8_shr, u8x16_bitmask, u8x16_eq, u8x16_min, u8x16_splat,
        u8x16_sub_sat, v128, v128_and, v128_any_true, v128_or, v128_xor,
    };

    /// Sixteen bytes in one wasm `v128`.
    #[derive(Clone, Copy)]
    pub(crate) struct V(v128);

    impl V {
        #[inline(always)]
        // The only `unsafe` of the crate: see the module documentation.
        #[allow(unsafe_code)]
        pub(crate) fn load(b: &[u8; 16]) -> V {
            // SAFETY: `b` is 16 readable bytes; `v128_load` reads exactly those, unaligned.
            V(unsafe { core::arch::wasm32::v128_load(b.as_ptr().cast::<v128>()) })
        }

        #[inline(always)]
        pub(crate) fn splat(x: u8) -> V {
            V(u8x16_splat(x))
        }

        #[inline(always)]
        pub(crate) fn from_array(a: [u8; 16]) -> V {
            V::load(&a)
        }

        #[inline(always)]
        pub(crate) fn eq(self, o: V) -> V {
            V(u8x16_eq(self.0, o.0))
        }

        #[inline(always)]
        pub(crate) fn min(self, o: V) -> V {
            V(u8x16_min(self.0, o.0))
        }

        #[inline(always)]
        pub(crate) fn sub_sat(self, o: V) -> V {
            V(u8x16_sub_sat(self.0, o.0))
        }

        #[inline(always)]
        pub(crate) fn and(self, o: V) -> V {
            V(v128_and(self.0, o.0))
        }

        #[inline(always)]
        pub(crate) fn or(self, o: V) -> V {
            V(v128_or(self.0, o.0))
        }

        #[inline(always)]
        pub(crate) fn xor(self, o: V) -> V {
            V(v128_xor(self.0, o.0))
        }

        /// Each byte's high nibble (`x >> 4`). A 16-bit lane shift and a mask: wasm has a
        /// byte shift, but V8 lowers it to this very pair anyway (x86 has no byte shift).
        #[inline(always)]
        pub(crate) fn high_nibbles(self) -> V {
            V(v128_and(u16x8_shr(self.0, 4), u8x16_splat(0x0F)))
        }

        /// `table[i]` for each byte `i` of `self`, which must be below 16. V8 compiles a
        /// swizzle whose indices come out of an AND with a constant below 16 to one `pshufb`.
        #[inline(always)]
        pub(crate) fn lookup(self, table: V) -> V {
            V(i8x16_swizzle(table.0, self.0))
        }

        /// The 16 bytes that end one byte before `self`'s last one, i.e. the last byte of
        /// `prev` then `self`'s first 15 (`prev` is the vector just before `self`).
        #[inline(always)]
        pub(crate) fn prev1(self, prev: V) -> V {
            V(i8x16_shuffle::<
                15,
                16,
                17,
                18,
                19,
                20,
                21,
                22,
                23,
                24,
                25,
                26,
                27,
                28,
                29,
                30,
            >(prev.0, self.0))
        }

        /// Like [`V::prev1`], two bytes back.
        #[inline(always)]
        pub(crate) fn prev2(self, prev: V) -> V {
            V(i8x16_shuffle::<
                14,
                15,
                16,
                17,
                18,
                19,
                20,
                21,
                22,
                23,
                24,
                25,
                26,
                27,
                28,
                29,
            >(prev.0, self.0))
        }

        /// Like [`V::prev1`], three bytes back.
        #[inline(always)]
        pub(crate) fn prev3(self, prev: V) -> V {
            V(i8x16_shuffle::<
                13,
                14,
                15,
                16,
                17,
                18,
                19,
                20,
                21,
                22,
                23,
                24,
                25,
                26,
                27,
                28,
            >(prev.0, self.0))
        }

        #[cfg(test)]
        pub(crate) fn to_array(self) -> [u8; 16] {
            use core::arch::wasm32::u8x16_extract_lane as lane;
            let v = self.0;
            [
                lane::<0>(v),
                lane::<1>(v),
                lane::<2>(v),
                lane::<3>(v),
                lane::<4>(v),
                lane::<5>(v),
                lane::<6>(v),
                lane::<7>(v),
                lane::<8>(v),
                lane::<9>(v),
                lane::<10>(v),
                lane::<11>(v),
                lane::<12>(v),
                lane::<13>(v),
                lane::<14>(v),
                lane::<15>(v),
            ]
        }

        /// Bit `k` is bit 7 of byte `k`.
        #[inline(always)]
        pub(crate) fn bitmask(self) -> u16 {
            u8x16_bitmask(self.0)
        }

        /// Whether any bit of any byte is set.
        #[inline(always)]
        pub(crate) fn any(self) -> bool {
            v128_any_true(self.0)
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    /// `0x01` in every byte.
    const LO: u128 = u128::from_le_bytes([0x01; 16]);
    /// `0x80` in every byte.
    const HI: u128 = LO * 0x80;
    /// `0x7F` in every byte.
    const LOW7: u128 = LO * 0x7F;

    /// `0xFF` in each byte whose bit 7 is set in `hi` (which has no other bits), else 0.
    #[inline(always)]
    fn spread(hi: u128) -> u128 {
        (hi >> 7) * 0xFF
    }

    /// Bit 7 of each byte of `a` that is below (unsigned) the same byte of `b`. The low 7
    /// bits are compared in `d` without borrows between bytes (each byte of `d` is
    /// `0x80 + a7 - b7`, in 1..=0xFF, its bit 7 set when `a7 >= b7`).
    #[inline(always)]
    fn below(a: u128, b: u128) -> u128 {
        let d = ((a & LOW7) | HI) - (b & LOW7);
        ((!a & b) | (!(a ^ b) & !d)) & HI
    }

    /// Sixteen bytes in a `u128` (byte `k` in bits `8k..8k + 8`), each operation done on all
    /// of them at once without carries or borrows between bytes (SWAR): the portable stand-in
    /// for wasm's `v128`, with the semantics of the intrinsic of the same role. (SWAR rather
    /// than a loop over lanes, so unoptimised test builds run it fast enough.)
    #[derive(Clone, Copy)]
    pub(crate) struct V(u128);

    impl V {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> V {
            V(u128::from_le_bytes(*b))
        }

        #[inline(always)]
        pub(crate) fn splat(x: u8) -> V {
            V(LO * u128::from(x))
        }

        #[inline(always)]
        pub(crate) fn from_array(a: [u8; 16]) -> V {
            V(u128::from_le_bytes(a))
        }

        #[cfg(test)]
        pub(crate) fn to_array(self) -> [u8; 16] {
            self.0.to_le_bytes()
        }

        /// `0xFF` where the bytes are equal, else 0.
        #[inline(always)]
        pub(crate) fn eq(self, o: V) -> V {
            let z = self.0 ^ o.0;
            // Bit 7 of each non-zero byte of `z` (adding 0x7F to the low 7 bits never carries
            // out of the byte).
            let nonzero = (((z & LOW7) + LOW7) | z) & HI;
            V(spread(!nonzero & HI))
        }

        /// The unsigned minimum, byte by byte.
        #[inline(always)]
        pub(crate) fn min(self, o: V) -> V {
            let m = spread(below(self.0, o.0));
            V((self.0 & m) | (o.0 & !m))
        }

        /// The unsigned difference, byte by byte, 0 where it would be negative.
        #[inline(always)]
        pub(crate) fn sub_sat(self, o: V) -> V {
            let (a, b) = (self.0, o.0);
            let wrapping = ((a | HI) - (b & LOW7)) ^ ((a ^ !b) & HI);
            V(wrapping & !spread(below(a, b)))
        }

        #[inline(always)]
        pub(crate) fn and(self, o: V) -> V {
            V(self.0 & o.0)
        }

        #[inline(always)]
        pub(crate) fn or(self, o: V) -> V {
            V(self.0 | o.0)
        }

        #[inline(always)]
        pub(crate) fn xor(self, o: V) -> V {
            V(self.0 ^ o.0)
        }

        #[inline(always)]
        pub(crate) fn high_nibbles(self) -> V {
            V((self.0 >> 4) & (LO * 0x0F))
        }

        /// `table[i]` for each byte `i` (wasm's swizzle gives 0 for an index ≥ 16).
        #[inline(always)]
        pub(crate) fn lookup(self, table: V) -> V {
            let mut r = 0u128;
            for k in 0..16 {
                let i = (self.0 >> (8 * k)) as u8;
                if i < 16 {
                    r |= ((table.0 >> (8 * u32::from(i))) & 0xFF) << (8 * k);
                }
            }
            V(r)
        }

        #[inline(always)]
        pub(crate) fn prev1(self, prev: V) -> V {
            V((self.0 << 8) | (prev.0 >> 120))
        }

        #[inline(always)]
        pub(crate) fn prev2(self, prev: V) -> V {
            V((self.0 << 16) | (prev.0 >> 112))
        }

        #[inline(always)]
        pub(crate) fn prev3(self, prev: V) -> V {
            V((self.0 << 24) | (prev.0 >> 104))
        }

        #[inline(always)]
        pub(crate) fn bitmask(self) -> u16 {
            let mut m = 0u16;
            for k in 0..16 {
                m |= (((self.0 >> (8 * k + 7)) & 1) as u16) << k;
            }
            m
        }

        #[inline(always)]
        pub(crate) fn any(self) -> bool {
            self.0 != 0
        }
    }
}

pub(crate) use imp::V;

/// A 64-byte block of the body, as four vectors.
#[derive(Clone, Copy)]
pub(crate) struct Block([V; 4]);

impl Block {
    #[inline(always)]
    pub(crate) fn new(b: &[u8; 64]) -> Block {
        let (c0, rest) = b.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
        let (c1, rest) = rest.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
        let (c2, rest) = rest.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
        let c3 = rest.first_chunk::<16>().unwrap_or(&[0; 16]);
        Block([V::load(c0), V::load(c1), V::load(c2), V::load(c3)])
    }

    /// The fewer than 64 bytes of `b` (the end of the body), padded with spaces: ASCII, and
    /// none of the bytes [`Block::string_mask`] flags.
    #[inline(never)]
    pub(crate) fn padded(b: &[u8]) -> Block {
        let mut pad = [b' '; 64];
        let n = b.len().min(64);
        if let (Some(dst), Some(src)) = (pad.get_mut(..n), b.get(..n)) {
            dst.copy_from_slice(src);
        }
        Block::new(&pad)
    }

    /// The bits of the bytes (bit `k` for byte `k`) that are `"`, `\` or a control character
    /// (below 0x20): in a string of valid UTF-8, the only bytes that are not plain text.
    #[inline(always)]
    pub(crate) fn string_mask(&self) -> u64 {
        let quote_flip = V::splat(0x02);
        let below = V::splat(0x20);
        let backslash = V::splat(b'\\');
        // `x ^ 0x02` maps the control characters onto themselves and `"` (0x22) onto 0x20, the
        // only other byte at or below 0x20 (a space becomes 0x22): so one unsigned `min` and one
        // compare find both.
        self.bits(|x| {
            let y = x.xor(quote_flip);
            y.min(below).eq(y).or(x.eq(backslash))
        })
    }

    /// The bits of the bytes that are not ASCII.
    #[inline(always)]
    pub(crate) fn non_ascii(&self) -> u64 {
        self.bits(|x| x)
    }

    /// Bit `k` is bit 7 of byte `k` of `f` applied to each vector.
    #[inline(always)]
    fn bits(&self, f: impl Fn(V) -> V) -> u64 {
        let [v0, v1, v2, v3] = self.0.map(|v| u64::from(f(v).bitmask()));
        v0 | (v1 << 16) | (v2 << 32) | (v3 << 48)
    }
}

// The error bits of the lookup tables: which bad pair each one stands for.
/// `11______ 0_______`, `11______ 11______`: a lead byte not followed by a continuation.
const TOO_SHORT: u8 = 1 << 0;
/// `0_______ 10______`: a continuation byte after an ASCII one.
const TOO_LONG: u8 = 1 << 1;
/// `11100000 100_____`: a 3-byte form of a code point below U+0800.
const OVERLONG_3: u8 = 1 << 2;
/// `11110100 1001____`, `11110100 101_____`, `11110101 1001____`, ...: above U+10FFFF.
const TOO_LARGE: u8 = 1 << 3;
/// `11101101 101_____`: a surrogate (U+D800..=U+DFFF).
const SURROGATE: u8 = 1 << 4;
/// `1100000_ 10______`: a 2-byte form of an ASCII code point.
const OVERLONG_2: u8 = 1 << 5;
/// `11110101 1000____`, `1111011_ 1000____`, `11111___ 1000____`: above U+10FFFF.
const TOO_LARGE_1000: u8 = 1 << 6;
/// `11110000 1000____`: a 4-byte form of a code point below U+10000 (shares its bit with
/// `TOO_LARGE_1000`: the first byte tells them apart).
const OVERLONG_4: u8 = 1 << 6;
/// `10______ 10______`: two continuation bytes in a row; an error unless the byte two or
/// three places back is a 3- or 4-byte lead (checked apart, see `check_vector`).
const TWO_CONTS: u8 = 1 << 7;
/// What any first byte (by its low nibble) may carry into the pair.
const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;

/// By the previous byte's high nibble.
const BYTE_1_HIGH: [u8; 16] = [
    // 0_______: ASCII.
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    TOO_LONG,
    // 10______: a continuation.
    TWO_CONTS,
    TWO_CONTS,
    TWO_CONTS,
    TWO_CONTS,
    // 1100____, 1101____: a 2-byte lead.
    TOO_SHORT | OVERLONG_2,
    TOO_SHORT,
    // 1110____: a 3-byte lead.
    TOO_SHORT | OVERLONG_3 | SURROGATE,
    // 1111____: a 4-byte lead (or not UTF-8 at all).
    TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
];

/// By the previous byte's low nibble.
const BYTE_1_LOW: [u8; 16] = [
    // ____0000
    CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
    // ____0001
    CARRY | OVERLONG_2,
    // ____001_
    CARRY,
    CARRY,
    // ____0100
    CARRY | TOO_LARGE,
    // ____0101, ____011_, ____1___
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    // ____1101
    CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
    CARRY | TOO_LARGE | TOO_LARGE_1000,
];

/// By the current byte's high nibble.
const BYTE_2_HIGH: [u8; 16] = [
    // 0_______: ASCII.
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    // 1000____
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
    // 1001____
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
    // 101_____
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
    // 11______: a lead byte.
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
    TOO_SHORT,
];

/// The constant vectors of the UTF-8 check.
struct Utf8Tables {
    byte_1_high: V,
    byte_1_low: V,
    byte_2_high: V,
    low_nibble: V,
    /// A byte at or above `0xE0` (a 3- or 4-byte lead) minus this is ≥ 0x80.
    third_lead: V,
    /// A byte at or above `0xF0` (a 4-byte lead) minus this is ≥ 0x80.
    fourth_lead: V,
    high_bit: V,
    /// Non-zero after `sub_sat` where the last three bytes of a vector start a sequence
    /// longer than what is left of it: a lead ≥ 0xF0 three bytes from the end, ≥ 0xE0 two
    /// from the end, ≥ 0xC0 last.
    incomplete: V,
}

impl Utf8Tables {
    #[inline(always)]
    fn new() -> Self {
        let mut incomplete = [0xFF; 16];
        incomplete[13] = 0xF0 - 1;
        incomplete[14] = 0xE0 - 1;
        incomplete[15] = 0xC0 - 1;
        Utf8Tables {
            byte_1_high: V::from_array(BYTE_1_HIGH),
            byte_1_low: V::from_array(BYTE_1_LOW),
            byte_2_high: V::from_array(BYTE_2_HIGH),
            low_nibble: V::splat(0x0F),
            third_lead: V::splat(0xE0 - 0x80),
            fourth_lead: V::splat(0xF0 - 0x80),
            high_bit: V::splat(0x80),
            incomplete: V::from_array(incomplete),
        }
    }

    /// The error bits of vector `x`, whose preceding 16 bytes are `prev` (not zero only where
    /// `x`, or the sequence it continues, is not valid UTF-8).
    #[inline(always)]
    fn check_vector(&self, x: V, prev: V) -> V {
        let prev1 = x.prev1(prev);
        let special = prev1
            .high_nibbles()
            .lookup(self.byte_1_high)
            .and(prev1.and(self.low_nibble).lookup(self.byte_1_low))
            .and(x.high_nibbles().lookup(self.byte_2_high));
        // Where the byte two back is a 3- or 4-byte lead, or the one three back a 4-byte
        // lead, this byte must be a continuation: the tables then flagged TWO_CONTS (the
        // byte before it is one too), which this XOR clears, and set it where it is missing.
        let must_be_continuation = x
            .prev2(prev)
            .sub_sat(self.third_lead)
            .or(x.prev3(prev).sub_sat(self.fourth_lead))
            .and(self.high_bit);
        must_be_continuation.xor(special)
    }
}

/// A UTF-8 check of consecutive 64-byte blocks: what [`utf8_valid`] does to a whole input,
/// and the fast string scan to the blocks of one string, as it reaches them.
pub(crate) struct Utf8 {
    t: Utf8Tables,
    /// The error bits found so far.
    error: V,
    /// The last 16 bytes checked (zero stands for ASCII).
    prev: V,
    /// Non-zero when `prev` ends in the middle of a sequence: only an error if the input ends
    /// there, or ASCII follows.
    prev_incomplete: V,
}

impl Utf8 {
    #[inline(always)]
    pub(crate) fn new() -> Utf8 {
        let zero = V::splat(0);
        Utf8 {
            t: Utf8Tables::new(),
            error: zero,
            prev: zero,
            prev_incomplete: zero,
        }
    }

    /// Checks the block that follows the bytes checked so far.
    #[inline(always)]
    pub(crate) fn check(&mut self, block: &Block) {
        let [v0, v1, v2, v3] = block.0;
        if v0.or(v1).or(v2).or(v3).bitmask() != 0 {
            let t = &self.t;
            let e = t
                .check_vector(v0, self.prev)
                .or(t.check_vector(v1, v0))
                .or(t.check_vector(v2, v1))
                .or(t.check_vector(v3, v2));
            self.error = self.error.or(e);
            self.prev_incomplete = v3.sub_sat(t.incomplete);
            self.prev = v3;
        } else {
            self.ascii();
        }
    }

    /// What follows the bytes checked so far, up to the next block checked, is ASCII: fine
    /// unless they end inside a sequence.
    #[inline(always)]
    pub(crate) fn ascii(&mut self) {
        let zero = V::splat(0);
        self.error = self.error.or(self.prev_incomplete);
        self.prev_incomplete = zero;
        self.prev = zero;
    }

    /// No error so far (a sequence the last block cut off is not one yet).
    #[inline(always)]
    pub(crate) fn ok(&self) -> bool {
        !self.error.any()
    }

    /// No error, and the bytes checked end on a character boundary.
    #[inline(always)]
    pub(crate) fn complete(&self) -> bool {
        !self.error.or(self.prev_incomplete).any()
    }
}

/// Whether `b` is valid UTF-8: always the same answer as `std::str::from_utf8(b).is_ok()`.
pub(crate) fn utf8_valid(b: &[u8]) -> bool {
    let mut utf8 = Utf8::new();
    let mut chunks = b.chunks_exact(64);
    for chunk in chunks.by_ref() {
        let Ok(chunk) = <&[u8; 64]>::try_from(chunk) else {
            break;
        };
        utf8.check(&Block::new(chunk));
        // Invalid input is rare: a check every 64 bytes costs less than scanning on.
        if !utf8.ok() {
            return false;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        utf8.check(&Block::padded(rest));
    }
    utf8.complete()
}
