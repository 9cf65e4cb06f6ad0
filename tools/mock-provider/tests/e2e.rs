//! End-to-end tests: a real server on 127.0.0.1:0 and a raw HTTP/1.1 client over TcpStream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mock_provider::{Config, Server};
use serde_json::{json, Value};

fn start(cfg: Config) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(&cfg).await.unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            server.run(std::future::pending()).await;
        });
    });
    rx.recv().unwrap()
}

fn server() -> SocketAddr {
    start(Config::default())
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `data:` payloads of an SSE body, in order.
    fn sse_data(&self) -> Vec<String> {
        let text = self.text();
        assert!(
            text.ends_with("\n\n"),
            "SSE body must end with a blank line"
        );
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or_else(|| panic!("event without data: {e:?}"))
                    .to_string()
            })
            .collect()
    }
    fn request_id(&self) -> u64 {
        self.header("x-mock-request-id").unwrap().parse().unwrap()
    }
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 16384];
        let n = self.s.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn take_until(&mut self, pat: &[u8]) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                let out: Vec<u8> = self.buf.drain(..i + pat.len()).collect();
                return Ok(out[..i].to_vec());
            }
            if self.fill()? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_response(&mut self) -> std::io::Result<Resp> {
        let head = String::from_utf8(self.take_until(b"\r\n\r\n")?).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let get = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line = String::from_utf8(self.take_until(b"\r\n")?).unwrap();
                let size =
                    usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
                if size == 0 {
                    self.take_until(b"\r\n")?;
                    break;
                }
                body.extend(self.take(size)?);
                assert_eq!(self.take(2)?, b"\r\n");
            }
            body
        } else {
            let len: usize = get("content-length")
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            self.take(len)?
        };
        Ok(Resp {
            status,
            headers,
            body,
            chunked,
        })
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: mock\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.s.write_all(&bytes).unwrap();
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.send(method, path, headers, body);
        self.read_response().unwrap()
    }

    fn post_json(&mut self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.request("POST", path, &h, body.to_string().as_bytes())
    }

    fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, &[], b"")
    }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn assert_openai_error(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(v["error"]["message"].is_string());
}

#[test]
fn chat_json_keepalive_and_headers() {
    let addr = server();
    let mut c = Client::connect(addr);
    let body = chat("gpt-4.1");
    let r1 = c.post_json("/v1/chat/completions", &[], &body);
    assert_eq!(r1.status, 200);
    assert_eq!(r1.header("x-mock-provider"), Some("mock"));
    assert_eq!(r1.header("content-type"), Some("application/json"));
    assert!(!r1.chunked);
    let v = r1.json();
    let id = r1.request_id();
    assert_eq!(v["id"], format!("chatcmpl-mock-{id}"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4.1");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the mock provider"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let prompt = (body.to_string().len() / 4) as u64;
    assert_eq!(v["usage"]["prompt_tokens"], prompt);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["total_tokens"], prompt + 5);
    // Same connection, next request: keep-alive works and ids are monotonic.
    let r2 = c.post_json("/v1/chat/completions", &[], &chat("x"));
    assert_eq!(r2.status, 200);
    assert_eq!(r2.request_id(), id + 1);
    assert_eq!(r2.json()["model"], "x");
}

#[test]
fn chat_stream_without_include_usage() {
    let addr = server();
    let mut c = Client::connect(addr);
    let mut body = chat("gpt-4.1-mini");
    body["stream"] = json!(true);
    let r = c.post_json("/v1/chat/completions", &[], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.chunked);
    let data = r.sse_data();
    assert_eq!(data.len(), 5 + 1 + 1, "{data:?}");
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut text = String::new();
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch["object"], "chat.completion.chunk");
        assert_eq!(ch["model"], "gpt-4.1-mini");
        assert!(
            ch.get("usage").is_none(),
            "no usage field without include_usage"
        );
        if i < 5 {
            assert_eq!(ch["choices"][0]["delta"].get("role").is_some(), i == 0);
            text.push_str(ch["choices"][0]["delta"]["content"].as_str().unwrap());
            assert!(ch["choices"][0]["finish_reason"].is_null());
        }
    }
    assert_eq!(text, "Hello from the mock provider");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    // Connection still usable after a chunked response.
    assert_eq!(c.get("/v1/models").status, 200);
}

