//! A simulator on a loopback port, a plain HTTP client, and the shape comparison
//! the documentation tests rest on.

use std::time::Duration;

use futures_util::StreamExt;
use ollama_sim::{Sim, SimConfig, serve};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;

/// A simulator served on `127.0.0.1:<random port>` for one test.
pub struct TestSim {
    pub sim: Sim,
    pub base: String,
    pub client: reqwest::Client,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// No waiting: every answer as fast as the machine allows.
pub fn fast_config() -> SimConfig {
    SimConfig {
        ttft: Duration::ZERO,
        token_gap: Duration::ZERO,
        pull_step: Duration::from_millis(1),
        ..SimConfig::default()
    }
}

impl TestSim {
    pub async fn start(config: SimConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sim = Sim::new(config);
        let task = tokio::spawn(serve(listener, sim.clone()));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            sim,
            base,
            client,
            task,
        }
    }

    pub async fn fast() -> Self {
        Self::start(fast_config()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` and reads one JSON document back.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.post(path, body).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// POSTs `body` and reads an NDJSON stream back, one value a line.
    pub async fn ndjson(&self, path: &str, body: &Value) -> (StatusCode, String, Vec<Value>) {
        let response = self.post(path, body).await;
        let status = response.status();
        let content_type = content_type(&response);
        let text = response.text().await.unwrap();
        let lines = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (status, content_type, lines)
    }

    /// POSTs `body` and reads server-sent events back: the `data:` payloads.
    pub async fn sse(&self, path: &str, body: &Value) -> (StatusCode, String, Vec<String>) {
        let response = self.post(path, body).await;
        let status = response.status();
        let content_type = content_type(&response);
        let text = response.text().await.unwrap();
        assert!(
            text.ends_with("\n\n"),
            "events end with a blank line: {text:?}"
        );
        let events = text
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                    .to_owned()
            })
            .collect();
        (status, content_type, events)
    }

    /// Reads a response body to its end, or to the error that broke it.
    pub async fn read_to_error(response: reqwest::Response) -> (Vec<u8>, bool) {
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(_) => return (body, true),
            }
        }
        (body, false)
    }
}

pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Parses a JSON example copied from the docs.
pub fn doc(example: &str) -> Value {
    serde_json::from_str(example).unwrap_or_else(|e| panic!("bad example: {e}\n{example}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shape_diff(doc: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    if kind(doc) != kind(actual) {
        out.push(format!(
            "{path}: the docs have {}, the simulator {}",
            kind(doc),
            kind(actual)
        ));
        return;
    }
    match (doc, actual) {
        (Value::Object(d), Value::Object(a)) => {
            for key in d.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{key}: missing"));
            }
            for key in a.keys().filter(|k| !d.contains_key(*k)) {
                out.push(format!("{path}.{key}: not in the docs"));
            }
            for (key, dv) in d {
                if let Some(av) = a.get(key) {
                    shape_diff(dv, av, &format!("{path}.{key}"), out);
                }
            }
        }
        (Value::Array(d), Value::Array(a)) => {
            if let Some(first) = d.first() {
                for (i, av) in a.iter().enumerate() {
                    shape_diff(first, av, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Asserts `actual` has exactly the fields of the documented `doc`, recursively,
/// with the same JSON types (values such as timestamps and durations differ).
/// Array elements are compared against the documented first element.
#[track_caller]
pub fn assert_same_shape(doc: &Value, actual: &Value) {
    let mut mismatches = Vec::new();
    shape_diff(doc, actual, "$", &mut mismatches);
    assert!(
        mismatches.is_empty(),
        "shape differs from the docs:\n  {}\nactual: {actual}",
        mismatches.join("\n  ")
    );
}

/// Asserts `s` is an RFC 3339 timestamp, as Go marshals `time.Time`.
#[track_caller]
pub fn assert_rfc3339(s: &Value) {
    let s = s.as_str().unwrap_or_else(|| panic!("not a string: {s}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
}

#[test]
fn the_shape_comparison_can_fail() {
    let doc = serde_json::json!({"a": 1, "b": {"c": "x"}, "d": [{"e": true}]});
    let same = serde_json::json!({"a": 2, "b": {"c": "y"}, "d": [{"e": false}, {"e": true}]});
    let mut out = Vec::new();
    shape_diff(&doc, &same, "$", &mut out);
    assert!(out.is_empty(), "{out:?}");
    let other = serde_json::json!({"a": "2", "b": {"z": "y"}, "d": [{"e": 1}], "f": null});
    shape_diff(&doc, &other, "$", &mut out);
    assert_eq!(
        out,
        [
            "$.f: not in the docs",
            "$.a: the docs have number, the simulator string",
            "$.b.c: missing",
            "$.b.z: not in the docs",
            "$.d[0].e: the docs have boolean, the simulator number",
        ]
    );
}
