//! The REST API's conventions: problem+json errors naming the field,
//! conflicts, pagination, the OpenAPI document covering every route.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn bad_input_is_a_problem_naming_the_field_and_changes_nothing(db: PgPool) {
    let app = TestApp::new(db.clone());
    let ada = app.dev_sign_in("ada").await;
    let cases = [
        (json!({ "slug": "Bad Slug", "name": "x" }), "slug"),
        (json!({ "slug": "ok-slug", "name": "   " }), "name"),
        (
            json!({ "slug": "ok-slug", "name": "x", "idp_group": "no-slash" }),
            "idp_group",
        ),
        (
            json!({ "slug": "ok-slug", "name": "x", "description": "d".repeat(501) }),
            "description",
        ),
        (
            json!({ "slug": "ok-slug", "name": "x", "colour": "red" }),
            "body",
        ),
        (json!({ "name": "x" }), "body"),
        // serde reads a struct from an array of its fields too; the
        // document says object.
        (json!(["ok-slug", "x", "", null]), "body"),
    ];
    for (body, field) in cases {
        let (res, text) = app
            .json_as("POST", "/api/v1/teams", &ada, body.clone())
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {text}"
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["field"], field, "{body}: {text}");
        assert_eq!(problem["status"], 422);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM teams WHERE slug = 'ok-slug'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn creating_a_team_twice_is_a_conflict_and_both_changes_are_audited(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let new =
        json!({ "slug": "research", "name": "Research", "description": "Models for research" });
    let (res, text) = app
        .json_as("POST", "/api/v1/teams", &ada, new.clone())
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    let (res, text) = app.json_as("POST", "/api/v1/teams", &ada, new).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{text}");
    assert!(text.contains("research"), "{text}");

    let (res, text) = app
        .json_as(
            "PATCH",
            "/api/v1/teams/research",
            &ada,
            json!({ "description": "Now with GPUs" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let team: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(team["name"], "Research");
    assert_eq!(team["description"], "Now with GPUs");

    let (_, text) = app.get_as("/api/v1/audit?team=research", &ada).await;
    let audit: Value = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["team.updated", "team.created"]);
    assert_eq!(audit["items"][0]["actor"], "ada");
    assert_eq!(
        audit["items"][0]["before"]["description"],
        "Models for research"
    );
    assert_eq!(audit["items"][0]["after"]["description"], "Now with GPUs");
    assert!(audit["items"][0]["request_id"].is_string());
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn lists_page_with_a_cursor_until_the_end(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    for i in 0..5 {
        let (res, _) = app
            .json_as(
                "POST",
                "/api/v1/teams",
                &ada,
                json!({ "slug": format!("t{i}"), "name": format!("T{i}") }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/teams?limit=2".to_owned();
    loop {
        let (res, text) = app.get_as(&uri, &ada).await;
        assert_eq!(res.status(), StatusCode::OK, "{text}");
        let page: Value = serde_json::from_str(&text).unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|t| t["slug"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/teams?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["platform", "t0", "t1", "t2", "t3", "t4"]);

    for bad in [
        "/api/v1/teams?limit=0",
        "/api/v1/teams?limit=201",
        "/api/v1/teams?limit=abc",
        "/api/v1/audit?cursor=zzz",
    ] {
        let (res, text) = app.get_as(bad, &ada).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {text}"
        );
        assert!(
            serde_json::from_str::<Value>(&text).unwrap()["field"].is_string(),
            "{bad}: {text}"
        );
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn an_unknown_bearer_token_is_refused_not_ignored(db: PgPool) {
    let app = TestApp::new(db);
    let ada = app.dev_sign_in("ada").await;
    let req = axum::http::Request::get("/api/v1/me")
        .header("cookie", &ada)
        .header("authorization", "Bearer crl_nope")
        .body(axum::body::Body::empty())
        .unwrap();
    let (res, text) = app.send(req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_openapi_document_is_served_and_lists_every_api_route_in_the_source(db: PgPool) {
    let app = TestApp::new(db);
    let (res, text) = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();

    // Every "/api/v1/…" path written anywhere in the server's source must be
    // in the document, except the document itself.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for piece in text.split('"').skip(1).step_by(2) {
                    if piece.starts_with("/api/v1/") && !piece.contains(' ') {
                        found.push(piece.to_owned());
                    }
                }
            }
        }
    }
    assert!(found.len() >= 6, "{found:?}");
    for path in found {
        if path == "/api/v1/openapi.json" {
            continue;
        }
        assert!(
            paths.contains_key(&path),
            "{path} is routed but missing from the OpenAPI document"
        );
    }
    let (res, page) = app.get("/api/docs").await;
    assert_eq!(res.status(), StatusCode::OK);
    for path in paths.keys() {
        assert!(
            page.contains(path.as_str()),
            "{path} missing from the docs page"
        );
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn admins_add_and_remove_members_by_hand_but_not_those_from_the_idp(db: PgPool) {
    let app = TestApp::new(db);
    app.dev_sign_in("mia").await; // mia in team-a and team-b, from the IdP
    let olu = app.dev_sign_in("olu").await;
    let ada = app.dev_sign_in("ada").await;
    let (res, _) = app
        .json_as(
            "POST",
            "/api/v1/teams",
            &ada,
            json!({ "slug": "research", "name": "Research" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/research/members",
            &ada,
            json!({ "username": "olu", "role": "owner" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["source"],
        "manual"
    );
    let (res, _) = app
        .json_as(
            "POST",
            "/api/v1/teams/research/members",
            &ada,
            json!({ "username": "olu", "role": "member" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/research/members",
            &ada,
            json!({ "username": "nobody", "role": "member" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["field"],
        "username"
    );
    let (res, text) = app
        .json_as(
            "POST",
            "/api/v1/teams/research/members",
            &ada,
            json!({ "username": "mia", "role": "boss" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    // olu now sees the team; a sign-in does not take the hand-added membership away.
    let olu_again = app.dev_sign_in("olu").await;
    let (res, _) = app.get_as("/api/v1/teams/research", &olu_again).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Memberships from the IdP are changed in the IdP.
    let (res, text) = app
        .json_as(
            "DELETE",
            "/api/v1/teams/team-a/members/mia",
            &ada,
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{text}");
    assert!(text.contains("/team-a"), "{text}");

    let (res, _) = app
        .json_as(
            "DELETE",
            "/api/v1/teams/research/members/olu",
            &ada,
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (res, _) = app.get_as("/api/v1/teams/research", &olu).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let (_, text) = app
        .get_as("/api/v1/audit?team=research&action=membership.", &ada)
        .await;
    let audit: Value = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["membership.removed", "membership.added"]);
}
