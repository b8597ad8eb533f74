//! The authorization matrix, generated from the route lists: every REST
//! operation in the OpenAPI document and every registered server function
//! is called by a member of team A against team B and by a non-admin against
//! admin operations. A new route or server function that is not classified
//! here fails the test, so none can skip it.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ORIGIN, TestApp};
use serde_json::{Value, json};
use sqlx::PgPool;

/// What a server function may reveal, and to whom.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Anyone, signed in or not; reveals nothing team-scoped.
    Public,
    /// The sign-in page's options: public, and under the local profile it
    /// lists the fixed development personas (not stored data).
    SignIn,
    /// Only the caller's own data.
    OwnData,
    /// Takes a team slug; members of other teams get 403/404.
    TeamScoped,
    /// Platform admins only.
    Admin,
}

/// Team-b's key request (pending) and key, made by mia, for the matrix to aim at.
struct TeamB {
    request: String,
    key: String,
    /// A pull ada queued for team-b.
    operation: String,
    /// A Modelfile ada made for team-b.
    modelfile: String,
}

/// mia (member of team-a and team-b) asks for two keys in team-b; ada (an
/// admin) approves the second, and mia collects it.
async fn team_b_keys(app: &TestApp, mia: &str) -> TeamB {
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-b/key-requests",
            mia,
            json!({ "name": "pending" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let request = serde_json::from_str::<Value>(&body).unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-b/key-requests",
            mia,
            json!({ "name": "issued" }),
        )
        .await;
    let second = serde_json::from_str::<Value>(&body).unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada = app.dev_sign_in("ada").await;
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{second}/decision"),
            &ada,
            json!({ "approve": true }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{second}/claim"),
            mia,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let key = serde_json::from_str::<Value>(&body).unwrap()["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &ada,
            json!({ "kind": "pull", "model": "team-b-model", "team": "team-b" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let operation = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &ada,
            json!({ "team": "team-b", "name": "team-b/secret", "text": "FROM llama3.2\nSYSTEM b\n", "message": "b's" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let modelfile = serde_json::from_str::<Value>(&body).unwrap()["modelfile"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    TeamB {
        request,
        key,
        operation,
        modelfile,
    }
}

/// Team-b's key request and key are as they were.
async fn team_b_untouched(app: &TestApp, b: &TeamB) {
    let ada = app.dev_sign_in("ada").await;
    let (_, body) = app.get_as("/api/v1/teams/team-b/key-requests", &ada).await;
    let requests: Value = serde_json::from_str(&body).unwrap();
    let pending = requests
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == b.request.as_str())
        .unwrap();
    assert_eq!(pending["state"], "pending");
    let (_, body) = app.get_as("/api/v1/teams/team-b/keys", &ada).await;
    let keys: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "no key was added or rotated: {keys}"
    );
    assert_eq!(keys[0]["id"], b.key.as_str());
    assert_eq!(keys[0]["state"], "active");
    let (_, body) = app.get_as("/api/v1/teams/team-b/policy", &ada).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["max_key_days"],
        90
    );
}

/// Every server function, classified, with form arguments aimed at team-b.
fn server_functions(b: &TeamB) -> BTreeMap<&'static str, (Kind, String)> {
    let (r, k) = (&b.request, &b.key);
    let mut m: BTreeMap<&'static str, (Kind, String)> = BTreeMap::from([
        (
            "/rpc/team_keys",
            (Kind::TeamScoped, "slug=team-b".to_owned()),
        ),
        (
            "/rpc/request_key",
            (
                Kind::TeamScoped,
                "slug=team-b&name=evil&inference=on".to_owned(),
            ),
        ),
        (
            "/rpc/decide_key_request",
            (Kind::TeamScoped, format!("id={r}&decision=approve")),
        ),
        (
            "/rpc/withdraw_key_request",
            (Kind::TeamScoped, format!("id={r}")),
        ),
        ("/rpc/claim_key", (Kind::TeamScoped, format!("id={r}"))),
        ("/rpc/revoke_key", (Kind::TeamScoped, format!("id={k}"))),
        (
            "/rpc/rotate_key",
            (Kind::TeamScoped, format!("id={k}&grace_hours=0")),
        ),
        (
            "/rpc/usage_dashboard",
            (Kind::TeamScoped, "slug=team-b&range=24h".to_owned()),
        ),
        ("/rpc/admin_keys", (Kind::Admin, String::new())),
        ("/rpc/admin_usage", (Kind::Admin, "range=24h".to_owned())),
        ("/rpc/cluster_view", (Kind::OwnData, String::new())),
        ("/rpc/list_operations", (Kind::OwnData, String::new())),
        (
            "/rpc/operation_detail",
            (Kind::TeamScoped, format!("id={}", b.operation)),
        ),
        (
            "/rpc/cancel_operation",
            (Kind::TeamScoped, format!("id={}", b.operation)),
        ),
        (
            "/rpc/start_operation",
            (
                Kind::TeamScoped,
                "kind=pull&model=evil&team=team-b".to_owned(),
            ),
        ),
        ("/rpc/modelfiles", (Kind::OwnData, String::new())),
        (
            "/rpc/modelfile",
            (Kind::TeamScoped, format!("id={}", b.modelfile)),
        ),
        (
            "/rpc/create_modelfile",
            (
                Kind::TeamScoped,
                "team=team-b&name=evil&text=FROM+llama3.2&message=m".to_owned(),
            ),
        ),
        (
            "/rpc/save_modelfile",
            (
                Kind::TeamScoped,
                format!("id={}&text=FROM+llama3.2&message=m", b.modelfile),
            ),
        ),
        (
            "/rpc/rollback_modelfile",
            (Kind::TeamScoped, format!("id={}&version=1", b.modelfile)),
        ),
        (
            "/rpc/deploy_modelfile",
            (Kind::TeamScoped, format!("id={}&version=1", b.modelfile)),
        ),
        (
            "/rpc/modelfile_drift",
            (Kind::TeamScoped, format!("id={}", b.modelfile)),
        ),
        (
            "/rpc/modelfile_diff",
            (Kind::TeamScoped, format!("id={}&from=1&to=1", b.modelfile)),
        ),
        (
            "/rpc/import_modelfile",
            (Kind::TeamScoped, "model=llama3.2&team=team-b".to_owned()),
        ),
        (
            "/rpc/admin_update_policy",
            (Kind::Admin, "slug=team-b&max_key_days=5".to_owned()),
        ),
    ]);
    m.extend(
        identity_functions()
            .into_iter()
            .map(|(p, (k, a))| (p, (k, a.to_owned()))),
    );
    m
}

fn identity_functions() -> BTreeMap<&'static str, (Kind, &'static str)> {
    BTreeMap::from([
        ("/rpc/check_status", (Kind::Public, "")),
        ("/rpc/about", (Kind::Public, "")),
        ("/rpc/whoami", (Kind::OwnData, "")),
        ("/rpc/sign_in_options", (Kind::SignIn, "")),
        ("/rpc/my_teams", (Kind::OwnData, "")),
        ("/rpc/team_detail", (Kind::TeamScoped, "slug=team-b")),
        ("/rpc/admin_teams", (Kind::Admin, "")),
        (
            "/rpc/admin_create_team",
            (Kind::Admin, "team[slug]=evil&team[name]=Evil"),
        ),
        (
            "/rpc/admin_update_team",
            (Kind::Admin, "slug=team-b&patch[name]=Owned"),
        ),
        ("/rpc/admin_users", (Kind::Admin, "")),
        (
            "/rpc/admin_add_member",
            (
                Kind::Admin,
                "slug=team-b&member[username]=olu&member[role]=owner",
            ),
        ),
        (
            "/rpc/admin_remove_member",
            (Kind::Admin, "slug=team-b&username=mia"),
        ),
        ("/rpc/admin_audit", (Kind::Admin, "filter[team]=team-b")),
    ])
}

async fn call_rpc(app: &TestApp, path: &str, cookie: &str, args: &str) -> (StatusCode, String) {
    let req = Request::post(path)
        .header("cookie", cookie)
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(Body::from(args.to_owned()))
        .unwrap();
    let (res, body) = app.send(req).await;
    (res.status(), body)
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn every_server_function_keeps_team_b_from_a_member_of_team_a(db: PgPool) {
    let app = TestApp::new(db);
    // mia is in team-a and team-b, which makes team-b exist; olu is in team-a only.
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let b = team_b_keys(&app, &mia).await;

    let classified = server_functions(&b);
    let registered: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p)
        .collect();
    for path in &registered {
        assert!(
            classified.contains_key(path),
            "server function {path} is not classified in the authorization matrix"
        );
    }
    for (path, (kind, args)) in &classified {
        assert!(
            registered.contains(path),
            "{path} is classified but not registered"
        );
        let (status, body) = call_rpc(&app, path, &olu, args).await;
        match kind {
            Kind::Public | Kind::OwnData => {
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                assert!(
                    !body.contains("team-b"),
                    "{path} leaked team-b to a member of team-a: {body}"
                );
            }
            Kind::SignIn => assert_eq!(status, StatusCode::OK, "{path}: {body}"),
            Kind::TeamScoped => {
                assert!(
                    matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
                    "{path}: {status} {body}"
                );
                assert!(
                    !body.contains("Mia"),
                    "{path} leaked team-b's members: {body}"
                );
            }
            Kind::Admin => {
                assert!(
                    matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                    "{path}: {status} {body}"
                );
            }
        }
    }
    // Nothing changed on the way.
    team_b_untouched(&app, &b).await;
    let ada = app.dev_sign_in("ada").await;
    let (_, body) = app.get_as("/api/v1/teams/team-b", &ada).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["name"],
        "team-b"
    );
    let (res, _) = app.get_as("/api/v1/teams/evil", &ada).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn every_rest_operation_keeps_team_b_from_a_member_of_team_a(db: PgPool) {
    let app = TestApp::new(db);
    let mia = app.dev_sign_in("mia").await;
    let olu = app.dev_sign_in("olu").await;
    let b = team_b_keys(&app, &mia).await;
    let (_, openapi) = server::rest::routes();

    let mut checked = 0;
    for (path, item) in &openapi.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let admin = op
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "admin"));
            // Paths naming a team, or one of its key requests or keys.
            // Starting an operation names its team in the body.
            let team_scoped = path.contains("{slug}")
                || path.contains("{id}")
                || (method == "POST" && path == "/api/v1/operations")
                || (method == "POST"
                    && (path == "/api/v1/modelfiles" || path == "/api/v1/modelfiles/import"));
            let id = if path.starts_with("/api/v1/keys/") {
                &b.key
            } else if path.starts_with("/api/v1/operations/") {
                &b.operation
            } else if path.starts_with("/api/v1/modelfiles/") {
                &b.modelfile
            } else {
                &b.request
            };
            let uri = path
                .replace("{slug}", "team-b")
                .replace("{username}", "mia")
                .replace("{version}", "1")
                .replace("{id}", id);
            let body = match method {
                "POST" if path.ends_with("/members") => {
                    json!({ "username": "olu", "role": "owner" })
                }
                "POST" if path.ends_with("/key-requests") => json!({ "name": "evil" }),
                "POST" if path.ends_with("/decision") => json!({ "approve": true }),
                "POST" if path.ends_with("/versions") => {
                    json!({ "text": "FROM llama3.2\n", "message": "mine now" })
                }
                "POST" if path.ends_with("/rollback") => json!({ "version": 1 }),
                "POST" if path.contains("{id}") => json!({}),
                "POST" if path == "/api/v1/modelfiles" => json!({
                    "team": "team-b", "name": "team-b/evil", "text": "FROM llama3.2\n", "message": "m"
                }),
                "POST" if path == "/api/v1/modelfiles/import" => {
                    json!({ "model": "llama3.2", "team": "team-b" })
                }
                "POST" if path == "/api/v1/modelfiles/validate" => {
                    json!({ "text": "FROM llama3.2\n" })
                }
                "POST" if path == "/api/v1/operations" => {
                    json!({ "kind": "pull", "model": "evil", "team": "team-b" })
                }
                "POST" if path.ends_with("/maintenance-windows") => {
                    json!({ "weekday": 1, "starts": "01:00", "ends": "02:00", "time_zone": "UTC" })
                }
                "POST" => json!({ "slug": "evil", "name": "Evil" }),
                "PATCH" if path.ends_with("/policy") => json!({ "max_key_days": 5 }),
                "PATCH" | "PUT" => json!({ "name": "Owned" }),
                _ => Value::Null,
            };
            let (res, text) = if method == "GET" {
                app.get_as(&uri, &olu).await
            } else {
                app.json_as(method, &uri, &olu, body).await
            };
            let status = res.status();
            if admin {
                assert!(
                    matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                    "{method} {path}: {status} {text}"
                );
            } else if team_scoped {
                assert!(
                    matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                    "{method} {path}: {status} {text}"
                );
                assert!(
                    !text.contains("Mia"),
                    "{method} {path} leaked team-b: {text}"
                );
            } else {
                assert_eq!(status, StatusCode::OK, "{method} {path}: {text}");
                assert!(
                    !text.contains("team-b"),
                    "{method} {path} leaked team-b: {text}"
                );
            }
            if status.is_client_error() {
                assert_eq!(
                    res.headers()["content-type"],
                    "application/problem+json",
                    "{method} {path}"
                );
            }
            // Signed out: 401 everywhere.
            let (res, _) = if method == "GET" {
                app.get(&uri).await
            } else {
                app.json_as(method, &uri, "", json!({})).await
            };
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a session"
            );
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} operations found");
    team_b_untouched(&app, &b).await;
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn admin_pages_are_not_shown_to_non_admins(db: PgPool) {
    let app = TestApp::new(db);
    let olu = app.dev_sign_in("olu").await;
    for page in [
        "/admin/teams",
        "/admin/users",
        "/admin/audit",
        "/admin/usage",
    ] {
        let (res, body) = app.get_as(page, &olu).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{page}");
        assert!(
            !body.contains("data-testid=\"admin-"),
            "{page} rendered admin data"
        );
    }
    let (_, home) = app.get_as("/", &olu).await;
    assert!(
        !home.contains("href=\"/admin"),
        "no admin links for non-admins"
    );
    let ada = app.dev_sign_in("ada").await;
    let (res, home) = app.get_as("/", &ada).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        home.contains("href=\"/admin/teams\""),
        "admins see the admin link"
    );
    let (res, _) = app.get_as("/admin/audit", &ada).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn protected_pages_redirect_to_sign_in_when_signed_out(db: PgPool) {
    let app = TestApp::new(db);
    for page in [
        "/teams",
        "/teams/team-a",
        "/admin/teams",
        "/cluster",
        "/operations",
        "/modelfiles",
        "/modelfiles/00000000-0000-0000-0000-000000000000",
    ] {
        let (res, _) = app.get(page).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        let to = res.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/signin?next=%2F"), "{page} → {to}");
    }
}
