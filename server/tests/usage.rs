//! Usage from Corral's own records: the daily rollup is exact under retried
//! batches, range totals with partial days equal the events, exports (CSV
//! and JSON, by day or by request) equal the table and stream in flat
//! memory, and no one reads another team's usage.

mod common;

use std::collections::BTreeMap;

use app::domain::usage::{NewUsageEvent, insert_new, record};
use axum::http::StatusCode;
use common::TestApp;
use sqlx::PgPool;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

async fn team_id(db: &PgPool, slug: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM teams WHERE slug = $1")
        .bind(slug)
        .fetch_one(db)
        .await
        .unwrap()
}

/// `n` events from `start`, one every `every`, over three models and two
/// keys (one of them none), some failing.
fn events(
    team: Uuid,
    key: Option<Uuid>,
    start: OffsetDateTime,
    every: Duration,
    n: usize,
) -> Vec<NewUsageEvent> {
    (0..n)
        .map(|i| NewUsageEvent {
            event_id: Uuid::new_v4(),
            at: start + every * i as i32,
            team_id: team,
            key_id: if i % 3 == 0 { None } else { key },
            model: ["llama3.2:latest", "qwen2.5:7b", "=cmd|' /C calc'!A0"][i % 3].into(),
            endpoint: "/api/chat".into(),
            status: if i % 7 == 0 { 500 } else { 200 },
            prompt_tokens: (i % 50) as i32,
            completion_tokens: (i % 90) as i32,
            latency_ms: 10.0 + (i % 13) as f64,
            ttft_ms: (i % 2 == 0).then_some(5.0),
            upstream: "http://127.0.0.1:11434".into(),
        })
        .collect()
}

