//! The gateway's Prometheus metrics, served at its `/metrics`: what the
//! usage pages chart and what the HPA scales on (`ollama_queue_depth`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::Gateway;

/// Latency buckets, in seconds, from sub-millisecond to minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// All of the gateway's metrics.
#[derive(Clone)]
pub struct GatewayMetrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub duration: HistogramVec,
    pub ttft: HistogramVec,
    pub in_flight: IntGauge,
    pub queue_depth: IntGaugeVec,
    pub upstream_in_flight: IntGaugeVec,
    pub overhead: Histogram,
    pub rejections: IntCounterVec,
    pub usage_buffered: IntGauge,
    pub usage_written: IntCounter,
    pub usage_spooled: IntCounter,
    pub key_cache_size: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric registers once");
    c
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process collector registers once");
        let labels = &["team", "model", "endpoint", "status"];
        Self {
            requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "corral_gateway_requests_total",
                        "Requests through the gateway, by team, model, endpoint and status.",
                    ),
                    labels,
                )
                .expect("valid metric"),
            ),
            tokens: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "corral_gateway_tokens_total",
                        "Tokens as Ollama counted them, by team, model and kind (prompt or completion).",
                    ),
                    &["team", "model", "kind"],
                )
                .expect("valid metric"),
            ),
            duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "corral_gateway_request_duration_seconds",
                        "From request to the last byte of the reply.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    labels,
                )
                .expect("valid metric"),
            ),
            ttft: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "corral_gateway_time_to_first_token_seconds",
                        "From request to the first byte of the reply body.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    labels,
                )
                .expect("valid metric"),
            ),
            in_flight: reg(
                &r,
                IntGauge::new(
                    "corral_gateway_in_flight_requests",
                    "Requests being proxied now.",
                )
                .expect("valid metric"),
            ),
            queue_depth: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "ollama_queue_depth",
                        "Requests sent to an upstream beyond its parallel slots (waiting in Ollama's queue).",
                    ),
                    &["upstream"],
                )
                .expect("valid metric"),
            ),
            upstream_in_flight: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "corral_gateway_upstream_in_flight",
                        "Requests in flight to each upstream.",
                    ),
                    &["upstream"],
                )
                .expect("valid metric"),
            ),
            overhead: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "corral_gateway_overhead_seconds",
                        "Time the gateway itself adds before a request leaves for Ollama (key check, limits, body handling).",
                    )
                    .buckets(vec![
                        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                        0.005, 0.01, 0.05,
                    ]),
                )
                .expect("valid metric"),
            ),
            rejections: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "corral_gateway_rejections_total",
                        "Requests the gateway refused before Ollama, by reason.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            usage_buffered: reg(
                &r,
                IntGauge::new(
                    "corral_gateway_usage_buffered_events",
                    "Usage events waiting to be written to Postgres (memory and disk).",
                )
                .expect("valid metric"),
            ),
            usage_written: reg(
                &r,
                IntCounter::new(
                    "corral_gateway_usage_written_total",
                    "Usage events written to Postgres.",
                )
                .expect("valid metric"),
            ),
            usage_spooled: reg(
                &r,
                IntCounter::new(
                    "corral_gateway_usage_spooled_total",
                    "Usage events written to the disk spool during a Postgres outage.",
                )
                .expect("valid metric"),
            ),
            key_cache_size: reg(
                &r,
                IntGauge::new("corral_gateway_key_cache_entries", "Keys held in the cache.")
                    .expect("valid metric"),
            ),
            registry: r,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics` on the gateway.
pub async fn handler(State(gw): State<Arc<Gateway>>) -> Response {
    gw.metrics.key_cache_size.set(gw.keys.len() as i64);
    let mut res = gw.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}
