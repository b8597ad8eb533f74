//! API keys: requests and decisions, issuing (the secret is made and shown
//! once, when the requester collects an approved key), revocation, rotation,
//! team policy, and the look-ups the REST API and the gateway verify keys by.

pub mod token;

pub use token::{FormatError, Pepper};

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

fn validation(field: &str, message: impl Into<String>) -> Error {
    Error::Validation {
        field: field.into(),
        message: message.into(),
    }
}

fn scopes_from_db(scopes: &[String]) -> Vec<KeyScope> {
    scopes.iter().filter_map(|s| KeyScope::parse(s)).collect()
}

fn scopes_to_db(scopes: &[KeyScope]) -> Vec<String> {
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

/// The team's key and gateway policy.
pub async fn policy(conn: &mut PgConnection, actor: &Actor, slug: &str) -> Result<TeamPolicy> {
    let id = visible_id(&mut *conn, actor, slug).await?;
    fetch_policy(&mut *conn, id).await
}

async fn fetch_policy(conn: impl PgExecutor<'_>, team_id: Uuid) -> Result<TeamPolicy> {
    Ok(sqlx::query_as!(
        TeamPolicy,
        r#"SELECT allowed_models, self_service_keys, max_key_days, rpm_limit, tpm_limit, monthly_token_quota
             FROM teams WHERE id = $1"#,
        team_id
    )
    .fetch_one(conn)
    .await?)
}

/// Changes a team's policy (admins only). Run it in a transaction.
pub async fn update_policy(
    tx: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    patch: &TeamPolicyPatch,
) -> Result<TeamPolicy> {
    let id = visible_id(&mut *tx, actor, slug).await?;
    actor.authorize(Action::EditPolicy(id))?;
    let before = fetch_policy(&mut *tx, id).await?;
    let mut after = before.clone();
    if let Some(models) = &patch.allowed_models {
        after.allowed_models = match models {
            None => None,
            // An empty list is a real policy: no model at all.
            Some(list) => Some(key_rules::models("allowed_models", list)?.unwrap_or_default()),
        };
    }
    if let Some(v) = patch.self_service_keys {
        after.self_service_keys = v;
    }
    if let Some(days) = patch.max_key_days {
        key_rules::KEY_DAYS.check("max_key_days", days.into())?;
        after.max_key_days = days;
    }
    for (field, value, slot) in [
        ("rpm_limit", patch.rpm_limit, &mut after.rpm_limit),
        ("tpm_limit", patch.tpm_limit, &mut after.tpm_limit),
    ] {
        if let Some(v) = value {
            if v.is_some_and(|v| !key_rules::PER_MINUTE.contains(v.into())) {
                return Err(validation(
                    field,
                    "must be a positive number, or null for no limit",
                ));
            }
            *slot = v;
        }
    }
    if let Some(v) = patch.monthly_token_quota {
        if v.is_some_and(|v| !key_rules::MONTHLY_TOKENS.contains(v)) {
            return Err(validation(
                "monthly_token_quota",
                "must be a positive number, or null for no quota",
            ));
        }
        after.monthly_token_quota = v;
    }
    if after == before {
        return Ok(after);
    }
    sqlx::query!(
        r#"UPDATE teams SET allowed_models = $2, self_service_keys = $3, max_key_days = $4,
                  rpm_limit = $5, tpm_limit = $6, monthly_token_quota = $7, updated_at = now()
            WHERE id = $1"#,
        id,
        after.allowed_models.as_deref(),
        after.self_service_keys,
        after.max_key_days,
        after.rpm_limit,
        after.tpm_limit,
        after.monthly_token_quota,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "team.policy_updated",
            target_kind: "team",
            target_id: slug,
            team_id: Some(id),
            before: Some(json!(before)),
            after: Some(json!(after)),
        },
    )
    .await?;
    Ok(after)
}

// ---------------------------------------------------------------- requests

