//! The `ollama-sim` binary: a simulated Ollama on `OLLAMA_HOST`.

use std::process::ExitCode;

use ollama_sim::{Sim, SimConfig};

/// Ollama's default port.
const DEFAULT_PORT: u16 = 11434;

/// `OLLAMA_HOST` as Ollama reads it: `host`, `host:port`, `:port`, `[v6]:port`,
/// optionally behind `http://` or `https://`. Defaults to `127.0.0.1:11434`.
fn bind_address(raw: Option<&str>) -> Result<String, String> {
    let raw = raw.map(str::trim).unwrap_or_default();
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .unwrap_or(raw);
    let rest = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("OLLAMA_HOST: unclosed '[' in {raw:?}"))?;
        (
            format!("[{host}]"),
            after.strip_prefix(':').unwrap_or_default(),
        )
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port),
            None => (rest.to_owned(), ""),
        }
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        port.parse::<u16>()
            .map_err(|_| format!("OLLAMA_HOST: invalid port {port:?} in {raw:?}"))?
    };
    Ok(format!("{host}:{port}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let config = match SimConfig::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("ollama-sim: {message}");
            return ExitCode::from(2);
        }
    };
    let address = match bind_address(std::env::var("OLLAMA_HOST").ok().as_deref()) {
        Ok(address) => address,
        Err(message) => {
            eprintln!("ollama-sim: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&address).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("ollama-sim: cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(address, |a| a.to_string());
    tracing::info!(
        address = %local,
        version = ollama_sim::OLLAMA_VERSION,
        parallel = config.parallel,
        models = config.models.len(),
        "Listening on {local}"
    );
    match ollama_sim::serve(listener, Sim::new(config)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ollama-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bind_address;

    #[test]
    fn ollama_host_is_read_like_ollama_reads_it() {
        assert_eq!(bind_address(None).unwrap(), "127.0.0.1:11434");
        assert_eq!(bind_address(Some("0.0.0.0")).unwrap(), "0.0.0.0:11434");
        assert_eq!(
            bind_address(Some("http://127.0.0.1:9999")).unwrap(),
            "127.0.0.1:9999"
        );
        assert_eq!(
            bind_address(Some("https://localhost:1/")).unwrap(),
            "localhost:1"
        );
        assert_eq!(bind_address(Some(":8080")).unwrap(), "127.0.0.1:8080");
        assert_eq!(bind_address(Some("[::1]:7000")).unwrap(), "[::1]:7000");
        assert!(
            bind_address(Some("host:port"))
                .unwrap_err()
                .starts_with("OLLAMA_HOST")
        );
    }
}
