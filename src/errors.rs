//! Errors the gateway answers itself, as OpenAI-style JSON bodies
//! `{"error":{"message","type","code"}}` (docs/design.md, "Request path"). Each error has one
//! code, used as the body's `code`, the `reason` label of `ai_gateway_rejected_total` and, with
//! an `ai_gateway_` prefix, Envoy's response details (`%RESPONSE_CODE_DETAILS%`).

use crate::metrics::RejectReason;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The body is not JSON, not an object, or a field has the wrong type.
    InvalidRequest(String),
    /// An unknown model with `unknown_models: reject`.
    ModelNotFound(String),
    /// Every target of the route has an open circuit.
    NoHealthyTarget { route: String, retry_after_s: u64 },
    /// The provider key is missing from the VM environment (or unusable as a header).
    Misconfigured,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
}

impl GatewayError {
    pub fn status(&self) -> u32 {
        match self {
            GatewayError::InvalidRequest(_) | GatewayError::ModelNotFound(_) => 400,
            GatewayError::NoHealthyTarget { .. } => 503,
            GatewayError::Misconfigured => 500,
        }
    }

    /// The `reason` label of the rejected-requests counter.
    pub fn reject_reason(&self) -> RejectReason {
        match self {
            GatewayError::InvalidRequest(_) => RejectReason::InvalidRequest,
            GatewayError::ModelNotFound(_) => RejectReason::ModelNotFound,
            GatewayError::NoHealthyTarget { .. } => RejectReason::NoHealthyTarget,
            GatewayError::Misconfigured => RejectReason::Misconfigured,
        }
    }

    /// The OpenAI error `code`: the same string as the reject reason's label.
    pub fn code(&self) -> &'static str {
        self.reject_reason().label()
    }

    /// Envoy's response details for the local reply (`ai_gateway_<code>`, except for
    /// `gateway_misconfigured`, whose details have always been `ai_gateway_misconfigured`).
    pub fn details(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) => "ai_gateway_invalid_request",
            GatewayError::ModelNotFound(_) => "ai_gateway_model_not_found",
            GatewayError::NoHealthyTarget { .. } => "ai_gateway_no_healthy_target",
            GatewayError::Misconfigured => "ai_gateway_misconfigured",
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) | GatewayError::ModelNotFound(_) => {
                "invalid_request_error"
            }
            GatewayError::NoHealthyTarget { .. } => "service_unavailable",
            GatewayError::Misconfigured => "server_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            GatewayError::InvalidRequest(m) => m.clone(),
            GatewayError::ModelNotFound(model) => format!(
                "The model {model:?} does not exist or is not served by this gateway (GET /v1/models lists what is)"
            ),
            GatewayError::NoHealthyTarget { route, .. } => format!(
                "Every model of route {route:?} is failing right now (circuit open); retry later"
            ),
            GatewayError::Misconfigured => {
                "The gateway has no provider credentials configured; contact its operator".into()
            }
        }
    }

    /// `retry-after` seconds, for errors a client should retry later.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            GatewayError::NoHealthyTarget { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// The JSON body (`content-type: application/json`).
    pub fn body(&self) -> Vec<u8> {
        let message = self.message();
        let body = Body {
            error: Detail {
                message: &message,
                kind: self.kind(),
                code: self.code(),
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    fn parsed(e: &GatewayError) -> serde_json::Value {
        serde_json::from_slice(&e.body()).unwrap()
    }

    #[test]
    fn renders_an_openai_style_error_body() {
        let e = GatewayError::InvalidRequest("request body must be a JSON object".into());
        assert_eq!(e.status(), 400);
        assert_eq!(
            parsed(&e),
            serde_json::json!({"error": {
                "message": "request body must be a JSON object",
                "type": "invalid_request_error",
                "code": "invalid_request"}})
        );
    }

    #[test]
    fn escapes_client_text_in_the_message() {
        let e = GatewayError::ModelNotFound("a\"b\n<c>".into());
        let v = parsed(&e);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a\\\"b\\n<c>"));
        assert_eq!(v["error"]["code"], "model_not_found");
    }

    #[test]
    fn maps_every_case_to_the_spec_status_and_code() {
        let cases = [
            (
                GatewayError::InvalidRequest(String::new()),
                400,
                "invalid_request",
            ),
            (
                GatewayError::ModelNotFound(String::new()),
                400,
                "model_not_found",
            ),
            (
                GatewayError::NoHealthyTarget {
                    route: "chat".into(),
                    retry_after_s: 7,
                },
                503,
                "no_healthy_target",
            ),
            (GatewayError::Misconfigured, 500, "gateway_misconfigured"),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status(), e.code()), (status, code));
            assert_eq!(parsed(&e)["error"]["code"], code);
        }
        assert_eq!(
            GatewayError::NoHealthyTarget {
                route: "r".into(),
                retry_after_s: 7
            }
            .retry_after_s(),
            Some(7)
        );
    }
}
