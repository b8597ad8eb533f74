//! Versioned Modelfiles: the types the Modelfile pages, the server
//! functions and the REST API share, and the line diff between versions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub use modelfile::{Diagnostic, Edit, Fix, Severity};

/// A Modelfile: the model it creates, its versions, where it is deployed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Modelfile {
    pub id: Uuid,
    /// The owning team's slug; none for the platform's own.
    pub team: Option<String>,
    /// The Ollama model it creates, e.g. `team-a/reviewer:latest`.
    pub name: String,
    pub description: String,
    /// The newest version's number.
    pub latest: i32,
    /// The version each workload runs (none until the first deploy).
    pub deployments: Vec<ModelfileDeployment>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The version a workload runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelfileDeployment {
    pub workload: String,
    pub version: i32,
    /// The `create` operation that deployed it.
    pub operation: Option<Uuid>,
    pub deployed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub deployed_at: OffsetDateTime,
}

/// One immutable version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelfileVersion {
    pub version: i32,
    /// The Modelfile as written.
    pub text: String,
    /// Ollama's structured `/api/create` request it becomes (without
    /// `model`, which is the Modelfile's name).
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub request: Value,
    /// The model it is built `FROM`.
    pub base: String,
    pub message: String,
    pub author: String,
    /// A rollback: the version it restores.
    pub restores: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A Modelfile with its history (newest first) and its newest version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelfileDetail {
    pub modelfile: Modelfile,
    pub current: ModelfileVersion,
    /// Every version, newest first, without their texts.
    pub history: Vec<VersionSummary>,
}

/// A version in the history list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    pub version: i32,
    pub message: String,
    pub author: String,
    pub restores: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The body of `POST /api/v1/modelfiles`: a new Modelfile and its first
/// version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewModelfile {
    /// The owning team (its members edit it, its owners deploy it); absent:
    /// the platform's own (admins).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::team))]
    pub team: Option<String>,
    /// The model it creates. A team's names start with the team's slug and
    /// a slash (`team-a/reviewer`); `:latest` is added when no tag is given.
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::description))]
    pub description: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::text))]
    pub text: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::message))]
    pub message: String,
}

/// The body of `POST /api/v1/modelfiles/{id}/versions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::text))]
    pub text: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::message))]
    pub message: String,
}

/// The body of `POST /api/v1/modelfiles/{id}/rollback`: a new version equal
/// to an old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 2147483647))]
    pub version: i32,
    /// Defaults to "Roll back to version N".
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::optional_message))]
    pub message: Option<String>,
}

/// The body of `POST /api/v1/modelfiles/{id}/deploy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The version to deploy; the newest when absent.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 2147483647))]
    pub version: Option<i32>,
    /// The workload; the configured default when absent.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
    pub workload: Option<String>,
    /// Wait for the next maintenance window instead of starting now.
    #[serde(default)]
    pub in_next_window: bool,
}

/// The body of `POST /api/v1/modelfiles/validate`: nothing is saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ValidateModelfile {
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::text))]
    pub text: String,
    /// The model name to put in the request; `corral-validate` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::optional_model))]
    pub name: Option<String>,
}

/// What a Modelfile text is, as Ollama would read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Validation {
    /// No errors (warnings allowed): Ollama accepts it and Corral saves it.
    pub ok: bool,
    /// Errors and warnings, in line order, each with line and column
    /// (1-based) and, for common traps, a fix.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Object>))]
    pub diagnostics: Vec<Diagnostic>,
    /// The `/api/create` request it becomes, when it has no errors.
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub request: Option<Value>,
}

/// The body of `POST /api/v1/modelfiles/import`: make a Modelfile from a
/// model that is already on the pods (its `/api/show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImportModelfile {
    /// The model on the pods to read.
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::model))]
    pub model: String,
    /// As in [`NewModelfile`]; the name defaults to the model's.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::team))]
    pub team: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::optional_model))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = super::operation_rules::schema::workload))]
    pub workload: Option<String>,
}

/// Whether the pods run what was deployed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DriftReport {
    pub workload: String,
    /// The deployed version compared; none when never deployed there.
    pub version: Option<i32>,
    pub pods: Vec<PodDrift>,
}

