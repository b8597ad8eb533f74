//! The simulator against the examples of Ollama's API documentation.
//!
//! Request and response examples are copied from `docs/api.md` and, where that
//! file is older than the server, from `docs/openapi.yaml` (the reference the
//! current docs are generated from); each names its section. The OpenAI layer
//! has no response examples in the docs: its expected shapes are written from
//! the structs of Ollama's `openai/openai.go` and `middleware/openai.go`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestSim, assert_rfc3339, assert_same_shape, doc, fast_config};

// docs/api.md, "Chat request (With History)", a streamed chunk.
const CHAT_CHUNK: &str = r#"{
  "model": "llama3.2",
  "created_at": "2023-08-04T08:52:19.385406455-07:00",
  "message": {
    "role": "assistant",
    "content": "The"
  },
  "done": false
}"#;

// docs/openapi.yaml, `/api/chat` 200 example: the final object of a chat.
const CHAT_DONE: &str = r#"{
  "model": "gemma4",
  "created_at": "2025-10-17T23:14:07.414671Z",
  "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
  "done": true,
  "done_reason": "stop",
  "total_duration": 174560334,
  "load_duration": 101397084,
  "prompt_eval_count": 11,
  "prompt_eval_duration": 13074791,
  "eval_count": 18,
  "eval_duration": 52479709
}"#;

#[tokio::test]
async fn chat_streams_chunks_and_a_final_object_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Chat Request (Streaming)", request.
    let request = doc(r#"{
      "model": "llama3.2",
      "messages": [
        {
          "role": "user",
          "content": "why is the sky blue?"
        }
      ]
    }"#);

    let (status, content_type, lines) = sim.ndjson("/api/chat", &request).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let (last, chunks) = lines.split_last().unwrap();
    assert_eq!(chunks.len(), 24, "the default answer length");
    for chunk in chunks {
        assert_same_shape(&doc(CHAT_CHUNK), chunk);
        assert_eq!(chunk["model"], "llama3.2");
        assert_rfc3339(&chunk["created_at"]);
    }
    assert_same_shape(&doc(CHAT_DONE), last);
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], chunks.len());
}

#[tokio::test]
async fn chat_without_streaming_answers_structured_output_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Chat request (Structured outputs)", request (model: an installed one).
    let request = doc(r#"{
      "model": "llama3.2",
      "messages": [{"role": "user", "content": "Ollama is 22 years old and busy saving the world. Return a JSON object with the age and availability."}],
      "stream": false,
      "format": {
        "type": "object",
        "properties": {
          "age": {
            "type": "integer"
          },
          "available": {
            "type": "boolean"
          }
        },
        "required": [
          "age",
          "available"
        ]
      },
      "options": {
        "temperature": 0
      }
    }"#);
    // docs/api.md, "Chat request (Structured outputs)", response.
    let documented = doc(r#"{
      "model": "llama3.1",
      "created_at": "2024-12-06T00:46:58.265747Z",
      "message": { "role": "assistant", "content": "{\"age\": 22, \"available\": false}" },
      "done_reason": "stop",
      "done": true,
      "total_duration": 2254970291,
      "load_duration": 574751416,
      "prompt_eval_count": 34,
      "prompt_eval_duration": 1502000000,
      "eval_count": 12,
      "eval_duration": 175000000
    }"#);

    let response = sim.post("/api/chat", &request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        crate::common::content_type(&response),
        "application/json; charset=utf-8"
    );
    let actual: Value = response.json().await.unwrap();

    assert_same_shape(&documented, &actual);
    let answer: Value =
        serde_json::from_str(actual["message"]["content"].as_str().unwrap()).unwrap();
    assert!(answer["age"].is_i64(), "{answer}");
    assert!(answer["available"].is_boolean(), "{answer}");
}

