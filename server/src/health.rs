//! `/healthz` (the process is alive) and `/readyz` (it can do its job).

use app::domain::AppState;
use app::model::DependencyState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

/// Liveness: answers as long as the process can serve HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: Postgres reachable and every migration applied. 503 names
/// each failing check.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = app::domain::health::postgres(&state.db).await;
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| c.state != DependencyState::Healthy)
        .map(|c| c.id.as_str())
        .collect();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "unavailable" },
        "failing": failing,
        "checks": checks,
    });
    (status, Json(body))
}
