//! `POST /api/create` with the structured fields of current Ollama, and the blob
//! endpoints it relies on (`HEAD`/`POST /api/blobs/{digest}`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{BakedMessage, Layer, MEDIA_ADAPTER, MEDIA_MODEL, Model};
use crate::error::{ApiError, Dialect, parse_body};
use crate::names::ModelName;
use crate::routes::progress::{self, Step, status, transfer};
use crate::state::Shared;
use crate::text::{hash, hex_digest};

/// Quantizations `ollama create --quantize` accepts.
const QUANTIZATIONS: [&str; 16] = [
    "F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",
];

#[derive(Deserialize)]
struct CreateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    from: String,
    files: Option<Map<String, Value>>,
    adapters: Option<Map<String, Value>>,
    template: Option<String>,
    license: Option<Value>,
    system: Option<String>,
    parameters: Option<Map<String, Value>>,
    messages: Option<Vec<BakedMessage>>,
    stream: Option<bool>,
    quantize: Option<String>,
    quantization: Option<String>,
}

/// `POST /api/create`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: CreateRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response_as(Dialect::Ollama),
    };
    let stream = req.stream.unwrap_or(true);
    match create_steps(&shared, req) {
        Ok(steps) => progress::respond(shared, steps, stream, Duration::ZERO).await,
        Err(e) => e.into_response_as(Dialect::Ollama),
    }
}

/// Valid relative file names, as Go's `fs.ValidPath` sees them.
fn valid_path(path: &str) -> bool {
    path == "."
        || (!path.is_empty()
            && !path.starts_with('/')
            && path
                .split('/')
                .all(|e| !e.is_empty() && e != "." && e != ".."))
}

