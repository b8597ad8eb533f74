//! The REST API under `/api/v1`: thin adapters (authorize → domain → map
//! errors) with the OpenAPI document generated from the same handlers, so a
//! route cannot exist without being documented.

pub mod audit;
pub mod docs;
pub mod keys;
pub mod me;
pub mod problem;
pub mod teams;

use app::domain::Actor;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ServerState;
use problem::{Problem, from_rejection};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Corral API",
        description = "Automation for Corral: teams, keys, Modelfiles, models and usage, with the same rules as the portal.\n\n\
            **Authentication**: a `manage`-scoped API key as `Authorization: Bearer crl_…`, or the portal's session cookie for same-origin calls.\n\n\
            **Errors**: RFC 9457 `application/problem+json`; `field` names a rejected input.\n\n\
            **Pagination**: list endpoints take `limit` (1–200, default 50) and `cursor`; pass the response's `next_cursor` as `cursor` for the next page (absent on the last page)."
    ),
    modifiers(&Security),
    tags(
        (name = "identity", description = "Who is calling"),
        (name = "teams", description = "Teams and their members"),
        (name = "keys", description = "API key requests, keys and team policy"),
        (name = "usage", description = "What a team used through the gateway"),
        (name = "admin", description = "Platform admins only"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("crl_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The `/api/v1` routes and the OpenAPI document describing exactly them.
pub fn routes() -> (axum::Router<ServerState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::get_me))
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(teams::get_team, teams::update_team))
        .routes(routes!(teams::add_member))
        .routes(routes!(teams::remove_member))
        .routes(routes!(audit::list_audit))
        .routes(routes!(keys::list_requests, keys::create_request))
        .routes(routes!(keys::list_all_requests))
        .routes(routes!(keys::decide_request))
        .routes(routes!(keys::withdraw_request))
        .routes(routes!(keys::claim_key))
        .routes(routes!(keys::list_keys))
        .routes(routes!(keys::list_all_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::rotate_key))
        .routes(routes!(keys::get_policy, keys::update_policy))
        .routes(routes!(keys::team_usage))
        .split_for_parts()
}

/// The authenticated caller of a REST endpoint; 401 otherwise.
pub struct Caller(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                Problem::unauthorized("sign in, or send a valid API key as a bearer token")
            })
    }
}

/// A JSON body whose errors are problems naming what was wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(from_rejection("body", e.body_text())),
        }
    }
}

/// Query parameters whose errors are problems naming what was wrong.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(from_rejection("query", e.body_text())),
        }
    }
}

/// `?limit=&cursor=` on list endpoints.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page, 1 to 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(50)
    }
}
