//! One request through the gateway: classify the path, verify the key,
//! check the model and the limits, forward to the least busy Ollama, and
//! stream the reply back line by line while reading Ollama's own token
//! counts from it. A client that hangs up drops the upstream request with
//! it; whatever happened, one usage event is recorded.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use app::domain::usage::NewUsageEvent;
use app::model::{KeyScope, key_rules};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

use super::errors::{Dialect, Refusal};
use super::keys::{Grant, presented_key, verify};
use super::serve::Inbound;
use super::upstream::{Client, Lease, Outgoing, Reply};
use super::{Gateway, GatewayState};
use startup::error_chain;
use startup::settings::FormatCheck;

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
const MODEL_PATH: &str = "/v1/models/";

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

fn refuse(gw: &Gateway, r: Refusal, dialect: Dialect) -> Response<Body> {
    gw.metrics.rejections.with_label_values(&[r.reason()]).inc();
    r.into_response(dialect)
}

/// A request whose path and key have been checked; its body not yet read.
pub struct Admitted {
    kind: Kind,
    endpoint: &'static str,
    grant: Grant,
    t0: Instant,
    dialect: Dialect,
}

/// Checks a request's path and key from its head alone, so that nothing
/// of the body is read for a request that will be refused; the refusal is
/// the reply.
pub async fn admit(
    state: &GatewayState,
    method: &Method,
    path: &str,
    headers: &axum::http::HeaderMap,
) -> Result<Admitted, Response<Body>> {
    let t0 = Instant::now();
    let dialect = Dialect::of(path);
    let gw = &state.gw;
    let checked = async {
        let (kind, endpoint) = classify(method, path)?;
        let presented = presented_key(headers).ok_or(Refusal::MissingKey)?;
        let scope = if kind == Kind::Manage {
            KeyScope::Manage
        } else {
            KeyScope::Inference
        };
        let grant = verify(gw, presented, scope).await?;
        if kind == Kind::Inference {
            // Counted at admission, from the head: a request over its rate
            // limit or quota costs no more than its head (no body is read).
            let now = OffsetDateTime::now_utc();
            if grant.monthly_token_quota.is_some() && gw.limits.month_is_stale(grant.team_id, now) {
                refresh_month(gw, grant.team_id);
            }
            gw.limits.admit(&grant, now)?;
        }
        Ok((kind, endpoint, grant))
    };
    match checked.await {
        Ok((kind, endpoint, grant)) => Ok(Admitted {
            kind,
            endpoint,
            grant,
            t0,
            dialect,
        }),
        Err(r) => Err(refuse(gw, r, dialect)),
    }
}

/// Every proxied path, once admitted.
pub async fn handle(
    state: &GatewayState,
    admitted: Admitted,
    req: Request<Inbound>,
) -> Response<Body> {
    let gw = &state.gw;
    let dialect = admitted.dialect;
    match prepare(gw, &state.client, admitted, req).await {
        Ok(res) => res,
        Err(r) => refuse(gw, r, dialect),
    }
}

/// The request as the gateway forwards it.
struct Forward {
    grant: Grant,
    kind: Kind,
    endpoint: &'static str,
    model: String,
    stream: bool,
    strip_usage: bool,
    schema: Option<Value>,
}

/// The fields of a request body the gateway acts on, borrowed as sent;
/// the rest of the body is checked to be JSON and passed through unread.
///
/// Ollama reads bodies with Go's `encoding/json`, which matches field names
/// ignoring case (and folds `ſ` to `s`, the Kelvin sign to `k`) and lets
/// the last of a repeated field win. So a body whose `"Model"` differs from
/// its `"model"` would be checked for one model and run another: a field
/// that folds to one of these names without being it, and any field given
/// twice, is refused.
#[derive(Debug, Default)]
struct Peek<'a> {
    model: Option<&'a RawValue>,
    name: Option<&'a RawValue>,
    source: Option<&'a RawValue>,
    destination: Option<&'a RawValue>,
    stream: Option<&'a RawValue>,
    format: Option<&'a RawValue>,
    response_format: Option<&'a RawValue>,
    /// Present even when null, so that it is replaced, never repeated.
    stream_options: Option<&'a RawValue>,
}

/// The names [`Peek`] reads.
const PEEKED: [&str; 8] = [
    "model",
    "name",
    "source",
    "destination",
    "stream",
    "format",
    "response_format",
    "stream_options",
];

