//! Corral's server: settings, telemetry, database start-up and the HTTP router
//! that serves the portal, the probes and the metrics.

pub mod database;
pub mod health;
pub mod settings;
pub mod telemetry;

use std::time::Duration;

use app::domain::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{Span, info_span};

use crate::telemetry::Metrics;

/// The header that carries a request's id in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// The whole HTTP application: portal pages, server functions, static
/// assets, probes and metrics, with request ids, tracing and panic safety.
pub fn router(state: AppState, metrics: Metrics) -> Router {
    let routes = generate_route_list(app::App);
    let leptos_options = state.leptos_options.clone();
    let portal = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .leptos_routes(&state, routes, move || app::shell(leptos_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .with_state(state);
    let ops = Router::new()
        .route("/metrics", get(telemetry::metrics_handler))
        .with_state(metrics.clone());

    let request_id = header::HeaderName::from_static(REQUEST_ID);
    portal
        .merge(ops)
        .layer(axum::middleware::from_fn_with_state(metrics, telemetry::track_http))
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
