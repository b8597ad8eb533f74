//! Versioned Modelfiles: who may see and change which, saving a version
//! (only one that Ollama would accept, with a base the team may use),
//! history, rollback. Deploying and drift are in [`deploy`].

pub mod deploy;
mod save;

pub use save::{add_version, base_of, create, rollback};
pub(crate) use save::{editable_team, may_build_on};

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::authz::{Action, Actor};
use super::error::{Error, Result};
use crate::model::text::storable;
use crate::model::{
    Modelfile, ModelfileDeployment, ModelfileDetail, ModelfileVersion, VersionSummary,
};

/// The name a validation without one puts in its request.
pub const VALIDATE_NAME: &str = "corral-validate";

/// Who owns a Modelfile, as access checks need it.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub id: Uuid,
    pub team_id: Option<Uuid>,
    pub team: Option<String>,
    pub name: String,
}

/// What an actor wants to do with a Modelfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read it (the team's members; everyone for the platform's).
    Read,
    /// Save versions (the team's members; admins for the platform's).
    Edit,
    /// Deploy it (the team's owners; admins).
    Deploy,
}

fn authorize(actor: &Actor, team_id: Option<Uuid>, access: Access) -> Result<()> {
    match (team_id, access) {
        (None, Access::Read) => Ok(()),
        (None, _) => actor.authorize(Action::ManageCluster),
        (Some(t), Access::Read) => actor.authorize(Action::ViewTeam(t)),
        (Some(t), Access::Edit) => actor.authorize(Action::EditModelfiles(t)),
        (Some(t), Access::Deploy) => actor.authorize(Action::StartTeamOperation(t)),
    }
}

/// The Modelfile `id`, when the actor may do `access` to it (another
/// team's is not found).
pub(crate) async fn owner(
    conn: impl PgExecutor<'_>,
    actor: &Actor,
    id: Uuid,
    access: Access,
) -> Result<Owner> {
    let r = sqlx::query!(
        r#"SELECT m.id, m.team_id, t.slug AS "team?", m.name
             FROM modelfiles m LEFT JOIN teams t ON t.id = m.team_id
            WHERE m.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    if let Some(t) = r.team_id
        && actor.authorize(Action::ViewTeam(t)).is_err()
    {
        return Err(Error::NotFound);
    }
    authorize(actor, r.team_id, access)?;
    Ok(Owner {
        id: r.id,
        team_id: r.team_id,
        team: r.team,
        name: r.name,
    })
}

/// The Modelfiles the actor may see: the platform's and their teams'
/// (admins: all), optionally one team's, by name.
pub async fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    team: Option<&str>,
) -> Result<Vec<Modelfile>> {
    let team_id = match team.map(str::trim).filter(|t| !t.is_empty()) {
        Some(slug) => {
            storable("team", slug)?;
            Some(super::teams::visible_id(&mut *conn, actor, slug).await?)
        }
        None => None,
    };
    let ids = sqlx::query_scalar!(
        r#"SELECT id FROM modelfiles
            WHERE ($1::uuid IS NULL OR team_id = $1)
              AND ($2 OR team_id IS NULL OR team_id = ANY($3))
            ORDER BY name"#,
        team_id,
        actor.is_admin(),
        &actor.team_ids(),
    )
    .fetch_all(&mut *conn)
    .await?;
    fetch_many(conn, &ids).await
}

async fn fetch_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Modelfile>> {
    let rows = sqlx::query!(
        r#"SELECT m.id, t.slug AS "team?", m.name, m.description, m.latest, m.created_at, m.updated_at
             FROM modelfiles m LEFT JOIN teams t ON t.id = m.team_id
            WHERE m.id = ANY($1) ORDER BY m.name"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let deployed = sqlx::query!(
        r#"SELECT modelfile_id, workload, version, operation_id, deployed_by, deployed_at
             FROM modelfile_deployments WHERE modelfile_id = ANY($1) ORDER BY workload"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Modelfile {
            deployments: deployed
                .iter()
                .filter(|d| d.modelfile_id == r.id)
                .map(|d| ModelfileDeployment {
                    workload: d.workload.clone(),
                    version: d.version,
                    operation: d.operation_id,
                    deployed_by: d.deployed_by.clone(),
                    deployed_at: d.deployed_at,
                })
                .collect(),
            id: r.id,
            team: r.team,
            name: r.name,
            description: r.description,
            latest: r.latest,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

/// One Modelfile with its newest version and its history.
pub async fn get(conn: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<ModelfileDetail> {
    owner(&mut *conn, actor, id, Access::Read).await?;
    detail(conn, id).await
}

async fn detail(conn: &mut PgConnection, id: Uuid) -> Result<ModelfileDetail> {
    let modelfile = fetch_many(&mut *conn, &[id])
        .await?
        .pop()
        .ok_or(Error::NotFound)?;
    let current = fetch_version(&mut *conn, id, modelfile.latest).await?;
    let history = sqlx::query!(
        r#"SELECT version, message, author_name, restores, created_at
             FROM modelfile_versions WHERE modelfile_id = $1 ORDER BY version DESC"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| VersionSummary {
        version: r.version,
        message: r.message,
        author: r.author_name,
        restores: r.restores,
        created_at: r.created_at,
    })
    .collect();
    Ok(ModelfileDetail {
        modelfile,
        current,
        history,
    })
}

/// One version, whole.
pub async fn version(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    version: i32,
) -> Result<ModelfileVersion> {
    owner(&mut *conn, actor, id, Access::Read).await?;
    fetch_version(conn, id, version).await
}

pub(crate) async fn fetch_version(
    conn: impl PgExecutor<'_>,
    id: Uuid,
    version: i32,
) -> Result<ModelfileVersion> {
    let r = sqlx::query!(
        r#"SELECT version, text, request, base, message, author_name, restores, created_at
             FROM modelfile_versions WHERE modelfile_id = $1 AND version = $2"#,
        id,
        version
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(ModelfileVersion {
        version: r.version,
        text: r.text,
        request: r.request,
        base: r.base,
        message: r.message,
        author: r.author_name,
        restores: r.restores,
        created_at: r.created_at,
    })
}
