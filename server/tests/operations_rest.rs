//! `/api/v1/operations`, `/api/v1/cluster` and `/api/v1/maintenance-windows`
//! through the real router: who may start, see and cancel what, errors that
//! name the field, the event stream, maintenance windows.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt as _;

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn owners_start_pulls_for_their_team_within_its_allow_list_and_see_only_their_teams(
    db: PgPool,
) {
    let app = TestApp::new(db.clone());
    let ada = app.dev_sign_in("ada").await;
    let olu = app.dev_sign_in("olu").await;
    let mia = app.dev_sign_in("mia").await;
    let (res, body) = app
        .json_as(
            "PATCH",
            "/api/v1/teams/team-a/policy",
            &ada,
            json!({"allowed_models": ["llama3.2"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");

    // Outside the allow-list: 422 naming the field and the model.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &olu,
            json!({"kind": "pull", "model": "qwen2.5:7b", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let p = parse(&body);
    assert_eq!(p["field"], "model");
    assert!(
        p["detail"].as_str().unwrap().contains("qwen2.5:7b"),
        "{body}"
    );

    // On it: 201, then the same pull again: 200, the same operation.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &olu,
            json!({"kind": "pull", "model": "llama3.2", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let op = parse(&body);
    assert_eq!(op["state"], "queued");
    assert_eq!(op["model"], "llama3.2:latest");
    assert_eq!(op["team"], "team-a");
    let id = op["id"].as_str().unwrap().to_owned();
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &olu,
            json!({"kind": "pull", "model": "llama3.2:latest", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    assert_eq!(parse(&body)["id"], id.as_str());

    // A member sees it, cannot cancel it; an admin's platform pull is not
    // for members to see.
    let (res, _) = app.get_as(&format!("/api/v1/operations/{id}"), &mia).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/operations/{id}/cancel"),
            &mia,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &ada,
            json!({"kind": "pull", "model": "mistral"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let platform = parse(&body)["id"].as_str().unwrap().to_owned();
    let (res, _) = app
        .get_as(&format!("/api/v1/operations/{platform}"), &olu)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, body) = app.get_as("/api/v1/operations", &olu).await;
    let items: Vec<String> = parse(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(items, vec![id.clone()]);
    let (_, body) = app.get_as("/api/v1/operations?team=team-b", &olu).await;
    assert_eq!(parse(&body)["items"], json!([]));
    let (_, body) = app.get_as("/api/v1/operations", &ada).await;
    assert_eq!(parse(&body)["items"].as_array().unwrap().len(), 2);

    // The owner cancels it: cancelled at once (it was queued); again: 409.
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/operations/{id}/cancel"),
            &olu,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    assert_eq!(parse(&body)["state"], "cancelled");
    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/operations/{id}/cancel"),
            &olu,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Its whole story is in the detail's log and in the audit log.
    let (_, body) = app.get_as(&format!("/api/v1/operations/{id}"), &olu).await;
    let log = parse(&body)["log"].to_string();
    assert!(log.contains("cancel asked by olu"), "{log}");
    let (_, body) = app.get_as("/api/v1/audit?action=operation.", &ada).await;
    let actions: Vec<String> = parse(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        vec!["operation.cancel", "operation.pull", "operation.pull"],
        "newest first"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn bad_operations_are_refused_naming_the_field(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let olu = app.dev_sign_in("olu").await;
    for (who, body, status, field) in [
        (&ada, json!({"kind": "pull"}), 422, "body"),
        (
            &ada,
            json!({"kind": "pull", "model": "no spaces"}),
            422,
            "model",
        ),
        (
            &ada,
            json!({"kind": "pull", "model": "a\u{0}b"}),
            422,
            "model",
        ),
        (&ada, json!({"kind": "reboot", "model": "x"}), 422, "body"),
        (
            &ada,
            json!({"kind": "pull", "model": "x", "replicas": 2}),
            422,
            "body",
        ),
        (
            &ada,
            json!({"kind": "copy", "model": "x", "destination": "x:latest"}),
            422,
            "destination",
        ),
        (
            &ada,
            json!({"kind": "pull", "model": "x", "workload": "gpu"}),
            422,
            "workload",
        ),
        (
            &ada,
            json!({"kind": "pull", "model": "x", "workload": "Not A Name"}),
            422,
            "workload",
        ),
        // The static driver cannot scale: said on `kind`.
        (&ada, json!({"kind": "scale", "replicas": 2}), 422, "kind"),
        (
            &ada,
            json!({"kind": "scale", "replicas": -1}),
            422,
            "replicas",
        ),
        (
            &ada,
            json!({"kind": "pull", "model": "x", "in_next_window": true}),
            422,
            "in_next_window",
        ),
        // Scaling is the platform's: owners may not.
        (&olu, json!({"kind": "scale", "replicas": 2}), 403, ""),
    ] {
        let (res, text) = app
            .json_as("POST", "/api/v1/operations", who, body.clone())
            .await;
        assert_eq!(res.status().as_u16(), status, "{body}: {text}");
        if !field.is_empty() {
            assert_eq!(parse(&text)["field"], field, "{body}: {text}");
        }
    }
    for (path, status) in [
        ("/api/v1/operations?state=done", 422),
        ("/api/v1/operations?kind=reboot", 422),
        ("/api/v1/operations?cursor=nope", 422),
        ("/api/v1/operations?cursor=", 422),
        ("/api/v1/operations?state=", 422),
        ("/api/v1/operations?kind=&team=nobody", 422),
        ("/api/v1/operations/not-an-id", 404),
        (
            "/api/v1/operations/6b1f9a3e-7d2c-4a4e-9f3b-1c2d3e4f5a6b",
            404,
        ),
    ] {
        let (res, text) = app.get_as(path, &ada).await;
        assert_eq!(res.status().as_u16(), status, "{path}: {text}");
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn maintenance_windows_schedule_operations(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let olu = app.dev_sign_in("olu").await;
    for (body, field) in [
        (
            json!({"weekday": 8, "starts": "01:00", "ends": "02:00", "time_zone": "UTC"}),
            "weekday",
        ),
        (
            json!({"weekday": 1, "starts": "1am", "ends": "02:00", "time_zone": "UTC"}),
            "starts",
        ),
        (
            json!({"weekday": 1, "starts": "03:00", "ends": "02:00", "time_zone": "UTC"}),
            "ends",
        ),
        (
            json!({"weekday": 1, "starts": "01:00", "ends": "02:00", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
    ] {
        let (res, text) = app
            .json_as("POST", "/api/v1/maintenance-windows", &ada, body.clone())
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {text}"
        );
        assert_eq!(parse(&text)["field"], field, "{text}");
    }
    // Tokyo keeps no summer time: its windows are fixed in UTC.
    let window =
        json!({"weekday": 3, "starts": "02:00", "ends": "04:30", "time_zone": "Asia/Tokyo"});
    let (res, _) = app
        .json_as("POST", "/api/v1/maintenance-windows", &olu, window.clone())
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (res, text) = app
        .json_as("POST", "/api/v1/maintenance-windows", &ada, window)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let (_, text) = app.get_as("/api/v1/maintenance-windows", &olu).await;
    let schedule = parse(&text);
    let opens = schedule["next_opens_at"].as_str().unwrap().to_owned();
    let opens_at =
        time::OffsetDateTime::parse(&opens, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let tokyo = opens_at.to_offset(time::macros::offset!(+9));
    let now = time::OffsetDateTime::now_utc();
    let open_now = (opens_at - now).abs() < time::Duration::minutes(1);
    assert!(
        open_now
            || (tokyo.weekday() == time::Weekday::Wednesday
                && (tokyo.hour(), tokyo.minute()) == (2, 0)
                && opens_at > now
                && opens_at < now + time::Duration::days(8)),
        "{opens}"
    );
    // An operation for the next window waits as scheduled until then.
    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &ada,
            json!({"kind": "pull", "model": "x", "in_next_window": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let op = parse(&text);
    assert_eq!(op["state"], "scheduled");
    assert_eq!(op["not_before"].as_str().unwrap(), opens);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_event_stream_sends_each_change_and_ends_with_the_final_state(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let (_, text) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &ada,
            json!({"kind": "pull", "model": "x"}),
        )
        .await;
    let id = parse(&text)["id"].as_str().unwrap().to_owned();
    let req = Request::get(format!("/api/v1/operations/{id}/events"))
        .header("cookie", &ada)
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    let mut seen = String::new();
    // The first event comes at once, with the queued state.
    while !seen.contains("\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.starts_with("event: operation\ndata: "), "{seen}");
    assert!(seen.contains("\"state\":\"queued\""), "{seen}");
    // A cancel from elsewhere arrives as the next event, and the stream ends.
    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/operations/{id}/cancel"),
            &ada,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("\"state\":\"cancelled\""), "{rest}");
    // Another team's member cannot watch it.
    let mia = app.dev_sign_in("mia").await;
    let (res, _) = app
        .get_as(&format!("/api/v1/operations/{id}/events"), &mia)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_cluster_report_shows_each_pod_and_hides_addresses_from_members(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let mia = app.dev_sign_in("mia").await;
    let (res, text) = app.get_as("/api/v1/cluster", &ada).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let r = parse(&text);
    let w = &r["workloads"][0];
    assert_eq!(w["name"], "ollama");
    assert_eq!(w["driver"], "static");
    assert_eq!(w["can_scale"], false);
    let pod = &w["pods"][0];
    assert_eq!(pod["endpoint"], "http://127.0.0.1:9/");
    // Nothing answers on port 9: said, not a 500.
    assert!(
        pod["ollama_error"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "{pod}"
    );
    let (_, text) = app.get_as("/api/v1/cluster", &mia).await;
    assert_eq!(
        parse(&text)["workloads"][0]["pods"][0]["endpoint"],
        Value::Null
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_operation_listener_gives_its_connection_back_when_the_server_is_gone(db: PgPool) {
    let listening = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let app = TestApp::new(db.clone());
    let mut waited = Duration::ZERO;
    while listening().await == 0 {
        assert!(waited < Duration::from_secs(5), "the server never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    drop(app);
    let mut waited = Duration::ZERO;
    while listening().await > 0 {
        assert!(
            waited < Duration::from_secs(5),
            "the LISTEN connection outlived the server (a test's pool could never close)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
}
