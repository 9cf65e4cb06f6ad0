//! Rewriting the output-token limits (capped per endpoint) and the default `temperature`.

use super::*;
use crate::testing::test;

#[test]
fn number_comparison_is_exact() {
    use crate::body::number::exceeds;
    let n = 4096;
    for (text, expected) in [
        ("4096", false),
        ("4097", true),
        ("4095", false),
        ("0", false),
        ("-0", false),
        ("-5000", false),
        ("-1e400", false),
        ("4096.0", false),
        ("4096.5", true),
        ("4096.0000000000001", true),
        ("4095.9999", false),
        ("40.96e2", false),
        ("40.961e2", true),
        ("4.096E3", false),
        ("4.0961E+3", true),
        ("409600e-2", false),
        ("409601e-2", true),
        ("0.4096e4", false),
        ("0.000004097e9", true),
        ("1e400", true),
        ("1e4", true),
        ("1e3", false),
        ("1e-400", false),
        ("99999999999999999999999", true),
        ("18446744073709551616", true),
        ("0.00000", false),
        ("0e999999999999999999", false),
        ("5e99999999999999999999999", true),
        ("5e-99999999999999999999999", false),
        ("00004097", true), // not valid JSON, but harmless
    ] {
        assert_eq!(exceeds(text.as_bytes(), n), expected, "{text} > {n}");
    }
    assert!(!exceeds(b"18446744073709551615", u64::MAX));
    assert!(exceeds(b"18446744073709551615.5", u64::MAX));
    assert!(exceeds(b"18446744073709551616", u64::MAX));
    assert!(exceeds(b"9007199254740993", 9_007_199_254_740_992));
    assert!(exceeds(b"0.5", 0));
    assert!(exceeds(b"1e-300", 0));
    assert!(!exceeds(b"0.0", 0));
    assert!(!exceeds(b"", 0));
    assert!(!exceeds(b"garbage", 0));
}

