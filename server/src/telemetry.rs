//! Logs, request spans and the Prometheus registry for the process and HTTP.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub use startup::init_tracing;

/// The process's metrics, served at `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registers once");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "corral_http_requests_total",
                "HTTP requests served, by route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "corral_http_request_duration_seconds",
                "Time from request to response headers, by route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registers once");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("registers once");
        let build = IntCounterVec::new(
            Opts::new("corral_build_info", "Always 1; labels carry the version."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).inc();
        registry.register(Box::new(build)).expect("registers once");
        Self {
            registry,
            http_requests,
            http_duration,
        }
    }

    /// Text exposition format of every registered metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts and times every request by its matched route (never the raw path,
/// so that metric cardinality stays bounded).
pub async fn track_http(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = route_label(&req);
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics
        .http_requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The route a request matched, or a fixed label for static files and misses.
pub fn route_label(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<MatchedPath>() {
        return p.as_str().to_owned();
    }
    let path = req.uri().path();
    if path.starts_with("/pkg/") {
        "/pkg/{asset}".into()
    } else {
        "unmatched".into()
    }
}

/// `GET /metrics`.
pub async fn metrics_handler(
    State((metrics, db)): State<(Metrics, sqlx::PgPool)>,
) -> impl IntoResponse {
    let mut text = metrics.render();
    text.push_str(&team_gauges(&db).await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
}

/// Each team's tokens this month and monthly quota, read at scrape time
/// from the daily rollup (a few rows per team), for the quota alerts.
/// Empty when Postgres does not answer: the scrape still succeeds.
async fn team_gauges(db: &sqlx::PgPool) -> String {
    let rows = sqlx::query!(
        r#"SELECT t.slug, t.monthly_token_quota,
                  COALESCE((SELECT SUM(prompt_tokens + completion_tokens) FROM usage_team_daily d
                             WHERE d.team_id = t.id
                               AND d.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date),
                           0)::bigint AS "tokens!"
             FROM teams t ORDER BY t.slug"#
    )
    .fetch_all(db)
    .await;
    let Ok(rows) = rows else {
        return String::new();
    };
    let registry = Registry::new();
    let quota = prometheus::IntGaugeVec::new(
        Opts::new(
            "corral_team_monthly_token_quota",
            "Each team's monthly token quota (teams without one are absent).",
        ),
        &["team"],
    )
    .expect("valid metric");
    let used = prometheus::IntGaugeVec::new(
        Opts::new(
            "corral_team_tokens_this_month",
            "Tokens each team used this calendar month (UTC), from Corral's own records.",
        ),
        &["team"],
    )
    .expect("valid metric");
    for r in rows {
        used.with_label_values(&[r.slug.as_str()]).set(r.tokens);
        if let Some(q) = r.monthly_token_quota {
            quota.with_label_values(&[r.slug.as_str()]).set(q);
        }
    }
    let _ = registry.register(Box::new(quota));
    let _ = registry.register(Box::new(used));
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
