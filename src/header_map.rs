//! A header map as the host hands it over in one call (`proxy_get_header_map_pairs`).
//!
//! Reading a few headers one by one costs one host call each, and each call that returns a
//! value makes the host call back into the VM to allocate it (≈ 11 k instructions in Envoy
//! 1.40 + V8, `bench/RESULTS.md`). Reading the whole map once and looking the names up here
//! costs one such call. Pure: parses the proxy-wasm map serialization, never panics, borrows
//! the bytes.
//!
//! Format (proxy-wasm ABI 0.2): `u32` count, then `count` × (`u32` name length, `u32` value
//! length), then for each pair the name, a NUL byte, the value, a NUL byte. Integers are
//! little-endian.

/// A parsed header map: `(name, value)` pairs in the host's order, borrowed from the bytes.
#[derive(Debug, Default)]
pub struct HeaderMap<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

impl<'a> HeaderMap<'a> {
    /// Parses the serialized map; `None` when the bytes are not in the format (truncated,
    /// lengths past the end, missing NUL terminators).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(HeaderMap::default());
        }
        let count = u32_at(bytes, 0)?;
        let sizes_end = count.checked_mul(8)?.checked_add(4)?;
        if sizes_end > bytes.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        let mut at = sizes_end;
        for i in 0..count {
            let name_len = u32_at(bytes, 4 + i * 8)?;
            let value_len = u32_at(bytes, 8 + i * 8)?;
            let name_end = at.checked_add(name_len)?;
            let name = bytes.get(at..name_end)?;
            if bytes.get(name_end) != Some(&0) {
                return None;
            }
            let value_start = name_end + 1;
            let value_end = value_start.checked_add(value_len)?;
            let value = bytes.get(value_start..value_end)?;
            if bytes.get(value_end) != Some(&0) {
                return None;
            }
            pairs.push((name, value));
            at = value_end + 1;
        }
        Some(HeaderMap { pairs })
    }

    /// The first value of a header (names compare exactly: Envoy keeps them lower-case).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|&(_, v)| v)
    }

    /// Whether the header is present (with any value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Serializes pairs in the same format (the filter's local replies; tests).
pub fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    #[test]
    fn round_trips_and_finds_the_first_value() {
        let bytes = serialize(&[
            (":method", b"POST"),
            (":path", b"/v1/chat/completions?x=1"),
            ("content-encoding", b""),
            ("x-dup", b"one"),
            ("x-dup", b"two"),
            ("x-bin", b"\xff\x00\xfe"),
        ]);
        let map = HeaderMap::parse(&bytes).unwrap();
        assert_eq!(map.len(), 6);
        assert_eq!(map.get(":method"), Some(&b"POST"[..]));
        assert_eq!(map.get(":path"), Some(&b"/v1/chat/completions?x=1"[..]));
        assert_eq!(map.get("content-encoding"), Some(&b""[..]));
        assert!(map.contains("content-encoding"));
        assert_eq!(map.get("x-dup"), Some(&b"one"[..]));
        assert_eq!(map.get("x-bin"), Some(&b"\xff\x00\xfe"[..]));
        assert_eq!(map.get("x-absent"), None);
        assert_eq!(map.get("X-DUP"), None, "names are compared exactly");
    }

    #[test]
    fn an_empty_map_and_empty_bytes_have_no_headers() {
        assert!(HeaderMap::parse(&serialize(&[])).unwrap().is_empty());
        assert!(HeaderMap::parse(b"").unwrap().is_empty());
    }

    #[test]
    fn rejects_every_truncation_and_bad_terminator_without_panicking() {
        let bytes = serialize(&[(":status", b"200"), ("content-type", b"text/event-stream")]);
        for cut in 1..bytes.len() {
            assert!(HeaderMap::parse(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x5a;
            let _ = HeaderMap::parse(&bad); // any result, no panic
        }
        let mut no_nul = bytes.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert!(HeaderMap::parse(&no_nul).is_none());
        // A count that claims more pairs than the bytes hold.
        let mut huge = bytes;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderMap::parse(&huge).is_none());
    }
}
