//! Usage recording without loss. Requests stage their event in memory
//! (a push under a short lock: no task wake-up per request); one writer
//! task takes what is staged when a batch is full or every
//! `gateway.usage_flush_ms`, and stores it in batches. While Postgres is
//! away events wait in memory, and beyond `gateway.usage_buffer_events`
//! they are appended to a spool file on disk; both are written once
//! Postgres returns. Event ids are made here, so a batch written twice (a
//! timeout after a commit, a spool replayed by another replica) is stored
//! once. At shutdown whatever could not be written is spooled, and the next
//! start replays the spool.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::domain::usage::NewUsageEvent;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
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

/// Time-ordered event ids (UUID version 7 layout): the millisecond, then 42
/// bits drawn once per process, then a per-process counter. Unique across
/// replicas without a random draw per request, and appended at the right
/// edge of the primary-key index instead of scattered over it.
pub struct EventIds {
    node: u64,
    counter: AtomicU32,
}

impl EventIds {
    pub fn new() -> Self {
        Self {
            node: rand::random::<u64>() & ((1 << 42) - 1),
            counter: AtomicU32::new(rand::random()),
        }
    }

    /// The next id, stamped with `at`.
    pub fn next(&self, at: OffsetDateTime) -> Uuid {
        let ms = (at.unix_timestamp_nanos() / 1_000_000).clamp(0, (1 << 48) - 1) as u64;
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        // 74 bits after the version and variant: node (42) then counter (32).
        let tail = (u128::from(self.node) << 32) | u128::from(count);
        let rand_a = ((tail >> 62) & 0x0fff) as u16;
        let rand_b = (tail as u64) & ((1 << 62) - 1);
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        b[6..8].copy_from_slice(&(0x7000 | rand_a).to_be_bytes());
        b[8..].copy_from_slice(&((0b10 << 62) | rand_b).to_be_bytes());
        Uuid::from_bytes(b)
    }
}

impl Default for EventIds {
    fn default() -> Self {
        Self::new()
    }
}

/// What requests and the writer share.
struct Staged {
    events: Mutex<Vec<NewUsageEvent>>,
    /// Signalled when a batch is full.
    full: Notify,
    batch_size: usize,
    stopped: AtomicBool,
}

/// Where requests send their events.
#[derive(Clone)]
pub struct UsageSink {
    staged: Arc<Staged>,
    control: mpsc::UnboundedSender<Control>,
    metrics: GatewayMetrics,
    ids: Arc<EventIds>,
}

enum Control {
    /// Write everything now and answer (used by tests).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Write everything, spool what cannot be written, stop, answer.
    Close(tokio::sync::oneshot::Sender<()>),
}

impl UsageSink {
    /// A fresh event id stamped with `at`.
    pub fn event_id(&self, at: OffsetDateTime) -> Uuid {
        self.ids.next(at)
    }

    /// Records one event; never blocks on I/O and never fails the request.
    pub fn record(&self, event: NewUsageEvent) {
        let full = {
            let mut staged = self.staged.events.lock().expect("usage staging lock");
            // Read under the lock: the writer's last take cannot miss it.
            if self.staged.stopped.load(Ordering::Acquire) {
                drop(staged);
                tracing::error!("usage writer has stopped; an event was not recorded");
                return;
            }
            staged.push(event);
            staged.len() >= self.staged.batch_size
        };
        self.metrics.usage_buffered.inc();
        if full {
            self.staged.full.notify_one();
        }
    }

    /// At shutdown: writes every event sent so far, spools what Postgres
    /// does not take, and stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Waits until every event sent so far has been written (or Postgres
    /// refused a write).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Flush(tx)).is_ok() {
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
    let (control, rx) = mpsc::unbounded_channel();
    let staged = Arc::new(Staged {
        events: Mutex::new(Vec::with_capacity(config.batch_size)),
        full: Notify::new(),
        batch_size: config.batch_size.max(1),
        stopped: AtomicBool::new(false),
    });
    let writer = Writer {
        db,
        spool_file: config.spool_dir.join(format!(
            "usage-{}-{}.jsonl",
            std::process::id(),
            Uuid::new_v4().simple()
        )),
        config,
        staged: staged.clone(),
        pending: VecDeque::new(),
        metrics: metrics.clone(),
        healthy: true,
        own_spool: false,
        last_scan: None,
    };
    let handle = tokio::spawn(writer.run(rx));
    Ok((
        UsageSink {
            staged,
            control,
            metrics,
            ids: Arc::new(EventIds::new()),
        },
        handle,
    ))
}

struct Writer {
    db: PgPool,
    config: UsageConfig,
    spool_file: PathBuf,
    staged: Arc<Staged>,
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

