//! The gateway's Prometheus metrics, served at its `/metrics`: what the
//! usage pages chart and what the HPA scales on (`ollama_queue_depth`).

use std::sync::{Arc, Mutex, RwLock};

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

/// Distinct `model` label values per team. A key without a model list may
/// name any model, each name a new series even when Ollama answers 404:
/// past this many, a team's further models are counted as [`OTHER_MODELS`],
/// so that no key can grow the gateway's memory without bound.
pub const MODELS_PER_TEAM: usize = 100;
/// The `model` label of a team's models past [`MODELS_PER_TEAM`] (never a
/// normalised model name: those always carry a tag after a colon).
pub const OTHER_MODELS: &str = "other";

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
    pub upstream_responses: IntCounterVec,
    pub overhead: Histogram,
    pub rejections: IntCounterVec,
    pub usage_buffered: IntGauge,
    pub usage_written: IntCounter,
    pub usage_spooled: IntCounter,
    pub key_cache_size: IntGauge,
    /// Label look-ups done once per series, not once per request.
    series: Arc<RwLock<SeriesCache>>,
    /// The model label values each team has used, up to MODELS_PER_TEAM.
    labelled: Arc<Mutex<HashMap<uuid::Uuid, HashSet<String>>>>,
}

/// Series by their labels: the model last, so it is looked up as a `&str`.
/// foldhash, seeded per process (model names come from requests).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
type SeriesCache = HashMap<SeriesKey, HashMap<String, Arc<RequestSeries>>>;

/// A series' labels other than the model.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    team: uuid::Uuid,
    endpoint: &'static str,
    status: u16,
}

/// The per-request metrics of one team, model, endpoint and status.
pub struct RequestSeries {
    /// The team's slug when the series was made (a renamed team gets new
    /// series).
    team: String,
    pub requests: IntCounter,
    pub duration: Histogram,
    pub ttft: Histogram,
    /// Token counters, for endpoints that run a model.
    pub tokens: Option<(IntCounter, IntCounter)>,
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
            upstream_responses: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "corral_gateway_upstream_responses_total",
                        "Requests each upstream answered, by status class (2xx, 4xx, 5xx; cancelled when the client left first).",
                    ),
                    &["upstream", "class"],
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
            series: Arc::default(),
            labelled: Arc::default(),
        }
    }

    /// The metrics a finished request updates, by its labels; `tokens` for
    /// endpoints that run a model.
    pub fn series(
        &self,
        team_id: uuid::Uuid,
        team: &str,
        model: &str,
        endpoint: &'static str,
        status: u16,
        tokens: bool,
    ) -> Arc<RequestSeries> {
        let key = SeriesKey {
            team: team_id,
            endpoint,
            status,
        };
        if let Ok(map) = self.series.read()
            && let Some(s) = map.get(&key).and_then(|m| m.get(model))
            && s.team == team
        {
            return s.clone();
        }
        // Only a model within the team's label budget gets its own series
        // (and a place in the cache).
        let own = model.is_empty() || self.may_label(team_id, model);
        let label = if own { model } else { OTHER_MODELS };
        let status_text = status.to_string();
        let labels = [team, label, endpoint, status_text.as_str()];
        let made = Arc::new(RequestSeries {
            team: team.to_owned(),
            requests: self.requests.with_label_values(&labels),
            duration: self.duration.with_label_values(&labels),
            ttft: self.ttft.with_label_values(&labels),
            tokens: tokens.then(|| {
                (
                    self.tokens.with_label_values(&[team, label, "prompt"]),
                    self.tokens.with_label_values(&[team, label, "completion"]),
                )
            }),
        });
        if own && let Ok(mut map) = self.series.write() {
            map.entry(key)
                .or_default()
                .insert(model.to_owned(), made.clone());
        }
        made
    }

    /// Whether `model` may be a label value of `team`'s series: one it has
    /// used already, or a new one within MODELS_PER_TEAM.
    fn may_label(&self, team: uuid::Uuid, model: &str) -> bool {
        let Ok(mut labelled) = self.labelled.lock() else {
            return false;
        };
        let models = labelled.entry(team).or_default();
        if models.contains(model) {
            return true;
        }
        if models.len() >= MODELS_PER_TEAM {
            return false;
        }
        models.insert(model.to_owned());
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_made_once_and_follows_a_renamed_team() {
        let m = GatewayMetrics::new();
        let team = uuid::Uuid::new_v4();
        let a = m.series(team, "team-a", "llama3.2:latest", "/api/chat", 200, true);
        a.requests.inc();
        let again = m.series(team, "team-a", "llama3.2:latest", "/api/chat", 200, true);
        assert!(Arc::ptr_eq(&a, &again));
        again.requests.inc();
        let text = m.render();
        assert!(text.contains(r#"corral_gateway_requests_total{endpoint="/api/chat",model="llama3.2:latest",status="200",team="team-a"} 2"#), "{text}");
        // Listing models counts requests but makes no token series.
        let tags = m.series(team, "team-a", "", "/api/tags", 200, false);
        assert!(tags.tokens.is_none());
        let renamed = m.series(team, "team-z", "llama3.2:latest", "/api/chat", 200, true);
        assert!(!Arc::ptr_eq(&a, &renamed));
        renamed.requests.inc();
        assert!(m.render().contains(r#"status="200",team="team-z"} 1"#));
    }

    #[test]
    fn a_team_names_at_most_models_per_team_models_and_the_rest_are_other() {
        let m = GatewayMetrics::new();
        let (team, elsewhere) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for i in 0..MODELS_PER_TEAM {
            m.series(
                team,
                "team-a",
                &format!("m{i}:latest"),
                "/api/chat",
                404,
                true,
            )
            .requests
            .inc();
        }
        // Past the budget: counted, under "other", and not cached.
        for _ in 0..2 {
            let s = m.series(
                team,
                "team-a",
                "one-too-many:latest",
                "/api/chat",
                404,
                true,
            );
            s.requests.inc();
            s.tokens.as_ref().unwrap().0.inc_by(3);
        }
        // A model already named keeps its series; another team has its own budget.
        m.series(team, "team-a", "m0:latest", "/api/chat", 200, true)
            .requests
            .inc();
        m.series(
            elsewhere,
            "team-b",
            "one-too-many:latest",
            "/api/chat",
            404,
            true,
        )
        .requests
        .inc();
        let text = m.render();
        assert!(text.contains(r#"corral_gateway_requests_total{endpoint="/api/chat",model="other",status="404",team="team-a"} 2"#), "{text}");
        assert!(
            text.contains(
                r#"corral_gateway_tokens_total{kind="prompt",model="other",team="team-a"} 6"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"model="m0:latest",status="200",team="team-a"} 1"#));
        assert!(text.contains(r#"model="one-too-many:latest",status="404",team="team-b"} 1"#));
        assert!(!text.contains(r#"model="one-too-many:latest",status="404",team="team-a""#));
        let cached = m.series.read().unwrap();
        let models = cached
            .values()
            .map(|by_model| by_model.len())
            .sum::<usize>();
        assert_eq!(models, MODELS_PER_TEAM + 2);
    }
}
