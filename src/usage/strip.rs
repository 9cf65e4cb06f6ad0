//! Removal of what `stream_options.include_usage` adds to an OpenAI SSE stream (for
//! `stream_usage: inject`): the usage-only chunk and the `"usage":null` of every other chunk.

use std::borrow::Cow;

use super::json::JsonScanner;
use super::sse::{Sink, SseScanner};
use super::Usage;

/// Most bytes of one undecided event or member held across chunks. OpenAI's usage chunk is
/// about 400 bytes; an event or member still undecided past this is given up on and passed on
/// unchanged.
const MAX_HELD: usize = 64 * 1024;

/// Where a byte is: at an index of the held bytes, or of the chunk being filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Held(usize),
    Chunk(usize),
}

/// A candidate for a removable top-level `"usage": null` member (see `json::Members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Its first byte (a comma or the `"` of a first member's name).
    start: At,
    /// Just past its `null`, once read.
    null_end: Option<At>,
}

impl Span {
    /// The positions once `chunk[from..]` is appended to `held_len` held bytes.
    fn held(self, held_len: usize, from: usize) -> Span {
        let move_at = |at| match at {
            At::Chunk(pos) => At::Held(held_len + pos.saturating_sub(from)),
            held => held,
        };
        Span {
            start: move_at(self.start),
            null_end: self.null_end.map(move_at),
        }
    }

