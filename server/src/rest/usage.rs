//! `/api/v1` usage: a team's totals, and its exports (CSV or JSON, by day,
//! key and model or every request), streamed from Postgres.

use app::domain::usage::{ExportRow, export_days, export_events, export_team};
use app::model::{UsageEvent, UsageSummary};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use time::{Date, Duration, OffsetDateTime};

use super::problem::Problem;
use super::{Caller, Params, SlugPath};
use crate::ServerState;

fn db_err(e: sqlx::Error) -> Problem {
    app::domain::Error::from(e).into()
}

/// `?days=` on usage.
#[derive(Debug, serde::Deserialize)]
pub struct UsageQuery {
    pub days: Option<i64>,
}

impl utoipa::IntoParams for UsageQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        vec![super::param(
            "days",
            utoipa::openapi::path::ParameterIn::Query,
            "How many days back.",
            app::model::key_rules::schema::usage_days(),
            None,
        )]
    }
}

/// The team's usage through the gateway: totals, per model and per key
/// since `days` ago, this month's tokens against the quota with the
/// month-end projection, and the latest requests.
#[utoipa::path(get, path = "/api/v1/teams/{slug}/usage", tag = "usage",
    params(SlugPath, UsageQuery),
    responses(
        (status = 200, body = UsageSummary),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn team_usage(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Params(q): Params<UsageQuery>,
) -> Result<Json<UsageSummary>, Problem> {
    let days = q.days.unwrap_or(7);
    app::model::key_rules::USAGE_DAYS.check("days", days)?;
    let now = OffsetDateTime::now_utc();
    let since = now - Duration::days(days);
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(
        app::domain::usage::summary(&mut conn, &actor, &slug, since, now).await?,
    ))
}

/// What an export holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One row per day (UTC), key and model.
    #[default]
    Day,
    /// One row per request.
    Event,
}

/// How an export is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Csv,
    Json,
}

/// `?from=&to=&granularity=&format=` on exports.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First day (UTC, `YYYY-MM-DD`), included; the first of this month if
    /// not given.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-01")]
    pub from: Option<String>,
    /// Day (UTC) the export ends before, not included; tomorrow if not
    /// given.
    #[param(value_type = Option<String>, format = Date, example = "2026-12-01")]
    pub to: Option<String>,
    #[param(inline)]
    pub granularity: Option<Granularity>,
    #[param(inline)]
    pub format: Option<Format>,
}

/// The longest export by day, and by request.
const MAX_DAYS: i64 = 3660;
const MAX_EVENT_DAYS: i64 = app::model::usage::MAX_RANGE_DAYS;

/// Bytes gathered before a piece goes to the client.
const PIECE: usize = 64 * 1024;

fn day(field: &str, v: Option<&str>, default: Date) -> Result<Date, app::model::AppError> {
    // Present means a day: an empty value is refused, not taken as absent.
    match v {
        None => Ok(default),
        Some(v) => {
            app::model::text::storable(field, v)?;
            Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(
                |_| app::model::AppError::validation(field, "must be a day like 2026-12-01"),
            )
        }
    }
}

