//! Strict RFC 8259 validator that walks the body once, iteratively (explicit bit stack, no
//! recursion), and reports the direct members of the value it starts on when that value is an
//! object.
//!
//! Strings, most of a request body, are scanned in one of two modes ([`Mode`]):
//!
//! - **Fast** (wasm builds with `simd128`, the filter): [`scan_string_fast`] reads the string
//!   64 bytes at a time (`simd::Block`), walks the bitmask of its `"`, `\` and control bytes,
//!   and checks UTF-8 on the same vectors, only in blocks whose text has a non-ASCII byte:
//!   one pass, and non-ASCII text costs about what ASCII does. It answers only for a string
//!   that is valid; on anything else (an error, or text that is not valid UTF-8) it hands the
//!   string to the scalar scan, whose answer, error and offset included, is the reference.
//! - **Scalar** (elsewhere: native builds, where the vectors are a portable emulation slower
//!   than word arithmetic): [`scan_string`] stops at non-ASCII bytes too, and `skip_utf8`
//!   checks the characters up to the next ASCII byte; the error is the same as
//!   `std::str::from_utf8`'s, offsets included (tested exhaustively on the boundary cases).
//!   Outside strings any non-ASCII byte is a syntax error, so UTF-8 is only checked inside them.
//!
//! Both modes give the same result on any input, errors included (tested differentially at
//! every alignment, and fuzzed).

use super::{simd, BodyError};
use crate::bytes::{word_at, HI, LO};

/// How strings are scanned (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// [`scan_string_fast`].
    Fast,
    /// [`scan_string`], which validates UTF-8 as it goes.
    Scalar,
}

impl Mode {
    /// The mode `parse` uses: fast where the vector code is real (wasm with `simd128`).
    /// Elsewhere the vectors are a portable emulation, correct but slower than the scalar
    /// scan; the tests and the fuzz target reach the fast mode directly.
    pub(super) const BEST: Mode = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        Mode::Fast
    } else {
        Mode::Scalar
    };

    #[inline(always)]
    fn scan_string(self, b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
        match self {
            Mode::Fast => scan_string_fast(b, i),
            Mode::Scalar => scan_string(b, i),
        }
    }
}

/// A half-open byte range `start..end` of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

/// One direct member of the scanned object.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    /// The key's raw text, between (not including) its quotes.
    pub(super) key: Span,
    /// The key contains at least one backslash escape.
    pub(super) key_escaped: bool,
    /// The whole value, e.g. `"gpt-4"` with its quotes, `{...}` with its braces.
    pub(super) value: Span,
}

pub(super) fn syntax(offset: usize, reason: &'static str) -> BodyError {
    BodyError::Syntax { offset, reason }
}

const END: &str = "unexpected end of input";

/// The reason reported when `c` appears where a value was expected.
fn unexpected(c: u8) -> &'static str {
    match c {
        b']' => "unexpected ']'",
        b'}' => "unexpected '}'",
        b',' => "unexpected ','",
        b':' => "unexpected ':'",
        b'\'' => "unexpected '\\''",
        b'+' => "unexpected '+'",
        b'.' => "unexpected '.'",
        _ => "unexpected character",
    }
}

#[inline]
fn byte_at(b: &[u8], i: usize) -> Result<u8, BodyError> {
    match b.get(i) {
        Some(&c) => Ok(c),
        None => Err(syntax(b.len(), END)),
    }
}

#[inline]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// The first flagged byte of word `x` (which starts at `base`): its index and its value, read
/// out of the word itself rather than loaded again. `m` is `special_mask(x)`, not zero.
#[inline(always)]
fn first_flagged(base: usize, x: u64, m: u64) -> (usize, u8) {
    // The flag is bit 7 of its byte: `t & !7` is the byte's first bit.
    let t = m.trailing_zeros();
    (base + (t / 8) as usize, (x >> (t & !7)) as u8)
}

