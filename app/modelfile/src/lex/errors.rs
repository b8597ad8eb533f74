//! The syntax errors the reader reports: Ollama's text (with its own line
//! count) beside ours, what was expected, and a fix where one is clear.

use super::{INVALID_COMMAND, INVALID_ROLE, Keyword, Lexer, ROLES};
use crate::diagnostics::{Diagnostic, Fix, Severity, Stage};
use crate::suggest::closest;
use crate::text::{Position, Span};

impl Lexer<'_> {
    pub(super) fn ollama_at_line(&self, message: &str) -> String {
        format!("(line {}): {message}", self.ollama_line)
    }

    pub(super) fn unknown_instruction(&self) -> Diagnostic {
        let suggestion = closest(&self.word, Keyword::ALL.map(Keyword::as_str));
        let mut message = format!(
            "unknown instruction `{}`; expected one of FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, DRAFT, LICENSE, MESSAGE, RENDERER, PARSER, REQUIRES",
            self.word
        );
        if let Some(s) = suggestion {
            message = format!("unknown instruction `{}`: did you mean {s}?", self.word);
        }
        Diagnostic::error(
            Stage::Syntax,
            "unknown-instruction",
            self.keyword_span,
            message,
        )
        .ollama(self.ollama_at_line(INVALID_COMMAND))
        .with_fix(
            suggestion
                .map(|s| Fix::single(format!("Replace with {s}"), self.keyword_span, s.to_owned())),
        )
    }

    pub(super) fn keyword_without_value(&self) -> Diagnostic {
        let d = match Keyword::parse(&self.word) {
            Some(k) => Diagnostic::error(
                Stage::Syntax,
                "missing-value",
                self.keyword_span,
                format!("{} needs a value after a blank", k.as_str()),
            ),
            None => return self.unknown_instruction(),
        };
        d.ollama(self.ollama_at_line(INVALID_COMMAND))
    }

    pub(super) fn bad_character_in_keyword(
        &self,
        c: char,
        at: Position,
        after: Position,
    ) -> Diagnostic {
        Diagnostic::error(
            Stage::Syntax,
            "invalid-character",
            Span::new(at, after),
            format!(
                "unexpected `{}` after `{}`: an instruction is a keyword (letters only) followed by a blank",
                c.escape_debug(),
                self.word
            ),
        )
        .ollama(self.ollama_at_line(INVALID_COMMAND))
    }

    pub(super) fn invalid_role(&self, span: Span) -> Diagnostic {
        let suggestion = closest(&self.word, ROLES);
        let message = match suggestion {
            Some(s) => format!(
                "message role `{}` is not one of system, user, assistant (roles are lower case): did you mean {s}?",
                self.word
            ),
            None => format!(
                "message role `{}` is not one of system, user, assistant",
                self.word
            ),
        };
        Diagnostic::error(Stage::Syntax, "invalid-role", span, message)
            .ollama(self.ollama_at_line(INVALID_ROLE))
            .with_fix(
                suggestion.map(|s| Fix::single(format!("Replace with {s}"), span, s.to_owned())),
            )
    }

    pub(super) fn bad_parameter_name(&self, c: char, at: Position) -> Diagnostic {
        // The name as the user meant it: up to the next blank on this line.
        let rest: String = self
            .text
            .get(self.keyword_offset..)
            .unwrap_or("")
            .split(['\r', '\n'])
            .next()
            .unwrap_or("")
            .split([' ', '\t'])
            .find(|w| w.contains(c))
            .unwrap_or("")
            .to_owned();
        let word_span = Span::new(
            self.word_start,
            Position {
                line: self.word_start.line,
                column: self
                    .word_start
                    .column
                    .saturating_add(rest.chars().count() as u32),
            },
        );
        let mut message = format!(
            "unexpected `{}` in a parameter name: names have only letters, digits and `_`",
            c.escape_debug()
        );
        let char_span = Span::new(
            at,
            Position {
                line: at.line,
                column: at.column.saturating_add(1),
            },
        );
        if c == '=' || c == ':' {
            message.push_str("; put a blank between the name and the value");
            return Diagnostic::new(
                Severity::Error,
                Stage::Syntax,
                "invalid-character",
                char_span,
                message,
            )
            .with_fix(Some(Fix::single(
                format!("Replace `{c}` with a blank"),
                char_span,
                " ".to_owned(),
            )));
        }
        let suggestion = closest(&rest, crate::params::PARAMETERS.iter().map(|p| p.name));
        if let Some(s) = suggestion {
            message.push_str(&format!("; did you mean {s}?"));
        }
        let span = if rest.is_empty() {
            char_span
        } else {
            word_span
        };
        Diagnostic::new(
            Severity::Error,
            Stage::Syntax,
            "invalid-character",
            span,
            message,
        )
        .with_fix(
            suggestion.map(|s| Fix::single(format!("Replace with {s}"), word_span, s.to_owned())),
        )
    }
}
