//! Rate limits (requests and tokens per minute, per key and per team) and
//! the monthly token quota. Counted per gateway process in fixed one-minute
//! windows; with N replicas behind a load balancer a limit allows up to N×
//! its value in the worst case, so set limits per replica accordingly.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use super::errors::Refusal;
use super::keys::Grant;

#[derive(Clone, Copy, Default)]
struct Window {
    minute: i64,
    requests: u32,
    tokens: u64,
}

impl Window {
    fn roll(&mut self, minute: i64) {
        if self.minute != minute {
            *self = Window {
                minute,
                ..Default::default()
            };
        }
    }
}

#[derive(Clone, Copy)]
struct Month {
    /// `year * 12 + month`.
    month: i32,
    /// Tokens Postgres knew of at the last refresh.
    stored: i64,
    /// Tokens this process served since then.
    local: i64,
    refreshed: Instant,
}

/// Keyed by ids Corral made (not by anything a client chose), so a fast
/// hash is safe; it is seeded per process all the same.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Per-key and per-team counters.
#[derive(Default)]
pub struct Limits {
    keys: Mutex<HashMap<Uuid, Window>>,
    teams: Mutex<HashMap<Uuid, Window>>,
    months: Mutex<HashMap<Uuid, Month>>,
}

/// How often a team's monthly total is re-read from Postgres.
pub const QUOTA_REFRESH: Duration = Duration::from_secs(30);

fn month_index(t: OffsetDateTime) -> i32 {
    t.year() * 12 + i32::from(u8::from(t.month()))
}

fn seconds_to_next_month(now: OffsetDateTime) -> u64 {
    let (y, m) = if now.month() == time::Month::December {
        (now.year() + 1, time::Month::January)
    } else {
        (now.year(), now.month().next())
    };
    let next = time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now);
    (next - now).whole_seconds().max(1) as u64
}

impl Limits {
    /// Counts a request against the key's and team's limits, or refuses it.
    /// Tokens are added by [`Limits::add_tokens`] when the reply is done.
    pub fn admit(&self, g: &Grant, now: OffsetDateTime) -> Result<(), Refusal> {
        let minute = now.unix_timestamp().div_euclid(60);
        let retry_after = (60 - now.unix_timestamp().rem_euclid(60)).max(1) as u64;
        if let Some(quota) = g.monthly_token_quota {
            let months = self.months.lock().expect("limits lock");
            if let Some(m) = months.get(&g.team_id)
                && m.month == month_index(now)
                && m.stored + m.local >= quota
            {
                return Err(Refusal::QuotaExhausted {
                    retry_after: seconds_to_next_month(now),
                });
            }
        }
        let mut keys = self.keys.lock().expect("limits lock");
        let mut teams = self.teams.lock().expect("limits lock");
        let kw = keys.entry(g.key_id).or_default();
        kw.roll(minute);
        let tw = teams.entry(g.team_id).or_default();
        tw.roll(minute);
        let checks = [
            (
                g.key_rpm,
                kw.requests as u64,
                "requests per minute for this key",
            ),
            (
                g.team_rpm,
                tw.requests as u64,
                "requests per minute for your team",
            ),
            (g.key_tpm, kw.tokens, "tokens per minute for this key"),
            (g.team_tpm, tw.tokens, "tokens per minute for your team"),
        ];
        for (limit, used, what) in checks {
            if let Some(limit) = limit
                && used >= limit as u64
            {
                return Err(Refusal::RateLimited { what, retry_after });
            }
        }
        kw.requests += 1;
        tw.requests += 1;
        Ok(())
    }

    /// Adds a finished request's tokens to the windows and the month.
    pub fn add_tokens(&self, g: &Grant, tokens: u64, now: OffsetDateTime) {
        let minute = now.unix_timestamp().div_euclid(60);
        for (map, id) in [(&self.keys, g.key_id), (&self.teams, g.team_id)] {
            let mut m = map.lock().expect("limits lock");
            let w = m.entry(id).or_default();
            w.roll(minute);
            w.tokens += tokens;
        }
        if g.monthly_token_quota.is_some()
            && let Some(m) = self.months.lock().expect("limits lock").get_mut(&g.team_id)
        {
            m.local += tokens as i64;
        }
    }

    /// Whether the team's monthly total should be re-read.
    pub fn month_is_stale(&self, team: Uuid, now: OffsetDateTime) -> bool {
        match self.months.lock().expect("limits lock").get(&team) {
            Some(m) => m.month != month_index(now) || m.refreshed.elapsed() > QUOTA_REFRESH,
            None => true,
        }
    }

    /// Stores a fresh monthly total from Postgres.
    pub fn set_month(&self, team: Uuid, stored: i64, now: OffsetDateTime) {
        self.months.lock().expect("limits lock").insert(
            team,
            Month {
                month: month_index(now),
                stored,
                local: 0,
                refreshed: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::keys::KeyGrant;
    use app::model::KeyScope;
    use std::sync::Arc;

    fn grant(rpm: Option<i32>, tpm: Option<i32>, quota: Option<i64>) -> Grant {
        Arc::new(KeyGrant {
            key_id: Uuid::new_v4(),
            public_id: "k".into(),
            secret_hmac: vec![],
            team_id: Uuid::new_v4(),
            team: "t".into(),
            owner_id: Uuid::new_v4(),
            owner_is_member: true,
            scopes: vec![KeyScope::Inference],
            key_models: None,
            team_models: None,
            foreign_models: vec![],
            expires_at: OffsetDateTime::now_utc(),
            revoked: false,
            key_rpm: rpm,
            key_tpm: None,
            team_rpm: None,
            team_tpm: tpm,
            monthly_token_quota: quota,
        })
    }

    #[test]
    fn requests_beyond_the_minute_limit_are_refused_until_the_next_minute() {
        let l = Limits::default();
        let g = grant(Some(2), None, None);
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(l.admit(&g, t).is_ok());
        assert!(l.admit(&g, t).is_ok());
        match l.admit(&g, t + time::Duration::seconds(10)) {
            Err(Refusal::RateLimited { retry_after, .. }) => assert_eq!(retry_after, 50),
            other => panic!("{other:?}"),
        }
        assert!(l.admit(&g, t + time::Duration::seconds(60)).is_ok());
    }

    #[test]
    fn tokens_per_minute_and_monthly_quota_refuse_once_used_up() {
        let l = Limits::default();
        let g = grant(None, Some(100), Some(1000));
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        l.set_month(g.team_id, 900, t);
        assert!(l.admit(&g, t).is_ok());
        l.add_tokens(&g, 100, t);
        assert!(matches!(
            l.admit(&g, t),
            Err(Refusal::QuotaExhausted { .. })
        ));
        l.set_month(g.team_id, 0, t);
        assert!(matches!(l.admit(&g, t), Err(Refusal::RateLimited { .. })));
    }
}
