//! Property test: generated bodies (tracked keys spelled with escapes, odd whitespace, nested
//! look-alikes) rewrite to valid JSON that changes only the planned members, byte for byte.

use super::*;
use crate::testing::{test, SplitMix64, TestRng};

fn ws(rng: &mut SplitMix64) -> &'static str {
    rng.pick(&["", "", "", " ", "\n  ", "\t", " \r\n "])
}

/// Raw JSON string contents (without quotes) that decode to assorted text.
fn gen_string(rng: &mut SplitMix64) -> String {
    let parts = [
        "a",
        "hello",
        " ",
        "é",
        "你好",
        "🙂",
        "\\n",
        "\\\"",
        "\\\\",
        "\\/",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\t",
        "model",
        "\\u0000",
        "}",
        "]",
        ",",
        ":",
        "{",
        "[",
        "\u{7f}",
        "\u{2028}",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(6) {
        s.push_str(rng.pick(&parts));
    }
    s
}

fn gen_number(rng: &mut SplitMix64) -> String {
    rng.pick(&[
        "0",
        "-0",
        "1",
        "-1",
        "42",
        "100",
        "4096",
        "4097",
        "9000",
        "1.5",
        "-2.5e3",
        "1e3",
        "1E+5",
        "123456789012",
        "99999999999999999999999",
        "0.001",
        "4096.5",
        "2e-3",
        "18446744073709551615",
    ])
    .to_string()
}

fn gen_value(rng: &mut SplitMix64, depth: usize) -> String {
    let kind = if depth > 3 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match kind {
        0 => format!("\"{}\"", gen_string(rng)),
        1 => gen_number(rng),
        2 => rng.pick(&["true", "false", "null"]).to_string(),
        3 | 4 => format!("\"{}\"", gen_string(rng)),
        5 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| gen_value(rng, depth + 1)).collect();
            let sep = format!("{},{}", ws(rng), ws(rng));
            format!("[{}{}{}]", ws(rng), items.join(&sep), ws(rng))
        }
        _ => {
            let n = rng.below(4);
            let keys = [
                "model",
                "role",
                "content",
                "x",
                "stream",
                "max_tokens",
                "include_usage",
            ];
            let mut used = Vec::new();
            let mut members = Vec::new();
            for _ in 0..n {
                let k = rng.pick(&keys);
                if used.contains(&k) {
                    continue;
                }
                used.push(k);
                members.push(format!(
                    "\"{k}\"{}:{}{}",
                    ws(rng),
                    ws(rng),
                    gen_value(rng, depth + 1)
                ));
            }
            let sep = format!("{},{}", ws(rng), ws(rng));
            format!("{{{}{}{}}}", ws(rng), members.join(&sep), ws(rng))
        }
    }
}

/// Spellings of a key, some with escapes, all decoding to `key`.
fn spell(rng: &mut SplitMix64, key: &str) -> String {
    match rng.below(4) {
        0 => {
            // Escape the first character.
            let mut chars = key.chars();
            let first = chars.next().unwrap();
            format!("\\u{:04x}{}", first as u32, chars.as_str())
        }
        1 => key.replace('_', "\\u005f").replace('e', "\\u0065"),
        _ => key.to_string(),
    }
}

fn gen_tracked(rng: &mut SplitMix64, key: &str) -> String {
    match key {
        "model" => format!("\"{}\"", gen_string(rng)),
        "stream" => rng.pick(&["true", "true", "false", "null"]).to_string(),
        "stream_options" => match rng.below(5) {
            0 => "null".to_string(),
            1 => "\"x\"".to_string(),
            2 => format!("{{{}}}", ws(rng)),
            _ => {
                let mut members = Vec::new();
                if rng.chance(50) {
                    members.push(format!("\"x\":{}", gen_value(rng, 2)));
                }
                if rng.chance(70) {
                    let key = spell(rng, "include_usage");
                    let v = rng.pick(&["true", "false", "null", "1"]);
                    members.push(format!("\"{key}\"{}:{}{v}", ws(rng), ws(rng)));
                }
                if rng.chance(30) {
                    members.push(format!("\"y\":{}", gen_value(rng, 2)));
                }
                format!("{{{}{}}}", members.join(","), ws(rng))
            }
        },
        "max_tokens" | "max_completion_tokens" | "max_output_tokens" | "temperature" => {
            if rng.chance(20) {
                "null".to_string()
            } else {
                gen_number(rng)
            }
        }
        "messages" => match rng.below(6) {
            0 => "\"not an array\"".to_string(),
            1 => format!("[{}]", ws(rng)),
            _ => {
                let n = 1 + rng.below(3);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "{{\"role\":\"user\",\"content\":\"{}\",\"model\":\"nested\"}}",
                            gen_string(rng)
                        )
                    })
                    .collect();
                format!(
                    "[{}{}{}]",
                    ws(rng),
                    items.join(&format!(",{}", ws(rng))),
                    ws(rng)
                )
            }
        },
        _ => unreachable!(),
    }
}

