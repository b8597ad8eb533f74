//! The OpenAI-compatible layer: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/models` and `/v1/models/{model}`, shaped like Ollama's
//! `openai` package and `middleware/openai.go`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::embedding;
use crate::error::{ApiError, Dialect, parse_body};
use crate::generation::{Wire, with_type};
use crate::names::ModelName;
use crate::routes::chat::{self, ChatAsk, Turn};
use crate::routes::embed::{self, EmbedAsk};
use crate::routes::generate::{self, GenerateAsk, Outcome};
use crate::state::Shared;
use crate::text::Rng;

/// Ollama numbers its completions `chatcmpl-<0..999>` and `cmpl-<0..999>`.
fn short_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(n ^ clock::unix_ms());
    format!("{prefix}-{}", rng.below(999))
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ResponseFormat {
    #[serde(default, rename = "type")]
    kind: String,
    json_schema: Option<JsonSchema>,
}

#[derive(Deserialize)]
struct JsonSchema {
    schema: Option<Value>,
}

#[derive(Deserialize)]
struct ChatCompletionRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<OpenAiMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<i64>,
    seed: Option<i64>,
    response_format: Option<ResponseFormat>,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Value,
    tool_calls: Option<Value>,
}

/// Go's `%T` of a decoded JSON value, for Ollama's error messages.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `openai.FromChatRequest`: OpenAI messages to Ollama turns.
fn turns(messages: Vec<OpenAiMessage>) -> Result<Vec<Turn>, ApiError> {
    let mut turns = Vec::with_capacity(messages.len());
    for m in messages {
        let role = m.role.to_ascii_lowercase();
        match m.content {
            Value::String(content) => turns.push(Turn { role, content }),
            Value::Array(parts) => {
                for part in parts {
                    let invalid = || ApiError::bad_request("invalid message format");
                    let kind = part
                        .get("type")
                        .and_then(Value::as_str)
                        .ok_or_else(invalid)?;
                    match kind {
                        "text" => {
                            let text = part
                                .get("text")
                                .and_then(Value::as_str)
                                .ok_or_else(invalid)?;
                            turns.push(Turn {
                                role: role.clone(),
                                content: text.to_owned(),
                            });
                        }
                        "image_url" => {
                            let url = match part.get("image_url") {
                                Some(Value::Object(o)) => o.get("url").and_then(Value::as_str),
                                Some(Value::String(s)) => Some(s.as_str()),
                                _ => None,
                            }
                            .ok_or_else(invalid)?;
                            let ok = url.starts_with("data:;base64,")
                                || ["jpeg", "jpg", "png", "webp"]
                                    .iter()
                                    .any(|t| url.starts_with(&format!("data:image/{t};base64,")));
                            if !ok {
                                return Err(ApiError::bad_request("invalid image input"));
                            }
                            turns.push(Turn {
                                role: role.clone(),
                                content: String::new(),
                            });
                        }
                        _ => return Err(invalid()),
                    }
                }
            }
            _ if m.tool_calls.is_some() => {
                turns.push(Turn {
                    role,
                    content: String::new(),
                });
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid message content type: {}",
                    go_type(&other)
                )));
            }
        }
    }
    Ok(turns)
}

fn options(max_tokens: Option<i64>, seed: Option<i64>) -> Map<String, Value> {
    let mut options = Map::new();
    if let Some(n) = max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if let Some(s) = seed {
        options.insert("seed".into(), json!(s));
    }
    options
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let result = async {
        let req: ChatCompletionRequest = parse_body(&body)?;
        if req.messages.is_empty() {
            return Err(ApiError::bad_request("[] is too short - 'messages'"));
        }
        let format = match req.response_format {
            Some(f) if f.kind.trim().eq_ignore_ascii_case("json_object") => Some(json!("json")),
            Some(f) if f.kind.trim().eq_ignore_ascii_case("json_schema") => {
                f.json_schema.and_then(|s| s.schema)
            }
            _ => None,
        };
        let include_usage = req.stream_options.unwrap_or_default().include_usage;
        let ask = ChatAsk {
            model: req.model,
            turns: turns(req.messages)?,
            stream: req.stream,
            format,
            options: Some(options(req.max_tokens, req.seed)),
            keep_alive: None,
            think: None,
            wire: Wire::OpenAiChat {
                id: short_id("chatcmpl"),
                created: clock::unix_s(),
                include_usage,
            },
            started,
        };
        chat::answer(&shared, ask).await
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_as(Dialect::OpenAi))
}

#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: String,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<i64>,
    seed: Option<i64>,
}

