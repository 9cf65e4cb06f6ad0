//! Changing a body: a [`Plan`] becomes a handful of span edits on the [`Parsed`] view, spliced
//! into one exactly-sized buffer ([`rewrite`]) or into the prefix of the body they change
//! ([`rewrite_prefix`]).

use super::escape::{Count, Out, Sink};
use super::number;
use super::parse::{parse, BodyError, Field, Parsed};
use super::scan::{skip_ws, Span};

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

/// The API path suffix of each endpoint, longest match first (`/chat/completions` before
/// `/completions`): the one table the configuration (paths → endpoint) and the filter
/// (`<prefix>/models`) read.
const SUFFIXES: [(Endpoint, &str); 4] = [
    (Endpoint::Chat, "/chat/completions"),
    (Endpoint::Completions, "/completions"),
    (Endpoint::Embeddings, "/embeddings"),
    (Endpoint::Responses, "/responses"),
];

impl Endpoint {
    /// The endpoint a configured API path serves, by its suffix.
    pub fn of_path(path: &str) -> Endpoint {
        SUFFIXES
            .iter()
            .find(|(_, suffix)| path.ends_with(suffix))
            .map_or(Endpoint::Other, |&(e, _)| e)
    }

    /// The API prefix of a configured path (`/v1` of `/v1/chat/completions`), when the path
    /// ends with an endpoint's suffix.
    pub fn prefix_of(path: &str) -> Option<&str> {
        SUFFIXES
            .iter()
            .find_map(|(_, suffix)| path.strip_suffix(suffix))
    }
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
    /// The rewrite asked for usage the client didn't ask for: the usage chunk of the streamed
    /// answer is the gateway's, and is removed before the client sees it.
    pub usage_injected: bool,
}

/// The outcome of [`rewrite_prefix`]: the same edit as [`rewrite`], as a prefix to swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRewrite {
    /// `(replaced, prefix)`: the new body is `prefix` followed by the original body from
    /// byte `replaced` on. None when no byte changed.
    pub splice: Option<(usize, Vec<u8>)>,
    /// The client itself sent `"stream_options": {"include_usage": true}`.
    pub client_asked_usage: bool,
    /// The rewrite asked for usage the client didn't ask for: the usage chunk of the streamed
    /// answer is the gateway's, and is removed before the client sees it.
    pub usage_injected: bool,
}

/// Members the gateway adds to the top-level object, in this fixed order, right after its
/// `{`: every edit then sits as close to the start of the body as the client's own members
/// allow, so the filter swaps a prefix of the body instead of copying all of it.
#[derive(Debug, Clone, Copy, Default)]
struct Added<'p> {
    /// The object already has members, so the last new one needs a trailing comma.
    comma: bool,
    model: Option<&'p str>,
    cap: Option<(&'static str, u64)>,
    temperature: Option<f64>,
    stream_options: bool,
}

impl Added<'_> {
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
    /// The members the gateway adds, right after the top-level `{`.
    Added(Added<'p>),
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
            Text::Added(a) => {
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

/// At most: model, two caps, temperature, system message, include_usage, added members.
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
        usage_injected: out.usage_injected,
    })
}

/// [`rewrite`] as a prefix swap: the new bytes up to the end of the furthest edit, and how many
/// bytes of the original they replace. The rest of the body is untouched and need not be
/// copied (Envoy can drain a prefix of its buffer and prepend another:
/// `proxy_set_buffer_bytes(0, n, …)`).
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
    let mut added = Added {
        comma: parsed.root_last.is_some(),
        ..Added::default()
    };

    if let Some(model) = plan.model {
        match f.model {
            None => added.model = Some(model),
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
                None => added.cap = Some((field.name(), n)),
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
                None => added.temperature = Some(t),
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

    let mut usage_injected = false;
    if plan.include_usage
        && parsed.stream
        && matches!(endpoint, Endpoint::Chat | Endpoint::Completions)
    {
        usage_injected = true;
        match (f.stream_options, parsed.stream_options) {
            (None, _) => added.stream_options = true,
            (Some(span), _) if parsed.bytes(span) == b"null" => {
                edits.replace(span, Text::Lit(r#"{"include_usage":true}"#));
            }
            (Some(_), Some(so)) => match so.include_usage {
                Some(span) if parsed.bytes(span) == b"true" => usage_injected = false,
                Some(span) => edits.replace(span, Text::Lit("true")),
                None => match so.last {
                    Some(last) => edits.insert(last, Text::Lit(r#","include_usage":true"#)),
                    None => edits.insert(so.open + 1, Text::Lit(r#""include_usage":true"#)),
                },
            },
            // Not an object: left to the provider, which then sends no usage chunk of ours.
            (Some(_), None) => usage_injected = false,
        }
    }

    if !added.is_empty() {
        edits.insert(parsed.root_open + 1, Text::Added(added));
    }

    let client_asked_usage = parsed.client_asked_usage();
    let edits = edits.as_mut_slice();
    if edits.is_empty() {
        return Ok(PrefixRewrite {
            splice: None,
            client_asked_usage,
            usage_injected,
        });
    }
    crate::sort::by_key(edits, |e| (e.at, e.end));

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
        usage_injected,
    })
}
