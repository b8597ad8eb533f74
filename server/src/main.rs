//! `corral`: serves the portal, the REST API, the probes and the metrics.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use app::domain::{AppState, Runtime};
use secrecy::ExposeSecret;
use server::auth::Auth;
use server::settings::Settings;
use server::telemetry::Metrics;
use server::{ServerState, SessionConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init_tracing(&settings.log);
    // `corral migrate`: apply pending migrations and exit (a release's Job).
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return match server::database::connect_and_migrate(&settings).await {
            Ok(_) => {
                tracing::info!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("corral migrate: {}", server::error_chain(&e));
                ExitCode::FAILURE
            }
        };
    }
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("corral: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let leptos_options = leptos::config::get_configuration(None)
        .map_err(|e| anyhow::anyhow!("leptos configuration: {e}"))?
        .leptos_options;
    let db = if settings.database.migrate {
        server::database::connect_and_migrate(&settings).await?
    } else {
        server::database::connect(&settings).await?
    };
    let oidc = match &settings.oidc.issuer {
        Some(issuer) => Some(
            server::auth::oidc::Oidc::new(&settings.oidc, issuer).map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let auth = Arc::new(Auth {
        oidc,
        dev_sign_in: settings.dev_sign_in(),
        public_url: settings.public_url(),
        absolute_timeout: Duration::from_secs(
            u64::from(settings.session.absolute_timeout_hours) * 3600,
        ),
    });
    let cluster = Arc::new(server::cluster::Cluster::from_settings(&settings).await?);
    let prometheus = server::prometheus::Prometheus::from_settings(&settings.prometheus)?;
    let state = ServerState {
        app: AppState {
            leptos_options,
            db: db.clone(),
            runtime: Arc::new(Runtime {
                profile: settings.profile,
                version: env!("CARGO_PKG_VERSION"),
                dev_sign_in: auth.dev_sign_in,
                oidc: auth.oidc.is_some(),
                pepper: settings.pepper(),
                gateway_url: (settings.gateway.enabled || settings.gateway.public_url.is_some())
                    .then(|| settings.gateway_url()),
            }),
            probes: server::probes(&auth, prometheus.clone()),
            cluster: cluster.clone(),
            metrics: prometheus.map(|p| p as Arc<dyn app::domain::MetricsSource>),
        },
        auth,
        metrics: Metrics::new(),
        operation_events: server::operation_events::OperationEvents::start(db.clone()),
        sessions: SessionConfig {
            key: SessionConfig::key_from(
                settings.session.secret.as_ref().map(|s| s.expose_secret()),
            ),
            secure: settings.profile == app::model::Profile::Production,
            idle_timeout: Duration::from_secs(
                u64::from(settings.session.idle_timeout_minutes) * 60,
            ),
        },
    };
    // Expired sessions are deleted hourly.
    let store = tower_sessions_sqlx_store::PostgresStore::new(db.clone());
    tokio::spawn(async move {
        use tower_sessions::ExpiredDeletion;
        if let Err(e) = store
            .continuously_delete_expired(Duration::from_secs(3600))
            .await
        {
            tracing::warn!(error = %e, "expired-session cleanup stopped");
        }
    });
    let app = server::router(state);

    // The built-in Ollama simulators (local runs), `sim.pods` of them: the
    // gateway uses the first, the static cluster driver sees them all. A
    // real Ollama on a port wins.
    if settings.sim_enabled() {
        for addr in settings.sim_addrs() {
            start_sim(&settings, addr).await;
        }
    }
    if settings.operations.enabled {
        let runner = server::workers::operations::Runner {
            db: db.clone(),
            driver: cluster.driver.clone(),
            ollama: cluster.ollama.clone(),
            workloads: cluster.workloads.clone(),
            owner: app::domain::operations::queue::runner_name(),
            lease: Duration::from_secs(settings.operations.lease_secs),
            concurrency: settings.operations.concurrency,
        };
        tracing::info!(
            runner = %runner.owner,
            driver = runner.driver.kind(),
            "operations runner started"
        );
        tokio::spawn(runner.run(server::shutdown_signal()));
        let reconciler = server::workers::reconcile::Reconciler {
            db: db.clone(),
            driver: cluster.driver.clone(),
            ollama: cluster.ollama.clone(),
            workloads: cluster.workloads.clone(),
            every: Duration::from_secs(settings.operations.reconcile_secs),
        };
        tokio::spawn(reconciler.run(server::shutdown_signal()));
    }
    let gateway = if settings.gateway.enabled {
        let (gateway, workers) = server::gateway::Gateway::start(&settings, db.clone()).await?;
        let addr = SocketAddr::new(settings.gateway.host, settings.gateway.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("gateway.port (CORRAL_GATEWAY__PORT): cannot listen on {addr}: {e}")
        })?;
        tracing::info!(upstreams = %settings.gateway.upstreams, "gateway is listening on http://{addr}");
        let g = gateway.clone();
        let grace = std::time::Duration::from_secs(settings.gateway.shutdown_grace_secs);
        let serving = tokio::spawn(async move {
            if let Err(e) =
                server::gateway::serve(listener, g, grace, server::shutdown_signal()).await
            {
                tracing::error!(error = %e, "gateway stopped");
            }
        });
        Some((gateway, workers, serving, grace))
    } else {
        None
    };

    let addr = SocketAddr::new(settings.server.host, settings.server.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("server.port (CORRAL_SERVER__PORT): cannot listen on {addr}: {e}")
    })?;
    tracing::info!(
        profile = %settings.profile,
        dev_sign_in = settings.dev_sign_in(),
        "Corral is listening on http://{addr}"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(server::shutdown_signal())
        .await?;
    if let Some((gateway, workers, serving, grace)) = gateway {
        // Open streams finish (or are cut after the grace) and are recorded
        // before the usage writer's last flush.
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), serving).await;
        let _ = tokio::time::timeout(Duration::from_secs(15), gateway.usage.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), workers.usage).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// One simulated Ollama on `addr`, unless the port is taken.
async fn start_sim(settings: &Settings, addr: SocketAddr) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let sim = ollama_sim::Sim::new(ollama_sim::SimConfig {
                ttft: Duration::from_millis(settings.sim.ttft_ms),
                token_gap: Duration::from_millis(settings.sim.token_ms),
                parallel: settings.sim.parallel,
                pull_step: Duration::from_millis(settings.sim.pull_step_ms),
                ..Default::default()
            });
            tracing::info!("simulated Ollama (ollama-sim) is listening on http://{addr}");
            tokio::spawn(async move {
                if let Err(e) = ollama_sim::serve(listener, sim).await {
                    tracing::error!(error = %e, "ollama-sim stopped");
                }
            });
        }
        Err(e) => tracing::warn!(
            "sim.port (CORRAL_SIM__PORT): {addr} is taken ({e}); not starting a simulator there (is a real Ollama running there?)"
        ),
    }
}
