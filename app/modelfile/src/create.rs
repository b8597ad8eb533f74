//! Translation to Ollama's structured `/api/create` request, field for field
//! as `(parser.Modelfile).CreateRequest` builds it and Ollama's Go client
//! serialises it (`api.CreateRequest`, `omitempty` where Go has it).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::diagnostics::Diagnostic;
use crate::lex::{Instruction, Keyword};
use crate::names::{Source, classify, requires_version};
use crate::params::{ParamValue, parameter, type_value};

/// The body of `POST /api/create`. Field order and omission follow Go's
/// `api.CreateRequest`, so `serde_json::to_string` gives the same JSON as the
/// Go client (maps sorted by key, as Go's encoder does).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct CreateRequest {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub quantize: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// File name → blob digest (`sha256:<hex>`), the blob already on the server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub draft_files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adapters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// One entry per `LICENSE` line (the server also accepts a plain string).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub license: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, ParamValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub renderer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parser: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requires: String,
    /// Deprecated by Ollama (use `model`); its Go client always sends it, empty.
    #[serde(default)]
    pub name: String,
}

/// A `MESSAGE` line: `{"role": …, "content": …}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) if s.is_empty() => Vec::new(),
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The Modelfile has errors; the request is not built.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    /// The errors (warnings are left out).
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.first() {
            Some(d) => write!(f, "line {}, column {}: {}", d.line(), d.column(), d.message)?,
            None => write!(f, "the Modelfile has errors")?,
        }
        if self.errors.len() > 1 {
            write!(f, " (and {} more)", self.errors.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// Builds the request from instructions that passed every check.
pub(crate) fn build(model: &str, instructions: &[Instruction]) -> CreateRequest {
    let mut req = CreateRequest {
        model: model.to_owned(),
        ..CreateRequest::default()
    };
    for inst in instructions {
        let v = inst.value.clone();
        match inst.keyword {
            Keyword::From => match classify(&v) {
                Source::Blob(file, digest) => {
                    req.files.insert(file, digest);
                }
                _ => req.from = v,
            },
            Keyword::Adapter => {
                if let Source::Blob(file, digest) = classify(&v) {
                    // Go replaces the map on each ADAPTER: the last one wins.
                    req.adapters = BTreeMap::from([(file, digest)]);
                }
            }
            Keyword::Draft => {
                if let Source::Blob(file, digest) = classify(&v) {
                    req.draft_files.insert(file, digest);
                }
            }
            Keyword::Template => req.template = v,
            Keyword::System => req.system = v,
            Keyword::License => req.license.push(v),
            Keyword::Renderer => req.renderer = v,
            Keyword::Parser => req.parser = v,
            Keyword::Requires => req.requires = requires_version(&v).unwrap_or(v),
            Keyword::Message => req.messages.push(Message {
                role: inst.name.clone().unwrap_or_default(),
                content: v,
            }),
            Keyword::Parameter => {
                let name = inst.name.clone().unwrap_or_default();
                let Some(info) = parameter(&name) else {
                    continue;
                };
                if info.deprecated {
                    continue;
                }
                let Ok(typed) = type_value(info.ty, &v) else {
                    continue;
                };
                match (req.parameters.get_mut(&name), typed) {
                    (Some(ParamValue::List(list)), ParamValue::List(more)) => list.extend(more),
                    (_, typed) => {
                        req.parameters.insert(name, typed);
                    }
                }
            }
        }
    }
    req
}