#[test]
fn chat_stream_with_include_usage() {
    let addr = server();
    let mut c = Client::connect(addr);
    let mut body = chat("deepseek-v3.2");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = c.post_json(
        "/v1/chat/completions",
        &[("x-mock-chunks", "3"), ("x-mock-prompt-tokens", "42")],
        &body,
    );
    let data = r.sse_data();
    assert_eq!(data.len(), 3 + 1 + 1 + 1, "{data:?}");
    assert_eq!(data[5], "[DONE]");
    let fin: Value = serde_json::from_str(&data[3]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert!(fin["usage"].is_null());
    let usage: Value = serde_json::from_str(&data[4]).unwrap();
    assert_eq!(usage["object"], "chat.completion.chunk");
    assert_eq!(usage["id"], fin["id"]);
    assert_eq!(usage["model"], "deepseek-v3.2");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45})
    );
}

#[test]
fn stream_chunk_bytes_delay_and_abort() {
    let addr = server();
    let mut c = Client::connect(addr);
    let mut body = chat("m");
    body["stream"] = json!(true);
    let t = Instant::now();
    let r = c.post_json(
        "/v1/chat/completions",
        &[
            ("x-mock-chunks", "3"),
            ("x-mock-chunk-bytes", "100"),
            ("x-mock-chunk-delay-ms", "40"),
            ("x-mock-completion-tokens", "77"),
        ],
        &body,
    );
    // 5 events -> 4 gaps of 40 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(160),
        "{:?}",
        t.elapsed()
    );
    let data = r.sse_data();
    assert_eq!(data.len(), 5);
    for d in &data[..3] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert_eq!(
            v["choices"][0]["delta"]["content"].as_str().unwrap().len(),
            100
        );
    }
    // Non-stream honours the same headers.
    let r = c.post_json(
        "/v1/chat/completions",
        &[("x-mock-chunks", "2"), ("x-mock-completion-tokens", "77")],
        &chat("m"),
    );
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from");
    assert_eq!(v["usage"]["completion_tokens"], 77);

    // Abort after 2 chunks: the chunked body is never terminated and the connection closes.
    c.send(
        "POST",
        "/v1/chat/completions",
        &[("x-mock-abort-after-chunks", "2")],
        body.to_string().as_bytes(),
    );
    let mut raw = Vec::new();
    let _ = c.s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "chunked body must not be terminated"
    );
}

