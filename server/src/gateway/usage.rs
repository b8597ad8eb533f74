//! Usage recording without loss. Requests hand their event to a channel
//! (never blocking); one writer task stores events in batches. While
//! Postgres is away events wait in memory, and beyond
//! `gateway.usage_buffer_events` they are appended to a spool file on disk;
//! both are written once Postgres returns. Event ids are made here, so a
//! batch written twice (a timeout after a commit, a spool replayed by
//! another replica) is stored once. At shutdown whatever could not be
//! written is spooled, and the next start replays the spool.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use app::domain::usage::NewUsageEvent;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::metrics::GatewayMetrics;

/// How the writer batches and buffers.
#[derive(Clone, Debug)]
pub struct UsageConfig {
    pub batch_size: usize,
    pub flush_every: Duration,
    pub buffer_events: usize,
    pub spool_dir: PathBuf,
}

/// Where requests send their events.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::UnboundedSender<Msg>,
    metrics: GatewayMetrics,
}

enum Msg {
    Event(Box<NewUsageEvent>),
    /// Write everything now and answer (used by tests).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Write everything, spool what cannot be written, stop, answer.
    Close(tokio::sync::oneshot::Sender<()>),
}

impl UsageSink {
    /// Records one event; never blocks and never fails the request.
    pub fn record(&self, event: NewUsageEvent) {
        self.metrics.usage_buffered.inc();
        if self.tx.send(Msg::Event(Box::new(event))).is_err() {
            self.metrics.usage_buffered.dec();
            tracing::error!("usage writer has stopped; an event was not recorded");
        }
    }

    /// At shutdown: writes every event sent so far, spools what Postgres
    /// does not take, and stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Waits until every event sent so far has been written (or Postgres
    /// refused a write).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the writer. Spool files left by an earlier run are replayed.
pub async fn start(
    db: PgPool,
    config: UsageConfig,
    metrics: GatewayMetrics,
) -> anyhow::Result<(UsageSink, tokio::task::JoinHandle<()>)> {
    tokio::fs::create_dir_all(&config.spool_dir)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "gateway.spool_dir (CORRAL_GATEWAY__SPOOL_DIR): cannot create {}: {e}",
                config.spool_dir.display()
            )
        })?;
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = Writer {
        db,
        spool_file: config.spool_dir.join(format!(
            "usage-{}-{}.jsonl",
            std::process::id(),
            Uuid::new_v4().simple()
        )),
        config,
        pending: VecDeque::new(),
        metrics: metrics.clone(),
        healthy: true,
        own_spool: false,
        last_scan: None,
    };
    let handle = tokio::spawn(writer.run(rx));
    Ok((UsageSink { tx, metrics }, handle))
}

struct Writer {
    db: PgPool,
    config: UsageConfig,
    spool_file: PathBuf,
    pending: VecDeque<NewUsageEvent>,
    metrics: GatewayMetrics,
    healthy: bool,
    /// This writer has spooled events not yet replayed.
    own_spool: bool,
    /// When the spool directory was last read.
    last_scan: Option<std::time::Instant>,
}

/// How often the spool directory is read for files other replicas left.
const SPOOL_SCAN_EVERY: Duration = Duration::from_secs(30);