impl DriftReport {
    /// Some pod differs from the deployed version (or lacks the model).
    pub fn drifted(&self) -> bool {
        self.version.is_some() && self.pods.iter().any(|p| p.state != DriftState::InSync)
    }
}

/// One pod's model against the deployed version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PodDrift {
    pub pod: String,
    pub state: DriftState,
    /// What differs, one line each (`num_ctx: deployed 8192, pod 4096`).
    pub differences: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    InSync,
    Drifted,
    /// The model is not on the pod.
    Missing,
    /// The pod's Ollama did not answer.
    Unreachable,
}

/// What Ollama would make of `text` as the model `name`: diagnostics, and
/// the `/api/create` request when there is no error. The editor runs it in
/// the browser as one types; the server runs it before saving.
pub fn check(text: &str, name: &str) -> Validation {
    let parsed = modelfile::parse(text);
    let request = parsed
        .create_request(name)
        .ok()
        .and_then(|r| serde_json::to_value(r).ok());
    Validation {
        ok: parsed.is_ok() && request.is_some(),
        diagnostics: parsed.diagnostics,
        request,
    }
}

/// One line of a side-by-side diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DiffLine {
    pub change: Change,
    /// Line number in the old and the new text.
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Same,
    Removed,
    Added,
}

/// The lines of `old` and `new`, each marked same, removed or added.
pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    diff.iter_all_changes()
        .map(|c| DiffLine {
            change: match c.tag() {
                ChangeTag::Equal => Change::Same,
                ChangeTag::Delete => Change::Removed,
                ChangeTag::Insert => Change::Added,
            },
            old: c.old_index().map(|i| i + 1),
            new: c.new_index().map(|i| i + 1),
            text: c.value().trim_end_matches(['\n', '\r']).to_owned(),
        })
        .collect()
}

/// A unified diff of `old` (labelled `a`) and `new` (labelled `b`), with
/// three lines of context.
pub fn unified_diff(old: &str, new: &str, a: &str, b: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(a, b)
        .to_string()
}

/// The rules of the Modelfile fields.
pub mod rules {
    use crate::model::text::TextRule;

    /// A Modelfile's text: 256 KiB (Ollama's own templates are a few KiB).
    pub const TEXT_MAX_BYTES: usize = 262_144;
    pub const TEXT: TextRule = TextRule {
        max_chars: Some(TEXT_MAX_BYTES),
        not_blank: true,
        shape: None,
    };
    pub const MESSAGE: TextRule = TextRule {
        max_chars: Some(500),
        not_blank: true,
        shape: None,
    };
    pub const DESCRIPTION: TextRule = TextRule::up_to(500);

    /// The rules as the document states them (`schema_with` functions).
    #[cfg(feature = "ssr")]
    pub mod schema {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;

        use crate::model::text::schema::{inline, text as rule};

        pub fn text() -> RefOr<Schema> {
            inline(rule(&super::TEXT, false))
        }
        pub fn message() -> RefOr<Schema> {
            inline(rule(&super::MESSAGE, false))
        }
        pub fn optional_message() -> RefOr<Schema> {
            inline(rule(&super::MESSAGE, true))
        }
        pub fn description() -> RefOr<Schema> {
            inline(rule(&super::DESCRIPTION, false))
        }
        pub fn optional_model() -> RefOr<Schema> {
            inline(rule(&crate::model::key_rules::MODEL, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_exactly_the_changed_lines() {
        let d = diff_lines(
            "FROM a\nPARAMETER x 1\nSYSTEM s\n",
            "FROM a\nPARAMETER x 2\nSYSTEM s\n",
        );
        let changed: Vec<_> = d
            .iter()
            .filter(|l| l.change != Change::Same)
            .map(|l| (l.change, l.old, l.new, l.text.as_str()))
            .collect();
        assert_eq!(
            changed,
            vec![
                (Change::Removed, Some(2), None, "PARAMETER x 1"),
                (Change::Added, None, Some(2), "PARAMETER x 2"),
            ]
        );
        let u = unified_diff("a\nb\n", "a\nc\n", "v1", "v2");
        assert!(u.contains("--- v1\n+++ v2\n"), "{u}");
        assert!(u.contains("-b\n+c\n"), "{u}");
    }
}
