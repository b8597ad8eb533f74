//! What the cluster page and `GET /api/v1/cluster` show: each workload's
//! replicas and autoscaler, and per pod its state and its Ollama's models.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Every workload Corral drives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClusterReport {
    pub workloads: Vec<WorkloadReport>,
}

/// One workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkloadReport {
    pub name: String,
    /// `static` or `kubernetes`.
    pub driver: String,
    /// Where it is, e.g. `deployment ollama in namespace llm`.
    pub location: String,
    pub desired: Option<i32>,
    pub ready: Option<i32>,
    pub available: Option<i32>,
    pub autoscaler: Option<AutoscalerReport>,
    /// Corral can scale it (the static driver cannot).
    pub can_scale: bool,
    /// The replicas a scale may ask for.
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Pods share one models volume (a pull runs once).
    pub shared_models: bool,
    pub pods: Vec<PodReport>,
    /// The cluster did not answer: why.
    pub error: Option<String>,
    /// Models on some of the answering pods and not on others.
    pub uneven_models: Vec<String>,
    /// How many models and parallel requests a pod's GPU holds.
    pub capacity: super::capacity::CapacityAdvice,
}

/// The HorizontalPodAutoscaler that owns a workload's replicas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AutoscalerReport {
    pub name: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub desired_replicas: Option<i32>,
    /// The metric it scales on, e.g. `ollama_queue_depth`.
    pub metric: Option<String>,
    pub current_value: Option<f64>,
    pub target_value: Option<f64>,
}

/// One pod and its Ollama.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PodReport {
    pub name: String,
    /// Its Ollama's address (admins only).
    pub endpoint: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub node: Option<String>,
    /// GPUs it asks for.
    pub gpus: Option<String>,
    pub restarts: i32,
    /// Why it is not running (e.g. no GPU node free).
    pub reason: Option<String>,
    /// Its Ollama did not answer: why.
    pub ollama_error: Option<String>,
    pub ollama_version: Option<String>,
    pub models: Vec<PodModel>,
    pub loaded: Vec<LoadedModelReport>,
}

/// A model on a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PodModel {
    pub name: String,
    /// Bytes.
    pub size: i64,
    pub digest: String,
    pub parameter_size: String,
    pub quantization_level: String,
}

/// A model loaded in memory on a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LoadedModelReport {
    pub name: String,
    /// Bytes in memory, and of them in GPU memory.
    pub size: i64,
    pub size_vram: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl WorkloadReport {
    /// Models on some answering pods and not on others, sorted.
    pub fn find_uneven(pods: &[PodReport]) -> Vec<String> {
        let answering: Vec<&PodReport> = pods.iter().filter(|p| p.ollama_error.is_none()).collect();
        let mut names: Vec<String> = answering
            .iter()
            .flat_map(|p| p.models.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names.retain(|n| {
            !answering
                .iter()
                .all(|p| p.models.iter().any(|m| &m.name == n))
        });
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(models: &[&str], error: Option<&str>) -> PodReport {
        PodReport {
            models: models
                .iter()
                .map(|m| PodModel {
                    name: (*m).into(),
                    ..Default::default()
                })
                .collect(),
            ollama_error: error.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn models_missing_from_some_answering_pods_are_uneven() {
        let pods = [
            pod(&["a", "b"], None),
            pod(&["a"], None),
            pod(&[], Some("no answer")),
        ];
        assert_eq!(WorkloadReport::find_uneven(&pods), vec!["b".to_owned()]);
    }
}
