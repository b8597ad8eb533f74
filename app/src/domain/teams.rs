//! Teams: listing, reading, and the admin's create and edit.

use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::audit::{self, By, Record};
use super::authz::{Action, Actor};
use super::error::{Error, Result, violated_constraint};
use super::identity::source;
use crate::model::text::storable;
use crate::model::{
    Member, MembershipSource, NewTeam, Page, Team, TeamDetail, TeamPatch, TeamRole, rules,
};

/// Teams the actor may see (all of them for admins), by slug.
/// `cursor` is the last slug of the previous page.
pub async fn list(
    conn: impl PgExecutor<'_>,
    actor: &Actor,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<Team>> {
    crate::model::PAGE_LIMIT.check("limit", limit)?;
    if let Some(c) = cursor {
        storable("cursor", c)?;
    }
    let all = actor.authorize(Action::ListAllTeams).is_ok();
    let items = sqlx::query_as!(
        Team,
        r#"SELECT t.slug, t.name, t.description, t.idp_group, t.created_at, t.updated_at,
                  (SELECT count(*) FROM memberships m WHERE m.team_id = t.id) AS "member_count!"
             FROM teams t
            WHERE t.slug > $1
              AND ($2 OR t.id = ANY($3))
            ORDER BY t.slug
            LIMIT $4"#,
        cursor.unwrap_or(""),
        all,
        &actor.team_ids(),
        limit + 1,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::from_overfetch(items, limit, |t| t.slug.clone()))
}

/// The id of the team with `slug`, if the actor may see it; otherwise
/// `NotFound`, whether or not it exists.
pub async fn visible_id(conn: impl PgExecutor<'_>, actor: &Actor, slug: &str) -> Result<Uuid> {
    storable("slug", slug)?;
    let id = sqlx::query_scalar!("SELECT id FROM teams WHERE slug = $1", slug)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)?;
    actor.authorize(Action::ViewTeam(id))?;
    Ok(id)
}

/// One team with its members.
pub async fn get(conn: &mut PgConnection, actor: &Actor, slug: &str) -> Result<TeamDetail> {
    let id = visible_id(&mut *conn, actor, slug).await?;
    let team = fetch(&mut *conn, id).await?;
    let members = sqlx::query!(
        r#"SELECT u.username, u.display_name, m.role AS "role: TeamRole", m.source
             FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.team_id = $1
            ORDER BY m.role DESC, u.username"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Member {
        username: r.username,
        display_name: r.display_name,
        role: r.role,
        source: source(&r.source),
    })
    .collect();
    Ok(TeamDetail { team, members })
}

async fn fetch(conn: impl PgExecutor<'_>, id: Uuid) -> Result<Team> {
    Ok(sqlx::query_as!(
        Team,
        r#"SELECT t.slug, t.name, t.description, t.idp_group, t.created_at, t.updated_at,
                  (SELECT count(*) FROM memberships m WHERE m.team_id = t.id) AS "member_count!"
             FROM teams t WHERE t.id = $1"#,
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Creates a team (admins only). Run it in a transaction.
pub async fn create(tx: &mut PgConnection, actor: &Actor, new: &NewTeam) -> Result<Team> {
    actor.authorize(Action::CreateTeam)?;
    rules::slug(&new.slug)?;
    rules::name(&new.name)?;
    rules::description(&new.description)?;
    if let Some(g) = &new.idp_group {
        rules::idp_group(g)?;
    }
    let idp_group = new.idp_group.as_deref().filter(|g| !g.is_empty());
    let id = sqlx::query_scalar!(
        "INSERT INTO teams (slug, name, description, idp_group) VALUES ($1, $2, $3, $4) RETURNING id",
        new.slug,
        new.name.trim(),
        new.description.trim(),
        idp_group,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("teams_slug_key") => Error::Conflict(format!("a team with slug {:?} already exists", new.slug)),
        Some("teams_idp_group_key") => Error::Conflict(format!(
            "IdP group {:?} already feeds another team",
            idp_group.unwrap_or_default()
        )),
        _ => Error::from(e),
    })?;
    let team = fetch(&mut *tx, id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "team.created",
            target_kind: "team",
            target_id: &team.slug,
            team_id: Some(id),
            before: None,
            after: Some(json!({ "slug": team.slug, "name": team.name, "description": team.description, "idp_group": team.idp_group })),
        },
    )
    .await?;
    Ok(team)
}

/// Changes a team's name or description (admins only). Run it in a transaction.
pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    patch: &TeamPatch,
) -> Result<Team> {
    let id = visible_id(&mut *tx, actor, slug).await?;
    actor.authorize(Action::EditTeam(id))?;
    if let Some(n) = &patch.name {
        rules::name(n)?;
    }
    if let Some(d) = &patch.description {
        rules::description(d)?;
    }
    let before = fetch(&mut *tx, id).await?;
    sqlx::query!(
        r#"UPDATE teams SET name = COALESCE($2, name), description = COALESCE($3, description), updated_at = now()
            WHERE id = $1"#,
        id,
        patch.name.as_deref().map(str::trim),
        patch.description.as_deref().map(str::trim),
    )
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut *tx, id).await?;
    if before.name != after.name || before.description != after.description {
        audit::record(
            &mut *tx,
            By::Actor(actor),
            Record {
                action: "team.updated",
                target_kind: "team",
                target_id: slug,
                team_id: Some(id),
                before: Some(json!({ "name": before.name, "description": before.description })),
                after: Some(json!({ "name": after.name, "description": after.description })),
            },
        )
        .await?;
    }
    Ok(after)
}

