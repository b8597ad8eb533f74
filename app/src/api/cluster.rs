//! The cluster and operations pages' server functions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{AppError, ClusterReport, DriftReport, Operation, OperationDetail};

/// What the cluster page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub report: ClusterReport,
    /// The viewer is an admin: scaling, platform pulls, pod addresses.
    pub admin: bool,
    /// Teams the viewer owns (may pull for), by slug.
    pub owned_teams: Vec<String>,
    /// The latest operations the viewer may see.
    pub recent: Vec<Operation>,
    /// The deployed Modelfiles the viewer may see, each pod checked for
    /// drift.
    pub modelfiles: Vec<DeployedModelfile>,
}

/// A Modelfile deployed to a workload, and whether its pods still run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployedModelfile {
    pub id: uuid::Uuid,
    pub name: String,
    pub drift: Option<DriftReport>,
    /// Why the pods could not be checked.
    pub error: Option<String>,
}

/// At most this many deployed Modelfiles are checked for drift on the
/// cluster page (each asks every pod); the Modelfiles' own pages check any.
#[cfg(feature = "ssr")]
const DRIFT_CHECKS: usize = 20;

#[cfg(feature = "ssr")]
fn db_err(e: sqlx::Error) -> AppError {
    crate::domain::Error::from(e).into()
}

/// The workloads' live state and the latest operations.
#[server(prefix = "/rpc", endpoint = "cluster_view")]
pub async fn get_cluster_view() -> Result<ClusterView, AppError> {
    use crate::model::{OperationFilter, TeamRole};
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut report = state.cluster.report().await;
    if !actor.is_admin() {
        for w in &mut report.workloads {
            for p in &mut w.pods {
                p.endpoint = None;
            }
        }
    }
    let mut conn = state.db.acquire().await.map_err(db_err)?;
    let recent =
        crate::domain::operations::list(&mut conn, &actor, &OperationFilter::default(), None, 10)
            .await?
            .items;
    let mut owned_teams: Vec<String> = actor
        .teams
        .values()
        .filter(|(_, r)| *r == TeamRole::Owner)
        .map(|(s, _)| s.clone())
        .collect();
    owned_teams.sort();
    let mut modelfiles = Vec::new();
    for m in crate::domain::modelfiles::list(&mut conn, &actor, None)
        .await?
        .into_iter()
        .filter(|m| !m.deployments.is_empty())
        .take(DRIFT_CHECKS)
    {
        for d in &m.deployments {
            let drift = crate::domain::modelfiles::deploy::drift(
                &mut conn,
                &actor,
                state.cluster.as_ref(),
                m.id,
                Some(&d.workload),
            )
            .await;
            let (drift, error) = match drift {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            };
            modelfiles.push(DeployedModelfile {
                id: m.id,
                name: m.name.clone(),
                drift,
                error,
            });
        }
    }
    Ok(ClusterView {
        report,
        admin: actor.is_admin(),
        owned_teams,
        recent,
        modelfiles,
    })
}

/// Operations the viewer may see, newest first, filtered by state and kind.
#[server(prefix = "/rpc", endpoint = "list_operations")]
pub async fn list_operations(
    #[server(default)] state: String,
    #[server(default)] kind: String,
    #[server(default)] team: String,
    #[server(default)] model: String,
) -> Result<Vec<Operation>, AppError> {
    use crate::model::OperationFilter;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let some = |s: String| (!s.trim().is_empty()).then_some(s);
    let filter = OperationFilter {
        state: some(state),
        kind: some(kind),
        team: some(team),
        model: some(model),
    };
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    Ok(
        crate::domain::operations::list(&mut conn, &actor, &filter, None, 100)
            .await?
            .items,
    )
}

/// What an operation's page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationPageData {
    pub detail: OperationDetail,
    /// A cancelled pull whose model is on pods anyway (Ollama finished the
    /// download after the request was dropped): those pods.
    pub landed_on: Vec<String>,
}

/// One operation with its log.
#[server(prefix = "/rpc", endpoint = "operation_detail")]
pub async fn get_operation_detail(id: String) -> Result<OperationPageData, AppError> {
    use crate::model::{OperationKind, OperationState};
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::NotFound)?;
    let mut conn = app.db.acquire().await.map_err(db_err)?;
    let detail = crate::domain::operations::detail(&mut conn, &actor, id).await?;
    drop(conn);
    let op = &detail.operation;
    let mut landed_on = Vec::new();
    if op.kind == OperationKind::Pull && op.state == OperationState::Cancelled {
        let model = op.model.clone().unwrap_or_default();
        for w in app.cluster.report().await.workloads {
            if w.name != op.workload {
                continue;
            }
            landed_on.extend(
                w.pods
                    .into_iter()
                    .filter(|p| p.models.iter().any(|m| m.name == model))
                    .map(|p| p.name),
            );
        }
    }
    Ok(OperationPageData { detail, landed_on })
}

/// Starts an operation from the cluster page's forms: `kind` is `pull`,
/// `delete` or `scale`; `team` empty means the platform.
#[server(prefix = "/rpc", endpoint = "start_operation")]
pub async fn start_operation(
    kind: String,
    #[server(default)] model: String,
    #[server(default)] team: String,
    #[server(default)] replicas: String,
    #[server(default)] in_next_window: Option<String>,
    #[server(default)] force: Option<String>,
) -> Result<Operation, AppError> {
    use crate::model::NewOperation;
    let app = super::app_state()?;
    let actor = super::actor()?;
    let team = (!team.trim().is_empty()).then(|| team.trim().to_owned());
    let in_next_window = in_next_window.is_some();
    let new = match kind.as_str() {
        "pull" => NewOperation::Pull {
            model,
            workload: None,
            team,
            in_next_window,
            force: force.is_some(),
        },
        "delete" => NewOperation::Delete {
            model,
            workload: None,
            team,
            in_next_window,
        },
        "scale" => NewOperation::Scale {
            replicas: replicas
                .trim()
                .parse()
                .map_err(|_| AppError::validation("replicas", "must be a whole number"))?,
            workload: None,
            in_next_window,
        },
        _ => {
            return Err(AppError::validation(
                "kind",
                "must be pull, delete or scale",
            ));
        }
    };
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let started =
        crate::domain::operations::start(&mut tx, &actor, app.cluster.workloads(), &new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(started.operation)
}

/// Cancels an operation.
#[server(prefix = "/rpc", endpoint = "cancel_operation")]
pub async fn cancel_operation(id: String) -> Result<Operation, AppError> {
    let app = super::app_state()?;
    let actor = super::actor()?;
    let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::NotFound)?;
    let mut tx = app.db.begin().await.map_err(db_err)?;
    let op = crate::domain::operations::cancel(&mut tx, &actor, id).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(op)
}
