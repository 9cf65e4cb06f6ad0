//! Incremental `text/event-stream` parser feeding each event's data to a [`JsonScanner`].
//!
//! The parts of the WHATWG rules that matter here: lines end with `\n`, `\r\n` or `\r` (also
//! when the `\r` and `\n` arrive in different chunks); a `data` field's value loses one leading
//! space and successive `data` lines of an event are joined with `\n`; `:` lines are comments;
//! other fields (`event`, `id`, `retry`, unknown) are ignored; an empty line ends the event.
//! A payload that is not JSON (`[DONE]`) simply fails the JSON scan of its event.

use super::json::{JsonScanner, Members};
use super::skim::{skip_event, Miss};
use crate::bytes::find2;

/// Look-aheads in a row finding a `usage` member after which they stop (see `misses`).
const MAX_MISSES: u8 = 4;

/// Observer of the positions the stripper needs (all positions index the current chunk).
pub(super) trait Sink {
    /// Whether to report the removable `"usage": null` members (see [`Members`]).
    const MEMBERS: bool = false;
    /// A non-empty line starts at `pos`; `comment` when its first byte is `:`.
    fn line_start(&mut self, _pos: usize, _comment: bool) {}
    /// More of the event's data went through the JSON scanner.
    fn data_fed(&mut self, _json: &JsonScanner) {}
    /// An empty line ended the event; `end` is just past its terminator, which was `\r`
    /// when `cr` (a following `\n` then belongs to it, see `lf_after_cr`).
    fn dispatch(&mut self, _end: usize, _cr: bool, _json: &JsonScanner, _had_data: bool) {}
    /// The `\n` at `pos` completed a `\r\n` line ending.
    fn lf_after_cr(&mut self, _pos: usize) {}
    /// [`Members::start`], at `pos` in the chunk.
    fn member_start(&mut self, _pos: usize) {}
    /// [`Members::null_end`], at `pos` in the chunk.
    fn member_null_end(&mut self, _pos: usize) {}
    /// [`Members::cut`], at `end` in the chunk.
    fn member_cut(&mut self, _end: Option<usize>) {}
    /// Whether a whole event that cannot matter may be stepped over without the callbacks
    /// above (then only [`Sink::skipped`] is called for it).
    fn may_skip(&self) -> bool {
        true
    }
    /// A whole event that cannot matter was stepped over, from a line start through its
    /// empty line: it passes as it is.
    fn skipped(&mut self) {}
}

/// Reports the members of the data fed from `chunk[base..]` to the sink in chunk positions.
struct Offset<'s, S> {
    sink: &'s mut S,
    base: usize,
}

impl<S: Sink> Members for Offset<'_, S> {
    const ON: bool = S::MEMBERS;

    fn start(&mut self, pos: usize) {
        self.sink.member_start(self.base + pos);
    }

    fn null_end(&mut self, pos: usize) {
        self.sink.member_null_end(self.base + pos);
    }

    fn cut(&mut self, end: Option<usize>) {
        self.sink.member_cut(end.map(|end| self.base + end));
    }
}

/// The scanner alone needs no positions.
impl Sink for () {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the first byte of a line.
    Start,
    /// In a field name, the first `n` bytes of which equal the first `n` bytes of `data`.
    Field(u8),
    /// Right after `data:`, where one space is dropped.
    DataSpace,
    /// In the value of a `data` field.
    Data,
    /// In a line that is ignored to its end.
    Skip,
}

#[derive(Debug, Clone)]
pub(super) struct SseScanner {
    line: Line,
    /// The previous byte was a `\r` ending a line.
    after_cr: bool,
    /// The current event has had a `data` line.
    had_data: bool,
    /// The look-ahead found the current event may matter (or not whole in its chunk): it is
    /// not tried again for the event's later lines, which keeps the parse linear.
    looked: bool,
    /// Look-aheads in a row that found a `usage` member that matters; at [`MAX_MISSES`] the
    /// stream is taken to have one in every event (for the stripper, `include_usage`'s
    /// `"usage":null`) and look-aheads stop, so they cost it at most a few events' bytes.
    misses: u8,
    /// Step over events that can't hold a member that matters (off: the reference parse that
    /// the tests and the fuzz oracles compare the look-ahead with).
    pub(super) look_ahead: bool,
    /// Events stepped over so far.
    pub(super) skipped: usize,
    json: JsonScanner,
}

