//! What a `FROM`, `ADAPTER` or `DRAFT` value names (a model, a local file, a
//! blob already on the Ollama server), Ollama's model-name rules
//! (`types/model.ParseName`, `internal/modelref.ParseRef`) and its semver
//! check for `REQUIRES` (`golang.org/x/mod/semver`).

/// What a source value refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A model name for `from`.
    Model,
    /// A blob in Ollama's store, by a path ending in `sha256-<64 hex>` (the
    /// form `ollama show --modelfile` prints). Holds (file name, digest).
    Blob(String, String),
    /// A file or directory on the author's computer.
    LocalPath,
}

pub(crate) fn classify(value: &str) -> Source {
    let file = value.rsplit(['/', '\\']).next().unwrap_or(value);
    if let Some(hex) = file.strip_prefix("sha256-")
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Source::Blob(file.to_owned(), format!("sha256:{hex}"));
    }
    let lower = value.to_ascii_lowercase();
    let looks_like_path = value.starts_with(['/', '\\', '~', '.'])
        || value.as_bytes().get(1) == Some(&b':')
            && value
                .as_bytes()
                .get(2)
                .is_some_and(|b| *b == b'\\' || *b == b'/')
        || [".gguf", ".safetensors", ".bin", ".pth"]
            .iter()
            .any(|ext| lower.ends_with(ext));
    if looks_like_path {
        Source::LocalPath
    } else {
        Source::Model
    }
}

/// Ollama's server check of a model reference (`from` or the created model's
/// name): an optional `:cloud`/`:local` source suffix, then a name that
/// `model.ParseName` fills up with defaults and finds valid.
pub fn is_valid_model_name(raw: &str) -> bool {
    let raw = raw.trim();
    if raw.is_empty() {
        return false;
    }
    let (base, explicit) = strip_source_suffix(raw);
    if explicit && strip_source_suffix(&base).1 {
        return false;
    }
    parse_name_valid(&base)
}

