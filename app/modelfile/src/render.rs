//! Rendering a Modelfile from Ollama's `/api/show` answer, faithfully:
//! `parse(render(show))` gives the create request that rebuilds the model.
//!
//! Unlike Ollama's own `modelfile` field (parameters in map order, numbers
//! like `1e+06`, no `REQUIRES`, quotes that can break on `"`), the output is
//! deterministic, in this order:
//! `FROM`, `REQUIRES`, `TEMPLATE`, `SYSTEM`, `RENDERER`, `PARSER`, the
//! parameters in [`crate::PARAMETERS`] order (`stop` lines in their stored
//! order), `LICENSE` lines, `MESSAGE` lines. Integers are written in full,
//! floats in the shortest form that reads back as the same float32, and each
//! text is left bare or quoted with `"` or `"""`, whichever Ollama reads back
//! unchanged. Parameters Ollama no longer accepts become comments.

use serde::{Deserialize, Serialize};

use crate::create::Message;
use crate::lex::{Keyword, lex};
use crate::params::{PARAMETERS, ParamType, parse_go_float32};
use crate::text::is_print;

/// The fields of Ollama's `api.ShowResponse` the renderer reads (others are
/// ignored when deserialising).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ShowResponse {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub license: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub modelfile: String,
    /// Ollama's text form: one `name<padding> value` line per value, the value
    /// in Go syntax (`"text"`, `0.1`, `1e+06`, `true`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parameters: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub renderer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parser: String,
    pub details: ModelDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_info: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub requires: String,
}

/// Ollama's `api.ModelDetails`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ModelDetails {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Option<Vec<String>>,
    pub parameter_size: String,
    pub quantization_level: String,
}

/// Renders a Modelfile that rebuilds the shown model `FROM` itself: the
/// `# FROM <name>` hint Ollama writes into `modelfile`, else its first `FROM`,
/// else `details.parent_model`.
pub fn render(show: &ShowResponse) -> String {
    let from = show
        .modelfile
        .lines()
        .find_map(|l| l.strip_prefix("# FROM ").map(str::trim))
        .map(str::to_owned)
        .or_else(|| {
            lex(&show.modelfile)
                .instructions
                .into_iter()
                .find(|i| i.keyword == Keyword::From)
                .map(|i| i.value)
        })
        .unwrap_or_else(|| show.details.parent_model.clone());
    render_from(show, &from)
}

/// Renders a Modelfile for `show` with the given `FROM`.
pub fn render_from(show: &ShowResponse, from: &str) -> String {
    let shown = lex(&show.modelfile).instructions;
    let from_modelfile = |k: Keyword| -> Vec<String> {
        shown
            .iter()
            .filter(|i| i.keyword == k)
            .map(|i| i.value.clone())
            .collect()
    };
    let mut out = String::new();
    line(&mut out, "FROM", from);
    if !show.requires.is_empty() {
        line(&mut out, "REQUIRES", &show.requires);
    }
    if !show.template.is_empty() {
        line(&mut out, "TEMPLATE", &show.template);
    }
    if !show.system.is_empty() {
        line(&mut out, "SYSTEM", &show.system);
    }
    let renderer = non_empty(&show.renderer).or_else(|| from_modelfile(Keyword::Renderer).pop());
    let parser = non_empty(&show.parser).or_else(|| from_modelfile(Keyword::Parser).pop());
    for (kw, v) in [("RENDERER", renderer), ("PARSER", parser)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            line(&mut out, kw, &v);
        }
    }
    render_parameters(&mut out, &show.parameters);
    // LICENSE: the separate licenses if the modelfile lists them faithfully,
    // else the joined text as one.
    let licenses = from_modelfile(Keyword::License);
    let licenses = if !licenses.is_empty() && licenses.join("\n") == show.license {
        licenses
    } else if show.license.is_empty() {
        Vec::new()
    } else {
        vec![show.license.clone()]
    };
    for l in &licenses {
        line(&mut out, "LICENSE", l);
    }
    for m in &show.messages {
        let role = m.role.to_ascii_lowercase();
        if ["system", "user", "assistant"].contains(&role.as_str()) {
            out.push_str(&format!("MESSAGE {role} {}\n", quote(&m.content)));
        } else {
            out.push_str(&format!("# MESSAGE with role {role:?} left out: Modelfiles allow only system, user and assistant\n"));
        }
    }
    out
}

/// Prints instructions back as Modelfile text, one per line in their order,
/// each value quoted as [`render_from`] does (comments are not kept).
pub fn print(parsed: &crate::Parsed) -> String {
    let mut out = String::new();
    for i in &parsed.instructions {
        out.push_str(i.keyword.as_str());
        if let Some(name) = &i.name {
            out.push(' ');
            out.push_str(name);
        }
        out.push(' ');
        out.push_str(&quote(&i.value));
        out.push('\n');
    }
    out
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn line(out: &mut String, keyword: &str, value: &str) {
    out.push_str(keyword);
    out.push(' ');
    out.push_str(&quote(value));
    out.push('\n');
}

fn render_parameters(out: &mut String, text: &str) {
    let mut values: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        let Some((name, rest)) = l.trim_start().split_once([' ', '\t']) else {
            continue;
        };
        values.push((name.to_owned(), rest.trim().to_owned()));
    }
    for info in PARAMETERS.iter().filter(|p| !p.deprecated) {
        for (_, literal) in values.iter().filter(|(n, _)| n == info.name) {
            match typed_literal(info.ty, literal) {
                Some(v) => out.push_str(&format!("PARAMETER {} {}\n", info.name, quote(&v))),
                None => out.push_str(&format!(
                    "# PARAMETER {} {literal} (left out: not a valid {:?})\n",
                    info.name, info.ty
                )),
            }
        }
    }
    for (name, literal) in &values {
        if !PARAMETERS.iter().any(|p| p.name == name && !p.deprecated) {
            out.push_str(&format!(
                "# PARAMETER {name} {literal} (left out: Ollama no longer accepts it)\n"
            ));
        }
    }
}

