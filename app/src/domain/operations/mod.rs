//! Cluster operations as people ask for them: start (with the rules on who
//! may do what to which workload and model), list, read, cancel. The
//! runners' side of the queue is in [`queue`].

pub mod queue;
pub mod reconcile;
mod rows;

use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::audit::{self, By, Record};
use super::authz::{Action, Actor};
use super::error::{Error, Result};
use crate::model::key_rules::{self, normalize_model};
use crate::model::operation_rules;
use crate::model::text::storable;
use crate::model::{
    NewOperation, Operation, OperationDetail, OperationFilter, OperationKind, OperationState, Page,
};

pub use rows::fetch;

/// A workload Corral drives: a named set of Ollama pods, and what may be
/// done to it. Built from the settings, shared by the domain and the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    /// Replicas a scale may ask for.
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Every pod has its own models volume (a pull runs on each pod), or
    /// they share one ReadWriteMany volume (a pull runs once).
    pub shared_models: bool,
    /// The cluster driver can scale it (the static driver cannot).
    pub can_scale: bool,
    /// One pod's GPU memory in bytes, when configured.
    pub gpu_memory: Option<i64>,
}

/// The workloads, the first being the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workloads(pub Vec<Workload>);

impl Workloads {
    /// The named workload, or the default one when no name is given.
    pub fn get(&self, name: Option<&str>) -> Result<&Workload> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => self.0.first().ok_or_else(|| Error::Validation {
                field: "workload".into(),
                message: "no workload is configured (cluster.workloads)".into(),
            }),
            Some(n) => self.0.iter().find(|w| w.name == n).ok_or_else(|| {
                let known: Vec<&str> = self.0.iter().map(|w| w.name.as_str()).collect();
                Error::Validation {
                    field: "workload".into(),
                    message: format!("no workload {n:?}; known: {}", known.join(", ")),
                }
            }),
        }
    }
}

/// What `start` did: a new operation, or the running pull it joined.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    pub operation: Operation,
    /// An identical pull was already under way; this is it.
    pub joined: bool,
}

/// Starts an operation (or joins the running pull of the same model).
/// Team owners act for their own team, on models its allow-list holds;
/// admins act for any team or for the platform, on any model; scaling is
/// for admins. `next_window` is when the next maintenance window opens, if
/// one is defined (asked for by `in_next_window`). Run it in a transaction.
pub async fn start(
    tx: &mut PgConnection,
    actor: &Actor,
    workloads: &Workloads,
    new: &NewOperation,
) -> Result<Started> {
    let scope = new.scope();
    let kind = new.kind();
    if let Some(w) = scope.workload {
        operation_rules::WORKLOAD.check("workload", w)?;
    }
    let workload = workloads.get(scope.workload)?;
    let team = match scope.team.map(str::trim).filter(|t| !t.is_empty()) {
        Some(slug) => {
            storable("team", slug)?;
            let id = super::teams::visible_id(&mut *tx, actor, slug).await?;
            Some((id, slug.to_owned()))
        }
        None => None,
    };
    match (kind, &team) {
        (OperationKind::Scale, _) | (_, None) => actor.authorize(Action::ManageCluster)?,
        (_, Some((id, _))) => actor.authorize(Action::StartTeamOperation(*id))?,
    }
    let (model, destination, replicas) = fields(new, workload)?;
    if let (NewOperation::Pull { force: false, .. }, Some(m), Some(gpu)) =
        (new, model.as_deref(), workload.gpu_memory)
        && let Some(why) = crate::model::capacity::pull_warning(m, gpu)
    {
        return Err(Error::Validation {
            field: "model".into(),
            message: format!(
                "{why}. To pull it anyway, ask again with force (the form's \"even if it does not fit\")"
            ),
        });
    }
    if let (Some((team_id, slug)), false) = (&team, actor.is_admin()) {
        for m in model.iter().chain(destination.iter()) {
            allowed_for_team(&mut *tx, *team_id, slug, m).await?;
        }
    }
    let not_before = super::maintenance::not_before(&mut *tx, scope.in_next_window).await?;
    if kind == OperationKind::Pull
        && let Some(id) = running_pull(&mut *tx, &workload.name, model.as_deref()).await?
    {
        return Ok(Started {
            operation: fetch(&mut *tx, id).await?,
            joined: true,
        });
    }
    let state = if not_before.is_some() {
        OperationState::Scheduled
    } else {
        OperationState::Queued
    };
    let id = sqlx::query_scalar!(
        r#"INSERT INTO operations
             (kind, workload, model, destination, replicas, state, team_id, requested_by,
              requested_by_name, not_before)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT DO NOTHING
           RETURNING id"#,
        kind.as_str(),
        workload.name,
        model,
        destination,
        replicas,
        state.as_str(),
        team.as_ref().map(|t| t.0),
        actor.user.id,
        actor.user.username,
        not_before,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        // A pull of the same model began between the look and the insert.
        let id = running_pull(&mut *tx, &workload.name, model.as_deref())
            .await?
            .ok_or_else(|| Error::Conflict("the operation could not be queued; retry".into()))?;
        return Ok(Started {
            operation: fetch(&mut *tx, id).await?,
            joined: true,
        });
    };
    let operation = fetch(&mut *tx, id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: &format!("operation.{}", kind.as_str()),
            target_kind: "operation",
            target_id: &id.to_string(),
            team_id: team.as_ref().map(|t| t.0),
            before: None,
            after: Some(json!({
                "workload": workload.name, "model": model, "destination": destination,
                "replicas": replicas, "state": state.as_str(), "not_before": not_before,
            })),
        },
    )
    .await?;
    Ok(Started {
        operation,
        joined: false,
    })
}