#[test]
fn chat_caps_max_completion_tokens_and_max_tokens_when_present() {
    assert_eq!(
        rw(
            r#"{"max_completion_tokens":9000,"max_tokens":100}"#,
            Endpoint::Chat,
            &cap(4096)
        )
        .unwrap(),
        r#"{"max_completion_tokens":4096,"max_tokens":100}"#
    );
    assert_eq!(
        rw(
            r#"{"max_completion_tokens":9000,"max_tokens":9e9}"#,
            Endpoint::Chat,
            &cap(4096)
        )
        .unwrap(),
        r#"{"max_completion_tokens":4096,"max_tokens":4096}"#
    );
    assert_eq!(
        rw(r#"{"max_completion_tokens":null}"#, Endpoint::Chat, &cap(7)).unwrap(),
        r#"{"max_completion_tokens":7}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":5000}"#, Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096}"#
    );
}

#[test]
fn chat_adds_max_tokens_when_neither_limit_is_present() {
    assert_eq!(
        rw("{}", Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096}"#
    );
    assert_eq!(
        rw(r#"{"model":"m"}"#, Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096,"model":"m"}"#
    );
}

#[test]
fn smaller_negative_and_equal_limits_are_left_alone() {
    for v in [
        "100",
        "4096",
        "-1",
        "-99999999999999999999",
        "0",
        "4096.0",
        "1e3",
        "-1e400",
    ] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        assert_eq!(rw(&body, Endpoint::Completions, &cap(4096)), None, "{body}");
    }
}

#[test]
fn huge_limits_are_lowered() {
    for v in [
        "1e400",
        "99999999999999999999999",
        "18446744073709551616",
        "4096.5",
        "4.0961e3",
        "1E+10",
    ] {
        let body = format!(r#"{{"max_tokens" : {v} , "x":1}}"#);
        assert_eq!(
            rw(&body, Endpoint::Completions, &cap(4096)).unwrap(),
            r#"{"max_tokens" : 4096 , "x":1}"#,
            "{body}"
        );
    }
}

#[test]
fn each_endpoint_caps_its_own_field() {
    let body = r#"{"max_tokens":9000,"max_completion_tokens":9000,"max_output_tokens":9000}"#;
    assert_eq!(
        rw(body, Endpoint::Completions, &cap(10)).unwrap(),
        r#"{"max_tokens":10,"max_completion_tokens":9000,"max_output_tokens":9000}"#
    );
    assert_eq!(
        rw(body, Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_tokens":9000,"max_completion_tokens":9000,"max_output_tokens":10}"#
    );
    assert_eq!(
        rw(body, Endpoint::Chat, &cap(10)).unwrap(),
        r#"{"max_tokens":10,"max_completion_tokens":10,"max_output_tokens":9000}"#
    );
    assert_eq!(rw(body, Endpoint::Embeddings, &cap(10)), None);
    assert_eq!(rw(body, Endpoint::Other, &cap(10)), None);
    assert_eq!(
        rw("{}", Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_output_tokens":10}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":1}"#, Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_output_tokens":10,"max_tokens":1}"#
    );
    assert_eq!(
        rw("{}", Endpoint::Completions, &cap(10)).unwrap(),
        r#"{"max_tokens":10}"#
    );
    assert_eq!(rw("{}", Endpoint::Embeddings, &cap(10)), None);
}

#[test]
fn a_null_limit_is_set() {
    assert_eq!(
        rw(
            r#"{"max_output_tokens": null }"#,
            Endpoint::Responses,
            &cap(3)
        )
        .unwrap(),
        r#"{"max_output_tokens": 3 }"#
    );
}

#[test]
fn a_limit_that_is_not_a_number_is_refused_where_it_is_capped() {
    for v in ["\"100\"", "true", "false", "{}", "[1]"] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        assert_eq!(
            rw_err(&body, Endpoint::Completions, &cap(10)),
            BodyError::NotANumber("max_tokens")
        );
        assert_eq!(
            rw_err(&body, Endpoint::Chat, &cap(10)),
            BodyError::NotANumber("max_tokens")
        );
        // Not capped there: left to the provider.
        assert_eq!(rw(&body, Endpoint::Embeddings, &cap(10)), None);
        assert_eq!(
            rw(&body, Endpoint::Responses, &cap(10)).unwrap(),
            format!(r#"{{"max_output_tokens":10,"max_tokens":{v}}}"#)
        );
        // No cap planned: nothing is checked.
        assert_eq!(rw(&body, Endpoint::Completions, &Plan::default()), None);
    }
    assert_eq!(
        rw_err(r#"{"max_completion_tokens":"9"}"#, Endpoint::Chat, &cap(10)),
        BodyError::NotANumber("max_completion_tokens")
    );
    assert_eq!(
        rw_err(r#"{"max_output_tokens":[]}"#, Endpoint::Responses, &cap(10)),
        BodyError::NotANumber("max_output_tokens")
    );
}

#[test]
fn the_cap_can_be_u64_max_or_zero() {
    assert_eq!(
        rw("{}", Endpoint::Completions, &cap(u64::MAX)).unwrap(),
        r#"{"max_tokens":18446744073709551615}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":1}"#, Endpoint::Completions, &cap(0)).unwrap(),
        r#"{"max_tokens":0}"#
    );
}

fn temp(t: f64) -> Plan<'static> {
    Plan {
        temperature: Some(t),
        ..Plan::default()
    }
}

#[test]
fn temperature_is_added_when_absent() {
    assert_eq!(
        rw("{}", Endpoint::Chat, &temp(0.7)).unwrap(),
        r#"{"temperature":0.7}"#
    );
    assert_eq!(
        rw(r#"{"a":1}"#, Endpoint::Completions, &temp(1.0)).unwrap(),
        r#"{"temperature":1,"a":1}"#
    );
    assert_eq!(
        rw(r#"{"a":1}"#, Endpoint::Responses, &temp(0.0)).unwrap(),
        r#"{"temperature":0,"a":1}"#
    );
    for t in [0.7, 1.0, 0.0, -0.0, 2.0, 1e-7, 0.1 + 0.2, 1e300, 123.456] {
        let out = rw("{}", Endpoint::Chat, &temp(t)).unwrap();
        assert_eq!(json_of(&out)["temperature"].as_f64(), Some(t), "{out}");
    }
}

#[test]
fn a_null_temperature_is_set_and_a_present_one_kept() {
    assert_eq!(
        rw(r#"{"temperature":null,"b":2}"#, Endpoint::Chat, &temp(0.5)).unwrap(),
        r#"{"temperature":0.5,"b":2}"#
    );
    for v in ["0", "1.5", "\"hot\"", "true", "{}"] {
        let body = format!(r#"{{"temperature":{v}}}"#);
        assert_eq!(rw(&body, Endpoint::Chat, &temp(0.5)), None, "{body}");
    }
}

#[test]
fn temperature_is_only_for_generating_endpoints_and_finite_values() {
    assert_eq!(rw("{}", Endpoint::Embeddings, &temp(0.5)), None);
    assert_eq!(rw("{}", Endpoint::Other, &temp(0.5)), None);
    for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(rw("{}", Endpoint::Chat, &temp(t)), None);
    }
}
