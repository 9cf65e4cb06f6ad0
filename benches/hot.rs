//! Native micro-benchmark of the filter's pure hot functions (`docs/design.md`, "Performance
//! model"): body parse + rewrite (1 KiB, 64 KiB, 1 MiB; parse alone also of 64 KiB of ASCII
//! prose and of CJK text), model resolution, weighted and sticky picks, SSE usage scanning and
//! usage-chunk stripping, and the plugin-configuration compile.
//!
//! `cargo bench` (std only, `harness = false`: no criterion, so the bench builds offline with the
//! crate's own dependencies and runs in seconds). Arguments:
//!   `cargo bench -- FILTER`   run only the cases whose name contains FILTER;
//!   `cargo bench -- --quick`  fewer, shorter samples (a smoke run);
//!   `cargo bench -- --json PATH` also write the results as JSON.
//! Each case is run in batches sized to take about 20 ms (5 ms with `--quick`); the report is
//! the median batch (ns per operation) and the fastest one, with bytes/s for body cases.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use ai_gateway_filter::body::{self, Endpoint, Plan};
use ai_gateway_filter::config::{self, Config};
use ai_gateway_filter::routing::{self, Resolution};
use ai_gateway_filter::usage::{Format, UsageChunkStripper, UsageScanner};

/// The plugin configuration shipped in `envoy/demo.yaml` (the one the Envoy benchmark runs).
const DEMO_CONFIG: &str = r#"{
  "models": [
    { "name": "gpt-4.1", "version": "1.0.0", "weight": 90,
      "max_tokens": 4096, "temperature": 0.7, "cluster": "mock" },
    { "name": "deepseek-v3.2", "version": "2.0.0-canary.1", "weight": 10, "cluster": "mock" },
    { "name": "claude-sonnet-4.5", "version": "1.4.0", "cluster": "mock",
      "system_prompt": "You are a concise assistant." }
  ],
  "routes": [
    { "name": "chat", "targets": [
        { "model": "gpt-4.1", "weight": 90 },
        { "model": "deepseek-v3.2", "weight": 10 } ] }
  ],
  "default_route": "chat",
  "unknown_models": "reject",
  "timeout_ms": 30000,
  "upstream": { "cluster": "mock", "api_key_env": "HOLYSHEEP_API_KEY" },
  "sticky": { "header": "x-user-id" },
  "stream_usage": "inject",
  "prices": {
    "gpt-4.1": { "input": 2.00, "output": 8.00 },
    "claude-sonnet-4.5": { "input": 3.00, "output": 15.00 },
    "gemini-2.5-flash": { "input": 0.30, "output": 2.50 },
    "deepseek-v3.2": { "input": 0.28, "output": 0.42 }
  }
}"#;

/// A chat request of exactly `size` bytes, the same shape as `bench/run.py`'s bodies: model
/// alias `chat`, a system and a user message whose text has words, escapes (`\n`, `\"`) and
/// non-ASCII characters, so the scanner's string paths all run.
fn chat_body(size: usize, stream: bool) -> Vec<u8> {
    let head = if stream {
        r#"{"model":"chat","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":""#
    } else {
        r#"{"model":"chat","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":""#
    };
    let tail = r#""}],"user":"bench"}"#;
    let words: [&str; 8] = [
        "Summarise ",
        "the ",
        "following ",
        "report\\n",
        "about \\\"latency\\\" ",
        "café ",
        "日本語 ",
        "throughput. ",
    ];
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    let room = size.saturating_sub(head.len() + tail.len());
    let mut filler = Vec::with_capacity(room);
    'fill: loop {
        for w in words {
            if filler.len() + w.len() > room {
                break 'fill;
            }
            filler.extend_from_slice(w.as_bytes());
        }
    }
    filler.resize(room, b'x');
    out.extend_from_slice(&filler);
    out.extend_from_slice(tail.as_bytes());
    out
}

/// A chat request of exactly `size` bytes whose one message is `unit` repeated (then `x`s):
/// the scanner's two extremes, plain ASCII prose (no stop inside the string) and CJK text (all
/// of it UTF-8 to validate).
fn text_body(size: usize, unit: &str) -> Vec<u8> {
    let head = br#"{"model":"chat","messages":[{"role":"user","content":""#;
    let tail = br#""}]}"#;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head);
    while out.len() + unit.len() + tail.len() <= size {
        out.extend_from_slice(unit.as_bytes());
    }
    out.resize(size - tail.len(), b'x');
    out.extend_from_slice(tail);
    out
}

