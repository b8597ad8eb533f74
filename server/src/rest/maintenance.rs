//! `/api/v1/maintenance-windows`: the weekly windows scheduled operations
//! wait for.

use app::domain::maintenance;
use app::model::{MaintenanceSchedule, MaintenanceWindow, NewMaintenanceWindow};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use super::problem::Problem;
use super::{Body, Caller};
use crate::ServerState;

fn db_err(e: sqlx::Error) -> Problem {
    app::domain::Error::from(e).into()
}

/// The maintenance windows, and when the next one opens.
#[utoipa::path(get, path = "/api/v1/maintenance-windows", tag = "cluster",
    responses(
        (status = 200, body = MaintenanceSchedule),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_windows(
    State(s): State<ServerState>,
    Caller(_actor): Caller,
) -> Result<Json<MaintenanceSchedule>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(maintenance::schedule(&mut conn).await?))
}

/// Adds a weekly window (admins).
#[utoipa::path(post, path = "/api/v1/maintenance-windows", tag = "admin",
    request_body = NewMaintenanceWindow,
    responses(
        (status = 201, body = MaintenanceWindow),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_window(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Body(new): Body<NewMaintenanceWindow>,
) -> Result<(StatusCode, Json<MaintenanceWindow>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let w = maintenance::add(&mut tx, &actor, &new).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// Removes a window (admins).
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "Window id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_window(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| app::domain::Error::NotFound)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    maintenance::remove(&mut tx, &actor, id).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(StatusCode::NO_CONTENT)
}
