//! A Modelfile deploy on one pod: the base model pulled first when the pod
//! lacks it (with its progress), then Ollama's `/api/create` with the
//! version's structured request.

use app::domain::modelfiles::{base_of, deploy};
use app::model::Operation;
use app::model::key_rules::normalize_model;
use serde_json::Value;
use url::Url;

use super::operations::{Runner, Streamed};

impl Runner {
    pub(super) async fn create(&self, op: &Operation, pod: &str, url: &Url) -> Result<(), String> {
        let spec = {
            let mut conn = self.db.acquire().await.map_err(|e| e.to_string())?;
            deploy::spec(&mut conn, op.id)
                .await
                .map_err(|e| format!("its request could not be read: {e}"))?
        };
        let name = op.model.as_deref().unwrap_or_default();
        if let Some(base) = pullable(&spec) {
            let on_pod = self.ollama.tags(url).await.map_err(|e| e.to_string())?;
            if !on_pod.iter().any(|m| normalize_model(&m.name) == base) {
                let mut conn = self.db.acquire().await.map_err(|e| e.to_string())?;
                if deploy::is_modelfile(&mut conn, &base)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!(
                        "its base {base} is a Modelfile's model that is not on this pod: deploy {base} to {} first",
                        op.workload
                    ));
                }
                self.log(
                    op.id,
                    Some(pod),
                    &format!("{base} is not on the pod: pulling it first"),
                )
                .await;
                self.streamed(op.id, pod, url, Streamed::Pull(&base))
                    .await
                    .map_err(|e| format!("pulling the base {base}: {e}"))?;
            }
        }
        self.log(op.id, Some(pod), &format!("creating {name}"))
            .await;
        self.streamed(op.id, pod, url, Streamed::Create(&spec))
            .await
    }
}

/// The base model to have on the pod first: the version's base unless it
/// is a blob already on the servers (nothing to pull).
fn pullable(spec: &Value) -> Option<String> {
    base_of(spec).filter(|b| !b.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_model_name_is_pulled_first() {
        assert_eq!(
            pullable(&serde_json::json!({"from": "llama3.2"})).as_deref(),
            Some("llama3.2:latest")
        );
        assert_eq!(
            pullable(&serde_json::json!({"files": {"sha256-ab": "sha256:ab"}})),
            None
        );
        assert_eq!(pullable(&serde_json::json!({})), None);
    }
}
