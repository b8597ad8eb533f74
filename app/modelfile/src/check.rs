//! Checks past the syntax: what Ollama's client refuses while building the
//! `/api/create` request (unknown or mistyped parameters, bad `REQUIRES`),
//! what its server refuses (an invalid model name), what Corral refuses (local
//! files), and the traps Ollama accepts silently (warnings) — each with a fix
//! where one is clear.

use std::collections::HashMap;

use crate::diagnostics::{Diagnostic, Edit, Fix, Stage};
use crate::lex::{Instruction, Keyword, Quote};
use crate::names::{Source, classify, is_valid_model_name, requires_version};
use crate::params::{PARAMETERS, ParamType, REMOVED, parameter, type_value};
use crate::suggest::closest;
use crate::text::{LineIndex, Position, Span};

pub(crate) struct Checker<'a> {
    text: &'a str,
    index: LineIndex<'a>,
    newline: &'static str,
    pub out: Vec<Diagnostic>,
    pub steps: u64,
}

impl<'a> Checker<'a> {
    pub fn new(text: &'a str) -> Checker<'a> {
        Checker {
            text,
            index: LineIndex::new(text),
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
            out: Vec::new(),
            steps: 0,
        }
    }

    pub fn check(&mut self, instructions: &[Instruction], dropped: &[(usize, Vec<Span>)]) {
        let mut seen: HashMap<(Keyword, Option<&str>), u32> = HashMap::new();
        let mut from_blobs: Vec<&str> = Vec::new();
        for inst in instructions {
            self.steps += inst.value.len() as u64 + 1;
            match inst.keyword {
                Keyword::From => self.from(inst, &mut from_blobs),
                Keyword::Adapter | Keyword::Draft => self.file(inst, &from_blobs),
                Keyword::Parameter => self.parameter(inst),
                Keyword::Requires => self.requires(inst),
                Keyword::System
                | Keyword::Template
                | Keyword::License
                | Keyword::Message
                | Keyword::Renderer
                | Keyword::Parser => self.silent_comment(inst),
            }
            self.quote_runs_on(inst);
            let repeatable = match inst.keyword {
                Keyword::License | Keyword::Message | Keyword::Draft => true,
                Keyword::From => !matches!(classify(&inst.value), Source::Model),
                Keyword::Parameter => inst
                    .name
                    .as_deref()
                    .and_then(parameter)
                    .is_none_or(|p| p.ty == ParamType::StringList || p.deprecated),
                _ => false,
            };
            if !repeatable {
                let key = (inst.keyword, inst.name.as_deref());
                if let Some(line) = seen.insert(key, inst.span.start.line) {
                    let what = match &inst.name {
                        Some(n) => format!("PARAMETER {n}"),
                        None => inst.keyword.as_str().to_owned(),
                    };
                    self.out.push(Diagnostic::warning(
                        "overridden",
                        inst.keyword_span,
                        format!("{what} is given again: Ollama keeps only this one and ignores line {line}"),
                    ));
                }
            }
        }
        for (i, spans) in dropped {
            let Some(inst) = instructions.get(*i) else {
                continue;
            };
            self.steps += spans.len() as u64;
            let first = spans.first().map_or(inst.value_span, |s| *s);
            self.out.push(
                Diagnostic::warning(
                    "invisible-character",
                    first,
                    format!(
                        "{} invisible character(s) in this {} value: Ollama drops them (they are not printable)",
                        spans.len(),
                        inst.keyword.as_str()
                    ),
                )
                .with_fix(Some(Fix {
                    label: "Remove the invisible characters".to_owned(),
                    edits: spans.iter().map(|s| Edit { span: *s, replacement: String::new() }).collect(),
                })),
            );
        }
    }

    fn from<'i>(&mut self, inst: &'i Instruction, from_blobs: &mut Vec<&'i str>) {
        let v = inst.value.as_str();
        if v.trim().is_empty() {
            self.out.push(Diagnostic::error(
                Stage::Request,
                "missing-value",
                inst.span,
                "FROM needs a model name, such as llama3.2:3b".to_owned(),
            ));
            return;
        }
        match classify(v) {
            Source::Blob(..) => from_blobs.push(v),
            Source::LocalPath => self.local_file(inst),
            Source::Model => {
                if is_valid_model_name(v) {
                    return;
                }
                let comment = self
                    .comment_fix(inst)
                    .filter(|(before, _)| is_valid_model_name(before));
                let message = match &comment {
                    Some(_) => "the `#` comment is read as part of the model name: Ollama starts a comment only at the start of a line; move it to its own line above".to_owned(),
                    None => format!("`{v}` is not a valid model name: expected [host/][namespace/]model[:tag] with letters, digits, `_`, `-` and `.`"),
                };
                self.out.push(
                    Diagnostic::error(
                        Stage::Server,
                        if comment.is_some() {
                            "comment-in-value"
                        } else {
                            "invalid-model-name"
                        },
                        inst.value_span,
                        message,
                    )
                    .ollama("invalid model name")
                    .with_fix(comment.map(|(_, f)| f)),
                );
            }
        }
    }