#[tokio::test]
async fn generate_streams_like_the_docs_and_ends_with_context() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Generate request (Streaming)", request.
    let request = doc(r#"{
      "model": "llama3.2",
      "prompt": "Why is the sky blue?"
    }"#);
    // docs/api.md, "Generate request (Streaming)", a streamed chunk.
    let chunk_doc = doc(r#"{
      "model": "llama3.2",
      "created_at": "2023-08-04T08:52:19.385406455-07:00",
      "response": "The",
      "done": false
    }"#);
    // docs/api.md, "Request (Structured outputs)" of /api/generate: the final
    // object of a generation, `done_reason` and `context` included.
    let done_doc = doc(r#"{
      "model": "llama3.1:8b",
      "created_at": "2024-12-06T00:48:09.983619Z",
      "response": "{\n  \"age\": 22,\n  \"available\": true\n}",
      "done": true,
      "done_reason": "stop",
      "context": [1, 2, 3],
      "total_duration": 1075509083,
      "load_duration": 567678166,
      "prompt_eval_count": 28,
      "prompt_eval_duration": 236000000,
      "eval_count": 16,
      "eval_duration": 269000000
    }"#);

    let (status, content_type, lines) = sim.ndjson("/api/generate", &request).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let (last, chunks) = lines.split_last().unwrap();
    for chunk in chunks {
        assert_same_shape(&chunk_doc, chunk);
    }
    assert_same_shape(&done_doc, last);
    assert_eq!(
        last["response"], "",
        "the docs: empty if the response was streamed"
    );
    let context_len = last["context"].as_array().unwrap().len() as u64;
    let counted =
        last["prompt_eval_count"].as_u64().unwrap() + last["eval_count"].as_u64().unwrap();
    assert_eq!(context_len, counted);
}

#[tokio::test]
async fn raw_generation_has_no_context_as_the_docs_say() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Request (Raw Mode)", request (model: an installed one).
    let request = doc(r#"{
      "model": "llama3.2",
      "prompt": "[INST] why is the sky blue? [/INST]",
      "raw": true,
      "stream": false
    }"#);
    // docs/api.md, "Request (Reproducible outputs)", response: a generation without context
    // (plus `done_reason`, which the current server always sets on the final object).
    let mut documented = doc(r#"{
      "model": "mistral",
      "created_at": "2023-11-03T15:36:02.583064Z",
      "response": " The sky appears blue because of a phenomenon called Rayleigh scattering.",
      "done": true,
      "total_duration": 8493852375,
      "load_duration": 6589624375,
      "prompt_eval_count": 14,
      "prompt_eval_duration": 119039000,
      "eval_count": 110,
      "eval_duration": 1779061000
    }"#);
    documented["done_reason"] = json!("stop");

    let (status, actual) = sim.post_json("/api/generate", &request).await;

    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&documented, &actual);
}

#[tokio::test]
async fn loading_and_unloading_answer_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/api.md, /api/chat "Load a model": request and response.
    let (status, loaded) = sim
        .post_json(
            "/api/chat",
            &doc(r#"{"model": "llama3.2", "messages": []}"#),
        )
        .await;
    let load_doc = doc(r#"{
      "model": "llama3.2",
      "created_at":"2024-09-12T21:17:29.110811Z",
      "message": {
        "role": "assistant",
        "content": ""
      },
      "done_reason": "load",
      "done": true
    }"#);
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&load_doc, &loaded);
    assert_eq!(loaded["done_reason"], "load");
    let (_, ps) = sim.get_json("/api/ps").await;
    assert_eq!(
        ps["models"][0]["name"], "llama3.2:latest",
        "a loaded model is running"
    );

    // docs/api.md, /api/generate "Unload a model": request and response.
    let (status, unloaded) = sim
        .post_json(
            "/api/generate",
            &doc(r#"{"model": "llama3.2", "keep_alive": 0}"#),
        )
        .await;
    let unload_doc = doc(r#"{
      "model": "llama3.2",
      "created_at": "2024-09-12T03:54:03.516566Z",
      "response": "",
      "done": true,
      "done_reason": "unload"
    }"#);
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&unload_doc, &unloaded);
    let (_, ps) = sim.get_json("/api/ps").await;
    assert_eq!(ps["models"], json!([]));
}

