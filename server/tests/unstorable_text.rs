//! U+0000, which Postgres cannot store in `text`, sent in every text field of
//! every REST operation (found by walking the OpenAPI document: path and
//! query parameters, and body properties that are strings or lists of
//! strings) is refused with a 422 naming the field, never a 500; and an IdP
//! claim holding it refuses the sign-in with a page that says why.

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::idp::Idp;
use common::{ORIGIN, TestApp};
use serde_json::{Value, json};
use sqlx::PgPool;

const NUL: &str = "a\u{0}b";

/// The document's schema behind `schema`, with `$ref`s followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A string that is free text: not an enum, not a UUID.
fn is_text(doc: &Value, schema: &Value) -> bool {
    let s = resolve(doc, schema);
    let types = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    types.contains(&"string") && s.get("enum").is_none() && s["format"] != "uuid"
}

/// The text properties of a body schema, each with the value carrying
/// U+0000 (a list of one such string for lists of strings).
fn text_properties(doc: &Value, schema: &Value) -> BTreeMap<String, Value> {
    let s = resolve(doc, schema);
    let mut out = BTreeMap::new();
    // `oneOf` shapes (a decision to approve or to deny) share their fields.
    let shapes: Vec<&Value> = match s["oneOf"].as_array() {
        Some(shapes) => shapes.iter().map(|v| resolve(doc, v)).collect(),
        None => vec![s],
    };
    for shape in shapes {
        for (name, prop) in shape["properties"].as_object().into_iter().flatten() {
            if is_text(doc, prop) {
                out.insert(name.clone(), json!(NUL));
            } else if is_text(doc, &resolve(doc, prop)["items"]) {
                out.insert(name.clone(), json!([NUL]));
            }
        }
    }
    out
}

/// What the walk aims at: a team, a pending key request and a key of ada's.
struct Targets {
    request: String,
    key: String,
    modelfile: String,
}

