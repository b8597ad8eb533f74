//! Key verification for the gateway: an in-memory cache of key grants by
//! public id, filled from Postgres on first use, refreshed in the background
//! when stale (requests never wait for a known key), emptied for a key the
//! moment Postgres announces a change on the `corral_api_keys` channel, and
//! still trusted while Postgres is away.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use app::domain::keys::{KeyGrant, token};
use app::model::KeyScope;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Gateway;
use super::errors::Refusal;

/// The channel the database triggers notify on.
pub const CHANNEL: &str = "corral_api_keys";

/// Unknown public ids are remembered this long, so random well-formed keys
/// do not each cost a query (a new key is announced and clears this).
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

#[derive(Clone)]
enum Entry {
    Known {
        grant: Arc<KeyGrant>,
        fetched: Instant,
    },
    Unknown {
        fetched: Instant,
    },
}

/// Verified keys by public id.
pub struct KeyCache {
    entries: RwLock<HashMap<String, Entry>>,
    ttl: Duration,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, public_id: &str) -> Option<Entry> {
        self.entries.read().ok()?.get(public_id).cloned()
    }

    fn put(&self, public_id: &str, entry: Entry) {
        if let Ok(mut e) = self.entries.write() {
            e.insert(public_id.to_owned(), entry);
        }
    }

    /// Forgets one key.
    pub fn forget(&self, public_id: &str) {
        if let Ok(mut e) = self.entries.write() {
            e.remove(public_id);
        }
    }

    /// Forgets every key of a team (its policy or members changed).
    pub fn forget_team(&self, team: Uuid) {
        if let Ok(mut e) = self.entries.write() {
            e.retain(|_, v| !matches!(v, Entry::Known { grant, .. } if grant.team_id == team));
        }
    }

    /// Forgets every key (which team may call which model changed: a
    /// Modelfile was added or removed).
    pub fn forget_all(&self) {
        if let Ok(mut e) = self.entries.write() {
            e.clear();
        }
    }

    /// Marks everything stale (notifications may have been missed): known
    /// keys are refreshed in the background at their next use.
    pub fn mark_all_stale(&self) {
        if let Ok(mut e) = self.entries.write() {
            let long_ago = Instant::now()
                .checked_sub(self.ttl + NEGATIVE_TTL)
                .unwrap_or_else(Instant::now);
            e.retain(|_, v| matches!(v, Entry::Known { .. }));
            for v in e.values_mut() {
                if let Entry::Known { fetched, .. } = v {
                    *fetched = long_ago;
                }
            }
        }
    }
}

/// What a verified request may do.
pub type Grant = Arc<KeyGrant>;

/// The key from `Authorization: Bearer` or `X-API-Key`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(app::domain::keys::token::bearer)
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
}

/// Verifies a presented key and returns its grant, or why it is refused.
/// Malformed keys never reach Postgres, and invalid keys never reach Ollama.
pub async fn verify(gw: &Arc<Gateway>, presented: &str, scope: KeyScope) -> Result<Grant, Refusal> {
    let parsed = token::parse(presented).map_err(|e| {
        Refusal::InvalidKey(match e {
            token::FormatError::Checksum => {
                "invalid API key: its checksum does not match (mistyped or cut short)"
            }
            _ => "invalid API key: not a Corral key (crl_…)",
        })
    })?;
    let grant = match gw.keys.get(parsed.public_id) {
        Some(Entry::Known { grant, fetched }) => {
            if fetched.elapsed() > gw.keys.ttl {
                // Serve what we know; refresh behind the request, once per
                // period however many requests arrive meanwhile (and however
                // long Postgres stays away).
                gw.keys.put(
                    parsed.public_id,
                    Entry::Known {
                        grant: grant.clone(),
                        fetched: Instant::now(),
                    },
                );
                drop(load_at_home(gw, parsed.public_id));
            }
            grant
        }
        Some(Entry::Unknown { fetched }) if fetched.elapsed() < NEGATIVE_TTL => {
            return Err(Refusal::InvalidKey("invalid API key"));
        }
        _ => match load_at_home(gw, parsed.public_id).await.unwrap_or(Err(())) {
            Ok(Some(g)) => g,
            Ok(None) => return Err(Refusal::InvalidKey("invalid API key")),
            Err(()) => return Err(Refusal::KeyStoreUnavailable),
        },
    };
    if !gw.pepper.verify(parsed.secret, &grant.secret_hmac) {
        return Err(Refusal::InvalidKey("invalid API key"));
    }
    if grant.revoked {
        return Err(Refusal::InvalidKey("this API key was revoked"));
    }
    if grant.expires_at <= OffsetDateTime::now_utc() {
        return Err(Refusal::InvalidKey("this API key has expired"));
    }
    if !grant.owner_is_member {
        return Err(Refusal::InvalidKey(
            "this API key's owner no longer belongs to its team",
        ));
    }
    if !grant.scopes.contains(&scope) {
        return Err(Refusal::Scope(match scope {
            KeyScope::Inference => "this API key lacks the inference scope",
            KeyScope::Manage => {
                "model management (pull, create, copy, delete, push) needs a key with the manage scope; this key may only run models"
            }
        }));
    }
    Ok(grant)
}