impl Writer {
    /// Whether the spool needs reading now: this writer spooled, or it has
    /// not looked for a while (other replicas' files), not after every batch.
    fn spool_due(&self) -> bool {
        self.own_spool
            || self
                .last_scan
                .is_none_or(|t| t.elapsed() > SPOOL_SCAN_EVERY)
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut backoff = self.config.flush_every;
        let mut flush_waiters = Vec::new();
        self.replay_spool().await;
        loop {
            // Wait for the first event (or the retry timer), then gather a
            // batch for at most `flush_every`.
            let deadline = tokio::time::sleep(if self.pending.is_empty() {
                Duration::from_secs(3600)
            } else {
                backoff
            });
            tokio::pin!(deadline);
            let mut closed = false;
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(Msg::Event(e)) => {
                            self.pending.push_back(*e);
                            if self.pending.len() >= self.config.batch_size && self.healthy {
                                break;
                            }
                            if self.pending.len() == 1 {
                                deadline.as_mut().reset(tokio::time::Instant::now() + self.config.flush_every);
                            }
                        }
                        Some(Msg::Flush(done)) => { flush_waiters.push(done); break; }
                        Some(Msg::Close(done)) => { flush_waiters.push(done); closed = true; break; }
                        None => { closed = true; break; }
                    },
                    () = &mut deadline => break,
                }
            }
            // Write full batches while Postgres answers.
            while !self.pending.is_empty() {
                if self.write_batch().await {
                    backoff = self.config.flush_every;
                } else {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
                    break;
                }
            }
            if self.pending.is_empty() && self.healthy && self.spool_due() {
                self.replay_spool().await;
            }
            if self.pending.len() > self.config.buffer_events
                || (closed && !self.pending.is_empty())
            {
                self.spool_pending();
            }
            if self.pending.is_empty() || !self.healthy || closed {
                for w in flush_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            if closed {
                return;
            }
        }
    }

    /// Writes up to one batch from the front of `pending`.
    async fn write_batch(&mut self) -> bool {
        let n = self.pending.len().min(self.config.batch_size);
        let batch: Vec<NewUsageEvent> = self.pending.iter().take(n).cloned().collect();
        match store(&self.db, &batch).await {
            Ok(()) => {
                self.pending.drain(..n);
                self.metrics.usage_written.inc_by(n as u64);
                self.metrics.usage_buffered.sub(n as i64);
                if !self.healthy {
                    tracing::info!("Postgres is back; usage recording resumed");
                    self.healthy = true;
                }
                true
            }
            Err(e) => {
                if self.healthy {
                    tracing::warn!(error = %e, buffered = self.pending.len(), "cannot write usage events; buffering until Postgres returns");
                    self.healthy = false;
                }
                false
            }
        }
    }

    /// Moves everything beyond half the memory buffer (or all, at
    /// shutdown) to the spool file.
    fn spool_pending(&mut self) {
        let keep = if self.pending.len() > self.config.buffer_events {
            self.config.buffer_events / 2
        } else {
            0
        };
        let moved: Vec<NewUsageEvent> = self.pending.drain(keep..).collect();
        match append_spool(&self.spool_file, &moved) {
            Ok(()) => {
                self.own_spool = true;
                self.metrics.usage_spooled.inc_by(moved.len() as u64);
                tracing::warn!(events = moved.len(), file = %self.spool_file.display(), "usage events spooled to disk");
            }
            Err(e) => {
                tracing::error!(error = %e, file = %self.spool_file.display(), "cannot spool usage events; keeping them in memory");
                self.pending.extend(moved);
            }
        }
    }

    /// Writes every spool file in the directory (this process's and any a
    /// stopped replica left), deleting each once stored.
    async fn replay_spool(&mut self) {
        self.last_scan = Some(std::time::Instant::now());
        let Ok(entries) = std::fs::read_dir(&self.config.spool_dir) else {
            return;
        };
        // Another running replica may still be appending to its own file;
        // only files left alone for a minute are taken over.
        let own = self.spool_file.clone();
        let files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let p = e.path();
                p.extension().is_some_and(|x| x == "jsonl")
                    && (p == own
                        || e.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                            t.elapsed().unwrap_or_default() > Duration::from_secs(60)
                        }))
            })
            .map(|e| e.path())
            .collect();
        for file in files {
            let events = match read_spool(&file) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(error = %e, file = %file.display(), "cannot read usage spool");
                    continue;
                }
            };
            let mut ok = true;
            for chunk in events.chunks(self.config.batch_size.max(1)) {
                if let Err(e) = store(&self.db, chunk).await {
                    tracing::warn!(error = %e, "usage spool replay paused");
                    self.healthy = false;
                    ok = false;
                    break;
                }
                self.metrics.usage_written.inc_by(chunk.len() as u64);
            }
            if !ok {
                return;
            }
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::error!(error = %e, file = %file.display(), "cannot delete replayed spool");
            } else {
                tracing::info!(events = events.len(), file = %file.display(), "usage spool replayed");
            }
            // Spooled events were counted as buffered by this process only
            // if it wrote them; keep the gauge from going negative.
            if file == self.spool_file {
                self.metrics.usage_buffered.sub(events.len() as i64);
                self.own_spool = false;
            }
        }
    }
}

async fn store(db: &PgPool, events: &[NewUsageEvent]) -> Result<(), app::domain::Error> {
    let mut tx = db.begin().await?;
    app::domain::usage::record(&mut *tx, events).await?;
    let mut keys: Vec<Uuid> = events.iter().filter_map(|e| e.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    app::domain::keys::touch(&mut *tx, &keys).await?;
    tx.commit().await?;
    Ok(())
}

fn append_spool(file: &Path, events: &[NewUsageEvent]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let mut buf = Vec::with_capacity(events.len() * 256);
    for e in events {
        serde_json::to_writer(&mut buf, e)?;
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.sync_data()
}

fn read_spool(file: &Path) -> std::io::Result<Vec<NewUsageEvent>> {
    let text = std::fs::read_to_string(file)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        // A line cut short by a crash mid-write is the only thing skipped.
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_files_round_trip_and_skip_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("corral-spool-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("usage-1.jsonl");
        let e = NewUsageEvent {
            event_id: Uuid::new_v4(),
            at: time::OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap(),
            team_id: Uuid::new_v4(),
            key_id: None,
            model: "llama3.2:latest".into(),
            endpoint: "/api/chat".into(),
            status: 200,
            prompt_tokens: 3,
            completion_tokens: 4,
            latency_ms: 1.5,
            ttft_ms: Some(0.5),
            upstream: "http://127.0.0.1:11434".into(),
        };
        append_spool(&file, &[e.clone(), e.clone()]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"{\"event_id\":")
            .unwrap();
        assert_eq!(read_spool(&file).unwrap(), vec![e.clone(), e]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