/// The first byte at or after `i` that is `"`, `\`, a control character (< 0x20) or not
/// ASCII (≥ 0x80): its index and value, or `None` when there is none. Works on 8-byte words
/// (SWAR), 32 bytes per step after the first two; in each word the lowest flagged byte is
/// exact, so it is the first special one.
#[inline(always)]
fn next_special(b: &[u8], mut i: usize) -> Option<(usize, u8)> {
    // Keys, short values and the text between two escapes mostly end within the first word:
    // look there alone first.
    if let Some(x) = word_at(b, i) {
        let m = special_mask(x);
        if m != 0 {
            return Some(first_flagged(i, x, m));
        }
        i += 8;
        // A second word alone too: most text between two escapes is shorter than 16 bytes.
        if let Some(x) = word_at(b, i) {
            let m = special_mask(x);
            if m != 0 {
                return Some(first_flagged(i, x, m));
            }
            i += 8;
        }
        let mut blocks = b.get(i..).unwrap_or_default().chunks_exact(32);
        for block in blocks.by_ref() {
            let mut masks = [0u64; 4];
            for (m, w) in masks.iter_mut().zip(block.chunks_exact(8)) {
                *m = <[u8; 8]>::try_from(w).map_or(0, |w| special_mask(u64::from_le_bytes(w)));
            }
            let [m0, m1, m2, m3] = masks;
            if (m0 | m1 | m2 | m3) != 0 {
                let (k, m) = if m0 != 0 {
                    (0, m0)
                } else if m1 != 0 {
                    (8, m1)
                } else if m2 != 0 {
                    (16, m2)
                } else {
                    (24, m3)
                };
                let p = i + k + (m.trailing_zeros() / 8) as usize;
                return b.get(p).map(|&c| (p, c));
            }
            i += 32;
        }
        return first_special_byte(blocks.remainder(), i);
    }
    first_special_byte(b.get(i..).unwrap_or_default(), i)
}