const TRACKED: [&str; 8] = crate::body::TRACKED_KEYS;

/// A generated body: its text, and each top-level member as (decoded key, raw member text).
pub(super) fn gen_body(rng: &mut SplitMix64) -> String {
    let mut members: Vec<String> = Vec::new();
    let extra = [
        "user", "n", "tools", "metadata", "x\\\"y", "é", "🙂", "modelx", "Model", "seed",
    ];
    let mut used = Vec::new();
    for _ in 0..rng.below(10) {
        let take_tracked = rng.chance(60);
        let key = if take_tracked {
            rng.pick(&TRACKED)
        } else {
            rng.pick(&extra)
        };
        if used.contains(&key) {
            continue;
        }
        used.push(key);
        let value = if take_tracked {
            gen_tracked(rng, key)
        } else {
            gen_value(rng, 0)
        };
        let spelled = if take_tracked {
            spell(rng, key)
        } else {
            key.to_string()
        };
        members.push(format!(
            "{}\"{spelled}\"{}:{}{value}{}",
            ws(rng),
            ws(rng),
            ws(rng),
            ws(rng)
        ));
    }
    format!("{}{{{}{}}}{}", ws(rng), members.join(","), ws(rng), ws(rng))
}

/// An independent, recursive (test-only) splitter: the raw text of each top-level member,
/// from its key's opening quote to its value's end, with the decoded key.
fn raw_members(body: &str) -> Vec<(String, String)> {
    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && b" \t\r\n".contains(&b[i]) {
            i += 1;
        }
        i
    }
    fn skip_string(b: &[u8], mut i: usize) -> usize {
        i += 1;
        while b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    }
    fn skip_value(b: &[u8], i: usize) -> usize {
        match b[i] {
            b'"' => skip_string(b, i),
            b'{' | b'[' => {
                let mut j = skip_ws(b, i + 1);
                while b[j] != b'}' && b[j] != b']' {
                    if b[i] == b'{' {
                        j = skip_string(b, j);
                        j = skip_ws(b, j) + 1;
                        j = skip_ws(b, j);
                    }
                    j = skip_ws(b, skip_value(b, j));
                    if b[j] == b',' {
                        j = skip_ws(b, j + 1);
                    }
                }
                j + 1
            }
            _ => {
                let mut j = i;
                while j < b.len() && !b",]} \t\r\n".contains(&b[j]) {
                    j += 1;
                }
                j
            }
        }
    }
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut j = skip_ws(b, skip_ws(b, 0) + 1);
    while b[j] != b'}' {
        let key_end = skip_string(b, j);
        let key: String = serde_json::from_str(&body[j..key_end]).unwrap();
        let v = skip_ws(b, skip_ws(b, key_end) + 1);
        let end = skip_value(b, v);
        out.push((key, body[j..end].to_string()));
        j = skip_ws(b, end);
        if b[j] == b',' {
            j = skip_ws(b, j + 1);
        }
    }
    out
}

fn expected_cap(before: Option<&Value>, n: u64) -> Value {
    match before {
        None | Some(Value::Null) => json!(n),
        Some(v) => {
            let f = v.as_f64().unwrap();
            if f > n as f64 {
                json!(n)
            } else {
                v.clone()
            }
        }
    }
}

