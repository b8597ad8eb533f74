//! Prometheus, read back for the usage charts and checked by the status
//! page: range queries through `prometheus-http-query`, each bounded by
//! `prometheus.timeout_ms` (a slow Prometheus costs a page that long, then
//! the page shows Corral's own totals).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::{MetricSeries, MetricsSource, Probe};
use app::model::{DependencyState, DependencyStatus};
use prometheus_http_query::{Client, Error};
use secrecy::ExposeSecret;

use crate::settings::PrometheusSettings;

/// A client for the configured Prometheus.
pub struct Prometheus {
    client: Client,
    timeout: Duration,
    /// For messages: the base URL without credentials.
    shown: String,
}

impl Prometheus {
    /// From `prometheus.*`; none when no URL is set.
    pub fn from_settings(s: &PrometheusSettings) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(url) = &s.url else {
            return Ok(None);
        };
        // reqwest 0.13 (this crate's) is built without a bundled TLS
        // provider: use ring, as the rest of Corral does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_millis(s.timeout_ms);
        let mut headers = reqwest13::header::HeaderMap::new();
        if let Some(token) = &s.bearer_token {
            let mut v = reqwest13::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                token.expose_secret()
            ))
            .map_err(|_| {
                anyhow::anyhow!("prometheus.bearer_token: must be printable ASCII (a token)")
            })?;
            v.set_sensitive(true);
            headers.insert(reqwest13::header::AUTHORIZATION, v);
        }
        let http = reqwest13::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| anyhow::anyhow!("prometheus: HTTP client: {e}"))?;
        let client = Client::from(http, url.as_str())
            .map_err(|e| anyhow::anyhow!("prometheus.url (CORRAL_PROMETHEUS__URL): {e}"))?;
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        Ok(Some(Arc::new(Self {
            client,
            timeout,
            shown: shown.to_string(),
        })))
    }

    /// What went wrong, in a sentence for the page's banner.
    fn explain(&self, e: &Error) -> String {
        match e {
            Error::Prometheus(p) => format!("Prometheus refused the query: {p}"),
            Error::Client(c) => {
                let source =
                    std::error::Error::source(c).and_then(|s| s.downcast_ref::<reqwest13::Error>());
                match source {
                    Some(r) if r.is_timeout() => format!(
                        "no answer from {} within {} ms",
                        self.shown,
                        self.timeout.as_millis()
                    ),
                    Some(r) if r.is_connect() => format!("cannot connect to {}", self.shown),
                    _ => format!("{} answered with an error: {e}", self.shown),
                }
            }
            other => format!("{}: {other}", self.shown),
        }
    }
}

impl MetricsSource for Prometheus {
    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        from: i64,
        to: i64,
        step: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<MetricSeries>, String>> + Send + 'a>> {
        Box::pin(async move {
            let asked = self
                .client
                .query_range(promql, from, to, step as f64)
                .timeout(self.timeout.as_millis() as i64)
                .get();
            let answer = match tokio::time::timeout(self.timeout, asked).await {
                Err(_) => {
                    return Err(format!(
                        "no answer from {} within {} ms",
                        self.shown,
                        self.timeout.as_millis()
                    ));
                }
                Ok(Err(e)) => return Err(self.explain(&e)),
                Ok(Ok(a)) => a,
            };
            let (data, _) = answer.into_inner();
            let matrix = data.into_matrix().map_err(|_| {
                "Prometheus answered with something other than a matrix".to_string()
            })?;
            Ok(matrix
                .into_iter()
                .map(|rv| {
                    let (labels, samples) = rv.into_inner();
                    MetricSeries {
                        labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
                        points: samples
                            .iter()
                            .map(|s| (s.timestamp() as i64, s.value()))
                            .collect(),
                    }
                })
                .collect())
        })
    }
}

/// The status page's row for Prometheus.
pub struct PrometheusProbe(pub Option<Arc<Prometheus>>);

impl Probe for PrometheusProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = DependencyStatus> + Send + '_>> {
        Box::pin(async move {
            let row = |state, detail: String, latency_ms| DependencyStatus {
                id: "prometheus".into(),
                name: "Prometheus".into(),
                state,
                detail,
                latency_ms,
            };
            let Some(p) = &self.0 else {
                return row(
                    DependencyState::Healthy,
                    "not configured (prometheus.url): usage pages show totals without charts"
                        .into(),
                    0,
                );
            };
            let t0 = Instant::now();
            let asked = p.client.query("vector(1)").get();
            let outcome = match tokio::time::timeout(p.timeout, asked).await {
                Err(_) => Err(format!(
                    "no answer from {} within {} ms",
                    p.shown,
                    p.timeout.as_millis()
                )),
                Ok(Err(e)) => Err(p.explain(&e)),
                Ok(Ok(_)) => Ok(()),
            };
            let ms = t0.elapsed().as_millis() as u64;
            match outcome {
                Ok(()) => row(
                    DependencyState::Healthy,
                    format!("answering at {}", p.shown),
                    ms,
                ),
                Err(e) => row(
                    DependencyState::Down,
                    format!("{e}; usage pages show totals without charts"),
                    ms,
                ),
            }
        })
    }
}