/// `next_special` one byte at a time, for the last (at most 31) bytes; `tail` starts at `i`.
fn first_special_byte(tail: &[u8], i: usize) -> Option<(usize, u8)> {
    tail.iter()
        .enumerate()
        .find(|&(_, &c)| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
        .map(|(k, &c)| (i + k, c))
}

/// Bit 7 of each byte of `x` that is `"`, `\`, below 0x20 or not ASCII, exactly for the lowest
/// such byte (those above it may be flagged by a borrow, e.g. a `]` after `\\`).
#[inline(always)]
fn special_mask(x: u64) -> u64 {
    // For an ASCII byte v, bit 7 of `v - n` (per byte, `- n·LO`) is set when v < n, and exactly
    // for the lowest such byte: only such a byte borrows from the next one. `v ^ c` is 0 (< 1)
    // when v is c. A non-ASCII byte has bit 7 set already (`| x`) and borrows from no one, so
    // what the subtractions do to it does not matter.
    let quote = x ^ (LO * b'"' as u64);
    let slash = x ^ (LO * b'\\' as u64);
    (quote.wrapping_sub(LO) | slash.wrapping_sub(LO) | x.wrapping_sub(LO * 0x20) | x) & HI
}

/// Validates the UTF-8 characters starting at the non-ASCII byte at `i`, up to the next ASCII
/// byte; returns that byte's index. Reports the first invalid sequence like
/// `std::str::from_utf8` does (`offset` = where the bad sequence starts).
///
/// Kept out of line and returning a `BodyError` on purpose: inlined into the string loop it
/// saves a few wasm instructions per call, but V8 (Node 20) then runs this loop ~1.45× slower
/// on CJK text, and so it does when the error is a bare offset.
#[inline(never)]
pub(super) fn skip_utf8(b: &[u8], i: usize) -> Result<usize, BodyError> {
    let mut k = i;
    while let Some(w) = b
        .get(k..k + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map(u32::from_le_bytes)
    {
        let lead = w as u8;
        // The common case first: a 3-byte character with an unrestricted lead (CJK and most
        // symbols): lead E1..=EF but not ED, then two continuation bytes.
        if w & 0x00C0_C0F0 == 0x0080_80E0 && lead != 0xE0 && lead != 0xED {
            k += 3;
            continue;
        }
        if lead < 0x80 {
            return Ok(k);
        }
        let second = (w >> 8) as u8;
        k += match lead {
            0xC2..=0xDF if w & 0xC000 == 0x8000 => 2,
            0xE0 if w & 0xC0_C000 == 0x80_8000 && second >= 0xA0 => 3,
            0xED if w & 0xC0_C000 == 0x80_8000 && second < 0xA0 => 3,
            0xF1..=0xF3 if w & 0xC0C0_C000 == 0x8080_8000 => 4,
            0xF0 if w & 0xC0C0_C000 == 0x8080_8000 && second >= 0x90 => 4,
            0xF4 if w & 0xC0C0_C000 == 0x8080_8000 && second < 0x90 => 4,
            _ => return Err(BodyError::InvalidUtf8 { offset: k }),
        };
    }
    // Fewer than 4 bytes left: let std check what remains of the run.
    let tail = b.get(k..).unwrap_or_default();
    let run = tail.iter().take_while(|&&c| c >= 0x80).count();
    match std::str::from_utf8(tail.get(..run).unwrap_or_default()) {
        Ok(_) => Ok(k + run),
        Err(e) => Err(BodyError::InvalidUtf8 {
            offset: k + e.valid_up_to(),
        }),
    }
}

/// The length of the escape whose letter (the byte after the `\`) is the index: 2 for the
/// one-letter escapes, 6 for `\u` (whose 4 hex digits are checked apart), 0 when invalid.
static ESCAPE_LEN: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 2;
    t[b'\\' as usize] = 2;
    t[b'/' as usize] = 2;
    t[b'b' as usize] = 2;
    t[b'f' as usize] = 2;
    t[b'n' as usize] = 2;
    t[b'r' as usize] = 2;
    t[b't' as usize] = 2;
    t[b'u' as usize] = 6;
    t
};

/// The length of the escape whose `\\` is at `p` (2, or 6 for `\\u` and its 4 hex digits), or
/// why it is not one. Both string scans check escapes with it.
#[inline(always)]
fn escape_len(b: &[u8], p: usize) -> Result<usize, BodyError> {
    let Some(&letter) = b.get(p + 1) else {
        return Err(syntax(b.len(), "unterminated string"));
    };
    match ESCAPE_LEN.get(usize::from(letter)) {
        Some(2) => Ok(2),
        Some(6) => match b.get(p + 2..p + 6) {
            Some(h) if h.iter().all(u8::is_ascii_hexdigit) => Ok(6),
            _ => Err(syntax(p, "invalid \\u escape in string")),
        },
        _ => Err(syntax(p, "invalid escape in string")),
    }
}

/// Validates the string starting at the `"` at `i`. Returns the index just past its closing
/// quote and whether it contains escapes.
///
/// Plain text is skipped a word at a time by `next_special`, which also hands back the byte it
/// stopped on, so each stop costs one branch on that byte: the closing quote, an escape, a
/// non-ASCII run (`skip_utf8`) or an error.
#[inline]
pub(super) fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let Some((p, c)) = next_special(b, j) else {
            return Err(syntax(b.len(), "unterminated string"));
        };
        if c == b'"' {
            return Ok((p + 1, escaped));
        }
        if c == b'\\' {
            escaped = true;
            j = p + escape_len(b, p)?;
        } else if c >= 0x80 {
            // A lone 2-byte character (a Latin letter with an accent) is checked here, without
            // the call; longer runs, and anything else, go to `skip_utf8`.
            j = match b.get(p + 1..p + 3) {
                Some(&[c1, next])
                    if (0xC2..0xE0).contains(&c) && c1 & 0xC0 == 0x80 && next < 0x80 =>
                {
                    p + 2
                }
                _ => skip_utf8(b, p)?,
            };
        } else {
            return Err(syntax(p, "unescaped control character in string"));
        }
    }
}

/// [`scan_string`], found 64 bytes at a time: the same result on any input.
///
/// The string's valid case is [`string_fast`]'s; anything else (an error, or text that is
/// not valid UTF-8) is rare, and scanned again by [`scan_string`], which says exactly what
/// is wrong and where (the first problem in the string's bytes, as the scalar scan meets it).
#[inline(never)]
pub(super) fn scan_string_fast(b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
    match string_fast(b, i) {
        Some(end) => Ok(end),
        None => scan_string(b, i),
    }
}

