//! HTTP behaviour of the whole router against a real Postgres.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn healthz_answers_ok(db: PgPool) {
    let app = TestApp::new(db);
    let (res, body) = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn readyz_is_ready_when_postgres_is_reachable_and_migrated(db: PgPool) {
    let app = TestApp::new(db);
    let (res, body) = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["failing"], serde_json::json!([]));
}

#[tokio::test]
async fn readyz_is_503_naming_postgres_when_the_database_is_unreachable() {
    // Nothing listens on port 1; the pool fails when asked for a connection.
    let db = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/corral")
        .unwrap();
    let app = TestApp::new(db);
    let (res, body) = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["failing"][0], "postgres");
    assert_eq!(body["checks"][0]["name"], "PostgreSQL");
    assert_eq!(body["checks"][0]["state"], "down");
}

#[sqlx::test(migrations = false)]
async fn readyz_is_503_naming_migrations_when_they_were_never_applied(db: PgPool) {
    let app = TestApp::new(db);
    let (res, body) = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["failing"], serde_json::json!(["migrations"]));
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn home_page_is_server_rendered_with_live_dependency_state(db: PgPool) {
    let app = TestApp::new(db);
    let (res, body) = app.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        body.contains("Ollama, run as team infrastructure"),
        "{body}"
    );
    assert!(body.contains("PostgreSQL"), "{body}");
    assert!(body.contains("Healthy"), "{body}");
    assert!(body.contains("/pkg/corral.css"));
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn unknown_pages_get_the_404_page_with_status_404(db: PgPool) {
    let app = TestApp::new(db);
    let (res, body) = app.get("/no/such/page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(body.contains("Page not found"), "{body}");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn status_server_function_reports_each_dependency(db: PgPool) {
    let app = TestApp::new(db);
    let req = Request::post("/rpc/check_status")
        .header("origin", common::ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let (res, body) = app.send(req).await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let report: app::model::StatusReport = serde_json::from_str(&body).unwrap();
    let ids: Vec<_> = report.dependencies.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["postgres", "migrations", "idp", "prometheus"]);
    assert!(report.all_healthy(), "{report:?}");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn every_response_carries_a_request_id(db: PgPool) {
    let app = TestApp::new(db);
    let (res, _) = app.get("/healthz").await;
    let id = res
        .headers()
        .get("x-request-id")
        .expect("x-request-id header");
    assert_eq!(id.to_str().unwrap().len(), 36, "a UUID");

    let req = Request::get("/healthz")
        .header("x-request-id", "caller-chosen-id")
        .body(Body::empty())
        .unwrap();
    let (res, _) = app.send(req).await;
    assert_eq!(res.headers()["x-request-id"], "caller-chosen-id");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn metrics_count_requests_by_matched_route_and_include_the_process(db: PgPool) {
    let app = TestApp::new(db);
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/does-not-exist").await;
    let (res, body) = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        body.contains(
            r#"corral_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{body}"
    );
    assert!(
        body.contains(
            r#"corral_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{body}"
    );
    assert!(body.contains("corral_http_request_duration_seconds_bucket"));
    assert!(body.contains("process_resident_memory_bytes"), "{body}");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn state_changing_requests_from_another_site_are_refused(db: PgPool) {
    let app = TestApp::new(db);
    for origin in [None, Some("https://evil.example")] {
        let mut req = Request::post("/rpc/check_status")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let (res, body) = app.send(req.body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin:?}: {body}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}
