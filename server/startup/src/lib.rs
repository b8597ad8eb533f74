//! What every Corral process starts from: its typed settings, its logs, its
//! database connection and its stop signal. Shared by `corral` (the portal)
//! and `corral-gateway`, so that neither depends on the other for them.

pub mod database;
pub mod settings;

pub use settings::{Binary, Settings};

use settings::{LogFormat, LogSettings};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Installs the global `tracing` subscriber. Call once, before anything logs.
pub fn init_tracing(log: &LogSettings) {
    let filter = EnvFilter::new(&log.filter);
    let registry = tracing_subscriber::registry().with(filter);
    match log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().compact())
            .init(),
    }
}

/// An error and its causes, on one line (`outer: inner: root`), for logs
/// and for messages that must say what actually failed.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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
