//! Generations: planning the answer, taking a slot, pacing tokens and writing them
//! in Ollama's NDJSON or the OpenAI layer's server-sent events.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{CAP_THINKING, Model};
use crate::clock::{self, KeepAlive};
use crate::config::SimConfig;
use crate::error::ApiError;
use crate::faults::Injected;
use crate::names::ModelName;
use crate::schema;
use crate::state::Shared;
use crate::text::{Markers, Rng, Tokens, hash};

/// Context length Ollama loads a model with unless told otherwise.
pub(crate) const DEFAULT_NUM_CTX: u32 = 4096;

/// The context a model is loaded with: the request's `num_ctx`, else the
/// model's own parameter, else Ollama's default.
fn context_length(model: &Model, options: Options) -> u32 {
    options
        .num_ctx
        .or_else(|| {
            model
                .parameter("num_ctx")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        })
        .unwrap_or(DEFAULT_NUM_CTX)
}

/// The `format` of a request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Format {
    None,
    Json,
    Schema(Value),
}

impl Format {
    /// Reads `format` as Ollama's runner does: absent, `""`, `"json"` or a schema object.
    pub(crate) fn parse(value: Option<&Value>) -> Result<Self, ApiError> {
        match value {
            None | Some(Value::Null) => Ok(Self::None),
            Some(Value::String(s)) if s.is_empty() => Ok(Self::None),
            Some(Value::String(s)) if s == "json" => Ok(Self::Json),
            Some(Value::Object(_)) => Ok(Self::Schema(value.cloned().unwrap_or_default())),
            Some(other) => {
                let raw = other.to_string();
                Err(ApiError::internal(format!(
                    "invalid format: {}; expected \"json\" or a valid JSON Schema object",
                    Value::String(raw)
                )))
            }
        }
    }
}

/// The runtime options the simulator honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) num_predict: Option<i64>,
    pub(crate) num_ctx: Option<u32>,
    pub(crate) seed: Option<i64>,
}

impl Options {
    /// Reads `options`, failing like Ollama's `Options.FromMap` on a mistyped value.
    pub(crate) fn parse(map: Option<&Map<String, Value>>) -> Result<Self, ApiError> {
        let mut options = Self::default();
        let Some(map) = map else {
            return Ok(options);
        };
        let integer = |key: &str| -> Result<Option<i64>, ApiError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => {
                    Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)))
                }
                Some(_) => Err(ApiError::internal(format!(
                    "option \"{key}\" must be of type integer"
                ))),
            }
        };
        options.num_predict = integer("num_predict")?;
        options.num_ctx = integer("num_ctx")?
            .filter(|n| *n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        options.seed = integer("seed")?;
        Ok(options)
    }
}

/// Finds an installed model by the name a client sent.
pub(crate) fn find_model(shared: &Shared, raw: &str) -> Result<Arc<Model>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let name = ModelName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    shared
        .registry()
        .get(&name)
        .ok_or_else(|| ApiError::model_not_found(raw))
}

/// Refuses a model that cannot do `action` ("chat", "generate").
pub(crate) fn require(
    model: &Model,
    capability: &str,
    raw: &str,
    action: &str,
) -> Result<(), ApiError> {
    if model.supports(capability) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "\"{raw}\" does not support {action}"
        )))
    }
}

/// Refuses `think` on a model that does not think.
pub(crate) fn check_think(model: &Model, think: Option<&Value>, raw: &str) -> Result<(), ApiError> {
    let wants = match think {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    if wants && !model.supports(CAP_THINKING) {
        return Err(ApiError::bad_request(format!(
            "\"{raw}\" does not support thinking"
        )));
    }
    Ok(())
}

/// Reads `keep_alive` (absent means Ollama's five minutes).
pub(crate) fn keep_alive(value: Option<&Value>) -> Result<KeepAlive, ApiError> {
    value.map_or(Ok(KeepAlive::DEFAULT), |v| {
        KeepAlive::parse(v).map_err(ApiError::bad_request)
    })
}

/// What the model will answer, decided before any time passes.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) tokens: Tokens,
    pub(crate) done_reason: &'static str,
    pub(crate) prompt_eval_count: u32,
    /// `context` of `/api/generate`: the prompt and answer as token ids.
    pub(crate) context: Option<Vec<u32>>,
}

