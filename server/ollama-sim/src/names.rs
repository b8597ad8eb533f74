//! Model names as Ollama parses them: `[host/][namespace/]model[:tag]`.

use std::fmt;

/// The registry a name without a host belongs to.
pub(crate) const DEFAULT_HOST: &str = "registry.ollama.ai";
/// The namespace a name without one belongs to.
pub(crate) const DEFAULT_NAMESPACE: &str = "library";
/// The tag a name without one carries.
pub(crate) const DEFAULT_TAG: &str = "latest";

/// Why a string is not a model name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid model name")]
pub(crate) struct InvalidName;

/// A fully qualified model name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelName {
    pub(crate) host: String,
    pub(crate) namespace: String,
    pub(crate) model: String,
    pub(crate) tag: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

impl ModelName {
    /// Parses a name, filling the missing parts with Ollama's defaults.
    pub(crate) fn parse(raw: &str) -> Result<Self, InvalidName> {
        // A trailing `@sha256:…` pins a digest; the name is what precedes it.
        let raw = raw.split_once('@').map_or(raw, |(name, _)| name);
        let (path, tag) = match raw.rfind(':') {
            Some(i) if !raw[i..].contains('/') => (&raw[..i], Some(&raw[i + 1..])),
            _ => (raw, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [model] => (DEFAULT_HOST, DEFAULT_NAMESPACE, *model),
            [namespace, model] => (DEFAULT_HOST, *namespace, *model),
            [host, namespace, model] => (*host, *namespace, *model),
            _ => return Err(InvalidName),
        };
        let tag = match tag {
            Some("") | None => DEFAULT_TAG,
            Some(tag) => tag,
        };
        for (part, kind) in [
            (host, Part::Host),
            (namespace, Part::Namespace),
            (model, Part::Model),
            (tag, Part::Tag),
        ] {
            if !valid_part(part, kind) {
                return Err(InvalidName);
            }
        }
        Ok(Self {
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The shortest unambiguous spelling, as `/api/tags` lists it.
    pub(crate) fn display_shortest(&self) -> String {
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            format!(
                "{}/{}/{}:{}",
                self.host, self.namespace, self.model, self.tag
            )
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            format!("{}/{}:{}", self.namespace, self.model, self.tag)
        } else {
            format!("{}:{}", self.model, self.tag)
        }
    }

    /// The case-insensitive identity Ollama matches names by.
    pub(crate) fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
    }
}

fn valid_part(s: &str, kind: Part) -> bool {
    let max = if kind == Part::Host { 350 } else { 80 };
    if s.is_empty() || s.len() > max {
        return false;
    }
    s.bytes().enumerate().all(|(i, b)| {
        if i == 0 {
            return b.is_ascii_alphanumeric() || b == b'_';
        }
        match b {
            b'_' | b'-' => true,
            b'.' => kind != Part::Namespace,
            b':' => kind == Part::Host,
            _ => b.is_ascii_alphanumeric(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_gets_the_default_parts() {
        let name = ModelName::parse("llama3.2").unwrap();
        assert_eq!(
            name.to_string(),
            "registry.ollama.ai/library/llama3.2:latest"
        );
        assert_eq!(name.display_shortest(), "llama3.2:latest");
    }

    #[test]
    fn namespaces_hosts_and_digests_are_understood() {
        let name = ModelName::parse("mattw/pygmalion:7b").unwrap();
        assert_eq!(name.display_shortest(), "mattw/pygmalion:7b");
        let name = ModelName::parse("localhost:5000/me/model:v1@sha256:abc").unwrap();
        assert_eq!(name.host, "localhost:5000");
        assert_eq!(name.display_shortest(), "localhost:5000/me/model:v1");
        assert_eq!(
            ModelName::parse("Llama3.2:LATEST").unwrap().key(),
            ModelName::parse("llama3.2").unwrap().key()
        );
    }

    #[test]
    fn malformed_names_are_rejected() {
        for bad in [
            "", "a b", "-x", "a/b/c/d", "na.me/x", "x:-tag", "x/:y", "bad!name",
        ] {
            assert_eq!(ModelName::parse(bad), Err(InvalidName), "{bad:?}");
        }
    }
}
