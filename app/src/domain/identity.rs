//! Signing in: users upserted from verified identity claims, team
//! memberships synced from the IdP's groups, and the actor loaded per request.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::audit::{self, By, Record};
use super::authz::{Action, Actor, Via};
use super::error::Result;
use crate::model::text::storable;
use crate::model::{AppError, MembershipSource, MyTeam, TeamRole, User, rules};

/// A verified identity, as the IdP (or the development sign-in) vouches for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The issuer URL, or `dev` for the development sign-in.
    pub issuer: String,
    pub subject: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Group paths such as `/team-a` and `/team-a/owners`.
    pub groups: Vec<String>,
    pub is_admin: bool,
}

impl Identity {
    /// Ok when every claim can be stored; otherwise a validation error
    /// naming the field (`username`, `display_name`, `email`, `groups`,
    /// `subject`, `issuer`), for the sign-in to refuse.
    pub fn check_storable(&self) -> Result<(), AppError> {
        storable("issuer", &self.issuer)?;
        storable("subject", &self.subject)?;
        storable("username", &self.username)?;
        storable("display_name", &self.display_name)?;
        if let Some(e) = &self.email {
            storable("email", e)?;
        }
        self.groups.iter().try_for_each(|g| storable("groups", g))
    }
}

/// The team memberships that a list of group paths grants: `/team-a` makes
/// a member of `team-a`, `/team-a/owners` an owner. Other paths are ignored.
pub fn memberships_from_groups(groups: &[String]) -> BTreeMap<String, TeamRole> {
    let mut out = BTreeMap::new();
    for g in groups {
        let parts: Vec<&str> = g.trim_start_matches('/').split('/').collect();
        let (team, role) = match parts.as_slice() {
            [team] => (*team, TeamRole::Member),
            [team, "owners"] => (*team, TeamRole::Owner),
            _ => continue,
        };
        if team.is_empty() {
            continue;
        }
        let entry = out.entry(team.to_owned()).or_insert(role);
        *entry = (*entry).max(role);
    }
    out
}

/// Upserts the user, syncs IdP memberships (added, removed, role changed) and
/// records every change in the audit log. Run it in a transaction. An
/// identity with a claim Postgres cannot store is refused (`Validation`)
/// before anything is written.
pub async fn sign_in(
    tx: &mut PgConnection,
    identity: &Identity,
    request_id: Option<&str>,
) -> Result<User> {
    identity.check_storable()?;
    let row = sqlx::query!(
        r#"INSERT INTO users (issuer, subject, username, display_name, email, is_admin, last_sign_in_at)
           VALUES ($1, $2, $3, $4, $5, $6, now())
           ON CONFLICT ON CONSTRAINT users_issuer_subject_key DO UPDATE
              SET username = EXCLUDED.username,
                  display_name = EXCLUDED.display_name,
                  email = EXCLUDED.email,
                  is_admin = EXCLUDED.is_admin,
                  last_sign_in_at = now()
           RETURNING id, username, display_name, email, is_admin, last_sign_in_at,
                     (xmax = 0) AS "inserted!",
                     (SELECT u.is_admin FROM users u WHERE u.issuer = $1 AND u.subject = $2) AS was_admin"#,
        identity.issuer,
        identity.subject,
        identity.username,
        identity.display_name,
        identity.email,
        identity.is_admin,
    )
    .fetch_one(&mut *tx)
    .await?;
    let user = User {
        id: row.id,
        username: row.username,
        display_name: row.display_name,
        email: row.email,
        is_admin: row.is_admin,
        last_sign_in_at: row.last_sign_in_at,
    };
    let system = By::System {
        on_behalf_of: Some(user.id),
        request_id,
    };
    let user_id = user.id.to_string();
    if row.inserted {
        audit::record(
            &mut *tx,
            system,
            Record {
                action: "user.created",
                target_kind: "user",
                target_id: &user_id,
                team_id: None,
                before: None,
                after: Some(json!({ "username": user.username, "issuer": identity.issuer, "is_admin": user.is_admin })),
            },
        )
        .await?;
    } else if row.was_admin.is_some_and(|was| was != user.is_admin) {
        audit::record(
            &mut *tx,
            system,
            Record {
                action: "user.admin_changed",
                target_kind: "user",
                target_id: &user_id,
                team_id: None,
                before: Some(json!({ "is_admin": !user.is_admin })),
                after: Some(json!({ "is_admin": user.is_admin })),
            },
        )
        .await?;
    }

    sync_memberships(tx, &user, &identity.groups, request_id).await?;

    audit::record(
        &mut *tx,
        system,
        Record {
            action: "user.signed_in",
            target_kind: "user",
            target_id: &user_id,
            team_id: None,
            before: None,
            after: Some(json!({ "issuer": identity.issuer, "groups": identity.groups })),
        },
    )
    .await?;
    Ok(user)
}

