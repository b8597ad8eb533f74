//! `POST /api/embed`, the legacy `POST /api/embeddings`, and the embedding flow
//! `/v1/embeddings` shares.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::embedding;
use crate::error::{ApiError, Dialect, json_response, parse_body};
use crate::faults::Injected;
use crate::generation::{self, Options};
use crate::state::{Lease, Shared};
use crate::text::words;

#[derive(Deserialize)]
struct EmbedRequest {
    #[serde(default)]
    model: String,
    input: Option<Value>,
    truncate: Option<bool>,
    dimensions: Option<i64>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

#[derive(Deserialize)]
struct EmbeddingRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

/// `/api/embed`'s answer; f32 components keep their short form, as Go writes them.
#[derive(Serialize)]
struct EmbedResponse<'a> {
    model: &'a str,
    embeddings: &'a [Vec<f32>],
    #[serde(skip_serializing_if = "Option::is_none")]
    total_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_eval_count: Option<u32>,
}

/// An embedding request, whichever API it came through.
#[derive(Debug)]
pub(crate) struct EmbedAsk {
    pub(crate) model: String,
    pub(crate) inputs: Vec<String>,
    pub(crate) truncate: Option<bool>,
    pub(crate) dimensions: Option<i64>,
    pub(crate) options: Option<Map<String, Value>>,
    pub(crate) keep_alive: Option<Value>,
    pub(crate) started: Instant,
}

/// Computed embeddings, with the slot still held until the answer is sent.
pub(crate) struct Embedded {
    pub(crate) embeddings: Vec<Vec<f32>>,
    pub(crate) prompt_eval_count: u32,
    pub(crate) total_duration: u64,
    pub(crate) load_duration: u64,
    /// `None` for an empty input, which only loads the model.
    pub(crate) lease: Option<Lease>,
    pub(crate) injected: Injected,
}

impl Embedded {
    /// Sends `body`, completing (or, under an injected drop, failing) the generation.
    pub(crate) fn send(self, body: Vec<u8>, content_type: &'static str) -> Response {
        match self.lease {
            Some(lease) => generation::finish_whole(lease, self.injected, body, content_type),
            None => generation::with_type(body.into(), content_type),
        }
    }
}

/// Reads `input`: a string, a list of strings, or nothing.
pub(crate) fn inputs(input: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad_request("invalid input type"))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request("invalid input type")),
    }
}

/// `POST /api/embed`.
pub(crate) async fn embed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let result = async {
        let req: EmbedRequest = parse_body(&body)?;
        let ask = EmbedAsk {
            inputs: inputs(req.input.as_ref())?,
            model: req.model,
            truncate: req.truncate,
            dimensions: req.dimensions,
            options: req.options,
            keep_alive: req.keep_alive,
            started,
        };
        let model = ask.model.clone();
        let done = answer(&shared, ask).await?;
        let loaded_only = done.lease.is_none();
        let body = serde_json::to_vec(&EmbedResponse {
            model: &model,
            embeddings: &done.embeddings,
            total_duration: (!loaded_only).then_some(done.total_duration),
            load_duration: (!loaded_only).then_some(done.load_duration),
            prompt_eval_count: (!loaded_only).then_some(done.prompt_eval_count),
        })
        .unwrap_or_default();
        Ok::<_, ApiError>(done.send(body, "application/json; charset=utf-8"))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}

/// Embeds the inputs in a slot, as Ollama's `EmbedHandler` does.
pub(crate) async fn answer(shared: &Arc<Shared>, ask: EmbedAsk) -> Result<Embedded, ApiError> {
    let injected = generation::take_fault(shared)?;
    let model = generation::find_model(shared, &ask.model)?;
    let keep_alive = generation::keep_alive(ask.keep_alive.as_ref())?;
    let options = Options::parse(ask.options.as_ref())?;
    if ask.inputs.is_empty() {
        generation::load_only(shared, &model, keep_alive, options);
        return Ok(Embedded {
            embeddings: Vec::new(),
            prompt_eval_count: 0,
            total_duration: 0,
            load_duration: 0,
            lease: None,
            injected,
        });
    }
    let (mut lease, acquired) =
        generation::acquire_and_wait(shared, &model, keep_alive, options, injected).await?;
    let context = options
        .num_ctx
        .unwrap_or(model.context_length)
        .min(model.context_length);
    let counts: Vec<u32> = ask.inputs.iter().map(|i| words(i) + 2).collect();
    if ask.truncate == Some(false) && counts.iter().any(|&n| n > context) {
        lease.fail();
        return Err(ApiError::bad_request(
            "the input length exceeds the context length",
        ));
    }
    let full = model.embedding_length as usize;
    let dims = match ask.dimensions {
        Some(d) if d > 0 && (d as usize) < full => d as usize,
        _ => full,
    };
    let key = model.name.key();
    let embeddings = ask
        .inputs
        .iter()
        .map(|input| {
            let mut v = embedding::embed(&key, input, full);
            if dims < full {
                v.truncate(dims);
                embedding::normalize(&mut v);
            }
            v
        })
        .collect();
    Ok(Embedded {
        embeddings,
        prompt_eval_count: counts.iter().map(|&n| n.min(context)).sum(),
        total_duration: clock::nanos(ask.started.elapsed()),
        load_duration: clock::nanos(acquired - ask.started),
        lease: Some(lease),
        injected,
    })
}

/// `POST /api/embeddings` (superseded by `/api/embed`).
pub(crate) async fn embeddings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let result = async {
        let req: EmbeddingRequest = parse_body(&body)?;
        let injected = generation::take_fault(&shared)?;
        if req.model.is_empty() {
            return Err(ApiError::bad_request("model is required"));
        }
        // This handler goes straight to the scheduler, hence the older wording.
        let model = generation::find_model(&shared, &req.model).map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found(format!(
                    "model {} not found, try pulling it first",
                    Value::String(req.model.clone())
                ))
            } else {
                e
            }
        })?;
        let keep_alive = generation::keep_alive(req.keep_alive.as_ref())?;
        let options = Options::parse(req.options.as_ref())?;
        if req.prompt.is_empty() {
            generation::load_only(&shared, &model, keep_alive, options);
            return Ok(json_response(StatusCode::OK, &json!({ "embedding": [] })));
        }
        let (lease, _) =
            generation::acquire_and_wait(&shared, &model, keep_alive, options, injected).await?;
        let v: Vec<f64> = embedding::embed(
            &model.name.key(),
            &req.prompt,
            model.embedding_length as usize,
        )
        .into_iter()
        .map(f64::from)
        .collect();
        let body = json!({ "embedding": v }).to_string().into_bytes();
        Ok(generation::finish_whole(
            lease,
            injected,
            body,
            "application/json; charset=utf-8",
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}
