//! API keys: requests and decisions, issuing (the secret is made and shown
//! once, when the requester collects an approved key), revocation, rotation,
//! team policy, and the look-ups the REST API and the gateway verify keys by.

mod issued;
mod policy;
mod requests;
pub mod token;
mod verify;

pub use issued::*;
pub use policy::*;
pub use requests::*;
pub use token::{FormatError, Pepper};
pub use verify::*;

use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::audit::{self, By, Record};
use super::authz::{Action, Actor, Via};
use super::error::{Error, Result};
use super::teams::visible_id;
use crate::model::{
    ApiKey, IssuedKey, KeyDecision, KeyRequest, KeyRequestOutcome, KeyRequestState, KeyScope,
    KeyState, NewKeyRequest, TeamPolicy, TeamPolicyPatch, key_rules,
};

/// Keys expiring within this many days are flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 7;
/// Default grace period of a rotated key.
pub const DEFAULT_GRACE_HOURS: i32 = 24;

pub(super) fn validation(field: &str, message: impl Into<String>) -> Error {
    Error::Validation {
        field: field.into(),
        message: message.into(),
    }
}

pub(super) fn scopes_from_db(scopes: &[String]) -> Vec<KeyScope> {
    scopes.iter().filter_map(|s| KeyScope::parse(s)).collect()
}

pub(super) fn scopes_to_db(scopes: &[KeyScope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_owned()).collect()
}

/// A key's state at `now`.
pub fn key_state(
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> KeyState {
    if revoked_at.is_some() {
        KeyState::Revoked
    } else if expires_at <= now {
        KeyState::Expired
    } else if expires_at - now <= Duration::days(EXPIRY_WARNING_DAYS) {
        KeyState::Expiring
    } else {
        KeyState::Active
    }
}

// ---------------------------------------------------------------- policy
