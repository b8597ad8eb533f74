//! The operations runner: takes operations from the Postgres queue (any
//! number of Corral replicas run one each), holds each under a lease with a
//! heartbeat, carries it out on every pod of the workload through the
//! cluster driver and each pod's Ollama, and writes progress as it goes.
//! A runner that dies leaves a lease that runs out; another takes the
//! operation over (a pull resumes: Ollama keeps partial blobs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::operations::queue::{self, Heartbeat, StepUpdate};
use app::domain::operations::{Workload, Workloads};
use app::model::{Operation, OperationKind, OperationState, StepState};
use cluster::{Driver, Ollama, PullProgress};
use sqlx::PgPool;
use tokio::task::JoinSet;
use url::Url;
use uuid::Uuid;

/// How often progress of one pod is written at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often the queue is looked at when nothing is heard.
const POLL: Duration = Duration::from_secs(2);
/// The NOTIFY channel the queue's triggers use.
pub const CHANNEL: &str = "corral_operations";

/// A runner of this process.
#[derive(Clone)]
pub struct Runner {
    pub db: PgPool,
    pub driver: Arc<Driver>,
    pub ollama: Ollama,
    pub workloads: Arc<Workloads>,
    /// Its name in leases.
    pub owner: String,
    pub lease: Duration,
    pub concurrency: usize,
}

impl Runner {
    /// Runs operations until `shutdown` resolves; then the ones under way
    /// are dropped (their leases run out and another runner resumes them).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut running: JoinSet<()> = JoinSet::new();
        let mut listener = None;
        let mut last_reap = Instant::now() - self.lease;
        loop {
            if listener.is_none() {
                listener = connect_listener(&self.db).await;
            }
            if last_reap.elapsed() >= self.lease / 3 {
                last_reap = Instant::now();
                if let Err(e) = queue::reap(&self.db).await {
                    tracing::warn!(error = %e, "operations: reaping expired leases failed");
                }
            }
            while running.len() < self.concurrency {
                match queue::claim(&self.db, &self.owner, self.lease).await {
                    Ok(Some(op)) => {
                        let me = self.clone();
                        running.spawn(async move { me.execute(op).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "operations: claiming failed");
                        break;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                heard = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => if !heard { listener = None; },
                () = tokio::time::sleep(POLL) => {}
            }
        }
        running.shutdown().await;
    }

    /// Carries out one claimed operation under its lease.
    async fn execute(self, op: Operation) {
        let id = op.id;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(None::<Stop>);
        let beat = {
            let me = self.clone();
            tokio::spawn(async move { me.heartbeat(id, stop_tx).await })
        };
        let work = self.work(&op);
        let result = tokio::select! {
            r = work => Some(r),
            _ = stop_rx.wait_for(Option::is_some) => None,
        };
        beat.abort();
        let stop = *stop_rx.borrow();
        let (state, error, outcome) = match (result, stop) {
            (_, Some(Stop::Lost)) => {
                tracing::warn!(%id, "operations: lease lost; another runner has it");
                return;
            }
            (None, Some(Stop::Cancel)) | (None, None) => {
                (OperationState::Cancelled, None, Some(cancel_note(op.kind)))
            }
            (Some(Ok(outcome)), _) => (OperationState::Succeeded, None, outcome),
            (Some(Err(e)), _) => (OperationState::Failed, Some(e), None),
        };
        match queue::finish(
            &self.db,
            id,
            &self.owner,
            state,
            error.as_deref(),
            outcome.as_deref(),
        )
        .await
        {
            Ok(true) => {
                tracing::info!(%id, kind = op.kind.as_str(), state = state.as_str(), "operation ended")
            }
            Ok(false) => tracing::warn!(%id, "operations: lease lost before the end was written"),
            Err(e) => {
                tracing::error!(%id, error = %e, "operations: writing the end failed; the lease will run out and it is tried again")
            }
        }
    }

    /// Renews the lease every third of it (at least every second, so that a
    /// cancel is seen soon) until told to stop.
    async fn heartbeat(self, id: Uuid, stop: tokio::sync::watch::Sender<Option<Stop>>) {
        let every = (self.lease / 3).min(Duration::from_secs(1));
        let mut failing_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(every).await;
            match queue::heartbeat(&self.db, id, &self.owner, self.lease).await {
                Ok(Heartbeat::Held { cancel_requested }) => {
                    failing_since = None;
                    if cancel_requested {
                        let _ = stop.send(Some(Stop::Cancel));
                        return;
                    }
                }
                Ok(Heartbeat::Lost) => {
                    let _ = stop.send(Some(Stop::Lost));
                    return;
                }
                Err(e) => {
                    // Postgres away: the lease will run out; stop before
                    // another runner could take it over.
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    tracing::warn!(%id, error = %e, "operations: heartbeat failed");
                    if since.elapsed() >= self.lease / 2 {
                        let _ = stop.send(Some(Stop::Lost));
                        return;
                    }
                }
            }
        }
    }

    /// The work itself: an outcome to show, or why it failed.
    async fn work(&self, op: &Operation) -> Result<Option<String>, String> {
        let workload = self
            .workloads
            .get(Some(&op.workload))
            .map_err(|e| e.to_string())?
            .clone();
        match op.kind {
            OperationKind::Scale => {
                let replicas = op.replicas.ok_or("a scale without replicas")?;
                self.log(
                    op.id,
                    None,
                    &format!("scaling {} to {replicas}", workload.name),
                )
                .await;
                let scaled = self
                    .driver
                    .scale(&workload.name, replicas)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Some(scaled.describe()))
            }
            _ => self.on_every_pod(op, &workload).await,
        }
    }