/// The model, destination and replicas of `new`, checked.
fn fields(
    new: &NewOperation,
    workload: &Workload,
) -> Result<(Option<String>, Option<String>, Option<i32>)> {
    let model = |field: &str, m: &str| -> Result<String> {
        key_rules::model_name(field, m.trim())?;
        Ok(normalize_model(m))
    };
    Ok(match new {
        NewOperation::Pull { model: m, .. } | NewOperation::Delete { model: m, .. } => {
            (Some(model("model", m)?), None, None)
        }
        NewOperation::Copy {
            model: m,
            destination,
            ..
        } => {
            let (from, to) = (model("model", m)?, model("destination", destination)?);
            if from == to {
                return Err(Error::Validation {
                    field: "destination".into(),
                    message: "must differ from the model".into(),
                });
            }
            (Some(from), Some(to), None)
        }
        NewOperation::Scale { replicas, .. } => {
            let r = *replicas;
            operation_rules::REPLICAS.check("replicas", i64::from(r))?;
            if !workload.can_scale {
                return Err(Error::Validation {
                    field: "kind".into(),
                    message: format!(
                        "workload {} cannot be scaled from Corral: its pods are a fixed list of Ollama URLs (cluster.driver = \"static\")",
                        workload.name
                    ),
                });
            }
            if r < workload.min_replicas || r > workload.max_replicas {
                return Err(Error::Validation {
                    field: "replicas".into(),
                    message: format!(
                        "{r} is outside workload {}'s limits: at least {} and at most {} replicas",
                        workload.name, workload.min_replicas, workload.max_replicas
                    ),
                });
            }
            (None, None, Some(r))
        }
    })
}

/// Ok when the team's allow-list holds `model` (a team without one may use
/// every model) and no other team's (or the platform's) Modelfile creates
/// it.
async fn allowed_for_team(
    conn: impl PgExecutor<'_>,
    team_id: Uuid,
    slug: &str,
    model: &str,
) -> Result<()> {
    let r = sqlx::query!(
        r#"SELECT allowed_models,
                  EXISTS (SELECT 1 FROM modelfiles m
                           WHERE m.name = $2 AND m.team_id IS DISTINCT FROM $1) AS "foreign!",
                  EXISTS (SELECT 1 FROM modelfiles m WHERE m.name = $2 AND m.team_id = $1) AS "own!"
             FROM teams WHERE id = $1"#,
        team_id,
        model
    )
    .fetch_one(conn)
    .await?;
    if r.foreign {
        return Err(Error::Validation {
            field: "model".into(),
            message: format!("{model} is another team's (or the platform's) Modelfile model"),
        });
    }
    if r.own {
        return Ok(());
    }
    match r.allowed_models {
        Some(list) if !list.iter().any(|m| m == model) => Err(Error::Validation {
            field: "model".into(),
            message: format!(
                "{model} is not on team {slug}'s model allow-list; ask an admin to add it or to pull it"
            ),
        }),
        _ => Ok(()),
    }
}

/// The id of the pull of `model` on `workload` that is still to finish.
async fn running_pull(
    conn: impl PgExecutor<'_>,
    workload: &str,
    model: Option<&str>,
) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT id FROM operations
            WHERE kind = 'pull' AND workload = $1 AND model = $2
              AND state IN ('scheduled', 'queued', 'running')"#,
        workload,
        model,
    )
    .fetch_optional(conn)
    .await?)
}

