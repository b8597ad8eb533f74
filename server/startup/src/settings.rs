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
mod cluster;
mod gateway;
mod prometheus;

pub use cluster::{ClusterDriver, ClusterSettings, ModelsVolume, OperationSettings, SimSettings};
pub use gateway::{FormatCheck, GatewaySettings};
pub use prometheus::PrometheusSettings;

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
    pub prometheus: PrometheusSettings,
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
    /// `corral` applies pending migrations at start-up. False where a
    /// release's migration Job (`corral migrate`) applies them: `/readyz`
    /// then stays 503 until it has.
    pub migrate: bool,
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
        "database": { "url": null, "max_connections": 10, "acquire_timeout_secs": 5, "migrate": true },
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
        "prometheus": { "url": null, "timeout_ms": 2000, "bearer_token": null },
        "sim": { "enabled": null, "host": "127.0.0.1", "port": 11434, "ttft_ms": 40, "token_ms": 25, "parallel": 4, "pods": 2, "pull_step_ms": 400 },
        "cluster": {
            "driver": "static", "workload": "ollama", "static_urls": null,
            "min_replicas": 1, "max_replicas": 4, "models_volume": "per_pod",
            "namespace": null, "kubeconfig": null, "autoscaler": null, "ollama_port": 11434,
            "gpu_memory_gib": null,
        },
        "operations": { "enabled": true, "concurrency": 4, "lease_secs": 15, "reconcile_secs": 30 },
    })
}

/// Which binary reads the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `corral`: the portal, REST API, workers (and, locally, the gateway).
    Portal,
    /// `corral-gateway` alone.
    Gateway,
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
        Self::load_for(Binary::Portal, vars)
    }

    /// Reads settings for one of the binaries: `corral-gateway` serves no
    /// people, so production does not ask it for the sign-in's settings
    /// (`oidc.issuer`, `session.secret`), and a gateway pod need not hold
    /// those secrets.
    pub fn load_for(
        binary: Binary,
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
        settings.validate(binary)?;
        Ok(settings)
    }

    /// Rules between settings, and what `production` refuses.
    fn validate(&self, binary: Binary) -> Result<(), SettingsError> {
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
        self.validate_gateway()?;
        self.validate_cluster()?;
        self.prometheus.validate()?;
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
                None if binary == Binary::Gateway => {}
                None => missing.push("oidc.issuer (CORRAL_OIDC__ISSUER) is required"),
                Some(u) if u.scheme() != "https" => {
                    missing.push("oidc.issuer (CORRAL_OIDC__ISSUER) must be an https:// URL")
                }
                Some(_) => {}
            }
            if self.session.secret.is_none() && binary == Binary::Portal {
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

    /// The key pepper: the setting, or the public development pepper under
    /// `local`.
    pub fn pepper(&self) -> app::domain::keys::Pepper {
        app::domain::keys::Pepper::new(match &self.keys.pepper {
            Some(p) => p.expose_secret().as_bytes(),
            None => LOCAL_PEPPER.as_bytes(),
        })
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
mod tests;
