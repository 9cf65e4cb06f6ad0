//! Incremental JSON scanner that looks for the `usage` object of one JSON document.
//!
//! It is fed the document in arbitrary slices and keeps only constant-size state. Only the
//! containers that can lead to a counted `usage` are tracked (at most three levels:
//! top-level object → `response` → `usage`, top-level object → `usage`, and the top-level
//! `choices` array for the stripper); every other container is skipped by counting brackets
//! and skipping strings with a word-at-a-time search, so message content, tool-call arguments,
//! embedding vectors and nested objects cost a fraction of a cycle per byte.
//!
//! Positions that count: the `usage` member of the top-level object and the `usage` member of
//! its `response` member (Responses API events); inside such a `usage` object, its direct
//! members `prompt_tokens` / `input_tokens` and `completion_tokens` / `output_tokens`.
//! The scanner also records what the SSE stripper needs to recognise OpenAI's usage-only chunk:
//! whether the top-level `choices` member is `[]` and whether the top-level `usage` is an object.
//!
//! For the stripper it also finds, when fed with a [`Members`] observer that is `ON`, the
//! top-level `"usage": null` members to remove (see [`Members`] for the rule).
//!
//! Grammar is checked at the tracked levels; the first violation stops the scan of this
//! document (a usage committed before it stays). Skipped containers are only checked for
//! balanced brackets, skipped strings not at all, and numbers leniently.

use super::Usage;
use crate::bytes::{find2, find_quote_or_bracket};

/// Longest member name kept for comparison (the longest interesting one has 17 bytes).
const KEY_CAP: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Between tokens at a tracked level.
    Between,
    /// Inside a skipped container, between strings.
    Skip,
    /// Inside a string whose contents are skipped.
    Str,
    /// After a backslash inside a skipped string.
    StrEscape,
    /// Inside a member name of a tracked object (compared against the interesting names).
    Key,
    /// After a backslash inside a member name.
    KeyEscape,
    /// Reading the hex digits of a `\u` escape in a member name (count read so far).
    KeyHex(u8),
    Number,
    /// Inside `true`, `false` or `null`.
    Literal,
    /// Not JSON (or not the JSON we understand): ignore the rest of the document.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    /// Right after `[`.
    ValueOrClose,
    /// Right after `{`.
    KeyOrClose,
    /// After `,` in an object.
    Key,
    Colon,
    CommaOrClose,
    /// The top-level value is complete; only whitespace may follow.
    End,
}

/// What a tracked container is. All are objects except `Choices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No container (the top level); also the role of untracked containers.
    None,
    /// The top-level object.
    Root,
    /// `response` in the top-level object.
    Response,
    /// `usage` in the top-level object or in `response`.
    Usage,
    /// `choices` array in the top-level object.
    Choices,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyClass {
    Other,
    Usage,
    Response,
    Choices,
    Prompt,
    Completion,
}

/// Observer of the removable `"usage": null` members of the top-level object; positions index
/// the slice passed to [`JsonScanner::feed`].
///
/// The rule: a member of the top-level object whose name decodes to `usage` and whose value is
/// `null` is removed together with one comma. While no member of the object has been kept, the
/// member is a first one: removed from the opening quote of its name through the comma that
/// follows it (whitespace before the name stays, whitespace after the comma stays), or through
/// `null` when `}` follows it (the whitespace before `}` stays). Otherwise it is removed from the
/// comma before it through `null` (whitespace before the comma and after `null` stays). The
/// removal is decided at the `,` or `}` after `null`, so all of it has been checked as JSON
/// (a syntax error later in the document does not undo it). A candidate dies (the member is
/// kept) as soon as its name is not a prefix of `usage`, its value is not `null`, or the
/// document is not JSON; the SSE layer also ends it at the end of a data line, so a removed
/// span never contains a line break.
pub(super) trait Members {
    /// Whether to look for the members at all (`false`: no cost).
    const ON: bool;
    /// A candidate starts at `pos` (its comma, or for a first member the `"` of its name).
    /// Any previous candidate is over (removed or kept).
    fn start(&mut self, _pos: usize) {}
    /// The candidate's `null` ends just before `pos`.
    fn null_end(&mut self, _pos: usize) {}
    /// The candidate is removed: from its start through just before `end`, or when `None`
    /// through its `null`.
    fn cut(&mut self, _end: Option<usize>) {}
}