async fn targets(app: &TestApp, ada: &str) -> Targets {
    let mia = app.dev_sign_in("mia").await;
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/teams/team-a/key-requests",
            &mia,
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
            "/api/v1/teams/platform/key-requests",
            ada,
            json!({ "name": "ada's" }),
        )
        .await;
    let mine = serde_json::from_str::<Value>(&body).unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.json_as(
        "POST",
        &format!("/api/v1/key-requests/{mine}/decision"),
        ada,
        json!({ "approve": true }),
    )
    .await;
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/key-requests/{mine}/claim"),
            ada,
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
            "/api/v1/modelfiles",
            ada,
            json!({ "team": "team-a", "name": "team-a/m", "text": "FROM llama3.2\n", "message": "m" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let modelfile = serde_json::from_str::<Value>(&body).unwrap()["modelfile"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Targets {
        request,
        key,
        modelfile,
    }
}

/// A body the operation accepts, for one field at a time to be spoilt.
fn valid_body(method: &str, path: &str) -> Value {
    match (method, path) {
        ("POST", "/api/v1/teams") => json!({ "slug": "new-team", "name": "New" }),
        ("POST", p) if p.ends_with("/members") => json!({ "username": "olu", "role": "member" }),
        ("POST", p) if p.ends_with("/key-requests") => json!({ "name": "k" }),
        ("POST", p) if p.ends_with("/decision") => json!({ "approve": false, "reason": "no" }),
        ("PATCH", p) if p.ends_with("/policy") => json!({ "max_key_days": 30 }),
        ("PATCH", _) => json!({ "name": "Renamed" }),
        ("POST", "/api/v1/operations") => {
            json!({ "kind": "copy", "model": "a", "destination": "b", "team": "team-a" })
        }
        ("POST", "/api/v1/modelfiles") => json!({
            "team": "team-a", "name": "team-a/nul", "text": "FROM llama3.2\n", "message": "m"
        }),
        ("POST", "/api/v1/modelfiles/validate") => json!({ "text": "FROM llama3.2\n" }),
        ("POST", "/api/v1/modelfiles/import") => json!({ "model": "llama3.2", "team": "team-a" }),
        ("POST", p) if p.ends_with("/versions") => {
            json!({ "text": "FROM llama3.2\n", "message": "m" })
        }
        ("POST", p) if p.ends_with("/rollback") => json!({ "version": 1 }),
        ("POST", "/api/v1/maintenance-windows") => {
            json!({ "weekday": 1, "starts": "01:00", "ends": "02:00", "time_zone": "UTC" })
        }
        _ => json!({}),
    }
}

fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn nul_in_any_text_field_of_the_rest_api_is_a_422_naming_the_field(db: PgPool) {
    let app = TestApp::new(db.clone());
    let ada = app.dev_sign_in("ada").await;
    app.dev_sign_in("olu").await;
    let t = targets(&app, &ada).await;
    let (_, openapi) = server::rest::routes();
    let doc = serde_json::to_value(&openapi).unwrap();

    let mut checked: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            let id = if path.starts_with("/api/v1/keys/") {
                &t.key
            } else if path.starts_with("/api/v1/modelfiles/") {
                &t.modelfile
            } else {
                &t.request
            };
            let fill = |spoilt: Option<&str>| {
                let mut uri = path
                    .replace("{id}", id)
                    .replace("{version}", "1")
                    .replace("{slug}", "team-a")
                    .replace("{username}", "olu");
                if let Some(name) = spoilt {
                    uri = path
                        .replace("{id}", id)
                        .replace(&format!("{{{name}}}"), &percent_encode(NUL))
                        .replace("{version}", "1")
                        .replace("{slug}", "team-a")
                        .replace("{username}", "olu");
                }
                uri
            };
            // (field, where, the request's uri, its body)
            let mut cases: Vec<(String, &str, String, Value)> = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if !is_text(&doc, &p["schema"]) {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                let uri = match p["in"].as_str().unwrap() {
                    "path" => fill(Some(name)),
                    _ => format!("{}?{name}={}", fill(None), percent_encode(NUL)),
                };
                cases.push((name.to_owned(), "parameter", uri, valid_body(&method, path)));
            }
            if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
                for (name, bad) in text_properties(&doc, schema) {
                    let mut body = valid_body(&method, path);
                    body[&name] = bad;
                    cases.push((name, "body", fill(None), body));
                }
            }
            for (field, at, uri, body) in cases {
                let (res, text) = if method == "GET" {
                    app.get_as(&uri, &ada).await
                } else {
                    app.json_as(&method, &uri, &ada, body).await
                };
                assert_eq!(
                    res.status(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{method} {path}, {at} {field}: {text}"
                );
                assert_eq!(res.headers()["content-type"], "application/problem+json");
                let problem: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    problem["field"], field,
                    "{method} {path}, {at} {field}: {text}"
                );
                assert!(
                    problem["detail"].as_str().unwrap().contains("U+0000"),
                    "{method} {path}, {at} {field}: {text}"
                );
                checked.push(format!("{method} {path} {field}"));
            }
        }
    }
    // The walk reached the fields that matter (a document that lost its
    // text fields would otherwise pass by checking nothing).
    for expected in [
        "POST /api/v1/teams/{slug}/members username",
        "DELETE /api/v1/teams/{slug}/members/{username} username",
        "POST /api/v1/teams slug",
        "POST /api/v1/teams name",
        "POST /api/v1/teams description",
        "POST /api/v1/teams idp_group",
        "PATCH /api/v1/teams/{slug} description",
        "GET /api/v1/teams/{slug} slug",
        "GET /api/v1/teams cursor",
        "GET /api/v1/audit actor",
        "GET /api/v1/audit cursor",
        "POST /api/v1/teams/{slug}/key-requests name",
        "POST /api/v1/teams/{slug}/key-requests purpose",
        "POST /api/v1/teams/{slug}/key-requests models",
        "POST /api/v1/key-requests/{id}/decision reason",
        "POST /api/v1/keys/{id}/revoke reason",
        "PATCH /api/v1/teams/{slug}/policy allowed_models",
        "GET /api/v1/teams/{slug}/usage slug",
        "POST /api/v1/operations model",
        "POST /api/v1/operations destination",
        "POST /api/v1/operations team",
        "POST /api/v1/operations workload",
        "GET /api/v1/operations team",
        "GET /api/v1/operations model",
        "POST /api/v1/maintenance-windows time_zone",
        "POST /api/v1/modelfiles name",
        "POST /api/v1/modelfiles team",
        "POST /api/v1/modelfiles text",
        "POST /api/v1/modelfiles message",
        "POST /api/v1/modelfiles description",
        "POST /api/v1/modelfiles/validate text",
        "POST /api/v1/modelfiles/import model",
        "POST /api/v1/modelfiles/import team",
        "POST /api/v1/modelfiles/{id}/versions text",
        "POST /api/v1/modelfiles/{id}/rollback message",
        "POST /api/v1/modelfiles/{id}/deploy workload",
        "GET /api/v1/modelfiles team",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} was not checked; checked: {checked:#?}"
        );
    }
    // Nothing was written on the way: the request is still pending and no
    // team was made.
    let (_, body) = app.get_as("/api/v1/key-requests?state=pending", &ada).await;
    assert!(body.contains(&t.request), "{body}");
    let teams: i64 = sqlx::query_scalar("SELECT count(*) FROM teams WHERE slug = 'new-team'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(teams, 0);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn nul_in_a_server_function_argument_is_a_422_naming_the_field(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    for (path, args, field) in [
        (
            "/rpc/admin_add_member",
            "slug=platform&member[username]=a%00b&member[role]=member",
            "username",
        ),
        (
            "/rpc/admin_create_team",
            "team[slug]=x&team[name]=a%00b",
            "name",
        ),
        (
            "/rpc/request_key",
            "slug=platform&name=k&purpose=a%00b&inference=on",
            "purpose",
        ),
        ("/rpc/team_detail", "slug=a%00b", "slug"),
    ] {
        let req = Request::post(path)
            .header("cookie", &ada)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(Body::from(args))
            .unwrap();
        let (res, body) = app.send(req).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {body}"
        );
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["field"], field, "{path}: {body}");
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn an_idp_claim_holding_nul_refuses_the_sign_in_and_stores_nothing(db: PgPool) {
    let idp = Idp::start().await;
    let app = TestApp::with_idp(db.clone(), &idp);
    idp.set_groups("mia", &["/team-a", "/team\u{0}b"]).await;

    let (res, body, _) = idp.sign_in(&app, "mia", "mia-pw").await;

    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("Sign-in refused"), "{body}");
    assert!(body.contains("groups claim"), "{body}");
    assert!(body.contains("U+0000"), "{body}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}