#[test]
fn recording_headers_body_and_framing() {
    let addr = server();
    let mut c = Client::connect(addr);
    c.request("DELETE", "/__requests", &[], b"");
    let body = br#"{"model":"gpt-4.1","messages":[]}"#;
    let r = c.request(
        "POST",
        "/v1/chat/completions?api-version=1",
        &[
            ("Authorization", "Bearer sk-test"),
            ("X-Custom", "A"),
            ("content-type", "application/json"),
        ],
        body,
    );
    assert_eq!(r.status, 200);
    let id = r.request_id();
    let rec = c.get(&format!("/__requests/{id}"));
    assert_eq!(rec.status, 200);
    assert!(
        rec.header("x-mock-request-id").is_none(),
        "/__ paths are not recorded"
    );
    let v = rec.json();
    assert_eq!(v["id"], id);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/v1/chat/completions?api-version=1");
    assert_eq!(
        v["headers"],
        json!([
            ["host", "mock"],
            ["authorization", "Bearer sk-test"],
            ["x-custom", "A"],
            ["content-type", "application/json"],
            ["content-length", body.len().to_string()],
        ])
    );
    assert_eq!(v["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(v["body_len"], body.len());
    assert_eq!(v["content_length"], body.len().to_string());
    assert_eq!(v["chunked"], false);
    let b64 = v["body_b64"].as_str().unwrap();
    assert_eq!(b64.len(), body.len().div_ceil(3) * 4);

    // Chunked request with a non-UTF-8 byte.
    let payload: &[u8] = b"{\"model\":\"m\",\"x\":\"\xff\"}";
    let mut raw =
        b"POST /v1/embeddings HTTP/1.1\r\nhost: mock\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    raw.extend_from_slice(format!("{:x}\r\n", 5).as_bytes());
    raw.extend_from_slice(&payload[..5]);
    raw.extend_from_slice(format!("\r\n{:x}\r\n", payload.len() - 5).as_bytes());
    raw.extend_from_slice(&payload[5..]);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    c.s.write_all(&raw).unwrap();
    let r = c.read_response().unwrap();
    let id2 = r.request_id();
    assert_eq!(id2, id + 1);
    let v = c.get("/__requests/last").json();
    assert_eq!(v["id"], id2);
    assert_eq!(v["chunked"], true);
    assert!(v["content_length"].is_null());
    assert_eq!(v["body_len"], payload.len());
    assert_eq!(v["body"], "{\"model\":\"m\",\"x\":\"\u{fffd}\"}");
    assert_eq!(v["body_b64"], "eyJtb2RlbCI6Im0iLCJ4Ijoi/yJ9");

    let s = c.get("/__requests").json();
    assert_eq!(s, json!({"count": 2, "last_id": id2}));
    assert_eq!(c.get("/__requests/999999").status, 404);
    let cleared = c.request("DELETE", "/__requests", &[], b"").json();
    assert_eq!(cleared, json!({"count": 0, "last_id": id2}));
    assert_eq!(c.get(&format!("/__requests/{id2}")).status, 404);
    assert_eq!(c.get("/__health").text(), "ok");
}

#[test]
fn echo_returns_the_recording() {
    let addr = server();
    let mut c = Client::connect(addr);
    let r = c.post_json(
        "/v1/chat/completions",
        &[("x-mock-echo", "1")],
        &chat("gpt-4.1"),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], r.request_id());
    assert_eq!(v["path"], "/v1/chat/completions");
    assert_eq!(v["body"], chat("gpt-4.1").to_string());
}

#[test]
fn scripted_status_and_rate_limit_headers() {
    let addr = server();
    let mut c = Client::connect(addr);
    let r = c.post_json(
        "/v1/chat/completions",
        &[
            ("x-mock-status", "429"),
            ("x-mock-retry-after", "7"),
            ("x-mock-ratelimit-reset", "1700000000"),
        ],
        &chat("gpt-4.1"),
    );
    assert_openai_error(&r, 429, "requests");
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("1700000000"));
    assert!(r.header("x-mock-request-id").is_some());

    let r = c.post_json("/v1/embeddings", &[("x-mock-status", "503")], &json!({}));
    assert_openai_error(&r, 503, "server_error");
    let r = c.post_json(
        "/v1/chat/completions",
        &[("x-mock-status", "nope")],
        &chat("m"),
    );
    assert_openai_error(&r, 400, "invalid_request_error");
    // Keep-alive survives error responses.
    assert_eq!(
        c.post_json("/v1/chat/completions", &[], &chat("m")).status,
        200
    );
}

