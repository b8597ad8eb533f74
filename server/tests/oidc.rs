//! Sign-in through the real test IdP (npm oidc-provider, Keycloak-shaped):
//! users and memberships from claims, group removal, tampered ID tokens,
//! and sign-out.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use common::idp::{Idp, location};
use serde_json::Value;
use sqlx::PgPool;

async fn user_count(db: &PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM users")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn signing_in_through_the_idp_creates_the_user_and_team_memberships(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);

    let (res, body, cookie) = idp.sign_in(&app, "mia", "mia-pw").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&res), "/teams");

    let (res, body) = app.get_as("/api/v1/me", &cookie).await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["user"]["username"], "mia");
    assert_eq!(me["user"]["is_admin"], false);
    let teams: Vec<&str> = me["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["team-a", "team-b"]);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_admin_role_and_owner_groups_come_from_the_idp(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    let (_, _, ada) = idp.sign_in(&app, "ada", "ada-pw").await;
    let (_, body) = app.get_as("/api/v1/me", &ada).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["user"]["is_admin"],
        true
    );

    let (_, _, olu) = idp.sign_in(&app, "olu", "olu-pw").await;
    let (_, body) = app.get_as("/api/v1/teams/team-a", &olu).await;
    let team: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(team["members"][0]["username"], "olu");
    assert_eq!(team["members"][0]["role"], "owner");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_group_removed_in_the_idp_ends_the_membership_at_next_sign_in_and_is_audited(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    idp.sign_in(&app, "mia", "mia-pw").await;

    idp.set_groups("mia", &["/team-a"]).await;
    let (_, _, mia) = idp.sign_in(&app, "mia", "mia-pw").await;
    let (_, body) = app.get_as("/api/v1/me", &mia).await;
    let me: Value = serde_json::from_str(&body).unwrap();
    let teams: Vec<&str> = me["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["team-a"]);
    let (res, _) = app.get_as("/api/v1/teams/team-b", &mia).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let (_, _, ada) = idp.sign_in(&app, "ada", "ada-pw").await;
    let (res, body) = app
        .get_as("/api/v1/audit?action=membership.removed", &ada)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let audit: Value = serde_json::from_str(&body).unwrap();
    let entry = &audit["items"][0];
    assert_eq!(entry["target_id"], "team-b/mia");
    assert_eq!(entry["team"], "team-b");
    assert_eq!(entry["before"]["role"], "member");
    assert_eq!(entry["actor"], "corral");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn tampered_id_tokens_are_refused_with_a_clear_page_and_nothing_is_written(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    for (mode, expect) in [
        ("signature", "signature"),
        ("audience", "audience"),
        ("expired", "expired"),
        ("nonce", "nonce"),
    ] {
        idp.tamper_next_id_token(mode).await;
        let (res, body, cookie) = idp.sign_in(&app, "mia", "mia-pw").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{mode}: {body}");
        assert!(body.contains("Sign-in refused"), "{mode}: {body}");
        assert!(
            body.to_lowercase().contains(expect),
            "{mode} named in: {body}"
        );
        assert_eq!(user_count(&db).await, 0, "{mode}: no user written");
        let (res, _) = app.get_as("/api/v1/me", &cookie).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{mode}: not signed in"
        );
    }
    // And an untampered token still works.
    let (res, _, _) = idp.sign_in(&app, "mia", "mia-pw").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(user_count(&db).await, 1);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_callback_with_a_forged_state_is_refused(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    let (res, _) = app.get("/auth/login").await;
    let cookie = common::idp::session_cookie(&res).unwrap();
    let (res, body) = app
        .get_as("/auth/callback?code=x&state=forged", &cookie)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("state"), "{body}");
    assert_eq!(user_count(&db).await, 0);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn signing_out_ends_the_session_on_the_server_and_at_the_idp(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    let (_, _, cookie) = idp.sign_in(&app, "mia", "mia-pw").await;
    let req = axum::http::Request::post("/auth/logout")
        .header("cookie", &cookie)
        .header("origin", common::ORIGIN)
        .body(axum::body::Body::empty())
        .unwrap();
    let (res, _) = app.send(req).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{}/protocol/openid-connect/logout", idp.issuer)),
        "{to}"
    );
    assert!(to.contains("id_token_hint="), "{to}");
    let signed_out: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'user.signed_out'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(signed_out, 1, "the sign-out is in the audit log");
    // The old cookie is worthless now.
    let (res, _) = app.get_as("/api/v1/me", &cookie).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (res, _) = app.get_as("/teams", &cookie).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/signin?next=%2Fteams");
}
