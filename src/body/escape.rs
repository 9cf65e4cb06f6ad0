//! Decoding JSON string escapes (for comparing keys and reading `model`) and encoding Rust
//! strings as JSON strings (for the values the rewrite writes).

use std::borrow::Cow;
use std::fmt;

const REPLACEMENT: char = '\u{FFFD}';

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let h = raw.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in h {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

/// Decodes the raw text of a validated JSON string (between its quotes), handing the UTF-8
/// bytes to `push` piece by piece. Surrogate pairs are combined; a lone surrogate decodes to
/// U+FFFD (it cannot be represented in UTF-8). Stops early, returning false, when `push` does.
/// Never panics, whatever `raw` holds.
pub(super) fn unescape(raw: &[u8], mut push: impl FnMut(&[u8]) -> bool) -> bool {
    let mut i = 0;
    loop {
        let rest = raw.get(i..).unwrap_or_default();
        let Some(k) = rest.iter().position(|&c| c == b'\\') else {
            return rest.is_empty() || push(rest);
        };
        if k > 0 && !push(rest.get(..k).unwrap_or_default()) {
            return false;
        }
        let j = i + k;
        let mut buf = [0u8; 4];
        let (ch, len) = match raw.get(j + 1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => match hex4(raw, j + 2) {
                Some(hi @ 0xD800..=0xDBFF) => {
                    let pair = if raw.get(j + 6..j + 8) == Some(b"\\u") {
                        hex4(raw, j + 8).filter(|lo| (0xDC00..=0xDFFF).contains(lo))
                    } else {
                        None
                    };
                    match pair {
                        Some(lo) => {
                            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            (char::from_u32(c).unwrap_or(REPLACEMENT), 12)
                        }
                        None => (REPLACEMENT, 6),
                    }
                }
                Some(v) => (char::from_u32(v).unwrap_or(REPLACEMENT), 6),
                None => (REPLACEMENT, 2),
            },
            // Not reachable for validated input; decode defensively.
            _ => (REPLACEMENT, 2),
        };
        if !push(ch.encode_utf8(&mut buf).as_bytes()) {
            return false;
        }
        i = j + len;
    }
}

/// The decoded text of a validated JSON string's raw contents: borrowed when it has no
/// escapes, owned otherwise. `text` is the same bytes as a `&str`.
pub(super) fn decode(text: &str) -> Cow<'_, str> {
    if !text.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    unescape(text.as_bytes(), |piece| {
        out.extend_from_slice(piece);
        true
    });
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Decodes a raw key into `buf` when it fits; returns the decoded bytes or None when longer.
pub(super) fn decode_short<'b>(raw: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = 0usize;
    let fits = unescape(raw, |piece| {
        let end = len + piece.len();
        match buf.get_mut(len..end) {
            Some(dst) => {
                dst.copy_from_slice(piece);
                len = end;
                true
            }
            None => false,
        }
    });
    if fits {
        buf.get(..len)
    } else {
        None
    }
}

/// Where rendered output goes: a byte counter (to size the output exactly) or the output.
pub(super) trait Sink: fmt::Write {
    fn raw(&mut self, s: &str);
    /// `s` as a JSON string, quotes included.
    fn json_str(&mut self, s: &str);
}

/// Counts the bytes that would be written.
pub(super) struct Count(pub(super) usize);

impl fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

impl Sink for Count {
    fn raw(&mut self, s: &str) {
        self.0 += s.len();
    }
    fn json_str(&mut self, s: &str) {
        self.0 += 2 + s.len();
        for &c in s.as_bytes() {
            self.0 += match c {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                0..=0x1f => 5,
                _ => 0,
            };
        }
    }
}

/// Appends to the output.
pub(super) struct Out<'v>(pub(super) &'v mut Vec<u8>);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Sink for Out<'_> {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }
    fn json_str(&mut self, s: &str) {
        push_json_str(self.0, s);
    }
}

/// Appends `s` as a JSON string, quotes included, escaped as serde_json escapes it (`\"`,
/// `\\`, the short escapes, `\u00XX` for the other control characters; everything else as is).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        run = i + 1;
        if esc.is_empty() {
            let hi = HEX.get(usize::from(c >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(c & 0xf)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
    out.push(b'"');
}
