//! The key lifecycle through the REST API: request, approval, the secret
//! shown once, self-service, limits on what can be asked for, manage keys
//! as bearer tokens, revocation, rotation and the audit trail.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

fn v(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn bearer(
    app: &TestApp,
    method: &str,
    uri: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let (res, text) = app.send(req).await;
    (res.status(), text)
}

/// mia asks, olu (owner of team-a) approves, mia collects: the issued key.
async fn approved_key(app: &TestApp, mia: &str, olu: &str, body: Value) -> Value {
    let (res, text) = app
        .json_as("POST", "/api/v1/teams/team-a/key-requests", mia, body)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let out = v(&text);
    assert_eq!(out["request"]["state"], "pending");
    assert!(out["issued"].is_null());
    let id = out["request"]["id"].as_str().unwrap().to_owned();
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/decision"),
            olu,
            json!({ "approve": true }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(v(&text)["state"], "approved");
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/claim"),
            mia,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let issued = v(&text);
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/claim"),
            mia,
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "the secret is shown once: {text}"
    );
    issued
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_key_is_requested_approved_and_its_secret_shown_once_then_only_its_hmac_kept(db: PgPool) {
    let app = TestApp::new(db.clone());
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let issued = approved_key(
        &app,
        &mia,
        &olu,
        json!({ "name": "notebook", "purpose": "analysis", "models": ["llama3.2"] }),
    )
    .await;
    let secret = issued["secret"].as_str().unwrap();
    assert!(secret.starts_with("crl_"));
    assert!(app::domain::keys::token::parse(secret).is_ok());
    assert_eq!(issued["key"]["models"], json!(["llama3.2:latest"]));
    assert_eq!(issued["key"]["state"], "active");

    // Only an HMAC is stored, and no secret is in the audit log.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hmac FROM api_keys")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    let parsed = app::domain::keys::token::parse(secret).unwrap();
    assert!(
        app::domain::keys::Pepper::new(common::TEST_PEPPER.as_bytes())
            .verify(parsed.secret, &stored)
    );
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(action || coalesce(after::text, ''), ' ') FROM audit_log",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        !dump.contains(parsed.secret),
        "the secret leaked into the audit log"
    );
    for action in ["key.requested", "key.approved", "key.issued"] {
        assert!(dump.contains(action), "{action} missing from {dump}");
    }

    // Members see their own keys, owners all of the team's; nobody sees a secret.
    let (_, text) = app.get_as("/api/v1/teams/team-a/keys", &olu).await;
    assert!(!text.contains(parsed.secret));
    assert_eq!(v(&text).as_array().unwrap().len(), 1);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn requests_outside_the_teams_policy_are_refused_naming_the_field(db: PgPool) {
    let app = TestApp::new(db.clone());
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let ada = app.dev_sign_in("ada").await;
    let (res, text) = app
        .json_as(
            "PATCH",
            "/api/v1/teams/team-a/policy",
            &ada,
            json!({ "allowed_models": ["llama3.2"], "max_key_days": 30 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(v(&text)["allowed_models"], json!(["llama3.2:latest"]));
    let (res, _) = app
        .json_as(
            "PATCH",
            "/api/v1/teams/team-a/policy",
            &olu,
            json!({ "max_key_days": 3650 }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "owners do not set policy"
    );

    for (body, field) in [
        (json!({ "name": "x", "models": ["qwen2.5:0.5b"] }), "models"),
        (
            json!({ "name": "x", "expires_in_days": 31 }),
            "expires_in_days",
        ),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x", "scopes": [] }), "scopes"),
        (json!({ "name": "x", "models": ["bad name!"] }), "models"),
    ] {
        let (res, text) = app
            .json_as(
                "POST",
                "/api/v1/teams/team-a/key-requests",
                &mia,
                body.clone(),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {text}"
        );
        assert_eq!(v(&text)["field"], field, "{body}: {text}");
    }
    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-a/key-requests",
            &mia,
            json!({ "name": "x", "scopes": ["root"] }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    // Denying needs a reason, which the requester then sees.
    let (_, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-a/key-requests",
            &mia,
            json!({ "name": "y" }),
        )
        .await;
    let id = v(&text)["request"]["id"].as_str().unwrap().to_owned();
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/decision"),
            &mia,
            json!({ "approve": true }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "members do not approve, not even their own: {text}"
    );
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/decision"),
            &olu,
            json!({ "approve": false }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v(&text)["field"], "reason");
    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{id}/decision"),
            &olu,
            json!({ "approve": false, "reason": "use the shared key" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, text) = app.get_as("/api/v1/teams/team-a/key-requests", &mia).await;
    let denied = v(&text)
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(denied["state"], "denied");
    assert_eq!(denied["reason"], "use the shared key");
    assert_eq!(denied["decided_by"], "olu");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn self_service_teams_issue_the_key_at_once(db: PgPool) {
    let app = TestApp::new(db.clone());
    let mia = app.dev_sign_in("mia").await;
    let ada = app.dev_sign_in("ada").await;
    app.json_as(
        "PATCH",
        "/api/v1/teams/team-a/policy",
        &ada,
        json!({ "self_service_keys": true }),
    )
    .await;
    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-a/key-requests",
            &mia,
            json!({ "name": "quick" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let out = v(&text);
    assert_eq!(out["request"]["state"], "issued");
    assert!(
        out["issued"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("crl_")
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn manage_keys_are_bearer_tokens_on_the_rest_api_limited_to_their_team(db: PgPool) {
    let app = TestApp::new(db.clone());
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let manage = approved_key(
        &app,
        &mia,
        &olu,
        json!({ "name": "automation", "scopes": ["manage"] }),
    )
    .await;
    let manage_secret = manage["secret"].as_str().unwrap();
    let inference = approved_key(&app, &mia, &olu, json!({ "name": "app" })).await;

    let (status, text) = bearer(&app, "GET", "/api/v1/me", manage_secret, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let me = v(&text);
    assert_eq!(me["via"], "api_key");
    assert_eq!(me["user"]["username"], "mia");
    // mia is in team-a and team-b; her team-a key reaches team-a only.
    assert_eq!(me["teams"].as_array().unwrap().len(), 1, "{me}");
    let (status, _) = bearer(
        &app,
        "GET",
        "/api/v1/teams/team-b/usage",
        manage_secret,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a key never sees another team's usage"
    );
    let (status, text) = bearer(
        &app,
        "GET",
        "/api/v1/teams/team-a/usage",
        manage_secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // No CSRF header is needed with a key: it is not ambient authority.
    let (status, text) = bearer(
        &app,
        "POST",
        "/api/v1/teams/team-a/key-requests",
        manage_secret,
        Some(json!({ "name": "from-ci" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");

    let (status, text) = bearer(
        &app,
        "GET",
        "/api/v1/me",
        inference["secret"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("manage scope"));
    let (status, _) = bearer(&app, "GET", "/api/v1/me", "crl_not-a-key", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Revoked: refused at once; the audit log says who.
    let id = manage["key"]["id"].as_str().unwrap();
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/keys/{id}/revoke"),
            &olu,
            json!({ "reason": "left the project" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(v(&text)["state"], "revoked");
    let (status, _) = bearer(&app, "GET", "/api/v1/me", manage_secret, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/keys/{id}/revoke"),
            &olu,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn rotation_makes_a_new_key_and_keeps_the_old_one_for_the_grace_period(db: PgPool) {
    let app = TestApp::new(db.clone());
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let old = approved_key(
        &app,
        &mia,
        &olu,
        json!({ "name": "svc", "scopes": ["inference", "manage"] }),
    )
    .await;
    let id = old["key"]["id"].as_str().unwrap();

    let (res, _) = app
        .json_as(
            "POST",
            &format!("/api/v1/keys/{id}/rotate"),
            &olu,
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "only the owner sees the new secret"
    );
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/keys/{id}/rotate"),
            &mia,
            json!({ "grace_hours": 999 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v(&text)["field"], "grace_hours");
    let (res, text) = app
        .json_as(
            "POST",
            &format!("/api/v1/keys/{id}/rotate"),
            &mia,
            json!({ "grace_hours": 1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let new = v(&text);
    assert_ne!(new["secret"], old["secret"]);
    assert_eq!(new["key"]["rotated_from"], id);
    assert_eq!(new["key"]["name"], "svc");

    // Both work during the grace period; the old one expires within the hour.
    for k in [&old, &new] {
        let (status, _) = bearer(
            &app,
            "GET",
            "/api/v1/me",
            k["secret"].as_str().unwrap(),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, text) = app.get_as("/api/v1/teams/team-a/keys", &mia).await;
    let keys = v(&text);
    let old_now = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(
        old_now["state"], "expiring",
        "a key about to expire is flagged"
    );
    let expires = time::OffsetDateTime::parse(
        old_now["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires - time::OffsetDateTime::now_utc() <= time::Duration::hours(1));
}
