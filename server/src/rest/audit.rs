//! `GET /api/v1/audit`.

use app::model::{AuditEntry, AuditFilter, Page};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::problem::Problem;
use super::{Caller, Params};
use crate::ServerState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Username of the actor (`corral` for Corral itself).
    actor: Option<String>,
    /// Exact action, or a prefix ending in `.` such as `membership.`.
    action: Option<String>,
    /// Team slug.
    team: Option<String>,
    /// Items per page, 1 to 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// The audit log, newest first (admins only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_audit(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        team: q.team,
    };
    Ok(Json(
        app::domain::audit::list(
            &s.app.db,
            &actor,
            &filter,
            q.cursor.as_deref(),
            q.limit.unwrap_or(50),
        )
        .await?,
    ))
}
