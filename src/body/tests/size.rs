//! Big bodies: only a short prefix is swapped when the edits are near the start, a megabyte
//! rewrites correctly; the ignored throughput report.

use super::*;
use crate::testing::test;

/// A realistic chat body of about `size` bytes: many messages with mixed text.
fn big_chat_body(size: usize) -> String {
    let mut messages = String::new();
    let mut k = 0;
    while messages.len() < size {
        if !messages.is_empty() {
            messages.push(',');
        }
        let role = if k % 2 == 0 { "user" } else { "assistant" };
        messages.push_str(&format!(
            r#"{{"role":"{role}","content":"Message {k}: the quick brown fox jumps over the lazy dog. \"Quoted\" text, a tab\t, a newline\n, unicode é 你好 🙂 and an escape \u00e9. {}"}}"#,
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(1 + k % 7)
        ));
        k += 1;
    }
    format!(
        r#"{{"model":"gpt-4o","messages":[{messages}],"stream":true,"temperature":0.2,"max_tokens":100000,"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"type":"object","properties":{{"model":{{"type":"string"}}}}}}}}}}]}}"#
    )
}

#[test]
fn edits_near_the_start_swap_only_a_short_prefix_of_a_big_body() {
    // The shape of most SDK bodies with the model first: every edit (the model, the members
    // the gateway adds) lands in the first bytes, so the filter hands Envoy a short prefix
    // instead of a copy of the whole megabyte.
    let messages = "x".repeat(1 << 20);
    let body = format!(
        r#"{{"model":"chat","stream":true,"messages":[{{"role":"user","content":"{messages}"}}]}}"#
    );
    let plan = Plan {
        model: Some("gpt-4.1"),
        max_tokens: Some(4096),
        temperature: Some(0.5),
        system_prompt: None,
        include_usage: true,
    };
    let p = parsed(&body);
    let pre = rewrite_prefix(body.as_bytes(), &p, Endpoint::Chat, &plan).unwrap();
    let (replaced, prefix) = pre.splice.unwrap();
    assert_eq!(&body[..replaced], r#"{"model":"chat""#);
    assert_eq!(
        String::from_utf8(prefix).unwrap(),
        r#"{"max_tokens":4096,"temperature":0.5,"stream_options":{"include_usage":true},"model":"gpt-4.1""#
    );
    // A model after the messages (as some SDKs send it) puts the swap past them.
    let late =
        format!(r#"{{"messages":[{{"role":"user","content":"{messages}"}}],"model":"chat"}}"#);
    let p = parsed(&late);
    let pre = rewrite_prefix(late.as_bytes(), &p, Endpoint::Chat, &model("m")).unwrap();
    let (replaced, prefix) = pre.splice.unwrap();
    assert_eq!(replaced, late.len() - 1);
    assert!(prefix.ends_with(br#""model":"m""#));
    // Nothing to change: nothing to swap.
    let p = parsed(&body);
    let pre = rewrite_prefix(body.as_bytes(), &p, Endpoint::Embeddings, &model("chat")).unwrap();
    assert_eq!(pre.splice, None);
}

#[test]
fn a_one_megabyte_body_is_rewritten_correctly() {
    let body = big_chat_body(1 << 20);
    assert!(body.len() >= 1 << 20);
    let plan = Plan {
        model: Some("claude-3-5-sonnet"),
        max_tokens: Some(4096),
        temperature: Some(0.9),
        system_prompt: Some("You are terse."),
        include_usage: true,
    };
    let p = parsed(&body);
    assert_eq!(p.model(), Some("gpt-4o"));
    let out = rewrite(body.as_bytes(), &p, Endpoint::Chat, &plan).unwrap();
    let out = String::from_utf8(out.body.unwrap()).unwrap();
    let expected = body
        .replacen(r#""model":"gpt-4o""#, r#""model":"claude-3-5-sonnet""#, 1)
        .replacen(
            r#""messages":["#,
            r#""messages":[{"role":"system","content":"You are terse."},"#,
            1,
        )
        .replacen(r#""max_tokens":100000"#, r#""max_tokens":4096"#, 1);
    // Added members come right after the opening brace.
    let expected = format!(
        "{{\"stream_options\":{{\"include_usage\":true}},{}",
        &expected[1..]
    );
    assert_eq!(out, expected);
    let before = json_of(&body);
    let after = json_of(&out);
    assert_eq!(after["tools"], before["tools"]);
    assert_eq!(
        after["messages"].as_array().unwrap()[1..],
        before["messages"].as_array().unwrap()[..]
    );
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn reports_parse_and_rewrite_throughput() {
    use std::time::Instant;
    /// Best and median time of one call, in ms per MiB of `len` bytes.
    fn time(len: usize, mut f: impl FnMut()) -> (f64, f64) {
        let mut samples: Vec<f64> = (0..200)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let per_mib = 1e3 * (1 << 20) as f64 / len as f64;
        (samples[0] * per_mib, samples[samples.len() / 2] * per_mib)
    }
    let chat = big_chat_body(1 << 20);
    let ascii = format!(
        r#"{{"model":"m","input":"{}"}}"#,
        "abcdefghijklmnopqrstuvwxyz0123456789 ".repeat((1 << 20) / 37)
    );
    let cjk = format!(
        r#"{{"model":"m","messages":[{}]}}"#,
        vec![r#"{"role":"user","content":"你好，世界。这是一个很长的中文句子，用来测试解析速度！🙂"}"#; 11_000]
            .join(",")
    );
    let pretty = serde_json::to_string_pretty(&json_of(&chat)).unwrap();
    let plan = Plan {
        model: Some("other"),
        max_tokens: Some(4096),
        temperature: None,
        system_prompt: Some("sys"),
        include_usage: true,
    };
    for (name, body) in [
        ("chat", &chat),
        ("one long ASCII string", &ascii),
        ("CJK chat", &cjk),
        ("pretty-printed chat", &pretty),
    ] {
        let bytes = body.as_bytes();
        let (parse_best, parse_median) = time(bytes.len(), || {
            let p = parse(std::hint::black_box(bytes)).unwrap();
            std::hint::black_box(p.model());
        });
        let (both_best, both_median) = time(bytes.len(), || {
            let p = parse(std::hint::black_box(bytes)).unwrap();
            let out = rewrite(bytes, &p, Endpoint::Chat, &plan).unwrap();
            std::hint::black_box(out.body);
        });
        println!(
            "{name} ({} bytes): parse {:.0} MB/s best, {:.0} MB/s median ({parse_best:.3} / {parse_median:.3} ms/MiB); \
             parse+rewrite {:.0} MB/s best ({both_best:.3} / {both_median:.3} ms/MiB)",
            bytes.len(),
            1.048576e3 / parse_best,
            1.048576e3 / parse_median,
            1.048576e3 / both_best,
        );
    }
}