    /// The positions once the first `k` held bytes are gone.
    fn unhold(self, k: usize) -> Span {
        let move_at = |at| match at {
            At::Held(i) => At::Held(i.saturating_sub(k)),
            chunk => chunk,
        };
        Span {
            start: move_at(self.start),
            null_end: self.null_end.map(move_at),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// No line of the current event that matters yet (nothing, or only comments): pass.
    Idle,
    /// The current event may be the usage-only one: its bytes are held back.
    Holding,
    /// The current event is known not to be usage-only: pass until it ends.
    Passing,
}

/// Removes from a chat-completions SSE stream what `stream_options.include_usage` added to it,
/// passing every other byte on unchanged and in order:
///
/// - the event whose JSON has `"choices":[]` and a non-null `usage` (the final usage chunk).
///   An event is the bytes from the start of its first non-comment line through the empty line
///   that ends it (comment lines before it pass at once);
/// - a `"usage":null` member of the top-level object of an event's JSON, with one comma: from
///   the comma before it through `null`, or, while every member before it was removed, from its
///   name through the comma after it (through `null` when `}` follows). So `{"a":1,"usage":null}`
///   and `{"usage":null,"a":1}` become `{"a":1}`, `{"usage":null}` becomes `{}`, whitespace
///   outside the removed span stays, and a name written with escapes (`"us\u0061ge"`) counts.
///   The member and its comma must be on one `data` line; `usage` anywhere else (nested objects,
///   strings) and a non-null top-level `usage` stay.
///
/// Only what may still be removed is held back, and only until it is known not to be: an event
/// that may be usage-only (for a content chunk: until `"choices":[{`), and the tail of an event
/// from a comma or name that may begin a removable member (until the name is not a prefix of
/// `usage` or the value is not `null`), at most 64 KiB. It also meters usage like
/// [`UsageScanner`](super::UsageScanner) with [`Format::Sse`](super::Format::Sse), see
/// [`UsageChunkStripper::usage`].
#[derive(Debug, Clone)]
pub struct UsageChunkStripper {
    sse: SseScanner,
    hold: Hold,
    /// Bytes of the held event or member from earlier chunks.
    held: Vec<u8>,
    /// The candidate member, with its positions in `held`.
    span: Option<Span>,
    /// The usage-only event just removed ended with `\r`: a `\n` right after it is removed too.
    drop_lf: bool,
}

impl Default for UsageChunkStripper {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageChunkStripper {
    pub fn new() -> Self {
        UsageChunkStripper {
            sse: SseScanner::new(),
            hold: Hold::Idle,
            held: Vec::new(),
            span: None,
            drop_lf: false,
        }
    }

    /// Returns the bytes to pass on to the client for this chunk (`Cow::Borrowed(chunk)` when
    /// nothing changed — the common case does not allocate or copy; a borrowed sub-slice when
    /// only a prefix or suffix is withheld or removed; an owned copy when a member is removed
    /// from the middle or held bytes go out).
    ///
    /// With `end_of_stream`, whatever is still held is released, unless it is a complete
    /// usage-only event (whose terminating empty line never came).
    pub fn filter<'a>(&mut self, chunk: &'a [u8], end_of_stream: bool) -> Cow<'a, [u8]> {
        let mut pass = Pass {
            out: Out::new(chunk, self.held.len()),
            cursor: 0,
            hold: self.hold,
            held: &mut self.held,
            span: self.span,
            drop_lf: self.drop_lf,
        };
        self.sse.feed(chunk, &mut pass);
        let Pass {
            mut out,
            cursor,
            hold,
            span,
            drop_lf,
            ..
        } = pass;
        let n = chunk.len();
        self.drop_lf = drop_lf;
        self.hold = hold;
        self.span = None;
        if hold == Hold::Holding {
            if end_of_stream {
                if !self.sse.json().is_usage_only() {
                    out.bytes(&self.held);
                    out.range(cursor, n);
                }
                self.held.clear();
                self.hold = Hold::Idle;
                self.sse.keep_member();
            } else if self.held.len() + n.saturating_sub(cursor) > MAX_HELD {
                out.bytes(&self.held);
                out.range(cursor, n);
                self.held = Vec::new();
                self.hold = Hold::Passing;
                self.sse.keep_member();
            } else {
                let held_len = self.held.len();
                self.held
                    .extend_from_slice(chunk.get(cursor..).unwrap_or_default());
                self.span = span.map(|span| span.held(held_len, cursor));
            }
        } else if let Some(span) = span {
            // Only the candidate member is held.
            let from = match span.start {
                At::Chunk(start) => start,
                At::Held(_) => cursor,
            };
            out.range(cursor, from);
            if end_of_stream || self.held.len() + n.saturating_sub(from) > MAX_HELD {
                out.bytes(&self.held);
                out.range(from, n);
                self.held = Vec::new();
                self.sse.keep_member();
            } else {
                let held_len = self.held.len();
                self.held
                    .extend_from_slice(chunk.get(from..).unwrap_or_default());
                self.span = Some(span.held(held_len, from));
            }
        } else {
            out.range(cursor, n);
        }
        out.finish()
    }

    /// The usage found so far, as [`UsageScanner::usage`](super::UsageScanner::usage) would
    /// report it for the same (unstripped) stream.
    pub fn usage(&self) -> Option<Usage> {
        self.sse.json().usage()
    }

    /// The stripper without the SSE look-ahead: every event parsed, the reference the
    /// look-ahead is checked against (unit tests, fuzz oracles).
    pub fn reference() -> Self {
        let mut stripper = Self::new();
        stripper.sse.look_ahead = false;
        stripper
    }

    /// How many SSE events the look-ahead stepped over so far.
    pub fn skipped(&self) -> usize {
        self.sse.skipped
    }

    #[cfg(test)]
    pub(super) fn held_len(&self) -> usize {
        self.held.len()
    }
}

/// State of one `filter` call, observing the SSE parser.
struct Pass<'a, 'h> {
    out: Out<'a>,
    /// Chunk bytes before this were passed on, removed or (when holding) are part of the event.
    cursor: usize,
    hold: Hold,
    /// Held bytes: those of the held event (`Holding`), else only those of the candidate
    /// member.
    held: &'h mut Vec<u8>,
    span: Option<Span>,
    drop_lf: bool,
}

impl Pass<'_, '_> {
    /// The held event is not usage-only: everything held goes out, but for a candidate member
    /// started in an earlier chunk; the rest passes.
    fn release(&mut self) {
        let keep = match self.span {
            Some(Span {
                start: At::Held(start),
                ..
            }) => start.min(self.held.len()),
            _ => self.held.len(),
        };
        self.out.bytes(self.held.get(..keep).unwrap_or_default());
        self.held.drain(..keep);
        self.span = self.span.map(|span| span.unhold(keep));
        self.hold = Hold::Passing;
    }

    /// The candidate member is kept: if it was held (outside a held event), it goes out.
    fn drop_span(&mut self) {
        if let Some(span) = self.span.take() {
            if self.hold != Hold::Holding && matches!(span.start, At::Held(_)) {
                self.out.bytes(self.held);
                self.held.clear();
            }
        }
    }
}

impl Sink for Pass<'_, '_> {
    const MEMBERS: bool = true;

    fn line_start(&mut self, pos: usize, comment: bool) {
        self.drop_lf = false;
        if self.hold == Hold::Idle && !comment {
            self.out.range(self.cursor, pos);
            self.cursor = pos;
            self.hold = Hold::Holding;
        }
    }

    fn data_fed(&mut self, json: &JsonScanner) {
        if self.span.is_some() && !json.member_alive() {
            self.drop_span();
        }
        if self.hold == Hold::Holding && json.not_usage_only() {
            self.release();
        }
    }

