//! The business rules and their Postgres access. Server-only: the whole module
//! is compiled with the `ssr` feature and never reaches the browser.

pub mod audit;
pub mod authz;
pub mod charts;
pub mod error;
pub mod health;
pub mod identity;
pub mod keys;
pub mod maintenance;
pub mod modelfiles;
pub mod operations;
pub mod teams;
pub mod usage;

pub use authz::{Action, Actor, Via};
pub use error::{Error, Result};

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use crate::model::Profile;

/// Everything a request handler, server function or worker needs, built once
/// by the server at start-up and cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub runtime: Arc<Runtime>,
    /// Checked by the status page after Postgres.
    pub probes: Arc<Vec<Arc<dyn Probe>>>,
    /// Where Ollama runs: the workloads and their live state.
    pub cluster: Arc<dyn ClusterView>,
    /// Prometheus, for the usage charts; none when `prometheus.url` is not
    /// set (the pages then show Postgres's totals only).
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

/// Facts about this running process that pages show.
#[derive(Debug)]
pub struct Runtime {
    pub profile: Profile,
    pub version: &'static str,
    /// The labelled development sign-in is offered.
    pub dev_sign_in: bool,
    /// Sign-in through an OpenID Provider is configured.
    pub oidc: bool,
    /// Mixed into every API key's HMAC.
    pub pepper: keys::Pepper,
    /// Where clients reach the gateway, shown next to new keys
    /// (e.g. `http://127.0.0.1:11435`); none when no gateway is configured.
    pub gateway_url: Option<String>,
}

/// A dependency the status page checks live (the IdP, the cluster,
/// Prometheus): implemented by the server's integrations.
pub trait Probe: Send + Sync {
    fn check(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::model::DependencyStatus> + Send + '_>,
    >;
}

/// The cluster as the domain and the pages see it: the workloads Corral
/// drives, and their live state (from the cluster driver and each pod's
/// Ollama). Implemented by the server.
pub trait ClusterView: Send + Sync {
    fn workloads(&self) -> &operations::Workloads;
    /// Every workload's replicas, autoscaler and pods, each pod's models.
    fn report(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::model::ClusterReport> + Send + '_>>;
    /// Each ready pod's `/api/show` of `model` (none where it is not on the
    /// pod), for drift checks and imports; an error when the pods cannot
    /// be listed.
    fn show<'a>(
        &'a self,
        workload: &'a str,
        model: &'a str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::result::Result<Vec<PodShow>, String>> + Send + 'a,
        >,
    >;
}

/// One pod's answer to `/api/show`.
#[derive(Clone, Debug)]
pub struct PodShow {
    pub pod: String,
    /// The body; none when the model is not on the pod; an error when the
    /// pod's Ollama did not answer.
    pub show: std::result::Result<Option<serde_json::Value>, String>,
}

/// One series of a range query: its labels and its (Unix seconds, value)
/// points.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSeries {
    pub labels: std::collections::BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

/// Prometheus as the usage pages ask it. Queries are built by
/// [`usage::promql`] from typed parameters only. Errors are a sentence for
/// the page's banner (unreachable, timed out, refused the query).
pub trait MetricsSource: Send + Sync {
    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        from: i64,
        to: i64,
        step: i64,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::result::Result<Vec<MetricSeries>, String>>
                + Send
                + 'a,
        >,
    >;
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}
