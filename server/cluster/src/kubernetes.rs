//! The `kubernetes` backend: one Deployment in one namespace, read and
//! scaled through kube-rs with no more than the Role in
//! `k8s/base/portal/rbac.yaml` grants (pods get/list/watch, deployments and
//! replicasets get, `deployments/scale` get/patch, HPAs get/patch).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod as KPod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use url::Url;

use super::autoscaler::{self, Hpa};
use super::{ClusterError, Pod, Scaled, WorkloadState};

/// How to reach the Kubernetes API and what to manage there.
#[derive(Clone, Debug, Default)]
pub struct KubernetesOptions {
    /// A kubeconfig file; `None`: in a pod its service account, else
    /// `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the service account's or the kubeconfig context's namespace.
    pub namespace: Option<String>,
    /// The Deployment.
    pub workload: String,
    /// The HPA that may own its replicas (read by name).
    pub autoscaler: Option<String>,
    /// Ollama's port in each pod.
    pub ollama_port: u16,
}

/// A Deployment of Ollama, through the Kubernetes API.
#[derive(Clone)]
pub struct KubernetesDriver {
    client: Client,
    namespace: String,
    workload: String,
    autoscaler: String,
    ollama_port: u16,
}

impl std::fmt::Debug for KubernetesDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDriver")
            .field("namespace", &self.namespace)
            .field("workload", &self.workload)
            .field("autoscaler", &self.autoscaler)
            .field("ollama_port", &self.ollama_port)
            .finish_non_exhaustive()
    }
}

impl KubernetesDriver {
    /// Reads the kubeconfig (or the pod's service account). Nothing is
    /// asked of the API yet: a cluster that is away shows on the cluster
    /// page, it does not stop Corral.
    pub async fn connect(options: KubernetesOptions) -> Result<Self, ClusterError> {
        let mut config = match &options.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::Unavailable(format!("kubeconfig {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| {
                        ClusterError::Unavailable(format!("kubeconfig {}: {e}", path.display()))
                    })?
            }
            None => Config::infer().await.map_err(|e| {
                ClusterError::Unavailable(format!(
                    "no in-cluster service account and no usable kubeconfig: {e}"
                ))
            })?,
        };
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(20));
        config.reset_reader_on_write = true;
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| ClusterError::Unavailable(format!("Kubernetes client: {e}")))?;
        Ok(Self::new(client, namespace, options))
    }

    /// With a client already made (tests give one per service account).
    pub fn new(client: Client, namespace: String, options: KubernetesOptions) -> Self {
        Self {
            autoscaler: options
                .autoscaler
                .unwrap_or_else(|| options.workload.clone()),
            workload: options.workload,
            client,
            namespace,
            ollama_port: options.ollama_port,
        }
    }

    fn check(&self, workload: &str) -> Result<(), ClusterError> {
        if workload == self.workload {
            Ok(())
        } else {
            Err(ClusterError::NotFound(format!(
                "no workload {workload:?}; Corral manages deployment {} in namespace {}",
                self.workload, self.namespace
            )))
        }
    }

    fn location(&self) -> String {
        format!(
            "deployment {} in namespace {}",
            self.workload, self.namespace
        )
    }

    /// The Deployment, its autoscaler and its pods (those of its
    /// ReplicaSets only, not whatever else matches its selector).
    pub async fn state(&self, workload: &str) -> Result<WorkloadState, ClusterError> {
        self.check(workload)?;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let d = deployments
            .get(&self.workload)
            .await
            .map_err(|e| api_error(e, &format!("get {}", self.location())))?;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let spec = d.spec.clone();
        let status = d.status.clone().unwrap_or_default();
        let selector = label_selector(&spec.selector)?;
        let pods_api: Api<KPod> = Api::namespaced(self.client.clone(), &self.namespace);
        let listed = pods_api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                api_error(
                    e,
                    &format!("list pods ({selector}) in namespace {}", self.namespace),
                )
            })?;
        let replica_sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut owned: HashMap<String, bool> = HashMap::new();
        let mut pods = Vec::new();
        for p in listed.items {
            let Some(rs) = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "ReplicaSet" && o.controller == Some(true))
                .map(|o| o.name.clone())
            else {
                continue;
            };
            if !owned.contains_key(&rs) {
                let mine = match replica_sets.get_opt(&rs).await {
                    Ok(Some(r)) => r
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.kind == "Deployment" && o.uid == uid),
                    Ok(None) => false,
                    Err(e) => {
                        return Err(api_error(
                            e,
                            &format!("get replicaset {rs} in namespace {}", self.namespace),
                        ));
                    }
                };
                owned.insert(rs.clone(), mine);
            }
            if owned[&rs] {
                pods.push(pod_report(&p, self.ollama_port));
            }
        }
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        let hpa = self.autoscaler().await?;
        Ok(WorkloadState {
            name: self.workload.clone(),
            driver: "kubernetes",
            location: self.location(),
            desired: Some(spec.replicas.unwrap_or(1)),
            ready: Some(status.ready_replicas.unwrap_or(0)),
            available: Some(status.available_replicas.unwrap_or(0)),
            autoscaler: hpa.map(|h| h.report),
            pods,
            can_scale: true,
        })
    }

    /// The HPA named `autoscaler`, if there is one and it targets the
    /// Deployment.
    async fn autoscaler(&self) -> Result<Option<Hpa>, ClusterError> {
        autoscaler::get(
            &self.client,
            &self.namespace,
            &self.autoscaler,
            &self.workload,
        )
        .await
    }

    /// Sets `spec.replicas` through the `scale` subresource; when an HPA
    /// owns the replicas, moves its bounds instead (it would undo a direct
    /// change within seconds): up to N raises its minimum to N, down to N
    /// lowers its maximum to N.
    pub async fn scale(&self, workload: &str, replicas: i32) -> Result<Scaled, ClusterError> {
        self.check(workload)?;
        if let Some(hpa) = self.autoscaler().await? {
            return autoscaler::set_bounds(&self.client, &self.namespace, &hpa, replicas).await;
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = format!("scale {}", self.location());
        let before = deployments
            .get_scale(&self.workload)
            .await
            .map_err(|e| api_error(e, &what))?
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(0);
        deployments
            .patch_scale(
                &self.workload,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map_err(|e| api_error(e, &what))?;
        Ok(Scaled::Replicas {
            from: before,
            to: replicas,
        })
    }
}

/// A Kubernetes API error, saying which call it was and, when RBAC refused
/// it, which Role must allow it.
pub(crate) fn api_error(e: kube::Error, what: &str) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => ClusterError::Forbidden(format!(
            "the Kubernetes API refused to {what}: {} (Corral's service account needs this in its Role, k8s/base/portal/rbac.yaml)",
            s.message
        )),
        kube::Error::Api(s) if s.is_not_found() => {
            ClusterError::NotFound(format!("{what}: {}", s.message))
        }
        kube::Error::Api(s) if s.is_conflict() || s.is_invalid() => {
            ClusterError::Conflict(format!("{what}: {}", s.message))
        }
        kube::Error::Api(s) => ClusterError::Unavailable(format!(
            "{what}: the Kubernetes API answered {} {}: {}",
            s.code, s.reason, s.message
        )),
        other => ClusterError::Unavailable(format!(
            "{what}: the Kubernetes API did not answer: {}",
            chain(&other)
        )),
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// A Deployment's selector as a label selector string.
fn label_selector(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<String, ClusterError> {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => {
                return Err(ClusterError::Unsupported(format!(
                    "the Deployment's selector has an unknown operator {other:?}"
                )));
            }
        });
    }
    if parts.is_empty() {
        return Err(ClusterError::Unsupported(
            "the Deployment has an empty selector".into(),
        ));
    }
    Ok(parts.join(","))
}

