//! Cluster operations (pull, delete, copy, scale, create) and their per-pod
//! steps: the types the operation pages, the server functions and the REST
//! API share.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// `ollama pull` on every pod of the workload.
    Pull,
    /// Remove a model from every pod.
    Delete,
    /// Copy a model to a new name on every pod.
    Copy,
    /// Change the workload's replicas (or its HPA's bounds).
    Scale,
    /// Build a model from a Modelfile on every pod.
    Create,
}

impl OperationKind {
    pub const ALL: [Self; 5] = [
        Self::Pull,
        Self::Delete,
        Self::Copy,
        Self::Scale,
        Self::Create,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Delete => "delete",
            Self::Copy => "copy",
            Self::Scale => "scale",
            Self::Create => "create",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Waiting for the next maintenance window.
    Scheduled,
    /// Waiting for a runner.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationState {
    pub const ALL: [Self; 6] = [
        Self::Scheduled,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// It will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where one pod's part of an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// One pod's part of an operation, with its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperationStep {
    /// The pod (or `shared` for a shared models volume, or the workload for
    /// a scale).
    pub pod: String,
    pub state: StepState,
    /// Ollama's latest status line, e.g. `pulling 6a0746a1ec1a`.
    pub status: String,
    /// Bytes done and to do over every layer seen so far (0 and 0 before
    /// any layer is known).
    pub completed: i64,
    pub total: i64,
    /// Bytes per second lately.
    pub rate: f64,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl OperationStep {
    /// Percent done, when the size is known.
    pub fn percent(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.completed as f64 / self.total as f64 * 100.0).min(100.0))
    }

    /// Seconds left at the current rate, when both are known.
    pub fn eta_secs(&self) -> Option<u64> {
        (self.state == StepState::Running && self.rate > 0.0 && self.total > self.completed)
            .then(|| ((self.total - self.completed) as f64 / self.rate).ceil() as u64)
    }
}

/// An operation as the pages and the API show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Operation {
    pub id: Uuid,
    pub kind: OperationKind,
    pub workload: String,
    /// The model (pull, delete, create) or the source (copy).
    pub model: Option<String>,
    /// The destination of a copy.
    pub destination: Option<String>,
    /// The replicas a scale asked for.
    pub replicas: Option<i32>,
    pub state: OperationState,
    /// The team it was asked for; none for the platform's own.
    pub team: Option<String>,
    pub requested_by: String,
    pub attempts: i32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    /// What the result means, e.g. that an HPA's bounds were changed.
    pub outcome: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub steps: Vec<OperationStep>,
}

/// One line of an operation's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperationLogLine {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub pod: Option<String>,
    pub line: String,
}

/// An operation with its log, for its own page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperationDetail {
    #[serde(flatten)]
    pub operation: Operation,
    pub log: Vec<OperationLogLine>,
}

/// What to start: the body of `POST /api/v1/operations`, by `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewOperation {
    /// Pull a model onto every pod of the workload.
    Pull {
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
        model: String,
        /// The workload; the configured default when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
        workload: Option<String>,
        /// The team it is for: team owners act for their own team; admins
        /// for any team, or for the platform when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::team))]
        team: Option<String>,
        /// Wait for the next maintenance window instead of starting now.
        #[serde(default)]
        in_next_window: bool,
        /// Pull even when the model's size, told from its tag (e.g.
        /// `:70b`), is more than one pod's GPU memory.
        #[serde(default)]
        force: bool,
    },
    /// Remove a model from every pod.
    Delete {
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
        model: String,
        /// The workload; the configured default when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
        workload: Option<String>,
        /// The team it is for: team owners act for their own team; admins
        /// for any team, or for the platform when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::team))]
        team: Option<String>,
        /// Wait for the next maintenance window instead of starting now.
        #[serde(default)]
        in_next_window: bool,
    },
    /// Copy a model to a new name on every pod.
    Copy {
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
        model: String,
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
        destination: String,
        /// The workload; the configured default when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
        workload: Option<String>,
        /// The team it is for: team owners act for their own team; admins
        /// for any team, or for the platform when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::team))]
        team: Option<String>,
        /// Wait for the next maintenance window instead of starting now.
        #[serde(default)]
        in_next_window: bool,
    },
    /// Set the workload's replicas (admins), or its autoscaler's bounds
    /// when one owns them.
    Scale {
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::replicas))]
        replicas: i32,
        /// The workload; the configured default when absent.
        #[serde(default)]
        #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
        workload: Option<String>,
        /// Wait for the next maintenance window instead of starting now.
        #[serde(default)]
        in_next_window: bool,
    },
}

