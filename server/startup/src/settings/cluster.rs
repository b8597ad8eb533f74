//! Where Ollama runs (`cluster.*`), the built-in simulator (`sim.*`) and the
//! operations runners (`operations.*`), and their rules.

use std::net::IpAddr;
use std::path::PathBuf;

use app::model::Profile;
use serde::{Deserialize, Serialize};

use super::{Settings, SettingsError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// Run the built-in Ollama simulator (`ollama-sim`) inside `corral`.
    /// Default: on under `local`, refused under `production`.
    pub enabled: Option<bool>,
    pub host: IpAddr,
    pub port: u16,
    /// Time to first token, in milliseconds.
    pub ttft_ms: u64,
    /// Gap between streamed tokens, in milliseconds.
    pub token_ms: u64,
    /// Generations at once (`OLLAMA_NUM_PARALLEL`).
    pub parallel: usize,
    /// Delay between two progress lines of a simulated pull, in
    /// milliseconds (a pull then takes some seconds, as a real one would).
    pub pull_step_ms: u64,
    /// Simulated Ollama pods: the i-th (from 0) listens on `port + 2 i`
    /// (11434, 11436, …: the gateway has 11435). The gateway uses the
    /// first; the static cluster driver sees them all.
    pub pods: u16,
}

/// Where Ollama runs and what Corral may do to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// `static` (a fixed list of Ollama URLs, no scaling) or `kubernetes`.
    pub driver: ClusterDriver,
    /// The workload's name in Corral (and, for `kubernetes`, the
    /// Deployment's).
    pub workload: String,
    /// `static`: the pods' Ollama URLs, comma-separated. Default under
    /// `local`: the built-in simulators.
    pub static_urls: Option<String>,
    /// Replicas a scale may ask for.
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// `per_pod` (each pod its own models volume: a pull runs on every pod)
    /// or `shared` (one ReadWriteMany volume: a pull runs once).
    pub models_volume: ModelsVolume,
    /// `kubernetes`: the namespace of the Deployment. Default: the service
    /// account's namespace in a pod, else the kubeconfig context's.
    pub namespace: Option<String>,
    /// `kubernetes`: a kubeconfig file to use. Default: in a pod, its
    /// service account; else `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `kubernetes`: the HorizontalPodAutoscaler that may own the
    /// Deployment's replicas. Default: the workload's name. (Read by name:
    /// Corral's Role grants `get`, not `list`, on HPAs.)
    pub autoscaler: Option<String>,
    /// `kubernetes`: the port of Ollama in each pod.
    pub ollama_port: u16,
    /// GPU memory of one pod, in GiB, for the capacity advice and the
    /// warning before a pull that cannot fit.
    pub gpu_memory_gib: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterDriver {
    Static,
    Kubernetes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelsVolume {
    PerPod,
    Shared,
}

/// The runners that carry out cluster operations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSettings {
    /// This process runs operations (any number of Corral replicas may).
    pub enabled: bool,
    /// Operations run at once by this process.
    pub concurrency: usize,
    /// Seconds a runner's lease lasts without a heartbeat; an operation
    /// whose runner died is taken over after it.
    pub lease_secs: u64,
    /// Seconds between two looks for pods that lack their workload's models
    /// (e.g. added by a scale-up); each gets a pull.
    pub reconcile_secs: u64,
}