/// `POST /v1/completions`.
pub(crate) async fn completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let result = async {
        let req: CompletionRequest = parse_body(&body)?;
        let include_usage = req.stream_options.unwrap_or_default().include_usage;
        let id = short_id("cmpl");
        let created = clock::unix_s();
        let model = req.model.clone();
        let stream = req.stream;
        let ask = GenerateAsk {
            model: req.model,
            prompt: req.prompt,
            suffix: req.suffix,
            system: String::new(),
            template: String::new(),
            context: None,
            raw: false,
            stream,
            format: None,
            options: Some(options(req.max_tokens, req.seed)),
            keep_alive: None,
            think: None,
            wire: Wire::OpenAiCompletion {
                id: id.clone(),
                created,
                include_usage,
            },
            started,
        };
        match generate::answer(&shared, ask).await? {
            Outcome::Generated(response) => Ok::<_, ApiError>(response),
            Outcome::Loaded(reason) => Ok(loaded_completion(&id, created, &model, reason, stream)),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_as(Dialect::OpenAi))
}

/// What the OpenAI layer makes of Ollama's answer to an empty prompt.
fn loaded_completion(id: &str, created: i64, model: &str, reason: &str, stream: bool) -> Response {
    let choice = json!([{ "text": "", "index": 0, "finish_reason": reason }]);
    if stream {
        let chunk = json!({
            "id": id, "object": "text_completion", "created": created,
            "choices": choice, "model": model, "system_fingerprint": "fp_ollama",
        });
        let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
        return with_type(Body::from(body), "text/event-stream");
    }
    let completion = json!({
        "id": id, "object": "text_completion", "created": created, "model": model,
        "system_fingerprint": "fp_ollama", "choices": choice,
        "usage": { "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 },
    });
    with_type(Body::from(completion.to_string()), "application/json")
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    input: Option<Value>,
    #[serde(default)]
    model: String,
    dimensions: Option<i64>,
    encoding_format: Option<String>,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingItem<'a> {
    object: &'static str,
    embedding: EmbeddingData<'a>,
    index: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingData<'a> {
    Float(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let result = async {
        let req: EmbeddingsRequest = parse_body(&body)?;
        let format = req.encoding_format.unwrap_or_default();
        let base64 = format.eq_ignore_ascii_case("base64");
        if !format.is_empty() && !base64 && !format.eq_ignore_ascii_case("float") {
            return Err(ApiError::bad_request(format!(
                "Invalid value for 'encoding_format' = {format}. Supported values: ['float', 'base64']."
            )));
        }
        let input = match req.input {
            Some(Value::String(s)) if s.is_empty() => json!([""]),
            None | Some(Value::Null) => return Err(ApiError::bad_request("invalid input")),
            Some(Value::Array(a)) if a.is_empty() => return Err(ApiError::bad_request("invalid input")),
            Some(other) => other,
        };
        let model = req.model.clone();
        let ask = EmbedAsk {
            inputs: embed::inputs(Some(&input))?,
            model: req.model,
            truncate: None,
            dimensions: req.dimensions,
            options: None,
            keep_alive: None,
            started,
        };
        let done = embed::answer(&shared, ask).await?;
        let data: Vec<EmbeddingItem<'_>> = done
            .embeddings
            .iter()
            .enumerate()
            .map(|(index, e)| EmbeddingItem {
                object: "embedding",
                embedding: if base64 {
                    EmbeddingData::Base64(embedding::to_base64(e))
                } else {
                    EmbeddingData::Float(e)
                },
                index,
            })
            .collect();
        let tokens = done.prompt_eval_count;
        let list = serde_json::to_vec(&EmbeddingList {
            object: "list",
            data,
            model: &model,
            usage: EmbeddingUsage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        })
        .unwrap_or_default();
        Ok(done.send(list, "application/json"))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response_as(Dialect::OpenAi))
}

fn owner(name: &str) -> String {
    ModelName::parse(name).map_or_else(|_| String::new(), |n| n.namespace)
}

/// `GET /v1/models`.
pub(crate) async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let models = shared.registry().list();
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            let id = m.display_name();
            json!({
                "id": id,
                "object": "model",
                "created": m.modified_at.unix_timestamp(),
                "owned_by": owner(&id),
            })
        })
        .collect();
    // Go marshals an empty (nil) list as null.
    let data = if data.is_empty() {
        Value::Null
    } else {
        Value::Array(data)
    };
    with_type(
        Body::from(json!({ "object": "list", "data": data }).to_string()),
        "application/json",
    )
}

/// `GET /v1/models/{model}`.
pub(crate) async fn model(State(shared): State<Arc<Shared>>, Path(raw): Path<String>) -> Response {
    let found = ModelName::parse(&raw)
        .ok()
        .and_then(|name| shared.registry().get(&name));
    match found {
        Some(m) => with_type(
            Body::from(
                json!({
                    "id": raw,
                    "object": "model",
                    "created": m.modified_at.unix_timestamp(),
                    "owned_by": owner(&raw),
                })
                .to_string(),
            ),
            "application/json",
        ),
        None => ApiError::model_not_found(&raw).into_response_as(Dialect::OpenAi),
    }
}