    /// Moves what requests staged into `pending`, keeping the staging
    /// vector's capacity.
    fn take_staged(&mut self, spare: &mut Vec<NewUsageEvent>) {
        {
            let mut staged = self.staged.events.lock().expect("usage staging lock");
            std::mem::swap(&mut *staged, spare);
        }
        self.pending.extend(spare.drain(..));
    }

    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut backoff = self.config.flush_every;
        // While Postgres is away, writes are retried no sooner than this.
        let mut next_try = tokio::time::Instant::now();
        let mut flush_waiters = Vec::new();
        let mut spare = Vec::with_capacity(self.config.batch_size);
        let mut tick = tokio::time::interval(self.config.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.replay_spool().await;
        loop {
            // A full batch, the flush period, or a control message.
            let mut closed = false;
            let mut asked = false;
            let mut ticked = false;
            tokio::select! {
                () = self.staged.full.notified() => {}
                _ = tick.tick() => ticked = true,
                msg = control.recv() => {
                    asked = true;
                    match msg {
                        Some(Control::Flush(done)) => flush_waiters.push(done),
                        Some(Control::Close(done)) => { flush_waiters.push(done); closed = true; }
                        None => closed = true,
                    }
                }
            }
            if closed {
                // Nothing is accepted from now on; what came before is taken below.
                let _staged = self.staged.events.lock().expect("usage staging lock");
                self.staged.stopped.store(true, Ordering::Release);
            }
            self.take_staged(&mut spare);
            // Full batches are written as they fill; a partial one only at
            // the flush period or when asked, so that a busy gateway writes
            // few large batches, not many small ones. While Postgres is away,
            // writes wait for the back-off (or for someone asking).
            let mut partial = if ticked || asked {
                self.pending.len()
            } else {
                0
            };
            if self.healthy || asked || tokio::time::Instant::now() >= next_try {
                while self.pending.len() >= self.config.batch_size || partial > 0 {
                    let before = self.pending.len();
                    if self.write_batch().await {
                        backoff = self.config.flush_every;
                        partial = partial.saturating_sub(before - self.pending.len());
                        self.take_staged(&mut spare);
                    } else {
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
                        next_try = tokio::time::Instant::now() + backoff;
                        break;
                    }
                }
            }
            if self.pending.is_empty() && self.healthy && self.spool_due() {
                self.replay_spool().await;
            }
            if self.pending.len() > self.config.buffer_events
                || (closed && !self.pending.is_empty())
            {
                self.spool_pending().await;
            }
            if (asked && partial == 0) || self.pending.is_empty() || !self.healthy || closed {
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
    async fn spool_pending(&mut self) {
        let keep = if self.pending.len() > self.config.buffer_events {
            self.config.buffer_events / 2
        } else {
            0
        };
        let moved: Vec<NewUsageEvent> = self.pending.drain(keep..).collect();
        // File I/O off the runtime: it also accepts the gateway's connections.
        let file = self.spool_file.clone();
        let done = tokio::task::spawn_blocking(move || (append_spool(&file, &moved), moved)).await;
        match done {
            Ok((Ok(()), moved)) => {
                self.own_spool = true;
                self.metrics.usage_spooled.inc_by(moved.len() as u64);
                tracing::warn!(events = moved.len(), file = %self.spool_file.display(), "usage events spooled to disk");
            }
            Ok((Err(e), moved)) => {
                tracing::error!(error = %e, file = %self.spool_file.display(), "cannot spool usage events; keeping them in memory");
                self.pending.extend(moved);
            }
            Err(e) => {
                tracing::error!(error = %e, "the spool writer failed; those events are lost");
            }
        }
    }

    /// Writes every spool file in the directory (this process's and any a
    /// stopped replica left), deleting each once stored.
    async fn replay_spool(&mut self) {
        self.last_scan = Some(std::time::Instant::now());
        // Another running replica may still be appending to its own file;
        // only files left alone for a minute are taken over.
        let own = self.spool_file.clone();
        let dir = self.config.spool_dir.clone();
        let files: Vec<PathBuf> = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Vec::new();
            };
            entries
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
                .collect()
        })
        .await
        .unwrap_or_default();
        for file in files {
            let path = file.clone();
            let read = tokio::task::spawn_blocking(move || read_spool(&path))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let events = match read {
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
            if let Err(e) = tokio::fs::remove_file(&file).await {
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

/// Longest a batch write may take before it counts as failed (its events
/// stay pending; if it did commit, the retry is skipped as a repeat). Keeps
/// a hung connection from holding events past shutdown.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

async fn store(db: &PgPool, events: &[NewUsageEvent]) -> Result<(), app::domain::Error> {
    match tokio::time::timeout(STORE_TIMEOUT, store_now(db, events)).await {
        Ok(done) => done,
        Err(_) => Err(app::domain::Error::Database(sqlx::Error::Io(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the usage write took longer than 5 s",
            ),
        ))),
    }
}

async fn store_now(db: &PgPool, events: &[NewUsageEvent]) -> Result<(), app::domain::Error> {
    let mut conn = db.acquire().await?;
    app::domain::usage::record(&mut conn, events).await?;
    // Apart from the events: a key's last use is a hint, not a record.
    let mut keys: Vec<Uuid> = events.iter().filter_map(|e| e.key_id).collect();
    keys.sort_unstable();
    keys.dedup();
    app::domain::keys::touch(&mut *conn, &keys).await?;
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
    fn event_ids_are_version_7_unique_and_ordered_by_time() {
        let ids = EventIds::new();
        let t = OffsetDateTime::now_utc();
        let a = ids.next(t);
        let b = ids.next(t);
        let later = ids.next(t + Duration::from_millis(2));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
        assert!(later > a && later > b, "{a} {b} {later}");
        let ms = u64::from_be_bytes([
            0,
            0,
            a.as_bytes()[0],
            a.as_bytes()[1],
            a.as_bytes()[2],
            a.as_bytes()[3],
            a.as_bytes()[4],
            a.as_bytes()[5],
        ]);
        assert_eq!(i128::from(ms), t.unix_timestamp_nanos() / 1_000_000);
        // Another process (another node part) never makes the same id.
        let other = EventIds::new();
        assert_ne!(other.next(t), a);
        let many: std::collections::HashSet<Uuid> = (0..10_000).map(|_| ids.next(t)).collect();
        assert_eq!(many.len(), 10_000);
    }

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
