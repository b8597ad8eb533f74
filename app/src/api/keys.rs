//! Key requests, keys, team policy and usage for the portal's pages.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{
    ApiKey, AppError, IssuedKey, KeyRequest, KeyRequestOutcome, TeamPolicy, TeamRole,
};

/// Everything the team's key page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamKeysView {
    pub team: String,
    /// The viewer's username.
    pub me: String,
    pub my_role: Option<TeamRole>,
    /// The viewer approves requests and sees every key (owners, admins).
    pub can_manage: bool,
    pub policy: TeamPolicy,
    pub requests: Vec<KeyRequest>,
    pub keys: Vec<ApiKey>,
    /// Where clients send requests, e.g. `http://127.0.0.1:11435`.
    pub gateway_url: Option<String>,
}

/// Everything the admin's key page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllKeys {
    pub requests: Vec<KeyRequest>,
    pub keys: Vec<ApiKey>,
}

#[cfg(feature = "ssr")]
fn parse_id(field: &str, id: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::validation(field, "not a valid id"))
}

#[cfg(feature = "ssr")]
async fn conn() -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, AppError> {
    Ok(super::app_state()?
        .db
        .acquire()
        .await
        .map_err(crate::domain::Error::from)?)
}

#[cfg(feature = "ssr")]
async fn tx() -> Result<sqlx::Transaction<'static, sqlx::Postgres>, AppError> {
    Ok(super::app_state()?
        .db
        .begin()
        .await
        .map_err(crate::domain::Error::from)?)
}

#[cfg(feature = "ssr")]
async fn commit(tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), AppError> {
    tx.commit().await.map_err(crate::domain::Error::from)?;
    Ok(())
}

/// The team's keys, requests and policy, as the viewer may see them.
#[server(prefix = "/rpc", endpoint = "team_keys")]
pub async fn team_keys(slug: String) -> Result<TeamKeysView, AppError> {
    use crate::domain::{Action, keys, teams};
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut c = conn().await?;
    let team_id = teams::visible_id(&mut *c, &actor, &slug).await?;
    Ok(TeamKeysView {
        me: actor.user.username.clone(),
        my_role: actor.role_in(team_id),
        can_manage: actor.authorize(Action::ManageTeamKeys(team_id)).is_ok(),
        policy: keys::policy(&mut c, &actor, &slug).await?,
        requests: keys::list_requests(&mut c, &actor, &slug, None).await?,
        keys: keys::list_keys(&mut c, &actor, &slug).await?,
        gateway_url: state.runtime.gateway_url.clone(),
        team: slug,
    })
}

/// Asks for a key. Checkboxes arrive as `Some("on")`; `models` is a comma
/// or space separated list (empty: every model the team may use).
#[server(prefix = "/rpc", endpoint = "request_key")]
pub async fn request_key(
    slug: String,
    name: String,
    #[server(default)] purpose: String,
    #[server(default)] models: String,
    #[server(default)] inference: Option<String>,
    #[server(default)] manage: Option<String>,
    #[server(default)] expires_in_days: String,
) -> Result<KeyRequestOutcome, AppError> {
    use crate::model::{KeyScope, NewKeyRequest};
    let actor = super::actor()?;
    let state = super::app_state()?;
    let mut scopes = Vec::new();
    if inference.is_some() {
        scopes.push(KeyScope::Inference);
    }
    if manage.is_some() {
        scopes.push(KeyScope::Manage);
    }
    let days = match expires_in_days.trim() {
        "" => None,
        d => Some(d.parse::<i32>().map_err(|_| {
            AppError::validation("expires_in_days", "must be a whole number of days")
        })?),
    };
    let models: Vec<String> = models
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let new = NewKeyRequest {
        name,
        purpose,
        models: Some(models),
        scopes: Some(scopes),
        expires_in_days: days,
    };
    let mut tx = tx().await?;
    let out =
        crate::domain::keys::request(&mut tx, &actor, &slug, &new, &state.runtime.pepper).await?;
    commit(tx).await?;
    Ok(out)
}

