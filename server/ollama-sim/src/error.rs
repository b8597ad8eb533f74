//! Error answers in the two dialects the simulator speaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Which API family a request came through: it decides how errors look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `/api/*`: `{"error": "…"}`.
    Ollama,
    /// `/v1/*`: `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
}

/// An error answer: a status and Ollama's message for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Ollama's usual answer for a model that is not installed.
    pub(crate) fn model_not_found(model: &str) -> Self {
        Self::not_found(format!("model '{model}' not found"))
    }

    /// What an injected [`crate::Fault::Error`] answers with that status.
    pub(crate) fn injected(status: StatusCode) -> Self {
        let message = match status.as_u16() {
            400 => "invalid request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "model not found",
            429 => "too many requests",
            500 => "an error was encountered while running the model",
            502 => "bad gateway",
            503 => "server busy, please try again.  maximum pending requests exceeded",
            504 => "gateway timeout",
            _ => "simulated failure",
        };
        Self::new(status, message)
    }

    /// The response in `dialect`.
    pub(crate) fn into_response_as(self, dialect: Dialect) -> Response {
        match dialect {
            Dialect::Ollama => json_response(self.status, &json!({ "error": self.message })),
            Dialect::OpenAi => {
                // openai.NewError: the type follows the status.
                let kind = match self.status {
                    StatusCode::BAD_REQUEST => "invalid_request_error",
                    StatusCode::NOT_FOUND => "not_found_error",
                    _ => "api_error",
                };
                json_response(
                    self.status,
                    &json!({ "error": { "message": self.message, "type": kind, "param": null, "code": null } }),
                )
            }
        }
    }
}

/// A JSON body with the content type gin's `c.JSON` sets.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Decodes a JSON request body the way Ollama's handlers do: an empty body is
/// "missing request body", anything undecodable is a 400 with the decoder's words.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("missing request body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Req {
        #[expect(dead_code, reason = "only decoding is under test")]
        model: String,
    }

    #[test]
    fn empty_and_broken_bodies_are_bad_requests() {
        let err = parse_body::<Req>(b"  ").unwrap_err();
        assert_eq!(err.message, "missing request body");
        let err = parse_body::<Req>(b"{nope").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(parse_body::<Req>(br#"{"model":"x"}"#).is_ok());
    }
}