#[tokio::test]
async fn embed_answers_like_the_docs() {
    let mut config = fast_config();
    config.models.push("all-minilm:latest".to_owned());
    let sim = TestSim::start(config).await;
    // docs/api.md, "Generate Embeddings", request and response.
    let request = doc(r#"{
      "model": "all-minilm",
      "input": "Why is the sky blue?"
    }"#);
    let documented = doc(r#"{
      "model": "all-minilm",
      "embeddings": [[
        0.010071029, -0.0017594862, 0.05007221, 0.04692972, 0.054916814,
        0.008599704, 0.105441414, -0.025878139, 0.12958129, 0.031952348
      ]],
      "total_duration": 14143917,
      "load_duration": 1019500,
      "prompt_eval_count": 8
    }"#);

    let (status, actual) = sim.post_json("/api/embed", &request).await;

    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&documented, &actual);
    let v: Vec<f64> = serde_json::from_value(actual["embeddings"][0].clone()).unwrap();
    assert_eq!(v.len(), 768);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "L2-normalised: {norm}");

    // docs/api.md, "Request (Multiple input)": one vector per input, `dimensions` honoured.
    let (_, two) = sim
        .post_json(
            "/api/embed",
            &json!({"model": "all-minilm", "input": ["Why is the sky blue?", "Why is the grass green?"], "dimensions": 64}),
        )
        .await;
    let vectors = two["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].as_array().unwrap().len(), 64);
    assert_ne!(vectors[0], vectors[1]);

    // docs/api.md, "Generate Embedding" (the superseded /api/embeddings).
    let (status, legacy) = sim
        .post_json(
            "/api/embeddings",
            &doc(r#"{"model": "all-minilm", "prompt": "Here is an article about llamas..."}"#),
        )
        .await;
    let legacy_doc = doc(r#"{
      "embedding": [
        0.5670403838157654, 0.009260174818336964, 0.23178744316101074, -0.2916173040866852, -0.8924556970596313,
        0.8785552978515625, -0.34576427936553955, 0.5742510557174683, -0.04222835972905159, -0.137906014919281
      ]
    }"#);
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&legacy_doc, &legacy);
}

