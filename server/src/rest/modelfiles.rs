//! `/api/v1/modelfiles`: versioned Modelfiles for a team's CI: list, read,
//! create, save a version, diff, roll back, deploy, drift, import, and
//! `validate` (lint a Modelfile without saving it).

use app::domain::modelfiles::{self, deploy};
use app::model::modelfiles::unified_diff;
use app::model::{
    Deploy, DriftReport, ImportModelfile, Modelfile, ModelfileDetail, ModelfileVersion,
    NewModelfile, NewVersion, Operation, Rollback, ValidateModelfile, Validation, key_rules,
    modelfiles::rules,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use uuid::Uuid;

use super::problem::Problem;
use super::{Body, Caller, Params, param};
use crate::ServerState;

fn db_err(e: sqlx::Error) -> Problem {
    app::domain::Error::from(e).into()
}

fn parse_id(id: &str) -> Result<Uuid, app::domain::Error> {
    Uuid::parse_str(id).map_err(|_| app::domain::Error::NotFound)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    team: Option<String>,
}

impl IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(
            "team",
            ParameterIn::Query,
            "Only this team's Modelfiles (slug).",
            app::model::paging_schema::filter(),
            None,
        )]
    }
}

/// The Modelfiles you may see: the platform's and your teams' (admins:
/// all).
#[utoipa::path(get, path = "/api/v1/modelfiles", tag = "modelfiles", params(ListQuery),
    responses(
        (status = 200, body = Vec<Modelfile>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_modelfiles(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<Modelfile>>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(
        modelfiles::list(&mut conn, &actor, q.team.as_deref()).await?,
    ))
}

/// Creates a Modelfile with its first version. Refused (422, the line and
/// column in the message) when Ollama would refuse the text, or when its
/// `FROM` is not on the team's allow-list; 409 when the name is taken.
#[utoipa::path(post, path = "/api/v1/modelfiles", tag = "modelfiles",
    request_body = NewModelfile,
    responses(
        (status = 201, body = ModelfileDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_modelfile(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Body(new): Body<NewModelfile>,
) -> Result<(StatusCode, Json<ModelfileDetail>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let d = modelfiles::create(&mut tx, &actor, &new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// Checks a Modelfile as Ollama would read it, and shows the
/// `/api/create` request it becomes. Saves nothing: for linting in CI.
#[utoipa::path(post, path = "/api/v1/modelfiles/validate", tag = "modelfiles",
    request_body = ValidateModelfile,
    responses(
        (status = 200, description = "`ok` says whether Ollama would accept it", body = Validation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate_modelfile(
    Caller(_actor): Caller,
    Body(v): Body<ValidateModelfile>,
) -> Result<Json<Validation>, Problem> {
    app::model::text::storable("text", &v.text).map_err(app::domain::Error::from)?;
    rules::TEXT
        .check("text", &v.text)
        .map_err(app::domain::Error::from)?;
    let name = match v.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => {
            key_rules::model_name("name", n).map_err(app::domain::Error::from)?;
            key_rules::normalize_model(n)
        }
        None => modelfiles::VALIDATE_NAME.to_owned(),
    };
    Ok(Json(app::model::modelfiles::check(&v.text, &name)))
}

/// Makes a Modelfile (version 1) from a model already on the workload's
/// pods, rendered from its `/api/show`.
#[utoipa::path(post, path = "/api/v1/modelfiles/import", tag = "modelfiles",
    request_body = ImportModelfile,
    responses(
        (status = 201, body = ModelfileDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_modelfile(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Body(i): Body<ImportModelfile>,
) -> Result<(StatusCode, Json<ModelfileDetail>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let d = deploy::import(&mut tx, &actor, s.app.cluster.as_ref(), &i).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// One Modelfile: its newest version, history and deployments.
#[utoipa::path(get, path = "/api/v1/modelfiles/{id}", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id")),
    responses(
        (status = 200, body = ModelfileDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_modelfile(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelfileDetail>, Problem> {
    let id = parse_id(&id)?;
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(modelfiles::get(&mut conn, &actor, id).await?))
}

/// Saves a new version (the team's members; admins for the platform's).
#[utoipa::path(post, path = "/api/v1/modelfiles/{id}/versions", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id")),
    request_body = NewVersion,
    responses(
        (status = 201, body = ModelfileVersion),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_version(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(new): Body<NewVersion>,
) -> Result<(StatusCode, Json<ModelfileVersion>), Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let v = modelfiles::add_version(&mut tx, &actor, id, &new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// One version, whole.
#[utoipa::path(get, path = "/api/v1/modelfiles/{id}/versions/{version}", tag = "modelfiles",
    params(
        ("id" = Uuid, Path, description = "Modelfile id"),
        ("version" = i32, Path, description = "Version number", minimum = 1),
    ),
    responses(
        (status = 200, body = ModelfileVersion),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_version(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<ModelfileVersion>, Problem> {
    let id = parse_id(&id)?;
    let version: i32 = version.parse().map_err(|_| app::domain::Error::NotFound)?;
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(
        modelfiles::version(&mut conn, &actor, id, version).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

impl IntoParams for DiffQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let version = || {
            utoipa::openapi::RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(i32::MAX))
                    .into(),
            )
        };
        vec![
            param(
                "from",
                ParameterIn::Query,
                "The old version (default: the one before `to`).",
                version(),
                None,
            ),
            param(
                "to",
                ParameterIn::Query,
                "The new version (default: the newest).",
                version(),
                None,
            ),
        ]
    }
}

/// A unified diff of two versions (`text/x-diff`; empty when they are
/// equal).
#[utoipa::path(get, path = "/api/v1/modelfiles/{id}/diff", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id"), DiffQuery),
    responses(
        (status = 200, description = "Unified diff, `--- vFROM` / `+++ vTO`", body = String, content_type = "text/x-diff"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn diff(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Params(q): Params<DiffQuery>,
) -> Result<impl IntoResponse, Problem> {
    let id = parse_id(&id)?;
    let number = |field: &str, v: Option<&str>| -> Result<Option<i32>, app::domain::Error> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match v.parse::<i32>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(app::domain::Error::Validation {
                    field: field.into(),
                    message: "must be a version number (1 or more)".into(),
                }),
            },
        }
    };
    let (from, to) = (
        number("from", q.from.as_deref())?,
        number("to", q.to.as_deref())?,
    );
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    let detail = modelfiles::get(&mut conn, &actor, id).await?;
    let to = to.unwrap_or(detail.modelfile.latest);
    let from = from.unwrap_or((to - 1).max(1));
    let mut read = async |field: &str, n: i32| {
        modelfiles::version(&mut conn, &actor, id, n)
            .await
            .map_err(|e| match e {
                app::domain::Error::NotFound => app::domain::Error::Validation {
                    field: field.into(),
                    message: format!("{} has no version {n}", detail.modelfile.name),
                },
                other => other,
            })
    };
    let old = read("from", from).await?;
    let new = read("to", to).await?;
    let text = unified_diff(&old.text, &new.text, &format!("v{from}"), &format!("v{to}"));
    Ok(([(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], text))
}

/// A new version equal to an old one.
#[utoipa::path(post, path = "/api/v1/modelfiles/{id}/rollback", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id")),
    request_body = Rollback,
    responses(
        (status = 201, body = ModelfileVersion),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rollback(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(r): Body<Rollback>,
) -> Result<(StatusCode, Json<ModelfileVersion>), Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let v = modelfiles::rollback(&mut tx, &actor, id, &r).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Deploys a version (the newest by default) to every pod of a workload:
/// a `create` operation (follow it under `/api/v1/operations/{id}`). The
/// workload's deployed version moves when every pod succeeded.
#[utoipa::path(post, path = "/api/v1/modelfiles/{id}/deploy", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id")),
    request_body = Deploy,
    responses(
        (status = 201, description = "Queued (or scheduled for the next maintenance window)", body = Operation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deploy_modelfile(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(d): Body<Deploy>,
) -> Result<(StatusCode, Json<Operation>), Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let started = deploy::deploy(&mut tx, &actor, s.app.cluster.workloads(), id, &d).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(started.operation)))
}

#[derive(Debug, Deserialize)]
pub struct DriftQuery {
    workload: Option<String>,
}

impl IntoParams for DriftQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![param(
            "workload",
            ParameterIn::Query,
            "The workload (default: the configured one).",
            app::model::operation_rules::schema::workload(),
            None,
        )]
    }
}

/// Whether each pod runs the deployed version (its `/api/show` against
/// what the version sets).
#[utoipa::path(get, path = "/api/v1/modelfiles/{id}/drift", tag = "modelfiles",
    params(("id" = Uuid, Path, description = "Modelfile id"), DriftQuery),
    responses(
        (status = 200, body = DriftReport),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn drift(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Params(q): Params<DriftQuery>,
) -> Result<Json<DriftReport>, Problem> {
    let id = parse_id(&id)?;
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    let workload = q
        .workload
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty());
    Ok(Json(
        deploy::drift(&mut conn, &actor, s.app.cluster.as_ref(), id, workload).await?,
    ))
}