/// Filters for [`fetch_requests`]; `None` matches everything.
#[derive(Default)]
struct RequestFilter {
    team: Option<Uuid>,
    requester: Option<Uuid>,
    id: Option<Uuid>,
    state: Option<KeyRequestState>,
}

async fn fetch_requests(conn: impl PgExecutor<'_>, f: RequestFilter) -> Result<Vec<KeyRequest>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, t.slug AS team, u.username AS requester, r.name, r.purpose, r.models,
                  r.scopes, r.expires_in_days, r.state, d.username AS "decided_by?", r.decided_at,
                  r.reason, r.created_at
             FROM key_requests r
             JOIN teams t ON t.id = r.team_id
             JOIN users u ON u.id = r.requester_id
             LEFT JOIN users d ON d.id = r.decided_by
            WHERE ($1::uuid IS NULL OR r.team_id = $1)
              AND ($2::uuid IS NULL OR r.requester_id = $2)
              AND ($3::uuid IS NULL OR r.id = $3)
              AND ($4::text IS NULL OR r.state = $4)
            ORDER BY r.created_at DESC
            LIMIT 500"#,
        f.team,
        f.requester,
        f.id,
        f.state.map(KeyRequestState::as_str),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KeyRequest {
            id: r.id,
            team: r.team,
            requester: r.requester,
            name: r.name,
            purpose: r.purpose,
            models: r.models,
            scopes: scopes_from_db(&r.scopes),
            expires_in_days: r.expires_in_days,
            state: KeyRequestState::parse(&r.state).unwrap_or(KeyRequestState::Pending),
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            reason: r.reason,
            created_at: r.created_at,
        })
        .collect())
}

async fn one_request(conn: impl PgExecutor<'_>, id: Uuid) -> Result<KeyRequest> {
    fetch_requests(
        conn,
        RequestFilter {
            id: Some(id),
            ..Default::default()
        },
    )
    .await?
    .pop()
    .ok_or(Error::NotFound)
}

/// A member asks for a key. With the team's self-service policy the key is
/// approved and issued at once (the outcome then carries the secret).
/// Run it in a transaction.
pub async fn request(
    tx: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    new: &NewKeyRequest,
    pepper: &Pepper,
) -> Result<KeyRequestOutcome> {
    let team_id = visible_id(&mut *tx, actor, slug).await?;
    actor.authorize(Action::RequestKey(team_id))?;
    let policy = fetch_policy(&mut *tx, team_id).await?;
    key_rules::name(&new.name)?;
    key_rules::PURPOSE.check("purpose", &new.purpose)?;
    let models = key_rules::models("models", new.models.as_deref().unwrap_or_default())?;
    check_within_team(models.as_deref(), policy.allowed_models.as_deref())?;
    let mut scopes = new
        .scopes
        .clone()
        .unwrap_or_else(|| vec![KeyScope::Inference]);
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    if scopes.is_empty() {
        return Err(validation(
            "scopes",
            "choose at least one of inference, manage",
        ));
    }
    let days = new.expires_in_days.unwrap_or(policy.max_key_days);
    if !(1..=policy.max_key_days).contains(&days) {
        return Err(validation(
            "expires_in_days",
            format!(
                "must be between 1 and {} (this team's maximum)",
                policy.max_key_days
            ),
        ));
    }
    let id = sqlx::query_scalar!(
        r#"INSERT INTO key_requests (team_id, requester_id, name, purpose, models, scopes, expires_in_days)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
        team_id,
        actor.user.id,
        new.name.trim(),
        new.purpose.trim(),
        models.as_deref(),
        &scopes_to_db(&scopes),
        days,
    )
    .fetch_one(&mut *tx)
    .await?;
    let request = one_request(&mut *tx, id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.requested",
            target_kind: "key_request",
            target_id: &id.to_string(),
            team_id: Some(team_id),
            before: None,
            after: Some(json!({
                "name": request.name, "purpose": request.purpose, "models": request.models,
                "scopes": request.scopes, "expires_in_days": days,
            })),
        },
    )
    .await?;
    if !policy.self_service_keys {
        return Ok(KeyRequestOutcome {
            request,
            issued: None,
        });
    }
    sqlx::query!(
        r#"UPDATE key_requests SET state = 'approved', decided_by = $2, decided_at = now(),
                  reason = 'self-service issuance' WHERE id = $1"#,
        id,
        actor.user.id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.approved",
            target_kind: "key_request",
            target_id: &id.to_string(),
            team_id: Some(team_id),
            before: Some(json!({ "state": "pending" })),
            after: Some(json!({ "state": "approved", "self_service": true })),
        },
    )
    .await?;
    let issued = claim(tx, actor, id, pepper).await?;
    Ok(KeyRequestOutcome {
        request: one_request(&mut *tx, id).await?,
        issued: Some(issued),
    })
}

