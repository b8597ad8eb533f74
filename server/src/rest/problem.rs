//! RFC 9457 `application/problem+json` errors for the REST API.

use app::model::AppError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error response. 5xx bodies say nothing about internals; the
/// `reference` finds the logged cause.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: the field that was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For internal errors: quote this to your operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://corral.dev/problems/{}", slug(title)),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            reference: None,
        }
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }
}

fn slug(title: &str) -> String {
    title
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let status =
            StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match e {
            AppError::NotFound => Self::new(
                status,
                "Not found",
                "no such resource, or you may not see it",
            ),
            AppError::Unauthorized => {
                Self::unauthorized("sign in, or send a valid API key as a bearer token")
            }
            AppError::Forbidden => Self::new(status, "Forbidden", "you are not allowed to do that"),
            AppError::Validation { field, message } => Self {
                field: Some(field.clone()),
                ..Self::new(status, "Invalid request", format!("{field}: {message}"))
            },
            AppError::Conflict { message } => Self::new(status, "Conflict", message),
            AppError::Unavailable { dependency } => Self::new(
                status,
                "Service unavailable",
                format!("{dependency} is unavailable; try again shortly"),
            ),
            AppError::Internal { reference } => Self {
                reference: Some(reference),
                ..Self::new(
                    status,
                    "Internal error",
                    "something went wrong inside Corral",
                )
            },
            AppError::Transport { message } => {
                Self::new(StatusCode::BAD_REQUEST, "Bad request", message)
            }
        }
    }
}

impl From<app::domain::Error> for Problem {
    fn from(e: app::domain::Error) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(self)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/problem+json".parse().expect("valid header"),
        );
        res
    }
}

/// Turns axum's own rejections (bad JSON, bad query) into problems that
/// name what was wrong.
pub fn from_rejection(field: &str, detail: String) -> Problem {
    Problem {
        field: Some(field.to_owned()),
        ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", detail)
    }
}
