//! Tests of the body parser, rewriter and scanner, by topic, with the helpers they share.

mod combined;
mod generated;
mod limits;
mod model;
mod oracle;
mod parse;
mod refusals;
mod scanner;
mod simd;
mod size;
mod stream_usage;
mod system_prompt;
mod utf8;

use super::*;
use serde_json::{json, Value};

fn parsed(body: &str) -> Parsed<'_> {
    match parse(body.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{body:?} should parse, got {e}"),
    }
}

fn parse_err(body: &[u8]) -> BodyError {
    match parse(body) {
        Ok(_) => panic!("{:?} should be refused", String::from_utf8_lossy(body)),
        Err(e) => e,
    }
}

fn syntax_reason(body: &str) -> &'static str {
    match parse_err(body.as_bytes()) {
        BodyError::Syntax { reason, .. } => reason,
        other => panic!("{body:?}: expected a syntax error, got {other:?}"),
    }
}

/// The rewritten body as text, or None when nothing changed.
fn rw(body: &str, endpoint: Endpoint, plan: &Plan<'_>) -> Option<String> {
    let p = parsed(body);
    let out = rewrite(body.as_bytes(), &p, endpoint, plan).unwrap();
    out.body.map(|b| {
        assert_eq!(b.capacity(), b.len(), "output is sized exactly");
        String::from_utf8(b).unwrap()
    })
}

fn rw_err(body: &str, endpoint: Endpoint, plan: &Plan<'_>) -> BodyError {
    let p = parsed(body);
    rewrite(body.as_bytes(), &p, endpoint, plan).unwrap_err()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn cap(n: u64) -> Plan<'static> {
    Plan {
        max_tokens: Some(n),
        ..Plan::default()
    }
}

fn model(m: &str) -> Plan<'_> {
    Plan {
        model: Some(m),
        ..Plan::default()
    }
}

#[test]
fn one_suffix_table_gives_the_endpoint_and_the_api_prefix_of_a_path() {
    use crate::body::Endpoint;
    assert_eq!(Endpoint::of_path("/v1/chat/completions"), Endpoint::Chat);
    assert_eq!(
        Endpoint::of_path("/openai/v1/completions"),
        Endpoint::Completions
    );
    assert_eq!(Endpoint::of_path("/v1/embeddings"), Endpoint::Embeddings);
    assert_eq!(Endpoint::of_path("/v1/responses"), Endpoint::Responses);
    assert_eq!(Endpoint::of_path("/v1/audio/speech"), Endpoint::Other);
    assert_eq!(Endpoint::prefix_of("/v1/chat/completions"), Some("/v1"));
    assert_eq!(
        Endpoint::prefix_of("/openai/v1/completions"),
        Some("/openai/v1")
    );
    assert_eq!(Endpoint::prefix_of("/v1/audio/speech"), None);
}
