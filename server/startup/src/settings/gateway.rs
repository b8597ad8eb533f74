//! The gateway's settings (`gateway.*`) and their rules.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Settings, SettingsError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// `corral` serves the gateway too (on `gateway.port`); the
    /// `corral-gateway` binary serves only the gateway.
    pub enabled: bool,
    pub host: IpAddr,
    pub port: u16,
    /// Where clients reach the gateway, shown beside new keys.
    pub public_url: Option<url::Url>,
    /// Ollama base URLs, comma-separated.
    pub upstreams: String,
    /// Requests each upstream runs at once (its `OLLAMA_NUM_PARALLEL`);
    /// more are counted as queued in `ollama_queue_depth`.
    pub upstream_parallel: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Structured output check on non-streamed replies whose `format` is a
    /// JSON schema: `reject` (502 with the errors), `header` (pass the reply
    /// through with `X-Corral-Format-Errors`) or `off`.
    pub format_check: FormatCheck,
    /// Usage events per database write.
    pub usage_batch_size: usize,
    /// Longest wait before a partial batch is written, in milliseconds.
    pub usage_flush_ms: u64,
    /// Events held in memory while Postgres is away; beyond this they go to
    /// `spool_dir` on disk.
    pub usage_buffer_events: usize,
    /// Directory for usage events that do not fit in memory during an outage.
    pub spool_dir: PathBuf,
    /// How long a verified key is trusted without asking Postgres again (a
    /// change reaches the gateway at once through LISTEN/NOTIFY anyway).
    pub key_cache_secs: u64,
    /// Threads of the `corral-gateway` binary, each with its own event loop
    /// and upstream connections (a connection stays on one thread); 0 means
    /// one per CPU core.
    pub workers: u16,
    /// Seconds open requests may run on after SIGTERM before
    /// `corral-gateway` cuts them (and records their usage) and exits.
    pub shutdown_grace_secs: u64,
    /// Seconds a reply may wait on a client that does not read it (its
    /// socket's buffer full) before the request is cut and recorded, so
    /// that it does not hold an Ollama slot for ever.
    pub send_timeout_secs: u64,
    /// Open client connections per gateway process at most; more are
    /// answered 503 and closed.
    pub max_connections: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatCheck {
    Reject,
    Header,
    Off,
}

impl Settings {
    /// The rules of `gateway.*`.
    pub(super) fn validate_gateway(&self) -> Result<(), SettingsError> {
        let fail = |m: String| Err(SettingsError(m));
        if let Err(e) = self.upstreams() {
            return fail(e);
        }
        if self.gateway.port == 0 {
            return fail("gateway.port (CORRAL_GATEWAY__PORT): must be between 1 and 65535".into());
        }
        if self.gateway.upstream_parallel == 0 {
            return fail(
                "gateway.upstream_parallel (CORRAL_GATEWAY__UPSTREAM_PARALLEL): must be at least 1"
                    .into(),
            );
        }
        if self.gateway.usage_batch_size == 0 || self.gateway.usage_buffer_events == 0 {
            return fail("gateway.usage_batch_size and gateway.usage_buffer_events (CORRAL_GATEWAY__USAGE_BATCH_SIZE, CORRAL_GATEWAY__USAGE_BUFFER_EVENTS): must be at least 1".into());
        }
        if self.gateway.send_timeout_secs == 0 {
            return fail(
                "gateway.send_timeout_secs (CORRAL_GATEWAY__SEND_TIMEOUT_SECS): must be at least 1"
                    .into(),
            );
        }
        if self.gateway.max_connections == 0 {
            return fail(
                "gateway.max_connections (CORRAL_GATEWAY__MAX_CONNECTIONS): must be at least 1"
                    .into(),
            );
        }
        if self.gateway.max_body_bytes < 1024 {
            return fail(
                "gateway.max_body_bytes (CORRAL_GATEWAY__MAX_BODY_BYTES): must be at least 1024"
                    .into(),
            );
        }
        Ok(())
    }

    /// The Ollama upstreams, parsed.
    pub fn upstreams(&self) -> Result<Vec<url::Url>, String> {
        let list: Vec<&str> = self
            .gateway
            .upstreams
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if list.is_empty() {
            return Err("gateway.upstreams (CORRAL_GATEWAY__UPSTREAMS): name at least one Ollama URL, e.g. http://ollama:11434".into());
        }
        list.into_iter()
            .map(|u| {
                url::Url::parse(u)
                    .ok()
                    .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                    .ok_or_else(|| {
                        format!("gateway.upstreams (CORRAL_GATEWAY__UPSTREAMS): {u:?} is not an http(s):// URL")
                    })
            })
            .collect()
    }

    /// Where clients reach the gateway, without a trailing slash.
    pub fn gateway_url(&self) -> String {
        match &self.gateway.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.gateway.host, self.gateway.port),
        }
    }
}
