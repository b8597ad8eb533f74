//! `corral`: serves the portal, the REST API, the probes and the metrics.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use app::domain::{AppState, Runtime};
use server::settings::Settings;
use server::telemetry::Metrics;

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
    let db = server::database::connect_and_migrate(&settings).await?;
    let state = AppState {
        leptos_options,
        db,
        runtime: Arc::new(Runtime {
            profile: settings.profile,
            version: env!("CARGO_PKG_VERSION"),
        }),
    };
    let app = server::router(state, Metrics::new());

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
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
