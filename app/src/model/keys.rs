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
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::purpose))]
    pub purpose: String,
    /// Models the key may call, within the team's allow-list; absent or
    /// empty means every model the team may use.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::models_or_null))]
    pub models: Option<Vec<String>>,
    /// Defaults to `["inference"]`.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(min_items = 1))]
    pub scopes: Option<Vec<KeyScope>>,
    /// Days until the key expires; at most the team's maximum (a 422
    /// beyond it). Defaults to the team's maximum.
    #[serde(default, deserialize_with = "crate::model::text::whole::option")]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::key_days_or_null))]
    pub expires_in_days: Option<i32>,
}

/// A decision on a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDecision {
    pub approve: bool,
    /// Required when denying; shown to the requester.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Two shapes, so that the document says what the code checks: a reason
/// may be left out when approving and must be given when denying.
#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for KeyDecision {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};

        use crate::model::text::schema::text;
        let shape = |approve: bool, title: &str, description: &str| {
            let reason = if approve {
                text(&key_rules::REASON, true)
            } else {
                text(&key_rules::REASON_GIVEN, false)
            };
            let mut o = ObjectBuilder::new()
                .title(Some(title))
                .description(Some(description))
                .property(
                    "approve",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .enum_values(Some([approve])),
                )
                .required("approve")
                .property("reason", reason)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            if !approve {
                o = o.required("reason");
            }
            o.build()
        };
        OneOfBuilder::new()
            .description(Some("A decision on a request."))
            .item(shape(true, "Approve", "Approves; a reason is optional."))
            .item(shape(
                false,
                "Deny",
                "Denies; the reason is shown to the requester.",
            ))
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for KeyDecision {}

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
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::reason_or_null))]
    pub reason: Option<String>,
}

/// Rotating a key: a new key now, the old one valid for `grace_hours` more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Defaults to 24.
    #[serde(default, deserialize_with = "crate::model::text::whole::option")]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::grace_hours_or_null))]
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
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::models_or_null))]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub self_service_keys: Option<bool>,
    #[serde(default, deserialize_with = "crate::model::text::whole::option")]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::key_days_or_null))]
    pub max_key_days: Option<i32>,
    #[serde(
        default,
        serialize_with = "double_option::serialize",
        deserialize_with = "crate::model::text::whole::double_option"
    )]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::per_minute_or_null))]
    pub rpm_limit: Option<Option<i32>>,
    #[serde(
        default,
        serialize_with = "double_option::serialize",
        deserialize_with = "crate::model::text::whole::double_option"
    )]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::per_minute_or_null))]
    pub tpm_limit: Option<Option<i32>>,
    #[serde(
        default,
        serialize_with = "double_option::serialize",
        deserialize_with = "crate::model::text::whole::double_option"
    )]
    #[cfg_attr(feature = "ssr", schema(schema_with = key_rules::schema::monthly_tokens_or_null))]
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

/// Rules for key and policy fields, shared by the forms, the REST API, the
/// domain and the OpenAPI document.
pub mod key_rules {
    use crate::model::AppError;
    use crate::model::text::{IntRule, Shape, TextRule, storable};

    pub const NAME_MAX: usize = 100;
    pub const PURPOSE_MAX: usize = 500;
    pub const REASON_MAX: usize = 500;
    pub const MODELS_MAX: usize = 100;
    pub const MODEL_NAME_MAX: usize = 200;
    pub const GRACE_HOURS_MAX: i32 = 720;

