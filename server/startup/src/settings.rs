//! Typed settings: defaults → optional TOML file → `CORRAL_*` environment
//! variables (`__` separates nesting levels) → `CORRAL_*_FILE` files for
//! mounted secrets. Unknown or invalid settings stop start-up with a message
//! naming the setting and where it came from.

use std::net::IpAddr;
use std::path::PathBuf;

use app::model::Profile;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variable prefix for every setting.
pub const ENV_PREFIX: &str = "CORRAL_";
/// Environment variable naming the optional settings file.
pub const CONFIG_FILE_VAR: &str = "CORRAL_CONFIG";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `local` (the default) or `production`.
    pub profile: Profile,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub session: SessionSettings,
    pub oidc: OidcSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub keys: KeySettings,
    pub gateway: GatewaySettings,
    pub sim: SimSettings,
    pub cluster: ClusterSettings,
    pub operations: OperationSettings,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the portal, REST API and metrics listen on.
    pub host: IpAddr,
    pub port: u16,
    /// The URL people reach Corral at (used for sign-in redirects).
    pub public_url: Option<url::Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` URL. When unset under the `local` profile Corral uses
    /// 127.0.0.1:5432 (database `corral`, created if missing) or starts a
    /// private cluster under `./.corral/`.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    /// Seconds to wait for a connection from the pool.
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Key for signing session cookies; at least 32 bytes.
    /// Generated per process under `local` when unset.
    pub secret: Option<SecretString>,
    /// A session unused for this long ends.
    pub idle_timeout_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout_hours: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Issuer URL, e.g. a Keycloak realm `https://kc.example/realms/corral`.
    pub issuer: Option<url::Url>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Scopes asked for at sign-in, space-separated (`openid` is always added).
    pub scopes: String,
    /// Claim holding group paths such as `/team-a` (dots walk into objects).
    pub groups_claim: String,
    /// Claim holding the realm roles (dots walk into objects).
    pub roles_claim: String,
    /// The realm role that makes a person a platform admin.
    pub admin_role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The clearly labelled development sign-in. Refused under `production`.
    pub dev_sign_in: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Server-side secret mixed into every API key's HMAC (at least 32
    /// bytes). Required in production; the local profile uses a fixed,
    /// public development pepper. Changing it invalidates every key.
    pub pepper: Option<SecretString>,
}

/// The development pepper of the local profile: public, so never for real keys.
pub const LOCAL_PEPPER: &str = "corral-local-development-pepper-not-secret";

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// Run the built-in Ollama simulator (`ollama-sim`) inside `corral`.
    /// Default: on under `local`, refused under `production`.
    pub enabled: Option<bool>,
    pub host: IpAddr,
    pub port: u16,
    /// Time to first token, in milliseconds.
    pub ttft_ms: u64,
    /// Gap between streamed tokens, in milliseconds.
    pub token_ms: u64,
    /// Generations at once (`OLLAMA_NUM_PARALLEL`).
    pub parallel: usize,
    /// Delay between two progress lines of a simulated pull, in
    /// milliseconds (a pull then takes some seconds, as a real one would).
    pub pull_step_ms: u64,
    /// Simulated Ollama pods: the i-th (from 0) listens on `port + 2 i`
    /// (11434, 11436, …: the gateway has 11435). The gateway uses the
    /// first; the static cluster driver sees them all.
    pub pods: u16,
}

