//! Error replies in the format the client's API expects: Ollama's
//! `{"error": "…"}` on `/api`, OpenAI's `{"error": {"message", "type",
//! "param", "code"}}` on `/v1`.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

/// Which API a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ollama,
    OpenAi,
}

impl Dialect {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/v1/") || path == "/v1" {
            Self::OpenAi
        } else {
            Self::Ollama
        }
    }
}

/// Why the gateway refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingKey,
    InvalidKey(&'static str),
    Scope(&'static str),
    ModelNotAllowed(String),
    MissingModel,
    BadRequest(String),
    TooLarge(usize),
    RateLimited {
        what: &'static str,
        retry_after: u64,
    },
    QuotaExhausted {
        retry_after: u64,
    },
    NotFound,
    /// A path the gateway serves, with a method Ollama does not take there;
    /// the methods it does take.
    MethodNotAllowed(&'static str),
    KeyStoreUnavailable,
    Upstream(String),
    Format(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey(_) => StatusCode::UNAUTHORIZED,
            Self::Scope(_) | Self::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::MissingModel | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::QuotaExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::KeyStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) | Self::Format(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::InvalidKey(_) => "invalid_key",
            Self::Scope(_) => "scope",
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::MissingModel | Self::BadRequest(_) => "bad_request",
            Self::TooLarge(_) => "too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::QuotaExhausted { .. } => "quota_exhausted",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::KeyStoreUnavailable => "key_store_unavailable",
            Self::Upstream(_) => "upstream",
            Self::Format(_) => "format",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::MissingKey => {
                "missing API key: send it as 'Authorization: Bearer crl_…' or 'X-API-Key: crl_…'"
                    .into()
            }
            Self::InvalidKey(why) => (*why).to_owned(),
            Self::Scope(why) => (*why).to_owned(),
            Self::ModelNotAllowed(m) => format!(
                "model \"{m}\" is not allowed for this API key; ask your team's owner, or use one of the models GET /api/tags lists"
            ),
            Self::MissingModel => "the request names no model (field \"model\")".into(),
            Self::BadRequest(m) => m.clone(),
            Self::TooLarge(max) => format!("request body is larger than {max} bytes"),
            Self::RateLimited { what, retry_after } => {
                format!("rate limit reached: {what}; retry in {retry_after} s")
            }
            Self::QuotaExhausted { retry_after } => format!(
                "your team's monthly token quota is used up; it renews in {} h",
                retry_after.div_ceil(3600)
            ),
            Self::NotFound => "not found".into(),
            Self::MethodNotAllowed(allow) => format!("method not allowed here; use {allow}"),
            Self::KeyStoreUnavailable => {
                "the key store is unavailable and this key has not been seen before; retry shortly"
                    .into()
            }
            Self::Upstream(m) => format!("Ollama upstream failed: {m}"),
            Self::Format(m) => m.clone(),
        }
    }

    fn openai_type_and_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::MissingKey | Self::InvalidKey(_) => {
                ("invalid_request_error", Some("invalid_api_key"))
            }
            Self::Scope(_) => ("permission_error", Some("insufficient_scope")),
            Self::ModelNotAllowed(_) => ("permission_error", Some("model_not_allowed")),
            Self::MissingModel | Self::BadRequest(_) | Self::TooLarge(_) => {
                ("invalid_request_error", None)
            }
            Self::RateLimited { .. } => ("rate_limit_error", Some("rate_limit_exceeded")),
            Self::QuotaExhausted { .. } => ("insufficient_quota", Some("insufficient_quota")),
            Self::NotFound => ("invalid_request_error", Some("not_found")),
            Self::MethodNotAllowed(_) => ("invalid_request_error", Some("method_not_allowed")),
            Self::KeyStoreUnavailable | Self::Upstream(_) | Self::Format(_) => ("api_error", None),
        }
    }

    /// The reply, in `dialect`'s format.
    pub fn into_response(self, dialect: Dialect) -> Response<Body> {
        let body = match dialect {
            Dialect::Ollama => serde_json::json!({ "error": self.message() }),
            Dialect::OpenAi => {
                let (kind, code) = self.openai_type_and_code();
                serde_json::json!({ "error": {
                    "message": self.message(), "type": kind, "param": null, "code": code,
                }})
            }
        };
        let mut res = Response::new(Body::from(body.to_string()));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        match &self {
            Self::RateLimited { retry_after, .. } | Self::QuotaExhausted { retry_after } => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::MethodNotAllowed(allow) => {
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::MissingKey | Self::InvalidKey(_) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"corral\""),
                );
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_follow_the_clients_api() {
        let r = Refusal::RateLimited {
            what: "requests per minute for this key",
            retry_after: 12,
        };
        let res = r.clone().into_response(Dialect::Ollama);
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::RETRY_AFTER], "12");
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("rate limit"));

        let res = r.into_response(Dialect::OpenAi);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert!(v["error"]["param"].is_null());
        assert_eq!(Dialect::of("/v1/chat/completions"), Dialect::OpenAi);
        assert_eq!(Dialect::of("/api/chat"), Dialect::Ollama);
    }
}