fn create_steps(shared: &Shared, req: CreateRequest) -> Result<Vec<Step>, ApiError> {
    if req
        .files
        .iter()
        .flatten()
        .any(|(path, _)| !valid_path(path))
    {
        return Err(ApiError::bad_request("file path must be relative"));
    }
    let raw = if req.model.is_empty() {
        &req.name
    } else {
        &req.model
    };
    let name = ModelName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut steps = Vec::new();

    let mut model = if !req.from.is_empty() {
        let from = ModelName::parse(&req.from).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let base = shared
            .registry()
            .get(&from)
            .ok_or_else(|| ApiError::model_not_found(&req.from))?;
        let mut model = Model::clone(&base);
        model.parent_model = base.display_name();
        model
    } else if let Some(files) = req.files.as_ref().filter(|f| !f.is_empty()) {
        let safetensors = files.keys().any(|f| f.ends_with(".safetensors"));
        steps.push(status(if safetensors {
            "converting model"
        } else {
            "parsing GGUF"
        }));
        let registry = shared.registry();
        if let Some((_, missing)) = files
            .iter()
            .find(|(_, d)| !d.as_str().is_some_and(|d| registry.has_blob(d)))
        {
            let digest = missing.as_str().unwrap_or_default().replacen(':', "-", 1);
            steps.push(Step::Fail(format!(
                "open /root/.ollama/models/blobs/{digest}: no such file or directory"
            )));
            return Ok(steps);
        }
        let mut model = Model::from_library(name.clone());
        let digest = files.values().find_map(Value::as_str).unwrap_or_default();
        model.layers[0].digest = digest.to_owned();
        model
    } else {
        // Current Ollama ignores the legacy `modelfile` field and answers this.
        return Err(ApiError::bad_request(
            "neither 'from' or 'files' was specified",
        ));
    };

    if let Some(adapters) = req.adapters.as_ref().filter(|a| !a.is_empty()) {
        if adapters.len() > 1 {
            return Err(ApiError::bad_request(
                "only one adapter is currently supported",
            ));
        }
        let digest = adapters
            .values()
            .find_map(Value::as_str)
            .unwrap_or_default();
        model.layers.insert(
            1,
            Layer {
                media_type: MEDIA_ADAPTER,
                digest: digest.to_owned(),
                size: 0,
            },
        );
    }

    let quantize = req
        .quantize
        .or(req.quantization)
        .filter(|q| !q.is_empty())
        .map(|q| q.to_ascii_uppercase());
    if let Some(quantize) = quantize {
        if !QUANTIZATIONS.contains(&quantize.as_str()) {
            return Err(ApiError::internal(format!(
                "unsupported quantization type {quantize}"
            )));
        }
        let from = model.quantization_level.clone();
        if from != "F16" && from != "F32" {
            return Err(ApiError::internal(
                "quantization is only supported for F16 and F32 models",
            ));
        }
        if from != quantize {
            let weights = &model.layers[0];
            let label = format!("quantizing {from} model to {quantize}");
            for k in 1..=4 {
                steps.push(transfer(
                    label.clone(),
                    "0000000000000000000",
                    weights.size,
                    weights.size * k / 4,
                ));
            }
            steps.push(status("verifying conversion"));
            let size = weights.size * 3 / 10;
            let digest = format!("sha256:{}", hex_digest(hash(&[&weights.digest, &quantize])));
            model.layers[0] = Layer {
                media_type: MEDIA_MODEL,
                digest,
                size,
            };
            model.quantization_level = quantize;
        }
    }

    if let Some(template) = req.template.filter(|t| !t.is_empty()) {
        model.template = template;
    }
    if let Some(system) = req.system.filter(|s| !s.is_empty()) {
        model.system = system;
    }
    match req.license {
        Some(Value::String(l)) if !l.is_empty() => model.license.push(l),
        Some(Value::Array(ls)) => model
            .license
            .extend(ls.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    if let Some(parameters) = req.parameters.filter(|p| !p.is_empty()) {
        model
            .parameters
            .retain(|(k, _)| !parameters.contains_key(k));
        for (key, value) in parameters {
            match value {
                Value::Array(values) => model
                    .parameters
                    .extend(values.into_iter().map(|v| (key.clone(), v))),
                value => model.parameters.push((key, value)),
            }
        }
    }
    if let Some(messages) = req.messages {
        model.messages = messages;
    }
    model.name = name;
    model.modified_at = crate::clock::now();
    model.rebuild_layers();

    {
        let registry = shared.registry();
        for layer in &model.layers {
            let verb = if registry.has_blob(&layer.digest) {
                "using existing layer"
            } else {
                "creating new layer"
            };
            steps.push(status(format!("{verb} {}", layer.digest)));
        }
    }
    steps.push(status("writing manifest"));
    steps.push(Step::Install(Box::new(model)));
    steps.push(status("success"));
    Ok(steps)
}

/// Whether `digest` is `sha256:` (or `sha256-`) and 64 hex digits.
fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .or_else(|| digest.strip_prefix("sha256-"))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `HEAD /api/blobs/{digest}`: 200 if the blob exists, 404 if not.
pub(crate) async fn has_blob(
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
) -> Response {
    if !valid_digest(&digest) {
        return ApiError::bad_request("invalid digest format").into_response_as(Dialect::Ollama);
    }
    let digest = digest.replacen('-', ":", 1);
    if shared.registry().has_blob(&digest) {
        StatusCode::OK.into_response()
    } else {
        ApiError::not_found(format!("blob \"{digest}\" not found"))
            .into_response_as(Dialect::Ollama)
    }
}

/// `POST /api/blobs/{digest}`: records the blob (its content is not hashed).
pub(crate) async fn upload_blob(
    State(shared): State<Arc<Shared>>,
    Path(digest): Path<String>,
    _body: Bytes,
) -> Response {
    if !valid_digest(&digest) {
        return ApiError::bad_request("invalid digest format").into_response_as(Dialect::Ollama);
    }
    let digest = digest.replacen('-', ":", 1);
    let mut registry = shared.registry();
    if registry.has_blob(&digest) {
        return StatusCode::OK.into_response();
    }
    registry.add_blob(digest);
    StatusCode::CREATED.into_response()
}
