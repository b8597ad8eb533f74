//! Deploying a Modelfile version (a `create` operation on every pod of a
//! workload), checking the pods for drift, importing a model that is
//! already on them.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Access, fetch_version, owner};
use crate::domain::audit::{self, By, Record};
use crate::domain::authz::Actor;
use crate::domain::error::{Error, Result};
use crate::domain::operations::{self, Started, Workloads};
use crate::domain::{ClusterView, PodShow};
use crate::model::key_rules::{self, normalize_model};
use crate::model::text::storable;
use crate::model::{
    Deploy, DriftReport, DriftState, ImportModelfile, ModelfileDetail, NewModelfile,
    OperationState, PodDrift, operation_rules,
};

/// Starts deploying a version (the newest by default) to a workload: on
/// every pod, the base model is pulled if missing, then `/api/create` runs.
/// The workload's deployed version moves when every pod succeeded. Run it
/// in a transaction.
pub async fn deploy(
    tx: &mut PgConnection,
    actor: &Actor,
    workloads: &Workloads,
    id: Uuid,
    d: &Deploy,
) -> Result<Started> {
    let owner = owner(&mut *tx, actor, id, Access::Deploy).await?;
    if let Some(w) = d.workload.as_deref() {
        operation_rules::WORKLOAD.check("workload", w)?;
    }
    let workload = workloads.get(d.workload.as_deref())?;
    let number = match d.version {
        Some(v) => v,
        None => {
            sqlx::query_scalar!("SELECT latest FROM modelfiles WHERE id = $1", id)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let version = fetch_version(&mut *tx, id, number)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::Validation {
                field: "version".into(),
                message: format!("{} has no version {number}", owner.name),
            },
            other => other,
        })?;
    // The allow-list may have changed since the version was saved.
    super::may_build_on(&mut *tx, actor, &owner, &version.base).await?;
    if let Some(open) = sqlx::query_scalar!(
        r#"SELECT id FROM operations
            WHERE kind = 'create' AND workload = $1 AND model = $2
              AND state IN ('scheduled', 'queued', 'running')"#,
        workload.name,
        owner.name
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        return Err(Error::Conflict(format!(
            "a deploy of {} to {} is already under way (operation {open}); wait for it or cancel it",
            owner.name, workload.name
        )));
    }
    let not_before = crate::domain::maintenance::not_before(&mut *tx, d.in_next_window).await?;
    let state = if not_before.is_some() {
        OperationState::Scheduled
    } else {
        OperationState::Queued
    };
    let op = sqlx::query_scalar!(
        r#"INSERT INTO operations
             (kind, workload, model, spec, state, team_id, requested_by, requested_by_name,
              not_before, modelfile_id, modelfile_version)
           VALUES ('create', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           RETURNING id"#,
        workload.name,
        owner.name,
        version.request,
        state.as_str(),
        owner.team_id,
        actor.user.id,
        actor.user.username,
        not_before,
        id,
        version.version,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "modelfile.deploy",
            target_kind: "modelfile",
            target_id: &id.to_string(),
            team_id: owner.team_id,
            before: None,
            after: Some(json!({
                "name": owner.name, "version": version.version, "workload": workload.name,
                "operation": op, "state": state.as_str(), "not_before": not_before,
            })),
        },
    )
    .await?;
    Ok(Started {
        operation: operations::fetch(&mut *tx, op).await?,
        joined: false,
    })
}

/// The `/api/create` request a `create` operation sends (runners).
pub async fn spec(conn: &mut PgConnection, operation: Uuid) -> Result<Value> {
    sqlx::query_scalar!("SELECT spec FROM operations WHERE id = $1", operation)
        .fetch_one(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// Whether `name` is the model of a Modelfile (runners: such a base cannot
/// be pulled from a registry).
pub async fn is_modelfile(conn: &mut PgConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM modelfiles WHERE name = $1) AS "is!""#,
        name
    )
    .fetch_one(conn)
    .await?)
}

