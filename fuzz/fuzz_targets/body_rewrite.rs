//! The request body: `body::parse` then `body::rewrite`, on any bytes.
//!
//! Input: byte 0 picks the endpoint and the target model name, byte 1 the extra parameters
//! of the second plan; the rest is the body.
//!
//! Checked (besides "never panics"):
//! 1. `parse` agrees with an independent strict parser (serde_json): it accepts exactly the
//!    valid JSON texts, and among them returns the documented error for each case (BOM, empty,
//!    not an object, duplicate tracked key, non-string `model`, non-boolean `stream`, ...).
//! 2. A model-only rewrite always succeeds; its output is valid JSON whose decoded `model` is
//!    the target, every other byte of the body unchanged (prefix and suffix of the old value,
//!    or the body with one member added right after its `{`).
//! 3. A full plan (caps, temperature, system prompt, include_usage): output valid JSON, model
//!    the target, every member the plan doesn't touch byte-identical and in order, touched
//!    members changed only as documented; members the gateway adds come first.
//! 4. The prefix form (`rewrite_prefix`, what the filter hands Envoy) is the same edit: its
//!    prefix followed by the body from the replaced length on is the whole rewrite.
#![no_main]

use ai_gateway_filter::body::{self, BodyError, Endpoint, Parsed, Plan};
use fuzz_support::{end_of_string, members, serde_valid, skip_ws, RawMember};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::Chat,
    Endpoint::Completions,
    Endpoint::Embeddings,
    Endpoint::Responses,
    Endpoint::Other,
];

/// Target names, including ones that need escaping in JSON.
const MODELS: [&str; 8] = [
    "gpt-4.1",
    "claude-sonnet-4.5",
    "",
    "quote\"back\\slash/solidus",
    "ctl\u{0}\u{1}\u{1f}\n\r\t\u{8}\u{c}\u{7f}",
    "ünïcødé-模型-😀",
    "\u{2028}\u{2029}</script>",
    "model",
];

const PROMPTS: [&str; 4] = [
    "You are a concise assistant.",
    "",
    "line1\nline2 \"quoted\" \\ \u{1} 😀",
    "{\"role\":\"user\"}",
];

const CAPS: [u64; 5] = [0, 1, 4096, 1_000_000_000_000, u64::MAX];

const TEMPS: [f64; 7] = [
    0.7,
    0.0,
    -0.0,
    1e300,
    f64::MIN_POSITIVE,
    f64::NAN,
    f64::INFINITY,
];

/// Members a full plan may change (or add, right after the opening brace).
const TOUCHABLE: [&str; 7] = [
    "model",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "temperature",
    "messages",
    "stream_options",
];

/// Tracked top-level keys (a duplicate of one of them is an error).
const TRACKED: [&str; 8] = body::TRACKED_KEYS;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        let _ = body::parse(data);
        return;
    }
    let (c0, c1, raw) = (data[0], data[1], &data[2..]);
    let result = body::parse(raw);
    check_parse(raw, &result);
    let Ok(parsed) = result else {
        return;
    };
    let endpoint = ENDPOINTS[usize::from(c0 % 5)];
    let model = MODELS[usize::from(c0 / 5) % MODELS.len()];
    check_model_only(raw, &parsed, endpoint, model);

    let plan = Plan {
        model: Some(model),
        max_tokens: (c1 & 0x01 != 0).then(|| CAPS[usize::from(c1 >> 1) % CAPS.len()]),
        temperature: (c1 & 0x08 != 0).then(|| TEMPS[usize::from(c1 >> 4) % TEMPS.len()]),
        system_prompt: (c1 & 0x40 != 0).then(|| PROMPTS[usize::from(c1 >> 2) % PROMPTS.len()]),
        include_usage: c1 & 0x80 != 0,
    };
    check_full_plan(raw, &parsed, endpoint, &plan);
    check_prefix(raw, &parsed, endpoint, &plan);
});

