//! One request through the gateway: classify the path, verify the key,
//! check the model and the limits, forward to the least busy Ollama, and
//! stream the reply back line by line while reading Ollama's own token
//! counts from it. A client that hangs up drops the upstream request with
//! it; whatever happened, one usage event is recorded.
//!
//! The parts live beside it: the routes (`routes.rs`), the body's fields
//! (`peek.rs`), the recorded outcome (`outcome.rs`) and the metered reply
//! stream (`metered.rs`).

use std::sync::Arc;
use std::time::Instant;

use app::model::{KeyScope, key_rules};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::errors::{Dialect, Refusal};
use super::keys::{Grant, presented_key, verify};
use super::serve::Inbound;
use super::upstream::{Client, Outgoing};
use super::{Gateway, GatewayState};
use startup::error_chain;
use startup::settings::FormatCheck;

mod metered;
mod outcome;
mod peek;
mod routes;
#[cfg(test)]
mod tests;

use metered::{InFlight, Metered};
use outcome::{Counts, Outcome};
use peek::{Peek, with_usage_requested};
use routes::MODEL_PATH;
pub use routes::{Kind, classify, root};

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
    // No time to first token: a reply that is not streamed arrives whole,
    // so its "first token" is its latency, which would only blur the
    // streamed figure.
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
