//! API keys, key requests, team policy and usage: the types the key pages,
//! the server functions and the REST API share.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a key may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Call models through the gateway.
    Inference,
    /// Call Corral's REST API (`/api/v1`) as the key's owner, within its team.
    Manage,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inference => "inference",
            Self::Manage => "manage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inference" => Some(Self::Inference),
            "manage" => Some(Self::Manage),
            _ => None,
        }
    }
}

/// Where a key request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyRequestState {
    /// Waiting for a team owner or an admin.
    Pending,
    /// Approved; the requester has not collected the secret yet.
    Approved,
    Denied,
    /// Approved and collected: the key exists.
    Issued,
    /// The requester took it back before a decision.
    Withdrawn,
}

impl KeyRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "issued" => Self::Issued,
            "withdrawn" => Self::Withdrawn,
            _ => return None,
        })
    }
}

/// A request for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyRequest {
    pub id: Uuid,
    pub team: String,
    /// Username of the person who asked.
    pub requester: String,
    pub name: String,
    pub purpose: String,
    /// Models the key may call; none means every model the team may use.
    pub models: Option<Vec<String>>,
    pub scopes: Vec<KeyScope>,
    pub expires_in_days: i32,
    pub state: KeyRequestState,
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Why it was denied (or approved).
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a member sends to ask for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    #[serde(default)]
    pub purpose: String,
    /// Models the key may call, within the team's allow-list; absent or
    /// empty means every model the team may use.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Defaults to `["inference"]`.
    #[serde(default)]
    pub scopes: Option<Vec<KeyScope>>,
    /// Days until the key expires; at most the team's maximum. Defaults to
    /// the team's maximum.
    #[serde(default)]
    pub expires_in_days: Option<i32>,
}

/// A decision on a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyDecision {
    pub approve: bool,
    /// Required when denying; shown to the requester.
    #[serde(default)]
    pub reason: Option<String>,
}

/// How a key stands right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    /// Active, and expiring within a week.
    Expiring,
    Expired,
    Revoked,
}

/// An API key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: Uuid,
    /// `crl_<public id>_…`: enough to recognise the key, useless to use it.
    pub prefix: String,
    pub team: String,
    /// Username of the person the key belongs to.
    pub owner: String,
    pub name: String,
    pub purpose: String,
    pub models: Option<Vec<String>>,
    pub scopes: Vec<KeyScope>,
    pub state: KeyState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<Uuid>,
}

/// A newly made key with its secret: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IssuedKey {
    pub key: ApiKey,
    /// `crl_<public id>_<secret>`: store it now; Corral keeps only an HMAC.
    pub secret: String,
}

/// What a request turned into: with self-service issuance the key is made
/// at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyRequestOutcome {
    pub request: KeyRequest,
    pub issued: Option<IssuedKey>,
}

/// Revoking a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Rotating a key: a new key now, the old one valid for `grace_hours` more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// 0 to 720; defaults to 24.
    #[serde(default)]
    pub grace_hours: Option<i32>,
}

/// A team's key and gateway policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamPolicy {
    /// Models the team may use; none means every model on the cluster.
    pub allowed_models: Option<Vec<String>>,
    /// Members get keys without waiting for an approval.
    pub self_service_keys: bool,
    /// Longest lifetime of a key, in days.
    pub max_key_days: i32,
    /// Requests per minute for the whole team.
    pub rpm_limit: Option<i32>,
    /// Tokens (prompt + completion) per minute for the whole team.
    pub tpm_limit: Option<i32>,
    /// Tokens per calendar month (UTC).
    pub monthly_token_quota: Option<i64>,
}

/// What an admin sends to change a team's policy. Absent fields stay; for
/// the nullable ones, `null` clears the limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamPolicyPatch {
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Vec<String>>))]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub self_service_keys: Option<bool>,
    #[serde(default)]
    pub max_key_days: Option<i32>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i32>))]
    pub rpm_limit: Option<Option<i32>>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i32>))]
    pub tpm_limit: Option<Option<i32>>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<i64>))]
    pub monthly_token_quota: Option<Option<i64>>,
}

