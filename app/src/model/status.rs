//! The health of Corral's dependencies, as the status page and `/readyz` see it.

use serde::{Deserialize, Serialize};

/// How one dependency is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DependencyState {
    /// Reachable and doing its job.
    Healthy,
    /// Reachable, but not in the state Corral needs (for example, migrations pending).
    Degraded,
    /// Not reachable.
    Down,
}

impl DependencyState {
    /// The word shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Degraded => "Degraded",
            Self::Down => "Down",
        }
    }
}

/// One row of the status page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DependencyStatus {
    /// Stable identifier, e.g. `postgres`.
    pub id: String,
    /// Human name, e.g. `PostgreSQL`.
    pub name: String,
    pub state: DependencyState,
    /// What was found, in one sentence (version, pending migrations, the error).
    pub detail: String,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
}

/// Every dependency, checked at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusReport {
    /// RFC 3339 time the checks ran, with milliseconds.
    pub checked_at: String,
    /// Corral's version.
    pub version: String,
    /// `local` or `production`.
    pub profile: String,
    pub dependencies: Vec<DependencyStatus>,
}

impl StatusReport {
    /// True when every dependency is healthy.
    pub fn all_healthy(&self) -> bool {
        self.dependencies
            .iter()
            .all(|d| d.state == DependencyState::Healthy)
    }
}