impl SseScanner {
    pub(super) fn new() -> Self {
        SseScanner {
            line: Line::Start,
            after_cr: false,
            had_data: false,
            looked: false,
            misses: 0,
            look_ahead: true,
            skipped: 0,
            json: JsonScanner::new(),
        }
    }

    pub(super) fn json(&self) -> &JsonScanner {
        &self.json
    }

    /// Gives up the candidate for a removable member: it is kept.
    pub(super) fn keep_member(&mut self) {
        self.json.keep_member();
    }

    pub(super) fn feed<S: Sink>(&mut self, chunk: &[u8], sink: &mut S) {
        let n = chunk.len();
        let mut i = 0;
        while i < n {
            match self.line {
                Line::Start => {
                    let b = chunk[i];
                    if self.after_cr {
                        self.after_cr = false;
                        if b == b'\n' {
                            sink.lf_after_cr(i);
                            i += 1;
                            continue;
                        }
                    }
                    if b == b'\n' || b == b'\r' {
                        self.after_cr = b == b'\r';
                        i += 1;
                        sink.dispatch(i, self.after_cr, &self.json, self.had_data);
                        self.json.reset();
                        self.had_data = false;
                        self.looked = false;
                        continue;
                    }
                    // No data fed yet, so the JSON scanner is as `reset` leaves it: an event
                    // that cannot matter may be stepped over.
                    if !self.had_data
                        && !self.looked
                        && self.misses < MAX_MISSES
                        && self.look_ahead
                        && sink.may_skip()
                    {
                        self.looked = true;
                        match skip_event(&chunk[i..], S::MEMBERS) {
                            Ok((len, cr)) => {
                                i += len;
                                self.after_cr = cr;
                                self.looked = false;
                                self.misses = 0;
                                self.skipped += 1;
                                sink.skipped();
                                continue;
                            }
                            Err(Miss::Usage) => self.misses += 1,
                            Err(Miss::Unknown) => {}
                        }
                    }
                    sink.line_start(i, b == b':');
                    if b == b':' {
                        self.line = Line::Skip;
                        i += 1;
                    } else {
                        self.line = Line::Field(0);
                    }
                }
                Line::Field(matched) => {
                    let b = chunk[i];
                    match b"data".get(usize::from(matched)) {
                        Some(&expected) if b == expected => {
                            self.line = Line::Field(matched + 1);
                            i += 1;
                        }
                        // A field name other than `data`: `b` is looked at again by `Skip`.
                        Some(_) => self.line = Line::Skip,
                        None => match b {
                            b':' => {
                                self.line = Line::DataSpace;
                                i += 1;
                            }
                            // `data` without a colon: a data line with an empty value.
                            b'\n' | b'\r' => {
                                self.begin_data(sink);
                                self.end_line(b);
                                i += 1;
                            }
                            _ => self.line = Line::Skip,
                        },
                    }
                }
                Line::DataSpace => {
                    if chunk[i] == b' ' {
                        i += 1;
                    }
                    self.begin_data(sink);
                    self.line = Line::Data;
                }
                Line::Data => {
                    let rest = &chunk[i..];
                    let mut members = Offset {
                        sink: &mut *sink,
                        base: i,
                    };
                    match find2(rest, b'\n', b'\r') {
                        None => {
                            self.json.feed(rest, &mut members);
                            sink.data_fed(&self.json);
                            i = n;
                        }
                        Some(k) => {
                            self.json.feed(&rest[..k], &mut members);
                            // A removed member never spans lines.
                            self.json.keep_member();
                            sink.data_fed(&self.json);
                            self.end_line(rest[k]);
                            i += k + 1;
                        }
                    }
                }
                Line::Skip => match find2(&chunk[i..], b'\n', b'\r') {
                    None => i = n,
                    Some(k) => {
                        self.end_line(chunk[i + k]);
                        i += k + 1;
                    }
                },
            }
        }
    }

    fn begin_data<S: Sink>(&mut self, sink: &mut S) {
        if self.had_data {
            // Whitespace between the lines' data: nothing to report.
            self.json.feed(b"\n", &mut ());
            sink.data_fed(&self.json);
        }
        self.had_data = true;
    }

    fn end_line(&mut self, terminator: u8) {
        self.after_cr = terminator == b'\r';
        self.line = Line::Start;
    }
}
