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
pub mod serve;
pub mod upstream;
pub mod usage;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use app::domain::keys::Pepper;
use axum::Router;
use axum::routing::get;
use sqlx::PgPool;

use startup::settings::{FormatCheck, Settings};

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
    /// How long a reply may wait for a client that does not read it.
    pub send_timeout: Duration,
    /// Open client connections at most; more are refused with a 503.
    pub max_connections: usize,
    /// The runtime the gateway was started on: its Postgres work (key
    /// look-ups, quota refreshes, usage writes) runs there.
    pub home: tokio::runtime::Handle,
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
            send_timeout: Duration::from_secs(settings.gateway.send_timeout_secs),
            max_connections: settings.gateway.max_connections,
            home: tokio::runtime::Handle::current(),
            db,
        });
        keys::spawn_listener(gateway.clone());
        tokio::spawn(
            gateway
                .upstreams
                .client
                .clone()
                .prune_every(upstream::PRUNE_EVERY),
        );
        Ok((
            gateway,
            Workers {
                usage: usage_worker,
            },
        ))
    }
}

/// What the gateway's handlers share: the gateway, and the upstream client
/// of the thread that serves them.
#[derive(Clone)]
pub struct GatewayState {
    pub gw: Arc<Gateway>,
    pub client: upstream::Client,
}

/// The gateway's own routes: health and metrics (and `/`, which Ollama's
/// clients probe). Everything else is proxied by [`GatewayService`].
fn own_routes(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::handler))
        .route("/", get(proxy::root).head(proxy::root))
        .with_state(gateway)
}

/// The gateway as a hyper service (`serve`): proxied paths go straight to
/// the proxy, the few routes of its own through an axum router.
#[derive(Clone)]
pub struct GatewayService {
    state: GatewayState,
    own: Router,
}

impl GatewayService {
    pub fn new(gateway: Arc<Gateway>, client: upstream::Client) -> Self {
        Self {
            own: own_routes(gateway.clone()),
            state: GatewayState {
                gw: gateway,
                client,
            },
        }
    }
}

/// Accepts connections until `shutdown` resolves, handing each to `serve`
/// with a permit that it holds while open; beyond `gateway.max_connections`
/// open ones, a connection is answered 503 and closed. Then open requests
/// get `grace` to finish while idle connections close.
async fn accept_until(
    listener: tokio::net::TcpListener,
    gateway: &Gateway,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    mut serve: impl FnMut(tokio::net::TcpStream, Open),
) {
    // Every connection holds a receiver: the sender is closed when all are gone.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let permits = Arc::new(tokio::sync::Semaphore::new(gateway.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "gateway cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => serve(
                stream,
                Open {
                    stop: stopped.clone(),
                    _permit: permit,
                },
            ),
            Err(_) => {
                gateway
                    .metrics
                    .rejections
                    .with_label_values(&["too_many_connections"])
                    .inc();
                serve::refuse_connection(stream);
            }
        }
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    if tokio::time::timeout(grace, stop.closed()).await.is_err() {
        tracing::warn!(
            "requests still open {} s after the shutdown signal are cut",
            grace.as_secs()
        );
    }
}

/// What an open connection holds: the shutdown signal, and its place under
/// `gateway.max_connections`.
pub struct Open {
    stop: tokio::sync::watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Open {
    async fn serve(self, stream: tokio::net::TcpStream, service: GatewayService) {
        serve::serve_connection(stream, service, self.stop).await;
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves, on the
/// runtime it is awaited on (the gateway inside `corral`, and tests). Open
/// requests then get `grace` to finish; the rest are cut (and recorded)
/// before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let service = GatewayService::new(gateway.clone(), gateway.upstreams.client.clone());
    let mut connections = tokio::task::JoinSet::new();
    accept_until(listener, &gateway, grace, shutdown, |stream, open| {
        while connections.try_join_next().is_some() {}
        connections.spawn(open.serve(stream, service.clone()));
    })
    .await;
    connections.shutdown().await;
    Ok(())
}

/// Serves the gateway on `listener` with `workers` threads, nginx-style:
/// each thread runs its own single-threaded event loop with its own
/// upstream connections, and every accepted connection is handed to the
/// next thread and stays there. A request then never hops threads, which
/// keeps the tail latency down and spares cross-thread wake-ups. The
/// calling runtime only accepts (and runs the usage writer and key
/// listener). Once `shutdown` resolves, open requests get `grace` to
/// finish (`gateway.shutdown_grace_secs`, 20 s by default: under
/// Kubernetes' 30 s, so that what follows happens before the pod is
/// killed); then the rest are cut (each recorded as a 499 with what it had
/// used) and the workers stop, so that the usage of every request has been
/// handed to the writer when this returns.
pub async fn serve_workers(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    workers: usize,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    let mut handles = Vec::new();
    let mut services = Vec::new();
    for i in 1..=workers.max(1) {
        // Sockets and timers only: signals are the accepting runtime's.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        handles.push(runtime.handle().clone());
        let client = gateway.upstreams.new_client();
        services.push(GatewayService::new(gateway.clone(), client.clone()));
        let mut stopped = stopped.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("gateway-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        tokio::select! {
                            _ = stopped.wait_for(|s| *s) => {}
                            () = client.prune_every(upstream::PRUNE_EVERY) => {}
                        }
                    });
                })?,
        );
    }
    let mut next = 0usize;
    accept_until(listener, &gateway, grace, shutdown, |stream, open| {
        let i = next % handles.len();
        next = next.wrapping_add(1);
        match stream.into_std() {
            Ok(std_stream) => {
                let service = services[i].clone();
                handles[i].spawn(async move {
                    if let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) {
                        open.serve(stream, service).await;
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "gateway cannot hand a connection over"),
        }
    })
    .await;
    // Stopping a worker drops what it still runs: a cut stream records its
    // usage as it goes.
    let _ = stop.send(true);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
