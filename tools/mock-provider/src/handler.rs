//! Request handling: recording, scripting headers, runtime control and the OpenAI endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{Events, RespBody};
use crate::control::Control;
use crate::openai::{self, Gen};
use crate::record::Record;
use crate::{lock, ConnCtl, State};

/// Largest accepted request body on OpenAI paths.
pub const MAX_BODY: usize = 64 << 20;
/// Largest accepted body on `/__` paths.
const MAX_ADMIN_BODY: usize = 1 << 20;
/// Largest generated answer (x-mock-chunks × x-mock-chunk-bytes).
pub const MAX_OUTPUT_BYTES: u64 = 64 << 20;
/// Largest x-mock-chunk-bytes.
pub const MAX_CHUNK_BYTES: u64 = 1 << 20;
/// Content chunks when x-mock-chunks is absent.
pub const DEFAULT_CHUNKS: u64 = 5;

const X_MOCK_PROVIDER: HeaderName = HeaderName::from_static("x-mock-provider");
const X_MOCK_REQUEST_ID: HeaderName = HeaderName::from_static("x-mock-request-id");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

enum Outcome {
    Respond(Response<RespBody>),
    /// Drop the connection without answering.
    Reset,
}

/// hyper service entry point.
pub(crate) async fn handle(
    state: Arc<State>,
    conn: Arc<ConnCtl>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let mut resp = if req.uri().path().starts_with("/__") {
        admin(&state, req).await
    } else {
        let retry_after = req.headers().get("x-mock-retry-after").cloned();
        let ratelimit_reset = req.headers().get("x-mock-ratelimit-reset").cloned();
        let (parts, body) = req.into_parts();
        let (bytes, body_error) = match read_body(body, MAX_BODY).await {
            Ok(b) => (b, None),
            Err(resp) => (Bytes::new(), Some(resp)),
        };
        let rec = lock(&state.recorder).push(Record::capture(&parts, bytes));
        let mut resp = match body_error {
            Some(resp) => resp,
            None => match openai_request(&state, &parts, &rec).await {
                Outcome::Respond(r) => r,
                Outcome::Reset => {
                    conn.reset();
                    // The connection task drops this future together with the connection.
                    let never: Infallible = std::future::pending().await;
                    match never {}
                }
            },
        };
        let h = resp.headers_mut();
        h.insert(X_MOCK_REQUEST_ID, HeaderValue::from(rec.id));
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, v);
        }
        if let Some(v) = ratelimit_reset {
            h.insert(X_RATELIMIT_RESET, v);
        }
        resp
    };
    resp.headers_mut()
        .insert(X_MOCK_PROVIDER, state.name_header.clone());
    Ok(resp)
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<RespBody>> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(
            413,
            &format!("request body larger than {limit} bytes"),
        )),
        Err(e) => Err(error(400, &format!("cannot read request body: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------
// Scripting headers

#[derive(Debug, Default)]
struct Script {
    status: Option<u16>,
    delay_ms: u64,
    reset: bool,
    chunks: Option<u64>,
    chunk_delay_ms: u64,
    chunk_bytes: u64,
    fail_first: Option<u64>,
    fail_key: String,
    echo: bool,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    abort_after: Option<u64>,
}

fn num(h: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| format!("invalid {name} header: expected a non-negative integer")),
    }
}

fn flag(h: &HeaderMap, name: &str) -> bool {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            let s = s.trim();
            s == "1" || s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes")
        })
        .unwrap_or(false)
}