/// Whether Go's `encoding/json` takes the field `name` for `field` (an
/// ASCII lowercase name): equal ignoring ASCII case, with `ſ` as `s` and
/// the Kelvin sign as `k`.
fn go_folds_to(name: &str, field: &str) -> bool {
    let mut want = field.bytes();
    for c in name.chars() {
        let c = match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            _ => return false,
        };
        if want.next() != Some(c as u8) {
            return false;
        }
    }
    want.next().is_none()
}

/// A field name, borrowed from the body unless it had escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Peek<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Peek<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Peek<'de>, A::Error> {
                use serde::de::Error as _;
                let mut p = Peek::default();
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match key.as_ref() {
                        "model" => &mut p.model,
                        "name" => &mut p.name,
                        "source" => &mut p.source,
                        "destination" => &mut p.destination,
                        "stream" => &mut p.stream,
                        "format" => &mut p.format,
                        "response_format" => &mut p.response_format,
                        "stream_options" => &mut p.stream_options,
                        other => {
                            if let Some(meant) = PEEKED.iter().find(|f| go_folds_to(other, f)) {
                                return Err(A::Error::custom(format!(
                                    "has a field \"{other}\"; field names are case-sensitive here, write \"{meant}\""
                                )));
                            }
                            continue;
                        }
                    };
                    if slot.replace(value).is_some() {
                        return Err(A::Error::custom(format!("has the field \"{key}\" twice")));
                    }
                }
                // A null is an absent field, except for stream_options,
                // which is replaced when the gateway asks for usage.
                for f in [
                    &mut p.model,
                    &mut p.name,
                    &mut p.source,
                    &mut p.destination,
                    &mut p.stream,
                    &mut p.format,
                    &mut p.response_format,
                ] {
                    if f.is_some_and(|v| v.get() == "null") {
                        *f = None;
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Peek<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Refusal> {
        serde_json::from_slice(body).map_err(|e| {
            Refusal::BadRequest(if e.classify() == serde_json::error::Category::Data {
                // Well-formed, but not an object, or a field to refuse.
                let m = e.to_string();
                match m.strip_prefix("invalid type") {
                    Some(_) => "the request body must be a JSON object".to_owned(),
                    None => format!("the request body {m}"),
                }
            } else {
                format!("the request body is not valid JSON: {e}")
            })
        })
    }

    /// A text field, `None` when absent or null.
    fn text(raw: Option<&RawValue>, name: &str) -> Result<Option<String>, Refusal> {
        raw.map(|r| {
            serde_json::from_str::<String>(r.get())
                .map_err(|_| Refusal::BadRequest(format!("\"{name}\" must be a string")))
        })
        .transpose()
    }

    /// The model a request runs or reads: `model`, or the older `name`.
    fn model(&self) -> Result<String, Refusal> {
        match Self::text(self.model, "model")? {
            Some(m) => Ok(m),
            None => Self::text(self.name, "name")?.ok_or(Refusal::MissingModel),
        }
    }

    /// `stream`, or the endpoint's default when absent.
    fn stream(&self, default: bool) -> Result<bool, Refusal> {
        match self.stream {
            None => Ok(default),
            Some(r) => serde_json::from_str(r.get())
                .map_err(|_| Refusal::BadRequest("\"stream\" must be true or false".to_owned())),
        }
    }
}

/// The body with `stream_options.include_usage` set, so that Ollama sends
/// its usage chunk; `None` when the client asked for it already.
fn with_usage_requested(body: &[u8], peek: &Peek<'_>) -> Result<Option<Bytes>, Refusal> {
    let Some(opts) = peek.stream_options else {
        // No stream_options: add the field in front of the others.
        let Some(open) = body
            .iter()
            .position(|&b| !b.is_ascii_whitespace())
            .filter(|&i| body[i] == b'{')
        else {
            return Err(Refusal::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
        out.extend_from_slice(&body[open + 1..]);
        return Ok(Some(Bytes::from(out)));
    };
    let opts: Value = serde_json::from_str(opts.get()).unwrap_or(Value::Null);
    if opts.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let mut whole: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let Some(obj) = whole.as_object_mut() else {
        return Err(Refusal::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Default::default()));
    if !opts.is_object() {
        *opts = Value::Object(Default::default());
    }
    opts.as_object_mut()
        .expect("just made an object")
        .insert("include_usage".into(), Value::Bool(true));
    Ok(Some(Bytes::from(
        serde_json::to_vec(&whole).expect("a Value serialises"),
    )))
}

async fn prepare(
    gw: &Arc<Gateway>,
    client: &Client,
    admitted: Admitted,
    req: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    let Admitted {
        kind,
        endpoint,
        grant,
        t0,
        dialect,
    } = admitted;

    let (parts, body) = req.into_parts();
    let mut bytes = match body {
        Inbound::Full(b) => b.unwrap_or_default(),
        Inbound::TooLarge(max) => return Err(Refusal::TooLarge(max)),
    };
    let peek = if bytes.is_empty() || matches!(kind, Kind::List | Kind::Info) {
        None
    } else {
        Some(Peek::parse(&bytes)?)
    };

    // Which models the request touches, each checked against the key.
    let mut models: Vec<String> = Vec::with_capacity(1);
    match (kind, endpoint, &peek) {
        (Kind::ModelRead, "/v1/models/{model}", _) => {
            models.push(parts.uri.path()[MODEL_PATH.len()..].to_owned());
        }
        (Kind::Manage, "/api/copy", p) => {
            if let Some(p) = p {
                models.extend(Peek::text(p.source, "source")?);
                models.extend(Peek::text(p.destination, "destination")?);
            }
            if models.len() != 2 {
                return Err(Refusal::BadRequest(
                    "copy needs \"source\" and \"destination\"".into(),
                ));
            }
        }
        (Kind::Inference | Kind::ModelRead | Kind::Manage, _, Some(p)) => models.push(p.model()?),
        (Kind::Inference | Kind::ModelRead | Kind::Manage, _, None) => {
            return Err(Refusal::MissingModel);
        }
        _ => {}
    }
    // The first model, normalised, is the one the request is labelled with.
    let mut model = None;
    for m in &models {
        if key_rules::model_name("model", m).is_err() {
            return Err(Refusal::BadRequest(format!(
                "\"{m}\" is not a valid model name"
            )));
        }
        let normalized = key_rules::normalize_model(m);
        if !grant.allows_normalized_model(&normalized) {
            return Err(Refusal::ModelNotAllowed(m.clone()));
        }
        model.get_or_insert(normalized);
    }

    let mut stream = false;
    let mut strip_usage = false;
    let mut schema = None;
    if kind == Kind::Inference {
        let p = peek.as_ref().expect("inference requests have a body");
        stream = p.stream(matches!(endpoint, "/api/chat" | "/api/generate"))?;
        let rewritten = if stream && matches!(endpoint, "/v1/chat/completions" | "/v1/completions")
        {
            // Ask Ollama for the usage chunk; the client, who did not ask,
            // never sees it.
            with_usage_requested(&bytes, p)?
        } else {
            None
        };
        if !stream {
            schema = super::schema::requested_schema(p.format, p.response_format);
        }
        if let Some(b) = rewritten {
            bytes = b;
            strip_usage = true;
        }
    }
    let fwd = Forward {
        grant,
        kind,
        endpoint,
        model: model.unwrap_or_default(),
        stream,
        strip_usage,
        schema,
    };
    Ok(forward(gw, client, parts, bytes, fwd, t0, dialect).await)
}

fn refresh_month(gw: &Arc<Gateway>, team: Uuid) {
    let home = gw.home.clone();
    let gw = gw.clone();
    home.spawn(async move {
        match app::domain::usage::month_tokens(&gw.db, team).await {
            Ok(n) => gw.limits.set_month(team, n, OffsetDateTime::now_utc()),
            Err(e) => tracing::debug!(error = %e, "cannot refresh monthly tokens"),
        }
    });
}

/// What one request did, recorded once: when the reply ends, fails, or is
/// dropped because the client went away.
struct Outcome {
    gw: Arc<Gateway>,
    grant: Grant,
    kind: Kind,
    endpoint: &'static str,
    model: String,
    /// The upstream's place, held until the reply ends or the client leaves.
    lease: Lease,
    t0: Instant,
    ttft: Option<Duration>,
    status: u16,
    prompt: i64,
    completion: i64,
    /// Content chunks seen, the completion estimate for a cut-short stream.
    chunks: i64,
    counted: bool,
    finished: bool,
    recorded: bool,
}

impl Outcome {
    fn record(&mut self) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        if !self.finished {
            // 499: the client closed the connection first (nginx's code).
            self.status = 499;
        }
        if !self.counted {
            self.completion = self.chunks;
        }
        let latency = self.t0.elapsed();
        let series = self.gw.metrics.series(
            self.grant.team_id,
            &self.grant.team,
            &self.model,
            self.endpoint,
            self.status,
            self.kind == Kind::Inference,
        );
        series.requests.inc();
        series.duration.observe(latency.as_secs_f64());
        if let Some(t) = self.ttft {
            series.ttft.observe(t.as_secs_f64());
        }
        let Some((prompt, completion)) = &series.tokens else {
            return;
        };
        prompt.inc_by(self.prompt.max(0) as u64);
        completion.inc_by(self.completion.max(0) as u64);
        let now = OffsetDateTime::now_utc();
        self.gw.limits.add_tokens(
            &self.grant,
            (self.prompt + self.completion).max(0) as u64,
            now,
        );
        self.gw.usage.record(NewUsageEvent {
            event_id: self.gw.usage.event_id(now),
            at: now,
            team_id: self.grant.team_id,
            key_id: Some(self.grant.key_id),
            // Recorded once: the outcome has no more use for its model.
            model: std::mem::take(&mut self.model),
            endpoint: self.endpoint.to_owned(),
            status: self.status as i16,
            prompt_tokens: self.prompt.clamp(0, i32::MAX as i64) as i32,
            completion_tokens: self.completion.clamp(0, i32::MAX as i64) as i32,
            latency_ms: latency.as_secs_f64() * 1000.0,
            ttft_ms: self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            upstream: self.lease.upstream.base.clone(),
        });
    }

    /// Takes the token counts of a final chunk or a whole reply.
    fn take_counts(&mut self, c: &Counts) {
        if let Some(u) = &c.usage {
            self.prompt = u.prompt_tokens;
            self.completion = u.completion_tokens;
            self.counted = true;
        } else if c.prompt_eval_count.is_some() || c.eval_count.is_some() {
            self.prompt = c.prompt_eval_count.unwrap_or(0);
            self.completion = c.eval_count.unwrap_or(0);
            self.counted = true;
        }
    }
}

/// Ollama's own token counts, from a final chunk or a whole reply of either
/// API (`prompt_eval_count`/`eval_count` natively, `usage` on `/v1`); every
/// other field is skipped unread.
#[derive(Deserialize)]
struct Counts {
    prompt_eval_count: Option<i64>,
    eval_count: Option<i64>,
    usage: Option<OpenAiUsage>,
    /// Only its length matters: an empty list marks the usage-only chunk.
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.record();
    }
}

async fn forward(
    gw: &Arc<Gateway>,
    client: &Client,
    parts: axum::http::request::Parts,
    body: Bytes,
    fwd: Forward,
    t0: Instant,
    dialect: Dialect,
) -> Response<Body> {
    let lease = gw.upstreams.lease();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    // A HEAD is asked as a GET: hyper sends the head of its reply alone.
    let method = if parts.method == Method::HEAD {
        &Method::GET
    } else {
        &parts.method
    };
    let upstream_req = Outgoing {
        method,
        path_and_query,
        content_type: parts.headers.get(header::CONTENT_TYPE),
        accept: parts.headers.get(header::ACCEPT),
        body: &body,
    };
    gw.metrics.in_flight.inc();
    let _in_flight = InFlight(gw.metrics.in_flight.clone());
    let mut outcome = Outcome {
        gw: gw.clone(),
        grant: fwd.grant.clone(),
        kind: fwd.kind,
        endpoint: fwd.endpoint,
        model: fwd.model,
        lease,
        t0,
        ttft: None,
        status: 502,
        prompt: 0,
        completion: 0,
        chunks: 0,
        counted: false,
        finished: false,
        recorded: false,
    };
    gw.metrics.overhead.observe(t0.elapsed().as_secs_f64());
    let mut res = match client.send(&outcome.lease.upstream, &upstream_req).await {
        Ok(r) => r,
        Err(e) => {
            outcome.finished = true;
            let chain = error_chain(&e);
            tracing::warn!(upstream = %outcome.lease.upstream.base, error = %chain, "Ollama upstream failed");
            let what = if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                chain
            };
            return Refusal::Upstream(what).into_response(dialect);
        }
    };
    let status = StatusCode::from_u16(res.status).unwrap_or(StatusCode::BAD_GATEWAY);
    outcome.status = status.as_u16();
    let content_type = res.content_type.take();
    let streaming = status.is_success()
        && (fwd.stream || fwd.kind == Kind::Manage)
        && content_type.as_ref().is_some_and(|c| {
            let c = c.to_str().unwrap_or("");
            c.starts_with("application/x-ndjson") || c.starts_with("text/event-stream")
        });
    let mut builder = Response::builder().status(status.as_u16());
    if let Some(ct) = &content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    if streaming {
        let sse = content_type
            .as_ref()
            .is_some_and(|c| c.to_str().unwrap_or("").starts_with("text/event-stream"));
        // Wait for the first piece, so that the head and it leave in one
        // write (Ollama sends them together; a client hanging up meanwhile
        // still drops the request and records it).
        let mut buf = BytesMut::new();
        let primed = match std::future::poll_fn(|cx| res.poll_data(cx, &mut buf)).await {
            // An end that came with it is taken by the body's first poll.
            Ok(_) => {
                outcome.ttft = Some(t0.elapsed());
                !buf.is_empty()
            }
            Err(e) => {
                outcome.status = 502;
                outcome.finished = true;
                return Refusal::Upstream(format!("reply cut short: {e}")).into_response(dialect);
            }
        };
        let metered = Metered {
            inner: res,
            buf,
            primed,
            sse,
            strip_usage: fwd.strip_usage,
            skip_blank: false,
            done: false,
            failed: None,
            outcome,
            _in_flight,
        };
        return builder
            .header("x-accel-buffering", "no")
            .body(Body::new(metered))
            .unwrap_or_else(|_| Refusal::Upstream("bad reply".into()).into_response(dialect));
    }
    let bytes = match res.read_to_end().await {
        Ok(b) => b,
        Err(e) => {
            outcome.status = 502;
            outcome.finished = true;
            return Refusal::Upstream(format!("reply cut short: {e}")).into_response(dialect);
        }
    };
    outcome.ttft = Some(t0.elapsed());
    outcome.finished = true;
    let mut bytes = bytes;
    let mut format_errors = None;
    if status.is_success() {
        match fwd.kind {
            Kind::Inference => {
                if let Ok(c) = serde_json::from_slice::<Counts>(&bytes) {
                    outcome.take_counts(&c);
                }
                if let Some(schema) = &fwd.schema
                    && gw.format_check != FormatCheck::Off
                    && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                    && let Some(text) = super::schema::reply_text(&v)
                {
                    let errors = super::schema::check(schema, text);
                    if !errors.is_empty() {
                        format_errors = Some(errors);
                    }
                }
            }
            Kind::List => {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    bytes = Bytes::from(
                        serde_json::to_vec(&filter_models(v, &fwd.grant))
                            .expect("a Value serialises"),
                    );
                }
            }
            _ => {}
        }
    }
    if let Some(errors) = format_errors {
        match gw.format_check {
            FormatCheck::Reject => {
                outcome.status = 502;
                return refuse(
                    gw,
                    Refusal::Format(format!(
                        "the model's reply does not match the requested JSON schema: {}",
                        errors.join("; ")
                    )),
                    dialect,
                );
            }
            _ => {
                let text: String = errors
                    .join("; ")
                    .chars()
                    .filter(|c| c.is_ascii() && !c.is_ascii_control())
                    .take(1000)
                    .collect();
                if let Ok(v) = HeaderValue::from_str(&text) {
                    builder = builder.header("x-corral-format-errors", v);
                }
            }
        }
    }
    drop(outcome);
    builder
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Refusal::Upstream("bad reply".into()).into_response(dialect))
}