    fn file(&mut self, inst: &Instruction, from_blobs: &[&str]) {
        match classify(&inst.value) {
            Source::Blob(..) => {
                if inst.keyword == Keyword::Draft && from_blobs.contains(&inst.value.as_str()) {
                    self.out.push(
                        Diagnostic::error(
                            Stage::Request,
                            "draft-same-as-from",
                            inst.value_span,
                            "DRAFT names the same file as FROM".to_owned(),
                        )
                        .ollama(format!(
                            "DRAFT must not reference the same local path as FROM: {}",
                            inst.value
                        )),
                    );
                }
            }
            _ => self.local_file(inst),
        }
    }

    fn local_file(&mut self, inst: &Instruction) {
        let kw = inst.keyword.as_str();
        let what = if inst.keyword == Keyword::From {
            "a model name (such as llama3.2:3b) or "
        } else {
            ""
        };
        self.out.push(Diagnostic::error(
            Stage::Corral,
            "local-file",
            inst.value_span,
            format!(
                "{kw} `{}` names a file on the author's computer; Corral cannot upload files from the browser. Use {what}a blob already on the Ollama server, by the path ending in blobs/sha256-<64 hex digits> that `ollama show --modelfile` prints",
                inst.value
            ),
        ));
    }

    fn parameter(&mut self, inst: &Instruction) {
        let name = inst.name.as_deref().unwrap_or("");
        let name_span = inst.name_span.unwrap_or(inst.keyword_span);
        let Some(info) = parameter(name) else {
            self.unknown_parameter(inst, name, name_span);
            return;
        };
        if info.deprecated {
            self.out.push(
                Diagnostic::warning(
                    "deprecated-parameter",
                    name_span,
                    format!(
                        "`{name}` is deprecated: Ollama ignores this line (and prints a warning)"
                    ),
                )
                .with_fix(Some(self.delete_lines(inst, "Remove the line"))),
            );
            return;
        }
        if info.ty == ParamType::StringList {
            self.silent_comment(inst);
            return;
        }
        let Err(err) = type_value(info.ty, &inst.value) else {
            return;
        };
        let comment = self
            .comment_fix(inst)
            .filter(|(before, _)| type_value(info.ty, before).is_ok());
        let d = match comment {
            Some((_, fix)) => Diagnostic::error(
                Stage::Request,
                "comment-in-value",
                inst.value_span,
                format!(
                    "`{}` is read as part of the value: Ollama starts a comment only at the start of a line, so the {name} value is `{}`, which is not {}. Move the comment to its own line above",
                    comment_text(&inst.value),
                    inst.value,
                    err.expected
                ),
            )
            .with_fix(Some(fix)),
            None => Diagnostic::error(
                Stage::Request,
                "invalid-value",
                inst.value_span,
                format!("{name} takes {}; `{}` is not one", err.expected, inst.value),
            ),
        };
        self.out.push(d.ollama(err.ollama));
    }

