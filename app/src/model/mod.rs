//! Serde types shared by the UI, the server functions and the REST API. No I/O.

mod audit;
mod error;
mod identity;
mod keys;
mod status;

pub use error::AppError;
pub use status::{DependencyState, DependencyStatus, StatusReport};
mod profile;

pub use audit::{AuditEntry, AuditFilter, Page};
pub use identity::{
    Me, Member, MembershipSource, MyTeam, NewMember, NewTeam, Team, TeamDetail, TeamPatch,
    TeamRole, User, rules,
};
pub use keys::{
    ApiKey, IssuedKey, KeyDecision, KeyRequest, KeyRequestOutcome, KeyRequestState, KeyScope,
    KeyState, ModelUsage, NewKeyRequest, RevokeKey, RotateKey, TeamPolicy, TeamPolicyPatch,
    UsageEvent, UsageSummary, key_rules,
};
pub use profile::{About, Profile};
