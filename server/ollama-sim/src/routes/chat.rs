//! `POST /api/chat`, and the chat flow `/v1/chat/completions` shares.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::CAP_COMPLETION;
use crate::error::{ApiError, Dialect, parse_body};
use crate::generation::{self, Format, Job, Options, Plan, Wire};
use crate::state::Shared;
use crate::text::{Markers, hash, words};

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    stream: Option<bool>,
    format: Option<Value>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
    think: Option<Value>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<String>,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Turn {
    pub(crate) role: String,
    pub(crate) content: String,
}

/// A chat request, whichever API it came through.
#[derive(Debug)]
pub(crate) struct ChatAsk {
    pub(crate) model: String,
    pub(crate) turns: Vec<Turn>,
    pub(crate) stream: bool,
    pub(crate) format: Option<Value>,
    pub(crate) options: Option<Map<String, Value>>,
    pub(crate) keep_alive: Option<Value>,
    pub(crate) think: Option<Value>,
    pub(crate) wire: Wire,
    pub(crate) started: Instant,
}

/// `POST /api/chat`.
pub(crate) async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let ask = match parse_body::<ChatRequest>(&body) {
        Ok(req) => ChatAsk {
            model: req.model,
            turns: req
                .messages
                .into_iter()
                .map(|m| Turn {
                    role: m.role.to_ascii_lowercase(),
                    content: m.content.unwrap_or_default(),
                })
                .collect(),
            stream: req.stream.unwrap_or(true),
            format: req.format,
            options: req.options,
            keep_alive: req.keep_alive,
            think: req.think,
            wire: Wire::Chat,
            started,
        },
        Err(e) => return e.into_response_as(Dialect::Ollama),
    };
    answer(&shared, ask)
        .await
        .unwrap_or_else(|e| e.into_response_as(Dialect::Ollama))
}

/// Runs a chat: checks, plans and generates, as Ollama's `ChatHandler` does.
pub(crate) async fn answer(shared: &Arc<Shared>, ask: ChatAsk) -> Result<Response, ApiError> {
    let injected = generation::take_fault(shared)?;
    let model = generation::find_model(shared, &ask.model)?;
    let keep_alive = generation::keep_alive(ask.keep_alive.as_ref())?;
    let options = Options::parse(ask.options.as_ref())?;
    if ask.turns.is_empty() && keep_alive == crate::clock::KeepAlive::Unload {
        let reason = generation::load_only(shared, &model, keep_alive, options);
        return Ok(generation::chat_load_response(&ask.model, reason));
    }
    generation::require(&model, CAP_COMPLETION, &ask.model, "chat")?;
    generation::check_think(&model, ask.think.as_ref(), &ask.model)?;
    if ask.turns.is_empty() {
        let reason = generation::load_only(shared, &model, keep_alive, options);
        return Ok(generation::chat_load_response(&ask.model, reason));
    }
    let format = Format::parse(ask.format.as_ref())?;

    // The conversation the model sees: its baked messages and system prompt first.
    let mut conversation: Vec<(&str, &str)> = Vec::new();
    if ask.turns[0].role != "system" && !model.system.is_empty() {
        conversation.push(("system", &model.system));
    }
    conversation.extend(
        model
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str())),
    );
    conversation.extend(
        ask.turns
            .iter()
            .map(|t| (t.role.as_str(), t.content.as_str())),
    );
    let parts: Vec<&str> = conversation.iter().flat_map(|(r, c)| [*r, *c]).collect();
    let seed = hash(&parts);
    let prompt_eval_count = conversation.iter().map(|(_, c)| words(c) + 4).sum::<u32>() + 1;
    let last_user = ask
        .turns
        .iter()
        .rev()
        .find(|t| t.role == "user")
        .or_else(|| ask.turns.last())
        .map_or("", |t| t.content.as_str());
    let markers = Markers::scan(last_user);

    let plan = Plan::new(
        &shared.config,
        seed,
        markers,
        &format,
        options,
        prompt_eval_count,
    );
    let job = Job {
        model_label: ask.model,
        wire: ask.wire,
        plan,
        stream: ask.stream,
        injected,
        started: ask.started,
    };
    generation::run(shared, &model, keep_alive, options, job).await
}