/// Whether each pod of the workload runs the deployed version: what the
/// version sets (system, template, parameters, messages) against the pod's
/// `/api/show`.
pub async fn drift(
    conn: &mut PgConnection,
    actor: &Actor,
    cluster: &dyn ClusterView,
    id: Uuid,
    workload: Option<&str>,
) -> Result<DriftReport> {
    let owner = owner(&mut *conn, actor, id, Access::Read).await?;
    if let Some(w) = workload {
        operation_rules::WORKLOAD.check("workload", w)?;
    }
    let workload = cluster.workloads().get(workload)?.name.clone();
    let deployed = sqlx::query_scalar!(
        "SELECT version FROM modelfile_deployments WHERE modelfile_id = $1 AND workload = $2",
        id,
        workload
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(number) = deployed else {
        return Ok(DriftReport {
            workload,
            version: None,
            pods: vec![],
        });
    };
    let version = fetch_version(&mut *conn, id, number).await?;
    let shows = cluster
        .show(&workload, &owner.name)
        .await
        .map_err(|e| Error::Conflict(format!("the pods of {workload} cannot be read: {e}")))?;
    let pods = shows
        .into_iter()
        .map(|PodShow { pod, show }| match show {
            Err(e) => PodDrift {
                pod,
                state: DriftState::Unreachable,
                differences: vec![e],
            },
            Ok(None) => PodDrift {
                pod,
                state: DriftState::Missing,
                differences: vec![format!("{} is not on this pod", owner.name)],
            },
            Ok(Some(show)) => {
                let differences = differences(&version.request, &show);
                PodDrift {
                    pod,
                    state: if differences.is_empty() {
                        DriftState::InSync
                    } else {
                        DriftState::Drifted
                    },
                    differences,
                }
            }
        })
        .collect();
    Ok(DriftReport {
        workload,
        version: Some(number),
        pods,
    })
}

/// What differs between a deployed request and a pod's `/api/show`, in the
/// fields the request sets (what it leaves out comes from its base).
pub fn differences(deployed: &Value, show: &Value) -> Vec<String> {
    let on_pod = serde_json::from_value::<modelfile::ShowResponse>(show.clone())
        .map(|s| modelfile::parse(&modelfile::render(&s)))
        .ok()
        .and_then(|p| p.create_request("pod").ok())
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    for field in ["system", "template", "license"] {
        if let Some(want) = deployed.get(field).filter(|v| !v.is_null()) {
            let got = on_pod.get(field).unwrap_or(&Value::Null);
            if want != got {
                out.push(format!(
                    "{field}: the pod's differs from the deployed version's"
                ));
            }
        }
    }
    if let Some(want) = deployed.get("parameters").and_then(Value::as_object) {
        let got = on_pod.get("parameters").and_then(Value::as_object);
        for (name, value) in want {
            match got.and_then(|g| g.get(name)) {
                Some(v) if same_value(v, value) => {}
                Some(v) => out.push(format!("{name}: deployed {value}, pod {v}")),
                None => out.push(format!("{name}: deployed {value}, not set on the pod")),
            }
        }
    }
    if let Some(want) = deployed.get("messages").filter(|m| !m.is_null())
        && on_pod.get("messages").unwrap_or(&Value::Null) != want
    {
        out.push("messages: the pod's differ from the deployed version's".into());
    }
    out
}

/// Numbers compare by value (`0.1` and `0.10000000149011612`, Ollama's
/// float32, are the same setting).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// Makes a Modelfile (version 1) from a model already on the workload's
/// pods, rendered from the first ready pod's `/api/show`. Run it in a
/// transaction.
pub async fn import(
    tx: &mut PgConnection,
    actor: &Actor,
    cluster: &dyn ClusterView,
    i: &ImportModelfile,
) -> Result<ModelfileDetail> {
    key_rules::model_name("model", i.model.trim())?;
    if let Some(w) = i.workload.as_deref() {
        operation_rules::WORKLOAD.check("workload", w)?;
    }
    storable("team", i.team.as_deref().unwrap_or_default())?;
    if let Some(n) = i.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        key_rules::model_name("name", n)?;
    }
    // Who may make it, before the pods are asked anything.
    super::editable_team(&mut *tx, actor, i.team.as_deref()).await?;
    let model = normalize_model(&i.model);
    let workload = cluster.workloads().get(i.workload.as_deref())?.name.clone();
    let shows = cluster
        .show(&workload, &model)
        .await
        .map_err(|e| Error::Conflict(format!("the pods of {workload} cannot be read: {e}")))?;
    let (pod, show) = shows
        .into_iter()
        .find_map(|p| match p.show {
            Ok(Some(s)) => Some((p.pod, s)),
            _ => None,
        })
        .ok_or_else(|| Error::Validation {
            field: "model".into(),
            message: format!("{model} is on no ready pod of {workload}"),
        })?;
    let show = serde_json::from_value::<modelfile::ShowResponse>(show).map_err(|e| {
        Error::Conflict(format!(
            "{pod}'s /api/show of {model} could not be read: {e}"
        ))
    })?;
    let text = modelfile::render(&show);
    let name = match (
        i.name.as_deref().map(str::trim).filter(|n| !n.is_empty()),
        i.team.as_deref(),
    ) {
        (Some(n), _) => n.to_owned(),
        (None, Some(slug)) if !model.starts_with(&format!("{slug}/")) => {
            format!("{slug}/{}", model.rsplit('/').next().unwrap_or(&model))
        }
        (None, _) => model.clone(),
    };
    super::create(
        tx,
        actor,
        &NewModelfile {
            team: i.team.clone(),
            name,
            description: format!("Imported from {model} on {pod}"),
            text,
            message: format!("Imported from {model} ({pod}'s /api/show)"),
        },
    )
    .await
}
