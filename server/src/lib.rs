//! Corral's server: settings, telemetry, database start-up, sign-in, the REST
//! API and the HTTP router that serves them with the portal.

pub mod auth;
pub mod cluster;
pub mod health;
pub mod operation_events;
pub mod prometheus;
pub mod rest;
pub mod telemetry;
pub mod workers;

pub use gateway;
pub use startup::{database, error_chain, settings, shutdown_signal};

use std::sync::Arc;
use std::time::Duration;

use app::domain::{AppState, Probe};
use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{get, post};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;
use tracing::{Span, info_span};

use crate::auth::Auth;
use crate::telemetry::Metrics;

/// The header that carries a request's id in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Everything the server's handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub auth: Arc<Auth>,
    pub metrics: Metrics,
    pub sessions: SessionConfig,
    /// Changes to operations, for the event streams.
    pub operation_events: operation_events::OperationEvents,
}

/// How session cookies are made.
#[derive(Clone)]
pub struct SessionConfig {
    /// Signs the session cookie.
    pub key: Key,
    /// `Secure` attribute: on in production (HTTPS).
    pub secure: bool,
    pub idle_timeout: Duration,
}

impl SessionConfig {
    /// A signing key derived from the configured secret, or a random one per
    /// process (the `local` profile; sessions then end at restart).
    pub fn key_from(secret: Option<&str>) -> Key {
        use sha2::Digest;
        match secret {
            Some(s) => Key::from(&sha2::Sha512::digest(s.as_bytes())[..]),
            None => Key::generate(),
        }
    }
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(s: &ServerState) -> Self {
        s.app.leptos_options.clone()
    }
}

impl FromRef<ServerState> for AppState {
    fn from_ref(s: &ServerState) -> Self {
        s.app.clone()
    }
}

impl FromRef<ServerState> for Arc<Auth> {
    fn from_ref(s: &ServerState) -> Self {
        s.auth.clone()
    }
}

/// The IdP as a status-page dependency.
struct IdpProbe(Arc<Auth>);

impl Probe for IdpProbe {
    fn check(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = app::model::DependencyStatus> + Send + '_>,
    > {
        Box::pin(async move {
            match &self.0.oidc {
                Some(oidc) => oidc.check().await,
                None => app::model::DependencyStatus {
                    id: "idp".into(),
                    name: "Identity provider".into(),
                    state: app::model::DependencyState::Healthy,
                    detail: "not configured: development sign-in only (local profile)".into(),
                    latency_ms: 0,
                },
            }
        })
    }
}

/// The probes the status page runs after Postgres.
pub fn probes(
    auth: &Arc<Auth>,
    prometheus: Option<Arc<prometheus::Prometheus>>,
) -> Arc<Vec<Arc<dyn Probe>>> {
    Arc::new(vec![
        Arc::new(IdpProbe(auth.clone())) as Arc<dyn Probe>,
        Arc::new(prometheus::PrometheusProbe(prometheus)),
    ])
}

/// The whole HTTP application: portal pages, server functions, sign-in,
/// REST API, static assets, probes and metrics, with sessions, CSRF
/// protection, request ids, tracing and panic safety.
pub fn router(state: ServerState) -> Router {
    let routes = generate_route_list(app::App);
    let leptos_options = state.app.leptos_options.clone();
    let app_state = state.app.clone();
    let (rest, openapi) = rest::routes();
    let openapi = Arc::new(openapi);

    let context = move || provide_context(app_state.clone());
    let portal = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/auth/login", get(auth::oidc::login))
        .route("/auth/callback", get(auth::oidc::callback))
        .route("/auth/logout", post(auth::oidc::logout))
        .route("/auth/dev", post(auth::dev::sign_in))
        .merge(rest)
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            ServerState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn(rpc_error_status))
        .layer(axum::middleware::from_fn(auth::require_sign_in))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::resolve_actor,
        ))
        .layer(
            SessionManagerLayer::new(PostgresStore::new(state.app.db.clone()))
                .with_name(auth::SESSION_COOKIE)
                .with_signed(state.sessions.key.clone())
                .with_secure(state.sessions.secure)
                .with_http_only(true)
                .with_same_site(SameSite::Lax)
                .with_path("/")
                .with_expiry(Expiry::OnInactivity(
                    time::Duration::try_from(state.sessions.idle_timeout)
                        .unwrap_or(time::Duration::hours(8)),
                )),
        )
        .with_state(state.clone());
    let docs = Router::new()
        .route("/api/v1/openapi.json", get(rest::docs::openapi_json))
        .route("/api/docs", get(rest::docs::docs_page))
        .with_state(openapi);
    let ops = Router::new()
        .route("/metrics", get(telemetry::metrics_handler))
        .with_state((state.metrics.clone(), state.app.db.clone()));

    let request_id = header::HeaderName::from_static(REQUEST_ID);
    portal
        .merge(docs)
        .merge(ops)
        .layer(axum::middleware::from_fn_with_state(state.metrics, telemetry::track_http))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| req.uri().path().to_owned());
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    info_span!("http", method = %req.method(), route = %route, request_id = %id, status = tracing::field::Empty)
                })
                .on_request(())
                .on_response(|res: &Response<Body>, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "response");
                }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// A panic anywhere in a handler becomes this page, never a dropped connection.
fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from(include_str!("../assets/500.html")))
        .expect("static response is valid")
}

/// Server functions answer every error with 500; this gives each the status
/// its [`app::model::AppError`] stands for (403, 404, 422, …), so clients,
/// logs and metrics see what happened.
pub async fn rpc_error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_rpc = req.uri().path().starts_with("/rpc/");
    let res = next.run(req).await;
    if !is_rpc || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::from("error body too large"));
    };
    if let Ok(e) = serde_json::from_slice::<app::model::AppError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(e.status_code())
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}
