//! The usage dashboard against a real Prometheus over backfilled history:
//! its numbers equal those worked out from the history itself, no query
//! parameter reaches another team's series, and with Prometheus stopped
//! the page shows a banner and Corral's own totals (never a 5xx), the
//! charts coming back when it returns.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use common::prometheus::Prometheus;
use serde_json::Value;
use sqlx::PgPool;

/// History start (Unix seconds, 2026-11-01 10:00 UTC); two hours of samples
/// every 15 s.
const T0: i64 = 1_793_527_200;
const SAMPLES: i64 = 480;

/// Per second: team-a's 200s and 500s, team-b's 200s, and team-a's prompt
/// and completion tokens. Every request of team-a takes 0.25–0.5 s.
const A_OK: i64 = 2;
const A_FAILED: f64 = 0.2;
const B_OK: i64 = 5;
const PROMPT: i64 = 10;
const COMPLETION: i64 = 20;

/// The history as the gateway would have exported it, in OpenMetrics.
fn history() -> String {
    let mut om = String::new();
    let series = |name: &str, labels: &str, per_sec: f64, om: &mut String| {
        for i in 0..SAMPLES {
            let t = T0 + i * 15;
            om.push_str(&format!(
                "{name}{{{labels}}} {} {t}\n",
                per_sec * (i * 15) as f64
            ));
        }
    };
    let a = r#"team="team-a",model="llama3.2:latest",endpoint="/api/chat""#;
    let b = r#"team="team-b",model="llama3.2:latest",endpoint="/api/chat""#;
    om.push_str("# TYPE corral_gateway_requests counter\n");
    series(
        "corral_gateway_requests_total",
        &format!(r#"{a},status="200""#),
        A_OK as f64,
        &mut om,
    );
    series(
        "corral_gateway_requests_total",
        &format!(r#"{a},status="500""#),
        A_FAILED,
        &mut om,
    );
    series(
        "corral_gateway_requests_total",
        &format!(r#"{b},status="200""#),
        B_OK as f64,
        &mut om,
    );
    om.push_str("# TYPE corral_gateway_tokens counter\n");
    let ta = r#"team="team-a",model="llama3.2:latest""#;
    series(
        "corral_gateway_tokens_total",
        &format!(r#"{ta},kind="prompt""#),
        PROMPT as f64,
        &mut om,
    );
    series(
        "corral_gateway_tokens_total",
        &format!(r#"{ta},kind="completion""#),
        COMPLETION as f64,
        &mut om,
    );
    om.push_str("# TYPE corral_gateway_request_duration_seconds histogram\n");
    let all = A_OK as f64 + A_FAILED;
    for (le, per_sec) in [("0.1", 0.0), ("0.25", 0.0), ("0.5", all), ("+Inf", all)] {
        series(
            "corral_gateway_request_duration_seconds_bucket",
            &format!(r#"{a},status="200",le="{le}""#),
            per_sec,
            &mut om,
        );
    }
    series(
        "corral_gateway_request_duration_seconds_count",
        &format!(r#"{a},status="200""#),
        all,
        &mut om,
    );
    series(
        "corral_gateway_request_duration_seconds_sum",
        &format!(r#"{a},status="200""#),
        all * 0.4,
        &mut om,
    );
    om.push_str("# EOF\n");
    om
}

/// The rate of a series of the history over the `window` seconds before
/// `t`, worked out from its samples (what Prometheus's `rate` must give on
/// a straight line).
fn rate_from_history(per_sec: f64, t: i64, window: i64) -> f64 {
    let at = |t: i64| per_sec * ((t - T0) / 15 * 15) as f64;
    (at(t) - at(t - window)) / window as f64
}

async fn rpc(app: &TestApp, cookie: &str, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = axum::http::Request::post(format!("/rpc/{endpoint}"))
        .header("cookie", cookie)
        .header("origin", common::ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    let (res, text) = app.send(req).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    // What the browser does with it: typed (JSON has no NaN, so a chart
    // point of NaN would be a null the page cannot read).
    match endpoint {
        "usage_dashboard" => {
            drop(serde_json::from_str::<app::model::UsageDashboard>(&text).unwrap())
        }
        "admin_usage" => drop(serde_json::from_str::<app::model::AdminUsage>(&text).unwrap()),
        _ => {}
    }
    serde_json::from_str(&text).unwrap()
}

const HOUR: [(&str, &str); 3] = [
    ("range", "custom"),
    ("from", "2026-11-01T10:30:00Z"),
    ("to", "2026-11-01T11:30:00Z"),
];

async fn dashboard(app: &TestApp, cookie: &str, model: Option<&str>) -> Value {
    let mut form = vec![("slug", "team-a")];
    form.extend(HOUR);
    if let Some(m) = model {
        form.push(("model", m));
    }
    rpc(app, cookie, "usage_dashboard", &form).await
}

fn chart<'a>(d: &'a Value, id: &str) -> &'a Value {
    d["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no chart {id}: {d}"))
}

fn points(c: &Value, series: &str) -> Vec<(i64, f64)> {
    let s = c["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == series)
        .unwrap_or_else(|| panic!("no series {series}: {c}"));
    serde_json::from_value(s["points"].clone()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_dashboard_shows_what_the_history_holds_and_only_for_the_team(db: PgPool) {
    let mut prom = Prometheus::with_history(&history()).await;
    let app = TestApp::with_prometheus(db.clone(), &prom.url, 2000);
    let olu = app.dev_sign_in("olu").await;
    let d = dashboard(&app, &olu, None).await;
    assert_eq!(d["metrics"]["state"], "ok", "{}", d["metrics"]);
    let step = d["range"]["step_secs"].as_i64().unwrap();
    let window = step.max(60);
    assert_eq!(step, 30);

    let requests = points(chart(&d, "requests"), "llama3.2:latest");
    assert_eq!(requests.len(), 121, "a point every 30 s over the hour");
    for (t, v) in &requests {
        let want =
            rate_from_history(A_OK as f64, *t, window) + rate_from_history(A_FAILED, *t, window);
        assert!(close(*v, want), "requests/s at {t}: {v} != {want}");
    }
    // Team-b's 5 req/s appear nowhere.
    assert_eq!(chart(&d, "requests")["series"].as_array().unwrap().len(), 1);

    let tokens = chart(&d, "tokens");
    for (kind, per_sec) in [("prompt", PROMPT), ("completion", COMPLETION)] {
        for (t, v) in points(tokens, kind) {
            let want = rate_from_history(per_sec as f64, t, window) * 3600.0;
            assert!(close(v, want), "{kind} tokens/h at {t}: {v} != {want}");
        }
    }
    for (t, v) in points(chart(&d, "errors"), "500") {
        let all = rate_from_history(A_OK as f64 + A_FAILED, t, window);
        let want = 100.0 * rate_from_history(A_FAILED, t, window) / all;
        assert!(close(v, want), "error % at {t}: {v} != {want}");
    }
    // Every request in the (0.25, 0.5] bucket: p95 by linear interpolation.
    for (t, v) in points(chart(&d, "latency"), "p95") {
        assert!(close(v, 0.25 + 0.25 * 0.95), "p95 at {t}: {v}");
    }
    // The chart is drawn: axes with units, a legend entry per line.
    let svg = chart(&d, "requests")["svg"].as_str().unwrap();
    assert!(svg.contains("<title id=\"requests-title\">Requests per second</title>"));
    assert!(svg.contains("req/s"));

    // No model name reaches past its label value.
    for hostile in [
        r#"x"} or corral_gateway_requests_total{team="team-b"#,
        r#"llama3.2:latest"}[1m])) or sum by (model) (rate(corral_gateway_requests_total{team="team-b""#,
        "\\\" or vector(1) #",
        ".*",
    ] {
        let d = dashboard(&app, &olu, Some(hostile)).await;
        assert_eq!(d["metrics"]["state"], "ok", "{hostile}: {}", d["metrics"]);
        for c in d["charts"].as_array().unwrap() {
            for s in c["series"].as_array().unwrap() {
                assert!(
                    s["points"].as_array().unwrap().is_empty(),
                    "{hostile} reached data in {}: {s}",
                    c["id"]
                );
            }
        }
    }

    // The admin view: every team's traffic, both lines exact.
    let ada = app.dev_sign_in("ada").await;
    let admin = rpc(&app, &ada, "admin_usage", &HOUR).await;
    assert_eq!(admin["metrics"]["state"], "ok", "{}", admin["metrics"]);
    let by_team = chart(&admin, "team-requests");
    for (team, per_sec) in [("team-a", A_OK as f64 + A_FAILED), ("team-b", B_OK as f64)] {
        for (t, v) in points(by_team, team) {
            let want = rate_from_history(per_sec, t, window);
            assert!(close(v, want), "{team} requests/s at {t}: {v} != {want}");
        }
    }
    for (t, v) in points(chart(&admin, "cluster-latency"), "p95") {
        assert!(close(v, 0.4875), "cluster p95 at {t}: {v}");
    }

    // Prometheus away: a banner and the totals, no 5xx, on the page too.
    prom.stop();
    let d = dashboard(&app, &olu, None).await;
    assert_eq!(d["metrics"]["state"], "unavailable", "{d}");
    assert!(
        d["metrics"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{d}"
    );
    assert!(d["summary"]["requests"].is_i64());
    let (res, page) = app.get_as("/teams/team-a/usage?range=24h", &olu).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(page.contains("Prometheus is not answering"), "{page}");
    let (_, status) = app.get("/status").await;
    assert!(status.contains("Prometheus"), "{status}");

    prom.start_again().await;
    let d = dashboard(&app, &olu, None).await;
    assert_eq!(d["metrics"]["state"], "ok", "{}", d["metrics"]);
    assert_eq!(points(chart(&d, "requests"), "llama3.2:latest").len(), 121);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_slow_or_absent_prometheus_costs_the_page_its_charts_only(db: PgPool) {
    // Nothing listens here: refused at once.
    let app = TestApp::with_prometheus(db.clone(), "http://127.0.0.1:9", 500);
    let olu = app.dev_sign_in("olu").await;
    let d = dashboard(&app, &olu, None).await;
    assert_eq!(d["metrics"]["state"], "unavailable");
    // One that accepts and never answers: the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let app = TestApp::with_prometheus(db.clone(), &url, 300);
    let t0 = std::time::Instant::now();
    let d = dashboard(&app, &olu, None).await;
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        d["metrics"]["reason"]
            .as_str()
            .unwrap()
            .contains("within 300 ms"),
        "{d}"
    );
    // Without one configured the page says so.
    let app = TestApp::new(db);
    let olu = app.dev_sign_in("olu").await;
    let d = dashboard(&app, &olu, None).await;
    assert_eq!(d["metrics"]["state"], "not_configured");
    let (res, page) = app.get_as("/teams/team-a/usage", &olu).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(page.contains("none is configured"), "{page}");
}

/// A key of team-a for mia: requested, approved by olu, collected.
async fn team_a_key(app: &TestApp, mia: &str, olu: &str) -> String {
    let (_, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-a/key-requests",
            mia,
            serde_json::json!({ "name": "live" }),
        )
        .await;
    let id = serde_json::from_str::<Value>(&text).unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/decision"),
            olu,
            serde_json::json!({ "approve": true }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/claim"),
            mia,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn live_requests_through_the_gateway_reach_their_team_dashboard_within_a_scrape(db: PgPool) {
    // ollama-sim, the gateway in front of it, and a Prometheus scraping the
    // gateway every second.
    let (_sims, urls) = common::ops::pods(10).await;
    let spool = std::env::temp_dir().join(format!("corral-live-{}", uuid::Uuid::new_v4()));
    let settings = server::settings::Settings::load_from([
        ("CORRAL_GATEWAY__UPSTREAMS".to_owned(), urls[0].to_string()),
        (
            "CORRAL_KEYS__PEPPER".to_owned(),
            common::TEST_PEPPER.to_owned(),
        ),
        (
            "CORRAL_GATEWAY__SPOOL_DIR".to_owned(),
            spool.display().to_string(),
        ),
        ("CORRAL_GATEWAY__USAGE_FLUSH_MS".to_owned(), "20".to_owned()),
    ])
    .unwrap();
    let (gateway, _workers) = server::gateway::Gateway::start(&settings, db.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = listener.local_addr().unwrap();
    tokio::spawn(server::gateway::serve(
        listener,
        gateway,
        std::time::Duration::from_secs(1),
        std::future::pending(),
    ));
    let prom = Prometheus::scraping(&[gw_addr.to_string()]).await;
    let app = TestApp::with_prometheus(db.clone(), &prom.url, 2000);
    let mia = app.dev_sign_in("mia").await; // team-a and team-b
    let olu = app.dev_sign_in("olu").await;
    let secret = team_a_key(&app, &mia, &olu).await;

    let http = reqwest::Client::new();
    for i in 0..100 {
        let r = http
            .post(format!("http://{gw_addr}/api/generate"))
            .bearer_auth(&secret)
            .json(&serde_json::json!({ "model": "llama3.2", "prompt": format!("hello {i}"), "stream": false }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let sent = std::time::Instant::now();
    let range = [("range", "1h")];
    let total = |d: &Value| -> f64 {
        // requests/s × the rate window, summed at the last point: the
        // requests in the last minute, as the chart counts them.
        chart(d, "requests")["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| {
                s["points"]
                    .as_array()
                    .and_then(|p| p.last())
                    .map(|p| p[1].as_f64().unwrap())
            })
            .sum::<f64>()
            * 60.0
    };
    let mut seen = None;
    while sent.elapsed() < std::time::Duration::from_secs(15) {
        let mut form = vec![("slug", "team-a")];
        form.extend(range);
        let d = rpc(&app, &mia, "usage_dashboard", &form).await;
        assert_eq!(d["metrics"]["state"], "ok", "{}", d["metrics"]);
        // The chart from Prometheus, the totals from Postgres (written by
        // the gateway's usage writer within its flush interval).
        if total(&d) > 0.0 && d["summary"]["requests"] == 100 {
            seen = Some((sent.elapsed(), d));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (after, d) = seen.expect("team-a's requests never reached its dashboard");
    // A scrape (1 s) and the queries; and the totals are exact.
    assert!(after < std::time::Duration::from_secs(5), "{after:?}");
    assert_eq!(d["summary"]["requests"], 100);
    assert!(!points(chart(&d, "requests"), "llama3.2:latest").is_empty());
    // Team-b's dashboard, for the same person, shows none of them.
    let mut form = vec![("slug", "team-b")];
    form.extend(range);
    let b = rpc(&app, &mia, "usage_dashboard", &form).await;
    assert_eq!(b["metrics"]["state"], "ok");
    assert_eq!(b["summary"]["requests"], 0);
    for c in b["charts"].as_array().unwrap() {
        assert!(
            c["series"].as_array().unwrap().is_empty(),
            "team-b sees {}: {c}",
            c["id"]
        );
    }
    let _ = std::fs::remove_dir_all(spool);
}
