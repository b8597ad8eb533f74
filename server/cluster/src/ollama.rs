//! One pod's Ollama API, as the cluster pages and the operation runners use
//! it: what is on the pod (`/api/tags`), what is loaded (`/api/ps`), its
//! version, and the model operations (`/api/pull` with its streamed
//! progress, `/api/delete`, `/api/copy`, `/api/create`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

/// How long to wait for a connection to a pod's Ollama.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a quick call (tags, ps, version, delete, copy) may take.
const QUICK_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a pull or create may go without a line of progress (Ollama
/// says nothing while it verifies a large blob).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest progress line read; Ollama's are under 300 bytes.
const MAX_LINE: usize = 64 * 1024;

/// What went wrong talking to a pod's Ollama.
#[derive(Debug, thiserror::Error)]
pub enum OllamaError {
    #[error("Ollama at {0} does not answer: {1}")]
    Unreachable(String, String),
    #[error("Ollama at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// Ollama refused or failed, in its own words.
    #[error("{0}")]
    Refused(String),
    #[error("Ollama at {0} sent a reply that is not Ollama's: {1}")]
    Protocol(String, String),
}

/// A model on a pod (`/api/tags`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalModel {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub digest: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub modified_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub details: ModelDetails,
}

/// Ollama's `details` of a model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDetails {
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub parameter_size: String,
    #[serde(default)]
    pub quantization_level: String,
}

/// A model loaded in memory on a pod (`/api/ps`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedModel {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub size_vram: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A pull's progress so far, summed over the layers seen (Ollama reports
/// one layer at a time, and leaves `completed` out while it is zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// The latest status line, e.g. `pulling 6a0746a1ec1a`.
    pub status: String,
    /// Digest → (completed, total).
    pub layers: BTreeMap<String, (u64, u64)>,
}

impl PullProgress {
    pub fn completed(&self) -> u64 {
        self.layers.values().map(|l| l.0).sum()
    }

    pub fn total(&self) -> u64 {
        self.layers.values().map(|l| l.1).sum()
    }

    /// Takes one line of Ollama's progress stream; an `{"error": …}` line
    /// (which arrives under HTTP 200) is the pull's failure.
    pub fn take(&mut self, line: &Value) -> Result<(), OllamaError> {
        if let Some(e) = line.get("error") {
            let text = e.as_str().map_or_else(|| e.to_string(), str::to_owned);
            return Err(OllamaError::Refused(text));
        }
        if let Some(s) = line.get("status").and_then(Value::as_str) {
            s.clone_into(&mut self.status);
        }
        if let Some(digest) = line.get("digest").and_then(Value::as_str) {
            let total = line.get("total").and_then(Value::as_u64).unwrap_or(0);
            let completed = line.get("completed").and_then(Value::as_u64).unwrap_or(0);
            self.layers.insert(
                digest.to_owned(),
                (completed.min(total.max(completed)), total),
            );
        }
        Ok(())
    }

    /// Whether Ollama said the pull is done.
    pub fn succeeded(&self) -> bool {
        self.status == "success"
    }
}

/// A client for the Ollama API of any pod.
#[derive(Clone, Debug)]
pub struct Ollama {
    http: reqwest::Client,
}

impl Default for Ollama {
    fn default() -> Self {
        Self::new()
    }
}

impl Ollama {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("corral/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        Self { http }
    }

    fn url(base: &Url, path: &str) -> Url {
        let mut u = base.clone();
        u.set_path(path);
        u.set_query(None);
        u
    }

