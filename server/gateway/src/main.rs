//! `corral-gateway`: only the gateway, for running as many replicas as the
//! traffic needs. Same settings as `corral` (`database.*`, `keys.pepper`,
//! `gateway.*`); it does not migrate the database: `corral` does.

use std::net::SocketAddr;
use std::process::ExitCode;

use startup::Settings;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let settings = match Settings::load_for(startup::Binary::Gateway, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    startup::init_tracing(&settings.log);
    // One single-threaded runtime per worker (see `serve_workers`); this
    // one accepts, and runs the usage writer and the key-change listener.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corral-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("corral-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let db = startup::database::connect(&settings).await?;
    let (gateway, background) = gateway::Gateway::start(&settings, db).await?;
    let addr = SocketAddr::new(settings.gateway.host, settings.gateway.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("gateway.port (CORRAL_GATEWAY__PORT): cannot listen on {addr}: {e}")
    })?;
    let threads = match settings.gateway.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => usize::from(n),
    };
    tracing::info!(upstreams = %settings.gateway.upstreams, workers = threads, "Corral gateway is listening on http://{addr}");
    gateway::serve_workers(
        listener,
        gateway.clone(),
        threads,
        std::time::Duration::from_secs(settings.gateway.shutdown_grace_secs),
        startup::shutdown_signal(),
    )
    .await?;
    // Write (or spool) every usage event before leaving: a write that hangs
    // gives up after 5 s and spools, so the grace period plus this stays
    // under Kubernetes' 30 s.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(8), gateway.usage.close()).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), background.usage).await;
    tracing::info!("stopped");
    Ok(())
}