/// A Go `%#v` literal from `/api/show` as the Modelfile text for `ty`.
fn typed_literal(ty: ParamType, literal: &str) -> Option<String> {
    match ty {
        ParamType::StringList => go_unquote(literal),
        ParamType::Bool => match literal {
            "true" | "false" => Some(literal.to_owned()),
            _ => None,
        },
        ParamType::Int => {
            if let Ok(i) = literal.parse::<i64>() {
                return Some(i.to_string());
            }
            let f = literal.parse::<f64>().ok()?;
            (f.fract() == 0.0 && f.abs() < 9.2e18).then(|| format!("{}", f as i64))
        }
        ParamType::Float => {
            let f = parse_go_float32(literal).filter(|f| f.is_finite())?;
            Some(format!("{f}"))
        }
    }
}

/// Go's `strconv.Unquote` for a double-quoted literal.
fn go_unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let push = |bytes: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(&mut bytes, c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '"' | '\'' => Some(e),
            _ => None,
        };
        if let Some(c) = simple {
            push(&mut bytes, c);
            continue;
        }
        let digits = |n: usize, radix: u32, chars: &mut std::str::Chars<'_>| -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v.checked_mul(radix)? + chars.next()?.to_digit(radix)?;
            }
            Some(v)
        };
        match e {
            'x' => bytes.push(u8::try_from(digits(2, 16, &mut chars)?).ok()?),
            'u' => push(&mut bytes, char::from_u32(digits(4, 16, &mut chars)?)?),
            'U' => push(&mut bytes, char::from_u32(digits(8, 16, &mut chars)?)?),
            '0'..='7' => {
                let rest = digits(2, 8, &mut chars)?;
                bytes.push(u8::try_from(e.to_digit(8)? * 64 + rest).ok()?);
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The value as Modelfile text that Ollama reads back unchanged: bare if it
/// can be, else in `"` or `"""`. Characters Ollama drops are left out.
pub(crate) fn quote(value: &str) -> String {
    let v: String = value
        .chars()
        .filter(|&c| is_print(c) || matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    if !v.is_empty()
        && !v.contains(['\r', '\n'])
        && !v.starts_with(blank)
        && !v.ends_with(blank)
        && !v.starts_with('"')
    {
        return v;
    }
    let single = format!("\"{v}\"");
    if !single.starts_with("\"\"\"") && !closes_early(&v, "\"") {
        return single;
    }
    if !closes_early(&v, "\"\"\"") {
        return format!("\"\"\"{v}\"\"\"");
    }
    // Not representable (a line ending in `"""` and another in `"`): end the
    // offending lines with a blank is not enough (blanks are trimmed), so the
    // closest text is the triple-quoted one; Ollama would cut it short.
    format!("\"\"\"{v}\"\"\"")
}

/// Some line break inside `v` comes right after text ending in `quote`
/// (blanks before the break ignored), which would close the quote there.
fn closes_early(v: &str, quote: &str) -> bool {
    let mut end_of_text = 0;
    for (i, c) in v.char_indices() {
        if c == '\r' || c == '\n' {
            if v.get(..end_of_text).is_some_and(|t| t.ends_with(quote)) {
                return true;
            }
        } else if c != ' ' && c != '\t' {
            end_of_text = i + c.len_utf8();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_reads_back() {
        assert_eq!(quote("llama3"), "llama3");
        assert_eq!(quote(" padded "), "\" padded \"");
        assert_eq!(quote("a\nb"), "\"a\nb\"");
        assert_eq!(quote("say \"hi\"\nnow"), "\"\"\"say \"hi\"\nnow\"\"\"");
        assert_eq!(quote("\"quoted\""), "\"\"quoted\"\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("\""), "\"\"\"\"\"\"\"");
    }

    #[test]
    fn go_literals_unquote() {
        let literal = r#""User:\n\"x\"\t\u00e9\x41\101""#;
        assert_eq!(
            go_unquote(literal).as_deref(),
            Some("User:\n\"x\"\t\u{e9}AA")
        );
        assert_eq!(
            typed_literal(ParamType::Int, "1e+06").as_deref(),
            Some("1000000")
        );
        assert_eq!(
            typed_literal(ParamType::Float, "0.1").as_deref(),
            Some("0.1")
        );
        assert_eq!(
            typed_literal(ParamType::Float, "1e-07").as_deref(),
            Some("0.0000001")
        );
    }
}