/// [`load`], started on the gateway's home runtime: Postgres connections
/// are opened and used there, never on a worker thread (whose runtime stops
/// first at shutdown, and would take its pool connections with it). Await
/// the handle for the result, or drop it to refresh in the background.
fn load_at_home(
    gw: &Arc<Gateway>,
    public_id: &str,
) -> tokio::task::JoinHandle<Result<Option<Grant>, ()>> {
    let gw2 = gw.clone();
    let id = public_id.to_owned();
    gw.home.spawn(async move { load(&gw2, &id).await })
}

/// Reads a key from Postgres into the cache. `Err` when Postgres failed.
async fn load(gw: &Gateway, public_id: &str) -> Result<Option<Grant>, ()> {
    match app::domain::keys::grant(&gw.db, public_id).await {
        Ok(Some(g)) => {
            let g = Arc::new(g);
            gw.keys.put(
                public_id,
                Entry::Known {
                    grant: g.clone(),
                    fetched: Instant::now(),
                },
            );
            Ok(Some(g))
        }
        Ok(None) => {
            gw.keys.put(
                public_id,
                Entry::Unknown {
                    fetched: Instant::now(),
                },
            );
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "key look-up failed; serving cached keys only");
            Err(())
        }
    }
}

/// Listens for key and policy changes and drops what they touch. After a
/// lost connection, everything cached is marked stale (changes may have
/// been missed while it was down).
pub fn spawn_listener(gw: Arc<Gateway>) {
    tokio::spawn(async move {
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&gw.db).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, "key-change listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::debug!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            // Anything that changed before we were listening.
            gw.keys.mark_all_stale();
            tracing::info!("listening for key changes");
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => apply(&gw.keys, n.payload()),
                    Ok(None) => {
                        tracing::warn!("key-change listener lost its connection");
                        gw.keys.mark_all_stale();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "key-change listener failed");
                        gw.keys.mark_all_stale();
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

fn apply(cache: &KeyCache, payload: &str) {
    if let Some(id) = payload.strip_prefix("key:") {
        cache.forget(id);
    } else if let Some(team) = payload.strip_prefix("team:") {
        match Uuid::parse_str(team) {
            Ok(t) => cache.forget_team(t),
            Err(_) => cache.mark_all_stale(),
        }
    } else if payload == "grants" {
        cache.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(team: Uuid) -> Arc<KeyGrant> {
        Arc::new(KeyGrant {
            key_id: Uuid::new_v4(),
            public_id: "abc".into(),
            secret_hmac: vec![],
            team_id: team,
            team: "t".into(),
            owner_id: Uuid::new_v4(),
            owner_is_member: true,
            scopes: vec![KeyScope::Inference],
            key_models: None,
            team_models: None,
            foreign_models: vec![],
            expires_at: OffsetDateTime::now_utc(),
            revoked: false,
            key_rpm: None,
            key_tpm: None,
            team_rpm: None,
            team_tpm: None,
            monthly_token_quota: None,
        })
    }

    #[test]
    fn notifications_drop_keys_and_teams() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for (id, team) in [("k1", a), ("k2", a), ("k3", b)] {
            cache.put(
                id,
                Entry::Known {
                    grant: grant(team),
                    fetched: Instant::now(),
                },
            );
        }
        apply(&cache, "key:k3");
        assert!(cache.get("k3").is_none());
        apply(&cache, &format!("team:{a}"));
        assert!(cache.is_empty());
        cache.put(
            "k4",
            Entry::Known {
                grant: grant(b),
                fetched: Instant::now(),
            },
        );
        apply(&cache, "grants");
        assert!(cache.is_empty());
    }
}
