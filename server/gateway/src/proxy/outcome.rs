//! What one request did ([`Outcome`]), recorded once as metrics, limits
//! and a usage event, and Ollama's token counts it is read from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::usage::NewUsageEvent;
use serde::Deserialize;
use time::OffsetDateTime;

use super::routes::Kind;
use crate::Gateway;
use crate::keys::Grant;
use crate::upstream::Lease;

/// What one request did, recorded once: when the reply ends, fails, or is
/// dropped because the client went away.
pub(super) struct Outcome {
    pub(super) gw: Arc<Gateway>,
    pub(super) grant: Grant,
    pub(super) kind: Kind,
    pub(super) endpoint: &'static str,
    pub(super) model: String,
    /// The upstream's place, held until the reply ends or the client leaves.
    pub(super) lease: Lease,
    pub(super) t0: Instant,
    pub(super) ttft: Option<Duration>,
    pub(super) status: u16,
    pub(super) prompt: i64,
    pub(super) completion: i64,
    /// Content chunks seen, the completion estimate for a cut-short stream.
    pub(super) chunks: i64,
    pub(super) counted: bool,
    pub(super) finished: bool,
    pub(super) recorded: bool,
}

impl Outcome {
    pub(super) fn record(&mut self) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        if !self.finished {
            // 499: the client closed the connection first (nginx's code).
            self.status = 499;
        }
        if !self.counted {
            self.completion = self.chunks;
        }
        let class = match self.status {
            499 => "cancelled",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.gw
            .metrics
            .upstream_responses
            .with_label_values(&[self.lease.upstream.base.as_str(), class])
            .inc();
        let latency = self.t0.elapsed();
        let series = self.gw.metrics.series(
            self.grant.team_id,
            &self.grant.team,
            &self.model,
            self.endpoint,
            self.status,
            self.kind == Kind::Inference,
        );
        series.requests.inc();
        series.duration.observe(latency.as_secs_f64());
        if let Some(t) = self.ttft {
            series.ttft.observe(t.as_secs_f64());
        }
        let Some((prompt, completion)) = &series.tokens else {
            return;
        };
        prompt.inc_by(self.prompt.max(0) as u64);
        completion.inc_by(self.completion.max(0) as u64);
        let now = OffsetDateTime::now_utc();
        self.gw.limits.add_tokens(
            &self.grant,
            (self.prompt + self.completion).max(0) as u64,
            now,
        );
        self.gw.usage.record(NewUsageEvent {
            event_id: self.gw.usage.event_id(now),
            at: now,
            team_id: self.grant.team_id,
            key_id: Some(self.grant.key_id),
            // Recorded once: the outcome has no more use for its model.
            model: std::mem::take(&mut self.model),
            endpoint: self.endpoint.to_owned(),
            status: self.status as i16,
            prompt_tokens: self.prompt.clamp(0, i32::MAX as i64) as i32,
            completion_tokens: self.completion.clamp(0, i32::MAX as i64) as i32,
            latency_ms: latency.as_secs_f64() * 1000.0,
            ttft_ms: self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            upstream: self.lease.upstream.base.clone(),
        });
    }

    /// Takes the token counts of a final chunk or a whole reply.
    pub(super) fn take_counts(&mut self, c: &Counts) {
        if let Some(u) = &c.usage {
            self.prompt = u.prompt_tokens;
            self.completion = u.completion_tokens;
            self.counted = true;
        } else if c.prompt_eval_count.is_some() || c.eval_count.is_some() {
            self.prompt = c.prompt_eval_count.unwrap_or(0);
            self.completion = c.eval_count.unwrap_or(0);
            self.counted = true;
        }
    }
}

/// Ollama's own token counts, from a final chunk or a whole reply of either
/// API (`prompt_eval_count`/`eval_count` natively, `usage` on `/v1`); every
/// other field is skipped unread.
#[derive(Deserialize)]
pub(super) struct Counts {
    pub(super) prompt_eval_count: Option<i64>,
    pub(super) eval_count: Option<i64>,
    pub(super) usage: Option<OpenAiUsage>,
    /// Only its length matters: an empty list marks the usage-only chunk.
    pub(super) choices: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
pub(super) struct OpenAiUsage {
    #[serde(default)]
    pub(super) prompt_tokens: i64,
    #[serde(default)]
    pub(super) completion_tokens: i64,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.record();
    }
}
