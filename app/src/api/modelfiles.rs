//! The Modelfile pages' server functions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{
    AppError, DiffLine, DriftReport, Modelfile, ModelfileDetail, ModelfileVersion, Operation,
};

#[cfg(feature = "ssr")]
fn db_err(e: sqlx::Error) -> AppError {
    crate::domain::Error::from(e).into()
}

#[cfg(feature = "ssr")]
fn parse_id(id: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::NotFound)
}

/// What the Modelfiles list shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelfilesView {
    pub items: Vec<Modelfile>,
    /// Teams the viewer may create Modelfiles for (all of theirs).
    pub teams: Vec<String>,
    /// Admins also create the platform's.
    pub admin: bool,
}

/// The Modelfiles the viewer may see.
#[server(prefix = "/rpc", endpoint = "modelfiles")]
pub async fn list_modelfiles() -> Result<ModelfilesView, AppError> {
    let app = super::app_state()?;
    let actor = super::actor()?;
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    let items = crate::domain::modelfiles::list(&mut conn, &actor, None).await?;
    let mut teams: Vec<String> = actor.teams.values().map(|(s, _)| s.clone()).collect();
    teams.sort();
    Ok(ModelfilesView {
        items,
        teams,
        admin: actor.is_admin(),
    })
}

/// What a Modelfile's page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelfilePage {
    pub detail: ModelfileDetail,
    /// The viewer may save versions, and deploy.
    pub can_edit: bool,
    pub can_deploy: bool,
    /// The workloads it may be deployed to (the first is the default).
    pub workloads: Vec<String>,
}

/// One Modelfile with its newest version and history.
#[server(prefix = "/rpc", endpoint = "modelfile")]
pub async fn get_modelfile(id: String) -> Result<ModelfilePage, AppError> {
    use crate::domain::{Action, modelfiles};
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    let detail = modelfiles::get(&mut conn, &actor, id).await?;
    let team_id = match &detail.modelfile.team {
        Some(slug) => Some(crate::domain::teams::visible_id(&mut *conn, &actor, slug).await?),
        None => None,
    };
    let (can_edit, can_deploy) = match team_id {
        None => {
            let admin = actor.is_admin();
            (admin, admin)
        }
        Some(t) => (
            actor.authorize(Action::EditModelfiles(t)).is_ok(),
            actor.authorize(Action::StartTeamOperation(t)).is_ok(),
        ),
    };
    Ok(ModelfilePage {
        detail,
        can_edit,
        can_deploy,
        workloads: app
            .cluster
            .workloads()
            .0
            .iter()
            .map(|w| w.name.clone())
            .collect(),
    })
}

/// Creates a Modelfile; `team` empty means the platform's.
#[server(prefix = "/rpc", endpoint = "create_modelfile")]
pub async fn create_modelfile(
    #[server(default)] team: String,
    name: String,
    #[server(default)] description: String,
    text: String,
    message: String,
) -> Result<ModelfileDetail, AppError> {
    use crate::model::NewModelfile;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let team = (!team.trim().is_empty()).then(|| team.trim().to_owned());
    // The form asks for the short name; the team's namespace is implied.
    let name = match &team {
        Some(t) if !name.trim().is_empty() && !name.trim().starts_with(&format!("{t}/")) => {
            format!("{t}/{}", name.trim())
        }
        _ => name,
    };
    let new = NewModelfile {
        team,
        name,
        description,
        text,
        message,
    };
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let d = crate::domain::modelfiles::create(&mut tx, &actor, &new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(d)
}

/// Saves the editor's text as a new version.
#[server(prefix = "/rpc", endpoint = "save_modelfile")]
pub async fn save_modelfile(
    id: String,
    text: String,
    message: String,
) -> Result<ModelfileVersion, AppError> {
    use crate::model::NewVersion;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let v =
        crate::domain::modelfiles::add_version(&mut tx, &actor, id, &NewVersion { text, message })
            .await?;
    tx.commit().await.map_err(db_err)?;
    Ok(v)
}

/// A new version equal to `version`.
#[server(prefix = "/rpc", endpoint = "rollback_modelfile")]
pub async fn rollback_modelfile(id: String, version: i32) -> Result<ModelfileVersion, AppError> {
    use crate::model::Rollback;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let v = crate::domain::modelfiles::rollback(
        &mut tx,
        &actor,
        id,
        &Rollback {
            version,
            message: None,
        },
    )
    .await?;
    tx.commit().await.map_err(db_err)?;
    Ok(v)
}

/// Deploys a version to a workload (a `create` operation).
#[server(prefix = "/rpc", endpoint = "deploy_modelfile")]
pub async fn deploy_modelfile(
    id: String,
    version: i32,
    #[server(default)] workload: String,
    #[server(default)] in_next_window: Option<String>,
) -> Result<Operation, AppError> {
    use crate::model::Deploy;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let d = Deploy {
        version: Some(version),
        workload: (!workload.trim().is_empty()).then(|| workload.trim().to_owned()),
        in_next_window: in_next_window.is_some(),
    };
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let started =
        crate::domain::modelfiles::deploy::deploy(&mut tx, &actor, app.cluster.workloads(), id, &d)
            .await?;
    tx.commit().await.map_err(db_err)?;
    Ok(started.operation)
}

/// Whether the pods run the deployed version.
#[server(prefix = "/rpc", endpoint = "modelfile_drift")]
pub async fn modelfile_drift(
    id: String,
    #[server(default)] workload: String,
) -> Result<DriftReport, AppError> {
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    let workload = workload.trim();
    Ok(crate::domain::modelfiles::deploy::drift(
        &mut conn,
        &actor,
        app.cluster.as_ref(),
        id,
        (!workload.is_empty()).then_some(workload),
    )
    .await?)
}

/// Two versions side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub from: i32,
    pub to: i32,
    pub lines: Vec<DiffLine>,
}

/// The line diff of versions `from` and `to`.
#[server(prefix = "/rpc", endpoint = "modelfile_diff")]
pub async fn modelfile_diff(id: String, from: i32, to: i32) -> Result<VersionDiff, AppError> {
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = parse_id(&id)?;
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    let old = crate::domain::modelfiles::version(&mut conn, &actor, id, from).await?;
    let new = crate::domain::modelfiles::version(&mut conn, &actor, id, to).await?;
    Ok(VersionDiff {
        from,
        to,
        lines: crate::model::modelfiles::diff_lines(&old.text, &new.text),
    })
}

/// Makes a Modelfile from a model on the pods.
#[server(prefix = "/rpc", endpoint = "import_modelfile")]
pub async fn import_from_pods(
    model: String,
    #[server(default)] team: String,
    #[server(default)] name: String,
) -> Result<ModelfileDetail, AppError> {
    use crate::model::ImportModelfile;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let some = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let i = ImportModelfile {
        model,
        team: some(team),
        name: some(name),
        workload: None,
    };
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let d = crate::domain::modelfiles::deploy::import(&mut tx, &actor, app.cluster.as_ref(), &i)
        .await?;
    tx.commit().await.map_err(db_err)?;
    Ok(d)
}
