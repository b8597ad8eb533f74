//! The cluster as `corral` drives it: the configured driver and workloads,
//! and the live report the cluster page and `GET /api/v1/cluster` show
//! (the driver's view of each workload, and each pod's Ollama asked at
//! once for its models and what it has loaded).

use std::sync::Arc;

use app::domain::operations::{Workload, Workloads};
use app::domain::{ClusterView, PodShow};
use app::model::capacity;
use app::model::{
    AutoscalerReport, ClusterReport, LoadedModelReport, PodModel, PodReport, WorkloadReport,
};
use cluster::{Driver, Ollama, Pod};
use tokio::task::JoinSet;

use crate::settings::{ClusterDriver, ModelsVolume, Settings};

/// The driver, the workloads and a client for the pods' Ollamas.
pub struct Cluster {
    pub driver: Arc<Driver>,
    pub workloads: Arc<Workloads>,
    pub ollama: Ollama,
    /// `OLLAMA_NUM_PARALLEL` of the pods (`gateway.upstream_parallel`), for
    /// the capacity advice.
    pub parallel: i64,
}

impl Cluster {
    /// From the `cluster.*` settings. A Kubernetes API that is away does
    /// not stop Corral: the cluster page says so.
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let c = &settings.cluster;
        let driver = match c.driver {
            ClusterDriver::Static => Driver::Static(cluster::StaticDriver::new(
                c.workload.clone(),
                settings.static_urls().map_err(anyhow::Error::msg)?,
            )),
            ClusterDriver::Kubernetes => Driver::Kubernetes(
                cluster::KubernetesDriver::connect(cluster::KubernetesOptions {
                    kubeconfig: c.kubeconfig.clone(),
                    namespace: c.namespace.clone(),
                    workload: c.workload.clone(),
                    autoscaler: c.autoscaler.clone(),
                    ollama_port: c.ollama_port,
                })
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cluster.driver (CORRAL_CLUSTER__DRIVER) \"kubernetes\": {e}")
                })?,
            ),
        };
        let mut cluster = Self::new(
            driver,
            Workload {
                name: c.workload.clone(),
                min_replicas: c.min_replicas,
                max_replicas: c.max_replicas,
                shared_models: c.models_volume == ModelsVolume::Shared,
                can_scale: false,
                gpu_memory: c
                    .gpu_memory_gib
                    .map(|g| (g * 1024.0 * 1024.0 * 1024.0) as i64),
            },
        );
        cluster.parallel = i64::from(settings.gateway.upstream_parallel);
        Ok(cluster)
    }

    /// One workload on `driver` (`can_scale` is the driver's to say).
    pub fn new(driver: Driver, mut workload: Workload) -> Self {
        workload.can_scale = driver.can_scale();
        Self {
            driver: Arc::new(driver),
            workloads: Arc::new(Workloads(vec![workload])),
            ollama: Ollama::new(),
            parallel: 4,
        }
    }

    async fn workload_report(&self, w: &Workload) -> WorkloadReport {
        let mut report = WorkloadReport {
            name: w.name.clone(),
            driver: self.driver.kind().into(),
            can_scale: w.can_scale,
            min_replicas: w.min_replicas,
            max_replicas: w.max_replicas,
            shared_models: w.shared_models,
            ..Default::default()
        };
        let state = match self.driver.state(&w.name).await {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        report.location = state.location;
        report.desired = state.desired;
        report.ready = state.ready;
        report.available = state.available;
        report.autoscaler = state.autoscaler.map(|a| AutoscalerReport {
            name: a.name,
            min_replicas: a.min_replicas,
            max_replicas: a.max_replicas,
            current_replicas: a.current_replicas,
            desired_replicas: a.desired_replicas,
            metric: a.metric,
            current_value: a.current_value,
            target_value: a.target_value,
        });
        let mut asked = JoinSet::new();
        for (i, pod) in state.pods.into_iter().enumerate() {
            let ollama = self.ollama.clone();
            asked.spawn(async move { (i, pod_report(&ollama, pod).await) });
        }
        let mut pods: Vec<(usize, PodReport)> = asked.join_all().await;
        pods.sort_by_key(|(i, _)| *i);
        report.pods = pods.into_iter().map(|(_, p)| p).collect();
        report.uneven_models = WorkloadReport::find_uneven(&report.pods);
        report.capacity =
            capacity::advise(w.gpu_memory, self.parallel, &models_in_use(&report.pods));
        report
    }
}