/// Operations the actor may see, newest first: their teams' (admins: all,
/// the platform's included). `cursor` is the last id of the previous page.
pub async fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    filter: &OperationFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<Operation>> {
    crate::model::PAGE_LIMIT.check("limit", limit)?;
    let state = parse_opt("state", filter.state.as_deref(), OperationState::parse)?;
    let kind = parse_opt("kind", filter.kind.as_deref(), OperationKind::parse)?;
    let model = match filter.model.as_deref().filter(|m| !m.trim().is_empty()) {
        Some(m) => {
            storable("model", m)?;
            Some(normalize_model(m))
        }
        None => None,
    };
    let cursor = match cursor {
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| Error::Validation {
            field: "cursor".into(),
            message: "not a cursor returned by this endpoint".into(),
        })?),
        None => None,
    };
    let team = match filter.team.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(slug) => {
            storable("team", slug)?;
            Some(super::teams::visible_id(&mut *conn, actor, slug).await?)
        }
        None => None,
    };
    let all = actor.is_admin();
    let ids = sqlx::query_scalar!(
        r#"SELECT o.id FROM operations o
            WHERE ($1 OR o.team_id = ANY($2))
              AND ($3::text IS NULL OR o.state = $3)
              AND ($4::text IS NULL OR o.kind = $4)
              AND ($5::text IS NULL OR o.model = $5 OR o.destination = $5)
              AND ($6::uuid IS NULL OR o.team_id = $6)
              AND ($7::uuid IS NULL OR (o.created_at, o.id) <
                   (SELECT c.created_at, c.id FROM operations c WHERE c.id = $7))
            ORDER BY o.created_at DESC, o.id DESC
            LIMIT $8"#,
        all,
        &actor.team_ids(),
        state.map(OperationState::as_str),
        kind.map(OperationKind::as_str),
        model,
        team,
        cursor,
        limit + 1,
    )
    .fetch_all(&mut *conn)
    .await?;
    let items = rows::fetch_many(&mut *conn, &ids).await?;
    Ok(Page::from_overfetch(items, limit, |o| o.id.to_string()))
}

fn parse_opt<T>(
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    // Present but empty (`?state=`) is not "any": it names no state.
    match value.map(str::trim) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| Error::Validation {
            field: field.into(),
            message: format!("unknown {field} {v:?}"),
        }),
    }
}

/// The operation, if the actor may see it (its team's members, admins);
/// otherwise `NotFound`, whether or not it exists.
pub async fn visible(conn: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Operation> {
    let team_id = sqlx::query_scalar!("SELECT team_id FROM operations WHERE id = $1", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)?;
    match team_id {
        Some(t) => actor.authorize(Action::ViewTeam(t))?,
        None if actor.is_admin() => {}
        None => return Err(Error::NotFound),
    }
    fetch(&mut *conn, id).await
}

/// The operation with its log.
pub async fn detail(conn: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<OperationDetail> {
    let operation = visible(&mut *conn, actor, id).await?;
    let log = rows::log(&mut *conn, id).await?;
    Ok(OperationDetail { operation, log })
}

/// Cancels an operation: one still waiting ends at once; a running one is
/// asked to stop, and its runner drops the request to every pod. Team
/// owners cancel their team's, admins any. Run it in a transaction.
pub async fn cancel(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Operation> {
    let before = visible(&mut *tx, actor, id).await?;
    let team_id = sqlx::query_scalar!("SELECT team_id FROM operations WHERE id = $1", id)
        .fetch_one(&mut *tx)
        .await?;
    match team_id {
        Some(t) => actor.authorize(Action::StartTeamOperation(t))?,
        None => actor.authorize(Action::ManageCluster)?,
    }
    if before.state.is_final() {
        return Err(Error::Conflict(format!(
            "the operation has already {}",
            before.state.as_str()
        )));
    }
    sqlx::query!(
        r#"UPDATE operations
              SET cancel_requested = TRUE, updated_at = now(),
                  state = CASE WHEN state IN ('queued', 'scheduled') THEN 'cancelled' ELSE state END,
                  finished_at = CASE WHEN state IN ('queued', 'scheduled') THEN now() ELSE finished_at END
            WHERE id = $1"#,
        id
    )
    .execute(&mut *tx)
    .await?;
    rows::append_log(
        &mut *tx,
        id,
        None,
        &format!("cancel asked by {}", actor.user.username),
    )
    .await?;
    let after = fetch(&mut *tx, id).await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "operation.cancel",
            target_kind: "operation",
            target_id: &id.to_string(),
            team_id,
            before: Some(json!({ "state": before.state.as_str() })),
            after: Some(json!({ "state": after.state.as_str(), "cancel_requested": true })),
        },
    )
    .await?;
    Ok(after)
}