/// The team's usage between two days, exact from Corral's own records
/// (it outlives Prometheus's retention), streamed: by day, key and model,
/// or every request. CSV cells that a spreadsheet would run as a formula
/// are prefixed with `'`.
#[utoipa::path(get, path = "/api/v1/teams/{slug}/usage/export", tag = "usage",
    params(SlugPath, ExportQuery),
    responses(
        (status = 200, description = "The rows, oldest first; CSV with a header line, or a JSON array (of ExportRow by day, of UsageEvent by request).",
            content((String = "text/csv"), (Vec<ExportRow> = "application/json"))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_usage(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Params(q): Params<ExportQuery>,
) -> Result<Response, Problem> {
    let today = OffsetDateTime::now_utc().date();
    let from = day(
        "from",
        q.from.as_deref(),
        today.replace_day(1).unwrap_or(today),
    )?;
    let to = day("to", q.to.as_deref(), today.next_day().unwrap_or(today))?;
    let granularity = q.granularity.unwrap_or_default();
    let format = q.format.unwrap_or_default();
    if to <= from {
        return Err(app::model::AppError::validation("to", "must be after from").into());
    }
    let max = match granularity {
        Granularity::Day => MAX_DAYS,
        Granularity::Event => MAX_EVENT_DAYS,
    };
    if (to - from).whole_days() > max {
        return Err(app::model::AppError::validation(
            "from",
            format!("an export of this granularity spans at most {max} days"),
        )
        .into());
    }
    let team_id = {
        let mut conn = s.app.db.acquire().await.map_err(db_err)?;
        export_team(&mut conn, &actor, &slug).await?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let db = s.app.db.clone();
    tokio::spawn(async move {
        let sent = match granularity {
            Granularity::Day => send(&tx, format, export_days(&db, team_id, from, to)).await,
            Granularity::Event => {
                let (a, b) = (from.midnight().assume_utc(), to.midnight().assume_utc());
                send(&tx, format, export_events(&db, team_id, a, b)).await
            }
        };
        if let Err(e) = sent {
            // The client sees the body cut short, never a partial file that
            // looks whole.
            tracing::warn!(error = %e, "usage export stopped");
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    let (mime, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let name = format!("usage-{slug}-{from}-{to}.{ext}");
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A row of an export.
trait Row: serde::Serialize {
    const HEADER: &'static [&'static str];
    /// Its cells, for CSV.
    fn cells(&self) -> Vec<String>;
}

impl Row for ExportRow {
    const HEADER: &'static [&'static str] = &[
        "day",
        "key",
        "key_name",
        "model",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "avg_latency_ms",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.key.clone(),
            safe_cell(&self.key_name),
            safe_cell(&self.model),
            self.requests.to_string(),
            self.errors.to_string(),
            self.prompt_tokens.to_string(),
            self.completion_tokens.to_string(),
            format!("{:.3}", self.avg_latency_ms),
        ]
    }
}

impl Row for UsageEvent {
    const HEADER: &'static [&'static str] = &[
        "at",
        "key",
        "model",
        "endpoint",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "ttft_ms",
    ];
    fn cells(&self) -> Vec<String> {
        let at = self
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        vec![
            at,
            self.key.clone().unwrap_or_default(),
            safe_cell(&self.model),
            self.endpoint.clone(),
            self.status.to_string(),
            self.prompt_tokens.to_string(),
            self.completion_tokens.to_string(),
            format!("{:.3}", self.latency_ms),
            self.ttft_ms.map(|t| format!("{t:.3}")).unwrap_or_default(),
        ]
    }
}

/// A text cell a spreadsheet will not run as a formula (OWASP's advice for
/// CSV injection).
fn safe_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// A CSV writer into a fresh piece.
fn piece_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(PIECE + 8 * 1024))
}

/// The bytes written so far, and a fresh writer for the next piece.
fn take(csv: &mut csv::Writer<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    Ok(std::mem::replace(csv, piece_writer()).into_inner()?)
}

/// Writes `rows` to the channel in pieces of about [`PIECE`] bytes; stops
/// quietly when the client has gone.
async fn send<R: Row>(
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    format: Format,
    rows: impl Stream<Item = sqlx::Result<R>>,
) -> anyhow::Result<()> {
    let mut rows = std::pin::pin!(rows);
    let mut csv = piece_writer();
    // JSON goes straight into `json`; CSV through the writer.
    let mut json = Vec::with_capacity(PIECE + 8 * 1024);
    let mut first = true;
    match format {
        Format::Csv => csv.write_record(R::HEADER)?,
        Format::Json => json.push(b'['),
    }
    while let Some(row) = rows.next().await {
        let row = row?;
        let full = match format {
            Format::Csv => {
                csv.write_record(row.cells())?;
                csv.get_ref().len() >= PIECE
            }
            Format::Json => {
                if !first {
                    json.extend_from_slice(b",\n");
                }
                serde_json::to_writer(&mut json, &row)?;
                json.len() >= PIECE
            }
        };
        first = false;
        if full {
            let piece = match format {
                Format::Csv => take(&mut csv)?,
                Format::Json => std::mem::replace(&mut json, Vec::with_capacity(PIECE + 8 * 1024)),
            };
            if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                return Ok(());
            }
        }
    }
    let last = match format {
        Format::Csv => take(&mut csv)?,
        Format::Json => {
            json.extend_from_slice(b"]\n");
            json
        }
    };
    let _ = tx.send(Ok(Bytes::from(last))).await;
    Ok(())
}