/// The end of the valid string starting at the `"` at `i` (and whether it has escapes), or
/// `None` when it is not one.
///
/// The mask of a block's `"`, `\` and control bytes is walked bit by bit: the closing quote
/// ends the string, a control character is an error, and an escape is checked (letter and hex
/// digits) and its bits cleared (`\"` and `\\` flag their second byte too); the walk goes on
/// in the same block, or at the next block from just past the escape when it reaches the end.
/// Blocks start where the scan is, not on any alignment; the last (< 64) bytes of the body
/// are read from a padded copy.
///
/// UTF-8 is checked on the same vectors, once per block the string's text fills and, in the
/// block where it ends, only when its text there has a non-ASCII byte (a short key followed
/// by non-ASCII text costs nothing more). That last check covers the whole block, bytes after
/// the closing quote too: an invalid sequence there (in a valid body there is none: what
/// follows is JSON, and a character cut off by the block's end is not an error yet; one cut
/// off by the body's end is, in a body refused anyway) only sends this string to the scalar
/// scan, which finds it valid.
#[inline(always)]
pub(super) fn string_fast(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut utf8 = simd::Utf8::new();
    let mut escaped = false;
    let mut base = i + 1;
    loop {
        let block = match b
            .get(base..base + 64)
            .and_then(|w| <&[u8; 64]>::try_from(w).ok())
        {
            Some(w) => simd::Block::new(w),
            None => simd::Block::padded(b.get(base..).unwrap_or_default()),
        };
        let mut mask = block.string_mask();
        loop {
            if mask == 0 {
                if base + 64 >= b.len() {
                    return None; // unterminated
                }
                // The whole block is the string's text.
                utf8.check(&block);
                base += 64;
                break;
            }
            let k = mask.trailing_zeros() as usize;
            let p = base + k;
            let c = b.get(p).copied().unwrap_or(0);
            if c == b'"' {
                // The string's text in this block: its first k bytes.
                if block.non_ascii() & !(u64::MAX << k) != 0 {
                    utf8.check(&block);
                } else {
                    utf8.ascii();
                }
                return utf8.ok().then_some((p + 1, escaped));
            }
            if c != b'\\' {
                return None; // a control character
            }
            escaped = true;
            let next = k + escape_len(b, p).ok()?;
            if next >= 64 {
                // Text, then the escape up to the block's end; the next block starts after
                // it, so what comes before that block is ASCII.
                utf8.check(&block);
                utf8.ascii();
                base += next;
                break;
            }
            mask &= u64::MAX << next;
        }
    }
}

#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if c.is_ascii_digit() {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Validates the number starting at `i` (a `-` or a digit). Returns the index just past it.
fn scan_number(b: &[u8], i: usize) -> Result<usize, BodyError> {
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j) {
        Some(b'0') => {
            j += 1;
            if matches!(b.get(j), Some(c) if c.is_ascii_digit()) {
                return Err(syntax(j - 1, "leading zero in number"));
            }
        }
        Some(b'1'..=b'9') => j = digits(b, j + 1),
        _ => return Err(syntax(j, "invalid number")),
    }
    if b.get(j) == Some(&b'.') {
        let k = digits(b, j + 1);
        if k == j + 1 {
            return Err(syntax(k, "invalid number"));
        }
        j = k;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = digits(b, j);
        if k == j {
            return Err(syntax(k, "invalid number"));
        }
        j = k;
    }
    Ok(j)
}

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, BodyError> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(syntax(i, "invalid literal"))
    }
}

/// One bit per open container (1 = object). The first 1024 levels live inline; deeper bodies
/// spill into a Vec (so ordinary bodies allocate nothing, and absurd ones cost one bit a level).
struct BitStack {
    inline: [u64; 16],
    spill: Vec<u64>,
    depth: usize,
}

impl BitStack {
    fn new() -> Self {
        BitStack {
            inline: [0; 16],
            spill: Vec::new(),
            depth: 0,
        }
    }

    fn word(&mut self, w: usize) -> Option<&mut u64> {
        if w < self.inline.len() {
            self.inline.get_mut(w)
        } else {
            let k = w - self.inline.len();
            if self.spill.len() <= k {
                self.spill.push(0);
            }
            self.spill.get_mut(k)
        }
    }

