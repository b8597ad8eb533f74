//! The team usage page: exact totals from Postgres always, and charts from
//! Prometheus over the same range when it answers (a banner says why not
//! otherwise).

use sqlx::PgConnection;

use super::promql::{self, Scope};
use crate::domain::authz::Actor;
use crate::domain::charts::line_chart;
use crate::domain::error::Result;
use crate::domain::{MetricSeries, MetricsSource};
use crate::model::text::storable;
use crate::model::{
    AppError, Chart, ChartSeries, MetricsState, UsageDashboard, UsageRange, key_rules,
};

/// What one chart asks Prometheus: each query is one line or, grouped by
/// `label`, one line per value of it.
pub(super) struct Spec {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub queries: Vec<(String, Option<&'static str>, String)>,
}

/// The latency quantiles of `metric` as lines named p50, p95, p99.
pub(super) fn quantiles(
    metric: &str,
    qs: &[(f64, &str)],
    scope: &Scope,
    window: i64,
) -> Vec<(String, Option<&'static str>, String)> {
    qs.iter()
        .map(|(q, name)| {
            (
                promql::quantile(metric, *q, scope, window),
                None,
                name.to_string(),
            )
        })
        .collect()
}

fn specs(scope: &Scope, window: i64) -> Vec<Spec> {
    let q = |metric, quantile: f64, name: &str| {
        (
            promql::quantile(metric, quantile, scope, window),
            None,
            name.to_string(),
        )
    };
    vec![
        Spec {
            id: "requests",
            title: "Requests per second",
            unit: "req/s",
            queries: vec![(
                promql::request_rate(scope, "model", window),
                Some("model"),
                String::new(),
            )],
        },
        Spec {
            id: "tokens",
            title: "Tokens per hour",
            unit: "tokens/h",
            queries: vec![(
                promql::tokens_per_hour(scope, window),
                Some("kind"),
                String::new(),
            )],
        },
        Spec {
            id: "errors",
            title: "Errors by status",
            unit: "%",
            queries: vec![(
                promql::error_percent(scope, window),
                Some("status"),
                String::new(),
            )],
        },
        Spec {
            id: "latency",
            title: "Latency",
            unit: "s",
            queries: vec![
                q(promql::DURATION, 0.5, "p50"),
                q(promql::DURATION, 0.95, "p95"),
                q(promql::DURATION, 0.99, "p99"),
            ],
        },
        Spec {
            id: "ttft",
            title: "Time to first token (streamed replies)",
            unit: "s",
            queries: vec![q(promql::TTFT, 0.5, "p50"), q(promql::TTFT, 0.95, "p95")],
        },
    ]
}

/// A team's dashboard over `range`, its charts limited to `model` if given.
pub async fn dashboard(
    conn: &mut PgConnection,
    actor: &Actor,
    metrics: Option<&dyn MetricsSource>,
    slug: &str,
    range: UsageRange,
    model: Option<String>,
) -> Result<UsageDashboard> {
    let model = match model.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()) {
        Some(m)
            if m.chars().count() > key_rules::MODEL_NAME_MAX || storable("model", &m).is_err() =>
        {
            return Err(AppError::validation(
                "model",
                format!(
                    "must be a model name of at most {} characters",
                    key_rules::MODEL_NAME_MAX
                ),
            )
            .into());
        }
        m => m,
    };
    // Only a member of the team (or an admin) gets past here, before
    // Prometheus is asked anything.
    let team_id = crate::domain::teams::visible_id(&mut *conn, actor, slug).await?;
    actor.authorize(crate::domain::Action::ViewUsage(team_id))?;
    let scope = Scope {
        team: Some(slug),
        model: model.as_deref(),
    };
    let asked = specs(&scope, window(&range));
    // Postgres and Prometheus at once: the page waits for the slower.
    let drawn = async {
        match metrics {
            None => (MetricsState::NotConfigured, Vec::new()),
            Some(source) => charts(source, asked, &range).await,
        }
    };
    let (summary, (metrics, charts)) = futures_util::future::join(
        super::summary(conn, actor, slug, range.from, range.to),
        drawn,
    )
    .await;
    let summary = summary?;
    let models = summary.by_model.iter().map(|m| m.model.clone()).collect();
    Ok(UsageDashboard {
        range,
        summary,
        metrics,
        charts,
        models,
        model,
    })
}

/// The rate window for a step: the step itself, and at least a minute so
/// that a few scrapes fall in it.
pub fn window(range: &UsageRange) -> i64 {
    range.step_secs.max(60)
}

/// Runs every chart's queries at once; a chart whose query failed is left
/// out and the first failure becomes the banner.
pub(super) async fn charts(
    source: &dyn MetricsSource,
    specs: Vec<Spec>,
    range: &UsageRange,
) -> (MetricsState, Vec<Chart>) {
    let (from, to, step) = (
        range.from.unix_timestamp(),
        range.to.unix_timestamp(),
        range.step_secs,
    );
    let asked = specs.iter().map(|spec| {
        futures_util::future::join_all(
            spec.queries
                .iter()
                .map(|(q, _, _)| source.query_range(q, from, to, step)),
        )
    });
    let answers = futures_util::future::join_all(asked).await;
    let mut failure = None;
    let mut charts = Vec::new();
    for (spec, answers) in specs.iter().zip(answers) {
        let mut series = Vec::new();
        for ((_, label, name), answer) in spec.queries.iter().zip(answers) {
            match answer {
                Ok(found) => series.extend(named(found, *label, name)),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_some() {
            continue;
        }
        series.sort_by(|a, b| a.name.cmp(&b.name));
        // Drawn with its gaps (NaN where a window had no requests: a
        // quantile of nothing), then sent without them: JSON has no NaN.
        let svg = line_chart(spec.id, spec.title, spec.unit, &series, (from, to, step));
        for s in &mut series {
            s.points.retain(|p| p.1.is_finite());
        }
        charts.push(Chart {
            id: spec.id.into(),
            title: spec.title.into(),
            unit: spec.unit.into(),
            svg,
            series,
        });
    }
    match failure {
        Some(reason) => (MetricsState::Unavailable { reason }, charts),
        None => (MetricsState::Ok, charts),
    }
}

/// Series named by their `label` value, or `name`.
fn named(found: Vec<MetricSeries>, label: Option<&str>, name: &str) -> Vec<ChartSeries> {
    found
        .into_iter()
        .map(|s| ChartSeries {
            name: match label {
                Some(l) => match s.labels.get(l).map(String::as_str) {
                    Some("") | None => "(none)".to_string(),
                    Some(v) => v.to_string(),
                },
                None => name.to_string(),
            },
            points: s.points,
        })
        .collect()
}