/// A pod as the cluster page shows it.
fn pod_report(p: &KPod, port: u16) -> Pod {
    let status = p.status.clone().unwrap_or_default();
    let spec = p.spec.clone().unwrap_or_default();
    let terminating = p.metadata.deletion_timestamp.is_some();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .cloned()
    };
    let endpoint = status.pod_ip.as_deref().and_then(|ip| {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        Url::parse(&format!("http://{host}:{port}")).ok()
    });
    let ready = !terminating
        && endpoint.is_some()
        && condition("Ready").is_some_and(|c| c.status == "True");
    let phase = if terminating {
        "Terminating".to_owned()
    } else {
        status.phase.clone().unwrap_or_else(|| "Unknown".into())
    };
    let mut gpus: BTreeMap<&str, i64> = BTreeMap::new();
    for c in &spec.containers {
        let r = c.resources.clone().unwrap_or_default();
        if let Some(q) = r
            .limits
            .as_ref()
            .and_then(|l| l.get("nvidia.com/gpu"))
            .or_else(|| r.requests.as_ref().and_then(|l| l.get("nvidia.com/gpu")))
        {
            *gpus.entry("nvidia.com/gpu").or_default() += q.0.trim().parse::<i64>().unwrap_or(0);
        }
    }
    let restarts = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    Pod {
        name: p.metadata.name.clone().unwrap_or_default(),
        endpoint,
        ready,
        node: spec.node_name.clone(),
        gpus: gpus.get("nvidia.com/gpu").map(i64::to_string),
        restarts,
        reason: (!ready).then(|| why_not_ready(&status, &phase)).flatten(),
        phase,
    }
}

/// Why a pod is not ready, in the scheduler's or kubelet's words, with what
/// to do about a pod no GPU node can take.
fn why_not_ready(status: &k8s_openapi::api::core::v1::PodStatus, phase: &str) -> Option<String> {
    let conditions = status.conditions.clone().unwrap_or_default();
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        let message = c.message.clone().unwrap_or_default();
        let mut s = format!(
            "{}: {message}",
            c.reason.clone().unwrap_or_else(|| "Unschedulable".into())
        );
        if message.contains("nvidia.com/gpu") {
            s.push_str(
                " No GPU node has room for it: scaling out needs a free GPU node, which a cluster autoscaler can add.",
            );
        }
        return Some(s);
    }
    for c in status.container_statuses.iter().flatten() {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            return Some(format!(
                "{}{}",
                w.reason.clone().unwrap_or_else(|| "Waiting".into()),
                w.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
    }
    match phase {
        "Pending"
            if status.pod_ip.is_none() && !conditions.iter().any(|c| c.type_ == "PodScheduled") =>
        {
            Some("Pending: not scheduled onto a node yet".into())
        }
        "Terminating" => Some("Terminating: being shut down".into()),
        "Running" if status.pod_ip.is_none() => Some("Running, but it has no pod IP yet".into()),
        "Running" => Some(
            conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "Running, but not Ready (its readiness probe fails)".into()),
        ),
        _ => status.message.clone().or(status.reason.clone()),
    }
}
