//! Reading a body: strict validation and the spans of the top-level members the gateway
//! cares about ([`Parsed`]), without building a JSON tree.

use std::borrow::Cow;
use std::fmt;

use super::escape;
use super::scan::{self, skip_ws, Member, Mode, Span};

/// Why a body was refused. Every variant's [`Display`](fmt::Display) is a message fit to send
/// back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is empty or only whitespace.
    Empty,
    /// The body starts with a UTF-8 byte order mark, which RFC 8259 forbids.
    ByteOrderMark,
    /// The body is not valid UTF-8; `offset` is where the bad sequence starts (the same
    /// offset `std::str::from_utf8` reports as `valid_up_to`).
    InvalidUtf8 { offset: usize },
    /// The body is not valid JSON.
    Syntax { offset: usize, reason: &'static str },
    /// The body is valid JSON but not an object.
    NotAnObject,
    /// A top-level member the gateway reads appears more than once.
    DuplicateKey(&'static str),
    /// A nested member the gateway reads (named by its dotted path) appears more than once.
    DuplicateNestedKey(&'static str),
    /// The named member must be a string.
    NotAString(&'static str),
    /// The named member must be a boolean.
    NotABoolean(&'static str),
    /// The named member must be a number.
    NotANumber(&'static str),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Empty => f.write_str("request body is empty"),
            BodyError::ByteOrderMark => {
                f.write_str("request body must not start with a byte order mark")
            }
            BodyError::InvalidUtf8 { offset } => {
                write!(
                    f,
                    "request body is not valid UTF-8: bad byte at byte {offset}"
                )
            }
            BodyError::Syntax { offset, reason } => {
                write!(
                    f,
                    "request body is not valid JSON: {reason} at byte {offset}"
                )
            }
            BodyError::NotAnObject => f.write_str("request body must be a JSON object"),
            BodyError::DuplicateKey(key) => write!(f, "duplicate top-level key \"{key}\""),
            BodyError::DuplicateNestedKey(path) => write!(f, "duplicate key \"{path}\""),
            BodyError::NotAString(field) => write!(f, "\"{field}\" must be a string"),
            BodyError::NotABoolean(field) => write!(f, "\"{field}\" must be a boolean"),
            BodyError::NotANumber(field) => write!(f, "\"{field}\" must be a number"),
        }
    }
}

impl std::error::Error for BodyError {}

/// The top-level members the gateway reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Model,
    Stream,
    StreamOptions,
    MaxTokens,
    MaxCompletionTokens,
    MaxOutputTokens,
    Temperature,
    Messages,
}

/// The top-level keys the parser tracks (a duplicate of one of them is refused), as spelled in
/// a body.
pub const TRACKED_KEYS: [&str; 8] = [
    Field::Model.name(),
    Field::Stream.name(),
    Field::StreamOptions.name(),
    Field::MaxTokens.name(),
    Field::MaxCompletionTokens.name(),
    Field::MaxOutputTokens.name(),
    Field::Temperature.name(),
    Field::Messages.name(),
];

impl Field {
    pub(super) const fn name(self) -> &'static str {
        match self {
            Field::Model => "model",
            Field::Stream => "stream",
            Field::StreamOptions => "stream_options",
            Field::MaxTokens => "max_tokens",
            Field::MaxCompletionTokens => "max_completion_tokens",
            Field::MaxOutputTokens => "max_output_tokens",
            Field::Temperature => "temperature",
            Field::Messages => "messages",
        }
    }

    fn from_decoded(key: &[u8]) -> Option<Field> {
        Some(match key {
            b"model" => Field::Model,
            b"stream" => Field::Stream,
            b"stream_options" => Field::StreamOptions,
            b"max_tokens" => Field::MaxTokens,
            b"max_completion_tokens" => Field::MaxCompletionTokens,
            b"max_output_tokens" => Field::MaxOutputTokens,
            b"temperature" => Field::Temperature,
            b"messages" => Field::Messages,
            _ => return None,
        })
    }
}

/// The decoded bytes of the raw key text `raw` (between its quotes): `raw` itself when it has
/// no escapes, else decoded into the small stack buffer `buf`; None when longer than that (no
/// tracked key is).
fn decoded_key<'b>(raw: &'b [u8], escaped: bool, buf: &'b mut [u8; 32]) -> Option<&'b [u8]> {
    if escaped {
        escape::decode_short(raw, buf)
    } else {
        Some(raw)
    }
}

/// Value spans of the tracked top-level members (quotes and brackets included).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Fields {
    pub(super) model: Option<Span>,
    pub(super) stream: Option<Span>,
    pub(super) stream_options: Option<Span>,
    pub(super) max_tokens: Option<Span>,
    pub(super) max_completion_tokens: Option<Span>,
    pub(super) max_output_tokens: Option<Span>,
    pub(super) temperature: Option<Span>,
    pub(super) messages: Option<Span>,
}

