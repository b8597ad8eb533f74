//! Versioned Modelfiles through the real router, a real runner and two
//! simulated Ollama pods: the seed's code-review Modelfile refused where
//! Ollama refuses it, fixed, saved, deployed to both pods; versions, diff,
//! rollback, drift; and one team never reaching another's.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use common::ops::{pods, runner, wait_final};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The models on a pod, by its `/api/tags`.
async fn tags(url: &url::Url) -> Vec<String> {
    let v: Value = reqwest::get(url.join("/api/tags").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The seed article's Modelfile, as printed (with its trailing comment).
const CODE_REVIEW: &str = modelfile::examples::CODE_REVIEW;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn the_code_review_modelfile_is_refused_like_ollama_then_fixed_saved_and_deployed_to_both_pods(
    db: PgPool,
) {
    let (sims, urls) = pods(5).await;
    let app = TestApp::with_pods(db.clone(), &urls);
    let ada = app.dev_sign_in("ada").await;
    let olu = app.dev_sign_in("olu").await;

    // As printed: refused on line 4, where Ollama refuses it, with a fix.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles/validate",
            &olu,
            json!({"text": CODE_REVIEW}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{body}");
    let v = parse(&body);
    assert_eq!(v["ok"], false, "{body}");
    assert_eq!(v["request"], Value::Null);
    let errors: Vec<&Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["span"]["start"]["line"], 4, "{body}");
    assert!(
        errors[0]["ollama_message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid float value")),
        "{body}"
    );
    assert!(errors[0]["fix"]["edits"].is_array(), "{body}");

    // Saving it as is: 422 naming the text and the line.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/code-review", "text": CODE_REVIEW, "message": "as printed"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(parse(&body)["field"], "text");
    assert!(body.contains("line 4"), "{body}");

    // The fix applied: the request Ollama's own client would send.
    let fix: modelfile::Fix = serde_json::from_value(errors[0]["fix"].clone()).unwrap();
    let fixed = modelfile::apply_fix(CODE_REVIEW, &fix);
    let (_, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles/validate",
            &olu,
            json!({"text": fixed, "name": "team-a/code-review"}),
        )
        .await;
    let v = parse(&body);
    assert_eq!(v["ok"], true, "{body}");
    let request = &v["request"];
    assert_eq!(request["model"], "team-a/code-review:latest", "{body}");
    assert_eq!(request["from"], "codellama:13b", "{body}");
    assert!(
        request["system"]
            .as_str()
            .unwrap()
            .starts_with("You are a senior code reviewer.")
    );
    assert_eq!(request["parameters"]["temperature"].as_f64(), Some(0.1));
    assert_eq!(request["parameters"]["num_ctx"], 8192);
    assert_eq!(request["parameters"]["num_predict"], 2048);

    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/code-review", "text": fixed, "message": "the seed's reviewer"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let d = parse(&body);
    let id = d["modelfile"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["modelfile"]["latest"], 1);

    // A second Modelfile of the same model: 409.
    let (res, _) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &ada,
            json!({"team": "team-a", "name": "team-a/code-review", "text": fixed, "message": "again"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Deploy: on each pod the base is pulled, then the model created.
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/modelfiles/{id}/deploy"),
            &olu,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let op: Uuid = parse(&body)["id"].as_str().unwrap().parse().unwrap();
    let r = runner(&db, &urls, "runner-1", Duration::from_secs(10));
    let stop = tokio::spawn(r.run(std::future::pending()));
    wait_final(&db, &[op], Duration::from_secs(60)).await;
    stop.abort();
    let (_, body) = app.get_as(&format!("/api/v1/operations/{op}"), &olu).await;
    let detail = parse(&body);
    assert_eq!(detail["state"], "succeeded", "{body}");
    assert_eq!(detail["steps"].as_array().unwrap().len(), 2);
    for (sim, url) in sims.iter().zip(&urls) {
        let got = tags(url).await;
        assert!(got.contains(&"codellama:13b".to_owned()), "{got:?}");
        assert!(
            got.contains(&"team-a/code-review:latest".to_owned()),
            "{got:?}"
        );
        let creates = sim
            .requests()
            .into_iter()
            .filter(|r| r.target == "/api/create")
            .count();
        assert_eq!(creates, 1);
    }
    let (_, body) = app.get_as(&format!("/api/v1/modelfiles/{id}"), &olu).await;
    let d = parse(&body);
    assert_eq!(d["modelfile"]["deployments"][0]["version"], 1, "{body}");
    let (_, body) = app
        .get_as(&format!("/api/v1/modelfiles/{id}/drift"), &olu)
        .await;
    let drift = parse(&body);
    assert_eq!(drift["version"], 1, "{body}");
    for p in drift["pods"].as_array().unwrap() {
        assert_eq!(p["state"], "in_sync", "{body}");
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn versions_diff_rollback_and_drift_behind_corrals_back(db: PgPool) {
    let (sims, urls) = pods(1).await;
    let app = TestApp::with_pods(db.clone(), &urls);
    let olu = app.dev_sign_in("olu").await;
    let v1 = "FROM llama3.2\nSYSTEM \"\"\"Answer briefly.\"\"\"\nPARAMETER temperature 0.2\nPARAMETER num_ctx 4096\n";
    let v2 = "FROM llama3.2\nSYSTEM \"\"\"Answer briefly.\"\"\"\nPARAMETER temperature 0.7\nPARAMETER num_ctx 4096\n";
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/brief", "text": v1, "message": "v1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let id = parse(&body)["modelfile"]["id"].as_str().unwrap().to_owned();
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/modelfiles/{id}/versions"),
            &olu,
            json!({"text": v2, "message": "warmer"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    assert_eq!(parse(&body)["version"], 2);

    // The diff: exactly the changed line.
    let (res, diff) = app
        .get_as(&format!("/api/v1/modelfiles/{id}/diff?from=1&to=2"), &olu)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{diff}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/x-diff")
    );
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(
        changed,
        vec!["-PARAMETER temperature 0.2", "+PARAMETER temperature 0.7"],
        "{diff}"
    );
    let (res, body) = app
        .get_as(&format!("/api/v1/modelfiles/{id}/diff?from=9"), &olu)
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(parse(&body)["field"], "from");

    // Roll back to v1: v3, equal to v1.
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/modelfiles/{id}/rollback"),
            &olu,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let v3 = parse(&body);
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["restores"], 1);
    assert_eq!(v3["text"], v1);
    let (_, diff) = app
        .get_as(&format!("/api/v1/modelfiles/{id}/diff?from=1&to=3"), &olu)
        .await;
    assert_eq!(diff, "", "v3 equals v1");

    // Deploy v3; drift is clear.
    let (res, body) = app
        .json_as(
            "POST",
            &format!("/api/v1/modelfiles/{id}/deploy"),
            &olu,
            json!({"version": 3}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let op: Uuid = parse(&body)["id"].as_str().unwrap().parse().unwrap();
    let r = runner(&db, &urls, "runner-1", Duration::from_secs(10));
    let stop = tokio::spawn(r.run(std::future::pending()));
    wait_final(&db, &[op], Duration::from_secs(60)).await;
    stop.abort();
    let drift_of = async |app: &TestApp| {
        let (res, body) = app
            .get_as(&format!("/api/v1/modelfiles/{id}/drift"), &olu)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{body}");
        parse(&body)
    };
    let d = drift_of(&app).await;
    assert_eq!(d["version"], 3, "{d}");
    assert!(
        d["pods"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "in_sync"),
        "{d}"
    );

    // Someone changes the model on one pod behind Corral's back.
    let changed = reqwest::Client::new()
        .post(urls[1].join("/api/create").unwrap())
        .json(
            &json!({"model": "team-a/brief", "from": "llama3.2", "system": "Answer briefly.",
                      "parameters": {"temperature": 1.5, "num_ctx": 4096}, "stream": false}),
        )
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success());
    let d = drift_of(&app).await;
    let states: Vec<&str> = d["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "drifted").count(), 1, "{d}");
    assert_eq!(states.iter().filter(|s| **s == "in_sync").count(), 1, "{d}");
    assert!(d.to_string().contains("temperature"), "{d}");
    drop(sims);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_team_never_reaches_another_teams_modelfiles_or_names(db: PgPool) {
    let app = TestApp::new(db.clone());
    let ada = app.dev_sign_in("ada").await;
    let olu = app.dev_sign_in("olu").await; // team-a only
    app.dev_sign_in("mia").await; // makes team-b
    let text = "FROM llama3.2\nSYSTEM hello\n";
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &ada,
            json!({"team": "team-b", "name": "team-b/secret", "text": text, "message": "b's"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let b = parse(&body)["modelfile"]["id"].as_str().unwrap().to_owned();

    // Not listed, not readable, not editable, not deployable, no drift: 404.
    let (_, body) = app.get_as("/api/v1/modelfiles", &olu).await;
    assert!(!body.contains("team-b/secret"), "{body}");
    for (method, uri, payload) in [
        ("GET", format!("/api/v1/modelfiles/{b}"), Value::Null),
        (
            "GET",
            format!("/api/v1/modelfiles/{b}/versions/1"),
            Value::Null,
        ),
        ("GET", format!("/api/v1/modelfiles/{b}/diff"), Value::Null),
        ("GET", format!("/api/v1/modelfiles/{b}/drift"), Value::Null),
        (
            "POST",
            format!("/api/v1/modelfiles/{b}/versions"),
            json!({"text": text, "message": "mine now"}),
        ),
        (
            "POST",
            format!("/api/v1/modelfiles/{b}/rollback"),
            json!({"version": 1}),
        ),
        ("POST", format!("/api/v1/modelfiles/{b}/deploy"), json!({})),
    ] {
        let (res, body) = if method == "GET" {
            app.get_as(&uri, &olu).await
        } else {
            app.json_as(method, &uri, &olu, payload).await
        };
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "{method} {uri}: {body}"
        );
    }

    // Nor a model name of team B's or the platform's, nor FROM team B's.
    for (name, team, field) in [
        ("team-b/secret", "team-a", "name"),
        ("team-b/other", "team-a", "name"),
        ("llama3.2", "team-a", "name"),
    ] {
        let (res, body) = app
            .json_as(
                "POST",
                "/api/v1/modelfiles",
                &olu,
                json!({"team": team, "name": name, "text": text, "message": "x"}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {body}"
        );
        assert_eq!(parse(&body)["field"], field, "{body}");
    }
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-b", "name": "team-b/mine", "text": text, "message": "x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "{body}");
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/copy", "text": "FROM team-b/secret\n", "message": "x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("another team"), "{body}");
    // Nor delete it from the pods with a team operation.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/operations",
            &olu,
            json!({"kind": "delete", "model": "team-b/secret", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The allow-list applies to FROM, and the created model joins what the
    // team's keys may call.
    let (res, _) = app
        .json_as(
            "PATCH",
            "/api/v1/teams/team-a/policy",
            &ada,
            json!({"allowed_models": ["llama3.2"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/q", "text": "FROM qwen2.5:7b\n", "message": "x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("allow-list"), "{body}");
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles",
            &olu,
            json!({"team": "team-a", "name": "team-a/helper", "text": text, "message": "x"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let key_of = async |slug: &str, public_id: &str| {
        sqlx::query(
            "INSERT INTO api_keys (public_id, secret_hmac, team_id, owner_id, name, scopes, expires_at)
             SELECT $2, '\\x00', t.id, u.id, 'k', ARRAY['inference'], now() + interval '1 day'
               FROM teams t, users u WHERE t.slug = $1 AND u.username = 'olu'",
        )
        .bind(slug)
        .bind(public_id)
        .execute(&db)
        .await
        .unwrap();
        app::domain::keys::grant(&db, public_id)
            .await
            .unwrap()
            .unwrap()
    };
    let a = key_of("team-a", "ka000001").await;
    assert!(a.allows_model("team-a/helper"));
    assert!(a.allows_model("llama3.2"));
    assert!(!a.allows_model("team-b/secret"));
    assert!(!a.allows_model("qwen2.5:7b"));
    // A team without an allow-list may call any model, but not team B's.
    sqlx::query("INSERT INTO teams (slug, name) VALUES ('team-c', 'C')")
        .execute(&db)
        .await
        .unwrap();
    let c = key_of("team-c", "kc000001").await;
    assert!(c.allows_model("qwen2.5:7b"));
    assert!(!c.allows_model("team-b/secret"));
    assert!(!c.allows_model("team-a/helper"));
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_model_on_the_pods_is_imported_as_a_modelfile_that_gives_back_its_settings(db: PgPool) {
    let (_sims, urls) = pods(1).await;
    let app = TestApp::with_pods(db.clone(), &urls);
    let olu = app.dev_sign_in("olu").await;
    // A model made on the pods without Corral.
    for url in &urls {
        let made = reqwest::Client::new()
            .post(url.join("/api/create").unwrap())
            .json(&json!({"model": "helper", "from": "llama3.2", "system": "Be brief.\nAnswer in English.",
                          "parameters": {"temperature": 0.3, "num_ctx": 16384, "stop": ["<|end|>", "###"]},
                          "stream": false}))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success());
    }
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles/import",
            &olu,
            json!({"model": "helper", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{body}");
    let d = parse(&body);
    assert_eq!(d["modelfile"]["name"], "team-a/helper:latest", "{body}");
    let request = &d["current"]["request"];
    assert_eq!(request["system"], "Be brief.\nAnswer in English.", "{body}");
    assert_eq!(request["parameters"]["num_ctx"], 16384, "{body}");
    assert_eq!(
        request["parameters"]["temperature"].as_f64(),
        Some(0.3),
        "{body}"
    );
    assert_eq!(
        request["parameters"]["stop"],
        json!(["<|end|>", "###"]),
        "{body}"
    );
    // A model that is on no pod: 422 naming the model.
    let (res, body) = app
        .json_as(
            "POST",
            "/api/v1/modelfiles/import",
            &olu,
            json!({"model": "nowhere", "team": "team-a"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(parse(&body)["field"], "model");
}
