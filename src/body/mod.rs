//! The request body: strict validation, reading the few top-level members the gateway cares
//! about, and rewriting some of them while every other byte stays exactly as the client sent it.
//!
//! The body is never round-tripped through a JSON tree. [`parse`] walks it once (iteratively,
//! in linear time, without allocating unless a value it reads has escapes) and records byte
//! spans; [`rewrite`] turns a [`Plan`] into a handful of span edits and splices them into one
//! exactly-sized output buffer.
//!
//! Layout: `parse.rs` (validation and the [`Parsed`] view), `rewrite.rs` ([`Plan`] to span
//! edits: [`rewrite`], [`rewrite_prefix`]), `scan.rs` (the validator both stand on), `simd.rs`
//! (its vector UTF-8 check and string mask, the crate's only `unsafe`), `escape.rs` and
//! `number.rs` (JSON string and number helpers). The public API is re-exported here.

mod escape;
mod number;
mod parse;
mod rewrite;
mod scan;
mod simd;

#[cfg(test)]
mod tests;

pub(crate) use escape::push_json_str;
pub use parse::{parse, BodyError, Parsed, TRACKED_KEYS};

/// The two modes of the body scan, side by side: for the `body_scan` fuzz target (and the
/// tests), which check that they agree. Not an API.
#[doc(hidden)]
pub mod scan_check {
    use super::scan::{scan_value, Member, Mode};
    use super::BodyError;

    /// A scanned value's end and its direct members as (key start, key end, key escaped,
    /// value start, value end).
    pub type Scanned = Result<(usize, Vec<(usize, usize, bool, usize, usize)>), BodyError>;

    /// Whether `b` is valid UTF-8, by the vector check the fast mode runs on a string's blocks.
    pub fn utf8_valid(b: &[u8]) -> bool {
        super::simd::utf8_valid(b)
    }

    /// Scans the value at `start` (not whitespace) in the fast mode or in the scalar one.
    pub fn scan(b: &[u8], start: usize, fast: bool) -> Scanned {
        let mode = if fast { Mode::Fast } else { Mode::Scalar };
        let mut members = Vec::new();
        scan_value(b, start, mode, |m: Member| {
            members.push((
                m.key.start,
                m.key.end,
                m.key_escaped,
                m.value.start,
                m.value.end,
            ));
        })
        .map(|end| (end, members))
    }
}
pub use rewrite::{rewrite, rewrite_prefix, Endpoint, Plan, PrefixRewrite, Rewrite};