/// An OpenAI chat-completions SSE stream of `chunks` content events, a final event, the usage
/// event and `[DONE]`, as the mock provider sends it with `include_usage`.
fn sse_stream(chunks: usize) -> Vec<Vec<u8>> {
    let words = ["Hello", " from", " the", " mock", " provider"];
    let mut events = Vec::with_capacity(chunks + 3);
    for i in 0..chunks {
        let delta = if i == 0 {
            r#"{"role":"assistant","content":"Hello"}"#.to_string()
        } else {
            format!(r#"{{"content":"{}"}}"#, words[i % words.len()])
        };
        events.push(format!(
            r#"data: {{"choices":[{{"delta":{delta},"finish_reason":null,"index":0,"logprobs":null}}],"created":1760000000,"id":"chatcmpl-mock-1","model":"gpt-4.1","object":"chat.completion.chunk","usage":null}}"#
        ).into_bytes());
    }
    events.push(br#"data: {"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1760000000,"id":"chatcmpl-mock-1","model":"gpt-4.1","object":"chat.completion.chunk","usage":null}"#.to_vec());
    events.push(br#"data: {"choices":[],"created":1760000000,"id":"chatcmpl-mock-1","model":"gpt-4.1","object":"chat.completion.chunk","usage":{"completion_tokens":200,"prompt_tokens":256,"total_tokens":456}}"#.to_vec());
    events.push(b"data: [DONE]".to_vec());
    for e in &mut events {
        e.extend_from_slice(b"\n\n");
    }
    events
}

struct Args {
    filter: Vec<String>,
    quick: bool,
    json: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        filter: Vec::new(),
        quick: false,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--json" => a.json = it.next(),
            // `cargo bench` passes --bench; libtest's other flags are ignored too.
            s if s.starts_with("--") => {}
            s => a.filter.push(s.to_string()),
        }
    }
    a
}

struct Result {
    name: String,
    bytes: Option<usize>,
    median_ns: f64,
    min_ns: f64,
    iters: u64,
}

struct Bench {
    args: Args,
    results: Vec<Result>,
}

impl Bench {
    /// Times `f` (one operation per call); `bytes` is the input size, for a throughput column.
    fn run<R>(&mut self, name: &str, bytes: Option<usize>, mut f: impl FnMut() -> R) {
        if !self.args.filter.is_empty() && !self.args.filter.iter().any(|p| name.contains(p)) {
            return;
        }
        let (batch_time, samples) = if self.args.quick {
            (Duration::from_millis(5), 5)
        } else {
            (Duration::from_millis(20), 25)
        };
        // Warm up and size a batch.
        let mut iters: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let el = t.elapsed();
            if el >= batch_time / 2 || iters >= 1 << 30 {
                let scale = batch_time.as_secs_f64() / el.as_secs_f64().max(1e-9);
                iters = ((iters as f64 * scale).ceil() as u64).max(1);
                break;
            }
            iters *= 4;
        }
        let mut per_op: Vec<f64> = (0..samples)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f());
                }
                t.elapsed().as_nanos() as f64 / iters as f64
            })
            .collect();
        per_op.sort_by(f64::total_cmp);
        let r = Result {
            name: name.to_string(),
            bytes,
            median_ns: per_op[per_op.len() / 2],
            min_ns: per_op[0],
            iters,
        };
        let rate = match r.bytes {
            Some(b) => format!(
                "{:>9.1} MiB/s",
                b as f64 / (r.median_ns * 1e-9) / (1024.0 * 1024.0)
            ),
            None => String::new(),
        };
        println!(
            "{:<40} {:>12} /op  (min {:>10}) {rate}",
            r.name,
            fmt_ns(r.median_ns),
            fmt_ns(r.min_ns)
        );
        let _ = std::io::stdout().flush();
        self.results.push(r);
    }

    fn write_json(&self) {
        let Some(path) = &self.args.json else {
            return;
        };
        let rows: Vec<String> = self
            .results
            .iter()
            .map(|r| {
                format!(
                    r#"    {{"name": "{}", "bytes": {}, "median_ns": {:.1}, "min_ns": {:.1}, "iters_per_sample": {}}}"#,
                    r.name,
                    r.bytes.map_or("null".to_string(), |b| b.to_string()),
                    r.median_ns,
                    r.min_ns,
                    r.iters
                )
            })
            .collect();
        let text = format!("{{\n  \"results\": [\n{}\n  ]\n}}\n", rows.join(",\n"));
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("could not write {path}: {e}");
            std::process::exit(1);
        }
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn load_config() -> Config {
    match config::parse(DEMO_CONFIG.as_bytes()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("the demo configuration does not compile: {:?}", e.0);
            std::process::exit(1);
        }
    }
}

/// The request path of one chat request as the filter runs it: parse, resolve, weighted pick,
/// rewrite (model, max_tokens cap, temperature default, include_usage). Returns the new length.
fn request_path(cfg: &Config, body: &[u8], roll: u64) -> usize {
    let Ok(parsed) = body::parse(body) else {
        return 0;
    };
    let Resolution::Route(r) = routing::resolve(cfg, parsed.model()) else {
        return 0;
    };
    let route = cfg.route(r);
    let Some(m) = routing::pick_weighted(route, |_| true, roll) else {
        return 0;
    };
    let plan = ai_gateway_filter::request::plan_for(cfg, m);
    match body::rewrite(body, &parsed, Endpoint::Chat, &plan) {
        Ok(rw) => rw.body.map_or(body.len(), |b| b.len()),
        Err(_) => 0,
    }
}