impl Plan {
    /// Plans the answer to a prompt whose text hashes to `seed`.
    pub(crate) fn new(
        config: &SimConfig,
        seed: u64,
        markers: Markers,
        format: &Format,
        options: Options,
        prompt_eval_count: u32,
    ) -> Self {
        let seed = options
            .seed
            .map_or(seed, |s| seed ^ hash(&[&s.to_string()]));
        let mut rng = Rng::new(seed);
        let schema = match format {
            Format::Schema(s) => Some(s),
            _ => None,
        };
        let json = if markers.invalid_json {
            let valid = match schema {
                Some(s) => schema::generate(s, &mut rng),
                None => schema::free_form(&mut rng),
            };
            let text = valid.to_string();
            // Cut inside the document: never valid JSON.
            let cut = text.len().saturating_sub(2).max(1);
            let mut cut = cut.min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            Some(format!("{},", &text[..cut]))
        } else if markers.schema_violation && *format != Format::None {
            Some(schema::violate(schema, &mut rng).to_string())
        } else {
            match format {
                Format::None => None,
                Format::Json => Some(schema::free_form(&mut rng).to_string()),
                Format::Schema(s) => Some(schema::generate(s, &mut rng).to_string()),
            }
        };
        let mut tokens = match json {
            Some(text) => Tokens::chunked(text, seed),
            None => {
                let n = markers.tokens.unwrap_or(config.default_tokens).max(1);
                Tokens::lorem(seed, usize::try_from(n).unwrap_or(usize::MAX))
            }
        };
        let cut = match options.num_predict {
            Some(n) if n > 0 => tokens.truncate(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => false,
        };
        Self {
            tokens,
            done_reason: if cut { "length" } else { "stop" },
            prompt_eval_count: prompt_eval_count.max(1),
            context: None,
        }
    }

    /// Adds the `context` token ids `/api/generate` returns.
    pub(crate) fn with_context(mut self, seed: u64) -> Self {
        let n = self.prompt_eval_count as usize + self.tokens.len();
        let mut rng = Rng::new(seed ^ 0x5eed);
        self.context = Some(
            (0..n)
                .map(|_| u32::try_from(rng.below(128_256)).unwrap_or(0))
                .collect(),
        );
        self
    }

    fn eval_count(&self) -> u32 {
        u32::try_from(self.tokens.len()).unwrap_or(u32::MAX)
    }
}

/// How a generation is written on the wire.
#[derive(Clone, Debug)]
pub(crate) enum Wire {
    /// `/api/chat`.
    Chat,
    /// `/api/generate`.
    Generate,
    /// `/v1/chat/completions`.
    OpenAiChat {
        id: String,
        created: i64,
        include_usage: bool,
    },
    /// `/v1/completions`.
    OpenAiCompletion {
        id: String,
        created: i64,
        include_usage: bool,
    },
}

/// A planned generation, ready to run.
#[derive(Debug)]
pub(crate) struct Job {
    /// The model as the client spelled it: echoed in every chunk.
    pub(crate) model_label: String,
    pub(crate) wire: Wire,
    pub(crate) plan: Plan,
    pub(crate) stream: bool,
    pub(crate) injected: Injected,
    pub(crate) started: Instant,
}

/// Takes a slot, loads the model, waits out the time to first token and answers,
/// streamed or whole.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    model: &Arc<Model>,
    keep_alive: KeepAlive,
    options: Options,
    job: Job,
) -> Result<Response, ApiError> {
    let (lease, acquired) =
        acquire_and_wait(shared, model, keep_alive, options, job.injected).await?;
    let first = Instant::now();
    let gap = shared.config.token_gap;
    if job.stream {
        let content_type = match job.wire {
            Wire::Chat | Wire::Generate => "application/x-ndjson",
            Wire::OpenAiChat { .. } | Wire::OpenAiCompletion { .. } => "text/event-stream",
        };
        let streamer = Streamer {
            lease,
            job,
            next: 0,
            finished: false,
            gap,
            acquired,
            first,
            last: first,
        };
        let stream = futures_util::stream::unfold(streamer, |mut s| async move {
            let item = s.step().await?;
            Some((item, s))
        });
        return Ok(with_type(Body::from_stream(stream), content_type));
    }
    let n = job.plan.tokens.len();
    if n > 1 && !gap.is_zero() {
        tokio::time::sleep(gap * u32::try_from(n - 1).unwrap_or(u32::MAX)).await;
    }
    let metrics = Metrics::measure(&job, acquired, first, Instant::now());
    let body = render_whole(&job, &metrics);
    let content_type = match job.wire {
        Wire::Chat | Wire::Generate => "application/json; charset=utf-8",
        Wire::OpenAiChat { .. } | Wire::OpenAiCompletion { .. } => "application/json",
    };
    Ok(finish_whole(lease, job.injected, body, content_type))
}

