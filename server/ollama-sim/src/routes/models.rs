//! Model management: `/`, `/api/version`, `/api/tags`, `/api/ps`, `/api/show`,
//! `/api/delete` and `/api/copy`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::catalog::Model;
use crate::clock;
use crate::error::{ApiError, Dialect, json_response, parse_body};
use crate::names::ModelName;
use crate::state::Shared;

/// The Ollama release the simulator answers as.
pub const OLLAMA_VERSION: &str = "0.12.6";

/// `GET /` (and `HEAD /`).
pub(crate) async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /api/version`.
pub(crate) async fn version() -> Response {
    json_response(StatusCode::OK, &json!({ "version": OLLAMA_VERSION }))
}

/// `GET /api/tags`.
pub(crate) async fn tags(State(shared): State<Arc<Shared>>) -> Response {
    let models: Vec<Value> = shared
        .registry()
        .list()
        .iter()
        .map(|m| m.tags_entry())
        .collect();
    json_response(StatusCode::OK, &json!({ "models": models }))
}

/// `GET /api/ps`.
pub(crate) async fn ps(State(shared): State<Arc<Shared>>) -> Response {
    let running = shared.registry().running();
    let models: Vec<Value> = running
        .iter()
        .map(|loaded| {
            let m = &loaded.model;
            let name = m.display_name();
            // Weights plus a KV cache that grows with the context.
            let size = m.size() + u64::from(loaded.context_length) * 28_672;
            json!({
                "name": name,
                "model": name,
                "size": size,
                "digest": m.digest(),
                "details": m.details(false),
                "expires_at": clock::rfc3339(loaded.expires_at),
                "size_vram": size,
                "context_length": loaded.context_length,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "models": models }))
}

#[derive(Deserialize)]
struct ShowRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    verbose: bool,
}

/// `POST /api/show`.
pub(crate) async fn show(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    show_model(&shared, &body).unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}

fn show_model(shared: &Shared, body: &[u8]) -> Result<Response, ApiError> {
    let req: ShowRequest = parse_body(body)?;
    let raw = if req.model.is_empty() {
        &req.name
    } else {
        &req.model
    };
    if raw.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let name = ModelName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let model = shared
        .registry()
        .get(&name)
        .ok_or_else(|| ApiError::model_not_found(raw))?;
    Ok(json_response(
        StatusCode::OK,
        &show_json(&model, &req.system, req.verbose),
    ))
}

/// The `/api/show` body for a model.
pub(crate) fn show_json(model: &Model, system_override: &str, _verbose: bool) -> Value {
    let mut fields = Map::new();
    let parameters = model.parameters_text();
    if !model.license.is_empty() {
        fields.insert("license".into(), json!(model.license.join("\n")));
    }
    fields.insert("modelfile".into(), json!(model.modelfile()));
    if !parameters.is_empty() {
        fields.insert("parameters".into(), json!(parameters));
    }
    fields.insert("template".into(), json!(model.template));
    let system = if system_override.is_empty() {
        &model.system
    } else {
        system_override
    };
    if !system.is_empty() {
        fields.insert("system".into(), json!(system));
    }
    fields.insert("details".into(), model.details(true));
    if !model.messages.is_empty() {
        fields.insert("messages".into(), json!(model.messages));
    }
    fields.insert("model_info".into(), model.model_info());
    fields.insert("capabilities".into(), json!(model.capabilities));
    fields.insert(
        "modified_at".into(),
        json!(clock::rfc3339(model.modified_at)),
    );
    Value::Object(fields)
}

#[derive(Deserialize)]
struct DeleteRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
}

/// `DELETE /api/delete`.
pub(crate) async fn delete(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    delete_model(&shared, &body).unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}

fn delete_model(shared: &Shared, body: &[u8]) -> Result<Response, ApiError> {
    let req: DeleteRequest = parse_body(body)?;
    let raw = if req.model.is_empty() {
        req.name
    } else {
        req.model
    };
    let name = ModelName::parse(&raw).map_err(|_| {
        ApiError::bad_request(format!("name {} is invalid", Value::String(raw.clone())))
    })?;
    if shared.registry().remove(&name) {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::model_not_found(&raw))
    }
}

#[derive(Deserialize)]
struct CopyRequest {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
}

/// `POST /api/copy`.
pub(crate) async fn copy(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    copy_model(&shared, &body).unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}

fn copy_model(shared: &Shared, body: &[u8]) -> Result<Response, ApiError> {
    let req: CopyRequest = parse_body(body)?;
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    let source = ModelName::parse(&req.source)
        .map_err(|_| ApiError::bad_request(format!("source {} is invalid", quoted(&req.source))))?;
    let destination = ModelName::parse(&req.destination).map_err(|_| {
        ApiError::bad_request(format!(
            "destination {} is invalid",
            quoted(&req.destination)
        ))
    })?;
    let mut registry = shared.registry();
    let Some(original) = registry.get(&source) else {
        return Err(ApiError::not_found(format!(
            "model {} not found",
            quoted(&req.source)
        )));
    };
    let mut copy = Model::clone(&original);
    copy.name = destination;
    copy.modified_at = clock::now();
    registry.install(copy);
    Ok(StatusCode::OK.into_response())
}
