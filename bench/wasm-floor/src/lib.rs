//! See Cargo.toml: the gateway's host calls without the gateway, feature by feature.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

#[derive(Clone, Copy, Default)]
struct Features {
    hold: bool,
    read: bool,
    copy: bool,
    /// Read the body, then replace only its first 15 bytes (`{"model":"chat"`) with
    /// `{"model":"gpt-4.1"`: proxy_set_buffer_bytes(start 0, length 15) drains 15 bytes and
    /// prepends the new ones, so the rest of the body is never copied out of the VM.
    splice: bool,
    headers: bool,
    resp: bool,
    metrics: bool,
    shared: bool,
    property: bool,
    time: bool,
    /// Repeated calls of one kind per request (`clock100`, `metric100`, `property100`,
    /// `shared100`, `header100` in `on_log`; `qset100` in the request-body callback; `rset100`,
    /// `radd100`, `rmap100`, `propset100`, `propabsent100`, `sharedget100` in the
    /// response-headers callback, after one read of the response header map): the cost of one
    /// host call, by difference.
    repeat: Option<(Repeat, u32)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Repeat {
    Clock,
    Metric,
    Property,
    Shared,
    Header,
    RespSet,
    RespMap,
    PropSet,
    PropAbsent,
    SharedGet,
    RespAdd,
    ReqSet,
}

impl Features {
    fn parse(s: &str) -> Features {
        let mut f = Features::default();
        for word in s.split(',').map(str::trim) {
            match word {
                "hold" => f.hold = true,
                "read" => (f.hold, f.read) = (true, true),
                "copy" => (f.hold, f.read, f.copy) = (true, true, true),
                "splice" => (f.hold, f.read, f.splice) = (true, true, true),
                "headers" => f.headers = true,
                "resp" => f.resp = true,
                "metrics" => f.metrics = true,
                "shared" => f.shared = true,
                "property" => f.property = true,
                "time" => f.time = true,
                "full" => {
                    f = Features {
                        hold: true,
                        read: true,
                        copy: true,
                        splice: false,
                        headers: true,
                        resp: true,
                        metrics: true,
                        shared: true,
                        property: true,
                        time: true,
                        repeat: None,
                    }
                }
                w => {
                    let split = w.find(|c: char| c.is_ascii_digit()).unwrap_or(w.len());
                    let n: u32 = w[split..].parse().unwrap_or(0);
                    let kind = match &w[..split] {
                        "clock" => Some(Repeat::Clock),
                        "metric" => Some(Repeat::Metric),
                        "property" => Some(Repeat::Property),
                        "shared" => Some(Repeat::Shared),
                        "header" => Some(Repeat::Header),
                        "rset" => Some(Repeat::RespSet),
                        "rmap" => Some(Repeat::RespMap),
                        "propset" => Some(Repeat::PropSet),
                        "propabsent" => Some(Repeat::PropAbsent),
                        "sharedget" => Some(Repeat::SharedGet),
                        "radd" => Some(Repeat::RespAdd),
                        "qset" => Some(Repeat::ReqSet),
                        _ => None,
                    };
                    if let Some(k) = kind {
                        f.repeat = Some((k, n));
                    }
                }
            }
        }
        f
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    features: Features,
    metric_ids: [u32; 6],
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let cfg = self.get_plugin_configuration().unwrap_or_default();
        self.features = Features::parse(std::str::from_utf8(&cfg).unwrap_or(""));
        if self.features.metrics || self.features.repeat.is_some() {
            for (i, id) in self.metric_ids.iter_mut().enumerate() {
                let kind = if i == 5 {
                    MetricType::Histogram
                } else {
                    MetricType::Counter
                };
                *id = hostcalls::define_metric(kind, &format!("floor_metric_{i}")).unwrap_or(0);
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            f: self.features,
            metric_ids: self.metric_ids,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    f: Features,
    metric_ids: [u32; 6],
}

impl Context for Http {}

fn now() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.f.time {
            now();
        }
        if self.f.headers {
            for h in [
                "x-ai-gateway-cluster",
                "x-envoy-upstream-rq-timeout-ms",
                "x-envoy-upstream-rq-per-try-timeout-ms",
                "x-envoy-max-retries",
                "x-envoy-retry-on",
            ] {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, h);
            }
            for h in [":method", ":path", "content-encoding", "x-user-id"] {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, h);
            }
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "accept-encoding");
        }
        if !self.f.hold || end_of_stream {
            return Action::Continue;
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.f.hold {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if self.f.shared {
            let _ = hostcalls::get_shared_data("floor.generation");
        }
        if let Some((kind, n)) = self.f.repeat {
            for i in 0..n {
                match kind {
                    Repeat::ReqSet => {
                        let _ = hostcalls::set_map_value(
                            MapType::HttpRequestHeaders,
                            "x-envoy-max-retries",
                            Some(if i % 2 == 0 { "2" } else { "3" }),
                        );
                    }
                    _ => {}
                }
            }
        }
        if self.f.time {
            now();
        }
        if self.f.read {
            if let Ok(Some(body)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            {
                const OLD: &[u8] = br#"{"model":"chat""#;
                const NEW: &str = r#"{"model":"gpt-4.1""#;
                if self.f.splice && body.starts_with(OLD) {
                    let _ = hostcalls::set_buffer(
                        BufferType::HttpRequestBody,
                        0,
                        OLD.len(),
                        NEW.as_bytes(),
                    );
                    let len = body.len() - OLD.len() + NEW.len();
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "content-length",
                        Some(&len.to_string()),
                    );
                }
                if self.f.copy {
                    let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &body);
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "content-length",
                        Some(&body.len().to_string()),
                    );
                }
            }
        }
        for (h, v) in [
            ("authorization", "Bearer sk-bench-provider-key"),
            ("x-ai-gateway-cluster", "mock"),
            ("x-envoy-upstream-rq-timeout-ms", "30000"),
        ] {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, h, Some(v));
        }
        if self.f.metrics {
            let _ = hostcalls::increment_metric(self.metric_ids[0], 1);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some((kind, n)) = self.f.repeat {
            let pairs = hostcalls::get_map(MapType::HttpResponseHeaders).unwrap_or_default();
            let mut with: Vec<(String, String)> = pairs.clone();
            for (h, v) in [
                ("x-ai-gateway-model", "gpt-4.1"),
                ("x-ai-gateway-version", "1.0.0"),
                ("x-ai-gateway-route", "chat"),
                ("x-ai-gateway-attempts", "1"),
            ] {
                with.push((h.to_string(), v.to_string()));
            }
            let refs: Vec<(&str, &str)> =
                with.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let state = [7u8; 114];
            let _ = hostcalls::set_shared_data("floor.breaker2", Some(&state), None);
            for i in 0..n {
                match kind {
                    Repeat::RespSet => {
                        let _ = hostcalls::set_map_value(
                            MapType::HttpResponseHeaders,
                            "x-ai-gateway-model",
                            Some(if i % 2 == 0 { "gpt-4.1" } else { "gpt-4.2" }),
                        );
                    }
                    Repeat::RespMap => {
                        let _ = hostcalls::set_map(MapType::HttpResponseHeaders, refs.clone());
                    }
                    Repeat::PropSet => {
                        let _ = hostcalls::set_property(vec!["floor_p"], Some(&[b'x'; 150]));
                    }
                    Repeat::PropAbsent => {
                        let _ = hostcalls::get_property(vec!["floor_absent"]);
                    }
                    Repeat::SharedGet => {
                        let _ = hostcalls::get_shared_data("floor.breaker2");
                    }
                    Repeat::RespAdd => {
                        let _ = hostcalls::add_map_value(
                            MapType::HttpResponseHeaders,
                            if i % 2 == 0 { "x-a" } else { "x-b" },
                            "gpt-4.1",
                        );
                    }
                    _ => {}
                }
            }
        }
        if self.f.resp {
            for (h, v) in [
                ("x-ai-gateway-model", "gpt-4.1"),
                ("x-ai-gateway-version", "1.0.0"),
                ("x-ai-gateway-route", "chat"),
            ] {
                let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, h, Some(v));
            }
            for h in [":status", "content-encoding", "content-type"] {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, h);
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if self.f.resp && body_size > 0 {
            let _ = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some((kind, n)) = self.f.repeat {
            for _ in 0..n {
                match kind {
                    Repeat::Clock => {
                        now();
                    }
                    Repeat::Metric => {
                        let _ = hostcalls::increment_metric(self.metric_ids[0], 1);
                    }
                    Repeat::Property => {
                        let _ = hostcalls::get_property(vec!["response", "code"]);
                    }
                    Repeat::Shared => {
                        let _ = hostcalls::get_shared_data("floor.generation");
                    }
                    Repeat::Header => {
                        let _ =
                            hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
                    }
                    _ => {}
                }
            }
        }
        if self.f.time {
            now();
        }
        if self.f.property {
            let _ = hostcalls::get_property(vec!["response", "code"]);
            let _ = hostcalls::get_property(vec!["response", "code_details"]);
        }
        if self.f.metrics {
            for id in &self.metric_ids[1..5] {
                let _ = hostcalls::increment_metric(*id, 1);
            }
            let _ = hostcalls::record_metric(self.metric_ids[5], 7);
        }
        if self.f.shared {
            let state = [0u8; 114];
            let cas = match hostcalls::get_shared_data("floor.breaker") {
                Ok((_, Some(cas))) => cas,
                _ => 0,
            };
            let _ = hostcalls::set_shared_data("floor.breaker", Some(&state), Some(cas));
        }
    }
}
