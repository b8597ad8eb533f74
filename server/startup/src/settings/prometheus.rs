//! Where the usage charts come from (`prometheus.*`) and its rules.

use secrecy::SecretString;
use serde::Deserialize;

use super::SettingsError;

/// The Prometheus that scrapes the gateway, read back for the usage charts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// Its base URL (`http://prometheus:9090`). Unset: the usage pages show
    /// Corral's own totals and say that charts need Prometheus.
    pub url: Option<url::Url>,
    /// How long a page waits for Prometheus before it shows the totals
    /// alone, in milliseconds.
    pub timeout_ms: u64,
    /// Sent as `Authorization: Bearer …` (e.g. behind an auth proxy); use
    /// `CORRAL_PROMETHEUS__BEARER_TOKEN_FILE` for a mounted secret.
    pub bearer_token: Option<SecretString>,
}

impl PrometheusSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.url
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(SettingsError(format!(
                "prometheus.url (CORRAL_PROMETHEUS__URL): must be an http:// or https:// URL, not {url}"
            )));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(SettingsError(format!(
                "prometheus.timeout_ms (CORRAL_PROMETHEUS__TIMEOUT_MS): must be between 100 and 60000, not {}",
                self.timeout_ms
            )));
        }
        Ok(())
    }
}
