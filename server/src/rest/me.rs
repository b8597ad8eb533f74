//! `GET /api/v1/me`.

use app::model::Me;
use axum::Json;
use axum::extract::State;

use super::Caller;
use super::problem::Problem;
use crate::ServerState;

/// Who the caller is, and their teams with roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    responses(
        (status = 200, body = Me),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_me(
    State(s): State<ServerState>,
    Caller(actor): Caller,
) -> Result<Json<Me>, Problem> {
    let teams = app::domain::identity::my_teams(&s.app.db, &actor).await?;
    Ok(Json(Me {
        via: actor.via.as_str().to_owned(),
        user: actor.user,
        teams,
    }))
}
