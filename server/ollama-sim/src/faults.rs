//! Failures queued by tests and applied to the next inference requests.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A failure to apply to the next `count` inference requests (chat, generate and
/// embeddings on both APIs), in the order faults were queued.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `{"error": "…"}` with this HTTP status instead of generating.
    Error {
        /// The HTTP status to answer with.
        status: u16,
        /// How many requests fail this way.
        count: u32,
    },
    /// Close the connection after streaming this many tokens.
    DropMidStream {
        /// Content chunks sent before the connection is cut.
        after_tokens: u32,
        /// How many requests are cut this way.
        count: u32,
    },
    /// Add this much time to the time to first token.
    Delay {
        /// Extra milliseconds before the first token.
        ms: u64,
        /// How many requests are delayed.
        count: u32,
    },
}

impl Fault {
    fn count_mut(&mut self) -> &mut u32 {
        match self {
            Self::Error { count, .. }
            | Self::DropMidStream { count, .. }
            | Self::Delay { count, .. } => count,
        }
    }
}

/// What one request suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    Error(StatusCode),
    Drop { after_tokens: u32 },
    Delay(Duration),
}

impl Injected {
    /// Extra time to first token.
    pub(crate) fn delay(self) -> Duration {
        match self {
            Self::Delay(d) => d,
            _ => Duration::ZERO,
        }
    }

    /// Tokens after which the connection is cut, if it is.
    pub(crate) fn drop_after(self) -> Option<u32> {
        match self {
            Self::Drop { after_tokens } => Some(after_tokens),
            _ => None,
        }
    }
}

/// Faults waiting for requests.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    pub(crate) fn push(&self, mut fault: Fault) {
        if *fault.count_mut() == 0 {
            return;
        }
        self.lock().push_back(fault);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The fault the next request suffers, used up as it goes.
    pub(crate) fn take(&self) -> Injected {
        let mut queue = self.lock();
        let Some(front) = queue.front_mut() else {
            return Injected::None;
        };
        let injected = match *front {
            Fault::Error { status, .. } => Injected::Error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            ),
            Fault::DropMidStream { after_tokens, .. } => Injected::Drop { after_tokens },
            Fault::Delay { ms, .. } => Injected::Delay(Duration::from_millis(ms)),
        };
        let count = front.count_mut();
        *count -= 1;
        if *count == 0 {
            queue.pop_front();
        }
        injected
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        // A panic while holding this lock cannot leave the queue half-updated.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_and_run_out() {
        let q = FaultQueue::default();
        q.push(Fault::Error {
            status: 503,
            count: 2,
        });
        q.push(Fault::Delay { ms: 5, count: 1 });
        q.push(Fault::DropMidStream {
            after_tokens: 1,
            count: 0,
        });
        assert_eq!(q.take(), Injected::Error(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(q.take(), Injected::Error(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(q.take(), Injected::Delay(Duration::from_millis(5)));
        assert_eq!(q.take(), Injected::None);
    }

    #[test]
    fn faults_serialise_with_a_mode_tag() {
        let f: Fault =
            serde_json::from_str(r#"{"mode":"drop_mid_stream","after_tokens":3,"count":1}"#)
                .unwrap();
        assert_eq!(
            f,
            Fault::DropMidStream {
                after_tokens: 3,
                count: 1
            }
        );
        assert_eq!(
            serde_json::to_value(Fault::Delay { ms: 1, count: 2 }).unwrap(),
            serde_json::json!({"mode": "delay", "ms": 1, "count": 2})
        );
    }
}
