//! Serde types shared by the UI, the server functions and the REST API. No I/O.

mod audit;
pub mod capacity;
mod cluster;
mod error;
mod identity;
mod keys;
pub mod modelfiles;
mod operations;
mod status;
pub mod text;
pub mod usage;

pub use error::AppError;
pub use status::{DependencyState, DependencyStatus, StatusReport};
mod profile;

#[cfg(feature = "ssr")]
pub use audit::paging_schema;
pub use audit::{AUDIT_CURSOR, AuditEntry, AuditFilter, PAGE_LIMIT, PAGE_LIMIT_DEFAULT, Page};
pub use cluster::{
    AutoscalerReport, ClusterReport, LoadedModelReport, PodModel, PodReport, WorkloadReport,
};
pub use identity::{
    Me, Member, MembershipSource, MyTeam, NewMember, NewTeam, Team, TeamDetail, TeamPatch,
    TeamRole, User, rules,
};
pub use keys::{
    ApiKey, IssuedKey, KeyDecision, KeyRequest, KeyRequestOutcome, KeyRequestState, KeyScope,
    KeyState, NewKeyRequest, RevokeKey, RotateKey, TeamPolicy, TeamPolicyPatch, key_rules,
};
pub use modelfiles::{
    Change, Deploy, DiffLine, DriftReport, DriftState, ImportModelfile, Modelfile,
    ModelfileDeployment, ModelfileDetail, ModelfileVersion, NewModelfile, NewVersion, PodDrift,
    Rollback, ValidateModelfile, Validation, VersionSummary,
};
pub use operations::{
    MaintenanceSchedule, MaintenanceWindow, NewMaintenanceWindow, NewOperation, Operation,
    OperationDetail, OperationFilter, OperationKind, OperationLogLine, OperationScope,
    OperationState, OperationStep, StepState, operation_rules,
};
pub use profile::{About, Profile};
pub use usage::{
    AdminUsage, Chart, ChartSeries, KeyUsage, MetricsState, ModelUsage, PALETTE, RangeChoice,
    TeamUsage, UsageDashboard, UsageEvent, UsageRange, UsageSummary,
};
