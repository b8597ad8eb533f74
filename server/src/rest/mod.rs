//! The REST API under `/api/v1`: thin adapters (authorize → domain → map
//! errors) with the OpenAPI document generated from the same handlers, so a
//! route cannot exist without being documented.

pub mod audit;
pub mod docs;
pub mod keys;
pub mod maintenance;
pub mod me;
pub mod modelfiles;
pub mod operations;
pub mod problem;
pub mod teams;
pub mod usage;

use app::domain::Actor;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required, Schema};
use utoipa::{IntoParams, Modify, OpenApi};
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
        (name = "modelfiles", description = "Versioned Modelfiles: edit, diff, roll back, deploy to every pod, drift, lint"),
        (name = "cluster", description = "The Ollama workloads: their state, and pulls, deletes, copies and scaling as durable operations"),
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
        .routes(routes!(usage::team_usage))
        .routes(routes!(usage::export_usage))
        .routes(routes!(
            operations::list_operations,
            operations::start_operation
        ))
        .routes(routes!(operations::get_operation))
        .routes(routes!(operations::cancel_operation))
        .routes(routes!(operations::operation_events))
        .routes(routes!(operations::get_cluster))
        .routes(routes!(maintenance::list_windows, maintenance::add_window))
        .routes(routes!(maintenance::remove_window))
        .routes(routes!(
            modelfiles::list_modelfiles,
            modelfiles::create_modelfile
        ))
        .routes(routes!(modelfiles::validate_modelfile))
        .routes(routes!(modelfiles::import_modelfile))
        .routes(routes!(modelfiles::get_modelfile))
        .routes(routes!(modelfiles::add_version))
        .routes(routes!(modelfiles::get_version))
        .routes(routes!(modelfiles::diff))
        .routes(routes!(modelfiles::rollback))
        .routes(routes!(modelfiles::deploy_modelfile))
        .routes(routes!(modelfiles::drift))
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

/// A JSON object body whose errors are problems naming what was wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|e| from_rejection("body", e.body_text()))?;
        // Every body is an object: serde would also read a struct from an
        // array of its fields in order (`[null, null]`), which the document
        // does not allow.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(from_rejection(
                "body",
                "the body must be a JSON object".into(),
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
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

/// One parameter, its schema made from the rule the code checks.
/// (utoipa's `schema_with` on a derived `IntoParams` field drops the
/// description and `required`, so these are listed by hand.)
pub fn param(
    name: &str,
    at: ParameterIn,
    description: &str,
    schema: RefOr<Schema>,
    example: Option<&str>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at.clone())
        .required(if at == ParameterIn::Path {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .example(example.map(serde_json::Value::from))
        .build()
}

/// `?limit=&cursor=` on list endpoints.
#[derive(Debug, serde::Deserialize)]
pub struct Paging {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl IntoParams for Paging {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use app::model::paging_schema;
        vec![
            param(
                "limit",
                ParameterIn::Query,
                "Items per page.",
                paging_schema::limit(),
                None,
            ),
            param(
                "cursor",
                ParameterIn::Query,
                "`next_cursor` from the previous page.",
                paging_schema::cursor(),
                None,
            ),
        ]
    }
}

impl Paging {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(app::model::PAGE_LIMIT_DEFAULT)
    }
}

/// `{slug}` in a path (its documentation: handlers take `Path`).
pub struct SlugPath;

impl IntoParams for SlugPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![slug_param()]
    }
}

fn slug_param() -> Parameter {
    param(
        "slug",
        ParameterIn::Path,
        "Team slug.",
        app::model::rules::schema::slug(),
        Some("team-a"),
    )
}

/// `{slug}` and `{username}` in a path (their documentation).
pub struct MemberPath;

impl IntoParams for MemberPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            slug_param(),
            param(
                "username",
                ParameterIn::Path,
                "Member's username.",
                app::model::rules::schema::username(),
                Some("mia"),
            ),
        ]
    }
}