#[tokio::test]
async fn tags_ps_and_version_answer_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/openapi.yaml, `/api/tags` 200 example. The example leaves out
    // `details.parent_model`, which `api.ModelDetails` always marshals ("" here).
    let mut tags_doc = doc(r#"{"models": [{
      "name": "gemma4",
      "model": "gemma4",
      "modified_at": "2025-10-03T23:34:03.409490317-07:00",
      "size": 9608350245,
      "digest": "c6eb396dbd5992bbe3f5cdb947e8bbc0ee413d7c17e2beaae69f5d569cf982eb",
      "details": {
        "format": "gguf",
        "family": "gemma4",
        "families": ["gemma4"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M"
      }
    }]}"#);
    tags_doc["models"][0]["details"]["parent_model"] = json!("");

    let (status, tags) = sim.get_json("/api/tags").await;

    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&tags_doc, &tags);
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    for name in ["llama3.2:latest", "qwen2.5:0.5b", "nomic-embed-text:latest"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let llama = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "llama3.2:latest")
        .unwrap();
    assert_eq!(llama["digest"].as_str().unwrap().len(), 64);
    assert_eq!(llama["details"]["family"], "llama");
    assert_rfc3339(&llama["modified_at"]);

    // Nothing is loaded before the first request.
    let (_, ps) = sim.get_json("/api/ps").await;
    assert_eq!(ps, json!({"models": []}));
    let (status, _) = sim
        .post_json(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi", "stream": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // docs/openapi.yaml, `/api/ps` 200 example.
    let ps_doc = doc(r#"{"models": [{
      "name": "gemma4",
      "model": "gemma4",
      "size": 6591830464,
      "digest": "c6eb396dbd5992bbe3f5cdb947e8bbc0ee413d7c17e2beaae69f5d569cf982eb",
      "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "gemma4",
        "families": ["gemma4"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M"
      },
      "expires_at": "2025-10-17T16:47:07.93355-07:00",
      "size_vram": 5333539264,
      "context_length": 4096
    }]}"#);
    let (status, ps) = sim.get_json("/api/ps").await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&ps_doc, &ps);
    assert_eq!(ps["models"][0]["model"], "llama3.2:latest");
    assert_eq!(ps["models"][0]["context_length"], 4096);
    let expires = time::OffsetDateTime::parse(
        ps["models"][0]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ahead = expires - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::minutes(4) && ahead <= time::Duration::minutes(5),
        "{ahead}"
    );

    // docs/openapi.yaml, `/api/version` 200 example.
    let (status, version) = sim.get_json("/api/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&doc(r#"{"version": "0.12.6"}"#), &version);
    assert_eq!(version["version"], ollama_sim::OLLAMA_VERSION);

    // The root answers as Ollama does.
    let root = sim.client.get(sim.url("/")).send().await.unwrap();
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
    let head = sim.client.head(sim.url("/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}

#[tokio::test]
async fn show_answers_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Show Model Information", response, joined with the fields of
    // docs/openapi.yaml's `/api/show` example that the older file lacks (license,
    // capabilities, modified_at). `model_info` holds GGUF keys that vary by
    // architecture: it is compared as an object, its keys checked below.
    let mut documented = doc(r##"{
      "modelfile": "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this one, replace the FROM line with:\n# FROM llava:latest\n\nFROM /Users/matt/.ollama/models/blobs/sha256:200765e1283640ffbd013184bf496e261032fa75b99498a9613be4e94d63ad52\nTEMPLATE \"\"\"{{ .System }}\nUSER: {{ .Prompt }}\nASSISTANT: \"\"\"\nPARAMETER num_ctx 4096\nPARAMETER stop \"\u003c/s\u003e\"\nPARAMETER stop \"USER:\"\nPARAMETER stop \"ASSISTANT:\"",
      "parameters": "num_keep                       24\nstop                           \"<|start_header_id|>\"\nstop                           \"<|end_header_id|>\"\nstop                           \"<|eot_id|>\"",
      "template": "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
      "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": [
          "llama"
        ],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0"
      },
      "model_info": {}
    }"##);
    let newer = doc(r#"{
      "license": "Gemma Terms of Use \n\nLast modified: February 21, 2024...",
      "capabilities": ["completion", "vision"],
      "modified_at": "2025-08-14T15:49:43.634137516-07:00"
    }"#);
    for (key, value) in newer.as_object().unwrap() {
        documented[key] = value.clone();
    }

    // docs/api.md, "Show Model Information", request.
    let (status, mut actual) = sim
        .post_json("/api/show", &doc(r#"{"model": "llama3.2"}"#))
        .await;

    assert_eq!(status, StatusCode::OK);
    let info = actual["model_info"].take();
    actual["model_info"] = json!({});
    assert_same_shape(&documented, &actual);
    assert_eq!(info["general.architecture"], "llama");
    assert!(info["llama.context_length"].is_u64(), "{info}");
    assert!(info["llama.embedding_length"].is_u64(), "{info}");
    assert_eq!(actual["capabilities"], json!(["completion", "tools"]));
    assert!(
        actual["parameters"]
            .as_str()
            .unwrap()
            .contains("stop                           \"<|eot_id|>\"")
    );

    // The legacy `name` field works too; an absent model is a 404 in Ollama's words.
    let (status, _) = sim
        .post_json("/api/show", &json!({"name": "qwen2.5:0.5b"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, missing) = sim.post_json("/api/show", &json!({"model": "nope"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing, json!({"error": "model 'nope' not found"}));
}

#[tokio::test]
async fn pull_streams_progress_in_the_documented_sequence() {
    let sim = TestSim::fast().await;
    // docs/api.md, "Pull a Model", request (a model not installed yet).
    let (status, content_type, lines) = sim
        .ndjson("/api/pull", &doc(r#"{"model": "llama3.1:8b"}"#))
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    // docs/api.md: "The first object is the manifest".
    assert_same_shape(&doc(r#"{"status": "pulling manifest"}"#), &lines[0]);
    assert_eq!(lines[0]["status"], "pulling manifest");
    // docs/api.md: then downloading responses; `completed` may be absent until
    // something is downloaded.
    let download_doc = doc(r#"{
      "status": "downloading digestname",
      "digest": "digestname",
      "total": 2142590208,
      "completed": 241970
    }"#);
    let downloads = &lines[1..lines.len() - 3];
    assert!(downloads.len() >= 4, "several progress lines: {lines:?}");
    let mut last_completed = 0;
    for line in downloads {
        let digest = line["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert_eq!(line["status"], format!("pulling {}", &digest[7..19]));
        if line.get("completed").is_some() {
            assert_same_shape(&download_doc, line);
            let completed = line["completed"].as_u64().unwrap();
            assert!(completed <= line["total"].as_u64().unwrap());
            if line["digest"] == downloads[0]["digest"] {
                assert!(completed > last_completed, "completed rises");
                last_completed = completed;
            }
        } else {
            let mut without = download_doc.clone();
            without.as_object_mut().unwrap().remove("completed");
            assert_same_shape(&without, line);
        }
    }
    assert_eq!(last_completed, downloads[0]["total"].as_u64().unwrap());
    // docs/api.md: "After all the files are downloaded, the final responses are".
    let statuses: Vec<&str> = lines[lines.len() - 3..]
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["verifying sha256 digest", "writing manifest", "success"]
    );

    let (_, tags) = sim.get_json("/api/tags").await;
    assert!(
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "llama3.1:8b")
    );

    // docs/api.md: "if `stream` is set to false, then the response is a single JSON object".
    let (status, single) = sim
        .post_json("/api/pull", &json!({"model": "phi3", "stream": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(single, doc(r#"{"status": "success"}"#));
}

#[tokio::test]
async fn pulling_a_missing_model_fails_as_ollama_does() {
    let sim = TestSim::fast().await;
    // Streaming: the failure is the last line, after the manifest was asked for.
    let (status, _, lines) = sim
        .ndjson("/api/pull", &json!({"model": "does-not-exist"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        lines,
        [
            json!({"status": "pulling manifest"}),
            json!({"error": "pull model manifest: file does not exist"})
        ]
    );
    // Not streaming: a 500 with the same error.
    let (status, body) = sim
        .post_json(
            "/api/pull",
            &json!({"model": "missing-model", "stream": false}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"error": "pull model manifest: file does not exist"})
    );
    // An invalid name is refused up front.
    let (status, body) = sim
        .post_json("/api/pull", &json!({"model": "not a name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "invalid model name"}));
    let (_, tags) = sim.get_json("/api/tags").await;
    assert_eq!(tags["models"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn create_copy_and_delete_work_like_the_docs() {
    let sim = TestSim::fast().await;
    // docs/openapi.yaml, `/api/create` request example (`from` names an installed model here).
    let request = doc(r#"{
      "model": "mario",
      "from": "llama3.2",
      "system": "You are Mario from Super Mario Bros.",
      "parameters": {"temperature": 0.7}
    }"#);

    let (status, _, lines) = sim.ndjson("/api/create", &request).await;

    assert_eq!(status, StatusCode::OK);
    for line in &lines {
        // docs/openapi.yaml, StatusEvent: `{"status": "success"}`.
        assert_same_shape(&doc(r#"{"status": "success"}"#), line);
    }
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses[0].starts_with("using existing layer sha256:"),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("creating new layer sha256:")),
        "{statuses:?}"
    );
    assert_eq!(
        statuses[statuses.len() - 2..],
        ["writing manifest", "success"]
    );

    let (status, show) = sim.post_json("/api/show", &json!({"model": "mario"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(show["system"], "You are Mario from Super Mario Bros.");
    assert_eq!(show["details"]["parent_model"], "llama3.2:latest");
    assert!(
        show["parameters"]
            .as_str()
            .unwrap()
            .contains("temperature                    0.7")
    );
    let modelfile = show["modelfile"].as_str().unwrap();
    assert!(
        modelfile.contains("SYSTEM \"\"\"You are Mario from Super Mario Bros.\"\"\""),
        "{modelfile}"
    );
    assert!(
        modelfile.contains("PARAMETER temperature 0.7"),
        "{modelfile}"
    );
    assert_eq!(
        show["template"],
        sim.post_json("/api/show", &json!({"model": "llama3.2"}))
            .await
            .1["template"]
    );

    // Not streaming: one status object.
    let (status, single) = sim
        .post_json(
            "/api/create",
            &json!({"model": "luigi", "from": "mario", "stream": false}),
        )
        .await;
    assert_eq!(
        (status, single),
        (StatusCode::OK, json!({"status": "success"}))
    );
    // `from` must be installed; the legacy Modelfile text is refused as Ollama does.
    let (status, body) = sim
        .post_json("/api/create", &json!({"model": "x", "from": "nope"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "model 'nope' not found"})
        )
    );
    let (status, body) = sim
        .post_json(
            "/api/create",
            &json!({"model": "x", "modelfile": "FROM llama3.2"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "neither 'from' or 'files' was specified"})
        )
    );

    // docs/api.md, "Copy a Model": 200, or 404 if the source does not exist.
    let copied = sim
        .post(
            "/api/copy",
            &doc(r#"{"source": "llama3.2", "destination": "llama3-backup"}"#),
        )
        .await;
    assert_eq!(copied.status(), StatusCode::OK);
    assert_eq!(copied.text().await.unwrap(), "");
    let (status, body) = sim
        .post_json("/api/copy", &json!({"source": "nope", "destination": "y"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "model \"nope\" not found"})
        )
    );

    // docs/api.md, "Delete a Model": 200, or 404 if the model does not exist.
    let deleted = sim
        .client
        .delete(sim.url("/api/delete"))
        .json(&doc(r#"{"model": "llama3-backup"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let again = sim
        .client
        .delete(sim.url("/api/delete"))
        .json(&json!({"model": "llama3-backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"error": "model 'llama3-backup' not found"})
    );

    let (_, tags) = sim.get_json("/api/tags").await;
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[..2], ["luigi:latest", "mario:latest"], "newest first");
    assert!(!names.contains(&"llama3-backup:latest"));
}

// openai/openai.go, `ChatCompletionChunk` with one `ChunkChoice`.
const OPENAI_CHUNK: &str = r#"{
  "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1700000000,
  "model": "llama3.2", "system_fingerprint": "fp_ollama",
  "choices": [{"index": 0, "delta": {"role": "assistant", "content": "The"}, "finish_reason": null}]
}"#;

#[tokio::test]
async fn openai_chat_streams_chunks_usage_and_done() {
    let sim = TestSim::fast().await;
    let request = json!({
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}],
        "stream": true,
        "stream_options": {"include_usage": true}
    });

    let (status, content_type, events) = sim.sse("/v1/chat/completions", &request).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/event-stream");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let (usage_chunk, content) = chunks.split_last().unwrap();
    let (finish, tokens) = content.split_last().unwrap();
    assert_eq!(tokens.len(), 24);
    for chunk in tokens {
        assert_same_shape(&doc(OPENAI_CHUNK), chunk);
    }
    for chunk in &chunks {
        assert_eq!(chunk["id"], chunks[0]["id"], "one id for the whole stream");
        assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
    // The finishing chunk: `finish_reason` set, an empty delta.
    let mut finish_doc = doc(OPENAI_CHUNK);
    finish_doc["choices"][0]["finish_reason"] = json!("stop");
    assert_same_shape(&finish_doc, finish);
    assert!(
        tokens
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"]["content"], "");
    // middleware/openai.go: with include_usage, a last chunk with no choices and the usage.
    let mut usage_doc = doc(OPENAI_CHUNK);
    usage_doc["choices"] = json!([]);
    usage_doc["usage"] = json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2});
    assert_same_shape(&usage_doc, usage_chunk);
    assert_eq!(usage_chunk["choices"], json!([]));
    let usage = &usage_chunk["usage"];
    assert_eq!(usage["completion_tokens"], 24);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 24
    );
}

#[tokio::test]
async fn openai_chat_without_streaming_is_one_completion() {
    let sim = TestSim::fast().await;
    // openai/openai.go, `ChatCompletion`.
    let documented = doc(r#"{
      "id": "chatcmpl-123", "object": "chat.completion", "created": 1700000000, "model": "llama3.2",
      "system_fingerprint": "fp_ollama",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    }"#);

    let response = sim
        .post(
            "/v1/chat/completions",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 5}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(crate::common::content_type(&response), "application/json");
    let actual: Value = response.json().await.unwrap();
    assert_same_shape(&documented, &actual);
    assert_eq!(actual["object"], "chat.completion");
    assert_eq!(
        actual["choices"][0]["finish_reason"], "length",
        "max_tokens cut the answer"
    );
    assert_eq!(actual["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn openai_completions_embeddings_and_models_have_openai_shapes() {
    let sim = TestSim::fast().await;
    // openai/openai.go, `Completion`.
    let completion_doc = doc(r#"{
      "id": "cmpl-123", "object": "text_completion", "created": 1700000000, "model": "llama3.2",
      "system_fingerprint": "fp_ollama",
      "choices": [{"text": "Hello", "index": 0, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    }"#);
    let (status, completion) = sim
        .post_json(
            "/v1/completions",
            &json!({"model": "llama3.2", "prompt": "Say this is a test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&completion_doc, &completion);

    // openai/openai.go, `EmbeddingList`.
    let embeddings_doc = doc(r#"{
      "object": "list",
      "data": [{"object": "embedding", "embedding": [0.1, 0.2], "index": 0}],
      "model": "nomic-embed-text",
      "usage": {"prompt_tokens": 5, "total_tokens": 5}
    }"#);
    let (status, list) = sim
        .post_json(
            "/v1/embeddings",
            &json!({"model": "nomic-embed-text", "input": ["why is the sky blue?", "hi"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&embeddings_doc, &list);
    assert_eq!(list["data"][1]["index"], 1);
    assert_eq!(list["data"][0]["embedding"].as_array().unwrap().len(), 768);

    // openai/openai.go, `ListCompletion` and `Model`.
    let model_doc = doc(
        r#"{"id": "llama3.2:latest", "object": "model", "created": 1700000000, "owned_by": "library"}"#,
    );
    let (status, models) = sim.get_json("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let mut list_doc = json!({"object": "list", "data": []});
    list_doc["data"] = json!([model_doc.clone()]);
    assert_same_shape(&list_doc, &models);
    assert_eq!(models["data"].as_array().unwrap().len(), 3);
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["owned_by"] == "library")
    );
    let (status, one) = sim.get_json("/v1/models/llama3.2").await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&model_doc, &one);
    assert_eq!(one["id"], "llama3.2");
}

#[tokio::test]
async fn errors_have_each_dialects_shape() {
    let sim = TestSim::fast().await;
    // docs/api/errors.mdx, "Error messages".
    let ollama_doc = doc(r#"{"error": "the model failed to generate a response"}"#);
    // openai/openai.go, `ErrorResponse`.
    let openai_doc = doc(
        r#"{"error": {"message": "model not found", "type": "not_found_error", "param": null, "code": null}}"#,
    );

    let (status, body) = sim
        .post_json(
            "/api/chat",
            &json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_same_shape(&ollama_doc, &body);
    assert_eq!(body["error"], "model 'nope' not found");

    let (status, body) = sim
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_same_shape(&openai_doc, &body);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(body["error"]["message"], "model 'nope' not found");

    // Invalid JSON: 400 in both dialects.
    for (path, shape) in [
        ("/api/generate", &ollama_doc),
        ("/v1/completions", &openai_doc),
    ] {
        let response = sim
            .client
            .post(sim.url(path))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_same_shape(shape, &response.json::<Value>().await.unwrap());
    }
    let response = sim.client.post(sim.url("/api/chat")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "missing request body"})
    );

    let (status, body) = sim
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "llama3.2", "messages": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "[] is too short - 'messages'");

    let (status, body) = sim
        .post_json(
            "/api/generate",
            &json!({"model": "nomic-embed-text", "prompt": "hi", "stream": false}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "\"nomic-embed-text\" does not support generate"})
        )
    );

    let response = sim
        .client
        .get(sim.url("/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
