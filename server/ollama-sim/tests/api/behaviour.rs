//! Slots, queueing, cancellation, injected faults, determinism and the prompt markers.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ollama_sim::{Fault, SimConfig, SimStats};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestSim, fast_config};

fn chat(content: &str, stream: bool) -> Value {
    json!({"model": "llama3.2", "messages": [{"role": "user", "content": content}], "stream": stream})
}

/// Polls the counters until `done` holds, failing after `within`.
async fn wait_for(sim: &TestSim, within: Duration, done: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + within;
    loop {
        let stats = sim.sim.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "not reached within {within:?}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn at_most_parallel_generations_run_and_the_rest_queue() {
    let sim = TestSim::start(SimConfig {
        parallel: 2,
        token_gap: Duration::from_millis(30),
        default_tokens: 5,
        ..fast_config()
    })
    .await;

    let requests: Vec<_> = (0..5)
        .map(|i| {
            let request = sim
                .client
                .post(sim.url("/api/chat"))
                .json(&chat(&format!("question {i}"), false));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let (mut max_active, mut max_queued) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.sim.stats().completed < 5 {
        let stats = sim.sim.stats();
        max_active = max_active.max(stats.active);
        max_queued = max_queued.max(stats.queued);
        assert!(Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(max_active, 2, "both slots were used, never more");
    assert!(max_queued >= 1, "some requests waited: {max_queued}");
    let stats = sim.sim.stats();
    assert_eq!(
        (stats.active, stats.queued, stats.completed, stats.cancelled),
        (0, 0, 5, 0)
    );
    let (_, over_http) = sim.get_json("/sim/stats").await;
    assert_eq!(
        serde_json::from_value::<SimStats>(over_http).unwrap(),
        sim.sim.stats()
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_like_ollama() {
    let sim = TestSim::start(SimConfig {
        parallel: 1,
        max_queue: 1,
        token_gap: Duration::from_millis(40),
        default_tokens: 5,
        ..fast_config()
    })
    .await;
    let send = |i: u32| {
        let request = sim
            .client
            .post(sim.url("/api/chat"))
            .json(&chat(&format!("q{i}"), false));
        tokio::spawn(async move { request.send().await.unwrap().status() })
    };
    let running = send(0);
    wait_for(&sim, Duration::from_secs(1), |s| s.active == 1).await;
    let waiting = send(1);
    wait_for(&sim, Duration::from_secs(1), |s| s.queued == 1).await;

    let (status, body) = sim.post_json("/api/chat", &chat("q2", false)).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    assert_eq!(running.await.unwrap(), StatusCode::OK);
    assert_eq!(waiting.await.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_generation_at_once() {
    let sim = TestSim::start(SimConfig {
        token_gap: Duration::from_secs(2),
        ..fast_config()
    })
    .await;
    let response = sim
        .post("/api/chat", &chat("tell me a long story", true))
        .await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first: Value =
        serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["done"], false);
    assert_eq!(sim.sim.stats().active, 1);

    drop(body);
    let stats = wait_for(&sim, Duration::from_millis(250), |s| {
        s.cancelled == 1 && s.active == 0
    })
    .await;

    assert_eq!(stats.completed, 0);
    let when = stats
        .last_cancel_unix_ms
        .expect("the cancellation time is recorded");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(when) < 1000, "{now} vs {when}");
}

#[tokio::test]
async fn a_queued_client_that_goes_away_leaves_the_queue() {
    let sim = TestSim::start(SimConfig {
        parallel: 1,
        token_gap: Duration::from_secs(2),
        ..fast_config()
    })
    .await;
    let holder = sim.post("/api/chat", &chat("hold the slot", true)).await;
    let mut holder = holder.bytes_stream();
    holder.next().await.unwrap().unwrap();

    let impatient = sim
        .client
        .post(sim.url("/api/chat"))
        .json(&chat("waiting", false))
        .timeout(Duration::from_millis(100))
        .send();
    let waiting = tokio::spawn(impatient);
    wait_for(&sim, Duration::from_secs(1), |s| s.queued == 1).await;
    assert!(waiting.await.unwrap().is_err(), "the client gave up");

    wait_for(&sim, Duration::from_millis(250), |s| s.queued == 0).await;
    assert_eq!(sim.sim.stats().active, 1, "the first generation still runs");
    drop(holder);
    wait_for(&sim, Duration::from_millis(250), |s| {
        s.active == 0 && s.cancelled == 1
    })
    .await;
}

#[tokio::test]
async fn an_injected_error_answers_with_its_status_then_runs_out() {
    let sim = TestSim::fast().await;
    let queued = sim
        .post(
            "/sim/faults",
            &json!({"mode": "error", "status": 503, "count": 1}),
        )
        .await;
    assert_eq!(queued.status(), StatusCode::NO_CONTENT);

    let (status, body) = sim.post_json("/api/chat", &chat("hi", false)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    let (status, _) = sim.post_json("/api/chat", &chat("hi", false)).await;
    assert_eq!(status, StatusCode::OK, "the fault is used up");

    sim.sim.inject(Fault::Error {
        status: 500,
        count: 1,
    });
    let (status, body) = sim
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(
        body["error"]["message"],
        "an error was encountered while running the model"
    );
    assert_eq!(sim.sim.stats().failed, 2);
}

#[tokio::test]
async fn an_injected_drop_cuts_the_stream_after_the_given_tokens() {
    let sim = TestSim::fast().await;
    sim.sim.inject(Fault::DropMidStream {
        after_tokens: 2,
        count: 1,
    });

    let response = sim.post("/api/chat", &chat("hi", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (body, broken) = TestSim::read_to_error(response).await;

    assert!(broken, "the connection broke mid-stream");
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["done"] == false));
    let stats = wait_for(&sim, Duration::from_millis(250), |s| s.active == 0).await;
    assert_eq!((stats.failed, stats.completed), (1, 0));

    // A whole answer is cut too: half a document, then a broken connection.
    sim.sim.inject(Fault::DropMidStream {
        after_tokens: 0,
        count: 1,
    });
    let response = sim
        .post(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi", "stream": false}),
        )
        .await;
    let (body, broken) = TestSim::read_to_error(response).await;
    assert!(broken);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    let (status, _) = sim.post_json("/api/chat", &chat("hi", false)).await;
    assert_eq!(status, StatusCode::OK, "the fault is used up");
}

#[tokio::test]
async fn an_injected_delay_adds_to_the_time_to_first_token() {
    let sim = TestSim::fast().await;
    sim.sim.inject(Fault::Delay { ms: 300, count: 1 });

    let started = Instant::now();
    let response = sim.post("/api/chat", &chat("hi", true)).await;
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    let delayed = started.elapsed();
    drop(body);

    let started = Instant::now();
    let (status, _) = sim.post_json("/api/chat", &chat("hi", false)).await;
    let normal = started.elapsed();

    assert_eq!(status, StatusCode::OK);
    assert!(delayed >= Duration::from_millis(300), "{delayed:?}");
    assert!(normal < Duration::from_millis(200), "{normal:?}");
}

#[tokio::test]
async fn reset_clears_faults_and_counters() {
    let sim = TestSim::fast().await;
    sim.sim.inject(Fault::Error {
        status: 500,
        count: 5,
    });
    let (status, _) = sim.post_json("/api/chat", &chat("hi", false)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let reset = sim.client.post(sim.url("/sim/reset")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);

    assert_eq!(sim.sim.stats(), SimStats::default());
    let (status, _) = sim.post_json("/api/chat", &chat("hi", false)).await;
    assert_eq!(status, StatusCode::OK);
    let stats = sim.sim.stats();
    assert_eq!((stats.requests, stats.completed, stats.failed), (1, 1, 0));
    let bad = sim.post("/sim/faults", &json!({"mode": "explode"})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_same_prompt_gets_the_same_answer() {
    let sim = TestSim::fast().await;
    let (_, a) = sim
        .post_json("/api/chat", &chat("why is the sky blue?", false))
        .await;
    let (_, b) = sim
        .post_json("/api/chat", &chat("why is the sky blue?", false))
        .await;
    let (_, c) = sim
        .post_json("/api/chat", &chat("why is grass green?", false))
        .await;

    let content = |v: &Value| v["message"]["content"].as_str().unwrap().to_owned();
    assert_eq!(content(&a), content(&b));
    assert_ne!(content(&a), content(&c));
    assert_eq!(a["prompt_eval_count"], b["prompt_eval_count"]);

    // Streamed, the chunks join up to the same answer.
    let (_, _, lines) = sim
        .ndjson("/api/chat", &chat("why is the sky blue?", true))
        .await;
    let joined: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(joined, content(&a));
}

#[tokio::test]
async fn num_predict_cuts_the_answer_with_done_reason_length() {
    let sim = TestSim::fast().await;
    let (_, full) = sim
        .post_json(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "count", "stream": false}),
        )
        .await;
    let (_, cut) = sim
        .post_json(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "count", "stream": false, "options": {"num_predict": 3}}),
        )
        .await;

    assert_eq!(full["done_reason"], "stop");
    assert_eq!(cut["done_reason"], "length");
    assert_eq!(cut["eval_count"], 3);
    let full = full["response"].as_str().unwrap();
    let cut = cut["response"].as_str().unwrap();
    assert!(
        full.starts_with(cut) && cut.len() < full.len(),
        "{cut:?} / {full:?}"
    );
}

#[tokio::test]
async fn markers_steer_length_and_structured_output() {
    let sim = TestSim::fast().await;
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"]
    });
    let ask = |content: &str| {
        json!({"model": "llama3.2", "stream": false, "format": schema,
               "messages": [{"role": "user", "content": content}]})
    };

    let (_, valid) = sim.post_json("/api/chat", &ask("who are you?")).await;
    let value: Value = serde_json::from_str(valid["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        value["name"].is_string() && value["age"].is_i64(),
        "{value}"
    );

    let (_, broken) = sim
        .post_json("/api/chat", &ask("who are you? [sim:invalid-json]"))
        .await;
    assert!(serde_json::from_str::<Value>(broken["message"]["content"].as_str().unwrap()).is_err());

    let (_, violating) = sim
        .post_json("/api/chat", &ask("who are you? [sim:schema-violation]"))
        .await;
    let value: Value =
        serde_json::from_str(violating["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        !(value["name"].is_string() && value["age"].is_i64()),
        "breaks the schema: {value}"
    );

    let (_, json_mode) = sim
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "llama3.2", "response_format": {"type": "json_object"},
                    "messages": [{"role": "user", "content": "answer in JSON"}]}),
        )
        .await;
    let value: Value = serde_json::from_str(
        json_mode["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(value.is_object(), "{value}");

    let (_, _, lines) = sim
        .ndjson("/api/chat", &chat("be brief [sim:tokens=3]", true))
        .await;
    assert_eq!(lines.len(), 4, "three tokens and the final object");
    assert_eq!(lines[3]["eval_count"], 3);
}

#[tokio::test]
async fn the_binary_refuses_a_bad_setting_naming_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ollama-sim"))
        .env("SIM_TTFT_MS", "soon")
        .env("OLLAMA_HOST", "127.0.0.1:0")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SIM_TTFT_MS"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
