//! A team's key and gateway policy: read it, change it (admins).

use super::*;

/// The team's key and gateway policy.
pub async fn policy(conn: &mut PgConnection, actor: &Actor, slug: &str) -> Result<TeamPolicy> {
    let id = visible_id(&mut *conn, actor, slug).await?;
    fetch_policy(&mut *conn, id).await
}

pub(super) async fn fetch_policy(conn: impl PgExecutor<'_>, team_id: Uuid) -> Result<TeamPolicy> {
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
