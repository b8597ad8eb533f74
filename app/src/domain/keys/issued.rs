//! Issued keys: collected once by the requester, listed, revoked, rotated.

use super::*;

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

pub(super) fn key_audit(k: &ApiKey) -> serde_json::Value {
    json!({
        "key": k.prefix, "name": k.name, "owner": k.owner, "models": k.models,
        "scopes": k.scopes, "expires_at": k.expires_at.unix_timestamp(),
        "revoked": k.revoked_at.is_some(),
    })
}

#[derive(Default)]
pub(super) struct KeyFilter {
    team: Option<Uuid>,
    owner: Option<Uuid>,
    id: Option<Uuid>,
}

pub(super) async fn fetch_keys(conn: impl PgExecutor<'_>, f: KeyFilter) -> Result<Vec<ApiKey>> {
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

pub(super) async fn one_key(conn: impl PgExecutor<'_>, id: Uuid) -> Result<ApiKey> {
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
pub(super) async fn locked_key(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<(Uuid, Uuid)> {
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