fn check_within_team(models: Option<&[String]>, team: Option<&[String]>) -> Result<()> {
    let (Some(models), Some(team)) = (models, team) else {
        // Absent key list: the key follows the team's list (checked by the
        // gateway at use). A team without a list allows any model.
        return Ok(());
    };
    for m in models {
        if !team.contains(m) {
            return Err(validation(
                "models",
                format!(
                    "{m} is not one of this team's models ({})",
                    if team.is_empty() {
                        "none".to_owned()
                    } else {
                        team.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Key requests of a team: all of them for its owners and admins, one's own
/// for members.
pub async fn list_requests(
    conn: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    state: Option<KeyRequestState>,
) -> Result<Vec<KeyRequest>> {
    let team = visible_id(&mut *conn, actor, slug).await?;
    let requester = match actor.authorize(Action::ManageTeamKeys(team)) {
        Ok(()) => None,
        Err(_) => Some(actor.user.id),
    };
    fetch_requests(
        &mut *conn,
        RequestFilter {
            team: Some(team),
            requester,
            state,
            ..Default::default()
        },
    )
    .await
}

/// Every team's key requests (admins).
pub async fn list_all_requests(
    conn: &mut PgConnection,
    actor: &Actor,
    state: Option<KeyRequestState>,
) -> Result<Vec<KeyRequest>> {
    actor.authorize(Action::ListAllKeys)?;
    fetch_requests(
        &mut *conn,
        RequestFilter {
            state,
            ..Default::default()
        },
    )
    .await
}

/// The request row, locked, after checking the actor may see its team.
async fn locked_request(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<(Uuid, Uuid, KeyRequestState)> {
    let row = sqlx::query!(
        "SELECT team_id, requester_id, state FROM key_requests WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    actor.authorize(Action::ViewTeam(row.team_id))?;
    let state = KeyRequestState::parse(&row.state).unwrap_or(KeyRequestState::Pending);
    Ok((row.team_id, row.requester_id, state))
}

/// An owner or admin approves or denies a pending request. Run it in a
/// transaction.
pub async fn decide(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    decision: &KeyDecision,
) -> Result<KeyRequest> {
    let (team_id, _, state) = locked_request(tx, actor, id).await?;
    actor.authorize(Action::ManageTeamKeys(team_id))?;
    if state != KeyRequestState::Pending {
        return Err(Error::Conflict(format!(
            "this request is already {}",
            state.as_str()
        )));
    }
    match (decision.approve, decision.reason.as_deref()) {
        (true, Some(r)) => key_rules::REASON.check("reason", r)?,
        (true, None) => {}
        (false, Some(r)) if !r.trim().is_empty() => key_rules::REASON_GIVEN.check("reason", r)?,
        (false, _) => {
            return Err(validation(
                "reason",
                "say why the request is denied; the requester sees it",
            ));
        }
    }
    let reason = decision
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let new_state = if decision.approve {
        KeyRequestState::Approved
    } else {
        KeyRequestState::Denied
    };
    sqlx::query!(
        "UPDATE key_requests SET state = $2, decided_by = $3, decided_at = now(), reason = $4 WHERE id = $1",
        id,
        new_state.as_str(),
        actor.user.id,
        reason,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: if decision.approve {
                "key.approved"
            } else {
                "key.denied"
            },
            target_kind: "key_request",
            target_id: &id.to_string(),
            team_id: Some(team_id),
            before: Some(json!({ "state": "pending" })),
            after: Some(json!({ "state": new_state.as_str(), "reason": reason })),
        },
    )
    .await?;
    one_request(&mut *tx, id).await
}

/// The requester takes back a pending request. Run it in a transaction.
pub async fn withdraw(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<KeyRequest> {
    let (team_id, requester, state) = locked_request(tx, actor, id).await?;
    if requester != actor.user.id {
        return Err(Error::Forbidden);
    }
    if state != KeyRequestState::Pending {
        return Err(Error::Conflict(format!(
            "this request is already {}",
            state.as_str()
        )));
    }
    sqlx::query!(
        "UPDATE key_requests SET state = 'withdrawn' WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.request_withdrawn",
            target_kind: "key_request",
            target_id: &id.to_string(),
            team_id: Some(team_id),
            before: Some(json!({ "state": "pending" })),
            after: Some(json!({ "state": "withdrawn" })),
        },
    )
    .await?;
    one_request(&mut *tx, id).await
}

/// The requester collects an approved key: the secret is made now and
/// returned once; only its HMAC is kept. Run it in a transaction.
pub async fn claim(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    pepper: &Pepper,
) -> Result<IssuedKey> {
    let (team_id, requester, state) = locked_request(tx, actor, id).await?;
    if requester != actor.user.id {
        // Not even an owner or admin may see someone else's secret.
        return Err(Error::Forbidden);
    }
    match state {
        KeyRequestState::Approved => {}
        KeyRequestState::Issued => {
            return Err(Error::Conflict(
                "this key was already collected; its secret is shown only once. Rotate the key for a new secret".into(),
            ));
        }
        other => {
            return Err(Error::Conflict(format!(
                "this request is {}, not approved",
                other.as_str()
            )));
        }
    }
    let r = sqlx::query!(
        "SELECT name, purpose, models, scopes, expires_in_days FROM key_requests WHERE id = $1",
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (secret, public_id, raw) = token::generate();
    let key_id = sqlx::query_scalar!(
        r#"INSERT INTO api_keys (public_id, secret_hmac, team_id, owner_id, request_id, name, purpose,
                                 models, scopes, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(days => $10))
           RETURNING id"#,
        public_id,
        pepper.hmac(&raw),
        team_id,
        actor.user.id,
        id,
        r.name,
        r.purpose,
        r.models.as_deref(),
        &r.scopes,
        r.expires_in_days,
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!("UPDATE key_requests SET state = 'issued' WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    let key = one_key(&mut *tx, key_id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.issued",
            target_kind: "api_key",
            target_id: &key.prefix,
            team_id: Some(team_id),
            before: None,
            after: Some(key_audit(&key)),
        },
    )
    .await?;
    Ok(IssuedKey { key, secret })
}

fn key_audit(k: &ApiKey) -> serde_json::Value {
    json!({
        "key": k.prefix, "name": k.name, "owner": k.owner, "models": k.models,
        "scopes": k.scopes, "expires_at": k.expires_at.unix_timestamp(),
        "revoked": k.revoked_at.is_some(),
    })
}

// ---------------------------------------------------------------- keys

#[derive(Default)]
struct KeyFilter {
    team: Option<Uuid>,
    owner: Option<Uuid>,
    id: Option<Uuid>,
}

async fn fetch_keys(conn: impl PgExecutor<'_>, f: KeyFilter) -> Result<Vec<ApiKey>> {
    let now = OffsetDateTime::now_utc();
    let rows = sqlx::query!(
        r#"SELECT k.id, k.public_id, t.slug AS team, u.username AS owner, k.name, k.purpose,
                  k.models, k.scopes, k.created_at, k.expires_at, k.revoked_at, k.last_used_at,
                  k.rotated_from
             FROM api_keys k
             JOIN teams t ON t.id = k.team_id
             JOIN users u ON u.id = k.owner_id
            WHERE ($1::uuid IS NULL OR k.team_id = $1)
              AND ($2::uuid IS NULL OR k.owner_id = $2)
              AND ($3::uuid IS NULL OR k.id = $3)
            ORDER BY (k.revoked_at IS NULL AND k.expires_at > now()) DESC, k.created_at DESC
            LIMIT 500"#,
        f.team,
        f.owner,
        f.id,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiKey {
            id: r.id,
            prefix: token::display_prefix(&r.public_id),
            team: r.team,
            owner: r.owner,
            name: r.name,
            purpose: r.purpose,
            models: r.models,
            scopes: scopes_from_db(&r.scopes),
            state: key_state(r.expires_at, r.revoked_at, now),
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            rotated_from: r.rotated_from,
        })
        .collect())
}

async fn one_key(conn: impl PgExecutor<'_>, id: Uuid) -> Result<ApiKey> {
    fetch_keys(
        conn,
        KeyFilter {
            id: Some(id),
            ..Default::default()
        },
    )
    .await?
    .pop()
    .ok_or(Error::NotFound)
}

/// A team's keys: all of them for owners and admins, one's own for members.
pub async fn list_keys(conn: &mut PgConnection, actor: &Actor, slug: &str) -> Result<Vec<ApiKey>> {
    let team = visible_id(&mut *conn, actor, slug).await?;
    let owner = match actor.authorize(Action::ManageTeamKeys(team)) {
        Ok(()) => None,
        Err(_) => Some(actor.user.id),
    };
    fetch_keys(
        &mut *conn,
        KeyFilter {
            team: Some(team),
            owner,
            ..Default::default()
        },
    )
    .await
}

/// Every key of every team (admins).
pub async fn list_all_keys(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<ApiKey>> {
    actor.authorize(Action::ListAllKeys)?;
    fetch_keys(&mut *conn, KeyFilter::default()).await
}

/// The key row, locked: `(team, owner)`, once the actor may act on it (its
/// owner, or the team's owners and admins).
async fn locked_key(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<(Uuid, Uuid)> {
    let row = sqlx::query!(
        "SELECT team_id, owner_id FROM api_keys WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    actor.authorize(Action::ViewTeam(row.team_id))?;
    if row.owner_id != actor.user.id {
        actor
            .authorize(Action::ManageTeamKeys(row.team_id))
            // A member does not learn about others' keys.
            .map_err(|_| Error::NotFound)?;
    }
    Ok((row.team_id, row.owner_id))
}

/// Revokes a key now: its owner, the team's owners or an admin. Every
/// gateway drops it within a second. Run it in a transaction.
pub async fn revoke(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    reason: Option<&str>,
) -> Result<ApiKey> {
    let (team_id, _) = locked_key(tx, actor, id).await?;
    if let Some(r) = reason {
        key_rules::REASON.check("reason", r)?;
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let before = one_key(&mut *tx, id).await?;
    if before.revoked_at.is_some() {
        return Err(Error::Conflict("this key is already revoked".into()));
    }
    sqlx::query!(
        "UPDATE api_keys SET revoked_at = now(), revoked_by = $2, revoke_reason = $3 WHERE id = $1",
        id,
        actor.user.id,
        reason
    )
    .execute(&mut *tx)
    .await?;
    let after = one_key(&mut *tx, id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.revoked",
            target_kind: "api_key",
            target_id: &after.prefix,
            team_id: Some(team_id),
            before: Some(key_audit(&before)),
            after: Some(json!({ "revoked": true, "reason": reason })),
        },
    )
    .await?;
    Ok(after)
}

/// Replaces a key with a new one (same name, team, models, scopes and
/// lifetime within the team's maximum); the old key stays valid for
/// `grace_hours` (0: revoked now). Only the key's owner rotates, since the
/// new secret is shown to whoever does. Run it in a transaction.
pub async fn rotate(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    grace_hours: Option<i32>,
    pepper: &Pepper,
) -> Result<IssuedKey> {
    let (team_id, owner) = locked_key(tx, actor, id).await?;
    if owner != actor.user.id {
        return Err(Error::Forbidden);
    }
    if actor.role_in(team_id).is_none() {
        return Err(Error::Forbidden);
    }
    let grace = grace_hours.unwrap_or(DEFAULT_GRACE_HOURS);
    key_rules::GRACE_HOURS.check("grace_hours", grace.into())?;
    let old = one_key(&mut *tx, id).await?;
    if matches!(old.state, KeyState::Revoked | KeyState::Expired) {
        return Err(Error::Conflict(
            "only a live key can be rotated; request a new one".into(),
        ));
    }
    let policy = fetch_policy(&mut *tx, team_id).await?;
    let lifetime = (old.expires_at - old.created_at)
        .min(Duration::days(i64::from(policy.max_key_days)))
        .max(Duration::hours(1));
    let (secret, public_id, raw) = token::generate();
    let new_id = sqlx::query_scalar!(
        r#"INSERT INTO api_keys (public_id, secret_hmac, team_id, owner_id, request_id, name, purpose,
                                 models, scopes, rpm_limit, tpm_limit, expires_at, rotated_from)
           SELECT $1, $2, team_id, owner_id, request_id, name, purpose, models, scopes,
                  rpm_limit, tpm_limit, now() + make_interval(secs => $3), id
             FROM api_keys WHERE id = $4
           RETURNING id"#,
        public_id,
        pepper.hmac(&raw),
        lifetime.whole_seconds() as f64,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if grace == 0 {
        sqlx::query!(
            "UPDATE api_keys SET revoked_at = now(), revoked_by = $2, revoke_reason = 'rotated' WHERE id = $1",
            id,
            actor.user.id
        )
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE api_keys SET expires_at = LEAST(expires_at, now() + make_interval(hours => $2)) WHERE id = $1",
            id,
            grace
        )
        .execute(&mut *tx)
        .await?;
    }
    let key = one_key(&mut *tx, new_id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "key.rotated",
            target_kind: "api_key",
            target_id: &old.prefix,
            team_id: Some(team_id),
            before: Some(key_audit(&old)),
            after: Some(json!({ "replaced_by": key.prefix, "grace_hours": grace })),
        },
    )
    .await?;
    Ok(IssuedKey { key, secret })
}

// ---------------------------------------------------------------- verification

/// Everything the gateway needs to judge a request made with a key.
#[derive(Clone, Debug)]
pub struct KeyGrant {
    pub key_id: Uuid,
    pub public_id: String,
    pub secret_hmac: Vec<u8>,
    pub team_id: Uuid,
    pub team: String,
    pub owner_id: Uuid,
    /// The key's owner still belongs to the team.
    pub owner_is_member: bool,
    pub scopes: Vec<KeyScope>,
    /// The key's own list (already within the team's when issued).
    pub key_models: Option<Vec<String>>,
    pub team_models: Option<Vec<String>>,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    pub key_rpm: Option<i32>,
    pub key_tpm: Option<i32>,
    pub team_rpm: Option<i32>,
    pub team_tpm: Option<i32>,
    pub monthly_token_quota: Option<i64>,
}

impl KeyGrant {
    /// Whether `model` (normalised) may be called with this key: it must be
    /// in the team's list, and in the key's if the key has one.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allows_normalized_model(&key_rules::normalize_model(model))
    }

    /// [`Self::allows_model`] for a name already through
    /// [`key_rules::normalize_model`].
    pub fn allows_normalized_model(&self, m: &str) -> bool {
        self.team_models
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == m))
            && self
                .key_models
                .as_ref()
                .is_none_or(|k| k.iter().any(|x| x == m))
    }

    /// Usable at `now` (not revoked, not expired, owner still in the team).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        !self.revoked && self.expires_at > now && self.owner_is_member
    }
}

/// Looks a key up by its public id (no actor: the caller verifies the
/// secret against `secret_hmac` itself).
pub async fn grant(conn: impl PgExecutor<'_>, public_id: &str) -> Result<Option<KeyGrant>> {
    let row = sqlx::query!(
        r#"SELECT k.id, k.public_id, k.secret_hmac, k.team_id, t.slug, k.owner_id, k.scopes,
                  k.models, t.allowed_models, k.expires_at, k.revoked_at, k.rpm_limit, k.tpm_limit,
                  t.rpm_limit AS team_rpm, t.tpm_limit AS team_tpm, t.monthly_token_quota,
                  EXISTS (SELECT 1 FROM memberships m WHERE m.team_id = k.team_id AND m.user_id = k.owner_id)
                    AS "owner_is_member!"
             FROM api_keys k JOIN teams t ON t.id = k.team_id
            WHERE k.public_id = $1"#,
        public_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| KeyGrant {
        key_id: r.id,
        public_id: r.public_id,
        secret_hmac: r.secret_hmac,
        team_id: r.team_id,
        team: r.slug,
        owner_id: r.owner_id,
        owner_is_member: r.owner_is_member,
        scopes: scopes_from_db(&r.scopes),
        key_models: r.models,
        team_models: r.allowed_models,
        expires_at: r.expires_at,
        revoked: r.revoked_at.is_some(),
        key_rpm: r.rpm_limit,
        key_tpm: r.tpm_limit,
        team_rpm: r.team_rpm,
        team_tpm: r.team_tpm,
        monthly_token_quota: r.monthly_token_quota,
    }))
}

/// Records that keys were used (the gateway batches these).
pub async fn touch(conn: impl PgExecutor<'_>, key_ids: &[Uuid]) -> Result<()> {
    sqlx::query!(
        r#"UPDATE api_keys SET last_used_at = now()
            WHERE id = ANY($1) AND (last_used_at IS NULL OR last_used_at < now() - interval '30 seconds')"#,
        key_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a bearer token was refused on the REST API.
#[derive(Debug, PartialEq, Eq)]
pub enum BearerRefusal {
    /// Not a key, unknown, wrong secret, expired, revoked, or its owner left
    /// the team: all answered alike.
    Invalid(&'static str),
    /// A valid key without the `manage` scope.
    NoManageScope,
}

/// Turns a `manage`-scoped key into the [`Actor`] it acts as: its owner,
/// limited to the key's team.
pub async fn authenticate_bearer(
    db: &sqlx::PgPool,
    bearer: &str,
    pepper: &Pepper,
    request_id: Option<String>,
) -> Result<std::result::Result<Actor, BearerRefusal>> {
    let Ok(parsed) = token::parse(bearer) else {
        return Ok(Err(BearerRefusal::Invalid(
            "the bearer token is not a Corral API key",
        )));
    };
    let Some(grant) = grant(db, parsed.public_id).await? else {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    };
    if !pepper.verify(parsed.secret, &grant.secret_hmac)
        || !grant.is_live(OffsetDateTime::now_utc())
    {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    }
    if !grant.scopes.contains(&KeyScope::Manage) {
        return Ok(Err(BearerRefusal::NoManageScope));
    }
    let Some(mut actor) =
        super::identity::load_actor(db, grant.owner_id, Via::ApiKey, request_id).await?
    else {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    };
    actor.teams.retain(|id, _| *id == grant.team_id);
    touch(db, &[grant.key_id]).await?;
    Ok(Ok(actor))
}
