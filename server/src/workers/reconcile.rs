//! Keeps every pod of a workload holding the workload's models: a pod that
//! lacks one (added by a scale-up, or given a fresh volume) gets a pull,
//! queued as an ordinary operation so it shows, survives restarts and joins
//! a pull already under way. Only for per-pod model volumes: pods sharing a
//! ReadWriteMany volume see a model as soon as one of them has pulled it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use app::domain::operations::reconcile;
use app::domain::operations::{Workload, Workloads};
use app::model::key_rules::normalize_model;
use cluster::{Driver, Ollama};
use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The reconciler of one `corral` process (every replica may run one: a
/// second queued pull of a model joins the first).
#[derive(Clone)]
pub struct Reconciler {
    pub db: PgPool,
    pub driver: Arc<Driver>,
    pub ollama: Ollama,
    pub workloads: Arc<Workloads>,
    /// How often the pods are looked at.
    pub every: Duration,
}

impl Reconciler {
    /// Looks every `every` until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.every) => {
                    self.once().await;
                }
            }
        }
    }

    /// One look at every workload; the pulls it queued.
    pub async fn once(&self) -> Vec<Uuid> {
        let mut queued = Vec::new();
        for w in &self.workloads.0 {
            if w.shared_models {
                continue;
            }
            match self.workload(w).await {
                Ok(ids) => queued.extend(ids),
                Err(e) => tracing::warn!(workload = %w.name, error = %e, "reconcile: skipped"),
            }
        }
        queued
    }

    async fn workload(&self, w: &Workload) -> Result<Vec<Uuid>, String> {
        let mut conn = self.db.acquire().await.map_err(|e| e.to_string())?;
        let intended = reconcile::intended(&mut conn, &w.name)
            .await
            .map_err(|e| e.to_string())?;
        drop(conn);
        if intended.is_empty() {
            return Ok(Vec::new());
        }
        let pods = self
            .driver
            .ready_pods(&w.name)
            .await
            .map_err(|e| e.to_string())?;
        // Each ready pod's models; a pod whose Ollama does not answer is
        // left for the next look.
        let mut asked = JoinSet::new();
        for (pod, url) in pods {
            let ollama = self.ollama.clone();
            asked.spawn(async move { (pod, ollama.tags(&url).await) });
        }
        let mut holdings: Vec<(String, HashSet<String>)> = Vec::new();
        while let Some(Ok((pod, tags))) = asked.join_next().await {
            match tags {
                Ok(models) => holdings.push((
                    pod,
                    models.iter().map(|m| normalize_model(&m.name)).collect(),
                )),
                Err(e) => tracing::debug!(%pod, error = %e, "reconcile: pod did not answer"),
            }
        }
        let mut queued = Vec::new();
        for want in intended {
            let model = normalize_model(&want.model);
            let mut lacking: Vec<String> = holdings
                .iter()
                .filter(|(_, has)| !has.contains(&model))
                .map(|(pod, _)| pod.clone())
                .collect();
            if lacking.is_empty() {
                continue;
            }
            lacking.sort();
            let mut tx = self.db.begin().await.map_err(|e| e.to_string())?;
            let id = reconcile::queue_pull(&mut tx, &w.name, &want, &lacking)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            if let Some(id) = id {
                tracing::info!(%id, workload = %w.name, model = %want.model, pods = ?lacking, "reconcile: pull queued for pods that lack the model");
                queued.push(id);
            }
        }
        Ok(queued)
    }
}
