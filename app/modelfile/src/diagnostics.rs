//! What the parser reports: errors and warnings with their place, Ollama's own
//! text where Ollama refuses, and one-click fixes the editor can apply.

use serde::{Deserialize, Serialize};

use crate::text::{LineIndex, Span};

/// How bad a finding is. Any `Error` means the Modelfile must not be saved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Who would object: Ollama's parser (`ollama create` stops while reading the
/// file), Ollama's client building the request, the Ollama server, or Corral
/// itself (a rule Ollama does not have, such as "no local files").
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Syntax,
    Request,
    Server,
    Corral,
}

/// One finding, placed in the editor's coordinates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub stage: Stage,
    /// Stable identifier of the rule, e.g. `comment-in-value`, `unknown-parameter`.
    pub code: String,
    /// Where; `span.start` is the line and column to show.
    pub span: Span,
    /// What is wrong and what was expected, in our words.
    pub message: String,
    /// Ollama's exact error text where Ollama refuses (with its own line
    /// numbering, in which CR and LF each count as a line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        stage: Stage,
        code: &str,
        span: Span,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            stage,
            code: code.to_owned(),
            span,
            message,
            ollama_message: None,
            fix: None,
        }
    }

    pub(crate) fn error(stage: Stage, code: &str, span: Span, message: String) -> Diagnostic {
        Diagnostic::new(Severity::Error, stage, code, span, message)
    }

    pub(crate) fn warning(code: &str, span: Span, message: String) -> Diagnostic {
        Diagnostic::new(Severity::Warning, Stage::Corral, code, span, message)
    }

    pub(crate) fn ollama(mut self, text: impl Into<String>) -> Diagnostic {
        self.ollama_message = Some(text.into());
        self
    }

    pub(crate) fn with_fix(mut self, fix: Option<Fix>) -> Diagnostic {
        self.fix = fix;
        self
    }

    /// 1-based line where the finding starts.
    pub fn line(&self) -> u32 {
        self.span.start.line
    }

    /// 1-based column (in characters) where the finding starts.
    pub fn column(&self) -> u32 {
        self.span.start.column
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A change the editor can apply in one click.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Fix {
    /// What the button says, e.g. "Move the comment to its own line above".
    pub label: String,
    /// Non-overlapping replacements, each against the original text.
    pub edits: Vec<Edit>,
}

/// Replace the text in `span` with `replacement` (an empty span inserts).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

impl Fix {
    pub(crate) fn single(label: impl Into<String>, span: Span, replacement: String) -> Fix {
        Fix {
            label: label.into(),
            edits: vec![Edit { span, replacement }],
        }
    }
}

/// Applies `fix` to `text` (the text the diagnostics were computed on) and
/// returns the new text. Edits are applied from the last to the first so their
/// positions stay valid; positions past a line's end are clamped to it.
pub fn apply_fix(text: &str, fix: &Fix) -> String {
    let index = LineIndex::new(text);
    let mut ranges: Vec<(usize, usize, &str)> = fix
        .edits
        .iter()
        .map(|e| {
            let start = index.offset(e.span.start);
            let end = index.offset(e.span.end).max(start);
            (start, end, e.replacement.as_str())
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = text.to_owned();
    let mut limit = out.len();
    for (start, end, replacement) in ranges {
        let end = end.min(limit);
        if start > end || !out.is_char_boundary(start) || !out.is_char_boundary(end) {
            continue;
        }
        out.replace_range(start..end, replacement);
        limit = start;
    }
    out
}
