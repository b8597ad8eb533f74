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
    let state = ServerState {
        app: AppState {
            leptos_options,
            db: db.clone(),
            runtime: Arc::new(Runtime {
                profile: settings.profile,
                version: env!("CARGO_PKG_VERSION"),
                dev_sign_in: auth.dev_sign_in,
                oidc: auth.oidc.is_some(),
            }),
            probes: server::probes(&auth),
        },
        auth,
        metrics: Metrics::new(),
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
    let store = tower_sessions_sqlx_store::PostgresStore::new(db);
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