#[test]
fn delay_header_and_latency_flag() {
    let addr = start(Config {
        latency_ms: 50,
        name: "slow".into(),
        ..Config::default()
    });
    let mut c = Client::connect(addr);
    let t = Instant::now();
    let r = c.post_json(
        "/v1/chat/completions",
        &[("x-mock-delay-ms", "100")],
        &chat("m"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-mock-provider"), Some("slow"));
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(c.get("/__health").status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "admin paths are never delayed"
    );
}

#[test]
fn fail_first_counts_per_key() {
    let addr = server();
    let mut c = Client::connect(addr);
    let h = |key| [("x-mock-fail-first", "2"), ("x-mock-fail-key", key)];
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            c.post_json("/v1/chat/completions", &h("k1"), &chat("m"))
                .status
        })
        .collect();
    assert_eq!(statuses, vec![503, 503, 200, 200]);
    // Another key has its own count; x-mock-status picks the failure status.
    let h2 = [
        ("x-mock-fail-first", "1"),
        ("x-mock-fail-key", "k2"),
        ("x-mock-status", "500"),
    ];
    let statuses: Vec<u16> = (0..2)
        .map(|_| c.post_json("/v1/chat/completions", &h2, &chat("m")).status)
        .collect();
    assert_eq!(statuses, vec![500, 200]);
    assert_eq!(c.get("/__fail-first").json(), json!({"k1": 4, "k2": 2}));
    c.request("DELETE", "/__fail-first", &[], b"");
    assert_eq!(
        c.post_json("/v1/chat/completions", &h("k1"), &chat("m"))
            .status,
        503
    );
}

#[test]
fn control_fail_delay_reset_and_heal() {
    let addr = server();
    let mut c = Client::connect(addr);
    let ctl = json!({
        "fail_models": {"deepseek-v3.2": 503},
        "delay_models": {"gpt-4.1": 120},
        "reset_models": ["gemini-2.5-flash"],
    });
    let r = c.post_json("/__control", &[], &ctl);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), ctl);
    assert_eq!(c.get("/__control").json(), ctl);

    let r = c.post_json("/v1/chat/completions", &[], &chat("deepseek-v3.2"));
    assert_openai_error(&r, 503, "server_error");
    assert_eq!(
        c.post_json("/v1/chat/completions", &[], &chat("gpt-4.1-mini"))
            .status,
        200
    );
    let t = Instant::now();
    assert_eq!(
        c.post_json("/v1/chat/completions", &[], &chat("gpt-4.1"))
            .status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(120));

    let mut c2 = Client::connect(addr);
    c2.send(
        "POST",
        "/v1/chat/completions",
        &[],
        chat("gemini-2.5-flash").to_string().as_bytes(),
    );
    assert!(
        c2.read_response().is_err(),
        "reset_models drops the connection"
    );

    let bad = c.post_json("/__control", &[], &json!({"fail_models": {"x": "503"}}));
    assert_eq!(bad.status, 400);
    assert_eq!(
        c.get("/__control").json(),
        ctl,
        "a rejected update changes nothing"
    );

    let healed = c.post_json("/__control", &[], &json!({}));
    assert_eq!(
        healed.json(),
        json!({"fail_models": {}, "delay_models": {}, "reset_models": []})
    );
    assert_eq!(
        c.post_json("/v1/chat/completions", &[], &chat("deepseek-v3.2"))
            .status,
        200
    );
    let mut c3 = Client::connect(addr);
    assert_eq!(
        c3.post_json("/v1/chat/completions", &[], &chat("gemini-2.5-flash"))
            .status,
        200
    );
}

#[test]
fn reset_header_resets_the_connection() {
    let addr = server();
    let mut c = Client::connect(addr);
    c.send(
        "POST",
        "/v1/chat/completions",
        &[("x-mock-reset", "1")],
        chat("m").to_string().as_bytes(),
    );
    let mut buf = [0u8; 64];
    match c.s.read(&mut buf) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("expected a connection reset, read {n} bytes"),
    }
    // The request was still recorded, and the server keeps serving.
    let mut c2 = Client::connect(addr);
    let v = c2.get("/__requests/last").json();
    assert_eq!(v["headers"][1], json!(["x-mock-reset", "1"]));
    assert_eq!(
        c2.post_json("/v1/chat/completions", &[], &chat("m")).status,
        200
    );
}

#[test]
fn fail_status_flag() {
    let addr = start(Config {
        fail_status: Some(503),
        name: "dead".into(),
        ..Config::default()
    });
    let mut c = Client::connect(addr);
    for path in ["/v1/chat/completions", "/v1/embeddings", "/v1/responses"] {
        let r = c.post_json(path, &[("x-mock-echo", "1")], &chat("m"));
        assert_openai_error(&r, 503, "server_error");
        assert_eq!(r.header("x-mock-provider"), Some("dead"));
    }
    assert_eq!(c.get("/__health").status, 200);
}

