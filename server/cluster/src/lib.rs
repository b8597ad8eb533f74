//! Where Ollama runs, for Corral: the workload's pods and their Ollama
//! addresses, its replicas and autoscaler, and scaling it. Two backends:
//! `static` (a fixed list of Ollama URLs, no scaling: the zero-setup local
//! run) and `kubernetes` (a Deployment found through kube-rs). Each pod's
//! Ollama is reached directly (`ollama`), never through a Service, so that
//! a pull or a create reaches every pod.

mod autoscaler;
mod kubernetes;
pub mod ollama;
mod static_driver;

use serde::Serialize;
use url::Url;

pub use autoscaler::quantity;
pub use kubernetes::{KubernetesDriver, KubernetesOptions};
pub use ollama::{LoadedModel, LocalModel, Ollama, OllamaError, PullProgress};
pub use static_driver::StaticDriver;

/// A pod of a workload as the cluster reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub name: String,
    /// Its Ollama (pod IP and port); none before it has an address.
    pub endpoint: Option<Url>,
    /// Kubernetes' phase: `Pending`, `Running`, `Succeeded`, `Failed`,
    /// `Unknown`.
    pub phase: String,
    pub ready: bool,
    pub node: Option<String>,
    /// GPUs it asks for (`nvidia.com/gpu`), as the manifest says them.
    pub gpus: Option<String>,
    pub restarts: i32,
    /// Why it is not running, in the scheduler's or kubelet's words (e.g.
    /// `0/3 nodes are available: 3 Insufficient nvidia.com/gpu`).
    pub reason: Option<String>,
}

/// The horizontal autoscaler that owns a workload's replicas.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Autoscaler {
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

/// A workload's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadState {
    pub name: String,
    /// `static` or `kubernetes`.
    pub driver: &'static str,
    /// Where it is, e.g. `deployment ollama in namespace llm`.
    pub location: String,
    pub desired: Option<i32>,
    pub ready: Option<i32>,
    pub available: Option<i32>,
    pub autoscaler: Option<Autoscaler>,
    pub pods: Vec<Pod>,
    /// Scaling is possible with this driver.
    pub can_scale: bool,
}

/// What a scale did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Scaled {
    /// The Deployment's `spec.replicas` went from one number to another.
    Replicas { from: i32, to: i32 },
    /// An HPA owns the replicas: its bounds were changed instead.
    AutoscalerBounds { name: String, min: i32, max: i32 },
}

impl Scaled {
    /// What it means, for the operation's outcome and the audit log.
    pub fn describe(&self) -> String {
        match self {
            Self::Replicas { from, to } => format!("replicas {from} → {to}"),
            Self::AutoscalerBounds { name, min, max } => format!(
                "HorizontalPodAutoscaler {name} owns the replicas: its bounds were set to min {min}, max {max} instead"
            ),
        }
    }
}

/// What went wrong asking the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    NotFound(String),
    /// RBAC refused the call: which one, and the Role that allows it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unsupported(String),
    /// The API could not be reached, or answered with an error of its own.
    #[error("{0}")]
    Unavailable(String),
}

/// The configured backend.
#[derive(Clone, Debug)]
pub enum Driver {
    Static(StaticDriver),
    Kubernetes(KubernetesDriver),
}

impl Driver {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Static(_) => "static",
            Self::Kubernetes(_) => "kubernetes",
        }
    }

    /// Whether it can scale a workload.
    pub fn can_scale(&self) -> bool {
        !matches!(self, Self::Static(_))
    }

    /// The workload's replicas, autoscaler and pods.
    pub async fn state(&self, workload: &str) -> Result<WorkloadState, ClusterError> {
        match self {
            Self::Static(d) => d.state(workload),
            Self::Kubernetes(d) => d.state(workload).await,
        }
    }

    /// The pods an operation runs on: ready, with an address.
    pub async fn ready_pods(&self, workload: &str) -> Result<Vec<(String, Url)>, ClusterError> {
        let state = self.state(workload).await?;
        Ok(state
            .pods
            .into_iter()
            .filter(|p| p.ready)
            .filter_map(|p| Some((p.name, p.endpoint?)))
            .collect())
    }

    /// Sets the workload's replicas, or its autoscaler's bounds when one
    /// owns them.
    pub async fn scale(&self, workload: &str, replicas: i32) -> Result<Scaled, ClusterError> {
        match self {
            Self::Static(_) => {
                let _ = (workload, replicas);
                Err(ClusterError::Unsupported(
                    "the static driver cannot scale: its pods are a fixed list of URLs (cluster.driver = \"static\")".into(),
                ))
            }
            Self::Kubernetes(d) => d.scale(workload, replicas).await,
        }
    }
}
