//! Per-model behaviour set at run time through `POST /__control`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Control {
    pub fail_models: BTreeMap<String, u16>,
    pub delay_models: BTreeMap<String, u64>,
    pub reset_models: BTreeSet<String>,
}

impl Control {
    /// Parses `{"fail_models": {M: STATUS}, "delay_models": {M: MS}, "reset_models": [M]}`.
    /// Every field is optional; unknown fields are rejected (typos would otherwise heal).
    pub fn from_json(v: &Value) -> Result<Control, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "control body must be a JSON object".to_string())?;
        let mut c = Control::default();
        for (key, val) in obj {
            match key.as_str() {
                "fail_models" => {
                    for (m, s) in as_map(key, val)? {
                        let status =
                            s.as_u64()
                                .filter(|s| (200..=599).contains(s))
                                .ok_or_else(|| {
                                    format!("fail_models[{m:?}] must be a status 200..=599")
                                })?;
                        c.fail_models.insert(m.clone(), status as u16);
                    }
                }
                "delay_models" => {
                    for (m, d) in as_map(key, val)? {
                        let ms = d.as_u64().ok_or_else(|| {
                            format!("delay_models[{m:?}] must be a non-negative integer (ms)")
                        })?;
                        c.delay_models.insert(m.clone(), ms);
                    }
                }
                "reset_models" => {
                    let arr = val
                        .as_array()
                        .ok_or_else(|| "reset_models must be an array of strings".to_string())?;
                    for m in arr {
                        let m = m.as_str().ok_or_else(|| {
                            "reset_models must be an array of strings".to_string()
                        })?;
                        c.reset_models.insert(m.to_string());
                    }
                }
                other => return Err(format!("unknown control field: {other:?}")),
            }
        }
        Ok(c)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "fail_models": self.fail_models,
            "delay_models": self.delay_models,
            "reset_models": self.reset_models,
        })
    }
}

fn as_map<'a>(key: &str, v: &'a Value) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{key} must be an object of model -> number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render() {
        let v =
            json!({"fail_models": {"a": 503}, "delay_models": {"b": 20}, "reset_models": ["c"]});
        let c = Control::from_json(&v).unwrap();
        assert_eq!(c.fail_models.get("a"), Some(&503));
        assert_eq!(c.delay_models.get("b"), Some(&20));
        assert!(c.reset_models.contains("c"));
        assert_eq!(c.to_json(), v);
        assert_eq!(Control::from_json(&json!({})).unwrap(), Control::default());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            json!([]),
            json!({"fail_models": {"a": 99}}),
            json!({"fail_models": {"a": "503"}}),
            json!({"delay_models": {"a": -1}}),
            json!({"reset_models": "a"}),
            json!({"reset_models": [1]}),
            json!({"fail_model": {}}),
        ] {
            assert!(Control::from_json(&bad).is_err(), "{bad}");
        }
    }
}