impl Fields {
    pub(super) fn slot(&mut self, field: Field) -> &mut Option<Span> {
        match field {
            Field::Model => &mut self.model,
            Field::Stream => &mut self.stream,
            Field::StreamOptions => &mut self.stream_options,
            Field::MaxTokens => &mut self.max_tokens,
            Field::MaxCompletionTokens => &mut self.max_completion_tokens,
            Field::MaxOutputTokens => &mut self.max_output_tokens,
            Field::Temperature => &mut self.temperature,
            Field::Messages => &mut self.messages,
        }
    }
}

/// Where new members go in an object, and what is known of `include_usage`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamOptions {
    /// Index of the object's `{`.
    pub(super) open: usize,
    /// End of the last member's value, None when the object is empty.
    pub(super) last: Option<usize>,
    /// The value span of its `include_usage` member.
    pub(super) include_usage: Option<Span>,
}

/// A validated body and the spans of the members the gateway cares about.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub(super) body: &'a [u8],
    /// Index of the top-level `{`.
    pub(super) root_open: usize,
    /// End of the last top-level member's value, None when the object is empty.
    pub(super) root_last: Option<usize>,
    pub(super) fields: Fields,
    pub(super) model: Option<Cow<'a, str>>,
    pub(super) stream: bool,
    /// Present when `stream_options` is an object.
    pub(super) stream_options: Option<StreamOptions>,
}

impl<'a> Parsed<'a> {
    /// The top-level `"model"` with escapes decoded; None when absent. (A `model` that is not
    /// a string makes [`parse`] fail with [`BodyError::NotAString`].)
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Whether the top-level `"stream"` is the literal `true`.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// Whether the client itself sent `"stream_options": {"include_usage": true}`.
    pub fn client_asked_usage(&self) -> bool {
        self.stream_options
            .and_then(|so| so.include_usage)
            .is_some_and(|span| self.bytes(span) == b"true")
    }

    pub(super) fn bytes(&self, span: Span) -> &'a [u8] {
        self.body.get(span.start..span.end).unwrap_or_default()
    }
}