/// 4. The prefix form is the same edit as the whole rewrite.
fn check_prefix(raw: &[u8], parsed: &Parsed<'_>, endpoint: Endpoint, plan: &Plan<'_>) {
    let whole = body::rewrite(raw, parsed, endpoint, plan);
    let prefix = body::rewrite_prefix(raw, parsed, endpoint, plan);
    match (whole, prefix) {
        (Ok(w), Ok(p)) => {
            assert_eq!(w.client_asked_usage, p.client_asked_usage);
            match (w.body, p.splice) {
                (None, None) => {}
                (Some(w), Some((replaced, prefix))) => {
                    assert!(replaced <= raw.len(), "replaced past the end");
                    let mut joined = prefix;
                    joined.extend_from_slice(&raw[replaced..]);
                    assert_eq!(joined, w, "prefix + rest is not the whole rewrite");
                }
                (w, p) => panic!("whole {w:?} and prefix {p:?} disagree"),
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (w, p) => panic!("whole {w:?} and prefix {p:?} disagree"),
    }
}

fn assert_valid_json(out: &[u8], what: &str) {
    if let Some(ok) = serde_valid(out) {
        assert!(
            ok,
            "{what}: the rewritten body is not valid JSON: {:?}",
            String::from_utf8_lossy(out)
        );
    }
}

fn find<'m, 'a>(ms: &'m [RawMember<'a>], name: &str) -> Option<&'m RawMember<'a>> {
    ms.iter().find(|m| m.is(name))
}

/// 1. `parse` against serde_json and the documented order of checks.
fn check_parse(raw: &[u8], result: &Result<Parsed<'_>, BodyError>) {
    if raw.starts_with(b"\xEF\xBB\xBF") {
        assert_eq!(result.as_ref().err(), Some(&BodyError::ByteOrderMark));
        return;
    }
    if skip_ws(raw, 0) == raw.len() {
        assert_eq!(result.as_ref().err(), Some(&BodyError::Empty));
        return;
    }
    let Some(valid) = serde_valid(raw) else {
        return;
    };
    if !valid {
        match result {
            Err(BodyError::Syntax { .. }) => {}
            Err(BodyError::InvalidUtf8 { offset }) => {
                let e = std::str::from_utf8(raw).expect_err("InvalidUtf8 on valid UTF-8");
                assert!(
                    *offset == e.valid_up_to(),
                    "InvalidUtf8 at {offset}, from_utf8 says {}",
                    e.valid_up_to()
                );
            }
            other => panic!(
                "serde_json rejects this body but parse said {other:?}: {:?}",
                String::from_utf8_lossy(raw)
            ),
        }
        return;
    }
    // Valid JSON: the error (if any) must be the documented one.
    let Some(ms) = members(raw) else {
        assert_eq!(
            result.as_ref().err(),
            Some(&BodyError::NotAnObject),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        return;
    };
    let dup: Vec<&str> = TRACKED
        .iter()
        .copied()
        .filter(|k| ms.iter().filter(|m| m.is(k)).count() > 1)
        .collect();
    if !dup.is_empty() {
        match result {
            Err(BodyError::DuplicateKey(k)) => assert!(dup.contains(k), "{k} vs {dup:?}"),
            other => panic!("duplicate {dup:?} but parse said {other:?}"),
        }
        return;
    }
    if let Some(so) = find(&ms, "stream_options") {
        if let Some(inner) = members(so.value) {
            if inner.iter().filter(|m| m.is("include_usage")).count() > 1 {
                assert_eq!(
                    result.as_ref().err(),
                    Some(&BodyError::DuplicateNestedKey(
                        "stream_options.include_usage"
                    ))
                );
                return;
            }
        }
    }
    let model = find(&ms, "model");
    if model.is_some_and(|m| m.value.first() != Some(&b'"')) {
        assert_eq!(result.as_ref().err(), Some(&BodyError::NotAString("model")));
        return;
    }
    let stream = find(&ms, "stream").map(|m| m.value);
    if stream.is_some_and(|v| !matches!(v, b"true" | b"false" | b"null")) {
        assert_eq!(
            result.as_ref().err(),
            Some(&BodyError::NotABoolean("stream"))
        );
        return;
    }
    let parsed = match result {
        Ok(p) => p,
        Err(e) => panic!(
            "a valid body was refused: {e:?}: {:?}",
            String::from_utf8_lossy(raw)
        ),
    };
    match model {
        None => assert_eq!(parsed.model(), None),
        Some(m) => {
            if let Ok(decoded) = serde_json::from_slice::<String>(m.value) {
                assert_eq!(parsed.model(), Some(decoded.as_str()));
            }
        }
    }
    assert_eq!(parsed.stream(), stream == Some(b"true".as_slice()));
    let asked = find(&ms, "stream_options")
        .and_then(|so| members(so.value))
        .and_then(|inner| inner.into_iter().find(|m| m.is("include_usage")))
        .is_some_and(|m| m.value == b"true");
    assert_eq!(parsed.client_asked_usage(), asked);
}

/// 2. Model-only plan: only the model's value changes (or one member is added first).
fn check_model_only(raw: &[u8], parsed: &Parsed<'_>, endpoint: Endpoint, model: &str) {
    let plan = Plan {
        model: Some(model),
        ..Plan::default()
    };
    let r = match body::rewrite(raw, parsed, endpoint, &plan) {
        Ok(r) => r,
        Err(e) => panic!("a model-only rewrite failed: {e:?}"),
    };
    let Some(out) = r.body else {
        assert_eq!(
            parsed.model(),
            Some(model),
            "no change, but the model differs"
        );
        return;
    };
    assert_valid_json(&out, "model-only");
    let reparsed = body::parse(&out).expect("the rewritten body does not parse");
    assert_eq!(reparsed.model(), Some(model));
    let Some(before) = members(raw) else {
        return; // too deep for the cross-check is impossible here: raw parsed fine
    };
    let after = members(&out).expect("output not an object");
    match find(&before, "model") {
        Some(m) => {
            // Everything around the old value is unchanged.
            assert_eq!(&out[..m.value_start], &raw[..m.value_start]);
            let tail = &raw[m.value_end..];
            assert_eq!(&out[out.len() - tail.len()..], tail);
            let new_end = out.len() - tail.len();
            assert_eq!(end_of_string(&out, m.value_start), Some(new_end));
        }
        None => {
            assert_eq!(after.len(), before.len() + 1);
            let first = after.first().expect("no members");
            assert!(first.is("model"));
            for (a, b) in before.iter().zip(&after[1..]) {
                assert_eq!((a.key_raw, a.value), (b.key_raw, b.value));
            }
            // The body up to its `{` and everything after it are unchanged.
            let open = skip_ws(raw, 0) + 1;
            assert_eq!(&out[..open], &raw[..open]);
            let rest = &raw[open..];
            assert_eq!(&out[out.len() - rest.len()..], rest);
        }
    }
}

fn number(v: &[u8]) -> Option<f64> {
    std::str::from_utf8(v).ok()?.parse::<f64>().ok()
}

/// 3. Full plan.
fn check_full_plan(raw: &[u8], parsed: &Parsed<'_>, endpoint: Endpoint, plan: &Plan<'_>) {
    let before = members(raw).expect("a parsed body is an object");
    let cap_field = plan.max_tokens.and(match endpoint {
        Endpoint::Chat => None, // both max_tokens and max_completion_tokens, see below
        Endpoint::Completions => Some("max_tokens"),
        Endpoint::Responses => Some("max_output_tokens"),
        Endpoint::Embeddings | Endpoint::Other => None,
    });
    let capped: Vec<&str> = match (plan.max_tokens, endpoint) {
        (Some(_), Endpoint::Chat) => vec!["max_tokens", "max_completion_tokens"],
        _ => cap_field.into_iter().collect(),
    };
    let not_number = |name: &str| {
        find(&before, name)
            .is_some_and(|m| !matches!(m.value.first(), Some(b'n' | b'-' | b'0'..=b'9')))
    };
    let r = match body::rewrite(raw, parsed, endpoint, plan) {
        Ok(r) => r,
        Err(BodyError::NotANumber(f)) => {
            assert!(
                capped.contains(&f) && not_number(f),
                "NotANumber({f}) unexpected"
            );
            return;
        }
        Err(e) => panic!("rewrite failed with {e:?}"),
    };
    assert!(
        !capped.iter().any(|f| not_number(f)),
        "a non-number cap member was accepted"
    );
    assert_eq!(r.client_asked_usage, parsed.client_asked_usage());
    let out = r.body.unwrap_or_else(|| raw.to_vec());
    assert_valid_json(&out, "full plan");
    let reparsed = body::parse(&out).expect("the rewritten body does not parse");
    assert_eq!(reparsed.model(), plan.model);
    let after = members(&out).expect("output not an object");

    // Untouched members: same bytes, same order, and they come first.
    let untouched = |m: &&RawMember<'_>| !TOUCHABLE.iter().any(|t| m.is(t));
    let b: Vec<_> = before
        .iter()
        .filter(untouched)
        .map(|m| (m.key_raw, m.value))
        .collect();
    let a: Vec<_> = after
        .iter()
        .filter(untouched)
        .map(|m| (m.key_raw, m.value))
        .collect();
    assert_eq!(a, b, "an untouched member changed");
    // Members present before keep their relative order; new ones come first.
    let added = after.len() - before.len();
    for (x, y) in before.iter().zip(&after[added..]) {
        assert_eq!(x.key_raw, y.key_raw, "members were reordered");
    }
    for extra in &after[..added] {
        assert!(
            TOUCHABLE.iter().any(|t| extra.is(t)),
            "unexpected member added: {:?}",
            extra.key
        );
    }

    // Caps.
    if let Some(n) = plan.max_tokens {
        let chat_none = endpoint == Endpoint::Chat
            && find(&before, "max_tokens").is_none()
            && find(&before, "max_completion_tokens").is_none();
        for f in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            let old = find(&before, f).map(|m| m.value);
            let new = find(&after, f).map(|m| m.value);
            let applies = capped.contains(&f) || (chat_none && f == "max_tokens");
            if !applies {
                assert_eq!(old, new, "{f} changed though the plan doesn't cap it here");
                continue;
            }
            let ns = n.to_string();
            match (old, new) {
                // Chat: an absent member of the pair stays absent unless neither is present
                // (then max_tokens is added).
                (None, None) if endpoint == Endpoint::Chat && !(chat_none && f == "max_tokens") => {
                }
                (None, Some(v)) => assert_eq!(v, ns.as_bytes()),
                (Some(b"null"), Some(v)) => assert_eq!(v, ns.as_bytes()),
                (Some(o), Some(v)) if o == v => {
                    // Kept: must not exceed the cap.
                    if let Some(x) = number(o) {
                        assert!(
                            x <= n as f64 || x.to_string() == ns,
                            "{f}={x} kept above cap {n}"
                        );
                    }
                }
                (Some(o), Some(v)) => {
                    assert_eq!(v, ns.as_bytes(), "{f} rewritten to something else");
                    if let Some(x) = number(o) {
                        assert!(x >= n as f64, "{f}={x} lowered to {n}");
                    }
                }
                (o, v) => panic!("{f}: {o:?} -> {v:?}"),
            }
        }
    }

    // Temperature.
    let generates = matches!(
        endpoint,
        Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
    );
    let old_t = find(&before, "temperature").map(|m| m.value);
    let new_t = find(&after, "temperature").map(|m| m.value);
    match plan.temperature.filter(|t| t.is_finite() && generates) {
        Some(t) if matches!(old_t, None | Some(b"null")) => {
            let v = new_t.and_then(number).expect("temperature not set");
            assert_eq!(v.to_bits(), t.to_bits(), "temperature {v} != {t}");
        }
        _ => assert_eq!(old_t, new_t, "temperature changed"),
    }

    // System prompt.
    let old_m = find(&before, "messages").map(|m| m.value);
    let new_m = find(&after, "messages").map(|m| m.value);
    match (plan.system_prompt, endpoint, old_m) {
        (Some(prompt), Endpoint::Chat, Some(old)) if old.first() == Some(&b'[') => {
            let new = new_m.expect("messages vanished");
            let head = br#"[{"role":"system","content":"#;
            assert!(new.starts_with(head), "no system message first");
            let s_end = end_of_string(new, head.len()).expect("system content not a string");
            let content: String =
                serde_json::from_slice(&new[head.len()..s_end]).expect("system content");
            assert_eq!(content, prompt);
            assert_eq!(new.get(s_end), Some(&b'}'));
            let rest = &new[s_end + 1..];
            let nonempty = old.get(skip_ws(old, 1)) != Some(&b']');
            if nonempty {
                assert_eq!(rest.first(), Some(&b','));
                assert_eq!(&rest[1..], &old[1..]);
            } else {
                assert_eq!(rest, &old[1..]);
            }
        }
        _ => assert_eq!(old_m, new_m, "messages changed"),
    }

    // stream_options.include_usage.
    let old_so = find(&before, "stream_options").map(|m| m.value);
    let new_so = find(&after, "stream_options").map(|m| m.value);
    let wants = plan.include_usage
        && parsed.stream()
        && matches!(endpoint, Endpoint::Chat | Endpoint::Completions);
    let so_object = old_so.is_none_or(|v| v == b"null" || v.first() == Some(&b'{'));
    if wants && so_object {
        let new = new_so.expect("stream_options not set");
        let inner = members(new).expect("stream_options not an object");
        let iu: Vec<_> = inner.iter().filter(|m| m.is("include_usage")).collect();
        assert_eq!(iu.len(), 1);
        assert_eq!(iu[0].value, b"true");
        if let Some(old) = old_so.filter(|v| v.first() == Some(&b'{')) {
            // Other members of stream_options are kept, in order.
            let old_inner = members(old).expect("old stream_options");
            let keep = |m: &&RawMember<'_>| !m.is("include_usage");
            let x: Vec<_> = old_inner
                .iter()
                .filter(keep)
                .map(|m| (m.key_raw, m.value))
                .collect();
            let y: Vec<_> = inner
                .iter()
                .filter(keep)
                .map(|m| (m.key_raw, m.value))
                .collect();
            assert_eq!(x, y);
        }
    } else {
        assert_eq!(old_so, new_so, "stream_options changed");
    }
}