/// Where and for whom an operation runs, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationScope<'a> {
    pub workload: Option<&'a str>,
    /// The team's slug; none for the platform.
    pub team: Option<&'a str>,
    pub in_next_window: bool,
}

impl NewOperation {
    pub fn kind(&self) -> OperationKind {
        match self {
            Self::Pull { .. } => OperationKind::Pull,
            Self::Delete { .. } => OperationKind::Delete,
            Self::Copy { .. } => OperationKind::Copy,
            Self::Scale { .. } => OperationKind::Scale,
        }
    }

    pub fn scope(&self) -> OperationScope<'_> {
        match self {
            Self::Pull {
                workload,
                team,
                in_next_window,
                ..
            }
            | Self::Delete {
                workload,
                team,
                in_next_window,
                ..
            }
            | Self::Copy {
                workload,
                team,
                in_next_window,
                ..
            } => OperationScope {
                workload: workload.as_deref(),
                team: team.as_deref(),
                in_next_window: *in_next_window,
            },
            Self::Scale {
                workload,
                in_next_window,
                ..
            } => OperationScope {
                workload: workload.as_deref(),
                team: None,
                in_next_window: *in_next_window,
            },
        }
    }
}

/// Rules for operation fields, shared by the forms, the REST API, the
/// domain and the OpenAPI document.
pub mod operation_rules {
    use crate::model::text::{IntRule, Shape, TextRule};

    /// Replicas a scale may ask for at most, whatever a workload allows.
    pub const REPLICAS: IntRule = IntRule { min: 0, max: 1000 };
    /// A workload's name: a Kubernetes name.
    pub const WORKLOAD: TextRule = TextRule {
        max_chars: Some(63),
        not_blank: true,
        shape: Some(Shape {
            matches: is_workload,
            pattern: "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
            message: "is not a workload name (lower-case letters, digits and '-')",
        }),
    };

    fn is_workload(w: &str) -> bool {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !w.starts_with('-')
            && !w.ends_with('-')
    }

    /// The rules as the document states them (`schema_with` functions).
    #[cfg(feature = "ssr")]
    pub mod schema {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;

        use crate::model::text::schema::{inline, int, text};

        pub fn model() -> RefOr<Schema> {
            inline(text(&crate::model::key_rules::MODEL, false))
        }
        pub fn replicas() -> RefOr<Schema> {
            inline(int(&super::REPLICAS, false))
        }
        pub fn workload() -> RefOr<Schema> {
            inline(text(&super::WORKLOAD, true))
        }
        pub fn team() -> RefOr<Schema> {
            inline(text(&crate::model::rules::SLUG, true))
        }
    }
}

/// Which operations to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct OperationFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
}

/// A weekly maintenance window: operations may wait for the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaintenanceWindow {
    pub id: Uuid,
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub weekday: i16,
    /// `HH:MM`, in `time_zone`.
    pub starts: String,
    /// `HH:MM`, in `time_zone`, after `starts`.
    pub ends: String,
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
}

/// A window to add: the body of `POST /api/v1/maintenance-windows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMaintenanceWindow {
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 7))]
    pub weekday: i16,
    /// `HH:MM`.
    #[cfg_attr(feature = "ssr", schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub starts: String,
    /// `HH:MM`, after `starts`.
    #[cfg_attr(feature = "ssr", schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub ends: String,
    /// An IANA time zone, e.g. `Europe/Berlin` (one Postgres knows).
    #[cfg_attr(
        feature = "ssr",
        schema(
            pattern = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
            max_length = 64
        )
    )]
    pub time_zone: String,
}

/// The maintenance windows and when the next one opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaintenanceSchedule {
    pub windows: Vec<MaintenanceWindow>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_opens_at: Option<OffsetDateTime>,
}
