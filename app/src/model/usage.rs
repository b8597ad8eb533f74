//! Usage through the gateway: the totals from Postgres, the charts from
//! Prometheus, and the ranges both are asked over.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::AppError;

/// Usage of one model by a team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelUsage {
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub avg_latency_ms: f64,
    /// Over streamed replies only (for the others it is the whole latency).
    pub avg_ttft_ms: Option<f64>,
}

/// Usage of one key over a range: unused keys show zeros.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyUsage {
    /// Prefix of the key (`crl_<public id>_…`).
    pub key: String,
    pub name: String,
    pub revoked: bool,
    pub requests: i64,
    pub errors: i64,
    pub tokens: i64,
    /// Last use within the range.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// One request the gateway served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Prefix of the key used (`crl_<public id>_…`).
    pub key: Option<String>,
    pub model: String,
    pub endpoint: String,
    pub status: i16,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
}

/// A team's usage from `since` to `until`, exact (from Postgres).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageSummary {
    pub team: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Tokens used this calendar month (UTC), against the quota if any.
    pub month_tokens: i64,
    /// This month's tokens at the month's end if use goes on at the pace
    /// of the month so far.
    pub projected_month_tokens: i64,
    pub monthly_token_quota: Option<i64>,
    pub by_model: Vec<ModelUsage>,
    pub by_key: Vec<KeyUsage>,
    /// The latest requests, newest first.
    pub recent: Vec<UsageEvent>,
}

/// The ranges the usage pages offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeChoice {
    Hour,
    Day,
    Week,
    Month,
    /// `from`/`to` given.
    Custom,
}

impl RangeChoice {
    pub const ALL: [RangeChoice; 4] = [Self::Hour, Self::Day, Self::Week, Self::Month];

    /// The word in a URL (`?range=24h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Hour, Self::Day, Self::Week, Self::Month, Self::Custom]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    fn length(self) -> Option<Duration> {
        match self {
            Self::Hour => Some(Duration::hours(1)),
            Self::Day => Some(Duration::hours(24)),
            Self::Week => Some(Duration::days(7)),
            Self::Month => Some(Duration::days(30)),
            Self::Custom => None,
        }
    }
}

/// The longest range a page or export is asked over.
pub const MAX_RANGE_DAYS: i64 = 400;

/// A time range and the step its charts are drawn at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRange {
    pub choice: RangeChoice,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Seconds between points: about 120 points over any range, on a
    /// round step (15 s … 1 d).
    pub step_secs: i64,
}

/// Steps a chart may take, in seconds.
const STEPS: &[i64] = &[
    15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

impl UsageRange {
    /// A range from the page's choice, or `from`/`to` (RFC 3339) for a
    /// custom one; errors name the field.
    pub fn new(
        choice: &str,
        from: Option<&str>,
        to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Self, AppError> {
        let choice = RangeChoice::parse(choice).ok_or_else(|| {
            AppError::validation("range", "must be one of 1h, 24h, 7d, 30d or custom")
        })?;
        let parse = |field: &str, v: Option<&str>| -> Result<OffsetDateTime, AppError> {
            let v = v
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| AppError::validation(field, "is needed for a custom range"))?;
            OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
                .or_else(|_| {
                    // A date (or the browser's datetime-local) in UTC.
                    let fmt =
                        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
                    time::PrimitiveDateTime::parse(v.trim(), &fmt)
                        .map(|p| p.assume_utc())
                        .or_else(|_| {
                            let d = time::macros::format_description!("[year]-[month]-[day]");
                            time::Date::parse(v.trim(), &d).map(|d| d.midnight().assume_utc())
                        })
                })
                .map_err(|_| {
                    AppError::validation(field, "must be a date and time like 2026-12-01T00:00Z")
                })
        };
        let (from, to) = match choice.length() {
            Some(len) => (now - len, now),
            None => (parse("from", from)?, parse("to", to)?),
        };
        if to <= from {
            return Err(AppError::validation("to", "must be after from"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(AppError::validation(
                "from",
                format!("a range is at most {MAX_RANGE_DAYS} days"),
            ));
        }
        let want = ((to - from).whole_seconds() / 120).max(1);
        let step_secs = STEPS.iter().copied().find(|s| *s >= want).unwrap_or(86400);
        Ok(Self {
            choice,
            from,
            to,
            step_secs,
        })
    }
}

/// Whether the charts could be drawn from Prometheus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MetricsState {
    Ok,
    /// `prometheus.url` is not set.
    NotConfigured,
    /// Prometheus did not answer in time, or answered with an error.
    Unavailable {
        reason: String,
    },
}

/// Line colours, in order of the series (Tableau 10: told apart by most
/// colour-blind readers); the legend uses the same.
pub const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

/// One line on a chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartSeries {
    pub name: String,
    /// (Unix seconds, value); a gap where Prometheus had no sample.
    pub points: Vec<(i64, f64)>,
}

/// A chart: drawn on the server as SVG, with its data for a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub id: String,
    pub title: String,
    /// What the values are in (`requests/s`, `tokens/h`, `s`, `%`).
    pub unit: String,
    pub series: Vec<ChartSeries>,
    /// The drawing (an `<svg>` element with a title and description).
    pub svg: String,
}

/// The team usage page: exact totals always, charts when Prometheus answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageDashboard {
    pub range: UsageRange,
    pub summary: UsageSummary,
    pub metrics: MetricsState,
    pub charts: Vec<Chart>,
    /// Models the team used in the range, for the model filter.
    pub models: Vec<String>,
    /// The model the charts are filtered to, if any.
    pub model: Option<String>,
}

/// One team's line in the admin ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamUsage {
    pub team: String,
    pub requests: i64,
    pub errors: i64,
    pub tokens: i64,
    /// This calendar month (UTC), against the quota if any.
    pub month_tokens: i64,
    pub monthly_token_quota: Option<i64>,
}

/// The admin usage page: every team ranked, the models most used (exact,
/// from Postgres), and the cluster-wide charts from Prometheus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminUsage {
    pub range: UsageRange,
    /// By tokens, then requests.
    pub teams: Vec<TeamUsage>,
    /// The most used models across teams.
    pub models: Vec<ModelUsage>,
    pub metrics: MetricsState,
    pub charts: Vec<Chart>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-07 12:00 UTC)
    }

    #[test]
    fn steps_give_about_120_points_on_round_values() {
        let step = |c| UsageRange::new(c, None, None, now()).unwrap().step_secs;
        assert_eq!(step("1h"), 30);
        assert_eq!(step("24h"), 900);
        assert_eq!(step("7d"), 7200);
        assert_eq!(step("30d"), 21600);
    }

    #[test]
    fn custom_ranges_are_checked_field_by_field() {
        let err = |f, t| {
            UsageRange::new("custom", f, t, now())
                .unwrap_err()
                .to_string()
        };
        assert!(err(None, Some("2026-12-01")).contains("from"));
        assert!(err(Some("2026-12-02"), Some("2026-12-01")).contains("to"));
        assert!(err(Some("yesterday"), Some("2026-12-01")).contains("from"));
        assert!(err(Some("2024-01-01"), Some("2026-12-01")).contains("400 days"));
        let r = UsageRange::new(
            "custom",
            Some("2026-12-01T10:00"),
            Some("2026-12-02"),
            now(),
        )
        .unwrap();
        assert_eq!(r.from, time::macros::datetime!(2026-12-01 10:00 UTC));
        assert_eq!(r.step_secs, 600);
        assert!(UsageRange::new("5y", None, None, now()).is_err());
    }
}