/// The usage scanner alone removes nothing.
impl Members for () {
    const ON: bool = false;
}

/// Progress of the candidate for a removable top-level `"usage": null` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    None,
    /// From its start through its name, colon and value while they may still be `"usage": null`.
    Open,
    /// After its `null`: the next structural byte (`,` or `}`) decides.
    Null,
}

#[derive(Debug, Clone)]
pub(super) struct JsonScanner {
    lex: Lex,
    expect: Expect,
    /// Tracked containers open (at most 3).
    depth: usize,
    /// Roles of the tracked containers at depth 1..=3 (index 0 is the top level).
    roles: [Role; 4],
    /// Nesting inside the skipped container being skipped (0 when not skipping).
    skip_depth: u32,
    /// Class of the last member name read in the innermost tracked object.
    key: KeyClass,
    key_buf: [u8; KEY_CAP],
    key_len: usize,
    /// The name is longer than `KEY_CAP` or holds a non-ASCII escape: it matches nothing.
    key_over: bool,
    hex: u32,
    /// Value of the number being read (saturating).
    num: u64,
    /// The number being read is a non-negative integer so far.
    num_ok: bool,
    /// Usage field the number being read is the value of.
    num_field: KeyClass,
    lit: &'static [u8],
    lit_pos: usize,
    /// Fields of the `usage` object being read.
    pending: Usage,
    /// The top-level `choices` is `[]`.
    choices_empty: bool,
    /// The top-level `usage` was a complete object.
    root_usage: bool,
    /// This document is certainly not OpenAI's usage-only chunk.
    disqualified: bool,
    member: Member,
    /// The candidate is a first member (started at its name, not at a comma).
    member_first: bool,
    /// A member of the top-level object has been kept (not removed).
    kept: bool,
    /// The last complete `usage` object; survives `reset`.
    last: Option<Usage>,
}