async fn sync_memberships(
    tx: &mut PgConnection,
    user: &User,
    groups: &[String],
    request_id: Option<&str>,
) -> Result<()> {
    let system = By::System {
        on_behalf_of: Some(user.id),
        request_id,
    };
    // Desired: team id → role, creating teams for groups Corral has not seen.
    let mut desired: HashMap<Uuid, (String, TeamRole)> = HashMap::new();
    for (group_team, role) in memberships_from_groups(groups) {
        let group = format!("/{group_team}");
        let existing = sqlx::query!("SELECT id, slug FROM teams WHERE idp_group = $1", group)
            .fetch_optional(&mut *tx)
            .await?;
        let (id, slug) = match existing {
            Some(t) => (t.id, t.slug),
            None => {
                if rules::slug(&group_team).is_err() {
                    tracing::warn!(group, "IdP group is not a valid team slug; ignored");
                    continue;
                }
                let created = sqlx::query!(
                    r#"INSERT INTO teams (slug, name, idp_group) VALUES ($1, $1, $2)
                       ON CONFLICT DO NOTHING RETURNING id, slug"#,
                    group_team,
                    group,
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some(t) = created else {
                    tracing::warn!(
                        group,
                        "a team with this slug exists and is not linked to the group; ignored"
                    );
                    continue;
                };
                audit::record(
                    &mut *tx,
                    system,
                    Record {
                        action: "team.created",
                        target_kind: "team",
                        target_id: &t.slug,
                        team_id: Some(t.id),
                        before: None,
                        after: Some(json!({ "slug": t.slug, "name": t.slug, "idp_group": group })),
                    },
                )
                .await?;
                (t.id, t.slug)
            }
        };
        desired.insert(id, (slug, role));
    }

    let current = sqlx::query!(
        r#"SELECT m.team_id, t.slug, m.role AS "role: TeamRole", m.source
             FROM memberships m JOIN teams t ON t.id = m.team_id
            WHERE m.user_id = $1"#,
        user.id
    )
    .fetch_all(&mut *tx)
    .await?;
    let current: HashMap<Uuid, (String, TeamRole, String)> = current
        .into_iter()
        .map(|r| (r.team_id, (r.slug, r.role, r.source)))
        .collect();

    for (team_id, (slug, role, source)) in &current {
        if source == "idp" && !desired.contains_key(team_id) {
            sqlx::query!(
                "DELETE FROM memberships WHERE team_id = $1 AND user_id = $2",
                team_id,
                user.id
            )
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut *tx,
                system,
                Record {
                    action: "membership.removed",
                    target_kind: "membership",
                    target_id: &format!("{slug}/{}", user.username),
                    team_id: Some(*team_id),
                    before: Some(json!({ "team": slug, "user": user.username, "role": role.as_str(), "source": "idp" })),
                    after: None,
                },
            )
            .await?;
        }
    }
    for (team_id, (slug, role)) in &desired {
        match current.get(team_id) {
            None => {
                sqlx::query!(
                    "INSERT INTO memberships (team_id, user_id, role, source) VALUES ($1, $2, $3, 'idp')",
                    team_id,
                    user.id,
                    *role as TeamRole,
                )
                .execute(&mut *tx)
                .await?;
                audit::record(
                    &mut *tx,
                    system,
                    Record {
                        action: "membership.added",
                        target_kind: "membership",
                        target_id: &format!("{slug}/{}", user.username),
                        team_id: Some(*team_id),
                        before: None,
                        after: Some(json!({ "team": slug, "user": user.username, "role": role.as_str(), "source": "idp" })),
                    },
                )
                .await?;
            }
            Some((_, old, source)) if source == "idp" && old != role => {
                sqlx::query!(
                    "UPDATE memberships SET role = $3 WHERE team_id = $1 AND user_id = $2",
                    team_id,
                    user.id,
                    *role as TeamRole,
                )
                .execute(&mut *tx)
                .await?;
                audit::record(
                    &mut *tx,
                    system,
                    Record {
                        action: "membership.role_changed",
                        target_kind: "membership",
                        target_id: &format!("{slug}/{}", user.username),
                        team_id: Some(*team_id),
                        before: Some(json!({ "role": old.as_str() })),
                        after: Some(json!({ "role": role.as_str() })),
                    },
                )
                .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The actor for a signed-in user id, or `None` if the user no longer exists.
pub async fn load_actor(
    conn: impl PgExecutor<'_> + Copy,
    user_id: Uuid,
    via: Via,
    request_id: Option<String>,
) -> Result<Option<Actor>> {
    let Some(u) = sqlx::query!(
        "SELECT id, username, display_name, email, is_admin, last_sign_in_at FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let teams = sqlx::query!(
        r#"SELECT m.team_id, t.slug, m.role AS "role: TeamRole"
             FROM memberships m JOIN teams t ON t.id = m.team_id
            WHERE m.user_id = $1"#,
        user_id
    )
    .fetch_all(conn)
    .await?;
    Ok(Some(Actor {
        user: User {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            email: u.email,
            is_admin: u.is_admin,
            last_sign_in_at: u.last_sign_in_at,
        },
        teams: teams
            .into_iter()
            .map(|t| (t.team_id, (t.slug, t.role)))
            .collect(),
        via,
        request_id,
    }))
}

/// The actor's own teams with roles, by name.
pub async fn my_teams(conn: impl PgExecutor<'_>, actor: &Actor) -> Result<Vec<MyTeam>> {
    let rows = sqlx::query!(
        r#"SELECT t.slug, t.name, m.role AS "role: TeamRole", m.source
             FROM memberships m JOIN teams t ON t.id = m.team_id
            WHERE m.user_id = $1 AND m.team_id = ANY($2)
            ORDER BY t.name, t.slug"#,
        actor.user.id,
        &actor.team_ids(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MyTeam {
            slug: r.slug,
            name: r.name,
            role: r.role,
            source: source(&r.source),
        })
        .collect())
}

/// Every user, for admins.
pub async fn list_users(conn: impl PgExecutor<'_>, actor: &Actor) -> Result<Vec<(User, i64)>> {
    actor.authorize(Action::ListUsers)?;
    let rows = sqlx::query!(
        r#"SELECT u.id, u.username, u.display_name, u.email, u.is_admin, u.last_sign_in_at,
                  (SELECT count(*) FROM memberships m WHERE m.user_id = u.id) AS "teams!"
             FROM users u ORDER BY u.username"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                User {
                    id: r.id,
                    username: r.username,
                    display_name: r.display_name,
                    email: r.email,
                    is_admin: r.is_admin,
                    last_sign_in_at: r.last_sign_in_at,
                },
                r.teams,
            )
        })
        .collect())
}

pub(crate) fn source(s: &str) -> MembershipSource {
    if s == "manual" {
        MembershipSource::Manual
    } else {
        MembershipSource::Idp
    }
}

/// The people the development sign-in offers under the `local` profile.
pub fn dev_identities() -> Vec<Identity> {
    let person = |username: &str, name: &str, groups: &[&str], is_admin: bool| Identity {
        issuer: "dev".into(),
        subject: format!("dev-{username}"),
        username: username.into(),
        display_name: name.into(),
        email: Some(format!("{username}@corral.test")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        is_admin,
    };
    vec![
        person("ada", "Ada Admin", &["/platform"], true),
        person("olu", "Olu Owner", &["/team-a", "/team-a/owners"], false),
        person("mia", "Mia Member", &["/team-a", "/team-b"], false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_team_roles() {
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let m = memberships_from_groups(&g(&[
            "/team-a",
            "/team-b/owners",
            "/x/y/z",
            "/",
            "/team-a/owners",
        ]));
        assert_eq!(m.get("team-a"), Some(&TeamRole::Owner));
        assert_eq!(m.get("team-b"), Some(&TeamRole::Owner));
        assert_eq!(m.len(), 2);
    }
}
