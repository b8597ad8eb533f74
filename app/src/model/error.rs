//! The one error type that crosses the UI edge. Every variant is safe to show
//! to the person in front of the browser: internal details stay in the logs.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What a server function or page can fail with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// The thing asked for does not exist (or the caller may not know it does).
    #[error("Not found")]
    NotFound,
    /// The caller has not signed in (or the session ended).
    #[error("Please sign in")]
    Unauthorized,
    /// The caller is known but not allowed to do this.
    #[error("You are not allowed to do that")]
    Forbidden,
    /// An input was rejected; `field` names it as the caller sent it.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The change clashes with the current state (a duplicate name, a stale edit).
    #[error("{message}")]
    Conflict { message: String },
    /// A dependency Corral needs is not answering; `dependency` names it.
    #[error("{dependency} is unavailable; try again shortly")]
    Unavailable { dependency: String },
    /// Something failed inside Corral; `reference` finds it in the server log.
    #[error("Something went wrong on our side (reference {reference})")]
    Internal { reference: String },
    /// The request never reached the server, or its answer could not be read.
    #[error("Could not reach Corral: {message}")]
    Transport { message: String },
}

impl AppError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status this error maps to at every edge.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::Validation { .. } => 422,
            Self::Conflict { .. } => 409,
            Self::Unavailable { .. } => 503,
            Self::Internal { .. } => 500,
            Self::Transport { .. } => 502,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => Self::Validation {
                field: "request".into(),
                message: m,
            },
            other => Self::Transport {
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_error_text_shows_only_the_reference() {
        let e = AppError::Internal {
            reference: "req-42".into(),
        };
        assert_eq!(
            e.to_string(),
            "Something went wrong on our side (reference req-42)"
        );
        assert_eq!(e.status_code(), 500);
    }

    #[test]
    fn errors_round_trip_through_the_server_fn_encoding() {
        let e = AppError::validation("name", "must not be empty");
        let bytes = e.ser();
        assert_eq!(AppError::de(bytes), e);
    }
}