#[test]
fn generated_bodies_rewrite_to_valid_json_that_changes_only_the_planned_members() {
    let mut rng = SplitMix64::new(0x1234_5678_9abc_def1);
    let endpoints = [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Other,
    ];
    let targets = ["gpt-4o", "claude \"3\"", "模型🙂", "a\\b\nc", ""];
    let mut rewritten = 0;
    for round in 0..5000 {
        let body = gen_body(&mut rng);
        let before: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("generator made invalid JSON {body}: {e}"));
        let before = before.as_object().unwrap();
        let p = match parse(body.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("round {round}: {body:?} refused: {e}"),
        };
        assert_eq!(p.model(), before.get("model").and_then(Value::as_str));
        assert_eq!(p.stream(), before.get("stream") == Some(&json!(true)));
        let endpoint = endpoints[rng.below(endpoints.len())];
        let plan = Plan {
            model: if rng.chance(70) {
                Some(targets[rng.below(targets.len())])
            } else {
                None
            },
            max_tokens: if rng.chance(60) {
                Some([0, 1, 100, 4096, u64::MAX][rng.below(5)])
            } else {
                None
            },
            temperature: if rng.chance(50) {
                Some([0.7, 1.0, 0.0, 2.5][rng.below(4)])
            } else {
                None
            },
            system_prompt: if rng.chance(50) {
                Some(targets[rng.below(targets.len())])
            } else {
                None
            },
            include_usage: rng.chance(60),
        };
        let out = rewrite(body.as_bytes(), &p, endpoint, &plan).unwrap();
        // The prefix form is the same edit: its prefix + the untouched rest = the body.
        let pre = rewrite_prefix(body.as_bytes(), &p, endpoint, &plan).unwrap();
        assert_eq!(pre.client_asked_usage, out.client_asked_usage);
        match (&pre.splice, &out.body) {
            (None, None) => {}
            (Some((replaced, prefix)), Some(whole)) => {
                assert!(*replaced <= body.len());
                assert_eq!(&whole[..prefix.len()], &prefix[..]);
                assert_eq!(&whole[prefix.len()..], &body.as_bytes()[*replaced..]);
            }
            other => panic!("prefix {other:?} disagrees for {body}"),
        }
        assert_eq!(
            out.client_asked_usage,
            before
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                == Some(&json!(true))
        );
        let changed = out.body.is_some();
        let text = match out.body {
            Some(b) => {
                rewritten += 1;
                assert_eq!(b.capacity(), b.len());
                String::from_utf8(b).unwrap()
            }
            None => body.clone(),
        };
        let after: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("round {round}: invalid output {text}\nfrom {body}\n{e}"));
        let after = after.as_object().unwrap();
        // Our own parser agrees with the output too.
        let again = parse(text.as_bytes()).unwrap();

        // model
        match plan.model {
            Some(m) => {
                assert_eq!(after["model"], json!(m));
                assert_eq!(again.model(), Some(m));
            }
            None => assert_eq!(after.get("model"), before.get("model")),
        }
        // token limits
        let n = plan.max_tokens;
        let capped: &[&str] = match (n, endpoint) {
            (None, _) | (_, Endpoint::Embeddings | Endpoint::Other) => &[],
            (_, Endpoint::Chat) => &["max_completion_tokens", "max_tokens"],
            (_, Endpoint::Completions) => &["max_tokens"],
            (_, Endpoint::Responses) => &["max_output_tokens"],
        };
        for field in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            let expected = if !capped.contains(&field) {
                before.get(field).cloned()
            } else if endpoint == Endpoint::Chat
                && !before.contains_key("max_tokens")
                && !before.contains_key("max_completion_tokens")
            {
                (field == "max_tokens").then(|| json!(n.unwrap()))
            } else if endpoint == Endpoint::Chat && !before.contains_key(field) {
                None
            } else {
                Some(expected_cap(before.get(field), n.unwrap()))
            };
            assert_eq!(
                after.get(field),
                expected.as_ref(),
                "{field} in {text}\nfrom {body}"
            );
        }
        // temperature
        let generates = matches!(
            endpoint,
            Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
        );
        match (plan.temperature, before.get("temperature")) {
            (Some(t), None | Some(Value::Null)) if generates => {
                // Written as Rust prints it: 1.0 as `1`, so compare numerically.
                assert_eq!(after["temperature"].as_f64(), Some(t));
            }
            (_, v) => assert_eq!(after.get("temperature"), v),
        }
        // messages
        match (plan.system_prompt, endpoint, before.get("messages")) {
            (Some(s), Endpoint::Chat, Some(Value::Array(old))) => {
                let new = after["messages"].as_array().unwrap();
                assert_eq!(new[0], json!({"role":"system","content":s}));
                assert_eq!(new[1..], old[..]);
            }
            _ => assert_eq!(after.get("messages"), before.get("messages")),
        }
        // stream_options
        let wants = plan.include_usage
            && p.stream()
            && matches!(endpoint, Endpoint::Chat | Endpoint::Completions);
        match (wants, before.get("stream_options")) {
            (true, None | Some(Value::Null)) => {
                assert_eq!(after["stream_options"], json!({"include_usage":true}));
            }
            (true, Some(Value::Object(old))) => {
                let mut old = old.clone();
                old.insert("include_usage".into(), json!(true));
                assert_eq!(after["stream_options"], Value::Object(old));
            }
            (_, old) => assert_eq!(after.get("stream_options"), old),
        }
        // Every other member: same value, and the very same bytes.
        let edited = [
            "model",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "temperature",
            "messages",
            "stream_options",
        ];
        for (k, v) in before {
            if !edited.contains(&k.as_str()) {
                assert_eq!(after.get(k), Some(v));
            }
        }
        let keep = |members: Vec<(String, String)>| -> Vec<(String, String)> {
            members
                .into_iter()
                .filter(|(k, _)| !edited.contains(&k.as_str()))
                .collect()
        };
        assert_eq!(
            keep(raw_members(&text)),
            keep(raw_members(&body)),
            "{text}\nfrom {body}"
        );
        // Members edited in place keep their key bytes and position; added ones come first.
        let old_keys: Vec<String> = raw_members(&body).into_iter().map(|(k, _)| k).collect();
        let new_keys: Vec<String> = raw_members(&text).into_iter().map(|(k, _)| k).collect();
        let added = new_keys.len() - old_keys.len();
        assert_eq!(new_keys[added..], old_keys[..]);
        assert_eq!(after.len(), new_keys.len(), "no duplicate keys in {text}");
        // A rewritten body really differs (None means unchanged).
        assert_eq!(changed, text != body);
    }
    assert!(rewritten > 2000, "only {rewritten} bodies were rewritten");
}
