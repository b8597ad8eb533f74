//! `/api/v1/teams`.

use app::model::{Member, NewMember, NewTeam, Page, Team, TeamDetail, TeamPatch};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::problem::Problem;
use super::{Body, Caller, MemberPath, Paging, Params, SlugPath};
use crate::ServerState;

/// The caller's teams (every team, for admins), by slug.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(Paging),
    responses(
        (status = 200, body = Page<Team>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_teams(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Params(p): Params<Paging>,
) -> Result<Json<Page<Team>>, Problem> {
    Ok(Json(
        app::domain::teams::list(&s.app.db, &actor, p.cursor.as_deref(), p.limit()).await?,
    ))
}

/// One team with its members. 404 for teams the caller is not in.
#[utoipa::path(get, path = "/api/v1/teams/{slug}", tag = "teams",
    params(SlugPath),
    responses(
        (status = 200, body = TeamDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_team(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
) -> Result<Json<TeamDetail>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(app::domain::Error::from)?;
    Ok(Json(
        app::domain::teams::get(&mut conn, &actor, &slug).await?,
    ))
}

/// Creates a team the IdP does not know (admins only).
#[utoipa::path(post, path = "/api/v1/teams", tag = "admin", request_body = NewTeam,
    responses(
        (status = 201, body = Team),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_team(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Body(new): Body<NewTeam>,
) -> Result<(StatusCode, Json<Team>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(app::domain::Error::from)?;
    let team = app::domain::teams::create(&mut tx, &actor, &new).await?;
    tx.commit().await.map_err(app::domain::Error::from)?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Changes a team's name or description (admins only).
#[utoipa::path(patch, path = "/api/v1/teams/{slug}", tag = "admin", request_body = TeamPatch,
    params(SlugPath),
    responses(
        (status = 200, body = Team),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_team(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Body(patch): Body<TeamPatch>,
) -> Result<Json<Team>, Problem> {
    let mut tx = s.app.db.begin().await.map_err(app::domain::Error::from)?;
    let team = app::domain::teams::update(&mut tx, &actor, &slug, &patch).await?;
    tx.commit().await.map_err(app::domain::Error::from)?;
    Ok(Json(team))
}

/// Adds someone who has signed in to a team by hand (admins only).
#[utoipa::path(post, path = "/api/v1/teams/{slug}/members", tag = "admin", request_body = NewMember,
    params(SlugPath),
    responses(
        (status = 201, body = Member),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_member(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Body(new): Body<NewMember>,
) -> Result<(StatusCode, Json<Member>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(app::domain::Error::from)?;
    let member =
        app::domain::teams::add_member(&mut tx, &actor, &slug, &new.username, new.role).await?;
    tx.commit().await.map_err(app::domain::Error::from)?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Removes a membership an admin added (admins only). Memberships from the
/// IdP are changed in the IdP: 409.
#[utoipa::path(delete, path = "/api/v1/teams/{slug}/members/{username}", tag = "admin",
    params(MemberPath),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_member(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path((slug, username)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let mut tx = s.app.db.begin().await.map_err(app::domain::Error::from)?;
    app::domain::teams::remove_member(&mut tx, &actor, &slug, &username).await?;
    tx.commit().await.map_err(app::domain::Error::from)?;
    Ok(StatusCode::NO_CONTENT)
}
