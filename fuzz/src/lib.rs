//! Helpers shared by the fuzz targets: an independent strict-JSON check (serde_json), a raw
//! top-level member splitter (so "every other member is byte-identical" can be checked
//! without trusting the code under test), and deterministic chunkings of an input.

use serde::de::{Deserialize, IgnoredAny};

/// Above this many `[`/`{` bytes the serde_json cross-check is skipped: its recursive
/// descent would need a deeper native stack than libFuzzer's main thread has.
pub const MAX_CROSS_CHECK_OPENERS: usize = 2_000;

/// Whether `bytes` is one strict RFC 8259 JSON text (valid UTF-8, any nesting depth, optional
/// surrounding JSON whitespace). `None` when too deeply nested to check here.
pub fn serde_valid(bytes: &[u8]) -> Option<bool> {
    if bytes.iter().filter(|&&b| b == b'[' || b == b'{').count() > MAX_CROSS_CHECK_OPENERS {
        return None;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(false);
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    Some(
        IgnoredAny::deserialize(&mut de)
            .and_then(|_| de.end())
            .is_ok(),
    )
}

pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub fn skip_ws(raw: &[u8], mut i: usize) -> usize {
    while i < raw.len() && is_ws(raw[i]) {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON string starting at `raw[i] == b'"'`.
pub fn end_of_string(raw: &[u8], mut i: usize) -> Option<usize> {
    if raw.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match *raw.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// End (exclusive) of the JSON value starting at `i` (iterative: any depth).
pub fn end_of_value(raw: &[u8], i: usize) -> Option<usize> {
    match *raw.get(i)? {
        b'"' => end_of_string(raw, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *raw.get(j)? {
                    b'"' => {
                        j = end_of_string(raw, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while j < raw.len() && !matches!(raw[j], b',' | b'}' | b']') && !is_ws(raw[j]) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// One top-level member, as raw bytes of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMember<'a> {
    /// The key token, quotes included, exactly as written.
    pub key_raw: &'a [u8],
    /// The key decoded (None when serde_json can't decode it, e.g. a lone surrogate escape).
    pub key: Option<String>,
    pub value: &'a [u8],
    pub value_start: usize,
    pub value_end: usize,
}

impl RawMember<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.key.as_deref() == Some(name)
    }
}

/// The members of the top-level object of a *valid* JSON text, in order; None when the
/// top-level value is not an object.
pub fn members(raw: &[u8]) -> Option<Vec<RawMember<'_>>> {
    let mut i = skip_ws(raw, 0);
    if raw.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(raw, i + 1);
    let mut out = Vec::new();
    if raw.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let key_end = end_of_string(raw, i)?;
        let key_raw = &raw[i..key_end];
        i = skip_ws(raw, key_end);
        if raw.get(i) != Some(&b':') {
            return None;
        }
        let vs = skip_ws(raw, i + 1);
        let ve = end_of_value(raw, vs)?;
        out.push(RawMember {
            key_raw,
            key: serde_json::from_slice::<String>(key_raw).ok(),
            value: &raw[vs..ve],
            value_start: vs,
            value_end: ve,
        });
        i = skip_ws(raw, ve);
        match raw.get(i)? {
            b',' => i = skip_ws(raw, i + 1),
            b'}' => return Some(out),
            _ => return None,
        }
    }
}

/// A tiny deterministic generator for chunk boundaries (SplitMix64).
pub struct Cuts(u64);

impl Cuts {
    pub fn new(seed: u64) -> Self {
        Cuts(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Splits `data` into chunks: sizes from 0 (empty chunks happen in Envoy too) up to
    /// `max`, the pattern drawn from its PRNG seed.
    pub fn split<'a>(&mut self, data: &'a [u8], max: usize) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = (self.next() % (max as u64 + 1)) as usize;
            let end = (i + n).min(data.len());
            out.push(&data[i..end]);
            i = end;
        }
        out
    }
}

/// Reads a little-endian u64 from the front of `data` (zero-padded), returning the rest.
pub fn take_u64(data: &[u8]) -> (u64, &[u8]) {
    let n = data.len().min(8);
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&data[..n]);
    (u64::from_le_bytes(b), &data[n..])
}
