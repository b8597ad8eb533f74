//! Live counters of what the simulator has served, and their serialisable snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters (`GET /sim/stats`).
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests received on Ollama's endpoints (everything but `/sim/*`).
    pub requests: u64,
    /// Generations (chat, generate, embed) holding a slot right now.
    pub active: u64,
    /// Generations waiting for a slot right now.
    pub queued: u64,
    /// Generations that ran to their end.
    pub completed: u64,
    /// Generations stopped because the client went away.
    pub cancelled: u64,
    /// Generations that failed: injected errors and dropped connections.
    pub failed: u64,
    /// When the last generation was cancelled, in milliseconds since the Unix epoch.
    pub last_cancel_unix_ms: Option<u64>,
}

/// The counters behind [`SimStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Zero means "never".
    pub(crate) last_cancel_unix_ms: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SimStats {
        let last = self.last_cancel_unix_ms.load(Ordering::Acquire);
        SimStats {
            requests: self.requests.load(Ordering::Acquire),
            active: self.active.load(Ordering::Acquire),
            queued: self.queued.load(Ordering::Acquire),
            completed: self.completed.load(Ordering::Acquire),
            cancelled: self.cancelled.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            last_cancel_unix_ms: (last != 0).then_some(last),
        }
    }

    /// Zeroes the totals; `active` and `queued` describe live requests and stay.
    pub(crate) fn reset(&self) {
        for counter in [
            &self.requests,
            &self.completed,
            &self.cancelled,
            &self.failed,
            &self.last_cancel_unix_ms,
        ] {
            counter.store(0, Ordering::Release);
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn drop_one(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}