impl JsonScanner {
    pub(super) fn new() -> Self {
        JsonScanner {
            lex: Lex::Between,
            expect: Expect::Value,
            depth: 0,
            roles: [Role::None; 4],
            skip_depth: 0,
            key: KeyClass::Other,
            key_buf: [0; KEY_CAP],
            key_len: 0,
            key_over: false,
            hex: 0,
            num: 0,
            num_ok: false,
            num_field: KeyClass::Other,
            lit: b"",
            lit_pos: 0,
            pending: Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
            },
            choices_empty: false,
            root_usage: false,
            disqualified: false,
            member: Member::None,
            member_first: false,
            kept: false,
            last: None,
        }
    }

    /// Starts a new document, keeping the usage found so far.
    pub(super) fn reset(&mut self) {
        let last = self.last;
        *self = JsonScanner::new();
        self.last = last;
    }

    /// The last complete `usage` object seen (in any document since creation).
    pub(super) fn usage(&self) -> Option<Usage> {
        self.last
    }

    /// The document is certainly not a usage-only chunk (`"choices":[]` + `usage` object).
    pub(super) fn not_usage_only(&self) -> bool {
        self.disqualified
    }

    /// The document is complete and is a usage-only chunk.
    pub(super) fn is_usage_only(&self) -> bool {
        !self.disqualified
            && self.lex == Lex::Between
            && self.expect == Expect::End
            && self.choices_empty
            && self.root_usage
    }

    /// A candidate for a removable `"usage": null` member is alive.
    pub(super) fn member_alive(&self) -> bool {
        self.member != Member::None
    }

    /// The candidate, if any, is kept (its member is not removed).
    pub(super) fn keep_member(&mut self) {
        if self.member != Member::None {
            self.member = Member::None;
            self.kept = true;
        }
    }

    /// Reads the next slice of the document, telling `members` about removable members.
    pub(super) fn feed<M: Members>(&mut self, bytes: &[u8], members: &mut M) {
        self.scan(bytes, members);
        // Stopped inside the candidate's name: give it up as soon as it cannot be `usage`, so
        // that the stripper holds as little as possible.
        if M::ON
            && self.member == Member::Open
            && matches!(self.lex, Lex::Key | Lex::KeyEscape | Lex::KeyHex(_))
            && (self.key_over
                || !b"usage".starts_with(self.key_buf.get(..self.key_len).unwrap_or_default()))
        {
            self.keep_member();
        }
    }

    fn scan<M: Members>(&mut self, bytes: &[u8], members: &mut M) {
        let n = bytes.len();
        let mut i = 0;
        while i < n {
            match self.lex {
                Lex::Between => {
                    while let Some(&b) = bytes.get(i) {
                        self.structural(b, i, members);
                        i += 1;
                        if self.lex != Lex::Between {
                            break;
                        }
                    }
                }
                Lex::Skip => match find_quote_or_bracket(&bytes[i..]) {
                    None => return,
                    Some(k) => {
                        let at = i + k;
                        i = at + 1;
                        match bytes[at] {
                            b'"' => self.lex = Lex::Str,
                            b'{' | b'[' => self.skip_depth = self.skip_depth.saturating_add(1),
                            _ => {
                                self.skip_depth -= 1;
                                if self.skip_depth == 0 {
                                    self.lex = Lex::Between;
                                    self.after_value();
                                }
                            }
                        }
                    }
                },
                Lex::Str => match find2(&bytes[i..], b'"', b'\\') {
                    None => return,
                    Some(k) => {
                        let at = i + k;
                        i = at + 1;
                        if bytes[at] == b'\\' {
                            self.lex = Lex::StrEscape;
                        } else if self.skip_depth > 0 {
                            self.lex = Lex::Skip;
                        } else {
                            self.lex = Lex::Between;
                            self.after_value();
                        }
                    }
                },
                Lex::StrEscape => {
                    self.lex = Lex::Str;
                    i += 1;
                }
                Lex::Key => {
                    let rest = &bytes[i..];
                    let (name, end) = match find2(rest, b'"', b'\\') {
                        Some(k) => (&rest[..k], Some(rest[k])),
                        None => (rest, None),
                    };
                    self.push_key(name);
                    i += name.len();
                    match end {
                        Some(b'"') => {
                            i += 1;
                            self.end_key();
                        }
                        Some(_) => {
                            i += 1;
                            self.lex = Lex::KeyEscape;
                        }
                        None => {}
                    }
                }
                Lex::KeyEscape => {
                    let b = bytes[i];
                    i += 1;
                    self.key_escape(b);
                }
                Lex::KeyHex(count) => {
                    let b = bytes[i];
                    i += 1;
                    self.key_hex(count, b);
                }
                Lex::Number => {
                    while let Some(&b) = bytes.get(i) {
                        match b {
                            b'0'..=b'9' => {
                                self.num = self
                                    .num
                                    .saturating_mul(10)
                                    .saturating_add(u64::from(b - b'0'));
                            }
                            b'.' | b'e' | b'E' | b'+' | b'-' => self.num_ok = false,
                            // The number ended; `b` is looked at again as a structural byte.
                            _ => {
                                self.end_number();
                                break;
                            }
                        }
                        i += 1;
                    }
                }
                Lex::Literal => {
                    let b = bytes[i];
                    if b.is_ascii_alphanumeric() {
                        if self.lit.get(self.lit_pos) == Some(&b) {
                            self.lit_pos += 1;
                            i += 1;
                        } else {
                            self.fail();
                        }
                    } else if self.lit_pos == self.lit.len() {
                        self.lex = Lex::Between;
                        self.after_value();
                        if M::ON && self.member == Member::Open {
                            // Only a `null` keeps the candidate open this far.
                            self.member = Member::Null;
                            members.null_end(i);
                        }
                    } else {
                        self.fail();
                    }
                }
                Lex::Failed => return,
            }
        }
    }

    fn fail(&mut self) {
        self.lex = Lex::Failed;
        self.disqualified = true;
        self.member = Member::None;
    }

    /// Role of the innermost tracked container (`None` at the top level).
    fn role(&self) -> Role {
        self.roles.get(self.depth).copied().unwrap_or(Role::None)
    }

    fn in_object(&self) -> bool {
        matches!(self.role(), Role::Root | Role::Response | Role::Usage)
    }

    /// A value at a tracked level is complete.
    fn after_value(&mut self) {
        self.expect = if self.depth == 0 {
            Expect::End
        } else {
            Expect::CommaOrClose
        };
    }

    /// Byte `b` at `at` between tokens.
    fn structural<M: Members>(&mut self, b: u8, at: usize, members: &mut M) {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return;
        }
        match self.expect {
            Expect::Value => {
                if self.member == Member::Open && b != b'n' {
                    self.keep_member();
                }
                self.value(b);
            }
            Expect::ValueOrClose => {
                if self.role() == Role::Choices {
                    if b == b']' {
                        self.choices_empty = true;
                    } else {
                        self.disqualified = true;
                    }
                }
                if b == b']' {
                    self.close(false);
                } else {
                    self.value(b);
                }
            }
            Expect::KeyOrClose => match b {
                b'}' => self.close(true),
                b'"' => self.begin_key(at, members),
                _ => self.fail(),
            },
            Expect::Key => match b {
                b'"' => self.begin_key(at, members),
                _ => self.fail(),
            },
            Expect::Colon => match b {
                b':' => self.expect = Expect::Value,
                _ => self.fail(),
            },
            Expect::CommaOrClose => match b {
                b',' | b'}' if M::ON && self.role() == Role::Root => {
                    self.member_delimiter(b, at, members);
                    if b == b',' {
                        self.expect = Expect::Key;
                    } else {
                        self.close(true);
                    }
                }
                b',' => {
                    self.expect = if self.in_object() {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                }
                b'}' => self.close(true),
                b']' => self.close(false),
                _ => self.fail(),
            },
            Expect::End => self.fail(),
        }
    }

    /// The member name the upcoming value belongs to (`Other` in arrays).
    fn value_key(&self) -> KeyClass {
        if self.in_object() {
            self.key
        } else {
            KeyClass::Other
        }
    }

    /// A scalar value starts: it rules out the usage-only shape when it is the whole document,
    /// the top-level `choices` or the top-level `usage`.
    fn scalar_starts(&mut self) {
        if self.depth == 0
            || (self.role() == Role::Root
                && matches!(self.value_key(), KeyClass::Choices | KeyClass::Usage))
        {
            self.disqualified = true;
        }
    }

    fn value(&mut self, b: u8) {
        match b {
            b'{' => self.open(true),
            b'[' => self.open(false),
            b'"' => {
                self.scalar_starts();
                self.lex = Lex::Str;
            }
            b'0'..=b'9' | b'-' => {
                self.scalar_starts();
                self.num_field = if self.role() == Role::Usage {
                    self.value_key()
                } else {
                    KeyClass::Other
                };
                self.num_ok = b != b'-';
                self.num = if b == b'-' { 0 } else { u64::from(b - b'0') };
                self.lex = Lex::Number;
            }
            b't' | b'f' | b'n' => {
                self.scalar_starts();
                self.lit = match b {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                self.lit_pos = 1;
                self.lex = Lex::Literal;
            }
            _ => self.fail(),
        }
    }

    fn open(&mut self, object: bool) {
        let role = match (self.role(), self.value_key(), object) {
            (Role::None, _, true) => Role::Root,
            (Role::Root | Role::Response, KeyClass::Usage, true) => {
                self.pending = Usage::default();
                Role::Usage
            }
            (Role::Root, KeyClass::Response, true) => Role::Response,
            (Role::Root, KeyClass::Choices, false) => Role::Choices,
            // A top-level array, an array `usage`, an object `choices`.
            (Role::None, _, false) | (Role::Root, KeyClass::Choices | KeyClass::Usage, _) => {
                self.disqualified = true;
                Role::None
            }
            _ => Role::None,
        };
        match self.roles.get_mut(self.depth + 1) {
            Some(slot) if role != Role::None => {
                *slot = role;
                self.depth += 1;
                self.expect = if object {
                    Expect::KeyOrClose
                } else {
                    Expect::ValueOrClose
                };
            }
            _ => {
                self.skip_depth = 1;
                self.lex = Lex::Skip;
            }
        }
    }

    fn close(&mut self, object: bool) {
        if self.depth == 0 || self.in_object() != object {
            self.fail();
            return;
        }
        match self.role() {
            Role::Usage => {
                self.last = Some(self.pending);
                if self.depth == 2 {
                    self.root_usage = true;
                }
            }
            Role::Root if !(self.choices_empty && self.root_usage) => self.disqualified = true,
            _ => {}
        }
        self.depth -= 1;
        self.after_value();
    }

    /// A `,` or `}` at `at` ends a member of the top-level object: it decides a candidate whose
    /// `null` is complete, and a `,` starts the next candidate unless it is removed with a first
    /// member.
    fn member_delimiter<M: Members>(&mut self, b: u8, at: usize, members: &mut M) {
        match self.member {
            Member::Null => {
                self.member = Member::None;
                if self.member_first && b == b',' {
                    members.cut(Some(at + 1));
                    return;
                }
                members.cut(None);
            }
            Member::Open => self.keep_member(),
            Member::None => {}
        }
        if b == b',' {
            self.kept = true;
            self.member = Member::Open;
            self.member_first = false;
            members.start(at);
        }
    }

    /// A member name starts with the `"` at `at`.
    fn begin_key<M: Members>(&mut self, at: usize, members: &mut M) {
        if M::ON && self.member == Member::None && !self.kept && self.role() == Role::Root {
            self.member = Member::Open;
            self.member_first = true;
            members.start(at);
        }
        self.key = KeyClass::Other;
        self.key_len = 0;
        self.key_over = false;
        self.lex = Lex::Key;
    }

    fn push_key(&mut self, name: &[u8]) {
        let end = self.key_len + name.len();
        match self.key_buf.get_mut(self.key_len..end) {
            Some(slots) => {
                slots.copy_from_slice(name);
                self.key_len = end;
            }
            None => self.key_over = true,
        }
    }

    fn key_escape(&mut self, b: u8) {
        self.lex = Lex::Key;
        let decoded = match b {
            b'"' | b'\\' | b'/' => b,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                self.hex = 0;
                self.lex = Lex::KeyHex(0);
                return;
            }
            _ => {
                self.fail();
                return;
            }
        };
        self.push_key(&[decoded]);
    }

    fn key_hex(&mut self, count: u8, b: u8) {
        let Some(digit) = (b as char).to_digit(16) else {
            self.fail();
            return;
        };
        self.hex = self.hex * 16 + digit;
        if count < 3 {
            self.lex = Lex::KeyHex(count + 1);
            return;
        }
        self.lex = Lex::Key;
        match u8::try_from(self.hex) {
            Ok(ascii) if ascii.is_ascii() => self.push_key(&[ascii]),
            // Interesting names are ASCII.
            _ => self.key_over = true,
        }
    }

    fn end_key(&mut self) {
        self.lex = Lex::Between;
        self.expect = Expect::Colon;
        let name: &[u8] = if self.key_over {
            b""
        } else {
            self.key_buf.get(..self.key_len).unwrap_or_default()
        };
        self.key = match (self.role(), name) {
            (Role::Root | Role::Response, b"usage") => KeyClass::Usage,
            (Role::Root, b"response") => KeyClass::Response,
            (Role::Root, b"choices") => KeyClass::Choices,
            (Role::Usage, b"prompt_tokens" | b"input_tokens") => KeyClass::Prompt,
            (Role::Usage, b"completion_tokens" | b"output_tokens") => KeyClass::Completion,
            _ => KeyClass::Other,
        };
        if self.member == Member::Open && self.key != KeyClass::Usage {
            self.keep_member();
        }
    }

    fn end_number(&mut self) {
        if self.num_ok {
            match self.num_field {
                KeyClass::Prompt => self.pending.prompt_tokens = self.num,
                KeyClass::Completion => self.pending.completion_tokens = self.num,
                _ => {}
            }
        }
        self.lex = Lex::Between;
        self.after_value();
    }
}
