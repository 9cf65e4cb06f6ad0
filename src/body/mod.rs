//! The request body: strict validation, reading the few top-level members the gateway cares
//! about, and rewriting some of them while every other byte stays exactly as the client sent it.
//!
//! The body is never round-tripped through a JSON tree. [`parse`] walks it once (iteratively,
//! in linear time, without allocating unless a value it reads has escapes) and records byte
//! spans; [`rewrite`] turns a [`Plan`] into a handful of span edits and splices them into one
//! exactly-sized output buffer.

mod escape;
mod number;
mod scan;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use escape::{Count, Out, Sink};
use scan::{skip_ws, Member, Span};

/// The OpenAI-style API a request is for; decides which members a rewrite touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
    /// `/v1/embeddings`
    Embeddings,
    /// `/v1/responses`
    Responses,
    /// Anything else: only `model` is ever rewritten.
    Other,
}

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
enum Field {
    Model,
    Stream,
    StreamOptions,
    MaxTokens,
    MaxCompletionTokens,
    MaxOutputTokens,
    Temperature,
    Messages,
}

impl Field {
    fn name(self) -> &'static str {
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
struct Fields {
    model: Option<Span>,
    stream: Option<Span>,
    stream_options: Option<Span>,
    max_tokens: Option<Span>,
    max_completion_tokens: Option<Span>,
    max_output_tokens: Option<Span>,
    temperature: Option<Span>,
    messages: Option<Span>,
}

impl Fields {
    fn slot(&mut self, field: Field) -> &mut Option<Span> {
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
struct StreamOptions {
    /// Index of the object's `{`.
    open: usize,
    /// End of the last member's value, None when the object is empty.
    last: Option<usize>,
    /// The value span of its `include_usage` member.
    include_usage: Option<Span>,
}

/// A validated body and the spans of the members the gateway cares about.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    body: &'a [u8],
    /// Index of the top-level `{`.
    root_open: usize,
    /// End of the last top-level member's value, None when the object is empty.
    root_last: Option<usize>,
    fields: Fields,
    model: Option<Cow<'a, str>>,
    stream: bool,
    /// Present when `stream_options` is an object.
    stream_options: Option<StreamOptions>,
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

    fn bytes(&self, span: Span) -> &'a [u8] {
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
    let mut fields = Fields::default();
    let mut duplicate: Option<Field> = None;
    let mut root_last = None;
    let end = scan::scan_value(body, start, |m: Member| {
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
            Some(read_stream_options(body, span.start)?)
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
fn read_stream_options(body: &[u8], open: usize) -> Result<StreamOptions, BodyError> {
    let mut last = None;
    let mut include_usage = None;
    let mut duplicate = false;
    scan::scan_value(body, open, |m: Member| {
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

/// What to change in a body. Every field is optional; the default changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Plan<'p> {
    /// New value of `"model"`; None leaves it untouched.
    pub model: Option<&'p str>,
    /// Cap on the endpoint's output-token limit member.
    pub max_tokens: Option<u64>,
    /// Default `temperature` when the client sent none (or null). Ignored unless finite.
    pub temperature: Option<f64>,
    /// System message prepended to `messages` (chat only).
    pub system_prompt: Option<&'p str>,
    /// Ask for usage in streamed responses (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// The outcome of [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The new body; None when no byte changed.
    pub body: Option<Vec<u8>>,
    /// The client itself sent `"stream_options": {"include_usage": true}`.
    pub client_asked_usage: bool,
}

/// The outcome of [`rewrite_prefix`]: the same edit as [`rewrite`], as a prefix to swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRewrite {
    /// `(replaced, prefix)`: the new body is `prefix` followed by the original body from
    /// byte `replaced` on. None when no byte changed.
    pub splice: Option<(usize, Vec<u8>)>,
    /// The client itself sent `"stream_options": {"include_usage": true}`.
    pub client_asked_usage: bool,
}

/// Members the gateway adds to the top-level object, in this fixed order, right after its
/// `{`: every edit then sits as close to the start of the body as the client's own members
/// allow, so the filter swaps a prefix of the body instead of copying all of it.
#[derive(Debug, Clone, Copy, Default)]
struct Append<'p> {
    /// The object already has members, so the last new one needs a trailing comma.
    comma: bool,
    model: Option<&'p str>,
    cap: Option<(&'static str, u64)>,
    temperature: Option<f64>,
    stream_options: bool,
}

impl Append<'_> {
    fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.cap.is_none()
            && self.temperature.is_none()
            && !self.stream_options
    }
}

#[derive(Debug, Clone, Copy)]
enum Text<'p> {
    /// A JSON string, escaped and quoted.
    Str(&'p str),
    U64(u64),
    F64(f64),
    /// Raw JSON text.
    Lit(&'static str),
    /// The system message, followed by a comma when the array was not empty.
    System {
        prompt: &'p str,
        comma: bool,
    },
    Append(Append<'p>),
}

impl Text<'_> {
    fn render<S: Sink>(&self, s: &mut S) {
        match *self {
            Text::Str(v) => s.json_str(v),
            // Writing to a Sink never fails.
            Text::U64(n) => {
                let _ = write!(s, "{n}");
            }
            Text::F64(x) => {
                let _ = write!(s, "{x}");
            }
            Text::Lit(l) => s.raw(l),
            Text::System { prompt, comma } => {
                s.raw(r#"{"role":"system","content":"#);
                s.json_str(prompt);
                s.raw(if comma { "}," } else { "}" });
            }
            Text::Append(a) => {
                let mut comma = false;
                let mut key = |s: &mut S, k: &str| {
                    if comma {
                        s.raw(",");
                    }
                    comma = true;
                    s.json_str(k);
                    s.raw(":");
                };
                if let Some(m) = a.model {
                    key(s, "model");
                    s.json_str(m);
                }
                if let Some((name, n)) = a.cap {
                    key(s, name);
                    let _ = write!(s, "{n}");
                }
                if let Some(t) = a.temperature {
                    key(s, "temperature");
                    let _ = write!(s, "{t}");
                }
                if a.stream_options {
                    key(s, "stream_options");
                    s.raw(r#"{"include_usage":true}"#);
                }
                if a.comma {
                    s.raw(",");
                }
            }
        }
    }

    fn len(&self) -> usize {
        let mut count = Count(0);
        self.render(&mut count);
        count.0
    }
}

/// Replace `at..end` with `text` (an insertion when `at == end`).
#[derive(Debug, Clone, Copy)]
struct Edit<'p> {
    at: usize,
    end: usize,
    text: Text<'p>,
}

const NO_EDIT: Edit<'static> = Edit {
    at: 0,
    end: 0,
    text: Text::Lit(""),
};

/// At most: model, two caps, temperature, system message, include_usage, appended members.
const MAX_EDITS: usize = 8;

struct Edits<'p> {
    list: [Edit<'p>; MAX_EDITS],
    len: usize,
}

impl<'p> Edits<'p> {
    fn new() -> Self {
        Edits {
            list: [NO_EDIT; MAX_EDITS],
            len: 0,
        }
    }

    fn push(&mut self, at: usize, end: usize, text: Text<'p>) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = Edit { at, end, text };
            self.len += 1;
        }
    }

    fn replace(&mut self, span: Span, text: Text<'p>) {
        self.push(span.start, span.end, text);
    }

    fn insert(&mut self, at: usize, text: Text<'p>) {
        self.push(at, at, text);
    }

    fn as_mut_slice(&mut self) -> &mut [Edit<'p>] {
        self.list.get_mut(..self.len).unwrap_or_default()
    }
}

/// Caps the number member at `span` to `n`: set when null, lowered when greater.
fn cap<'p>(
    parsed: &Parsed<'_>,
    span: Span,
    field: Field,
    n: u64,
    edits: &mut Edits<'p>,
) -> Result<(), BodyError> {
    let value = parsed.bytes(span);
    match value.first() {
        Some(b'n') => edits.replace(span, Text::U64(n)),
        Some(b'-' | b'0'..=b'9') => {
            if number::exceeds(value, n) {
                edits.replace(span, Text::U64(n));
            }
        }
        _ => return Err(BodyError::NotANumber(field.name())),
    }
    Ok(())
}

/// Applies `plan` to `body` (which `parsed` came from), changing only the spans it must.
///
/// Fails only when a token-limit member the plan caps is not a number (or null). When `body`
/// is not the slice `parsed` was made from, it is parsed again rather than trusted.
pub fn rewrite(
    body: &[u8],
    parsed: &Parsed<'_>,
    endpoint: Endpoint,
    plan: &Plan<'_>,
) -> Result<Rewrite, BodyError> {
    let out = rewrite_prefix(body, parsed, endpoint, plan)?;
    Ok(Rewrite {
        body: out.splice.map(|(replaced, prefix)| {
            let rest = body.get(replaced..).unwrap_or_default();
            let mut whole = Vec::with_capacity(prefix.len() + rest.len());
            whole.extend_from_slice(&prefix);
            whole.extend_from_slice(rest);
            whole
        }),
        client_asked_usage: out.client_asked_usage,
    })
}

/// [`rewrite`] as a prefix swap: the new bytes up to the last edit, and how many bytes of the
/// original they replace. The rest of the body is untouched and need not be copied (Envoy
/// can drain a prefix of its buffer and prepend another: `proxy_set_buffer_bytes(0, n, …)`).
pub fn rewrite_prefix(
    body: &[u8],
    parsed: &Parsed<'_>,
    endpoint: Endpoint,
    plan: &Plan<'_>,
) -> Result<PrefixRewrite, BodyError> {
    let reparsed;
    let parsed = if std::ptr::eq(body, parsed.body) {
        parsed
    } else {
        reparsed = parse(body)?;
        &reparsed
    };
    let f = parsed.fields;
    let mut edits = Edits::new();
    let mut append = Append {
        comma: parsed.root_last.is_some(),
        ..Append::default()
    };

    if let Some(model) = plan.model {
        match f.model {
            None => append.model = Some(model),
            Some(span) => {
                if parsed.model() != Some(model) {
                    edits.replace(span, Text::Str(model));
                }
            }
        }
    }

    if let Some(n) = plan.max_tokens {
        let field = match endpoint {
            Endpoint::Chat => {
                if f.max_completion_tokens.is_none() && f.max_tokens.is_none() {
                    Some(Field::MaxTokens)
                } else {
                    if let Some(span) = f.max_completion_tokens {
                        cap(parsed, span, Field::MaxCompletionTokens, n, &mut edits)?;
                    }
                    if let Some(span) = f.max_tokens {
                        cap(parsed, span, Field::MaxTokens, n, &mut edits)?;
                    }
                    None
                }
            }
            Endpoint::Completions => Some(Field::MaxTokens),
            Endpoint::Responses => Some(Field::MaxOutputTokens),
            Endpoint::Embeddings | Endpoint::Other => None,
        };
        if let Some(field) = field {
            let mut slots = f;
            match *slots.slot(field) {
                None => append.cap = Some((field.name(), n)),
                Some(span) => cap(parsed, span, field, n, &mut edits)?,
            }
        }
    }

    let generates = matches!(
        endpoint,
        Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
    );
    if let Some(t) = plan.temperature.filter(|t| t.is_finite()) {
        if generates {
            match f.temperature {
                None => append.temperature = Some(t),
                Some(span) if parsed.bytes(span) == b"null" => edits.replace(span, Text::F64(t)),
                Some(_) => {}
            }
        }
    }

    if let (Some(prompt), Endpoint::Chat, Some(span)) = (plan.system_prompt, endpoint, f.messages) {
        if body.get(span.start) == Some(&b'[') {
            let first = skip_ws(body, span.start + 1);
            let comma = body.get(first) != Some(&b']');
            edits.insert(span.start + 1, Text::System { prompt, comma });
        }
    }

    if plan.include_usage
        && parsed.stream
        && matches!(endpoint, Endpoint::Chat | Endpoint::Completions)
    {
        match (f.stream_options, parsed.stream_options) {
            (None, _) => append.stream_options = true,
            (Some(span), _) if parsed.bytes(span) == b"null" => {
                edits.replace(span, Text::Lit(r#"{"include_usage":true}"#));
            }
            (Some(_), Some(so)) => match so.include_usage {
                Some(span) if parsed.bytes(span) == b"true" => {}
                Some(span) => edits.replace(span, Text::Lit("true")),
                None => match so.last {
                    Some(last) => edits.insert(last, Text::Lit(r#","include_usage":true"#)),
                    None => edits.insert(so.open + 1, Text::Lit(r#""include_usage":true"#)),
                },
            },
            (Some(_), None) => {} // not an object: leave it to the provider
        }
    }

    if !append.is_empty() {
        edits.insert(parsed.root_open + 1, Text::Append(append));
    }

    let client_asked_usage = parsed.client_asked_usage();
    let edits = edits.as_mut_slice();
    if edits.is_empty() {
        return Ok(PrefixRewrite {
            splice: None,
            client_asked_usage,
        });
    }
    edits.sort_unstable_by_key(|e| (e.at, e.end));

    // Everything up to the furthest edit is rebuilt; the rest stays in Envoy's buffer.
    let replaced = edits.iter().map(|e| e.end).max().unwrap_or(0);
    let mut len = replaced;
    for e in edits.iter() {
        len = len
            .saturating_add(e.text.len())
            .saturating_sub(e.end.saturating_sub(e.at));
    }
    let mut out = Vec::with_capacity(len);
    let mut pos = 0;
    for e in edits.iter() {
        out.extend_from_slice(body.get(pos..e.at).unwrap_or_default());
        e.text.render(&mut Out(&mut out));
        pos = e.end;
    }
    Ok(PrefixRewrite {
        splice: Some((replaced, out)),
        client_asked_usage,
    })
}
