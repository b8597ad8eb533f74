//! Usage events: written by the gateway in batches (Postgres keeps their
//! daily totals in `usage_daily`), read per team.

mod admin;
mod dashboard;
mod export;
pub mod promql;
mod totals;

pub use admin::admin_dashboard;
pub use dashboard::{dashboard, window};
pub use export::{ExportRow, export_days, export_events, export_team};
pub use totals::{month_tokens, project_month, summary};

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::Result;

/// One request the gateway served, as it records it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewUsageEvent {
    /// Made by the gateway: a batch written twice is stored once.
    pub event_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub team_id: Uuid,
    pub key_id: Option<Uuid>,
    pub model: String,
    pub endpoint: String,
    pub status: i16,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub upstream: String,
}

/// Writes a batch; events already stored are skipped. Returns how many
/// were new.
///
/// The batch goes in with one binary `COPY`, Postgres's cheapest way in
/// (about half the server CPU of `INSERT … ON CONFLICT`). A batch that
/// repeats a stored event (a retry after a commit whose answer was lost, a
/// spool replayed twice) fails as a whole on the primary key and is written
/// again with [`insert_new`], which skips what is there.
pub async fn record(conn: &mut PgConnection, events: &[NewUsageEvent]) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    match copy(&mut *conn, events).await {
        Ok(n) => Ok(n),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            insert_new(&mut *conn, events).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The columns [`copy`] sends, in order.
const COPY_STATEMENT: &str = "COPY usage_events (event_id, at, team_id, key_id, model, endpoint, \
     status, prompt_tokens, completion_tokens, latency_ms, ttft_ms, upstream) FROM STDIN (FORMAT binary)";

async fn copy(conn: &mut PgConnection, events: &[NewUsageEvent]) -> sqlx::Result<u64> {
    let data = copy_binary(events);
    let mut copy = conn.copy_in_raw(COPY_STATEMENT).await?;
    if let Err(e) = copy.send(data).await {
        // Leave the connection usable for the fallback.
        let _ = copy.abort("usage batch not sent").await;
        return Err(e);
    }
    copy.finish().await
}

/// Microseconds from the Unix epoch to Postgres's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i128 = 946_684_800_000_000;

/// `events` in `COPY … (FORMAT binary)` framing, columns as in
/// [`COPY_STATEMENT`].
fn copy_binary(events: &[NewUsageEvent]) -> Vec<u8> {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    fn null(buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    let mut buf = Vec::with_capacity(19 + events.len() * 220);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for e in events {
        buf.extend_from_slice(&12i16.to_be_bytes());
        field(&mut buf, e.event_id.as_bytes());
        let micros = e.at.unix_timestamp_nanos() / 1000 - PG_EPOCH_MICROS;
        field(&mut buf, &(micros as i64).to_be_bytes());
        field(&mut buf, e.team_id.as_bytes());
        match e.key_id {
            Some(k) => field(&mut buf, k.as_bytes()),
            None => null(&mut buf),
        }
        field(&mut buf, e.model.as_bytes());
        field(&mut buf, e.endpoint.as_bytes());
        field(&mut buf, &e.status.to_be_bytes());
        field(&mut buf, &e.prompt_tokens.to_be_bytes());
        field(&mut buf, &e.completion_tokens.to_be_bytes());
        field(&mut buf, &e.latency_ms.to_bits().to_be_bytes());
        match e.ttft_ms {
            Some(t) => field(&mut buf, &t.to_bits().to_be_bytes()),
            None => null(&mut buf),
        }
        field(&mut buf, e.upstream.as_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// Writes a batch in one statement, skipping events already stored.
/// Returns how many were new.
pub async fn insert_new(conn: impl PgExecutor<'_>, events: &[NewUsageEvent]) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut at = Vec::with_capacity(events.len());
    let mut teams = Vec::with_capacity(events.len());
    let mut keys: Vec<Option<Uuid>> = Vec::with_capacity(events.len());
    let mut models = Vec::with_capacity(events.len());
    let mut endpoints = Vec::with_capacity(events.len());
    let mut statuses = Vec::with_capacity(events.len());
    let mut prompt = Vec::with_capacity(events.len());
    let mut completion = Vec::with_capacity(events.len());
    let mut latency = Vec::with_capacity(events.len());
    let mut ttft: Vec<Option<f64>> = Vec::with_capacity(events.len());
    let mut upstreams = Vec::with_capacity(events.len());
    for e in events {
        ids.push(e.event_id);
        at.push(e.at);
        teams.push(e.team_id);
        keys.push(e.key_id);
        models.push(e.model.clone());
        endpoints.push(e.endpoint.clone());
        statuses.push(e.status);
        prompt.push(e.prompt_tokens);
        completion.push(e.completion_tokens);
        latency.push(e.latency_ms);
        ttft.push(e.ttft_ms);
        upstreams.push(e.upstream.clone());
    }
    let done = sqlx::query!(
        r#"INSERT INTO usage_events (event_id, at, team_id, key_id, model, endpoint, status,
                                     prompt_tokens, completion_tokens, latency_ms, ttft_ms, upstream)
           SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[],
                                $6::text[], $7::smallint[], $8::int[], $9::int[], $10::float8[],
                                $11::float8[], $12::text[])
           ON CONFLICT ON CONSTRAINT usage_events_pkey DO NOTHING"#,
        &ids,
        &at,
        &teams,
        &keys as &[Option<Uuid>],
        &models,
        &endpoints,
        &statuses,
        &prompt,
        &completion,
        &latency,
        &ttft as &[Option<f64>],
        &upstreams,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