/// `Option<Option<T>>` that tells "absent" (outer `None`) from `null`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

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
    pub avg_ttft_ms: Option<f64>,
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

/// A team's usage since `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageSummary {
    pub team: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Tokens used this calendar month (UTC), against the quota if any.
    pub month_tokens: i64,
    pub monthly_token_quota: Option<i64>,
    pub by_model: Vec<ModelUsage>,
    /// The latest requests, newest first.
    pub recent: Vec<UsageEvent>,
}

/// Rules for key fields, shared by the forms, the REST API and the domain.
pub mod key_rules {
    use crate::model::AppError;

    pub const NAME_MAX: usize = 100;
    pub const PURPOSE_MAX: usize = 500;
    pub const REASON_MAX: usize = 500;
    pub const MODELS_MAX: usize = 100;
    pub const GRACE_HOURS_MAX: i32 = 720;

    pub fn name(name: &str) -> Result<(), AppError> {
        let n = name.trim().chars().count();
        if n == 0 {
            Err(AppError::validation("name", "must not be empty"))
        } else if n > NAME_MAX {
            Err(AppError::validation(
                "name",
                format!("must be at most {NAME_MAX} characters"),
            ))
        } else {
            Ok(())
        }
    }

    pub fn text(field: &str, text: &str, max: usize) -> Result<(), AppError> {
        if text.chars().count() > max {
            Err(AppError::validation(
                field,
                format!("must be at most {max} characters"),
            ))
        } else {
            Ok(())
        }
    }

    /// An Ollama model name: `llama3.2`, `qwen2.5:0.5b`,
    /// `registry.example.com/team/model:tag`.
    pub fn model_name(field: &str, m: &str) -> Result<(), AppError> {
        let ok = !m.is_empty()
            && m.len() <= 200
            && m.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/')
            })
            && m.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && m.matches(':').count() <= 1;
        if ok {
            Ok(())
        } else {
            Err(AppError::validation(
                field,
                format!(
                    "{m:?} is not a model name (letters, digits, '.', '-', '_', '/', one ':' before the tag)"
                ),
            ))
        }
    }

    /// `llama3.2` and `llama3.2:latest` are the same model.
    pub fn normalize_model(m: &str) -> String {
        let m = m.trim();
        let last = m.rsplit('/').next().unwrap_or(m);
        let mut out = String::with_capacity(m.len() + ":latest".len());
        out.push_str(m);
        if !last.contains(':') {
            out.push_str(":latest");
        }
        out
    }

    /// Validated, normalised, de-duplicated model list; empty means none.
    pub fn models(field: &str, models: &[String]) -> Result<Option<Vec<String>>, AppError> {
        if models.len() > MODELS_MAX {
            return Err(AppError::validation(
                field,
                format!("at most {MODELS_MAX} models"),
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for m in models {
            let m = m.trim();
            if m.is_empty() {
                continue;
            }
            model_name(field, m)?;
            let n = normalize_model(m);
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn model_names_are_checked_and_normalised() {
            assert!(model_name("models", "llama3.2").is_ok());
            assert!(model_name("models", "reg.example.com/team/m:7b-q4").is_ok());
            assert!(model_name("models", "a b").is_err());
            assert!(model_name("models", ":x").is_err());
            assert!(model_name("models", "a:b:c").is_err());
            assert_eq!(normalize_model("llama3.2"), "llama3.2:latest");
            assert_eq!(normalize_model("qwen2.5:0.5b"), "qwen2.5:0.5b");
            assert_eq!(
                models(
                    "models",
                    &["llama3.2".into(), "llama3.2:latest".into(), " ".into()]
                )
                .unwrap(),
                Some(vec!["llama3.2:latest".to_owned()])
            );
            assert_eq!(models("models", &[]).unwrap(), None);
        }
    }
}
