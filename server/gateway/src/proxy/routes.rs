//! The gateway's routes: what each path does ([`Kind`]), the methods Ollama
//! takes there, and [`classify`], which maps a method and path to them.

use axum::http::Method;

use crate::errors::Refusal;

/// What a path does, for authorization and accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Runs a model: metered, limited, model-checked.
    Inference,
    /// Reads one model's details: model-checked.
    ModelRead,
    /// Lists models: filtered to what the key may use.
    List,
    /// Version and the like: any valid key.
    Info,
    /// Pulls, creates, copies, deletes, pushes: `manage` scope.
    Manage,
}

/// The gateway's routes: path, the methods Ollama takes there (as its
/// `Allow` header says them), kind and endpoint label. Any other method is
/// a 405, never forwarded.
const ROUTES: [(&str, &str, Kind); 17] = [
    ("/api/chat", "POST", Kind::Inference),
    ("/api/generate", "POST", Kind::Inference),
    ("/api/embed", "POST", Kind::Inference),
    ("/api/embeddings", "POST", Kind::Inference),
    ("/v1/chat/completions", "POST", Kind::Inference),
    ("/v1/completions", "POST", Kind::Inference),
    ("/v1/embeddings", "POST", Kind::Inference),
    ("/api/show", "POST", Kind::ModelRead),
    ("/api/tags", "GET, HEAD", Kind::List),
    ("/api/ps", "GET", Kind::List),
    ("/v1/models", "GET", Kind::List),
    ("/api/version", "GET, HEAD", Kind::Info),
    ("/api/pull", "POST", Kind::Manage),
    ("/api/create", "POST", Kind::Manage),
    ("/api/copy", "POST", Kind::Manage),
    ("/api/push", "POST", Kind::Manage),
    ("/api/delete", "DELETE", Kind::Manage),
];

/// The prefix of `/v1/models/{model}`.
pub(super) const MODEL_PATH: &str = "/v1/models/";

/// The kind and endpoint label of a method and path: `NotFound` for paths
/// the gateway does not serve, `MethodNotAllowed` for a method Ollama does
/// not take on the path, `BadRequest` for a model path that is not a model
/// name (empty or dot segments, escapes: they could walk to another route).
pub fn classify(method: &Method, path: &str) -> Result<(Kind, &'static str), Refusal> {
    let allows = |allow: &'static str| {
        allow
            .split(", ")
            .any(|m| m.as_bytes() == method.as_str().as_bytes())
    };
    if let Some(&(endpoint, allow, kind)) = ROUTES.iter().find(|r| r.0 == path) {
        return if allows(allow) {
            Ok((kind, endpoint))
        } else {
            Err(Refusal::MethodNotAllowed(allow))
        };
    }
    if let Some(model) = path.strip_prefix(MODEL_PATH) {
        if !allows("GET") {
            return Err(Refusal::MethodNotAllowed("GET"));
        }
        if model.contains('%') || model.split('/').any(|seg| matches!(seg, "" | "." | "..")) {
            return Err(Refusal::BadRequest(format!(
                "\"{model}\" is not a model name: no empty or dot segments, no escapes"
            )));
        }
        return Ok((Kind::ModelRead, "/v1/models/{model}"));
    }
    Err(Refusal::NotFound)
}

/// `GET /` and `HEAD /`, as Ollama answers them (clients probe it).
pub async fn root() -> &'static str {
    "Ollama is running"
}