/// How long a cut connection lingers after its last bytes, so they are flushed
/// to the client before the connection breaks.
const DROP_LINGER: Duration = Duration::from_millis(20);

/// The error that breaks a connection, after the data before it went out.
async fn dropped_connection() -> io::Error {
    tokio::time::sleep(DROP_LINGER).await;
    io::Error::other("simulated dropped connection")
}

/// A body that sends half of `body`, then breaks the connection.
pub(crate) fn cut_short(body: Vec<u8>) -> Body {
    use futures_util::StreamExt as _;
    let bytes = Bytes::from(body);
    let half = bytes.slice(..bytes.len() / 2);
    let head = futures_util::stream::iter([Ok::<_, io::Error>(half)]);
    let tail = futures_util::stream::once(async { Err(dropped_connection().await) });
    Body::from_stream(head.chain(tail))
}

pub(crate) fn with_type(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Timings of a finished generation, in nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Metrics {
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u32,
    prompt_eval_duration: u64,
    eval_count: u32,
    eval_duration: u64,
}

impl Metrics {
    fn measure(job: &Job, acquired: Instant, first: Instant, last: Instant) -> Self {
        let now = Instant::now();
        Self {
            total_duration: clock::nanos(now - job.started),
            load_duration: clock::nanos(acquired - job.started),
            prompt_eval_count: job.plan.prompt_eval_count,
            prompt_eval_duration: clock::nanos(first - acquired),
            eval_count: job.plan.eval_count(),
            eval_duration: clock::nanos(last.saturating_duration_since(first)),
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_eval_count,
            completion_tokens: self.eval_count,
            total_tokens: self.prompt_eval_count + self.eval_count,
        }
    }
}

/// Streams a generation token by token; dropping it mid-way cancels the generation.
struct Streamer {
    lease: crate::state::Lease,
    job: Job,
    next: usize,
    finished: bool,
    gap: Duration,
    acquired: Instant,
    first: Instant,
    last: Instant,
}

impl Streamer {
    async fn step(&mut self) -> Option<Result<Bytes, io::Error>> {
        if self.finished {
            return None;
        }
        let n = self.job.plan.tokens.len();
        let drop_after = self.job.injected.drop_after();
        // Tokens that go out before an injected drop cuts the connection.
        let limit = drop_after.map_or(n, |after| {
            usize::try_from(after).unwrap_or(usize::MAX).min(n)
        });
        if drop_after.is_some() && self.next >= limit {
            self.finished = true;
            self.lease.fail();
            return Some(Err(dropped_connection().await));
        }
        let mut out = Vec::with_capacity(256);
        if self.next < n {
            if self.next > 0 && !self.gap.is_zero() {
                tokio::time::sleep(self.gap).await;
            }
            let created_at = clock::rfc3339(clock::now());
            // Without a gap, everything ready goes out in one write.
            let until = if self.gap.is_zero() {
                limit
            } else {
                self.next + 1
            };
            while self.next < until {
                render_token(
                    &mut out,
                    &self.job,
                    self.job.plan.tokens.get(self.next),
                    &created_at,
                );
                self.next += 1;
            }
            self.last = Instant::now();
            if self.next < n || drop_after.is_some() || !self.gap.is_zero() {
                return Some(Ok(Bytes::from(out)));
            }
        }
        self.finished = true;
        let metrics = Metrics::measure(&self.job, self.acquired, self.first, self.last);
        render_final(&mut out, &self.job, &metrics, &clock::rfc3339(clock::now()));
        self.lease.complete();
        Some(Ok(Bytes::from(out)))
    }
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

const ASSISTANT: &str = "assistant";
const FINGERPRINT: &str = "fp_ollama";

#[derive(Serialize)]
struct ChatLine<'a> {
    model: &'a str,
    created_at: &'a str,
    message: Message<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    done: bool,
    #[serde(flatten)]
    metrics: Option<Metrics>,
}

#[derive(Serialize)]
struct GenerateLine<'a> {
    model: &'a str,
    created_at: &'a str,
    response: &'a str,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a [u32]>,
    #[serde(flatten)]
    metrics: Option<Metrics>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Message<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct ChatCompletionChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct CompletionChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    choices: &'a [TextChoice<'a>],
    model: &'a str,
    system_fingerprint: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [TextChoice<'a>; 1],
    usage: Usage,
}