/// Adds a person to a team by hand (admins only). Only people who have
/// signed in at least once can be added. Run it in a transaction.
pub async fn add_member(
    tx: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    username: &str,
    role: TeamRole,
) -> Result<Member> {
    let team_id = visible_id(&mut *tx, actor, slug).await?;
    actor.authorize(Action::ManageMembers(team_id))?;
    storable("username", username)?;
    let user = sqlx::query!(
        "SELECT id, display_name FROM users WHERE username = $1 ORDER BY last_sign_in_at DESC NULLS LAST LIMIT 1",
        username
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::Validation {
        field: "username".into(),
        message: format!("nobody named {username:?} has signed in to Corral yet"),
    })?;
    let inserted = sqlx::query!(
        r#"INSERT INTO memberships (team_id, user_id, role, source) VALUES ($1, $2, $3, 'manual')
           ON CONFLICT (team_id, user_id) DO NOTHING"#,
        team_id,
        user.id,
        role as TeamRole,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(Error::Conflict(format!(
            "{username} is already a member of {slug}"
        )));
    }
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "membership.added",
            target_kind: "membership",
            target_id: &format!("{slug}/{username}"),
            team_id: Some(team_id),
            before: None,
            after: Some(json!({ "team": slug, "user": username, "role": role.as_str(), "source": "manual" })),
        },
    )
    .await?;
    Ok(Member {
        username: username.to_owned(),
        display_name: user.display_name,
        role,
        source: MembershipSource::Manual,
    })
}

/// Removes a membership an admin added. Memberships that come from the IdP
/// are refused: the next sign-in would restore them, so they are changed in
/// the IdP. Run it in a transaction.
pub async fn remove_member(
    tx: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    username: &str,
) -> Result<()> {
    let team_id = visible_id(&mut *tx, actor, slug).await?;
    actor.authorize(Action::ManageMembers(team_id))?;
    storable("username", username)?;
    let row = sqlx::query!(
        r#"SELECT m.user_id, m.role AS "role: TeamRole", m.source
             FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.team_id = $1 AND u.username = $2"#,
        team_id,
        username
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if row.source == "idp" {
        let group = sqlx::query_scalar!("SELECT idp_group FROM teams WHERE id = $1", team_id)
            .fetch_one(&mut *tx)
            .await?
            .unwrap_or_default();
        return Err(Error::Conflict(format!(
            "{username}'s membership comes from the identity provider group {group}; remove it there"
        )));
    }
    sqlx::query!(
        "DELETE FROM memberships WHERE team_id = $1 AND user_id = $2",
        team_id,
        row.user_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "membership.removed",
            target_kind: "membership",
            target_id: &format!("{slug}/{username}"),
            team_id: Some(team_id),
            before: Some(json!({ "team": slug, "user": username, "role": row.role.as_str(), "source": "manual" })),
            after: None,
        },
    )
    .await?;
    Ok(())
}