#[test]
fn invalid_requests() {
    let addr = server();
    let mut c = Client::connect(addr);
    for body in [&b"not json"[..], b"[1,2]", b"{}", b"{\"model\":5}", b""] {
        let r = c.request("POST", "/v1/chat/completions", &[], body);
        assert_openai_error(&r, 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["code"], "invalid_request");
    }
    let r = c.post_json("/v1/nope", &[], &chat("m"));
    assert_openai_error(&r, 404, "invalid_request_error");
    let r = c.get("/v1/chat/completions");
    assert_openai_error(&r, 405, "invalid_request_error");
    let r = c.post_json("/v1/embeddings", &[], &json!({"model": "e", "input": []}));
    assert_openai_error(&r, 400, "invalid_request_error");
    assert_eq!(c.get("/__nope").status, 404);
    // Garbage on the wire does not take the server down.
    let mut g = Client::connect(addr);
    g.s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let _ = g.read_response();
    assert_eq!(
        c.post_json("/v1/chat/completions", &[], &chat("m")).status,
        200
    );
}

#[test]
fn completions_embeddings_responses_models() {
    let addr = start(Config {
        models: vec!["only-a".into(), "only-b".into()],
        name: "p1".into(),
        ..Config::default()
    });
    let mut c = Client::connect(addr);

    let v = c
        .post_json(
            "/v1/completions",
            &[],
            &json!({"model": "c", "prompt": "x"}),
        )
        .json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Hello from the mock provider");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let r = c.post_json(
        "/v1/completions",
        &[],
        &json!({"model": "c", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}}),
    );
    let data = r.sse_data();
    assert_eq!(data.len(), 5 + 1 + 1 + 1);
    let last: Value = serde_json::from_str(&data[6]).unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert_eq!(data[7], "[DONE]");

    let v = c
        .post_json(
            "/v1/embeddings",
            &[("x-mock-prompt-tokens", "9")],
            &json!({"model": "e", "input": ["a", "b", "c"]}),
        )
        .json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "e");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"][2]["index"], 2);
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_ne!(v["data"][0]["embedding"], v["data"][1]["embedding"]);
    assert_eq!(v["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
    let v = c
        .post_json("/v1/embeddings", &[], &json!({"model": "e", "input": "a"}))
        .json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let v = c
        .post_json(
            "/v1/embeddings",
            &[],
            &json!({"model": "e", "input": [1, 2, 3]}),
        )
        .json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    let v = c
        .post_json("/v1/responses", &[], &json!({"model": "r", "input": "hi"}))
        .json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["model"], "r");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Hello from the mock provider"
    );
    let u = &v["usage"];
    assert_eq!(u["output_tokens"], 5);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["input_tokens"].as_u64().unwrap() + 5)
    );
    let r = c.post_json(
        "/v1/responses",
        &[],
        &json!({"model": "r", "input": "hi", "stream": true}),
    );
    let text = r.text();
    assert!(text.starts_with("event: response.created\n"));
    assert_eq!(
        text.matches("event: response.output_text.delta\n").count(),
        5
    );
    let data = r.sse_data();
    let done: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["usage"]["output_tokens"], 5);

    let v = c.get("/v1/models").json();
    assert_eq!(
        v,
        json!({"object": "list", "data": [
            {"id": "only-a", "object": "model", "created": 0, "owned_by": "p1"},
            {"id": "only-b", "object": "model", "created": 0, "owned_by": "p1"},
        ]})
    );
    assert_eq!(c.get("/v1/models/only-b").json()["id"], "only-b");
    assert_eq!(c.get("/v1/models/gpt-4.1").status, 404);

    let d = start(Config::default());
    let v = Client::connect(d).get("/v1/models").json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "gpt-4.1",
            "gpt-4.1-mini",
            "claude-sonnet-4.5",
            "deepseek-v3.2",
            "gemini-2.5-flash"
        ]
    );
}
