//! Removal of OpenAI's usage-only chunk from an SSE stream (for `stream_usage: inject`).

use std::borrow::Cow;

use super::json::JsonScanner;
use super::sse::{Sink, SseScanner};
use super::Usage;

/// Most bytes of one undecided event held across chunks. OpenAI's usage chunk is about
/// 400 bytes; an event still undecided past this is given up on and passed on unchanged.
const MAX_HELD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// No line of the current event that matters yet (nothing, or only comments): pass.
    Idle,
    /// The current event may be the usage-only one: its bytes are held back.
    Holding,
    /// The current event is known not to be usage-only: pass until it ends.
    Passing,
}

/// Removes from a chat-completions SSE stream the event whose JSON has `"choices":[]` and a
/// non-null `usage` (the final usage chunk sent because of `stream_options.include_usage`),
/// passing every other byte on unchanged and in order.
///
/// An event is the bytes from the start of its first non-comment line through the empty line
/// that ends it (comment lines before it pass at once). Only an event that may still turn out to
/// be usage-only is held back, and only until it is known not to be (for a content chunk: at
/// `"choices":[{`), at most 64 KiB. It also meters usage like
/// [`UsageScanner`](super::UsageScanner) with [`Format::Sse`](super::Format::Sse), see
/// [`UsageChunkStripper::usage`].
#[derive(Debug, Clone)]
pub struct UsageChunkStripper {
    sse: SseScanner,
    hold: Hold,
    /// Bytes of the held event from earlier chunks.
    held: Vec<u8>,
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
            drop_lf: false,
        }
    }

    /// Returns the bytes to pass on to the client for this chunk (`Cow::Borrowed(chunk)` when
    /// nothing changed — the common case does not allocate or copy; a borrowed sub-slice when
    /// only a prefix or suffix is withheld or removed).
    ///
    /// With `end_of_stream`, whatever is still held is released, unless it is a complete
    /// usage-only event (whose terminating empty line never came).
    pub fn filter<'a>(&mut self, chunk: &'a [u8], end_of_stream: bool) -> Cow<'a, [u8]> {
        let mut pass = Pass {
            out: Out::new(chunk),
            cursor: 0,
            hold: self.hold,
            held: &mut self.held,
            drop_lf: self.drop_lf,
        };
        self.sse.feed(chunk, &mut pass);
        let Pass {
            mut out,
            cursor,
            hold,
            drop_lf,
            ..
        } = pass;
        let n = chunk.len();
        self.drop_lf = drop_lf;
        self.hold = hold;
        if hold == Hold::Holding {
            if end_of_stream {
                if !self.sse.json().is_usage_only() {
                    out.bytes(&self.held);
                    out.range(cursor, n);
                }
                self.held.clear();
                self.hold = Hold::Idle;
            } else if self.held.len() + n.saturating_sub(cursor) > MAX_HELD {
                out.bytes(&self.held);
                out.range(cursor, n);
                self.held = Vec::new();
                self.hold = Hold::Passing;
            } else {
                self.held
                    .extend_from_slice(chunk.get(cursor..).unwrap_or_default());
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
    held: &'h mut Vec<u8>,
    drop_lf: bool,
}

impl Pass<'_, '_> {
    /// The held event is not usage-only: everything held goes out, the rest passes.
    fn release(&mut self) {
        self.out.bytes(self.held);
        self.held.clear();
        self.hold = Hold::Passing;
    }
}

impl Sink for Pass<'_, '_> {
    fn line_start(&mut self, pos: usize, comment: bool) {
        self.drop_lf = false;
        if self.hold == Hold::Idle && !comment {
            self.out.range(self.cursor, pos);
            self.cursor = pos;
            self.hold = Hold::Holding;
        }
    }

    fn data_fed(&mut self, json: &JsonScanner) {
        if self.hold == Hold::Holding && json.not_usage_only() {
            self.release();
        }
    }

    fn dispatch(&mut self, end: usize, cr: bool, json: &JsonScanner, had_data: bool) {
        self.drop_lf = false;
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
}

/// Output of one chunk: a borrowed sub-slice of the chunk as long as what goes out is one
/// contiguous range of it, an owned copy otherwise.
struct Out<'a> {
    chunk: &'a [u8],
    start: usize,
    end: usize,
    owned: Option<Vec<u8>>,
}

impl<'a> Out<'a> {
    fn new(chunk: &'a [u8]) -> Self {
        Out {
            chunk,
            start: 0,
            end: 0,
            owned: None,
        }
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
                let mut owned = self.borrowed().to_vec();
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
        let borrowed = self.borrowed();
        self.owned
            .get_or_insert_with(|| borrowed.to_vec())
            .extend_from_slice(held);
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
