//! Timestamps the way Go's `time.Time` marshals them, and Ollama's `keep_alive` durations.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use time::OffsetDateTime;

/// Now, in UTC.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_s() -> i64 {
    now().unix_timestamp()
}

/// RFC 3339 with as many fraction digits as needed, like Go's `time.RFC3339Nano`
/// (`2023-08-04T19:22:45.499127Z`).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut out = String::with_capacity(32);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Nanoseconds of a duration, never zero: Go omits zero durations from its
/// responses, and a real model never takes no time at all.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// How long a model stays loaded after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Unload as soon as the request is done.
    Unload,
    /// Stay loaded for this long.
    For(Duration),
    /// Stay loaded until the server stops.
    Forever,
}

impl KeepAlive {
    /// Ollama's default: five minutes.
    pub(crate) const DEFAULT: Self = Self::For(Duration::from_secs(300));

    /// Parses `keep_alive` as Ollama does: a number of seconds, or a Go duration
    /// string (`"5m"`, `"1h30m"`, `"-1"`). Negative means forever.
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(Self::DEFAULT),
            Value::Number(n) => Ok(Self::from_seconds(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => {
                if let Ok(seconds) = s.trim().parse::<f64>() {
                    return Ok(Self::from_seconds(seconds));
                }
                go_duration(s.trim())
                    .map(Self::from_seconds)
                    .ok_or_else(|| format!("time: invalid duration \"{s}\""))
            }
            _ => Err("unsupported type for keep_alive".to_owned()),
        }
    }

    fn from_seconds(seconds: f64) -> Self {
        if seconds < 0.0 {
            Self::Forever
        } else if seconds == 0.0 {
            Self::Unload
        } else {
            Self::For(Duration::from_secs_f64(seconds.min(1e12)))
        }
    }

    /// When a model loaded now, under this keep-alive, is unloaded.
    pub(crate) fn expiry(self, from: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Unload => from,
            Self::For(d) => from + d,
            // What Ollama reports for an infinite keep-alive: the far end of its clock.
            Self::Forever => from + time::Duration::days(106_751),
        }
    }
}

/// Seconds in a Go duration string such as `1h30m`, `250ms` or `-1m`.
fn go_duration(s: &str) -> Option<f64> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_trim_trailing_zeros_like_go() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_691_176_965_499_127_000).unwrap();
        assert_eq!(rfc3339(t), "2023-08-04T19:22:45.499127Z");
        let t = OffsetDateTime::from_unix_timestamp(1_691_176_965).unwrap();
        assert_eq!(rfc3339(t), "2023-08-04T19:22:45Z");
    }

    #[test]
    fn keep_alive_accepts_numbers_and_go_durations() {
        assert_eq!(KeepAlive::parse(&json!(0)).unwrap(), KeepAlive::Unload);
        assert_eq!(KeepAlive::parse(&json!("0")).unwrap(), KeepAlive::Unload);
        assert_eq!(KeepAlive::parse(&json!(-1)).unwrap(), KeepAlive::Forever);
        assert_eq!(
            KeepAlive::parse(&json!("1h30m")).unwrap(),
            KeepAlive::For(Duration::from_secs(5400))
        );
        assert_eq!(
            KeepAlive::parse(&json!("250ms")).unwrap(),
            KeepAlive::For(Duration::from_millis(250))
        );
        assert!(KeepAlive::parse(&json!("soon")).is_err());
    }
}
