//! `POST /api/generate`, and the completion flow `/v1/completions` shares.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::CAP_COMPLETION;
use crate::clock::KeepAlive;
use crate::error::{ApiError, Dialect, parse_body};
use crate::generation::{self, Format, Job, Options, Plan, Wire};
use crate::state::Shared;
use crate::text::{Markers, hash, words};

#[derive(Deserialize)]
struct GenerateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    template: String,
    context: Option<Vec<i64>>,
    stream: Option<bool>,
    #[serde(default)]
    raw: bool,
    format: Option<Value>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
    think: Option<Value>,
}

/// A completion request, whichever API it came through.
#[derive(Debug)]
pub(crate) struct GenerateAsk {
    pub(crate) model: String,
    pub(crate) prompt: String,
    pub(crate) suffix: String,
    pub(crate) system: String,
    pub(crate) template: String,
    pub(crate) context: Option<Vec<i64>>,
    pub(crate) raw: bool,
    pub(crate) stream: bool,
    pub(crate) format: Option<Value>,
    pub(crate) options: Option<Map<String, Value>>,
    pub(crate) keep_alive: Option<Value>,
    pub(crate) think: Option<Value>,
    pub(crate) wire: Wire,
    pub(crate) started: Instant,
}

/// What a completion request came to.
pub(crate) enum Outcome {
    /// A generation, streamed or whole.
    Generated(Response),
    /// An empty prompt: the model was loaded (`"load"`) or unloaded (`"unload"`).
    Loaded(&'static str),
}

/// `POST /api/generate`.
pub(crate) async fn generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let req: GenerateRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response_as(Dialect::Ollama),
    };
    let model_label = req.model.clone();
    let ask = GenerateAsk {
        model: req.model,
        prompt: req.prompt,
        suffix: req.suffix,
        system: req.system,
        template: req.template,
        context: req.context,
        raw: req.raw,
        stream: req.stream.unwrap_or(true),
        format: req.format,
        options: req.options,
        keep_alive: req.keep_alive,
        think: req.think,
        wire: Wire::Generate,
        started,
    };
    match answer(&shared, ask).await {
        Ok(Outcome::Generated(response)) => response,
        Ok(Outcome::Loaded(reason)) => generation::generate_load_response(&model_label, reason),
        Err(e) => e.into_response_as(Dialect::Ollama),
    }
}

/// Runs a completion: checks, plans and generates, as Ollama's `GenerateHandler` does.
pub(crate) async fn answer(shared: &Arc<Shared>, ask: GenerateAsk) -> Result<Outcome, ApiError> {
    let injected = generation::take_fault(shared)?;
    let model = generation::find_model(shared, &ask.model)?;
    let keep_alive = generation::keep_alive(ask.keep_alive.as_ref())?;
    let options = Options::parse(ask.options.as_ref())?;
    if ask.prompt.is_empty() && keep_alive == KeepAlive::Unload {
        return Ok(Outcome::Loaded(generation::load_only(
            shared, &model, keep_alive, options,
        )));
    }
    if ask.raw && (!ask.template.is_empty() || !ask.system.is_empty() || ask.context.is_some()) {
        return Err(ApiError::bad_request(
            "raw mode does not support template, system, or context",
        ));
    }
    generation::require(&model, CAP_COMPLETION, &ask.model, "generate")?;
    generation::check_think(&model, ask.think.as_ref(), &ask.model)?;
    if ask.prompt.is_empty() {
        return Ok(Outcome::Loaded(generation::load_only(
            shared, &model, keep_alive, options,
        )));
    }
    let format = Format::parse(ask.format.as_ref())?;

    let system = if ask.system.is_empty() {
        model.system.as_str()
    } else {
        ask.system.as_str()
    };
    let system = if ask.raw { "" } else { system };
    let seed = hash(&[system, &ask.prompt, &ask.suffix]);
    let history = ask
        .context
        .as_ref()
        .map_or(0, |c| u32::try_from(c.len()).unwrap_or(u32::MAX));
    let prompt_eval_count = if ask.raw {
        words(&ask.prompt)
    } else {
        let system_tokens = if system.is_empty() {
            0
        } else {
            words(system) + 4
        };
        system_tokens + words(&ask.prompt) + words(&ask.suffix) + 5 + history
    };
    let markers = Markers::scan(&ask.prompt);

    let plan = Plan::new(
        &shared.config,
        seed,
        markers,
        &format,
        options,
        prompt_eval_count,
    );
    let plan = if ask.raw || !matches!(ask.wire, Wire::Generate) {
        plan
    } else {
        plan.with_context(seed)
    };
    let job = Job {
        model_label: ask.model,
        wire: ask.wire,
        plan,
        stream: ask.stream,
        injected,
        started: ask.started,
    };
    generation::run(shared, &model, keep_alive, options, job)
        .await
        .map(Outcome::Generated)
}