/// Keeps only the models the key may use in a model list of either API.
fn filter_models(mut v: Value, grant: &Grant) -> Value {
    for (list, field) in [("models", "name"), ("data", "id")] {
        if let Some(items) = v.get_mut(list).and_then(Value::as_array_mut) {
            items.retain(|m| {
                m.get(field)
                    .or_else(|| m.get("model"))
                    .and_then(Value::as_str)
                    .is_some_and(|name| grant.allows_model(name))
            });
        }
    }
    v
}

struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The reply stream, passed through whole lines at a time as they arrive,
/// read for Ollama's counts on the way.
struct Metered {
    inner: Reply,
    buf: BytesMut,
    /// `buf` holds the first piece, not yet passed on.
    primed: bool,
    sse: bool,
    strip_usage: bool,
    skip_blank: bool,
    done: bool,
    /// An upstream error, passed on after the lines that came before it.
    failed: Option<std::io::Error>,
    outcome: Outcome,
    _in_flight: InFlight,
}

impl Metered {
    /// Takes the complete lines from the buffer, reads them, and returns
    /// what the client gets.
    fn take_lines(&mut self, all: bool) -> Bytes {
        let end = if all {
            self.buf.len()
        } else {
            match self.buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return Bytes::new(),
            }
        };
        let chunk = self.buf.split_to(end).freeze();
        // Only when a line is dropped or rewritten is the chunk copied.
        let mut edited: Option<Vec<u8>> = None;
        let mut start = 0;
        while start < chunk.len() {
            let stop = chunk[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| start + i + 1)
                .unwrap_or(chunk.len());
            let line = &chunk[start..stop];
            match self.read_line(line) {
                Line::Keep => {
                    if let Some(e) = edited.as_mut() {
                        e.extend_from_slice(line);
                    }
                }
                change => {
                    let e = edited.get_or_insert_with(|| chunk[..start].to_vec());
                    if let Line::Replace(new) = change {
                        e.extend_from_slice(&new);
                    }
                }
            }
            start = stop;
        }
        match edited {
            Some(e) => Bytes::from(e),
            None => chunk,
        }
    }

    /// Reads one line and says what the client gets of it.
    fn read_line(&mut self, line: &[u8]) -> Line {
        let text = trim_eol(line);
        if self.sse {
            if text.is_empty() {
                return if std::mem::take(&mut self.skip_blank) {
                    Line::Drop
                } else {
                    Line::Keep
                };
            }
            let Some(data) = text.strip_prefix(b"data:") else {
                return Line::Keep;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                return Line::Keep;
            }
            if !contains(data, b"\"usage\"") {
                self.outcome.chunks += 1;
                return Line::Keep;
            }
            let Ok(c) = serde_json::from_slice::<Counts>(data) else {
                return Line::Keep;
            };
            let usage_only = c.choices.as_ref().is_some_and(|c| c.is_empty());
            // The empty usage `/v1/completions` puts on every chunk is not a
            // count: a stream cut before the real one is estimated instead.
            if usage_only
                || c.usage
                    .as_ref()
                    .is_some_and(|u| u.prompt_tokens > 0 || u.completion_tokens > 0)
            {
                self.outcome.take_counts(&c);
            }
            if usage_only {
                if self.strip_usage {
                    self.skip_blank = true;
                    return Line::Drop;
                }
                return Line::Keep;
            }
            self.outcome.chunks += 1;
            // `/v1/completions` puts an empty usage on every chunk once usage
            // is asked for; a client that did not ask never sees it.
            match (self.strip_usage, without_usage(data)) {
                (true, Some(stripped)) => {
                    let mut out = Vec::with_capacity(stripped.len() + 8);
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&stripped);
                    out.extend_from_slice(&line[text.len()..]);
                    Line::Replace(out)
                }
                _ => Line::Keep,
            }
        } else {
            if text.is_empty() {
                return Line::Keep;
            }
            if contains(text, b"\"done\":true") {
                if let Ok(c) = serde_json::from_slice::<Counts>(text) {
                    self.outcome.take_counts(&c);
                }
            } else {
                self.outcome.chunks += 1;
            }
            Line::Keep
        }
    }
}