    #[inline]
    fn push(&mut self, object: bool) {
        let bit = 1u64 << (self.depth % 64);
        if let Some(word) = self.word(self.depth / 64) {
            if object {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
        self.depth += 1;
    }

    /// Pops the top container and returns whether the new top is an object.
    #[inline]
    fn pop(&mut self) -> bool {
        self.depth = self.depth.saturating_sub(1);
        self.top()
    }

    #[inline]
    fn top(&self) -> bool {
        let Some(d) = self.depth.checked_sub(1) else {
            return false;
        };
        let w = d / 64;
        let word = if w < self.inline.len() {
            self.inline.get(w)
        } else {
            self.spill.get(w - self.inline.len())
        };
        word.is_some_and(|x| x & (1u64 << (d % 64)) != 0)
    }
}

#[derive(Clone, Copy)]
enum State {
    /// Expecting a value at `i` (whitespace already skipped).
    Value,
    /// A value just ended at `i`.
    After,
    /// Expecting an object key at `i` (whitespace already skipped).
    Key,
}

/// Validates the single JSON value that starts at `start` (whitespace before it already
/// skipped) and returns the index just past it; `mode` must be [`Mode::Scalar`] unless the
/// whole of `b` is valid UTF-8. When that value is an object, `on_member` is
/// called for each of its direct members, in order.
pub(super) fn scan_value<F: FnMut(Member)>(
    b: &[u8],
    start: usize,
    mode: Mode,
    mut on_member: F,
) -> Result<usize, BodyError> {
    let mut stack = BitStack::new();
    let mut in_object = false;
    let mut i = start;
    let mut key = Span { start: 0, end: 0 };
    let mut key_escaped = false;
    let mut value_start = 0;
    let mut state = State::Value;
    loop {
        match state {
            State::Value => {
                let c = byte_at(b, i)?;
                match c {
                    b'"' => {
                        i = mode.scan_string(b, i)?.0;
                        state = State::After;
                    }
                    b'{' => {
                        i = skip_ws(b, i + 1);
                        if byte_at(b, i)? == b'}' {
                            i += 1;
                            state = State::After;
                        } else {
                            stack.push(true);
                            in_object = true;
                            state = State::Key;
                        }
                    }
                    b'[' => {
                        i = skip_ws(b, i + 1);
                        if byte_at(b, i)? == b']' {
                            i += 1;
                            state = State::After;
                        } else {
                            stack.push(false);
                            in_object = false;
                        }
                    }
                    b'-' | b'0'..=b'9' => {
                        i = scan_number(b, i)?;
                        state = State::After;
                    }
                    b't' => {
                        i = literal(b, i, b"true")?;
                        state = State::After;
                    }
                    b'f' => {
                        i = literal(b, i, b"false")?;
                        state = State::After;
                    }
                    b'n' => {
                        i = literal(b, i, b"null")?;
                        state = State::After;
                    }
                    _ => return Err(syntax(i, unexpected(c))),
                }
            }
            State::After => {
                if stack.depth <= 1 {
                    if stack.depth == 0 {
                        return Ok(i);
                    }
                    if in_object {
                        on_member(Member {
                            key,
                            key_escaped,
                            value: Span {
                                start: value_start,
                                end: i,
                            },
                        });
                    }
                }
                i = skip_ws(b, i);
                match byte_at(b, i)? {
                    b',' => {
                        i = skip_ws(b, i + 1);
                        if in_object {
                            state = State::Key;
                        } else {
                            if b.get(i) == Some(&b']') {
                                return Err(syntax(i, "trailing comma"));
                            }
                            state = State::Value;
                        }
                    }
                    b'}' if in_object => {
                        i += 1;
                        in_object = stack.pop();
                    }
                    b']' if !in_object => {
                        i += 1;
                        in_object = stack.pop();
                    }
                    _ if in_object => return Err(syntax(i, "expected ',' or '}'")),
                    _ => return Err(syntax(i, "expected ',' or ']'")),
                }
            }
            State::Key => {
                match byte_at(b, i)? {
                    b'"' => {}
                    b'}' => return Err(syntax(i, "trailing comma")),
                    _ => return Err(syntax(i, "expected a string key")),
                }
                let (end, escaped) = mode.scan_string(b, i)?;
                if stack.depth == 1 {
                    key = Span {
                        start: i + 1,
                        end: end - 1,
                    };
                    key_escaped = escaped;
                }
                i = skip_ws(b, end);
                if byte_at(b, i)? != b':' {
                    return Err(syntax(i, "expected ':' after object key"));
                }
                i = skip_ws(b, i + 1);
                if stack.depth == 1 {
                    value_start = i;
                }
                state = State::Value;
            }
        }
    }
}
