//! The Ollama upstreams: one HTTP client, the least-busy upstream chosen per
//! request, and in-flight counts that become `ollama_queue_depth`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::IntGauge;

use super::metrics::GatewayMetrics;

/// One Ollama server.
pub struct Upstream {
    /// `http://ollama:11434`, no trailing slash.
    pub base: String,
    in_flight: AtomicUsize,
    parallel: usize,
    queue_gauge: IntGauge,
    in_flight_gauge: IntGauge,
}

/// All upstreams and the client that talks to them.
pub struct Upstreams {
    pub client: reqwest::Client,
    list: Vec<Arc<Upstream>>,
}

/// Holds a place on an upstream until dropped (the reply ended, or the
/// client went away).
pub struct Lease {
    pub upstream: Arc<Upstream>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let n = self.upstream.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.upstream.update_gauges(n);
    }
}

impl Upstream {
    fn update_gauges(&self, in_flight: usize) {
        self.in_flight_gauge.set(in_flight as i64);
        self.queue_gauge
            .set(in_flight.saturating_sub(self.parallel) as i64);
    }
}

impl Upstreams {
    pub fn new(
        urls: Vec<url::Url>,
        parallel: usize,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // Ollama answers plain HTTP/1.1; no redirects are followed.
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()?;
        let list = urls
            .into_iter()
            .map(|u| {
                let base = u.as_str().trim_end_matches('/').to_owned();
                Arc::new(Upstream {
                    queue_gauge: metrics.queue_depth.with_label_values(&[&base]),
                    in_flight_gauge: metrics.upstream_in_flight.with_label_values(&[&base]),
                    base,
                    in_flight: AtomicUsize::new(0),
                    parallel,
                })
            })
            .collect::<Vec<_>>();
        for u in &list {
            u.update_gauges(0);
        }
        Ok(Self { client, list })
    }

    /// Takes a place on the least busy upstream.
    pub fn lease(&self) -> Lease {
        let upstream = self
            .list
            .iter()
            .min_by_key(|u| u.in_flight.load(Ordering::Acquire))
            .expect("at least one upstream (checked by the settings)")
            .clone();
        let n = upstream.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        upstream.update_gauges(n);
        Lease { upstream }
    }

    /// Any upstream (for reads that any of them can answer).
    pub fn first(&self) -> &Arc<Upstream> {
        &self.list[0]
    }
}