    async fn send(
        &self,
        base: &Url,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, OllamaError> {
        let res = req.timeout(timeout).send().await.map_err(|e| {
            if e.is_timeout() {
                OllamaError::Timeout(base.to_string(), timeout)
            } else {
                OllamaError::Unreachable(base.to_string(), root_cause(&e))
            }
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        Err(OllamaError::Refused(error_text(status, &body)))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        base: &Url,
        path: &str,
    ) -> Result<T, OllamaError> {
        let res = self
            .send(base, self.http.get(Self::url(base, path)), QUICK_TIMEOUT)
            .await?;
        res.json::<T>()
            .await
            .map_err(|e| OllamaError::Protocol(base.to_string(), root_cause(&e)))
    }

    /// Ollama's version (`/api/version`).
    pub async fn version(&self, base: &Url) -> Result<String, OllamaError> {
        #[derive(Deserialize)]
        struct V {
            version: String,
        }
        Ok(self.get_json::<V>(base, "/api/version").await?.version)
    }

    /// The models on the pod (`/api/tags`).
    pub async fn tags(&self, base: &Url) -> Result<Vec<LocalModel>, OllamaError> {
        #[derive(Deserialize)]
        struct T {
            #[serde(default)]
            models: Vec<LocalModel>,
        }
        Ok(self.get_json::<T>(base, "/api/tags").await?.models)
    }

    /// The models loaded now (`/api/ps`).
    pub async fn ps(&self, base: &Url) -> Result<Vec<LoadedModel>, OllamaError> {
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            models: Vec<LoadedModel>,
        }
        Ok(self.get_json::<P>(base, "/api/ps").await?.models)
    }

    /// What the pod knows of `model` (`/api/show`, Ollama's JSON as is);
    /// none when the pod does not have it.
    pub async fn show(&self, base: &Url, model: &str) -> Result<Option<Value>, OllamaError> {
        let req = self
            .http
            .post(Self::url(base, "/api/show"))
            .json(&serde_json::json!({ "model": model }));
        match self.send(base, req, QUICK_TIMEOUT).await {
            Ok(res) => res
                .json::<Value>()
                .await
                .map(Some)
                .map_err(|e| OllamaError::Protocol(base.to_string(), root_cause(&e))),
            Err(OllamaError::Refused(m)) if m.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes `model`; `Ok(false)` when the pod did not have it.
    pub async fn delete(&self, base: &Url, model: &str) -> Result<bool, OllamaError> {
        let req = self
            .http
            .delete(Self::url(base, "/api/delete"))
            .json(&serde_json::json!({ "model": model }));
        match self.send(base, req, QUICK_TIMEOUT).await {
            Ok(_) => Ok(true),
            Err(OllamaError::Refused(m)) if m.contains("not found") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Copies `source` to `destination` on the pod.
    pub async fn copy(
        &self,
        base: &Url,
        source: &str,
        destination: &str,
    ) -> Result<(), OllamaError> {
        let req = self
            .http
            .post(Self::url(base, "/api/copy"))
            .json(&serde_json::json!({ "source": source, "destination": destination }));
        self.send(base, req, QUICK_TIMEOUT).await.map(drop)
    }

    /// Pulls `model` onto the pod, calling `progress` after every line of
    /// Ollama's progress. Dropping the future drops the request, which is
    /// how a pull is cancelled (Ollama may still finish the download).
    pub async fn pull(
        &self,
        base: &Url,
        model: &str,
        progress: impl FnMut(&PullProgress),
    ) -> Result<(), OllamaError> {
        let body = serde_json::json!({ "model": model, "stream": true });
        self.progress_stream(base, "/api/pull", &body, progress)
            .await
    }

    /// Creates a model from Ollama's structured `/api/create` request.
    pub async fn create(
        &self,
        base: &Url,
        request: &Value,
        progress: impl FnMut(&PullProgress),
    ) -> Result<(), OllamaError> {
        let mut body = request.clone();
        body["stream"] = Value::Bool(true);
        self.progress_stream(base, "/api/create", &body, progress)
            .await
    }

    async fn progress_stream(
        &self,
        base: &Url,
        path: &str,
        body: &Value,
        mut progress: impl FnMut(&PullProgress),
    ) -> Result<(), OllamaError> {
        let req = self.http.post(Self::url(base, path)).json(body);
        // The whole pull may take hours: only the wait for each piece is timed.
        let res = self
            .send(base, req, Duration::from_secs(365 * 86400))
            .await?;
        let mut stream = res.bytes_stream();
        let mut state = PullProgress::default();
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let next = tokio::time::timeout(IDLE_TIMEOUT, stream.next())
                .await
                .map_err(|_| OllamaError::Timeout(base.to_string(), IDLE_TIMEOUT))?;
            let Some(chunk) = next else { break };
            let chunk =
                chunk.map_err(|e| OllamaError::Unreachable(base.to_string(), root_cause(&e)))?;
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                take_line(base, &line, &mut state)?;
                progress(&state);
            }
            if pending.len() > MAX_LINE {
                return Err(OllamaError::Protocol(
                    base.to_string(),
                    format!("a progress line over {MAX_LINE} bytes"),
                ));
            }
        }
        if !pending.is_empty() {
            take_line(base, &pending, &mut state)?;
            progress(&state);
        }
        if state.succeeded() {
            Ok(())
        } else {
            Err(OllamaError::Refused(format!(
                "the progress stream ended at {:?}, before \"success\"",
                state.status
            )))
        }
    }
}

fn take_line(base: &Url, line: &[u8], state: &mut PullProgress) -> Result<(), OllamaError> {
    let text = line.trim_ascii();
    if text.is_empty() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| {
        OllamaError::Protocol(
            base.to_string(),
            format!("a progress line that is not JSON: {e}"),
        )
    })?;
    state.take(&value)
}

/// Ollama's `{"error": "…"}`, or the status and the start of the body.
fn error_text(status: reqwest::StatusCode, body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| {
            let start: String = body.chars().take(200).collect();
            format!("HTTP {status}: {start}")
        })
}

/// The innermost cause of an error, which says what happened (connection
/// refused, timed out) where reqwest's own text does not.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn progress_sums_layers_and_reads_omitted_completed_as_zero() {
        let mut p = PullProgress::default();
        p.take(&json!({"status": "pulling manifest"})).unwrap();
        p.take(&json!({"status": "pulling aaa", "digest": "sha256:aaa", "total": 100}))
            .unwrap();
        assert_eq!((p.completed(), p.total()), (0, 100));
        p.take(&json!({"status": "pulling aaa", "digest": "sha256:aaa", "total": 100, "completed": 60}))
            .unwrap();
        p.take(
            &json!({"status": "pulling bbb", "digest": "sha256:bbb", "total": 50, "completed": 50}),
        )
        .unwrap();
        assert_eq!((p.completed(), p.total()), (110, 150));
        assert_eq!(p.status, "pulling bbb");
        assert!(!p.succeeded());
        p.take(&json!({"status": "success"})).unwrap();
        assert!(p.succeeded());
    }

    #[test]
    fn an_error_line_under_200_fails_the_pull() {
        let mut p = PullProgress::default();
        let e = p
            .take(&json!({"error": "pull model manifest: file does not exist"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "pull model manifest: file does not exist");
    }
}
