//! The admin usage page: every team ranked by tokens and requests and the
//! most used models (exact, from Postgres), and the cluster-wide charts
//! (all teams' traffic and latency, each upstream's queue and errors) from
//! Prometheus.

use sqlx::PgConnection;
use uuid::Uuid;

use super::dashboard::{Spec, charts, quantiles, window};
use super::promql::{self, Scope};
use super::totals::{model_totals, split};
use crate::domain::MetricsSource;
use crate::domain::authz::{Action, Actor};
use crate::domain::error::Result;
use crate::model::{AdminUsage, MetricsState, TeamUsage, UsageRange};

/// Models listed on the page.
const TOP_MODELS: i64 = 20;

pub async fn admin_dashboard(
    conn: &mut PgConnection,
    actor: &Actor,
    metrics: Option<&dyn MetricsSource>,
    range: UsageRange,
) -> Result<AdminUsage> {
    actor.authorize(Action::ViewAllUsage)?;
    let s = split(range.from, range.to);
    let [(a0, a1), (b0, b1)] = s.edges;
    // The partial days are read team by team through the events' primary
    // key (team_id, at, …), never by a scan of the whole log.
    let teams: Vec<Uuid> = sqlx::query_scalar!("SELECT id FROM teams")
        .fetch_all(&mut *conn)
        .await?;
    let ranked = sqlx::query!(
        r#"SELECT t.slug, t.monthly_token_quota,
                  COALESCE(u.requests, 0)::bigint AS "requests!",
                  COALESCE(u.errors, 0)::bigint AS "errors!",
                  COALESCE(u.tokens, 0)::bigint AS "tokens!",
                  COALESCE((SELECT SUM(prompt_tokens + completion_tokens) FROM usage_team_daily d
                             WHERE d.team_id = t.id
                               AND d.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date),
                           0)::bigint AS "month!"
             FROM teams t
             LEFT JOIN (SELECT team_id, SUM(requests) AS requests, SUM(errors) AS errors,
                               SUM(tokens) AS tokens
                          FROM (SELECT team_id, requests, errors,
                                       prompt_tokens + completion_tokens AS tokens
                                  FROM usage_team_daily WHERE day >= $1 AND day < $2
                                UNION ALL
                                SELECT team_id, 1, (status >= 400)::int,
                                       prompt_tokens + completion_tokens
                                  FROM usage_events
                                 WHERE team_id = ANY($7)
                                   AND ((at >= $3 AND at < $4) OR (at >= $5 AND at < $6))) e
                         GROUP BY team_id) u ON u.team_id = t.id
            ORDER BY 5 DESC, 3 DESC, t.slug"#,
        s.days.0,
        s.days.1,
        a0,
        a1,
        b0,
        b1,
        &teams
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| TeamUsage {
        team: r.slug,
        requests: r.requests,
        errors: r.errors,
        tokens: r.tokens,
        month_tokens: r.month,
        monthly_token_quota: r.monthly_token_quota,
    })
    .collect();
    let models = model_totals(&mut *conn, &teams, &s, Some(TOP_MODELS)).await?;
    let (metrics, charts) = match metrics {
        None => (MetricsState::NotConfigured, Vec::new()),
        Some(source) => charts(source, specs(window(&range)), &range).await,
    };
    Ok(AdminUsage {
        range,
        teams: ranked,
        models,
        metrics,
        charts,
    })
}

fn specs(window: i64) -> Vec<Spec> {
    let all = Scope {
        team: None,
        model: None,
    };
    vec![
        Spec {
            id: "team-requests",
            title: "Requests per second by team",
            unit: "req/s",
            queries: vec![(
                promql::request_rate(&all, "team", window),
                Some("team"),
                String::new(),
            )],
        },
        Spec {
            id: "cluster-latency",
            title: "Latency, all teams",
            unit: "s",
            queries: quantiles(
                promql::DURATION,
                &[(0.5, "p50"), (0.95, "p95"), (0.99, "p99")],
                &all,
                window,
            ),
        },
        Spec {
            id: "queue-depth",
            title: "Queue depth per upstream (ollama_queue_depth)",
            unit: "requests",
            queries: vec![(promql::queue_depth(), Some("upstream"), String::new())],
        },
        Spec {
            id: "upstream-errors",
            title: "Errors per upstream (5xx)",
            unit: "%",
            queries: vec![(
                promql::upstream_error_percent(window),
                Some("upstream"),
                String::new(),
            )],
        },
    ]
}
