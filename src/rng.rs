//! The per-VM random source for the weighted pick: SplitMix64 (passes BigCrush, one
//! multiply-xorshift round per number), seeded once from the host's randomness
//! (`random_get` through `rand_core::OsRng`), so a request costs no host call.

use rand_core::{impls, Error, RngCore, SeedableRng};

#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Seeds from the operating system (the Envoy host inside a VM); falls back to `fallback`
    /// (e.g. the current time) when the host has no randomness to give.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn from_host_entropy(fallback: u64) -> Self {
        let mut seed = [0u8; 8];
        match rand_core::OsRng.try_fill_bytes(&mut seed) {
            Ok(()) => SplitMix64::new(u64::from_le_bytes(seed)),
            Err(_) => SplitMix64::new(fallback),
        }
    }
}

/// The SplitMix64 output function: a bijective mixer of 64-bit values.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

/// FNV-1a, 64 bits: a fixed, platform-independent hash (sticky picks must not change when
/// Envoy restarts or the filter is rebuilt).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(FNV_OFFSET, bytes)
}

/// Continues an FNV-1a hash over more bytes.
pub fn fnv1a64_continue(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// A fast [`std::hash::Hasher`] for small keys the VM builds itself (metric series): one
/// multiply-rotate per word, no per-map random seed. SipHash, the std default, resists
/// flooding by keys an attacker chooses; here every key comes from the configuration, and
/// a lookup on every request should cost a few instructions, not a SipHash round.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

/// `HashMap<K, V, WordHash>`.
pub type WordHash = std::hash::BuildHasherDefault<WordHasher>;

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl SeedableRng for SplitMix64 {
    type Seed = [u8; 8];

    fn from_seed(seed: Self::Seed) -> Self {
        SplitMix64::new(u64::from_le_bytes(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    #[test]
    fn the_word_hasher_separates_small_keys() {
        use std::hash::{BuildHasher, Hash};
        let build = WordHash::default();
        let mut seen = std::collections::HashSet::new();
        for a in 0u32..64 {
            for b in 0u16..64 {
                let mut h = build.build_hasher();
                (a, b, Some(a ^ 1)).hash(&mut h);
                seen.insert(std::hash::Hasher::finish(&h));
            }
        }
        assert_eq!(seen.len(), 64 * 64, "no collision among 4,096 small keys");
        // Byte slices of any length hash without panicking and differ by content.
        let one = build.hash_one(b"gpt-4.1".as_slice());
        let two = build.hash_one(b"gpt-4.2".as_slice());
        assert_ne!(one, two);
    }

    #[test]
    fn produces_the_reference_splitmix64_sequence() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    #[test]
    fn seeds_from_the_host_without_failing() {
        let mut a = SplitMix64::from_host_entropy(1);
        let mut b = SplitMix64::from_host_entropy(1);
        // Two draws from the OS agree with probability 2^-64.
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
