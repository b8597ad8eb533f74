//! `/api/v1` key requests, keys and team policy.

use app::domain::keys;
use app::model::{
    ApiKey, IssuedKey, KeyDecision, KeyRequest, KeyRequestOutcome, KeyRequestState, NewKeyRequest,
    RevokeKey, RotateKey, TeamPolicy, TeamPolicyPatch,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use super::problem::Problem;
use super::{Body, Caller, Params, SlugPath};
use crate::ServerState;

fn db_err(e: sqlx::Error) -> Problem {
    app::domain::Error::from(e).into()
}

/// A path id that is not a UUID names nothing: 404, like an unknown one.
fn parse_id(id: &str) -> Result<Uuid, app::domain::Error> {
    Uuid::parse_str(id).map_err(|_| app::domain::Error::NotFound)
}

/// `?state=` on request lists.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only requests in this state.
    #[param(value_type = Option<KeyRequestState>)]
    pub state: Option<String>,
}

impl RequestQuery {
    /// Read here rather than by serde, so that a bad value is a problem
    /// naming `state`.
    fn state(&self) -> Result<Option<KeyRequestState>, app::domain::Error> {
        match self.state.as_deref() {
            None => Ok(None),
            Some(s) => {
                KeyRequestState::parse(s)
                    .map(Some)
                    .ok_or_else(|| app::domain::Error::Validation {
                        field: "state".into(),
                        message: "must be one of pending, approved, denied, issued, withdrawn"
                            .into(),
                    })
            }
        }
    }
}

/// A team's key requests: all of them for owners and admins, one's own for
/// members.
#[utoipa::path(get, path = "/api/v1/teams/{slug}/key-requests", tag = "keys",
    params(SlugPath, RequestQuery),
    responses(
        (status = 200, body = Vec<KeyRequest>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_requests(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Params(q): Params<RequestQuery>,
) -> Result<Json<Vec<KeyRequest>>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(
        keys::list_requests(&mut conn, &actor, &slug, q.state()?).await?,
    ))
}

/// Asks for a key. With the team's self-service policy the key is issued at
/// once and `issued.secret` is the only time the secret is shown.
#[utoipa::path(post, path = "/api/v1/teams/{slug}/key-requests", tag = "keys",
    request_body = NewKeyRequest,
    params(SlugPath),
    responses(
        (status = 201, body = KeyRequestOutcome),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_request(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Body(new): Body<NewKeyRequest>,
) -> Result<(StatusCode, Json<KeyRequestOutcome>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let out = keys::request(&mut tx, &actor, &slug, &new, &s.app.runtime.pepper).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Every team's key requests (admins only).
#[utoipa::path(get, path = "/api/v1/key-requests", tag = "admin", params(RequestQuery),
    responses(
        (status = 200, body = Vec<KeyRequest>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_all_requests(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Params(q): Params<RequestQuery>,
) -> Result<Json<Vec<KeyRequest>>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(
        keys::list_all_requests(&mut conn, &actor, q.state()?).await?,
    ))
}

/// Approves or denies a pending request (team owners and admins). Denying
/// needs a `reason`.
#[utoipa::path(post, path = "/api/v1/key-requests/{id}/decision", tag = "keys",
    request_body = KeyDecision,
    params(("id" = Uuid, Path, description = "Key request id")),
    responses(
        (status = 200, body = KeyRequest),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decide_request(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(decision): Body<KeyDecision>,
) -> Result<Json<KeyRequest>, Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let r = keys::decide(&mut tx, &actor, id, &decision).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(r))
}

/// Takes back one's own pending request.
#[utoipa::path(post, path = "/api/v1/key-requests/{id}/withdraw", tag = "keys",
    params(("id" = Uuid, Path, description = "Key request id")),
    responses(
        (status = 200, body = KeyRequest),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw_request(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyRequest>, Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let r = keys::withdraw(&mut tx, &actor, id).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(r))
}

/// Collects an approved key (the requester only): the secret is made now
/// and returned this once.
#[utoipa::path(post, path = "/api/v1/key-requests/{id}/claim", tag = "keys",
    params(("id" = Uuid, Path, description = "Key request id")),
    responses(
        (status = 201, body = IssuedKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn claim_key(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedKey>), Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let k = keys::claim(&mut tx, &actor, id, &s.app.runtime.pepper).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(k)))
}

/// A team's keys: all of them for owners and admins, one's own for members.
#[utoipa::path(get, path = "/api/v1/teams/{slug}/keys", tag = "keys",
    params(SlugPath),
    responses(
        (status = 200, body = Vec<ApiKey>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_keys(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
) -> Result<Json<Vec<ApiKey>>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(keys::list_keys(&mut conn, &actor, &slug).await?))
}

/// Every key of every team (admins only).
#[utoipa::path(get, path = "/api/v1/keys", tag = "admin",
    responses(
        (status = 200, body = Vec<ApiKey>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_all_keys(
    State(s): State<ServerState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<ApiKey>>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(keys::list_all_keys(&mut conn, &actor).await?))
}

/// Revokes a key now (its owner, the team's owners, admins); every gateway
/// refuses it within a second.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys", request_body = RevokeKey,
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_key(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<RevokeKey>,
) -> Result<Json<ApiKey>, Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let k = keys::revoke(&mut tx, &actor, id, body.reason.as_deref()).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(k))
}

/// Replaces a key with a new one (its owner only); the old key stays valid
/// for `grace_hours` (default 24, 0 revokes it now).
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "keys", request_body = RotateKey,
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 201, body = IssuedKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_key(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<RotateKey>,
) -> Result<(StatusCode, Json<IssuedKey>), Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let k = keys::rotate(&mut tx, &actor, id, body.grace_hours, &s.app.runtime.pepper).await?;
    tx.commit().await.map_err(db_err)?;
    Ok((StatusCode::CREATED, Json(k)))
}

/// The team's models, limits and key policy.
#[utoipa::path(get, path = "/api/v1/teams/{slug}/policy", tag = "keys",
    params(SlugPath),
    responses(
        (status = 200, body = TeamPolicy),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_policy(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
) -> Result<Json<TeamPolicy>, Problem> {
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(keys::policy(&mut conn, &actor, &slug).await?))
}

/// Changes the team's models, limits and key policy (admins only); `null`
/// clears a limit.
#[utoipa::path(patch, path = "/api/v1/teams/{slug}/policy", tag = "admin",
    request_body = TeamPolicyPatch,
    params(SlugPath),
    responses(
        (status = 200, body = TeamPolicy),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_policy(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(slug): Path<String>,
    Body(patch): Body<TeamPolicyPatch>,
) -> Result<Json<TeamPolicy>, Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let p = keys::update_policy(&mut tx, &actor, &slug, &patch).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(p))
}