/// Approves or denies a request (`decision` is `approve` or `deny`).
#[server(prefix = "/rpc", endpoint = "decide_key_request")]
pub async fn decide_key_request(
    id: String,
    decision: String,
    #[server(default)] reason: String,
) -> Result<KeyRequest, AppError> {
    let actor = super::actor()?;
    let id = parse_id("id", &id)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(AppError::validation("decision", "must be approve or deny")),
    };
    let mut tx = tx().await?;
    let r = crate::domain::keys::decide(
        &mut tx,
        &actor,
        id,
        &crate::model::KeyDecision {
            approve,
            reason: Some(reason),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(r)
}

/// Takes back one's own pending request.
#[server(prefix = "/rpc", endpoint = "withdraw_key_request")]
pub async fn withdraw_key_request(id: String) -> Result<KeyRequest, AppError> {
    let actor = super::actor()?;
    let id = parse_id("id", &id)?;
    let mut tx = tx().await?;
    let r = crate::domain::keys::withdraw(&mut tx, &actor, id).await?;
    commit(tx).await?;
    Ok(r)
}

/// Collects an approved key: the one time its secret is shown.
#[server(prefix = "/rpc", endpoint = "claim_key")]
pub async fn claim_key(id: String) -> Result<IssuedKey, AppError> {
    let actor = super::actor()?;
    let state = super::app_state()?;
    let id = parse_id("id", &id)?;
    let mut tx = tx().await?;
    let k = crate::domain::keys::claim(&mut tx, &actor, id, &state.runtime.pepper).await?;
    commit(tx).await?;
    Ok(k)
}

/// Revokes a key now.
#[server(prefix = "/rpc", endpoint = "revoke_key")]
pub async fn revoke_key(id: String, #[server(default)] reason: String) -> Result<ApiKey, AppError> {
    let actor = super::actor()?;
    let id = parse_id("id", &id)?;
    let mut tx = tx().await?;
    let k = crate::domain::keys::revoke(&mut tx, &actor, id, Some(&reason)).await?;
    commit(tx).await?;
    Ok(k)
}

/// Replaces a key; the old one stays valid for `grace_hours`.
#[server(prefix = "/rpc", endpoint = "rotate_key")]
pub async fn rotate_key(
    id: String,
    #[server(default)] grace_hours: String,
) -> Result<IssuedKey, AppError> {
    let actor = super::actor()?;
    let state = super::app_state()?;
    let id = parse_id("id", &id)?;
    let grace = match grace_hours.trim() {
        "" => None,
        g => Some(
            g.parse::<i32>()
                .map_err(|_| AppError::validation("grace_hours", "must be a whole number"))?,
        ),
    };
    let mut tx = tx().await?;
    let k = crate::domain::keys::rotate(&mut tx, &actor, id, grace, &state.runtime.pepper).await?;
    commit(tx).await?;
    Ok(k)
}

/// Every team's pending requests and all keys (admins).
#[server(prefix = "/rpc", endpoint = "admin_keys")]
pub async fn admin_keys() -> Result<AllKeys, AppError> {
    let actor = super::actor()?;
    let mut c = conn().await?;
    Ok(AllKeys {
        requests: crate::domain::keys::list_all_requests(
            &mut c,
            &actor,
            Some(crate::model::KeyRequestState::Pending),
        )
        .await?,
        keys: crate::domain::keys::list_all_keys(&mut c, &actor).await?,
    })
}

/// Changes a team's policy from the admin form. Blank limit fields mean no
/// limit; a blank model list means any model.
#[server(prefix = "/rpc", endpoint = "admin_update_policy")]
pub async fn admin_update_policy(
    slug: String,
    #[server(default)] allowed_models: String,
    #[server(default)] self_service_keys: Option<String>,
    max_key_days: String,
    #[server(default)] rpm_limit: String,
    #[server(default)] tpm_limit: String,
    #[server(default)] monthly_token_quota: String,
) -> Result<TeamPolicy, AppError> {
    fn limit<T: std::str::FromStr>(field: &str, v: &str) -> Result<Option<T>, AppError> {
        match v.trim() {
            "" => Ok(None),
            s => s.parse().map(Some).map_err(|_| {
                AppError::validation(field, "must be a positive whole number, or blank for none")
            }),
        }
    }
    let actor = super::actor()?;
    let models: Vec<String> = allowed_models
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let patch = crate::model::TeamPolicyPatch {
        allowed_models: Some(if models.is_empty() {
            None
        } else {
            Some(models)
        }),
        self_service_keys: Some(self_service_keys.is_some()),
        max_key_days: Some(
            max_key_days
                .trim()
                .parse()
                .map_err(|_| AppError::validation("max_key_days", "must be a whole number"))?,
        ),
        rpm_limit: Some(limit("rpm_limit", &rpm_limit)?),
        tpm_limit: Some(limit("tpm_limit", &tpm_limit)?),
        monthly_token_quota: Some(limit("monthly_token_quota", &monthly_token_quota)?),
    };
    let mut tx = tx().await?;
    let p = crate::domain::keys::update_policy(&mut tx, &actor, &slug, &patch).await?;
    commit(tx).await?;
    Ok(p)
}