/// Where Ollama runs and what Corral may do to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// `static` (a fixed list of Ollama URLs, no scaling) or `kubernetes`.
    pub driver: ClusterDriver,
    /// The workload's name in Corral (and, for `kubernetes`, the
    /// Deployment's).
    pub workload: String,
    /// `static`: the pods' Ollama URLs, comma-separated. Default under
    /// `local`: the built-in simulators.
    pub static_urls: Option<String>,
    /// Replicas a scale may ask for.
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// `per_pod` (each pod its own models volume: a pull runs on every pod)
    /// or `shared` (one ReadWriteMany volume: a pull runs once).
    pub models_volume: ModelsVolume,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterDriver {
    Static,
    Kubernetes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelsVolume {
    PerPod,
    Shared,
}

/// The runners that carry out cluster operations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSettings {
    /// This process runs operations (any number of Corral replicas may).
    pub enabled: bool,
    /// Operations run at once by this process.
    pub concurrency: usize,
    /// Seconds a runner's lease lasts without a heartbeat; an operation
    /// whose runner died is taken over after it.
    pub lease_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,sqlx=warn`.
    pub filter: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that cannot be used, with the setting named.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn defaults() -> serde_json::Value {
    serde_json::json!({
        "profile": "local",
        "server": { "host": "127.0.0.1", "port": 3000, "public_url": null },
        "database": { "url": null, "max_connections": 10, "acquire_timeout_secs": 5 },
        "session": { "secret": null, "idle_timeout_minutes": 480, "absolute_timeout_hours": 24 },
        "oidc": {
            "issuer": null, "client_id": "corral", "client_secret": null,
            "scopes": "openid profile email", "groups_claim": "groups",
            "roles_claim": "realm_access.roles", "admin_role": "corral-admin",
        },
        "auth": { "dev_sign_in": null },
        "log": { "format": "text", "filter": "info,sqlx=warn,tower_http=info" },
        "keys": { "pepper": null },
        "gateway": {
            "enabled": true, "host": "127.0.0.1", "port": 11435, "public_url": null,
            "upstreams": "http://127.0.0.1:11434", "upstream_parallel": 4,
            "max_body_bytes": 16 * 1024 * 1024, "format_check": "reject",
            "usage_batch_size": 500, "usage_flush_ms": 200, "usage_buffer_events": 20000,
            "spool_dir": ".corral/usage-spool", "key_cache_secs": 60, "workers": 0,
            "shutdown_grace_secs": 20, "send_timeout_secs": 60, "max_connections": 10000,
        },
        "sim": { "enabled": null, "host": "127.0.0.1", "port": 11434, "ttft_ms": 40, "token_ms": 25, "parallel": 4, "pods": 2, "pull_step_ms": 400 },
        "cluster": {
            "driver": "static", "workload": "ollama", "static_urls": null,
            "min_replicas": 1, "max_replicas": 4, "models_volume": "per_pod",
        },
        "operations": { "enabled": true, "concurrency": 4, "lease_secs": 15 },
    })
}

impl Settings {
    /// Reads settings from the process environment (and the file it names).
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(std::env::vars())
    }

    /// Reads settings from the given environment, for tests.
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut figment = Figment::from(Serialized::defaults(defaults()));

        if let Some((_, path)) = vars.iter().find(|(k, _)| k == CONFIG_FILE_VAR) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "{CONFIG_FILE_VAR}: settings file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }

        for (name, value) in vars.iter().filter(|(k, _)| {
            k.starts_with(ENV_PREFIX) && k != CONFIG_FILE_VAR && !k.ends_with("_FILE")
        }) {
            figment = figment.merge((env_key(name), value.clone()));
        }

        for (name, path) in vars
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.ends_with("_FILE"))
        {
            let key = env_key(&name[..name.len() - "_FILE".len()]);
            let contents = std::fs::read_to_string(path).map_err(|e| {
                SettingsError(format!("{name}: cannot read secret file {path}: {e}"))
            })?;
            figment = figment.merge((key, contents.trim_end_matches(['\r', '\n']).to_owned()));
        }

        // Lossy: environment values are strings; "3000" may become a port,
        // "abc" may not, and the error names the setting.
        let settings: Settings = figment
            .extract_lossy()
            .map_err(|e| SettingsError(describe(&e, &vars)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules between settings, and what `production` refuses.
    fn validate(&self) -> Result<(), SettingsError> {
        let fail = |m: String| Err(SettingsError(m));
        if self.server.port == 0 {
            return fail("server.port (CORRAL_SERVER__PORT): must be between 1 and 65535".into());
        }
        if self.database.max_connections == 0 {
            return fail(
                "database.max_connections (CORRAL_DATABASE__MAX_CONNECTIONS): must be at least 1"
                    .into(),
            );
        }
        if let Some(url) = &self.database.url {
            let u = url.expose_secret();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return fail(
                    "database.url (CORRAL_DATABASE__URL): expected a postgres:// URL".into(),
                );
            }
        }
        if let Some(secret) = &self.session.secret
            && secret.expose_secret().len() < 32
        {
            return fail(
                "session.secret (CORRAL_SESSION__SECRET): must be at least 32 bytes".into(),
            );
        }
        if self.session.idle_timeout_minutes == 0 {
            return fail(
                "session.idle_timeout_minutes (CORRAL_SESSION__IDLE_TIMEOUT_MINUTES): must be at least 1".into(),
            );
        }
        if self.session.absolute_timeout_hours == 0 {
            return fail(
                "session.absolute_timeout_hours (CORRAL_SESSION__ABSOLUTE_TIMEOUT_HOURS): must be at least 1".into(),
            );
        }
        if let Some(u) = &self.oidc.issuer
            && !matches!(u.scheme(), "http" | "https")
        {
            return fail("oidc.issuer (CORRAL_OIDC__ISSUER): expected an http(s):// URL".into());
        }
        if self
            .log
            .filter
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return fail(format!(
                "log.filter (CORRAL_LOG__FILTER): not a valid tracing filter: {:?}",
                self.log.filter
            ));
        }
        if let Some(p) = &self.keys.pepper
            && p.expose_secret().len() < 32
        {
            return fail("keys.pepper (CORRAL_KEYS__PEPPER): must be at least 32 bytes".into());
        }
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
        if self.sim.parallel == 0 {
            return fail("sim.parallel (CORRAL_SIM__PARALLEL): must be at least 1".into());
        }
        if self.sim.pods == 0 || self.sim.pods > 16 {
            return fail("sim.pods (CORRAL_SIM__PODS): must be 1 to 16".into());
        }
        let w = &self.cluster.workload;
        if w.is_empty()
            || w.len() > 63
            || !w
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || w.starts_with('-')
            || w.ends_with('-')
        {
            return fail(format!(
                "cluster.workload (CORRAL_CLUSTER__WORKLOAD): {w:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)"
            ));
        }
        if self.cluster.min_replicas < 0
            || self.cluster.max_replicas < self.cluster.min_replicas
            || self.cluster.max_replicas > 1000
        {
            return fail("cluster.min_replicas, cluster.max_replicas (CORRAL_CLUSTER__MIN_REPLICAS, CORRAL_CLUSTER__MAX_REPLICAS): need 0 <= min <= max <= 1000".into());
        }
        if self.cluster.driver == ClusterDriver::Static {
            self.static_urls().map_err(SettingsError)?;
        }
        if self.operations.concurrency == 0 {
            return fail(
                "operations.concurrency (CORRAL_OPERATIONS__CONCURRENCY): must be at least 1"
                    .into(),
            );
        }
        if self.operations.lease_secs < 2 {
            return fail(
                "operations.lease_secs (CORRAL_OPERATIONS__LEASE_SECS): must be at least 2".into(),
            );
        }
        if self.profile == Profile::Production {
            let mut missing = Vec::new();
            if self.keys.pepper.is_none() {
                missing.push(
                    "keys.pepper (CORRAL_KEYS__PEPPER or CORRAL_KEYS__PEPPER_FILE) is required",
                );
            }
            if self.sim.enabled == Some(true) {
                missing.push("sim.enabled (CORRAL_SIM__ENABLED) must be false: the Ollama simulator is for local runs and tests");
            }
            match &self.oidc.issuer {
                None => missing.push("oidc.issuer (CORRAL_OIDC__ISSUER) is required"),
                Some(u) if u.scheme() != "https" => {
                    missing.push("oidc.issuer (CORRAL_OIDC__ISSUER) must be an https:// URL")
                }
                Some(_) => {}
            }
            if self.session.secret.is_none() {
                missing.push("session.secret (CORRAL_SESSION__SECRET or CORRAL_SESSION__SECRET_FILE) is required");
            }
            if self.database.url.is_none() {
                missing.push("database.url (CORRAL_DATABASE__URL) is required");
            }
            if self.auth.dev_sign_in == Some(true) {
                missing.push("auth.dev_sign_in (CORRAL_AUTH__DEV_SIGN_IN) must be false: the development sign-in is refused in production");
            }
            if let Some(u) = &self.server.public_url
                && u.scheme() != "https"
            {
                missing
                    .push("server.public_url (CORRAL_SERVER__PUBLIC_URL) must be an https:// URL");
            }
            if !missing.is_empty() {
                return fail(format!(
                    "profile=production refuses to start: {}",
                    missing.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// The URL people reach Corral at, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.server.host, self.server.port),
        }
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

    /// The simulated Ollamas' addresses (`sim.pods` of them).
    pub fn sim_addrs(&self) -> Vec<std::net::SocketAddr> {
        (0..self.sim.pods)
            .map(|i| std::net::SocketAddr::new(self.sim.host, self.sim.port.saturating_add(2 * i)))
            .collect()
    }

    /// The static driver's pods: `cluster.static_urls`, or the simulated
    /// Ollamas when the simulator runs.
    pub fn static_urls(&self) -> Result<Vec<url::Url>, String> {
        const SETTING: &str = "cluster.static_urls (CORRAL_CLUSTER__STATIC_URLS)";
        let raw = match &self.cluster.static_urls {
            Some(list) => list.clone(),
            None if self.sim_enabled() => self
                .sim_addrs()
                .iter()
                .map(|a| format!("http://{a}"))
                .collect::<Vec<_>>()
                .join(","),
            None => self.gateway.upstreams.clone(),
        };
        let urls: Vec<url::Url> = raw
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                url::Url::parse(u)
                    .ok()
                    .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                    .ok_or_else(|| format!("{SETTING}: {u:?} is not an http(s):// URL"))
            })
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(format!("{SETTING}: name at least one Ollama URL"));
        }
        Ok(urls)
    }

    /// The key pepper: the setting, or the public development pepper under
    /// `local`.
    pub fn pepper(&self) -> app::domain::keys::Pepper {
        app::domain::keys::Pepper::new(match &self.keys.pepper {
            Some(p) => p.expose_secret().as_bytes(),
            None => LOCAL_PEPPER.as_bytes(),
        })
    }

    /// Whether `corral` runs the built-in Ollama simulator: by default under
    /// `local` only.
    pub fn sim_enabled(&self) -> bool {
        self.sim.enabled.unwrap_or(self.profile == Profile::Local)
    }

    /// Where clients reach the gateway, without a trailing slash.
    pub fn gateway_url(&self) -> String {
        match &self.gateway.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.gateway.host, self.gateway.port),
        }
    }

    /// Whether the development sign-in is on: by default under `local` only.
    pub fn dev_sign_in(&self) -> bool {
        self.auth
            .dev_sign_in
            .unwrap_or(self.profile == Profile::Local)
    }
}

/// `CORRAL_SERVER__PORT` → `server.port`.
fn env_key(name: &str) -> String {
    name[ENV_PREFIX.len()..]
        .to_ascii_lowercase()
        .replace("__", ".")
}

/// One line naming the setting, what was wrong and where the value came from.
fn describe(e: &figment::Error, vars: &[(String, String)]) -> String {
    let source_of = |env: &str| {
        if vars.iter().any(|(k, _)| k == env) {
            "the environment".to_owned()
        } else if vars.iter().any(|(k, _)| k == &format!("{env}_FILE")) {
            format!("the file named by {env}_FILE")
        } else if let Some((_, path)) = vars.iter().find(|(k, _)| k == CONFIG_FILE_VAR) {
            format!("settings file {path}")
        } else {
            "the defaults".to_owned()
        }
    };
    let mut lines = Vec::new();
    for err in e.clone() {
        let key = err.path.join(".");
        let env = if key.is_empty() {
            String::new()
        } else {
            format!(
                "{ENV_PREFIX}{}",
                key.to_ascii_uppercase().replace('.', "__")
            )
        };
        let what = match &err.kind {
            figment::error::Kind::UnknownField(..) => {
                lines.push(format!(
                    "unknown setting {key} ({env}) in {}",
                    source_of(&env)
                ));
                continue;
            }
            kind => kind.to_string(),
        };
        lines.push(format!(
            "invalid setting {key} ({env}): {what} (from {})",
            source_of(&env)
        ));
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_the_local_profile_on_loopback() {
        let s = load(&[]).unwrap();
        assert_eq!(s.profile, Profile::Local);
        assert_eq!(s.server.port, 3000);
        assert!(s.dev_sign_in());
    }

    #[test]
    fn a_port_that_is_not_a_number_names_the_setting() {
        let e = load(&[("CORRAL_SERVER__PORT", "abc")]).unwrap_err().0;
        assert!(e.contains("server.port"), "{e}");
        assert!(e.contains("CORRAL_SERVER__PORT"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let e = load(&[("CORRAL_SERVER__PROT", "3000")]).unwrap_err().0;
        assert!(
            e.starts_with("unknown setting server.prot (CORRAL_SERVER__PROT) in the environment"),
            "{e}"
        );
    }

    #[test]
    fn production_without_issuer_or_session_secret_names_both() {
        let e = load(&[("CORRAL_PROFILE", "production")]).unwrap_err().0;
        assert!(e.contains("oidc.issuer"), "{e}");
        assert!(e.contains("session.secret"), "{e}");
    }

    #[test]
    fn production_refuses_plain_http_issuer_and_dev_sign_in() {
        let e = load(&[
            ("CORRAL_PROFILE", "production"),
            ("CORRAL_OIDC__ISSUER", "http://kc.example/realms/corral"),
            ("CORRAL_SESSION__SECRET", "0123456789abcdef0123456789abcdef"),
            ("CORRAL_DATABASE__URL", "postgres://db/corral"),
            ("CORRAL_AUTH__DEV_SIGN_IN", "true"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("https://"), "{e}");
        assert!(e.contains("dev_sign_in"), "{e}");
    }

    #[test]
    fn production_turns_the_development_sign_in_off() {
        let s = load(&[
            ("CORRAL_PROFILE", "production"),
            ("CORRAL_OIDC__ISSUER", "https://kc.example/realms/corral"),
            ("CORRAL_SESSION__SECRET", "0123456789abcdef0123456789abcdef"),
            ("CORRAL_DATABASE__URL", "postgres://db/corral"),
            ("CORRAL_KEYS__PEPPER", "fedcba9876543210fedcba9876543210"),
        ])
        .unwrap();
        assert!(!s.dev_sign_in());
        assert!(!s.sim_enabled());
    }

    #[test]
    fn production_requires_a_key_pepper_and_refuses_the_simulator() {
        let e = load(&[
            ("CORRAL_PROFILE", "production"),
            ("CORRAL_SIM__ENABLED", "true"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("keys.pepper"), "{e}");
        assert!(e.contains("sim.enabled"), "{e}");
    }

    #[test]
    fn gateway_upstreams_are_a_comma_separated_list_of_urls() {
        let s = load(&[(
            "CORRAL_GATEWAY__UPSTREAMS",
            "http://ollama-0:11434, http://ollama-1:11434",
        )])
        .unwrap();
        assert_eq!(s.upstreams().unwrap().len(), 2);
        let e = load(&[("CORRAL_GATEWAY__UPSTREAMS", "ollama:11434")])
            .unwrap_err()
            .0;
        assert!(e.contains("CORRAL_GATEWAY__UPSTREAMS"), "{e}");
        let e = load(&[("CORRAL_KEYS__PEPPER", "short")]).unwrap_err().0;
        assert!(e.contains("keys.pepper"), "{e}");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("corral-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").unwrap();
        let s = load(&[("CORRAL_SESSION__SECRET_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(
            s.session.secret.unwrap().expose_secret(),
            "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
        );
    }

    #[test]
    fn a_short_session_secret_is_refused() {
        let e = load(&[("CORRAL_SESSION__SECRET", "short")]).unwrap_err().0;
        assert!(e.contains("session.secret"), "{e}");
    }
}