fn ndjson(out: &mut Vec<u8>, value: &impl Serialize) {
    // Serialising these plain structs cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.push(b'\n');
}

fn sse(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

fn render_token(out: &mut Vec<u8>, job: &Job, token: &str, created_at: &str) {
    let model = job.model_label.as_str();
    match &job.wire {
        Wire::Chat => {
            ndjson(
                out,
                &ChatLine {
                    model,
                    created_at,
                    message: Message {
                        role: ASSISTANT,
                        content: token,
                    },
                    done_reason: None,
                    done: false,
                    metrics: None,
                },
            );
        }
        Wire::Generate => {
            ndjson(
                out,
                &GenerateLine {
                    model,
                    created_at,
                    response: token,
                    done: false,
                    done_reason: None,
                    context: None,
                    metrics: None,
                },
            );
        }
        Wire::OpenAiChat { id, created, .. } => sse(
            out,
            &ChatCompletionChunk {
                id,
                object: "chat.completion.chunk",
                created: *created,
                model,
                system_fingerprint: FINGERPRINT,
                choices: &[ChunkChoice {
                    index: 0,
                    delta: Message {
                        role: ASSISTANT,
                        content: token,
                    },
                    finish_reason: None,
                }],
                usage: None,
            },
        ),
        Wire::OpenAiCompletion {
            id,
            created,
            include_usage,
        } => sse(
            out,
            &CompletionChunk {
                id,
                object: "text_completion",
                created: *created,
                choices: &[TextChoice {
                    text: token,
                    index: 0,
                    finish_reason: None,
                }],
                model,
                system_fingerprint: FINGERPRINT,
                // Ollama's CompleteWriter attaches an empty usage to every chunk
                // when usage was asked for.
                usage: include_usage.then(Usage::default),
            },
        ),
    }
}

fn render_final(out: &mut Vec<u8>, job: &Job, metrics: &Metrics, created_at: &str) {
    let model = job.model_label.as_str();
    let reason = job.plan.done_reason;
    match &job.wire {
        Wire::Chat => {
            ndjson(
                out,
                &ChatLine {
                    model,
                    created_at,
                    message: Message {
                        role: ASSISTANT,
                        content: "",
                    },
                    done_reason: Some(reason),
                    done: true,
                    metrics: Some(*metrics),
                },
            );
        }
        Wire::Generate => {
            ndjson(
                out,
                &GenerateLine {
                    model,
                    created_at,
                    response: "",
                    done: true,
                    done_reason: Some(reason),
                    context: job.plan.context.as_deref(),
                    metrics: Some(*metrics),
                },
            );
        }
        Wire::OpenAiChat {
            id,
            created,
            include_usage,
        } => {
            let choices = [ChunkChoice {
                index: 0,
                delta: Message {
                    role: ASSISTANT,
                    content: "",
                },
                finish_reason: Some(reason),
            }];
            let mut chunk = ChatCompletionChunk {
                id,
                object: "chat.completion.chunk",
                created: *created,
                model,
                system_fingerprint: FINGERPRINT,
                choices: &choices,
                usage: None,
            };
            sse(out, &chunk);
            if *include_usage {
                chunk.choices = &[];
                chunk.usage = Some(metrics.usage());
                sse(out, &chunk);
            }
            out.extend_from_slice(SSE_DONE);
        }
        Wire::OpenAiCompletion {
            id,
            created,
            include_usage,
        } => {
            let choices = [TextChoice {
                text: "",
                index: 0,
                finish_reason: Some(reason),
            }];
            let mut chunk = CompletionChunk {
                id,
                object: "text_completion",
                created: *created,
                choices: &choices,
                model,
                system_fingerprint: FINGERPRINT,
                usage: include_usage.then(Usage::default),
            };
            sse(out, &chunk);
            if *include_usage {
                chunk.choices = &[];
                chunk.usage = Some(metrics.usage());
                sse(out, &chunk);
            }
            out.extend_from_slice(SSE_DONE);
        }
    }
}

fn render_whole(job: &Job, metrics: &Metrics) -> Vec<u8> {
    let model = job.model_label.as_str();
    let reason = job.plan.done_reason;
    let text = job.plan.tokens.text();
    let created_at = clock::rfc3339(clock::now());
    let body = match &job.wire {
        Wire::Chat => serde_json::to_vec(&ChatLine {
            model,
            created_at: &created_at,
            message: Message {
                role: ASSISTANT,
                content: text,
            },
            done_reason: Some(reason),
            done: true,
            metrics: Some(*metrics),
        }),
        Wire::Generate => serde_json::to_vec(&GenerateLine {
            model,
            created_at: &created_at,
            response: text,
            done: true,
            done_reason: Some(reason),
            context: job.plan.context.as_deref(),
            metrics: Some(*metrics),
        }),
        Wire::OpenAiChat { id, .. } => serde_json::to_vec(&ChatCompletion {
            id,
            object: "chat.completion",
            created: clock::unix_s(),
            model,
            system_fingerprint: FINGERPRINT,
            choices: [Choice {
                index: 0,
                message: Message {
                    role: ASSISTANT,
                    content: text,
                },
                finish_reason: Some(reason),
            }],
            usage: metrics.usage(),
        }),
        Wire::OpenAiCompletion { id, .. } => serde_json::to_vec(&Completion {
            id,
            object: "text_completion",
            created: clock::unix_s(),
            model,
            system_fingerprint: FINGERPRINT,
            choices: [TextChoice {
                text,
                index: 0,
                finish_reason: Some(reason),
            }],
            usage: metrics.usage(),
        }),
    };
    body.unwrap_or_default()
}

/// The answer to a chat with no messages (load) or with `keep_alive: 0` (unload).
pub(crate) fn chat_load_response(model_label: &str, reason: &str) -> Response {
    let created_at = clock::rfc3339(clock::now());
    let body = serde_json::to_vec(&ChatLine {
        model: model_label,
        created_at: &created_at,
        message: Message {
            role: ASSISTANT,
            content: "",
        },
        done_reason: Some(reason),
        done: true,
        metrics: None,
    })
    .unwrap_or_default();
    with_type(Body::from(body), "application/json; charset=utf-8")
}

/// The answer to a generate with an empty prompt (load) or with `keep_alive: 0` (unload).
pub(crate) fn generate_load_response(model_label: &str, reason: &str) -> Response {
    let created_at = clock::rfc3339(clock::now());
    let body = serde_json::to_vec(&GenerateLine {
        model: model_label,
        created_at: &created_at,
        response: "",
        done: true,
        done_reason: Some(reason),
        context: None,
        metrics: None,
    })
    .unwrap_or_default();
    with_type(Body::from(body), "application/json; charset=utf-8")
}

/// Loads (or unloads, for `keep_alive: 0`) a model without generating.
pub(crate) fn load_only(
    shared: &Shared,
    model: &Arc<Model>,
    keep_alive: KeepAlive,
    options: Options,
) -> &'static str {
    let mut registry = shared.registry();
    if keep_alive == KeepAlive::Unload {
        registry.unload(&model.name);
        "unload"
    } else {
        registry.load(model, keep_alive, context_length(model, options));
        "load"
    }
}

