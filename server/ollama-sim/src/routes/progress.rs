//! Progress streams of `/api/pull`, `/api/push` and `/api/create`: NDJSON status
//! lines when streaming, the last status (or the error) when not.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::catalog::Model;
use crate::error::{ApiError, json_response};
use crate::generation::with_type;
use crate::state::Shared;

/// One step of a long-running model operation.
pub(crate) enum Step {
    /// A status line: `{"status": …}` with optional `digest`, `total`, `completed`.
    Line(Value),
    /// Installs the model (done when the stream reaches this point).
    Install(Box<Model>),
    /// The operation fails with this message.
    Fail(String),
}

/// `{"status": status}`.
pub(crate) fn status(status: impl Into<String>) -> Step {
    Step::Line(json!({ "status": status.into() }))
}

/// A transfer progress line; `completed` is left out while it is zero, as Go's
/// `omitempty` does.
pub(crate) fn transfer(
    status: impl Into<String>,
    digest: &str,
    total: u64,
    completed: u64,
) -> Step {
    let mut line = json!({ "status": status.into(), "digest": digest, "total": total });
    if completed > 0 {
        line["completed"] = json!(completed);
    }
    Step::Line(line)
}

/// Plays `steps`, `delay` apart, streamed or not.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    steps: Vec<Step>,
    stream: bool,
    delay: Duration,
) -> Response {
    if stream {
        let state = Player {
            shared,
            steps: steps.into(),
            delay,
            started: false,
        };
        let body = futures_util::stream::unfold(state, |mut p| async move {
            let line = p.next_line().await?;
            Some((Ok::<Bytes, io::Error>(line), p))
        });
        return with_type(Body::from_stream(body), "application/x-ndjson");
    }
    let mut last = json!({ "status": "success" });
    let mut first = true;
    for step in steps {
        match step {
            Step::Line(line) => {
                if !first && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                first = false;
                last = line;
            }
            Step::Install(model) => shared.registry().install(*model),
            Step::Fail(message) => {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
                    .into_response_as(crate::error::Dialect::Ollama);
            }
        }
    }
    json_response(StatusCode::OK, &last)
}

struct Player {
    shared: Arc<Shared>,
    steps: VecDeque<Step>,
    delay: Duration,
    started: bool,
}

impl Player {
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            match self.steps.pop_front()? {
                Step::Install(model) => self.shared.registry().install(*model),
                Step::Line(line) => {
                    if self.started && !self.delay.is_zero() {
                        tokio::time::sleep(self.delay).await;
                    }
                    self.started = true;
                    return Some(ndjson(&line));
                }
                Step::Fail(message) => {
                    self.steps.clear();
                    return Some(ndjson(&json!({ "error": message })));
                }
            }
        }
    }
}

fn ndjson(value: &Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}
