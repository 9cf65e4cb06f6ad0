//! `GET /v1/models`, answered by the gateway itself in OpenAI list format: the routes
//! (aliases) and the model names a client may request. Rendered once per configuration.

use crate::config::Config;
use serde::Serialize;

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

pub fn render(cfg: &Config) -> Vec<u8> {
    let list = List {
        object: "list",
        data: cfg
            .served_names()
            .map(|id| Entry {
                id,
                object: "model",
                created: 0,
                owned_by: "ai-gateway",
            })
            .collect(),
    };
    serde_json::to_vec(&list).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    #[test]
    fn lists_routes_and_models_in_openai_format() {
        let cfg = crate::config::parse(
            br#"{"models":[{"name":"gpt-4.1","version":"1.0.0","weight":1},
                           {"name":"deepseek-v3.2","version":"2.0.0-canary.1"}],
                 "routes":[{"name":"chat","targets":[{"model":"gpt-4.1","weight":1}]}]}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&render(&cfg)).unwrap();
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["chat", "gpt-4.1"]);
        assert_eq!(v["data"][0]["object"], "model");
    }
}
