//! Key requests: asked for, listed, approved or refused, withdrawn.

use super::*;

/// Filters for [`fetch_requests`]; `None` matches everything.
#[derive(Default)]
pub(super) struct RequestFilter {
    team: Option<Uuid>,
    requester: Option<Uuid>,
    id: Option<Uuid>,
    state: Option<KeyRequestState>,
}

pub(super) async fn fetch_requests(
    conn: impl PgExecutor<'_>,
    f: RequestFilter,
) -> Result<Vec<KeyRequest>> {
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

pub(super) async fn one_request(conn: impl PgExecutor<'_>, id: Uuid) -> Result<KeyRequest> {
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

pub(super) fn check_within_team(models: Option<&[String]>, team: Option<&[String]>) -> Result<()> {
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
pub(super) async fn locked_request(
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
