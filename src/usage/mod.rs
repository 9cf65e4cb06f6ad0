//! Token usage metering on the response path, without pausing or buffering the body.
//!
//! [`UsageScanner`] reads each response chunk once as it goes by and finds the `usage` object
//! of an OpenAI-style response, plain JSON or `text/event-stream`, whatever the chunk
//! boundaries, in linear time and constant memory. [`UsageChunkStripper`] removes what the
//! gateway's `stream_options.include_usage` added to an SSE stream on the client's behalf (the
//! usage-only event and the `"usage":null` member of every other event). [`CostAccumulator`]
//! turns usage into exact integer micro-dollars.
//!
//! Pure code: no host calls, no I/O, no panics on any input.

mod cost;
mod json;
mod skim;
mod sse;
mod strip;
#[cfg(test)]
mod tests;

pub use cost::{CostAccumulator, Price};
pub use strip::UsageChunkStripper;

/// Tokens counted by the provider for one response.
///
/// `prompt_tokens` is read from `prompt_tokens` or `input_tokens` (Responses API),
/// `completion_tokens` from `completion_tokens` or `output_tokens`; a field that is absent
/// (embeddings have no completion) or not a non-negative integer counts as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document (`application/json`).
    Json,
    /// Server-sent events (`text/event-stream`), each event's data one JSON document.
    Sse,
}

/// Finds the `usage` of a response body fed chunk by chunk.
///
/// Counts only a `usage` member of the top-level object or of its `response` member (the
/// Responses API's `response.completed` event); `"usage": null` and `usage` text anywhere else
/// (message content, tool-call arguments, nested objects) are ignored. Constant memory: the
/// scanner is under 160 bytes of state, no heap, whatever the body size. Expects the body as
/// the provider's bytes without content encoding (gzip/br bodies simply yield `None`).
#[derive(Debug, Clone)]
pub struct UsageScanner {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Json(json::JsonScanner),
    Sse(sse::SseScanner),
}

impl UsageScanner {
    pub fn new(format: Format) -> Self {
        let inner = match format {
            Format::Json => Inner::Json(json::JsonScanner::new()),
            Format::Sse => Inner::Sse(sse::SseScanner::new()),
        };
        UsageScanner { inner }
    }

    /// The scanner without the SSE look-ahead: every event parsed, the reference the
    /// look-ahead is checked against (unit tests, fuzz oracles).
    pub fn reference(format: Format) -> Self {
        let mut scanner = UsageScanner::new(format);
        if let Inner::Sse(sse) = &mut scanner.inner {
            sse.look_ahead = false;
        }
        scanner
    }

    /// How many SSE events the look-ahead stepped over so far.
    pub fn skipped(&self) -> usize {
        match &self.inner {
            Inner::Json(_) => 0,
            Inner::Sse(sse) => sse.skipped,
        }
    }

    /// Reads the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match &mut self.inner {
            Inner::Json(json) => json.feed(chunk, &mut ()),
            Inner::Sse(sse) => sse.feed(chunk, &mut ()),
        }
    }

    /// Usage found so far (the last complete `usage` object seen; for SSE the last event
    /// carrying a non-null usage).
    pub fn usage(&self) -> Option<Usage> {
        match &self.inner {
            Inner::Json(json) => json.usage(),
            Inner::Sse(sse) => sse.json().usage(),
        }
    }
}
