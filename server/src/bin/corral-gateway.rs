//! `corral-gateway`: only the gateway, for running as many replicas as the
//! traffic needs. Same settings as `corral` (`database.*`, `keys.pepper`,
//! `gateway.*`); it does not migrate the database: `corral` does.

use std::net::SocketAddr;
use std::process::ExitCode;

use server::settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init_tracing(&settings.log);
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("corral-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let db = server::database::connect(&settings).await?;
    let (gateway, workers) = server::gateway::Gateway::start(&settings, db).await?;
    let addr = SocketAddr::new(settings.gateway.host, settings.gateway.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("gateway.port (CORRAL_GATEWAY__PORT): cannot listen on {addr}: {e}")
    })?;
    tracing::info!(upstreams = %settings.gateway.upstreams, "Corral gateway is listening on http://{addr}");
    server::gateway::serve(listener, gateway.clone(), server::shutdown_signal()).await?;
    // Write (or spool) every usage event before leaving.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), gateway.usage.close()).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), workers.usage).await;
    tracing::info!("stopped");
    Ok(())
}
