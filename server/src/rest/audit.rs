//! `GET /api/v1/audit`.

use app::model::{AuditEntry, AuditFilter, Page};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::problem::Problem;
use super::{Caller, Params, param};
use crate::ServerState;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    team: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

impl IntoParams for AuditQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use app::model::paging_schema::{audit_cursor, filter, limit};
        let q = ParameterIn::Query;
        vec![
            param(
                "actor",
                q.clone(),
                "Username of the actor (`corral` for Corral itself).",
                filter(),
                None,
            ),
            param(
                "action",
                q.clone(),
                "Exact action, or a prefix ending in `.` such as `membership.`.",
                filter(),
                None,
            ),
            param("team", q.clone(), "Team slug.", filter(), None),
            param("limit", q.clone(), "Items per page.", limit(), None),
            param(
                "cursor",
                q,
                "`next_cursor` from the previous page.",
                audit_cursor(),
                None,
            ),
        ]
    }
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
            q.limit.unwrap_or(app::model::PAGE_LIMIT_DEFAULT),
        )
        .await?,
    ))
}
