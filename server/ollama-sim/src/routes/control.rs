//! The simulator's own endpoints under `/sim`: counters, the journal of
//! requests received, fault injection, reset.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{Dialect, parse_body};
use crate::faults::Fault;
use crate::journal::ReceivedRequest;
use crate::state::Shared;
use crate::stats::SimStats;

/// `GET /sim/stats`.
pub(crate) async fn stats(State(shared): State<Arc<Shared>>) -> Json<SimStats> {
    Json(shared.counters.snapshot())
}

/// `GET /sim/requests`: the requests kept in the journal, oldest first.
pub(crate) async fn requests(State(shared): State<Arc<Shared>>) -> Json<Vec<ReceivedRequest>> {
    Json(shared.journal.snapshot())
}

/// `POST /sim/faults` with a [`Fault`] body: 204.
pub(crate) async fn fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse_body::<Fault>(&body) {
        Ok(fault) => {
            if let Fault::Error { status, .. } = fault
                && StatusCode::from_u16(status).is_err()
            {
                return crate::error::ApiError::bad_request(format!(
                    "invalid HTTP status {status}"
                ))
                .into_response_as(Dialect::Ollama);
            }
            tracing::debug!(?fault, "fault queued");
            shared.faults.push(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response_as(Dialect::Ollama),
    }
}

/// `POST /sim/reset`: clears queued faults and the journal, zeroes the counters.
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    shared.counters.reset();
    shared.journal.clear();
    StatusCode::NO_CONTENT
}
