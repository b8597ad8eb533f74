//! The HTTP surface: Ollama's endpoints, the OpenAI layer and the `/sim` controls.

pub(crate) mod chat;
pub(crate) mod control;
pub(crate) mod create;
pub(crate) mod embed;
pub(crate) mod generate;
pub(crate) mod models;
pub(crate) mod openai;
pub(crate) mod progress;
pub(crate) mod pull;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};

use crate::generation::with_type;
use crate::state::Shared;
use crate::stats::Counters;

/// Requests bigger than this are refused (images make Ollama bodies large).
pub(crate) const BODY_LIMIT: usize = 100 * 1024 * 1024;

/// Every route, with `shared` as state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let ollama = Router::new()
        .route("/", get(models::root))
        .route("/api/version", get(models::version))
        .route("/api/tags", get(models::tags))
        .route("/api/ps", get(models::ps))
        .route("/api/show", post(models::show))
        .route("/api/delete", delete(models::delete))
        .route("/api/copy", post(models::copy))
        .route("/api/pull", post(pull::pull))
        .route("/api/push", post(pull::push))
        .route("/api/create", post(create::create))
        .route(
            "/api/blobs/{digest}",
            post(create::upload_blob).head(create::has_blob),
        )
        .route("/api/generate", post(generate::generate))
        .route("/api/chat", post(chat::chat))
        .route("/api/embed", post(embed::embed))
        .route("/api/embeddings", post(embed::embeddings))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*model}", get(openai::model))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_request,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            record_request,
        ));
    let control = Router::new()
        .route("/sim/stats", get(control::stats))
        .route("/sim/requests", get(control::requests))
        .route("/sim/faults", post(control::fault))
        .route("/sim/reset", post(control::reset));
    control
        .merge(ollama)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn count_request(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    Counters::bump(&shared.counters.requests);
    next.run(request).await
}

/// Records the request in the journal, its body read whole first as
/// Ollama's handlers read it before they start.
async fn record_request(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = shared.journal.receive(&parts, body).await;
    next.run(Request::from_parts(parts, body)).await
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = with_type(Body::from(text), "text/plain");
    *response.status_mut() = status;
    response
}

/// Unknown paths answer like gin's default 404.
async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "404 page not found")
}

/// Known paths with the wrong method answer like gin with `HandleMethodNotAllowed`.
async fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
}