impl Settings {
    /// The rules of `sim.*`, `cluster.*` and `operations.*`.
    pub(super) fn validate_cluster(&self) -> Result<(), SettingsError> {
        let fail = |m: String| Err(SettingsError(m));
        if self.sim.parallel == 0 {
            return fail("sim.parallel (CORRAL_SIM__PARALLEL): must be at least 1".into());
        }
        if self.sim.pods == 0 || self.sim.pods > 16 {
            return fail("sim.pods (CORRAL_SIM__PODS): must be 1 to 16".into());
        }
        let w = &self.cluster.workload;
        if !is_dns_label(w) {
            return fail(format!(
                "cluster.workload (CORRAL_CLUSTER__WORKLOAD): {w:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)"
            ));
        }
        if self.cluster.min_replicas < 0
            || self.cluster.max_replicas < self.cluster.min_replicas
            || self.cluster.max_replicas > 1000
        {
            return fail("cluster.min_replicas, cluster.max_replicas (CORRAL_CLUSTER__MIN_REPLICAS, CORRAL_CLUSTER__MAX_REPLICAS): need 0 <= min <= max <= 1000".into());
        }
        if self.cluster.driver == ClusterDriver::Static {
            self.static_urls().map_err(SettingsError)?;
        }
        for (setting, value) in [
            (
                "cluster.namespace (CORRAL_CLUSTER__NAMESPACE)",
                &self.cluster.namespace,
            ),
            (
                "cluster.autoscaler (CORRAL_CLUSTER__AUTOSCALER)",
                &self.cluster.autoscaler,
            ),
        ] {
            if let Some(v) = value
                && !is_dns_label(v)
            {
                return fail(format!(
                    "{setting}: {v:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)"
                ));
            }
        }
        if let Some(g) = self.cluster.gpu_memory_gib
            && !(g > 0.0 && g <= 4096.0)
        {
            return fail(format!(
                "cluster.gpu_memory_gib (CORRAL_CLUSTER__GPU_MEMORY_GIB): {g} is not between 0 and 4096"
            ));
        }
        if self.cluster.ollama_port == 0 {
            return fail(
                "cluster.ollama_port (CORRAL_CLUSTER__OLLAMA_PORT): must be between 1 and 65535"
                    .into(),
            );
        }
        if let Some(path) = &self.cluster.kubeconfig
            && self.cluster.driver == ClusterDriver::Kubernetes
            && !path.is_file()
        {
            return fail(format!(
                "cluster.kubeconfig (CORRAL_CLUSTER__KUBECONFIG): {} is not a readable file",
                path.display()
            ));
        }
        if self.operations.concurrency == 0 {
            return fail(
                "operations.concurrency (CORRAL_OPERATIONS__CONCURRENCY): must be at least 1"
                    .into(),
            );
        }
        if self.operations.reconcile_secs == 0 {
            return fail(
                "operations.reconcile_secs (CORRAL_OPERATIONS__RECONCILE_SECS): must be at least 1"
                    .into(),
            );
        }
        if self.operations.lease_secs < 2 {
            return fail(
                "operations.lease_secs (CORRAL_OPERATIONS__LEASE_SECS): must be at least 2".into(),
            );
        }
        Ok(())
    }

    /// The simulated Ollamas' addresses (`sim.pods` of them).
    pub fn sim_addrs(&self) -> Vec<std::net::SocketAddr> {
        (0..self.sim.pods)
            .map(|i| std::net::SocketAddr::new(self.sim.host, self.sim.port.saturating_add(2 * i)))
            .collect()
    }

    /// The static driver's pods: `cluster.static_urls`, or the simulated
    /// Ollamas when the simulator runs.
    pub fn static_urls(&self) -> Result<Vec<url::Url>, String> {
        const SETTING: &str = "cluster.static_urls (CORRAL_CLUSTER__STATIC_URLS)";
        let raw = match &self.cluster.static_urls {
            Some(list) => list.clone(),
            None if self.sim_enabled() => self
                .sim_addrs()
                .iter()
                .map(|a| format!("http://{a}"))
                .collect::<Vec<_>>()
                .join(","),
            None => self.gateway.upstreams.clone(),
        };
        let urls: Vec<url::Url> = raw
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                url::Url::parse(u)
                    .ok()
                    .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                    .ok_or_else(|| format!("{SETTING}: {u:?} is not an http(s):// URL"))
            })
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(format!("{SETTING}: name at least one Ollama URL"));
        }
        Ok(urls)
    }

    /// Whether `corral` runs the built-in Ollama simulator: by default under
    /// `local` only.
    pub fn sim_enabled(&self) -> bool {
        self.sim.enabled.unwrap_or(self.profile == Profile::Local)
    }
}

/// A Kubernetes object name of the DNS-label kind: lower-case letters,
/// digits and '-', not at either end, 1 to 63 of them.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