    fn unknown_parameter(&mut self, inst: &Instruction, name: &str, name_span: Span) {
        let ollama = format!("unknown parameter '{name}'");
        let known = PARAMETERS.iter().map(|p| p.name);
        let (message, fix) = if name.is_empty() {
            (
                "two blanks after PARAMETER: Ollama reads an empty parameter name. Leave a single blank".to_owned(),
                Some(Fix::single("Remove the extra blank", Span::new(inst.keyword_span.end, inst.value_span.start), " ".to_owned())),
            )
        } else if let Some(p) = PARAMETERS
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            (
                format!(
                    "parameter names are case-sensitive: write `{}`, not `{name}`",
                    p.name
                ),
                Some(Fix::single(
                    format!("Replace with {}", p.name),
                    name_span,
                    p.name.to_owned(),
                )),
            )
        } else if REMOVED.contains(&name) {
            (
                format!("`{name}` is no longer supported by Ollama; remove the line"),
                Some(self.delete_lines(inst, "Remove the line")),
            )
        } else if let Some(s) = closest(name, known) {
            (
                format!("unknown parameter `{name}`: did you mean {s}?"),
                Some(Fix::single(
                    format!("Replace with {s}"),
                    name_span,
                    s.to_owned(),
                )),
            )
        } else {
            (
                format!(
                    "unknown parameter `{name}`; see the parameter list for the names Ollama knows"
                ),
                None,
            )
        };
        self.out.push(
            Diagnostic::error(Stage::Request, "unknown-parameter", name_span, message)
                .ollama(ollama)
                .with_fix(fix),
        );
    }

    fn requires(&mut self, inst: &Instruction) {
        if requires_version(&inst.value).is_some() {
            return;
        }
        let comment = self
            .comment_fix(inst)
            .filter(|(b, _)| requires_version(b).is_some());
        let message = if comment.is_some() {
            "the `#` comment is read as part of the version: move it to its own line above"
                .to_owned()
        } else {
            format!(
                "REQUIRES takes an Ollama version such as 0.14.0; `{}` is not a semantic version",
                inst.value
            )
        };
        self.out.push(
            Diagnostic::error(Stage::Request, "invalid-version", inst.value_span, message)
                .ollama("requires must be a valid semver (e.g. 0.14.0)")
                .with_fix(comment.map(|(_, f)| f)),
        );
    }

    /// A quoted value whose first line has the quote and more text after
    /// it: the author likely meant the quote to end there, but Ollama ends a
    /// quoted value only where a line ends with the quote.
    fn quote_runs_on(&mut self, inst: &Instruction) {
        let quote = match inst.quote {
            Quote::None => return,
            Quote::Single => "\"",
            Quote::Triple => "\"\"\"",
        };
        let Some((first_line, _)) = inst.value.split_once(['\r', '\n']) else {
            return;
        };
        let Some(at) = first_line.find(quote) else {
            return;
        };
        if first_line
            .get(at + quote.len()..)
            .is_none_or(|rest| rest.trim().is_empty())
        {
            return;
        }
        self.out.push(Diagnostic::warning(
            "quote-runs-on",
            inst.value_span,
            format!(
                "the {quote} in the middle of line {} does not end the value: Ollama ends a quoted value only at a line that ends with {quote}, so it runs on to line {}",
                inst.value_span.start.line, inst.value_span.end.line
            ),
        ));
    }

    /// A trailing `# …` in an unquoted value Ollama accepts: kept silently.
    fn silent_comment(&mut self, inst: &Instruction) {
        let Some((_, fix)) = self.comment_fix(inst) else {
            return;
        };
        let what = match &inst.name {
            Some(n) if inst.keyword == Keyword::Parameter => format!("the {n} value"),
            _ => format!("the {} text", inst.keyword.as_str()),
        };
        self.out.push(
            Diagnostic::warning(
                "comment-in-value",
                inst.value_span,
                format!(
                    "`{}` is kept as part of {what}: Ollama starts a comment only at the start of a line. If it is a comment, move it to its own line above",
                    comment_text(&inst.value)
                ),
            )
            .with_fix(Some(fix)),
        );
    }

    /// For an unquoted one-line value with ` # …` after some text: the text
    /// before the comment, and the fix moving the comment to its own line.
    fn comment_fix(&self, inst: &Instruction) -> Option<(String, Fix)> {
        if inst.quote != Quote::None || inst.value_span.start.line != inst.value_span.end.line {
            return None;
        }
        let (before, comment) = split_comment(&inst.value)?;
        // The value must map onto the source one character per character.
        let src_len = inst
            .value_span
            .end
            .column
            .checked_sub(inst.value_span.start.column)?;
        if src_len as usize != inst.value.chars().count() {
            return None;
        }
        let cut = inst.value_span.start.column + before.chars().count() as u32;
        let line = inst.value_span.start.line;
        let line_start = self.index.offset(Position {
            line: inst.span.start.line,
            column: 1,
        });
        let kw_start = self.index.offset(inst.keyword_span.start);
        let indent = self.text.get(line_start..kw_start).unwrap_or("");
        let fix = Fix {
            label: "Move the comment to its own line above".to_owned(),
            edits: vec![
                Edit {
                    span: Span::at(inst.keyword_span.start),
                    replacement: format!("{comment}{}{indent}", self.newline),
                },
                Edit {
                    span: Span::new(Position { line, column: cut }, inst.value_span.end),
                    replacement: String::new(),
                },
            ],
        };
        Some((before.to_owned(), fix))
    }

    fn delete_lines(&self, inst: &Instruction, label: &str) -> Fix {
        Fix::single(
            label,
            Span::new(
                Position {
                    line: inst.span.start.line,
                    column: 1,
                },
                Position {
                    line: inst.span.end.line.saturating_add(1),
                    column: 1,
                },
            ),
            String::new(),
        )
    }
}

/// Splits `value # comment` at the first blank run followed by `#` that has
/// text before it. Returns (text before, comment from `#`).
pub(crate) fn split_comment(value: &str) -> Option<(&str, &str)> {
    let bytes = value.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'#') && matches!(bytes.get(i - 1), Some(b' ' | b'\t')) {
            let before = value.get(..i)?.trim_end_matches([' ', '\t']);
            if !before.is_empty() {
                return Some((before, value.get(i..)?));
            }
        }
        i += 1;
    }
    None
}

fn comment_text(value: &str) -> String {
    let c = split_comment(value).map_or("", |(_, c)| c);
    if c.chars().count() > 40 {
        format!("{}…", c.chars().take(40).collect::<String>())
    } else {
        c.to_owned()
    }
}