fn strip_source_suffix(raw: &str) -> (String, bool) {
    if let Some(idx) = raw.rfind(':') {
        let suffix_raw = raw.get(idx + 1..).unwrap_or("").trim();
        let suffix = suffix_raw.to_ascii_lowercase();
        if suffix == "cloud" || suffix == "local" {
            return (raw.get(..idx).unwrap_or("").to_owned(), true);
        }
        if !suffix_raw.contains('/') && suffix.ends_with("-cloud") {
            let keep = suffix_raw.len() - "-cloud".len();
            let head = raw.get(..=idx).unwrap_or("");
            return (
                format!("{head}{}", suffix_raw.get(..keep).unwrap_or("")),
                true,
            );
        }
    }
    (raw.to_owned(), false)
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

/// `model.ParseName(s).IsValid()`.
fn parse_name_valid(s: &str) -> bool {
    const MISSING: &str = "!MISSING!";
    let mut rest = s;
    let mut tag = "latest";
    let last_colon = rest.rfind(':');
    let last_slash = rest.rfind('/');
    if last_colon.map(|c| Some(c) > last_slash).unwrap_or(false) {
        let (before, after) = cut_promised(rest, ':');
        rest = before;
        tag = after;
    }
    let (model, namespace, host) = match rest.rfind('/') {
        None => (rest, "library", "registry.ollama.ai"),
        Some(_) => {
            let (before, model) = cut_promised(rest, '/');
            match before.rfind('/') {
                None => (model, before, "registry.ollama.ai"),
                Some(_) => {
                    let (host, namespace) = cut_promised(before, '/');
                    let host = host.split_once("://").map_or(host, |(_, h)| h);
                    (
                        model,
                        namespace,
                        if host.is_empty() {
                            "registry.ollama.ai"
                        } else {
                            host
                        },
                    )
                }
            }
        }
    };
    let _ = MISSING;
    valid_part(Part::Host, host)
        && valid_part(Part::Namespace, namespace)
        && valid_part(Part::Model, model)
        && valid_part(Part::Tag, tag)
}

/// Cuts at the last `sep`; an empty side becomes Ollama's "!MISSING!" marker,
/// which never validates.
fn cut_promised(s: &str, sep: char) -> (&str, &str) {
    match s.rfind(sep) {
        Some(i) => {
            let before = s.get(..i).unwrap_or("");
            let after = s.get(i + sep.len_utf8()..).unwrap_or("");
            (
                if before.is_empty() {
                    "!MISSING!"
                } else {
                    before
                },
                if after.is_empty() { "!MISSING!" } else { after },
            )
        }
        None => (s, ""),
    }
}

fn valid_part(kind: Part, s: &str) -> bool {
    let max = if kind == Part::Host { 350 } else { 80 };
    if s.is_empty() || s.len() > max {
        return false;
    }
    s.bytes().enumerate().all(|(i, c)| {
        let word = c.is_ascii_alphanumeric() || c == b'_';
        if i == 0 {
            return word;
        }
        match c {
            b'_' | b'-' => true,
            b'.' => kind != Part::Namespace,
            b':' => kind == Part::Host,
            _ => word,
        }
    })
}

/// Ollama's `REQUIRES` rule: prefix `v` if missing, then
/// `golang.org/x/mod/semver.IsValid`; the request carries it without the `v`.
pub(crate) fn requires_version(value: &str) -> Option<String> {
    let v = if value.starts_with('v') {
        value.to_owned()
    } else {
        format!("v{value}")
    };
    semver_valid(&v).then(|| v.get(1..).unwrap_or("").to_owned())
}

fn semver_valid(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let Some(rest) = number(rest) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(mut rest) = rest.strip_prefix('.').and_then(number) else {
        return false;
    };
    if let Some(pre) = rest.strip_prefix('-') {
        let end = pre.find('+').unwrap_or(pre.len());
        let (ids, after) = pre.split_at(end);
        if !identifiers(ids, true) {
            return false;
        }
        rest = after;
    }
    if let Some(build) = rest.strip_prefix('+') {
        return identifiers(build, false);
    }
    rest.is_empty()
}

/// A decimal number without leading zeros; returns what follows it.
fn number(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (n > 1 && s.starts_with('0')) {
        return None;
    }
    s.get(n..)
}

fn identifiers(s: &str, no_leading_zero: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(no_leading_zero
                && id.len() > 1
                && id.starts_with('0')
                && id.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_follow_ollama() {
        for ok in [
            "llama3",
            "llama3:latest",
            "codellama:13b",
            "llama3:7b-instruct-q4_K_M",
            "hf.co/org/model:Q4",
            "user/model",
            "gpt-oss:20b:cloud",
            "gpt-oss:20b-cloud",
        ] {
            assert!(is_valid_model_name(ok), "{ok}");
        }
        for bad in [
            "",
            "FOOO BAR",
            "/what/is/the path",
            "./x.gguf",
            "a:",
            ":b",
            "a//b",
            "model # base",
            "x:local:cloud",
        ] {
            assert!(!is_valid_model_name(bad), "{bad}");
        }
    }

    #[test]
    fn requires_follows_x_mod_semver() {
        assert_eq!(requires_version("0.14.0").as_deref(), Some("0.14.0"));
        assert_eq!(requires_version("v0.14").as_deref(), Some("0.14"));
        assert_eq!(
            requires_version("1.2.3-rc.1+build.01").as_deref(),
            Some("1.2.3-rc.1+build.01")
        );
        for bad in [
            "", "01.2.3", "1.2-rc1", "1.2.3-01", "vv1", "1.2.3.4", "latest",
        ] {
            assert_eq!(requires_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn sources_are_told_apart() {
        let digest = "a".repeat(64);
        assert_eq!(classify("llama3:8b"), Source::Model);
        assert_eq!(classify("./model.gguf"), Source::LocalPath);
        assert_eq!(classify("~/models/x"), Source::LocalPath);
        assert_eq!(classify("C:\\models\\x"), Source::LocalPath);
        assert_eq!(
            classify(&format!("/root/.ollama/models/blobs/sha256-{digest}")),
            Source::Blob(format!("sha256-{digest}"), format!("sha256:{digest}"))
        );
    }
}
