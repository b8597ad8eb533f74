//! Checks that the bench measures what it claims: the simulator answers,
//! and each proxy refuses a missing or wrong key, passes the right one, and
//! really forwards to the simulator.

use anyhow::{Context as _, bail};
use hyper::StatusCode;
use ollama_sim::Sim;
use serde_json::Value;

use crate::client::{Call, Conn, expect_status};
use crate::measure::Target;

/// `POST call` without a key, with `wrong_key`, and with the call's own key:
/// 401, 401, then 200 with a whole Ollama reply, and exactly one request
/// reaching `sim`.
pub async fn guarded(
    target: Target,
    call: &Call,
    wrong_key: &str,
    sim: &Sim,
) -> anyhow::Result<()> {
    let mut conn = Conn::open(target.addr).await?;
    let before = sim.stats().requests;
    let mut anonymous = call.clone();
    anonymous.key = None;
    let (status, _) = conn.fetch(&anonymous).await?;
    expect_status(
        &format!("{} without a key", target.name),
        status,
        StatusCode::UNAUTHORIZED,
    )?;
    let mut wrong = call.clone();
    wrong.key = Some(wrong_key.parse().context("a key is ASCII")?);
    let (status, _) = conn.fetch(&wrong).await?;
    expect_status(
        &format!("{} with a wrong key", target.name),
        status,
        StatusCode::UNAUTHORIZED,
    )?;
    if sim.stats().requests != before {
        bail!(
            "{} let a request without a valid key reach Ollama",
            target.name
        );
    }
    answers(target, call).await?;
    let reached = sim.stats().requests - before;
    if reached != 1 {
        bail!(
            "{} should forward one request to the simulator, {reached} arrived",
            target.name
        );
    }
    Ok(())
}

/// `call` gets 200 and a finished Ollama chat reply.
pub async fn answers(target: Target, call: &Call) -> anyhow::Result<()> {
    let mut conn = Conn::open(target.addr).await?;
    let (status, body) = conn.fetch(call).await?;
    expect_status(
        &format!("{} with the key", target.name),
        status,
        StatusCode::OK,
    )?;
    let reply: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{} did not answer JSON", target.name))?;
    let content = reply.pointer("/message/content").and_then(Value::as_str);
    if reply.get("done") != Some(&Value::Bool(true)) || content.is_none_or(str::is_empty) {
        bail!(
            "{} did not answer a finished chat reply: {reply}",
            target.name
        );
    }
    Ok(())
}

/// `GET /healthz` answers 200.
pub async fn healthy(target: Target) -> anyhow::Result<()> {
    let mut conn = Conn::open(target.addr).await?;
    let (status, _) = conn.fetch(&Call::get("/healthz")).await?;
    expect_status(&format!("{} /healthz", target.name), status, StatusCode::OK)
}
