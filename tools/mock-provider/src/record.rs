//! Ring buffer of the last requests received on OpenAI paths.

use std::collections::VecDeque;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::http::request::Parts;
use serde_json::{json, Value};

/// How many requests are kept.
pub const RING_CAPACITY: usize = 10_000;

/// One received request, as it arrived.
pub struct Record {
    pub id: u64,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub content_length: Option<String>,
    pub chunked: bool,
}

impl Record {
    /// Captures a request (id 0 until pushed into the [`Recorder`]).
    pub fn capture(parts: &Parts, body: Bytes) -> Record {
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let cl: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_str())
            .collect();
        let content_length = if cl.is_empty() {
            None
        } else {
            Some(cl.join(", "))
        };
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| parts.uri.to_string());
        Record {
            id: 0,
            method: parts.method.as_str().to_string(),
            path,
            headers,
            body,
            content_length,
            chunked,
        }
    }

    pub fn to_json(&self) -> Value {
        let headers: Vec<Value> = self.headers.iter().map(|(n, v)| json!([n, v])).collect();
        json!({
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body_b64": crate::b64::encode(&self.body),
            "body": String::from_utf8_lossy(&self.body),
            "body_len": self.body.len(),
            "content_length": self.content_length,
            "chunked": self.chunked,
        })
    }
}

#[derive(Default)]
pub struct Recorder {
    ring: VecDeque<Arc<Record>>,
    /// Requests recorded since start or since the last clear.
    count: u64,
    /// Last id handed out (ids are never reused, not even after a clear).
    last_id: u64,
}

impl Recorder {
    /// Assigns the next id and stores the request.
    pub fn push(&mut self, mut rec: Record) -> Arc<Record> {
        self.last_id += 1;
        self.count += 1;
        rec.id = self.last_id;
        let rec = Arc::new(rec);
        if self.ring.len() >= RING_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(rec.clone());
        rec
    }

    pub fn get(&self, id: u64) -> Option<Arc<Record>> {
        // Ids are assigned under the same lock as the push, so the ring is sorted by id.
        self.ring
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .and_then(|i| self.ring.get(i).cloned())
    }

    pub fn last(&self) -> Option<Arc<Record>> {
        self.ring.back().cloned()
    }

    pub fn clear(&mut self) {
        self.ring.clear();
        self.count = 0;
    }

    pub fn summary(&self) -> Value {
        json!({"count": self.count, "last_id": self.last_id})
    }
}
