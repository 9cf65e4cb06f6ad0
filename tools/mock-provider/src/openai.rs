//! Builders for OpenAI-shaped JSON objects and SSE streams.

use std::sync::Arc;

use hyper::body::Bytes;
use serde_json::{json, Value};

use crate::body::{Ev, Events};

/// Words of the generated answer; content chunk `i` is `WORDS[i % 5]`, prefixed by a space
/// when `i > 0`. The default 5 chunks read "Hello from the mock provider".
pub const WORDS: [&str; 5] = ["Hello", "from", "the", "mock", "provider"];

/// Everything needed to render one generated answer.
pub struct Gen {
    /// Request id (x-mock-request-id); used in the object ids.
    pub id: u64,
    pub created: u64,
    pub model: String,
    /// Number of content chunks / words.
    pub chunks: u64,
    /// Pad each delta with `x` up to this many bytes (0 = no padding).
    pub chunk_bytes: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `stream_options.include_usage` was true.
    pub include_usage: bool,
    /// Abort the stream after this many content chunks.
    pub abort_after: Option<u64>,
}

impl Gen {
    pub fn delta(&self, i: u64) -> String {
        let word = WORDS[(i % WORDS.len() as u64) as usize];
        let mut s = String::with_capacity(self.chunk_bytes.max(word.len() + 1));
        if i > 0 {
            s.push(' ');
        }
        s.push_str(word);
        while s.len() < self.chunk_bytes {
            s.push('x');
        }
        s
    }

    pub fn text(&self) -> String {
        (0..self.chunks).map(|i| self.delta(i)).collect()
    }

    fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens(),
        })
    }

    fn chat_id(&self) -> String {
        format!("chatcmpl-mock-{}", self.id)
    }

    fn cmpl_id(&self) -> String {
        format!("cmpl-mock-{}", self.id)
    }

    fn resp_id(&self) -> String {
        format!("resp_mock_{}", self.id)
    }

    fn msg_id(&self) -> String {
        format!("msg_mock_{}", self.id)
    }

    // ---- chat completions ----

    pub fn chat_json(&self) -> Value {
        json!({
            "id": self.chat_id(),
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.text(), "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": self.usage(),
        })
    }

    fn chat_chunk(&self, choices: Value) -> Value {
        let mut v = json!({
            "id": self.chat_id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    fn chat_content_event(&self, i: u64) -> Bytes {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": self.delta(i)})
        } else {
            json!({"content": self.delta(i)})
        };
        sse(&self.chat_chunk(json!([{
            "index": 0, "delta": delta, "logprobs": null, "finish_reason": null
        }])))
    }

    pub fn chat_events(self: Arc<Self>) -> Events {
        let mut tail = vec![sse(&self.chat_chunk(json!([{
            "index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"
        }])))];
        if self.include_usage {
            tail.push(sse(&json!({
                "id": self.chat_id(),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage(),
            })));
        }
        tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events(self, Vec::new(), Gen::chat_content_event, tail)
    }

    // ---- legacy completions ----

    pub fn completion_json(&self) -> Value {
        json!({
            "id": self.cmpl_id(),
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "text": self.text(), "index": 0, "logprobs": null, "finish_reason": "stop"
            }],
            "usage": self.usage(),
        })
    }

    fn completion_chunk(&self, text: &str, finish: Value) -> Value {
        let mut v = json!({
            "id": self.cmpl_id(),
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    fn completion_content_event(&self, i: u64) -> Bytes {
        sse(&self.completion_chunk(&self.delta(i), Value::Null))
    }

    pub fn completion_events(self: Arc<Self>) -> Events {
        let mut tail = vec![sse(&self.completion_chunk("", json!("stop")))];
        if self.include_usage {
            tail.push(sse(&json!({
                "id": self.cmpl_id(),
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage(),
            })));
        }
        tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events(self, Vec::new(), Gen::completion_content_event, tail)
    }

    // ---- responses ----

    fn response_object(&self, completed: bool) -> Value {
        let (status, output, usage) = if completed {
            (
                "completed",
                json!([{
                    "type": "message",
                    "id": self.msg_id(),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": self.text(), "annotations": []}],
                }]),
                json!({
                    "input_tokens": self.prompt_tokens,
                    "output_tokens": self.completion_tokens,
                    "total_tokens": self.total_tokens(),
                }),
            )
        } else {
            ("in_progress", json!([]), Value::Null)
        };
        json!({
            "id": self.resp_id(),
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": usage,
        })
    }

    pub fn response_json(&self) -> Value {
        self.response_object(true)
    }

    fn response_delta_event(&self, i: u64) -> Bytes {
        sse_named(
            "response.output_text.delta",
            &json!({
                "type": "response.output_text.delta",
                "sequence_number": i + 1,
                "item_id": self.msg_id(),
                "output_index": 0,
                "content_index": 0,
                "delta": self.delta(i),
            }),
        )
    }

    pub fn response_events(self: Arc<Self>) -> Events {
        let head = vec![sse_named(
            "response.created",
            &json!({
                "type": "response.created",
                "sequence_number": 0,
                "response": self.response_object(false),
            }),
        )];
        let tail = vec![
            sse_named(
                "response.output_text.done",
                &json!({
                    "type": "response.output_text.done",
                    "sequence_number": self.chunks + 1,
                    "item_id": self.msg_id(),
                    "output_index": 0,
                    "content_index": 0,
                    "text": self.text(),
                }),
            ),
            sse_named(
                "response.completed",
                &json!({
                    "type": "response.completed",
                    "sequence_number": self.chunks + 2,
                    "response": self.response_object(true),
                }),
            ),
        ];
        events(self, head, Gen::response_delta_event, tail)
    }
}

/// head, then content event `i` for `i in 0..chunks` (rendered lazily), then tail; or, when
/// `abort_after` is set, head, the first `abort_after` content events and an abort.
fn events(
    g: Arc<Gen>,
    head: Vec<Bytes>,
    content: fn(&Gen, u64) -> Bytes,
    tail: Vec<Bytes>,
) -> Events {
    let (n, abort) = match g.abort_after {
        Some(a) => (a.min(g.chunks), true),
        None => (g.chunks, false),
    };
    let head = head.into_iter().map(Ev::Data);
    let body = (0..n).map(move |i| Ev::Data(content(&g, i)));
    if abort {
        Box::new(head.chain(body).chain(std::iter::once(Ev::Abort)))
    } else {
        Box::new(head.chain(body).chain(tail.into_iter().map(Ev::Data)))
    }
}

pub fn sse(v: &Value) -> Bytes {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

fn sse_named(event: &str, v: &Value) -> Bytes {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(b"event: ");
    b.extend_from_slice(event.as_bytes());
    b.extend_from_slice(b"\ndata: ");
    b.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

// ---- errors ----

/// `(type, code)` of the OpenAI error object for a status.
pub fn error_kind(status: u16) -> (&'static str, Value) {
    match status {
        400 => ("invalid_request_error", json!("invalid_request")),
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => ("invalid_request_error", json!("permission_denied")),
        404 => ("invalid_request_error", json!("not_found")),
        405 => ("invalid_request_error", json!("method_not_allowed")),
        413 => ("invalid_request_error", json!("request_too_large")),
        429 => ("requests", json!("rate_limit_exceeded")),
        s if (500..=599).contains(&s) => ("server_error", Value::Null),
        s if (400..=499).contains(&s) => ("invalid_request_error", Value::Null),
        _ => ("mock_status", Value::Null),
    }
}

pub fn error_json(status: u16, message: &str) -> Value {
    let (kind, code) = error_kind(status);
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

// ---- embeddings ----

pub const EMBEDDING_DIMS: usize = 8;

/// Deterministic 8-dimensional vector in [-1, 1] derived from the input's bytes.
pub fn embedding_vector(input: &[u8]) -> [f64; EMBEDDING_DIMS] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = [0.0; EMBEDDING_DIMS];
    for (k, o) in out.iter_mut().enumerate() {
        // splitmix64
        let mut z = h.wrapping_add((k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        *o = ((unit * 2.0 - 1.0) * 1e6).round() / 1e6;
    }
    out
}

pub fn embeddings_json(model: &str, inputs: &[Vec<u8>], prompt_tokens: u64, base64: bool) -> Value {
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let v = embedding_vector(input);
            let embedding = if base64 {
                let mut raw = Vec::with_capacity(EMBEDDING_DIMS * 4);
                for x in v {
                    raw.extend_from_slice(&(x as f32).to_le_bytes());
                }
                json!(crate::b64::encode(&raw))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

// ---- models ----

pub fn model_json(id: &str, owner: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
}

pub fn models_json(models: &[String], owner: &str) -> Value {
    let data: Vec<Value> = models.iter().map(|m| model_json(m, owner)).collect();
    json!({"object": "list", "data": data})
}
