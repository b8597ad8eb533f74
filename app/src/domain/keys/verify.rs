//! What the gateway and the REST API verify a presented key by: its grant,
//! last use, and bearer authentication.

use super::*;

/// Everything the gateway needs to judge a request made with a key.
#[derive(Clone, Debug)]
pub struct KeyGrant {
    pub key_id: Uuid,
    pub public_id: String,
    pub secret_hmac: Vec<u8>,
    pub team_id: Uuid,
    pub team: String,
    pub owner_id: Uuid,
    /// The key's owner still belongs to the team.
    pub owner_is_member: bool,
    pub scopes: Vec<KeyScope>,
    /// The key's own list (already within the team's when issued).
    pub key_models: Option<Vec<String>>,
    /// The team's allow-list with the models its Modelfiles create (None:
    /// any model).
    pub team_models: Option<Vec<String>>,
    /// Models other teams' Modelfiles create: never callable with this key.
    pub foreign_models: Vec<String>,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    pub key_rpm: Option<i32>,
    pub key_tpm: Option<i32>,
    pub team_rpm: Option<i32>,
    pub team_tpm: Option<i32>,
    pub monthly_token_quota: Option<i64>,
}

impl KeyGrant {
    /// Whether `model` (normalised) may be called with this key: it must be
    /// in the team's list, and in the key's if the key has one.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allows_normalized_model(&key_rules::normalize_model(model))
    }

    /// [`Self::allows_model`] for a name already through
    /// [`key_rules::normalize_model`].
    pub fn allows_normalized_model(&self, m: &str) -> bool {
        !self.foreign_models.iter().any(|x| x == m)
            && self
                .team_models
                .as_ref()
                .is_none_or(|t| t.iter().any(|x| x == m))
            && self
                .key_models
                .as_ref()
                .is_none_or(|k| k.iter().any(|x| x == m))
    }

    /// Usable at `now` (not revoked, not expired, owner still in the team).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        !self.revoked && self.expires_at > now && self.owner_is_member
    }
}

/// Looks a key up by its public id (no actor: the caller verifies the
/// secret against `secret_hmac` itself).
pub async fn grant(conn: impl PgExecutor<'_>, public_id: &str) -> Result<Option<KeyGrant>> {
    let row = sqlx::query!(
        r#"SELECT k.id, k.public_id, k.secret_hmac, k.team_id, t.slug, k.owner_id, k.scopes,
                  k.models,
                  CASE WHEN t.allowed_models IS NULL THEN NULL
                       ELSE t.allowed_models || ARRAY(SELECT mf.name FROM modelfiles mf WHERE mf.team_id = t.id)
                  END AS allowed_models,
                  ARRAY(SELECT mf.name FROM modelfiles mf WHERE mf.team_id IS DISTINCT FROM t.id)
                    AS "foreign_models!",
                  k.expires_at, k.revoked_at, k.rpm_limit, k.tpm_limit,
                  t.rpm_limit AS team_rpm, t.tpm_limit AS team_tpm, t.monthly_token_quota,
                  EXISTS (SELECT 1 FROM memberships m WHERE m.team_id = k.team_id AND m.user_id = k.owner_id)
                    AS "owner_is_member!"
             FROM api_keys k JOIN teams t ON t.id = k.team_id
            WHERE k.public_id = $1"#,
        public_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| KeyGrant {
        key_id: r.id,
        public_id: r.public_id,
        secret_hmac: r.secret_hmac,
        team_id: r.team_id,
        team: r.slug,
        owner_id: r.owner_id,
        owner_is_member: r.owner_is_member,
        scopes: scopes_from_db(&r.scopes),
        key_models: r.models,
        team_models: r.allowed_models,
        foreign_models: r.foreign_models,
        expires_at: r.expires_at,
        revoked: r.revoked_at.is_some(),
        key_rpm: r.rpm_limit,
        key_tpm: r.tpm_limit,
        team_rpm: r.team_rpm,
        team_tpm: r.team_tpm,
        monthly_token_quota: r.monthly_token_quota,
    }))
}

/// Records that keys were used (the gateway batches these).
pub async fn touch(conn: impl PgExecutor<'_>, key_ids: &[Uuid]) -> Result<()> {
    sqlx::query!(
        r#"UPDATE api_keys SET last_used_at = now()
            WHERE id = ANY($1) AND (last_used_at IS NULL OR last_used_at < now() - interval '30 seconds')"#,
        key_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a bearer token was refused on the REST API.
#[derive(Debug, PartialEq, Eq)]
pub enum BearerRefusal {
    /// Not a key, unknown, wrong secret, expired, revoked, or its owner left
    /// the team: all answered alike.
    Invalid(&'static str),
    /// A valid key without the `manage` scope.
    NoManageScope,
}

/// Turns a `manage`-scoped key into the [`Actor`] it acts as: its owner,
/// limited to the key's team.
pub async fn authenticate_bearer(
    db: &sqlx::PgPool,
    bearer: &str,
    pepper: &Pepper,
    request_id: Option<String>,
) -> Result<std::result::Result<Actor, BearerRefusal>> {
    let Ok(parsed) = token::parse(bearer) else {
        return Ok(Err(BearerRefusal::Invalid(
            "the bearer token is not a Corral API key",
        )));
    };
    let Some(grant) = grant(db, parsed.public_id).await? else {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    };
    if !pepper.verify(parsed.secret, &grant.secret_hmac)
        || !grant.is_live(OffsetDateTime::now_utc())
    {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    }
    if !grant.scopes.contains(&KeyScope::Manage) {
        return Ok(Err(BearerRefusal::NoManageScope));
    }
    let Some(mut actor) =
        crate::domain::identity::load_actor(db, grant.owner_id, Via::ApiKey, request_id).await?
    else {
        return Ok(Err(BearerRefusal::Invalid(
            "the API key is unknown, expired or revoked",
        )));
    };
    actor.teams.retain(|id, _| *id == grant.team_id);
    touch(db, &[grant.key_id]).await?;
    Ok(Ok(actor))
}