/// Validates the whole body as strict RFC 8259 JSON and records the spans of the top-level
/// members the gateway cares about: `model`, `stream`, `stream_options`, `max_tokens`,
/// `max_completion_tokens`, `max_output_tokens`, `temperature`, `messages`.
///
/// Linear time, no recursion (a body nested 100 000 deep is fine), no allocation unless
/// `model` has escapes or the nesting is deeper than 1024.
///
/// Errors: a leading BOM, then an empty body, then the first UTF-8 or syntax error met reading
/// from the start; only a body that is entirely valid JSON is then checked for duplicate
/// tracked keys (and `stream_options.include_usage`), a non-string `model` and a non-boolean
/// `stream`, in that order.
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, BodyError> {
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(BodyError::ByteOrderMark);
    }
    let start = skip_ws(body, 0);
    if start == body.len() {
        return Err(BodyError::Empty);
    }
    let mode = Mode::BEST;
    let mut fields = Fields::default();
    let mut duplicate: Option<Field> = None;
    let mut root_last = None;
    let end = scan::scan_value(body, start, mode, |m: Member| {
        root_last = Some(m.value.end);
        let raw = body.get(m.key.start..m.key.end).unwrap_or_default();
        let mut buf = [0u8; 32];
        let Some(field) = decoded_key(raw, m.key_escaped, &mut buf).and_then(Field::from_decoded)
        else {
            return;
        };
        let slot = fields.slot(field);
        if slot.is_some() {
            duplicate.get_or_insert(field);
        } else {
            *slot = Some(m.value);
        }
    });
    let end = end.map_err(|e| prefer_utf8_error(body, e))?;
    let tail = skip_ws(body, end);
    if tail != body.len() {
        return Err(prefer_utf8_error(
            body,
            BodyError::Syntax {
                offset: tail,
                reason: "unexpected data after the JSON value",
            },
        ));
    }
    if body.get(start) != Some(&b'{') {
        return Err(BodyError::NotAnObject);
    }
    if let Some(field) = duplicate {
        return Err(BodyError::DuplicateKey(field.name()));
    }

    let model = match fields.model {
        None => None,
        Some(span) if body.get(span.start) == Some(&b'"') => {
            let inner = body
                .get(span.start + 1..span.end.saturating_sub(1))
                .unwrap_or_default();
            // Validated while scanning; the lossy path is never taken.
            Some(match std::str::from_utf8(inner) {
                Ok(text) => escape::decode(text),
                Err(_) => String::from_utf8_lossy(inner),
            })
        }
        Some(_) => return Err(BodyError::NotAString("model")),
    };

    let stream = match fields.stream.and_then(|s| body.get(s.start..s.end)) {
        None | Some(b"false" | b"null") => false,
        Some(b"true") => true,
        Some(_) => return Err(BodyError::NotABoolean("stream")),
    };

    let stream_options = match fields.stream_options {
        Some(span) if body.get(span.start) == Some(&b'{') => {
            Some(read_stream_options(body, span.start, mode)?)
        }
        _ => None,
    };

    Ok(Parsed {
        body,
        root_open: start,
        root_last,
        fields,
        model,
        stream,
        stream_options,
    })
}

/// UTF-8 is validated while scanning strings; outside them a non-ASCII byte is a syntax error.
/// That error is reported as invalid UTF-8 when the character there is not valid UTF-8 (so
/// the first problem in the body is always the one reported).
fn prefer_utf8_error(body: &[u8], error: BodyError) -> BodyError {
    if let BodyError::Syntax { offset, .. } = error {
        // A character is at most 4 bytes long, so this window holds the whole of it.
        let window = body
            .get(offset..body.len().min(offset + 4))
            .unwrap_or_default();
        if matches!(window.first(), Some(&c) if c >= 0x80) {
            if let Err(e) = std::str::from_utf8(window) {
                if e.valid_up_to() == 0 {
                    return BodyError::InvalidUtf8 { offset };
                }
            }
        }
    }
    error
}

/// Reads the (already validated) `stream_options` object that opens at `open`.
fn read_stream_options(body: &[u8], open: usize, mode: Mode) -> Result<StreamOptions, BodyError> {
    let mut last = None;
    let mut include_usage = None;
    let mut duplicate = false;
    scan::scan_value(body, open, mode, |m: Member| {
        last = Some(m.value.end);
        let raw = body.get(m.key.start..m.key.end).unwrap_or_default();
        let mut buf = [0u8; 32];
        if decoded_key(raw, m.key_escaped, &mut buf) == Some(b"include_usage".as_slice()) {
            if include_usage.is_some() {
                duplicate = true;
            }
            include_usage = Some(m.value);
        }
    })?;
    if duplicate {
        return Err(BodyError::DuplicateNestedKey(
            "stream_options.include_usage",
        ));
    }
    Ok(StreamOptions {
        open,
        last,
        include_usage,
    })
}
