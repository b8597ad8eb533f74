//! `POST /api/pull` and `POST /api/push`, with Ollama's progress lines.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::catalog::{Layer, Model};
use crate::error::{ApiError, Dialect, parse_body};
use crate::names::{DEFAULT_NAMESPACE, ModelName};
use crate::routes::progress::{self, Step, status, transfer};
use crate::state::Shared;

/// Name fragments that make a pull fail as if the library had no such model.
const MISSING_MARKERS: [&str; 2] = ["does-not-exist", "missing"];

/// Progress lines the weights layer reports on its way to 100%.
const WEIGHT_STEPS: u64 = 5;

#[derive(Deserialize)]
struct TransferRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    stream: Option<bool>,
}

impl TransferRequest {
    fn raw_name(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

/// `POST /api/pull`.
pub(crate) async fn pull(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TransferRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response_as(Dialect::Ollama),
    };
    let Ok(name) = ModelName::parse(req.raw_name()) else {
        return ApiError::bad_request("invalid model name").into_response_as(Dialect::Ollama);
    };
    let stream = req.stream.unwrap_or(true);
    let delay = shared.config.pull_step;
    let steps = pull_steps(&shared, name);
    progress::respond(shared, steps, stream, delay).await
}

fn pull_steps(shared: &Shared, name: ModelName) -> Vec<Step> {
    let mut steps = vec![status("pulling manifest")];
    let lower = name.display_shortest().to_ascii_lowercase();
    if MISSING_MARKERS.iter().any(|m| lower.contains(m)) {
        steps.push(Step::Fail(
            "pull model manifest: file does not exist".to_owned(),
        ));
        return steps;
    }
    let (model, present): (Model, Vec<bool>) = {
        let registry = shared.registry();
        let model = registry
            .get(&name)
            .map_or_else(|| Model::from_library(name.clone()), |m| Model::clone(&m));
        let present = model
            .layers
            .iter()
            .map(|l| registry.has_blob(&l.digest))
            .collect();
        (model, present)
    };
    for (layer, present) in model.layers.iter().zip(present) {
        steps.extend(layer_progress(layer, present));
    }
    steps.push(status("verifying sha256 digest"));
    steps.push(status("writing manifest"));
    let mut model = model;
    model.modified_at = crate::clock::now();
    steps.push(Step::Install(Box::new(model)));
    steps.push(status("success"));
    steps
}

/// `pulling <first 12 hex digits>` lines for one layer, rising to its size.
fn layer_progress(layer: &Layer, present: bool) -> Vec<Step> {
    let label = format!("pulling {}", short(&layer.digest));
    if present {
        return vec![transfer(label, &layer.digest, layer.size, layer.size)];
    }
    let mut steps = vec![transfer(label.clone(), &layer.digest, layer.size, 0)];
    let parts = if layer.size > 1 << 20 {
        WEIGHT_STEPS
    } else {
        1
    };
    for k in 1..=parts {
        steps.push(transfer(
            label.clone(),
            &layer.digest,
            layer.size,
            layer.size * k / parts,
        ));
    }
    steps
}

/// The 12 hex digits Ollama shows of a `sha256:` digest.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// `POST /api/push`.
pub(crate) async fn push(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TransferRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response_as(Dialect::Ollama),
    };
    if req.raw_name().is_empty() {
        return ApiError::bad_request("model is required").into_response_as(Dialect::Ollama);
    }
    let stream = req.stream.unwrap_or(true);
    let delay = shared.config.pull_step;
    let mut steps = vec![status("retrieving manifest")];
    match ModelName::parse(req.raw_name()) {
        Err(_) => steps.push(Step::Fail("invalid model name".to_owned())),
        Ok(name) => {
            let model = shared.registry().get(&name);
            match model {
                None => {
                    steps.push(status("couldn't retrieve manifest"));
                    steps.push(Step::Fail(format!(
                        "open /root/.ollama/models/manifests/{}/{}/{}/{}: no such file or directory",
                        name.host, name.namespace, name.model, name.tag
                    )));
                }
                Some(_) if name.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) => {
                    steps.push(Step::Fail(
                        "you are not authorized to push to this namespace, create the model under a namespace you own"
                            .to_owned(),
                    ));
                }
                Some(model) => {
                    for layer in &model.layers {
                        let label = format!("pushing {}", short(&layer.digest));
                        steps.push(transfer(label.clone(), &layer.digest, layer.size, 0));
                        steps.push(transfer(label, &layer.digest, layer.size, layer.size));
                    }
                    steps.push(status("pushing manifest"));
                    steps.push(status("success"));
                }
            }
        }
    }
    progress::respond(shared, steps, stream, delay).await
}