impl Script {
    fn parse(h: &HeaderMap) -> Result<Script, String> {
        let status = match num(h, "x-mock-status")? {
            Some(s) if (200..=599).contains(&s) => Some(s as u16),
            Some(_) => return Err("invalid x-mock-status header: expected 200..=599".into()),
            None => None,
        };
        let chunk_bytes = num(h, "x-mock-chunk-bytes")?.unwrap_or(0);
        if chunk_bytes > MAX_CHUNK_BYTES {
            return Err(format!(
                "x-mock-chunk-bytes is limited to {MAX_CHUNK_BYTES}"
            ));
        }
        Ok(Script {
            status,
            delay_ms: num(h, "x-mock-delay-ms")?.unwrap_or(0),
            reset: flag(h, "x-mock-reset"),
            chunks: num(h, "x-mock-chunks")?,
            chunk_delay_ms: num(h, "x-mock-chunk-delay-ms")?.unwrap_or(0),
            chunk_bytes,
            fail_first: num(h, "x-mock-fail-first")?,
            fail_key: h
                .get("x-mock-fail-key")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            echo: flag(h, "x-mock-echo"),
            prompt_tokens: num(h, "x-mock-prompt-tokens")?,
            completion_tokens: num(h, "x-mock-completion-tokens")?,
            abort_after: num(h, "x-mock-abort-after-chunks")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// OpenAI paths

async fn openai_request(state: &State, parts: &Parts, rec: &Record) -> Outcome {
    let script = match Script::parse(&parts.headers) {
        Ok(s) => s,
        Err(m) => return Outcome::Respond(error(400, &m)),
    };
    let body: Option<Value> = if rec.body.is_empty() {
        None
    } else {
        serde_json::from_slice(&rec.body).ok()
    };
    let model = body
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str);
    let control: Arc<Control> = lock(&state.control).clone();

    let mut delay_ms = (state.latency.as_millis() as u64).saturating_add(script.delay_ms);
    if let Some(d) = model.and_then(|m| control.delay_models.get(m)) {
        delay_ms = delay_ms.saturating_add(*d);
    }
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    if script.reset || model.is_some_and(|m| control.reset_models.contains(m)) {
        return Outcome::Reset;
    }
    if let Some((status, why)) = failure(state, &script, &control, model) {
        return Outcome::Respond(error(
            status,
            &format!("mock provider {}: {why}", state.name),
        ));
    }
    if script.echo {
        return Outcome::Respond(json_response(200, &rec.to_json()));
    }
    Outcome::Respond(route(state, parts, rec, &script, body))
}

/// The scripted failure for this request, if any, in precedence order.
fn failure(
    state: &State,
    script: &Script,
    control: &Control,
    model: Option<&str>,
) -> Option<(u16, String)> {
    if let Some(s) = state.fail_status {
        return Some((s, format!("--fail-status {s}")));
    }
    if let Some(n) = script.fail_first {
        let count = {
            let mut counts = lock(&state.fail_counts);
            let c = counts.entry(script.fail_key.clone()).or_insert(0);
            *c = c.saturating_add(1);
            *c
        };
        if count <= n {
            let s = script.status.unwrap_or(503);
            return Some((
                s,
                format!(
                    "x-mock-fail-first: failure {count} of {n} for key {:?}",
                    script.fail_key
                ),
            ));
        }
    } else if let Some(s) = script.status {
        return Some((s, format!("x-mock-status {s}")));
    }
    if let Some((m, s)) = model.and_then(|m| control.fail_models.get_key_value(m)) {
        return Some((*s, format!("model {m} fails with {s} (/__control)")));
    }
    None
}

#[derive(Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Chat,
    Completions,
    Embeddings,
    Responses,
    Models,
    Model(&'a str),
}

/// Paths are matched by suffix so provider prefixes (`/v1`, `/openai/v1`, ...) all work.
fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    if path.ends_with("/chat/completions") {
        Some(Endpoint::Chat)
    } else if path.ends_with("/completions") {
        Some(Endpoint::Completions)
    } else if path.ends_with("/embeddings") {
        Some(Endpoint::Embeddings)
    } else if path.ends_with("/responses") {
        Some(Endpoint::Responses)
    } else if path.ends_with("/models") {
        Some(Endpoint::Models)
    } else {
        path.strip_prefix("/v1/models/")
            .filter(|id| !id.is_empty())
            .map(Endpoint::Model)
    }
}

fn route(
    state: &State,
    parts: &Parts,
    rec: &Record,
    script: &Script,
    body: Option<Value>,
) -> Response<RespBody> {
    let path = parts.uri.path();
    let Some(ep) = endpoint(path) else {
        return error(404, &format!("Invalid URL ({} {path})", parts.method));
    };
    let want = match ep {
        Endpoint::Models | Endpoint::Model(_) => Method::GET,
        _ => Method::POST,
    };
    if parts.method != want {
        return error(
            405,
            &format!(
                "Invalid method {} for {path} (expected {want})",
                parts.method
            ),
        );
    }
    match ep {
        Endpoint::Models => {
            return json_response(200, &openai::models_json(&state.models, &state.name))
        }
        Endpoint::Model(id) => {
            return if state.models.iter().any(|m| m == id) {
                json_response(200, &openai::model_json(id, &state.name))
            } else {
                error(404, &format!("The model '{id}' does not exist"))
            };
        }
        _ => {}
    }
    let obj: Map<String, Value> = match body {
        Some(Value::Object(o)) => o,
        Some(_) => return error(400, "request body must be a JSON object"),
        None if rec.body.is_empty() => return error(400, "request body is empty"),
        None => return error(400, "We could not parse the JSON body of your request."),
    };
    let Some(model) = obj.get("model").and_then(Value::as_str) else {
        return error(
            400,
            "you must provide a model parameter ('model' must be a string)",
        );
    };
    let prompt_tokens = script
        .prompt_tokens
        .unwrap_or_else(|| (rec.body.len() as u64 / 4).max(1));

    if ep == Endpoint::Embeddings {
        return embeddings(model, &obj, prompt_tokens);
    }

    let chunks = script.chunks.unwrap_or(DEFAULT_CHUNKS);
    if chunks.saturating_mul(script.chunk_bytes.max(10)) > MAX_OUTPUT_BYTES {
        return error(
            400,
            &format!("x-mock-chunks x x-mock-chunk-bytes exceeds {MAX_OUTPUT_BYTES} bytes"),
        );
    }
    let stream = obj.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    let gen = Gen {
        id: rec.id,
        created: now(),
        model: model.to_string(),
        chunks,
        chunk_bytes: script.chunk_bytes as usize,
        prompt_tokens,
        completion_tokens: script.completion_tokens.unwrap_or(chunks),
        include_usage,
        abort_after: script.abort_after,
    };
    let delay = Duration::from_millis(script.chunk_delay_ms);
    match (ep, stream) {
        (Endpoint::Chat, false) => json_response(200, &gen.chat_json()),
        (Endpoint::Chat, true) => sse_response(Arc::new(gen).chat_events(), delay),
        (Endpoint::Completions, false) => json_response(200, &gen.completion_json()),
        (Endpoint::Completions, true) => sse_response(Arc::new(gen).completion_events(), delay),
        (Endpoint::Responses, false) => json_response(200, &gen.response_json()),
        (Endpoint::Responses, true) => sse_response(Arc::new(gen).response_events(), delay),
        _ => error(404, &format!("Invalid URL ({} {path})", parts.method)),
    }
}

fn embeddings(model: &str, obj: &Map<String, Value>, prompt_tokens: u64) -> Response<RespBody> {
    let inputs: Vec<Vec<u8>> = match obj.get("input") {
        Some(Value::String(s)) => vec![s.as_bytes().to_vec()],
        Some(Value::Array(a)) if a.is_empty() => {
            return error(400, "'input' must not be an empty array")
        }
        // One token array is one input.
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => {
            vec![serde_json::to_vec(a).unwrap_or_default()]
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.as_bytes().to_vec(),
                other => serde_json::to_vec(other).unwrap_or_default(),
            })
            .collect(),
        _ => return error(400, "'input' is required (a string or an array)"),
    };
    let base64 = obj.get("encoding_format").and_then(Value::as_str) == Some("base64");
    json_response(
        200,
        &openai::embeddings_json(model, &inputs, prompt_tokens, base64),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Responses

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json_response(status: u16, v: &Value) -> Response<RespBody> {
    let mut r = Response::new(RespBody::full(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = status_code(status);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An OpenAI-style error response.
fn error(status: u16, message: &str) -> Response<RespBody> {
    json_response(status, &openai::error_json(status, message))
}

fn text_response(status: u16, text: &'static str) -> Response<RespBody> {
    let mut r = Response::new(RespBody::full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status_code(status);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn sse_response(events: Events, delay: Duration) -> Response<RespBody> {
    let mut r = Response::new(RespBody::stream(events, delay));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

// ---------------------------------------------------------------------------------------
// /__ admin paths (never recorded, never delayed or scripted)

async fn admin(state: &State, req: Request<Incoming>) -> Response<RespBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match (&method, path.as_str()) {
        (&Method::GET, "/__health") => text_response(200, "ok"),
        (&Method::GET, "/__requests") => json_response(200, &lock(&state.recorder).summary()),
        (&Method::DELETE, "/__requests") => {
            let mut r = lock(&state.recorder);
            r.clear();
            json_response(200, &r.summary())
        }
        (&Method::GET, p) if p.starts_with("/__requests/") => {
            let tail = &p["/__requests/".len()..];
            let found = if tail == "last" {
                lock(&state.recorder).last()
            } else {
                match tail.parse::<u64>() {
                    Ok(id) => lock(&state.recorder).get(id),
                    Err(_) => return error(400, &format!("invalid request id: {tail:?}")),
                }
            };
            match found {
                Some(rec) => json_response(200, &rec.to_json()),
                None => error(404, &format!("no recorded request {tail}")),
            }
        }
        (&Method::GET, "/__control") => json_response(200, &lock(&state.control).to_json()),
        (&Method::POST | &Method::PUT, "/__control") => {
            let bytes = match read_body(req.into_body(), MAX_ADMIN_BODY).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let v: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                match serde_json::from_slice(&bytes) {
                    Ok(v) => v,
                    Err(e) => return error(400, &format!("invalid control JSON: {e}")),
                }
            };
            match Control::from_json(&v) {
                Ok(c) => {
                    let out = c.to_json();
                    *lock(&state.control) = Arc::new(c);
                    json_response(200, &out)
                }
                Err(m) => error(400, &m),
            }
        }
        (&Method::DELETE, "/__control") => {
            let c = Control::default();
            let out = c.to_json();
            *lock(&state.control) = Arc::new(c);
            json_response(200, &out)
        }
        (&Method::GET, "/__fail-first") => {
            let counts = lock(&state.fail_counts).clone();
            json_response(200, &json!(counts))
        }
        (&Method::DELETE, "/__fail-first") => {
            lock(&state.fail_counts).clear();
            json_response(200, &json!({}))
        }
        _ => error(
            404,
            &format!("unknown mock admin endpoint: {method} {path}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("/v1/chat/completions"), Some(Endpoint::Chat));
        assert_eq!(
            endpoint("/openai/v1/chat/completions"),
            Some(Endpoint::Chat)
        );
        assert_eq!(endpoint("/v1/completions"), Some(Endpoint::Completions));
        assert_eq!(endpoint("/v1/embeddings"), Some(Endpoint::Embeddings));
        assert_eq!(endpoint("/v1/responses"), Some(Endpoint::Responses));
        assert_eq!(endpoint("/v1/models"), Some(Endpoint::Models));
        assert_eq!(
            endpoint("/v1/models/gpt-4.1"),
            Some(Endpoint::Model("gpt-4.1"))
        );
        assert_eq!(endpoint("/v1/models/"), None);
        assert_eq!(endpoint("/v1/nope"), None);
        assert_eq!(endpoint("/"), None);
    }

    #[test]
    fn script_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-mock-status", HeaderValue::from_static("429"));
        h.insert("x-mock-chunks", HeaderValue::from_static(" 7 "));
        h.insert("x-mock-reset", HeaderValue::from_static("true"));
        let s = Script::parse(&h).unwrap();
        assert_eq!(s.status, Some(429));
        assert_eq!(s.chunks, Some(7));
        assert!(s.reset);
        assert!(!s.echo);
        h.insert("x-mock-status", HeaderValue::from_static("abc"));
        assert!(Script::parse(&h).is_err());
        h.insert("x-mock-status", HeaderValue::from_static("700"));
        assert!(Script::parse(&h).is_err());
        h.remove("x-mock-status");
        h.insert("x-mock-chunk-bytes", HeaderValue::from_static("99999999"));
        assert!(Script::parse(&h).is_err());
    }
}
