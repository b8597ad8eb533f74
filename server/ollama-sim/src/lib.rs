//! A protocol-faithful Ollama simulator.
//!
//! It answers Ollama's HTTP API (`/api/*`) and its OpenAI-compatible layer
//! (`/v1/*`) field for field, with deterministic lorem-ipsum "models", real
//! timing (time to first token, token gaps), Ollama's parallel slots and queue
//! limit, cancellation when a client goes away, faults tests can inject, and
//! a journal of the requests it received.
//! Corral uses it for gateway integration tests, benchmarks and the zero-setup
//! local run.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = ollama_sim::Sim::new(ollama_sim::SimConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(ollama_sim::serve(listener, sim.clone()));
//! # Ok(()) }
//! ```

mod catalog;
mod clock;
mod config;
mod embedding;
mod error;
mod faults;
mod generation;
mod journal;
mod names;
mod routes;
mod schema;
mod state;
mod stats;
mod text;

use std::sync::Arc;

pub use config::SimConfig;
pub use faults::Fault;
pub use journal::{BodyEnd, DEFAULT_JOURNAL_LEN, Framing, ReceivedRequest};
pub use routes::models::OLLAMA_VERSION;
pub use stats::SimStats;
pub use text::{MARKER_INVALID_JSON, MARKER_SCHEMA_VIOLATION, MARKER_TOKENS};

/// A simulated Ollama server. Clones share one state.
#[derive(Clone, Debug)]
pub struct Sim {
    shared: Arc<state::Shared>,
}

impl Sim {
    /// A simulator with `config`'s models installed and nothing loaded.
    pub fn new(config: SimConfig) -> Self {
        Self {
            shared: Arc::new(state::Shared::new(config)),
        }
    }

    /// Every endpoint: Ollama's, the OpenAI layer's and the `/sim` controls.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.shared))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// Queues a fault for the next inference request(s).
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// The last requests received on Ollama's endpoints, oldest first (as
    /// `GET /sim/requests`): head, framing and body as they arrived. A request
    /// whose body is still arriving is there with [`BodyEnd::Receiving`].
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.journal.snapshot()
    }

    /// Clears queued faults and the journal and zeroes the counters (as
    /// `POST /sim/reset`).
    pub fn reset(&self) {
        self.shared.faults.clear();
        self.shared.counters.reset();
        self.shared.journal.clear();
    }

    /// The configuration the simulator runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }
}

/// Serves `sim` on `listener` until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, sim: Sim) -> std::io::Result<()> {
    axum::serve(listener, sim.router()).await
}