/// Every model on the answering pods: its weights, and what it takes
/// loaded where some pod has it loaded (the largest figures seen).
fn models_in_use(pods: &[PodReport]) -> Vec<capacity::ModelUse> {
    let mut by_name: std::collections::BTreeMap<&str, capacity::ModelUse> = Default::default();
    for p in pods {
        for m in &p.models {
            let e = by_name
                .entry(&m.name)
                .or_insert_with(|| capacity::ModelUse {
                    name: m.name.clone(),
                    ..Default::default()
                });
            e.weights = e.weights.max(m.size);
        }
        for l in &p.loaded {
            if let Some(e) = by_name.get_mut(l.name.as_str()) {
                e.loaded = Some(e.loaded.unwrap_or(0).max(l.size));
            }
        }
    }
    by_name.into_values().collect()
}

/// A pod, and what its Ollama says when it has an address and is running.
async fn pod_report(ollama: &Ollama, pod: Pod) -> PodReport {
    let mut report = PodReport {
        name: pod.name,
        endpoint: pod.endpoint.as_ref().map(|u| u.to_string()),
        phase: pod.phase,
        ready: pod.ready,
        node: pod.node,
        gpus: pod.gpus,
        restarts: pod.restarts,
        reason: pod.reason,
        ..Default::default()
    };
    let Some(url) = pod.endpoint else {
        report.ollama_error = Some("the pod has no address yet".into());
        return report;
    };
    let (version, tags, ps) =
        tokio::join!(ollama.version(&url), ollama.tags(&url), ollama.ps(&url));
    let bytes = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match (version, tags, ps) {
        (Ok(v), Ok(tags), Ok(ps)) => {
            report.ollama_version = Some(v);
            report.models = tags
                .into_iter()
                .map(|m| PodModel {
                    name: m.name,
                    size: bytes(m.size),
                    digest: m.digest,
                    parameter_size: m.details.parameter_size,
                    quantization_level: m.details.quantization_level,
                })
                .collect();
            report.models.sort_by(|a, b| a.name.cmp(&b.name));
            report.loaded = ps
                .into_iter()
                .map(|m| LoadedModelReport {
                    name: m.name,
                    size: bytes(m.size),
                    size_vram: bytes(m.size_vram),
                    expires_at: m.expires_at,
                })
                .collect();
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            report.ollama_error = Some(e.to_string());
        }
    }
    report
}

impl ClusterView for Cluster {
    fn workloads(&self) -> &Workloads {
        &self.workloads
    }

    fn report(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ClusterReport> + Send + '_>> {
        Box::pin(async move {
            let mut workloads = Vec::new();
            for w in &self.workloads.0 {
                workloads.push(self.workload_report(w).await);
            }
            ClusterReport { workloads }
        })
    }

    fn show<'a>(
        &'a self,
        workload: &'a str,
        model: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<PodShow>, String>> + Send + 'a>,
    > {
        Box::pin(async move {
            let pods = self
                .driver
                .ready_pods(workload)
                .await
                .map_err(|e| e.to_string())?;
            let mut asks = JoinSet::new();
            for (i, (pod, url)) in pods.into_iter().enumerate() {
                let ollama = self.ollama.clone();
                let model = model.to_owned();
                asks.spawn(async move {
                    let show = ollama.show(&url, &model).await.map_err(|e| e.to_string());
                    (i, PodShow { pod, show })
                });
            }
            let mut out = Vec::new();
            while let Some(r) = asks.join_next().await {
                if let Ok(p) = r {
                    out.push(p);
                }
            }
            out.sort_by_key(|(i, _)| *i);
            Ok(out.into_iter().map(|(_, p)| p).collect())
        })
    }
}