/// (requests, errors, prompt, completion) per (day, key, model) from the
/// events and from the rollup.
async fn both_ways(
    db: &PgPool,
) -> (
    Vec<(String, String, i64, i64, i64, i64)>,
    Vec<(String, String, i64, i64, i64, i64)>,
) {
    let from_events = sqlx::query_as(
        "SELECT ((at AT TIME ZONE 'UTC')::date)::text || '/' || COALESCE(key_id::text, '-'), model,
                count(*), count(*) FILTER (WHERE status >= 400),
                SUM(prompt_tokens)::bigint, SUM(completion_tokens)::bigint
           FROM usage_events GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let from_rollup = sqlx::query_as(
        "SELECT day::text || '/' || COALESCE(key_id::text, '-'), model,
                requests, errors, prompt_tokens, completion_tokens
           FROM usage_daily ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    // The per-team rollup holds the same totals without the key.
    let per_team: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day::text, model, requests, errors, prompt_tokens, completion_tokens
           FROM usage_team_daily ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let per_team_from_events: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT ((at AT TIME ZONE 'UTC')::date)::text, model,
                count(*), count(*) FILTER (WHERE status >= 400),
                SUM(prompt_tokens)::bigint, SUM(completion_tokens)::bigint
           FROM usage_events GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(per_team, per_team_from_events);
    (from_events, from_rollup)
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_daily_rollup_counts_every_event_once_even_when_batches_are_retried(db: PgPool) {
    let app = TestApp::new(db.clone());
    app.dev_sign_in("olu").await;
    let team = team_id(&db, "team-a").await;
    let all = events(
        team,
        Some(Uuid::new_v4()),
        datetime!(2026-11-28 20:00 UTC),
        Duration::minutes(7),
        3000,
    );
    let mut conn = db.acquire().await.unwrap();
    for batch in all.chunks(500) {
        assert_eq!(record(&mut conn, batch).await.unwrap(), batch.len() as u64);
    }
    // A batch written again (its commit's answer was lost), one half old
    // and half new, and a replay through the row-by-row path.
    assert_eq!(record(&mut conn, &all[..500]).await.unwrap(), 0);
    let more = events(
        team,
        None,
        datetime!(2026-12-01 00:00 UTC),
        Duration::seconds(1),
        200,
    );
    let mixed: Vec<_> = all[2800..].iter().chain(more.iter()).cloned().collect();
    assert_eq!(record(&mut conn, &mixed).await.unwrap(), 200);
    assert_eq!(insert_new(&mut *conn, &all[1000..1500]).await.unwrap(), 0);
    let (events, rollup) = both_ways(&db).await;
    assert!(events.len() > 10, "{events:?}");
    assert_eq!(events, rollup);
    // Two writers at once, on the same days, keys and models.
    let a = self::events(
        team,
        None,
        datetime!(2026-12-02 00:00 UTC),
        Duration::seconds(3),
        2000,
    );
    let b = self::events(
        team,
        None,
        datetime!(2026-12-02 00:00 UTC),
        Duration::seconds(3),
        2000,
    );
    let (db1, db2) = (db.clone(), db.clone());
    let w1 = tokio::spawn(async move {
        let mut c = db1.acquire().await.unwrap();
        for chunk in a.chunks(100) {
            record(&mut c, chunk).await.unwrap();
        }
    });
    let w2 = tokio::spawn(async move {
        let mut c = db2.acquire().await.unwrap();
        for chunk in b.chunks(100) {
            record(&mut c, chunk).await.unwrap();
        }
    });
    w1.await.unwrap();
    w2.await.unwrap();
    let (events, rollup) = both_ways(&db).await;
    assert_eq!(events, rollup);
}

fn v(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn totals_over_a_range_with_partial_days_equal_the_events(db: PgPool) {
    let app = TestApp::new(db.clone());
    let olu = app.dev_sign_in("olu").await;
    let team = team_id(&db, "team-a").await;
    let now = OffsetDateTime::now_utc();
    let all = events(
        team,
        None,
        now - Duration::days(6),
        Duration::minutes(5),
        6 * 288 - 10,
    );
    record(&mut db.acquire().await.unwrap(), &all)
        .await
        .unwrap();
    let (res, text) = app.get_as("/api/v1/teams/team-a/usage?days=3", &olu).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let got = v(&text);
    let since = OffsetDateTime::parse(
        got["since"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until = OffsetDateTime::parse(
        got["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let inside: Vec<_> = all
        .iter()
        .filter(|e| e.at >= since && e.at < until)
        .collect();
    assert_eq!(got["requests"], inside.len() as i64);
    assert_eq!(
        got["prompt_tokens"],
        inside.iter().map(|e| e.prompt_tokens as i64).sum::<i64>()
    );
    assert_eq!(
        got["completion_tokens"],
        inside
            .iter()
            .map(|e| e.completion_tokens as i64)
            .sum::<i64>()
    );
    let by_model: BTreeMap<String, i64> = got["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_owned(),
                m["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut want = BTreeMap::new();
    for e in &inside {
        *want.entry(e.model.clone()).or_insert(0) += 1;
    }
    assert_eq!(by_model, want);
    // TTFT is averaged over the requests that have one (streamed) only.
    let m = &got["by_model"][0];
    assert_eq!(m["avg_ttft_ms"], 5.0);
    let month: i64 = all
        .iter()
        .filter(|e| e.at.month() == now.month() && e.at.year() == now.year())
        .map(|e| (e.prompt_tokens + e.completion_tokens) as i64)
        .sum();
    assert_eq!(got["month_tokens"], month);
    assert!(got["projected_month_tokens"].as_i64().unwrap() >= month);
}

fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn sum(rows: &[BTreeMap<String, String>], col: &str) -> i64 {
    rows.iter().map(|r| r[col].parse::<i64>().unwrap()).sum()
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn exports_equal_the_table_for_the_same_days_in_csv_and_json(db: PgPool) {
    let app = TestApp::new(db.clone());
    let olu = app.dev_sign_in("olu").await;
    let team = team_id(&db, "team-a").await;
    let all = events(
        team,
        None,
        datetime!(2026-11-20 13:00 UTC),
        Duration::minutes(11),
        2500,
    );
    record(&mut db.acquire().await.unwrap(), &all)
        .await
        .unwrap();
    let (from, to) = (
        datetime!(2026-11-22 0:00 UTC),
        datetime!(2026-11-27 0:00 UTC),
    );
    let inside: Vec<_> = all.iter().filter(|e| e.at >= from && e.at < to).collect();
    let base = "/api/v1/teams/team-a/usage/export?from=2026-11-22&to=2026-11-27";

    let (res, text) = app.get_as(base, &olu).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("usage-team-a-2026-11-22-2026-11-27.csv")
    );
    let rows = csv_rows(&text);
    assert_eq!(sum(&rows, "requests"), inside.len() as i64);
    assert_eq!(
        sum(&rows, "errors"),
        inside.iter().filter(|e| e.status >= 400).count() as i64
    );
    assert_eq!(
        sum(&rows, "prompt_tokens"),
        inside.iter().map(|e| e.prompt_tokens as i64).sum::<i64>()
    );
    assert_eq!(
        sum(&rows, "completion_tokens"),
        inside
            .iter()
            .map(|e| e.completion_tokens as i64)
            .sum::<i64>()
    );
    // A model name a spreadsheet would run is written as text.
    assert!(
        rows.iter().any(|r| r["model"] == "'=cmd|' /C calc'!A0"),
        "{text}"
    );
    assert!(rows.iter().all(|r| !r["model"].starts_with('=')));

    let (res, text) = app.get_as(&format!("{base}&format=json"), &olu).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let json = v(&text);
    let n: i64 = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(n, inside.len() as i64);

    let (res, text) = app.get_as(&format!("{base}&granularity=event"), &olu).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), inside.len());
    assert_eq!(
        sum(&rows, "completion_tokens"),
        inside
            .iter()
            .map(|e| e.completion_tokens as i64)
            .sum::<i64>()
    );
    let (res, text) = app
        .get_as(&format!("{base}&granularity=event&format=json"), &olu)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(v(&text).as_array().unwrap().len(), inside.len());

    // An empty range is a header line, or [].
    let (_, text) = app
        .get_as(
            "/api/v1/teams/team-a/usage/export?from=2020-01-01&to=2020-01-02",
            &olu,
        )
        .await;
    assert_eq!(
        text.trim(),
        "day,key,key_name,model,requests,errors,prompt_tokens,completion_tokens,avg_latency_ms"
    );
    let (_, text) = app
        .get_as(
            "/api/v1/teams/team-a/usage/export?from=2020-01-01&to=2020-01-02&format=json",
            &olu,
        )
        .await;
    assert_eq!(v(&text), serde_json::json!([]));
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn exports_are_for_the_team_only_and_bad_parameters_name_the_field(db: PgPool) {
    let app = TestApp::new(db.clone());
    let olu = app.dev_sign_in("olu").await; // team-a only
    let mia = app.dev_sign_in("mia").await; // team-a and team-b
    let b = team_id(&db, "team-b").await;
    record(
        &mut db.acquire().await.unwrap(),
        &events(
            b,
            None,
            OffsetDateTime::now_utc() - Duration::hours(1),
            Duration::seconds(1),
            10,
        ),
    )
    .await
    .unwrap();
    let (res, text) = app
        .get_as("/api/v1/teams/team-b/usage/export?granularity=event", &olu)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "{text}");
    assert!(!text.contains("llama"));
    let (res, text) = app
        .get_as("/api/v1/teams/team-b/usage/export?granularity=event", &mia)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(csv_rows(&text).len(), 10);
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("to=", "to"),
        ("from=%202026-12-01", "from"),
        ("from=2026-12-05&to=2026-12-01", "to"),
        ("from=2000-01-01&to=2026-01-01", "from"),
        ("from=2025-01-01&to=2026-12-01&granularity=event", "from"),
        ("granularity=hour", "query"),
        ("format=xlsx", "query"),
    ] {
        let (res, text) = app
            .get_as(&format!("/api/v1/teams/team-a/usage/export?{query}"), &olu)
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {text}"
        );
        assert!(text.contains(field), "{query}: {text}");
    }
    let (res, _) = app.get("/api/v1/teams/team-a/usage/export").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|l| l.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_million_row_export_streams_in_flat_memory(db: PgPool) {
    use http_body_util::BodyExt;
    let app = TestApp::new(db.clone());
    let olu = app.dev_sign_in("olu").await;
    let team = team_id(&db, "team-a").await;
    sqlx::query(
        "INSERT INTO usage_events (event_id, at, team_id, key_id, model, endpoint, status,
                                   prompt_tokens, completion_tokens, latency_ms, ttft_ms, upstream)
         SELECT gen_random_uuid(), timestamptz '2026-06-01' + i * interval '10 seconds', $1, NULL,
                'llama3.2:latest', '/api/chat', 200, i % 100, i % 300, 12.5, NULL, 'u'
           FROM generate_series(1, 1000000) i",
    )
    .bind(team)
    .execute(&db)
    .await
    .unwrap();
    let req = axum::http::Request::get(
        "/api/v1/teams/team-a/usage/export?from=2026-06-01&to=2026-10-01&granularity=event",
    )
    .header("cookie", &olu)
    .body(axum::body::Body::empty())
    .unwrap();
    let res = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let before = rss();
    let (mut bytes, mut lines, mut peak) = (0usize, 0usize, before);
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        if let Some(data) = frame.data_ref() {
            bytes += data.len();
            lines += data.iter().filter(|b| **b == b'\n').count();
            peak = peak.max(rss());
        }
    }
    assert_eq!(lines, 1_000_001, "a header and a line per request");
    assert!(bytes > 60_000_000, "{bytes}");
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 48 * 1024 * 1024,
        "memory grew by {} MiB over a {} MiB export",
        growth >> 20,
        bytes >> 20
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn admins_see_every_team_ranked_by_tokens(db: PgPool) {
    let app = TestApp::new(db.clone());
    let ada = app.dev_sign_in("ada").await;
    app.dev_sign_in("olu").await;
    app.dev_sign_in("mia").await;
    let (a, b) = (team_id(&db, "team-a").await, team_id(&db, "team-b").await);
    let now = OffsetDateTime::now_utc();
    let mut all = events(
        a,
        None,
        now - Duration::hours(30),
        Duration::minutes(1),
        600,
    );
    all.extend(events(
        b,
        None,
        now - Duration::hours(20),
        Duration::seconds(30),
        1500,
    ));
    record(&mut db.acquire().await.unwrap(), &all)
        .await
        .unwrap();
    let req = axum::http::Request::post("/rpc/admin_usage")
        .header("cookie", &ada)
        .header("origin", common::ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("range=24h"))
        .unwrap();
    let (res, text) = app.send(req).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let got = v(&text);
    let from = OffsetDateTime::parse(
        got["range"]["from"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let teams = got["teams"].as_array().unwrap();
    assert_eq!(teams[0]["team"], "team-b", "most tokens first: {got}");
    for t in teams.iter().take(2) {
        let id = if t["team"] == "team-a" { a } else { b };
        let inside: Vec<_> = all
            .iter()
            .filter(|e| e.team_id == id && e.at >= from)
            .collect();
        assert_eq!(t["requests"], inside.len() as i64, "{t}");
        assert_eq!(
            t["tokens"],
            inside
                .iter()
                .map(|e| (e.prompt_tokens + e.completion_tokens) as i64)
                .sum::<i64>(),
            "{t}"
        );
    }
    assert_eq!(got["metrics"]["state"], "not_configured");
    let (res, page) = app.get_as("/admin/usage", &ada).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(page.contains("admin-usage-teams"), "{page}");
}
