//! The gateway: the authenticating proxy in front of Ollama. It verifies
//! Corral API keys (cached, with revocations pushed by `LISTEN/NOTIFY`),
//! enforces each team's models, rate limits and token quota, streams replies
//! through chunk by chunk, records one usage event per request without loss,
//! and exports the metrics the usage pages and the HPA read.
//!
//! It runs inside `corral` (on `gateway.port`) or alone as `corral-gateway`.

pub mod errors;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod schema;
pub mod upstream;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use app::domain::keys::Pepper;
use axum::Router;
use axum::routing::get;
use sqlx::PgPool;

use crate::settings::{FormatCheck, Settings};

/// Everything a gateway request needs.
pub struct Gateway {
    pub db: PgPool,
    pub pepper: Pepper,
    pub keys: keys::KeyCache,
    pub upstreams: upstream::Upstreams,
    pub limits: limits::Limits,
    pub usage: usage::UsageSink,
    pub metrics: metrics::GatewayMetrics,
    pub max_body_bytes: usize,
    pub format_check: FormatCheck,
}

/// The gateway's background tasks, to await on shutdown.
pub struct Workers {
    pub usage: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Builds the gateway and starts its workers (usage writer, key-change
    /// listener).
    pub async fn start(settings: &Settings, db: PgPool) -> anyhow::Result<(Arc<Self>, Workers)> {
        let metrics = metrics::GatewayMetrics::new();
        let upstreams = upstream::Upstreams::new(
            settings.upstreams().map_err(anyhow::Error::msg)?,
            settings.gateway.upstream_parallel as usize,
            metrics.clone(),
        )?;
        let (usage, usage_worker) = usage::start(
            db.clone(),
            usage::UsageConfig {
                batch_size: settings.gateway.usage_batch_size,
                flush_every: Duration::from_millis(settings.gateway.usage_flush_ms.max(1)),
                buffer_events: settings.gateway.usage_buffer_events,
                spool_dir: settings.gateway.spool_dir.clone(),
            },
            metrics.clone(),
        )
        .await?;
        let gateway = Arc::new(Gateway {
            keys: keys::KeyCache::new(Duration::from_secs(settings.gateway.key_cache_secs)),
            limits: limits::Limits::default(),
            pepper: settings.pepper(),
            upstreams,
            usage,
            metrics,
            max_body_bytes: settings.gateway.max_body_bytes,
            format_check: settings.gateway.format_check,
            db,
        });
        keys::spawn_listener(gateway.clone());
        Ok((
            gateway,
            Workers {
                usage: usage_worker,
            },
        ))
    }
}

/// The gateway's HTTP routes: health, metrics, and every Ollama and
/// OpenAI-compatible path, proxied.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::handler))
        .route("/", get(proxy::root).head(proxy::root))
        .fallback(proxy::handle)
        .with_state(gateway)
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