/// What the client gets of one line of the reply.
enum Line {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

/// A JSON object without its `"usage"` member, if it has one that is an
/// object of numbers (as Ollama writes it); `None` otherwise.
fn without_usage(data: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"usage\":{";
    // A member of the object itself: after `{` or `,`, not inside a string.
    let at = data.windows(KEY.len()).enumerate().position(|(i, w)| {
        w == KEY
            && data[..i]
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .is_some_and(|j| matches!(data[j], b'{' | b','))
    })?;
    let close = at + data[at..].iter().position(|&b| b == b'}')? + 1;
    // With the comma before it, or after it when it comes first.
    let (from, to) = match data[..at].iter().rposition(|b| !b.is_ascii_whitespace()) {
        Some(i) if data[i] == b',' => (i, close),
        _ if data.get(close) == Some(&b',') => (at, close + 1),
        _ => (at, close),
    };
    let mut out = Vec::with_capacity(data.len() - (to - from));
    out.extend_from_slice(&data[..from]);
    out.extend_from_slice(&data[to..]);
    serde_json::from_slice::<serde::de::IgnoredAny>(&out)
        .is_ok()
        .then_some(out)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything Ollama has sent so far leaves in one piece (a token, or the
/// last lines and the end of the reply together), as soon as it has come.
impl hyper::body::Body for Metered {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut arrived = std::mem::take(&mut self.primed);
        loop {
            let this = &mut *self;
            match this.inner.poll_data(cx, &mut this.buf) {
                Poll::Ready(Ok(false)) => {
                    if this.outcome.ttft.is_none() {
                        this.outcome.ttft = Some(this.outcome.t0.elapsed());
                    }
                    arrived = true;
                }
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    self.outcome.status = 502;
                    self.outcome.finished = true;
                    // The whole lines that came before it go out first,
                    // and are counted before the event is recorded.
                    let out = self.take_lines(false);
                    self.outcome.record();
                    let e = std::io::Error::other(e);
                    if out.is_empty() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    self.failed = Some(e);
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Ok(true)) => {
                    // `done` before the last piece leaves: the end goes with
                    // it. The connection is back in its pool already.
                    self.done = true;
                    let rest = self.take_lines(true);
                    if !self.outcome.finished {
                        self.outcome.finished = true;
                        self.outcome.record();
                    }
                    return Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(rest))));
                }
                Poll::Pending => {
                    if arrived {
                        let out = self.take_lines(false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.failed.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_what_they_do() {
        assert_eq!(
            classify(&Method::POST, "/api/chat"),
            Ok((Kind::Inference, "/api/chat"))
        );
        assert_eq!(
            classify(&Method::GET, "/v1/models/hf.co/org/model:q4"),
            Ok((Kind::ModelRead, "/v1/models/{model}"))
        );
        assert_eq!(
            classify(&Method::DELETE, "/api/delete"),
            Ok((Kind::Manage, "/api/delete"))
        );
        assert_eq!(
            classify(&Method::HEAD, "/api/tags"),
            Ok((Kind::List, "/api/tags"))
        );
        assert_eq!(classify(&Method::GET, "/admin"), Err(Refusal::NotFound));
    }

    #[test]
    fn methods_ollama_does_not_take_are_refused_not_forwarded() {
        for (method, path, allow) in [
            (Method::GET, "/api/chat", "POST"),
            (Method::DELETE, "/api/tags", "GET, HEAD"),
            (Method::POST, "/api/tags", "GET, HEAD"),
            (Method::PUT, "/api/version", "GET, HEAD"),
            (Method::HEAD, "/api/ps", "GET"),
            (Method::POST, "/api/delete", "DELETE"),
            (Method::DELETE, "/v1/models/a", "GET"),
            (Method::DELETE, "/v1/models/a/../../api/delete", "GET"),
        ] {
            assert_eq!(
                classify(&method, path),
                Err(Refusal::MethodNotAllowed(allow)),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_model_path_cannot_walk_to_another_route() {
        for path in [
            "/v1/models/",
            "/v1/models/a/../../api/delete",
            "/v1/models/..",
            "/v1/models/.",
            "/v1/models/a//b",
            "/v1/models/a/",
            "/v1/models/%2e%2e/x",
        ] {
            assert!(
                matches!(classify(&Method::GET, path), Err(Refusal::BadRequest(_))),
                "{path}"
            );
        }
    }

    fn message(r: Result<impl std::fmt::Debug, Refusal>) -> String {
        match r {
            Err(Refusal::BadRequest(m)) => m,
            Err(Refusal::MissingModel) => "missing model".into(),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn request_bodies_are_read_for_their_fields_only_and_bad_ones_named() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"there\""}],"model":"llama3.2","stream":false,"options":{"seed":1}}"#;
        let p = Peek::parse(body).unwrap();
        assert_eq!(p.model().unwrap(), "llama3.2");
        assert!(!p.stream(true).unwrap());
        let p = Peek::parse(br#"{"name":"qwen:0.5b"}"#).unwrap();
        assert_eq!(p.model().unwrap(), "qwen:0.5b");
        assert!(p.stream(true).unwrap(), "absent stream takes the default");
        assert_eq!(
            message(Peek::parse(br#"{}"#).unwrap().model()),
            "missing model"
        );
        assert_eq!(
            message(Peek::parse(br#"{"model":null}"#).unwrap().model()),
            "missing model"
        );
        assert_eq!(
            message(Peek::parse(br#"{"model":7}"#).unwrap().model()),
            "\"model\" must be a string"
        );
        assert_eq!(
            message(
                Peek::parse(br#"{"model":"m","stream":"yes"}"#)
                    .unwrap()
                    .stream(true)
            ),
            "\"stream\" must be true or false"
        );
        assert_eq!(
            message(Peek::parse(br#"[1,2]"#)),
            "the request body must be a JSON object"
        );
        assert!(
            message(Peek::parse(br#"{"model":"m","#))
                .starts_with("the request body is not valid JSON")
        );
        assert!(
            message(Peek::parse(br#"{"model":"a","model":"b"}"#))
                .starts_with("the request body has the field \"model\" twice at line 1")
        );
        // Go matches field names ignoring case: one model checked, another run.
        for body in [
            &br#"{"model":"llama3.2","Model":"forbidden"}"#[..],
            br#"{"MODEL":"forbidden"}"#,
            br#"{"model":"m","Stream":true}"#,
            "{\"model\":\"m\",\"\u{17F}tream\":true}".as_bytes(),
            br#"{"mod\u0065l":"a","model":"b"}"#,
        ] {
            let m = message(Peek::parse(body));
            assert!(m.starts_with("the request body has"), "{m}");
        }
        assert!(message(Peek::parse(br#"{"Model":"x"}"#)).contains("write \"model\""));
        // Names that only begin or end like a peeked one are other fields.
        let p = Peek::parse(
            "{\"model\":\"m\",\"Models\":1,\"STREAMS\":2,\"ſtrea\":3,\"é\":4}".as_bytes(),
        )
        .unwrap();
        assert_eq!(p.model.map(|r| r.get()), Some("\"m\""));
        assert!(p.stream.is_none());
        assert_eq!(
            message(Peek::parse(
                br#"["llama3.2",null,null,null,true,null,null]"#
            )),
            "the request body must be a JSON object"
        );
        let p =
            Peek::parse(br#"{"model":"m","stream_options":null,"options":{"Model":1}}"#).unwrap();
        assert_eq!(p.stream_options.map(|r| r.get()), Some("null"));
    }

    #[test]
    fn usage_is_requested_once_and_the_rest_of_the_body_kept() {
        let ask = |body: &[u8]| {
            let p = Peek::parse(body).unwrap();
            with_usage_requested(body, &p)
                .unwrap()
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
        };
        let added = ask(br#" {"model":"m","stream":true}"#).unwrap();
        assert_eq!(
            added,
            serde_json::json!({"model":"m","stream":true,"stream_options":{"include_usage":true}})
        );
        let merged =
            ask(br#"{"model":"m","stream_options":{"include_usage":false,"x":1}}"#).unwrap();
        assert_eq!(
            merged["stream_options"],
            serde_json::json!({"include_usage":true,"x":1})
        );
        let replaced = ask(br#"{"model":"m","stream_options":null}"#).unwrap();
        assert_eq!(
            replaced["stream_options"],
            serde_json::json!({"include_usage":true})
        );
        assert_eq!(
            ask(br#"{"model":"m","stream_options":{"include_usage":true}}"#),
            None
        );
    }

    #[test]
    fn an_unasked_usage_member_is_cut_from_a_chunk() {
        let cut = |s: &str| without_usage(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            cut(r#"{"id":"c","choices":[{"text":"Hi"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}"#).as_deref(),
            Some(r#"{"id":"c","choices":[{"text":"Hi"}]}"#)
        );
        assert_eq!(
            cut(r#"{"usage":{"prompt_tokens":0},"id":"c"}"#).as_deref(),
            Some(r#"{"id":"c"}"#)
        );
        assert_eq!(cut(r#"{"id":"c","usage":null}"#), None);
        assert_eq!(
            cut(r#"{"choices":[{"text":"say \"usage\":{\"x\":1}"}]}"#),
            None,
            "text that looks like the member is left alone"
        );
        assert_eq!(cut(r#"{"id":"c"}"#), None);
    }

    #[test]
    fn counts_are_read_from_either_api() {
        let native: Counts = serde_json::from_str(
            r#"{"model":"m","message":{"role":"assistant","content":"x"},"done":true,"prompt_eval_count":26,"eval_count":290,"total_duration":1}"#,
        )
        .unwrap();
        assert_eq!(
            (native.prompt_eval_count, native.eval_count),
            (Some(26), Some(290))
        );
        let usage_chunk: Counts = serde_json::from_str(
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        )
        .unwrap();
        let u = usage_chunk.usage.as_ref().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 4));
        assert_eq!(usage_chunk.choices.map(|c| c.len()), Some(0));
    }
}