    /// Runs a pull, delete, copy or create on every ready pod at once (once,
    /// for a shared models volume).
    async fn on_every_pod(
        &self,
        op: &Operation,
        workload: &Workload,
    ) -> Result<Option<String>, String> {
        let mut pods = self
            .driver
            .ready_pods(&workload.name)
            .await
            .map_err(|e| e.to_string())?;
        if pods.is_empty() {
            return Err(format!(
                "workload {} has no ready pod to run on",
                workload.name
            ));
        }
        if workload.shared_models {
            pods.truncate(1);
            pods[0].0 = "shared".into();
        }
        let named: Vec<(String, String)> = pods
            .iter()
            .map(|(n, u)| (n.clone(), u.to_string()))
            .collect();
        let todo = queue::set_steps(&self.db, op.id, &self.owner, &named)
            .await
            .map_err(|e| e.to_string())?;
        let mut tasks = JoinSet::new();
        for (pod, endpoint) in todo {
            let Ok(url) = Url::parse(&endpoint) else {
                continue;
            };
            let me = self.clone();
            let op = op.clone();
            tasks.spawn(async move {
                let r = me.on_pod(&op, &pod, &url).await;
                (pod, r)
            });
        }
        let mut failed = Vec::new();
        let mut notes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((pod, Ok(Some(note)))) => notes.push(format!("{pod}: {note}")),
                Ok((_, Ok(None))) => {}
                Ok((pod, Err(e))) => failed.push(format!("{pod}: {e}")),
                Err(e) => failed.push(format!("a pod's task stopped: {e}")),
            }
        }
        if failed.is_empty() {
            Ok((!notes.is_empty()).then(|| notes.join("; ")))
        } else {
            Err(failed.join("; "))
        }
    }

    /// One pod's part; its step records the progress and the end.
    async fn on_pod(&self, op: &Operation, pod: &str, url: &Url) -> Result<Option<String>, String> {
        let model = op.model.as_deref().unwrap_or_default();
        self.step(op.id, pod, StepState::Running, "starting", None, 0.0, None)
            .await;
        let mut note = None;
        let result = match op.kind {
            OperationKind::Pull => self.pull(op.id, pod, url, model).await,
            OperationKind::Delete => match self.ollama.delete(url, model).await {
                Ok(true) => Ok(()),
                Ok(false) => {
                    note = Some(format!("{model} was not there"));
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            OperationKind::Copy => {
                let to = op.destination.as_deref().unwrap_or_default();
                self.ollama
                    .copy(url, model, to)
                    .await
                    .map_err(|e| e.to_string())
            }
            OperationKind::Create => self.create(op, pod, url).await,
            OperationKind::Scale => Err("a scale does not run per pod".to_owned()),
        };
        let (state, status, error) = match &result {
            Ok(()) => (StepState::Succeeded, "success", None),
            Err(e) => (StepState::Failed, "failed", Some(e.as_str())),
        };
        self.step(op.id, pod, state, status, None, 0.0, error).await;
        if let Err(e) = &result {
            self.log(op.id, Some(pod), &format!("failed: {e}")).await;
        } else {
            self.log(op.id, Some(pod), note.as_deref().unwrap_or("done"))
                .await;
        }
        result.map(|()| note)
    }

    /// A pull on one pod, its progress written at most every
    /// [`PROGRESS_EVERY`] and at each new status.
    async fn pull(&self, id: Uuid, pod: &str, url: &Url, model: &str) -> Result<(), String> {
        self.streamed(id, pod, url, Streamed::Pull(model)).await
    }

    /// A pull or a create on one pod, with its progress written as it
    /// comes (at most every [`PROGRESS_EVERY`] and at each new status).
    pub(super) async fn streamed(
        &self,
        id: Uuid,
        pod: &str,
        url: &Url,
        what: Streamed<'_>,
    ) -> Result<(), String> {
        let (tx, mut rx) = tokio::sync::watch::channel(PullProgress::default());
        let writer = {
            let me = self.clone();
            let pod = pod.to_owned();
            tokio::spawn(async move {
                let mut last_status = String::new();
                let mut rate = Rate::default();
                while rx.changed().await.is_ok() {
                    let p = rx.borrow_and_update().clone();
                    let r = rate.update(p.completed());
                    if p.status != last_status {
                        me.log(id, Some(&pod), &p.status).await;
                        last_status.clone_from(&p.status);
                    }
                    me.step(id, &pod, StepState::Running, &p.status, Some(&p), r, None)
                        .await;
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
            })
        };
        let mut last = PullProgress::default();
        let seen = |p: &PullProgress| {
            last.clone_from(p);
            let _ = tx.send(p.clone());
        };
        let result = match what {
            Streamed::Pull(model) => self.ollama.pull(url, model, seen).await,
            Streamed::Create(request) => self.ollama.create(url, request, seen).await,
        };
        drop(tx);
        let _ = writer.await;
        // The last word, which the writer may have skipped while it waited.
        self.step(
            id,
            pod,
            StepState::Running,
            &last.status,
            Some(&last),
            0.0,
            None,
        )
        .await;
        result.map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn step(
        &self,
        id: Uuid,
        pod: &str,
        state: StepState,
        status: &str,
        p: Option<&PullProgress>,
        rate: f64,
        error: Option<&str>,
    ) {
        let bytes = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let update = StepUpdate {
            state,
            status,
            completed: p.map(|p| bytes(p.completed())),
            total: p.map(|p| bytes(p.total())),
            rate,
            error,
        };
        if let Err(e) = queue::progress(&self.db, id, &self.owner, pod, &update).await {
            tracing::warn!(%id, pod, error = %e, "operations: writing progress failed");
        }
    }

    pub(super) async fn log(&self, id: Uuid, pod: Option<&str>, line: &str) {
        if let Err(e) = queue::log(&self.db, id, pod, line).await {
            tracing::warn!(%id, error = %e, "operations: writing the log failed");
        }
    }
}

/// What [`Runner::streamed`] runs on a pod.
pub(super) enum Streamed<'a> {
    Pull(&'a str),
    Create(&'a serde_json::Value),
}

/// Why the work was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Cancel,
    Lost,
}

/// What a cancel leaves behind, said on the operation.
fn cancel_note(kind: OperationKind) -> String {
    match kind {
        OperationKind::Pull => "cancelled: the request to every pod was dropped. Ollama has no cancel and may still finish a download it had started (ollama/ollama#13142): if the model appears on a pod, delete it there.".into(),
        _ => "cancelled: the requests under way were dropped; what a pod had already done stays done".into(),
    }
}

/// Bytes per second over the last few seconds.
#[derive(Default)]
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    fn update(&mut self, completed: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, completed));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(5))
        {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 && c1 >= c0 => {
                (c1 - c0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// A LISTEN on the queue's channel, or none while Postgres refuses it.
async fn connect_listener(db: &PgPool) -> Option<sqlx::postgres::PgListener> {
    let mut l = sqlx::postgres::PgListener::connect_with(db).await.ok()?;
    l.listen(CHANNEL).await.ok()?;
    Some(l)
}