/// The fault the next inference request suffers; an injected error is answered at once.
pub(crate) fn take_fault(shared: &Shared) -> Result<Injected, ApiError> {
    match shared.faults.take() {
        Injected::Error(status) => {
            crate::stats::Counters::bump(&shared.counters.failed);
            tracing::debug!(status = status.as_u16(), "injected error");
            Err(ApiError::injected(status))
        }
        other => Ok(other),
    }
}

/// Sends a whole (non-streamed) answer, or half of it and a broken connection
/// when a drop was injected.
pub(crate) fn finish_whole(
    mut lease: crate::state::Lease,
    injected: Injected,
    body: Vec<u8>,
    content_type: &'static str,
) -> Response {
    if injected.drop_after().is_some() {
        lease.fail();
        return with_type(cut_short(body), content_type);
    }
    lease.complete();
    with_type(Body::from(body), content_type)
}

/// Takes a slot for a request that is not a token stream (embeddings), loads the
/// model and waits out the time to first token.
pub(crate) async fn acquire_and_wait(
    shared: &Arc<Shared>,
    model: &Arc<Model>,
    keep_alive: KeepAlive,
    options: Options,
    injected: Injected,
) -> Result<(crate::state::Lease, Instant), ApiError> {
    let lease = shared
        .acquire()
        .await
        .map_err(|busy| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))?;
    let acquired = Instant::now();
    shared
        .registry()
        .load(model, keep_alive, context_length(model, options));
    let wait = shared.config.ttft + injected.delay();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok((lease, acquired))
}
