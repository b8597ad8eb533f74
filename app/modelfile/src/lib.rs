//! Corral's Modelfile parser: Ollama's own rules, rule for rule, with
//! positions, every error at once, one-click fixes, translation to Ollama's
//! `/api/create` request and rendering back from `/api/show`.
//!
//! Pure Rust (serde only), no I/O: it runs on the server and in the browser.
//!
//! ```
//! let parsed = modelfile::parse(modelfile::examples::CODE_REVIEW);
//! assert!(!parsed.is_ok());
//! let error = &parsed.errors()[0];
//! assert_eq!((error.line(), error.code.as_str()), (4, "comment-in-value"));
//!
//! let fixed = modelfile::parse(&modelfile::apply_fix(modelfile::examples::CODE_REVIEW, error.fix.as_ref().unwrap()));
//! let request = fixed.create_request("reviewer").unwrap();
//! assert_eq!(request.from, "codellama:13b");
//! ```

// Nothing on the input may panic: no indexing, unwrap or panic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod check;
mod create;
mod diagnostics;
pub mod examples;
mod lex;
mod names;
mod params;
mod render;
mod suggest;
mod text;

use serde::{Deserialize, Serialize};

pub use create::{CreateRequest, Message, Refused};
pub use diagnostics::{Diagnostic, Edit, Fix, Severity, Stage, apply_fix};
pub use lex::{Instruction, Keyword, Quote};
pub use names::is_valid_model_name;
pub use params::{PARAMETERS, ParamType, ParamValue, ParameterInfo, parameter};
pub use render::{ModelDetails, ShowResponse, print, render, render_from};
pub use text::{Position, Span};

/// The result of reading a Modelfile: what Ollama would read, and every
/// finding, errors first by line.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Parsed {
    pub instructions: Vec<Instruction>,
    pub diagnostics: Vec<Diagnostic>,
}

/// How much work a parse did, for tests and benchmarks: one step per
/// character read plus one per character examined by the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
}

/// Reads a Modelfile. Never panics; time linear in the text's length.
pub fn parse(text: &str) -> Parsed {
    parse_with_stats(text).0
}

/// [`parse`], also telling how much work it did.
pub fn parse_with_stats(text: &str) -> (Parsed, Stats) {
    let lexed = lex::lex(text);
    let mut diagnostics = lexed.diagnostics;
    if !lexed
        .instructions
        .iter()
        .any(|i| i.keyword == Keyword::From)
    {
        let start = Position::START;
        diagnostics.push(
            Diagnostic::error(
                Stage::Syntax,
                "missing-from",
                Span::new(start, start),
                "a Modelfile needs a FROM line naming the base model, such as FROM llama3.2:3b"
                    .to_owned(),
            )
            .ollama("no FROM line"),
        );
    }
    let mut checker = check::Checker::new(text);
    checker.check(&lexed.instructions, &lexed.dropped);
    diagnostics.extend(checker.out);
    diagnostics.sort_by_key(|d| (d.severity != Severity::Error, d.span.start));
    let stats = Stats {
        steps: lexed.steps + checker.steps,
    };
    (
        Parsed {
            instructions: lexed.instructions,
            diagnostics,
        },
        stats,
    )
}

/// Reads a Modelfile from bytes as Ollama does: a UTF-16 (LE or BE) or UTF-8
/// byte-order mark picks the encoding, UTF-8 otherwise; invalid sequences
/// become U+FFFD.
pub fn parse_bytes(bytes: &[u8]) -> Parsed {
    parse(&decode(bytes))
}

fn decode(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks(2).map(|c| match (c.first(), c.get(1)) {
            (Some(&a), Some(&b)) if le => u16::from_le_bytes([a, b]),
            (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
            _ => 0xFFFD,
        });
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl Parsed {
    /// No errors (warnings allowed): Ollama accepts it and so does Corral.
    pub fn is_ok(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> Vec<&Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error()).collect()
    }

    pub fn warnings(&self) -> Vec<&Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error()).collect()
    }

    /// Ollama's own parser (`parser.ParseFile`) would accept the text: no
    /// syntax errors, whatever the later stages say.
    pub fn syntax_ok(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.stage == Stage::Syntax)
    }

    /// The `/api/create` request Ollama's client would send for this
    /// Modelfile under the name `model`, or the errors if there are any
    /// (including an invalid `model` name).
    pub fn create_request(&self, model: &str) -> Result<CreateRequest, Refused> {
        let mut errors: Vec<Diagnostic> = self.errors().into_iter().cloned().collect();
        if !is_valid_model_name(model) {
            errors.push(
                Diagnostic::error(
                    Stage::Server,
                    "invalid-model-name",
                    Span::at(Position::START),
                    format!("`{model}` is not a valid model name"),
                )
                .ollama("invalid model name"),
            );
        }
        if !errors.is_empty() {
            return Err(Refused { errors });
        }
        Ok(create::build(model, &self.instructions))
    }
}