fn main() {
    let mut b = Bench {
        args: args(),
        results: Vec::new(),
    };
    let cfg = load_config();
    let Resolution::Route(route_id) = routing::resolve(&cfg, Some("chat")) else {
        eprintln!("the alias `chat` does not resolve to a route");
        std::process::exit(1);
    };
    let route = cfg.route(route_id);
    let Some(gpt) = cfg.models.iter().find(|m| m.name == "gpt-4.1") else {
        std::process::exit(1);
    };
    let plan = Plan {
        model: Some(&gpt.name),
        max_tokens: gpt.max_tokens,
        temperature: gpt.temperature,
        system_prompt: None,
        include_usage: true,
    };

    println!("{:<40} {:>12}      {:>16}", "case", "median", "fastest");
    for (label, size) in [("1KiB", 1024), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)] {
        let body = chat_body(size, false);
        assert_len(&body, size);
        b.run(&format!("body/parse/{label}"), Some(size), || {
            body::parse(&body).map(|p| p.stream())
        });
        let Ok(parsed) = body::parse(&body) else {
            eprintln!("the {label} body does not parse");
            std::process::exit(1);
        };
        b.run(&format!("body/rewrite/{label}"), Some(size), || {
            body::rewrite(&body, &parsed, Endpoint::Chat, &plan).map(|r| r.body.map(|v| v.len()))
        });
        b.run(&format!("body/parse+rewrite/{label}"), Some(size), || {
            let p = body::parse(&body).ok()?;
            body::rewrite(&body, &p, Endpoint::Chat, &plan)
                .ok()
                .map(|r| r.body.map(|v| v.len()))
        });
        let mut roll = 0x1234_5678_9ABC_DEF0u64;
        b.run(&format!("request_path/{label}"), Some(size), || {
            roll = roll.wrapping_add(0x9E37_79B9_7F4A_7C15);
            request_path(&cfg, &body, roll)
        });
    }
    for (label, unit) in [
        ("ascii", "The quick brown fox jumps over the lazy dog. "),
        ("cjk", "日本語のテキストです。中文文本。"),
    ] {
        let size = 64 * 1024;
        let body = text_body(size, unit);
        assert_len(&body, size);
        b.run(&format!("body/parse/64KiB-{label}"), Some(size), || {
            body::parse(&body).map(|p| p.stream())
        });
    }
    let body = chat_body(1024, true);
    b.run("request_path/1KiB-stream", Some(body.len()), || {
        request_path(&cfg, &body, 42)
    });

    b.run("routing/resolve", None, || {
        routing::resolve(&cfg, black_box(Some("chat")))
    });
    let mut roll = 1u64;
    b.run("routing/pick_weighted", None, || {
        roll = roll.wrapping_mul(6364136223846793005).wrapping_add(1);
        routing::pick_weighted(route, |_| true, roll)
    });
    let keys: Vec<String> = (0..1024).map(|i| format!("user-{i:06}")).collect();
    let mut k = 0usize;
    b.run("routing/pick_sticky", None, || {
        k = (k + 1) & 1023;
        routing::pick_sticky(route, |_| true, keys[k].as_bytes())
    });

    let events = sse_stream(200);
    let stream_bytes: usize = events.iter().map(Vec::len).sum();
    b.run("usage/sse_scan/200-events", Some(stream_bytes), || {
        let mut s = UsageScanner::new(Format::Sse);
        for e in &events {
            s.feed(e);
        }
        s.usage()
    });
    let joined: Vec<u8> = events.concat();
    b.run(
        "usage/sse_scan/200-events-one-chunk",
        Some(joined.len()),
        || {
            let mut s = UsageScanner::new(Format::Sse);
            s.feed(&joined);
            s.usage()
        },
    );
    let last = events.len() - 1;
    b.run("usage/sse_strip/200-events", Some(stream_bytes), || {
        let mut s = UsageChunkStripper::new();
        let mut out = 0usize;
        for (i, e) in events.iter().enumerate() {
            out += s.filter(e, i == last).len();
        }
        (out, s.usage())
    });
    let json_resp = br#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hello from the mock provider","refusal":null,"role":"assistant"}}],"created":1760000000,"id":"chatcmpl-mock-1","model":"gpt-4.1","object":"chat.completion","usage":{"completion_tokens":5,"prompt_tokens":256,"total_tokens":261}}"#;
    b.run("usage/json_scan/response", Some(json_resp.len()), || {
        let mut s = UsageScanner::new(Format::Json);
        s.feed(json_resp);
        s.usage()
    });

    b.run("config/parse/demo", Some(DEMO_CONFIG.len()), || {
        config::parse(DEMO_CONFIG.as_bytes()).map(|c| c.models.len())
    });
    b.write_json();
}

fn assert_len(body: &[u8], size: usize) {
    if body.len() != size {
        eprintln!("generated body is {} bytes, wanted {size}", body.len());
        std::process::exit(1);
    }
}
