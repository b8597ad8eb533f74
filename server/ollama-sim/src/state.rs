//! The state every handler shares, and the parallel slots generations run in.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::catalog::Registry;
use crate::clock;
use crate::config::SimConfig;
use crate::faults::FaultQueue;
use crate::journal::Journal;
use crate::stats::Counters;

/// Everything behind a [`crate::Sim`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultQueue,
    pub(crate) journal: Journal,
    slots: Arc<Semaphore>,
    registry: Mutex<Registry>,
}

/// The queue is full: Ollama's `ErrMaxQueue`.
#[derive(Debug, thiserror::Error)]
#[error("server busy, please try again.  maximum pending requests exceeded")]
pub(crate) struct Busy;

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        let registry = Registry::new(&config.models);
        Self {
            slots: Arc::new(Semaphore::new(config.parallel.max(1))),
            counters: Counters::default(),
            faults: FaultQueue::default(),
            journal: Journal::new(config.journal_len),
            registry: Mutex::new(registry),
            config,
        }
    }

    /// The model registry; never held across an `.await`.
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a parallel slot, first in first out. Dropping the future (the
    /// client went away) leaves the queue.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Lease, Busy> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let ticket = QueueTicket::join(self)?;
                let permit = Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| Busy)?;
                drop(ticket);
                permit
            }
        };
        Counters::bump(&self.counters.active);
        Ok(Lease {
            shared: Arc::clone(self),
            outcome: Outcome::Running,
            _permit: permit,
        })
    }
}

/// A place in the queue, given back when dropped.
struct QueueTicket<'a>(&'a Shared);

impl<'a> QueueTicket<'a> {
    fn join(shared: &'a Shared) -> Result<Self, Busy> {
        let waiting = shared.counters.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let ticket = Self(shared);
        if usize::try_from(waiting).unwrap_or(usize::MAX) > shared.config.max_queue {
            return Err(Busy);
        }
        Ok(ticket)
    }
}

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        Counters::drop_one(&self.0.counters.queued);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Running,
    Completed,
    Failed,
}

/// A generation holding a slot. Dropped while still running means the client
/// went away: it counts as cancelled.
#[derive(Debug)]
pub(crate) struct Lease {
    shared: Arc<Shared>,
    outcome: Outcome,
    // Released after `drop` has updated the counters, so `active` never exceeds the slots.
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(crate) fn complete(&mut self) {
        self.outcome = Outcome::Completed;
    }

    pub(crate) fn fail(&mut self) {
        self.outcome = Outcome::Failed;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let counters = &self.shared.counters;
        match self.outcome {
            Outcome::Running => {
                counters
                    .last_cancel_unix_ms
                    .store(clock::unix_ms(), Ordering::Release);
                Counters::bump(&counters.cancelled);
                tracing::debug!("generation cancelled: the client went away");
            }
            Outcome::Completed => Counters::bump(&counters.completed),
            Outcome::Failed => Counters::bump(&counters.failed),
        }
        Counters::drop_one(&counters.active);
    }
}
