//! A `TestApp`: the real router over a real (per-test) database, driven with
//! `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use std::time::Duration;

use app::domain::{AppState, Runtime};
use server::auth::Auth;
use server::{ServerState, SessionConfig};
use app::model::Profile;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use server::telemetry::Metrics;
use sqlx::PgPool;
use tower::ServiceExt;

/// The origin the test app believes it is served from.
pub const ORIGIN: &str = "http://127.0.0.1:3000";

pub struct TestApp {
    pub router: Router,
}

impl TestApp {
    pub fn new(db: PgPool) -> Self {
        let leptos_options = LeptosOptions::builder()
            .output_name("corral")
            .site_root("target/site")
            .build();
        let auth = Arc::new(Auth {
            oidc: None,
            dev_sign_in: true,
            public_url: ORIGIN.into(),
            absolute_timeout: Duration::from_secs(3600),
        });
        let state = ServerState {
            app: AppState {
                leptos_options,
                db,
                runtime: Arc::new(Runtime {
                    profile: Profile::Local,
                    version: env!("CARGO_PKG_VERSION"),
                    dev_sign_in: true,
                    oidc: false,
                }),
                probes: server::probes(&auth),
            },
            auth,
            metrics: Metrics::new(),
            sessions: SessionConfig {
                key: SessionConfig::key_from(Some("test-secret-test-secret-test-secret!")),
                secure: false,
                idle_timeout: Duration::from_secs(600),
            },
        };
        Self {
            router: server::router(state),
        }
    }

    pub async fn get(&self, uri: &str) -> (Response<Body>, String) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn send(&self, req: Request<Body>) -> (Response<Body>, String) {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}
