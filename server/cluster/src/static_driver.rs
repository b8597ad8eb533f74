//! The `static` backend: a fixed list of Ollama URLs as the pods of one
//! workload. No scaling; what the zero-setup local run uses with its
//! simulated Ollamas.

use url::Url;

use super::{ClusterError, Pod, WorkloadState};

#[derive(Clone, Debug)]
pub struct StaticDriver {
    workload: String,
    urls: Vec<Url>,
}

impl StaticDriver {
    pub fn new(workload: impl Into<String>, urls: Vec<Url>) -> Self {
        Self {
            workload: workload.into(),
            urls,
        }
    }

    /// Every URL is a pod named after its address; whether its Ollama
    /// answers is for the caller to ask.
    pub fn state(&self, workload: &str) -> Result<WorkloadState, ClusterError> {
        if workload != self.workload {
            return Err(ClusterError::NotFound(format!(
                "no workload {workload:?}; the static driver has {:?}",
                self.workload
            )));
        }
        let pods: Vec<Pod> = self
            .urls
            .iter()
            .map(|u| Pod {
                name: format!(
                    "{}:{}",
                    u.host_str().unwrap_or("ollama"),
                    u.port_or_known_default().unwrap_or(11434)
                ),
                endpoint: Some(u.clone()),
                phase: "Running".into(),
                ready: true,
                node: None,
                gpus: None,
                restarts: 0,
                reason: None,
            })
            .collect();
        let n = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        Ok(WorkloadState {
            name: self.workload.clone(),
            driver: "static",
            location: format!(
                "{} fixed Ollama URL{}",
                pods.len(),
                if pods.len() == 1 { "" } else { "s" }
            ),
            desired: Some(n),
            ready: Some(n),
            available: Some(n),
            autoscaler: None,
            pods,
            can_scale: false,
        })
    }
}
