//! The admin console's data and changes. Authorization is the domain's.

use leptos::prelude::*;

use crate::model::{AppError, AuditEntry, AuditFilter, NewTeam, Page, Team, TeamPatch, User};

#[server(prefix = "/rpc", endpoint = "admin_teams")]
pub async fn admin_teams(cursor: Option<String>) -> Result<Page<Team>, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    actor
        .authorize(crate::domain::Action::ListAllTeams)
        .map_err(AppError::from)?;
    Ok(crate::domain::teams::list(&state.db, &actor, cursor.as_deref(), 100).await?)
}

#[server(prefix = "/rpc", endpoint = "admin_create_team")]
pub async fn admin_create_team(team: NewTeam) -> Result<Team, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    // The form's group field, without the spaces typed around it.
    let team = NewTeam {
        idp_group: team.idp_group.map(|g| g.trim().to_owned()),
        ..team
    };
    let mut tx = state.db.begin().await.map_err(crate::domain::Error::from)?;
    let created = crate::domain::teams::create(&mut tx, &actor, &team).await?;
    tx.commit().await.map_err(crate::domain::Error::from)?;
    Ok(created)
}

#[server(prefix = "/rpc", endpoint = "admin_update_team")]
pub async fn admin_update_team(slug: String, patch: TeamPatch) -> Result<Team, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut tx = state.db.begin().await.map_err(crate::domain::Error::from)?;
    let updated = crate::domain::teams::update(&mut tx, &actor, &slug, &patch).await?;
    tx.commit().await.map_err(crate::domain::Error::from)?;
    Ok(updated)
}

#[server(prefix = "/rpc", endpoint = "admin_users")]
pub async fn admin_users() -> Result<Vec<(User, i64)>, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    Ok(crate::domain::identity::list_users(&state.db, &actor).await?)
}

#[server(prefix = "/rpc", endpoint = "admin_audit")]
pub async fn admin_audit(
    filter: AuditFilter,
    cursor: Option<String>,
) -> Result<Page<AuditEntry>, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    Ok(crate::domain::audit::list(&state.db, &actor, &filter, cursor.as_deref(), 50).await?)
}

#[server(prefix = "/rpc", endpoint = "admin_add_member")]
pub async fn admin_add_member(
    slug: String,
    member: crate::model::NewMember,
) -> Result<crate::model::Member, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut tx = state.db.begin().await.map_err(crate::domain::Error::from)?;
    let added = crate::domain::teams::add_member(
        &mut tx,
        &actor,
        &slug,
        member.username.trim(),
        member.role,
    )
    .await?;
    tx.commit().await.map_err(crate::domain::Error::from)?;
    Ok(added)
}

#[server(prefix = "/rpc", endpoint = "admin_remove_member")]
pub async fn admin_remove_member(slug: String, username: String) -> Result<(), AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut tx = state.db.begin().await.map_err(crate::domain::Error::from)?;
    crate::domain::teams::remove_member(&mut tx, &actor, &slug, &username).await?;
    tx.commit().await.map_err(crate::domain::Error::from)?;
    Ok(())
}