    fn dispatch(&mut self, end: usize, cr: bool, json: &JsonScanner, had_data: bool) {
        self.drop_lf = false;
        // Never alive here: a candidate ends with its data line.
        self.drop_span();
        if self.hold == Hold::Holding {
            if had_data && json.is_usage_only() {
                self.held.clear();
                self.cursor = end;
                self.drop_lf = cr;
            } else {
                self.release();
            }
        }
        self.hold = Hold::Idle;
    }

    fn lf_after_cr(&mut self, pos: usize) {
        if self.drop_lf {
            self.drop_lf = false;
            self.out.range(self.cursor, pos);
            self.cursor = pos + 1;
        }
    }

    /// An event stepped over starts and ends in this chunk, so with nothing held it passes
    /// like one that is released: its bytes stay in the range from `cursor`.
    fn may_skip(&self) -> bool {
        self.hold == Hold::Idle && self.span.is_none()
    }

    fn skipped(&mut self) {
        // As its first line would have.
        self.drop_lf = false;
    }

    fn member_start(&mut self, pos: usize) {
        self.drop_span();
        self.span = Some(Span {
            start: At::Chunk(pos),
            null_end: None,
        });
    }

    fn member_null_end(&mut self, pos: usize) {
        if let Some(span) = &mut self.span {
            span.null_end = Some(At::Chunk(pos));
        }
    }

    fn member_cut(&mut self, end: Option<usize>) {
        let Some(span) = self.span else {
            return;
        };
        let Some(end) = end.map(At::Chunk).or(span.null_end) else {
            self.drop_span();
            return;
        };
        self.span = None;
        let holding = self.hold == Hold::Holding;
        match (span.start, end) {
            (At::Held(start), At::Held(end)) => {
                if start <= end && end <= self.held.len() {
                    self.held.drain(start..end);
                }
            }
            (At::Held(start), At::Chunk(end)) => {
                self.held.truncate(start);
                self.cursor = end;
            }
            (At::Chunk(start), At::Chunk(end)) => {
                if holding {
                    let before = self.out.chunk.get(self.cursor..start);
                    self.held.extend_from_slice(before.unwrap_or_default());
                } else {
                    self.out.range(self.cursor, start);
                }
                self.cursor = end;
            }
            // The end of a span is never before its start.
            (At::Chunk(_), At::Held(_)) => {}
        }
        if !holding {
            self.out.bytes(self.held);
            self.held.clear();
        }
    }
}

/// Output of one chunk: a borrowed sub-slice of the chunk as long as what goes out is one
/// contiguous range of it, an owned copy otherwise.
struct Out<'a> {
    chunk: &'a [u8],
    start: usize,
    end: usize,
    owned: Option<Vec<u8>>,
    /// Bytes held before the chunk: with the chunk, the most an owned copy usually needs.
    held_len: usize,
}

impl<'a> Out<'a> {
    fn new(chunk: &'a [u8], held_len: usize) -> Self {
        Out {
            chunk,
            start: 0,
            end: 0,
            owned: None,
            held_len,
        }
    }

    /// A copy of what went out so far, allocated once for the whole output.
    fn copy(&self, more: usize) -> Vec<u8> {
        let borrowed = self.borrowed();
        let capacity = (self.chunk.len() + self.held_len).max(borrowed.len() + more);
        let mut owned = Vec::with_capacity(capacity);
        owned.extend_from_slice(borrowed);
        owned
    }

    /// Passes on `chunk[from..to]`.
    fn range(&mut self, from: usize, to: usize) {
        let Some(bytes) = self.chunk.get(from..to) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        match &mut self.owned {
            Some(owned) => owned.extend_from_slice(bytes),
            None if self.start == self.end => {
                self.start = from;
                self.end = to;
            }
            None if from == self.end => self.end = to,
            None => {
                let mut owned = self.copy(bytes.len());
                owned.extend_from_slice(bytes);
                self.owned = Some(owned);
            }
        }
    }

    /// Passes on bytes held from earlier chunks.
    fn bytes(&mut self, held: &[u8]) {
        if held.is_empty() {
            return;
        }
        let mut owned = match self.owned.take() {
            Some(owned) => owned,
            None => self.copy(held.len()),
        };
        owned.extend_from_slice(held);
        self.owned = Some(owned);
    }

    fn borrowed(&self) -> &'a [u8] {
        self.chunk.get(self.start..self.end).unwrap_or_default()
    }

    fn finish(self) -> Cow<'a, [u8]> {
        match self.owned {
            Some(owned) => Cow::Owned(owned),
            None => Cow::Borrowed(self.borrowed()),
        }
    }
}