    pub const NAME: TextRule = TextRule::required(NAME_MAX);
    pub const PURPOSE: TextRule = TextRule::up_to(PURPOSE_MAX);
    pub const REASON: TextRule = TextRule::up_to(REASON_MAX);
    /// A reason that must be given (denying a request).
    pub const REASON_GIVEN: TextRule = TextRule::required(REASON_MAX);
    /// An Ollama model name: `llama3.2`, `qwen2.5:0.5b`,
    /// `registry.example.com/team/model:tag`.
    pub const MODEL: TextRule = TextRule {
        max_chars: Some(MODEL_NAME_MAX),
        not_blank: true,
        shape: Some(Shape {
            matches: is_model_name,
            pattern: "^[A-Za-z0-9][A-Za-z0-9._/-]*(?::[A-Za-z0-9._/-]*)?$",
            message: "is not a model name (letters, digits, '.', '-', '_', '/', one ':' before the tag)",
        }),
    };
    /// Hours a rotated key stays valid.
    pub const GRACE_HOURS: IntRule = IntRule {
        min: 0,
        max: GRACE_HOURS_MAX as i64,
    };
    /// A key's lifetime, and a team's longest.
    pub const KEY_DAYS: IntRule = IntRule { min: 1, max: 3650 };
    /// Requests or tokens per minute.
    pub const PER_MINUTE: IntRule = IntRule {
        min: 1,
        max: i32::MAX as i64,
    };
    /// How many days back a usage summary reaches.
    pub const USAGE_DAYS: IntRule = IntRule { min: 1, max: 90 };
    /// Tokens per month.
    pub const MONTHLY_TOKENS: IntRule = IntRule {
        min: 1,
        max: i64::MAX,
    };

    fn is_model_name(m: &str) -> bool {
        !m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/'))
            && m.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && m.matches(':').count() <= 1
    }

    pub fn name(name: &str) -> Result<(), AppError> {
        NAME.check("name", name)
    }

    /// An Ollama model name (see [`MODEL`]); the error quotes it.
    pub fn model_name(field: &str, m: &str) -> Result<(), AppError> {
        storable(field, m)?;
        MODEL.check(field, m).map_err(|e| match e {
            AppError::Validation { field, message } => AppError::Validation {
                field,
                message: format!("{m:?} {message}"),
            },
            other => other,
        })
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
            model_name(field, m)?;
            let n = normalize_model(m);
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    /// The rules as the document states them (`schema_with` functions).
    #[cfg(feature = "ssr")]
    pub mod schema {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;

        use crate::model::text::schema::{inline, int, text, texts};

        pub fn name() -> RefOr<Schema> {
            inline(text(&super::NAME, false))
        }
        pub fn purpose() -> RefOr<Schema> {
            inline(text(&super::PURPOSE, false))
        }
        pub fn reason_or_null() -> RefOr<Schema> {
            inline(text(&super::REASON, true))
        }
        pub fn models_or_null() -> RefOr<Schema> {
            inline(texts(&super::MODEL, super::MODELS_MAX, true))
        }
        pub fn grace_hours_or_null() -> RefOr<Schema> {
            inline(int(&super::GRACE_HOURS, true))
        }
        pub fn key_days_or_null() -> RefOr<Schema> {
            inline(int(&super::KEY_DAYS, true))
        }
        pub fn per_minute_or_null() -> RefOr<Schema> {
            inline(int(&super::PER_MINUTE, true))
        }
        pub fn monthly_tokens_or_null() -> RefOr<Schema> {
            inline(int(&super::MONTHLY_TOKENS, true))
        }
        pub fn usage_days() -> RefOr<Schema> {
            let mut s = int(&super::USAGE_DAYS, false);
            s.default = Some(7.into());
            inline(s)
        }
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
            assert!(model_name("models", "a\0").is_err());
            assert!(models("models", &[" ".into()]).is_err());
            assert_eq!(normalize_model("llama3.2"), "llama3.2:latest");
            assert_eq!(normalize_model("qwen2.5:0.5b"), "qwen2.5:0.5b");
            assert_eq!(
                models("models", &["llama3.2".into(), "llama3.2:latest".into()]).unwrap(),
                Some(vec!["llama3.2:latest".to_owned()])
            );
            assert_eq!(models("models", &[]).unwrap(), None);
        }
    }
}
