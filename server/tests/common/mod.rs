//! A `TestApp`: the real router over a real (per-test) database, driven with
//! `tower::ServiceExt::oneshot`.
#![allow(dead_code, reason = "shared by several test crates, each using a part")]

use std::sync::Arc;

use std::time::Duration;

use app::domain::{AppState, Runtime};
use app::model::Profile;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use server::auth::Auth;
use server::telemetry::Metrics;
use server::{ServerState, SessionConfig};
use sqlx::PgPool;
use tower::ServiceExt;

pub mod idp;
pub mod ops;
pub mod prometheus;

/// The origin the test app believes it is served from.
pub const ORIGIN: &str = "http://127.0.0.1:3000";

/// The key pepper every test server and gateway uses.
pub const TEST_PEPPER: &str = "corral-test-pepper-0123456789abcdef";

pub struct TestApp {
    pub router: Router,
}

impl TestApp {
    pub fn new(db: PgPool) -> Self {
        Self::build(db, None, None, &[])
    }

    /// With the workload `ollama` on these Ollama pods.
    pub fn with_pods(db: PgPool, pods: &[url::Url]) -> Self {
        Self::build(db, None, None, pods)
    }

    /// With sign-in through the given test IdP.
    pub fn with_idp(db: PgPool, idp: &idp::Idp) -> Self {
        Self::build(db, Some(&idp.issuer), None, &[])
    }

    /// With the usage charts read from the Prometheus at `url`.
    pub fn with_prometheus(db: PgPool, url: &str, timeout_ms: u64) -> Self {
        Self::build(db, None, Some((url, timeout_ms)), &[])
    }

    fn build(
        db: PgPool,
        issuer: Option<&str>,
        prometheus: Option<(&str, u64)>,
        pods: &[url::Url],
    ) -> Self {
        let pods = if pods.is_empty() {
            vec![url::Url::parse("http://127.0.0.1:9").unwrap()]
        } else {
            pods.to_vec()
        };
        let prometheus = prometheus.map(|(url, timeout_ms)| {
            server::prometheus::Prometheus::from_settings(&server::settings::PrometheusSettings {
                url: Some(url::Url::parse(url).unwrap()),
                timeout_ms,
                bearer_token: None,
            })
            .unwrap()
            .unwrap()
        });
        let oidc = issuer.map(|issuer| {
            let settings = server::settings::Settings::load_from([
                ("CORRAL_OIDC__ISSUER".to_owned(), issuer.to_owned()),
                (
                    "CORRAL_OIDC__CLIENT_SECRET".to_owned(),
                    "corral-dev-secret".to_owned(),
                ),
            ])
            .unwrap();
            server::auth::oidc::Oidc::new(&settings.oidc, settings.oidc.issuer.as_ref().unwrap())
                .unwrap()
        });
        let leptos_options = LeptosOptions::builder()
            .output_name("corral")
            .site_root("target/site")
            .build();
        let auth = Arc::new(Auth {
            oidc,
            dev_sign_in: true,
            public_url: ORIGIN.into(),
            absolute_timeout: Duration::from_secs(3600),
        });
        let state = ServerState {
            app: AppState {
                leptos_options,
                db: db.clone(),
                runtime: Arc::new(Runtime {
                    profile: Profile::Local,
                    version: env!("CARGO_PKG_VERSION"),
                    dev_sign_in: true,
                    oidc: issuer.is_some(),
                    pepper: app::domain::keys::Pepper::new(TEST_PEPPER.as_bytes()),
                    gateway_url: None,
                }),
                probes: server::probes(&auth, prometheus.clone()),
                metrics: prometheus.map(|p| p as Arc<dyn app::domain::MetricsSource>),
                cluster: Arc::new(server::cluster::Cluster::new(
                    cluster::Driver::Static(cluster::StaticDriver::new("ollama", pods)),
                    app::domain::operations::Workload {
                        name: "ollama".into(),
                        min_replicas: 1,
                        max_replicas: 4,
                        shared_models: false,
                        can_scale: false,
                        gpu_memory: None,
                    },
                )),
            },
            auth,
            metrics: Metrics::new(),
            operation_events: server::operation_events::OperationEvents::start(db.clone()),
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

    /// A GET with the given session cookie.
    pub async fn get_as(&self, uri: &str, cookie: &str) -> (Response<Body>, String) {
        self.send(
            Request::get(uri)
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A same-origin JSON request with the given session cookie.
    pub async fn json_as(
        &self,
        method: &str,
        uri: &str,
        cookie: &str,
        body: serde_json::Value,
    ) -> (Response<Body>, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("cookie", cookie)
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// Signs in with the development sign-in; returns the session cookie.
    pub async fn dev_sign_in(&self, username: &str) -> String {
        let req = Request::post("/auth/dev")
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("username={username}&next=/teams")))
            .unwrap();
        let (res, body) = self.send(req).await;
        assert_eq!(
            res.status(),
            axum::http::StatusCode::SEE_OTHER,
            "dev sign-in as {username}: {body}"
        );
        idp::session_cookie(&res).expect("a session cookie")
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
