//! Reading a Modelfile into instructions, rule for rule as Ollama's
//! `parser.ParseFile` does (a character-by-character state machine), while
//! keeping positions and going on after an error so the editor sees them all.
//!
//! Ollama's rules, as its parser applies them:
//! - an instruction keyword (case-insensitive) is followed by a blank or tab;
//!   `PARAMETER` takes a name (`[A-Za-z0-9_]*`, case-sensitive) and `MESSAGE`
//!   a role (`system`, `user`, `assistant`) after exactly one blank;
//! - `#` starts a comment only where an instruction could start;
//! - a value runs to the end of its line; if it starts with `"` or `"""` it
//!   runs on to the first line whose trimmed text ends with the same quote;
//!   there are no escapes; blanks around the value are trimmed;
//! - characters Go's `strconv.IsPrint` rejects are dropped (blanks, tabs and,
//!   inside quotes, line breaks are kept).

mod errors;

use serde::{Deserialize, Serialize};

use crate::diagnostics::{Diagnostic, Stage};
use crate::text::{Cursor, Position, Span, is_blank, is_newline, is_print};

/// The instructions Ollama knows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    From,
    Parameter,
    Template,
    System,
    Adapter,
    Draft,
    License,
    Message,
    Renderer,
    Parser,
    Requires,
}

impl Keyword {
    /// All keywords, in the order Ollama's error message lists them.
    pub const ALL: [Keyword; 11] = [
        Keyword::From,
        Keyword::License,
        Keyword::Template,
        Keyword::System,
        Keyword::Adapter,
        Keyword::Draft,
        Keyword::Renderer,
        Keyword::Parser,
        Keyword::Parameter,
        Keyword::Message,
        Keyword::Requires,
    ];

    /// The keyword as written in a Modelfile, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Parameter => "PARAMETER",
            Keyword::Template => "TEMPLATE",
            Keyword::System => "SYSTEM",
            Keyword::Adapter => "ADAPTER",
            Keyword::Draft => "DRAFT",
            Keyword::License => "LICENSE",
            Keyword::Message => "MESSAGE",
            Keyword::Renderer => "RENDERER",
            Keyword::Parser => "PARSER",
            Keyword::Requires => "REQUIRES",
        }
    }

    /// Case-insensitive lookup, as Ollama's `isValidCommand`.
    pub fn parse(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

/// How a value was quoted in the source.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Quote {
    None,
    Single,
    Triple,
}

/// One instruction as Ollama reads it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Instruction {
    pub keyword: Keyword,
    /// The parameter name (`PARAMETER`) or the role (`MESSAGE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value after unquoting, exactly as Ollama keeps it.
    pub value: String,
    pub quote: Quote,
    /// From the keyword to the end of the value.
    pub span: Span,
    pub keyword_span: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_span: Option<Span>,
    /// The value as written (quotes included, surrounding blanks excluded);
    /// empty at the place a value was expected if there is none.
    pub value_span: Span,
}

pub(crate) const INVALID_COMMAND: &str = "command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"";
pub(crate) const INVALID_ROLE: &str =
    "message role must be one of \"system\", \"user\", or \"assistant\"";
const ROLES: [&str; 3] = ["system", "user", "assistant"];

pub(crate) struct Lexed {
    pub instructions: Vec<Instruction>,
    pub diagnostics: Vec<Diagnostic>,
    /// Characters dropped as non-printable inside values, by instruction index.
    pub dropped: Vec<(usize, Vec<Span>)>,
    pub steps: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Nil,
    Name,
    Parameter,
    Role,
    Value,
    Comment,
    /// Not Ollama's: after an error, skip to the end of the line.
    Skip,
}

struct Lexer<'a> {
    text: &'a str,
    state: State,
    cur: Cursor,
    /// Ollama's line counter: 1 + every CR and every LF read so far.
    ollama_line: u64,
    out: Lexed,
    word: String,
    word_start: Position,
    word_end: Position,
    keyword: Option<Keyword>,
    keyword_span: Span,
    keyword_offset: usize,
    name: Option<(String, Span)>,
    value: String,
    /// Byte range in `value` of the text between leading and trailing blanks.
    value_first: Option<usize>,
    value_last_end: usize,
    value_src: Option<Span>,
    value_expected_at: Position,
    dropped: Vec<Span>,
}

/// Reads `text` as Ollama would. Errors get a diagnostic and the reader goes
/// on at the next line; an unclosed quote is reported and, once, the reader
/// goes on at the next line that looks like an instruction.
pub(crate) fn lex(text: &str) -> Lexed {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let first = Lexer::new(text).run(0);
    let Some(resume) = first.1 else {
        return first.0;
    };
    let mut out = first.0;
    let (second, _) = Lexer::new(text).run(resume);
    let base = out.instructions.len();
    out.instructions.extend(second.instructions);
    out.diagnostics.extend(second.diagnostics);
    out.dropped
        .extend(second.dropped.into_iter().map(|(i, s)| (i + base, s)));
    out.steps += second.steps;
    out
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            state: State::Nil,
            cur: Cursor::new(Position::START),
            ollama_line: 1,
            out: Lexed {
                instructions: Vec::new(),
                diagnostics: Vec::new(),
                dropped: Vec::new(),
                steps: 0,
            },
            word: String::new(),
            word_start: Position::START,
            word_end: Position::START,
            keyword: None,
            keyword_span: Span::at(Position::START),
            keyword_offset: 0,
            name: None,
            value: String::new(),
            value_first: None,
            value_last_end: 0,
            value_src: None,
            value_expected_at: Position::START,
            dropped: Vec::new(),
        }
    }

    /// Runs over the text, ignoring everything before byte `from` (only
    /// counting lines there). Returns the result and, for an unclosed quote
    /// in a run that started at 0, where a second run should start.
    fn run(mut self, from: usize) -> (Lexed, Option<usize>) {
        for (offset, c) in self.text.char_indices() {
            self.out.steps += 1;
            let at = self.cur.pos;
            self.cur.advance(c);
            if is_newline(c) {
                self.ollama_line += 1;
            }
            if offset < from {
                continue;
            }
            self.step(offset, c, at);
        }
        self.finish(from)
    }

    fn step(&mut self, offset: usize, c: char, at: Position) {
        let after = self.cur.pos;
        match self.state {
            State::Nil => {
                if c == '#' {
                    self.state = State::Comment;
                } else if !is_blank(c) && !is_newline(c) {
                    self.state = State::Name;
                    self.word.clear();
                    if is_print(c) {
                        self.word.push(c);
                    }
                    self.word_start = at;
                    self.word_end = after;
                    self.keyword_offset = offset;
                }
            }
            State::Name => {
                if c.is_ascii_alphabetic() {
                    self.word.push(c);
                    self.word_end = after;
                } else if is_blank(c) {
                    self.keyword_span = Span::new(self.word_start, self.word_end);
                    self.name = None;
                    match Keyword::parse(&self.word) {
                        None => {
                            let d = self.unknown_instruction();
                            self.fail(d, c);
                        }
                        Some(k) => {
                            self.keyword = Some(k);
                            self.word.clear();
                            self.word_start = after;
                            self.word_end = after;
                            self.state = match k {
                                Keyword::Parameter => State::Parameter,
                                Keyword::Message => State::Role,
                                _ => {
                                    self.start_value(after);
                                    State::Value
                                }
                            };
                        }
                    }
                } else {
                    self.keyword_span = Span::new(self.word_start, self.word_end);
                    let d = if is_newline(c) {
                        self.keyword_without_value()
                    } else {
                        self.bad_character_in_keyword(c, at, after)
                    };
                    self.fail(d, c);
                }
            }
            State::Parameter | State::Role => self.step_name(c, at, after),
            State::Value => {
                if is_newline(c) {
                    if self.quote_closed() {
                        self.complete();
                        self.state = State::Nil;
                    } else {
                        self.value.push(c);
                    }
                } else if is_blank(c) {
                    self.value.push(c);
                } else if is_print(c) {
                    if self.value_first.is_none() {
                        self.value_first = Some(self.value.len());
                    }
                    self.value.push(c);
                    self.value_last_end = self.value.len();
                    let start = self.value_src.map_or(at, |s| s.start);
                    self.value_src = Some(Span::new(start, after));
                } else {
                    self.dropped.push(Span::new(at, after));
                }
            }
            State::Comment | State::Skip => {
                if is_newline(c) {
                    self.state = State::Nil;
                }
            }
        }
    }

    /// A parameter name or a message role.
    fn step_name(&mut self, c: char, at: Position, after: Position) {
        let is_role = self.state == State::Role;
        let fits = if is_role {
            c.is_ascii_alphabetic()
        } else {
            c.is_ascii_alphanumeric() || c == '_'
        };
        if fits {
            self.word.push(c);
            self.word_end = after;
            return;
        }
        let span = Span::new(self.word_start, self.word_end);
        if is_blank(c) {
            if is_role && !ROLES.contains(&self.word.as_str()) {
                let d = self.invalid_role(span);
                self.fail(d, c);
                return;
            }
            self.name = Some((std::mem::take(&mut self.word), span));
            self.start_value(after);
            self.state = State::Value;
            return;
        }
        let ollama = format!("unexpected EOF: {}", self.word);
        let d = if is_newline(c) {
            let what = if is_role {
                "a role and a text"
            } else {
                "a name and a value"
            };
            let message = if self.word.is_empty() {
                format!("{} needs {what}", self.keyword_text())
            } else if is_role {
                format!("MESSAGE {} needs a text after the role", self.word)
            } else {
                format!("PARAMETER {} needs a value", self.word)
            };
            Diagnostic::error(
                Stage::Syntax,
                "missing-value",
                Span::new(self.keyword_span.start, at),
                message,
            )
        } else if is_role {
            Diagnostic::error(
                Stage::Syntax,
                "invalid-role",
                Span::new(self.word_start, after),
                format!(
                    "unexpected `{c}` in the MESSAGE role; expected one of system, user, assistant followed by a blank"
                ),
            )
        } else {
            self.bad_parameter_name(c, at)
        };
        self.fail(d.ollama(ollama), c);
    }

    fn keyword_text(&self) -> &'static str {
        self.keyword.map_or("the instruction", Keyword::as_str)
    }

    fn start_value(&mut self, at: Position) {
        self.value.clear();
        self.value_first = None;
        self.value_last_end = 0;
        self.value_src = None;
        self.value_expected_at = at;
        self.dropped.clear();
    }

    fn trimmed(&self) -> &str {
        match self.value_first {
            Some(first) => self.value.get(first..self.value_last_end).unwrap_or(""),
            None => "",
        }
    }

    /// Ollama's `unquote` succeeds on the trimmed value.
    fn quote_closed(&self) -> bool {
        unquote(self.trimmed()).is_some()
    }

    fn complete(&mut self) {
        let Some((value, quote)) = unquote(self.trimmed()).map(|(v, q)| (v.to_owned(), q)) else {
            return;
        };
        let value_span = self
            .value_src
            .unwrap_or_else(|| Span::at(self.value_expected_at));
        let Some(keyword) = self.keyword else {
            return;
        };
        let (name, name_span) = match self.name.take() {
            Some((n, s)) => (Some(n), Some(s)),
            None => (None, None),
        };
        if !self.dropped.is_empty() {
            self.out.dropped.push((
                self.out.instructions.len(),
                std::mem::take(&mut self.dropped),
            ));
        }
        self.out.instructions.push(Instruction {
            keyword,
            name,
            value,
            quote,
            span: Span::new(self.keyword_span.start, value_span.end),
            keyword_span: self.keyword_span,
            name_span,
            value_span,
        });
    }

    /// Records an error and skips the rest of the line (or goes straight to
    /// the next instruction if the error was at a line break).
    fn fail(&mut self, d: Diagnostic, at: char) {
        self.out.diagnostics.push(d);
        self.keyword = None;
        self.state = if is_newline(at) {
            State::Nil
        } else {
            State::Skip
        };
    }

    fn finish(mut self, from: usize) -> (Lexed, Option<usize>) {
        let end = self.cur.pos;
        let mut resume = None;
        match self.state {
            State::Nil | State::Comment | State::Skip => {}
            State::Value => {
                if self.quote_closed() {
                    self.complete();
                } else {
                    let open = self.value_src.map_or(self.value_expected_at, |s| s.start);
                    let quote = if self.trimmed().starts_with("\"\"\"") {
                        "\"\"\""
                    } else {
                        "\""
                    };
                    self.out.diagnostics.push(
                        Diagnostic::error(
                            Stage::Syntax,
                            "unclosed-quote",
                            Span::new(open, end),
                            format!(
                                "the {quote} opened at line {}, column {} is never closed; a quoted value ends only at a line that ends with {quote}",
                                open.line, open.column
                            ),
                        )
                        .ollama("unexpected EOF"),
                    );
                    if from == 0 {
                        resume = next_instruction_line(self.text, self.keyword_offset);
                    }
                }
            }
            State::Name | State::Parameter | State::Role => {
                let span = Span::new(self.keyword_span.start.min(self.word_start), end);
                let message = match (self.state, Keyword::parse(&self.word)) {
                    (State::Name, Some(k)) => format!("{} needs a value", k.as_str()),
                    (State::Name, None) => format!("unknown instruction `{}`", self.word),
                    (State::Parameter, _) => format!("PARAMETER {} needs a value", self.word),
                    _ => format!("MESSAGE {} needs a text after the role", self.word),
                };
                self.out.diagnostics.push(
                    Diagnostic::error(Stage::Syntax, "missing-value", span, message)
                        .ollama("unexpected EOF"),
                );
            }
        }
        (self.out, resume)
    }
}

/// Ollama's `unquote`: a value starting with `"""` must end with `"""` (and
/// be at least six characters), one starting with `"` must end with `"`.
/// Returns the inner text and the quote kind, or `None` if not closed.
pub(crate) fn unquote(s: &str) -> Option<(&str, Quote)> {
    if let Some(rest) = s.strip_prefix("\"\"\"") {
        return (s.len() >= 6)
            .then(|| rest.strip_suffix("\"\"\""))
            .flatten()
            .map(|inner| (inner, Quote::Triple));
    }
    if let Some(rest) = s.strip_prefix('"') {
        return rest.strip_suffix('"').map(|inner| (inner, Quote::Single));
    }
    Some((s, Quote::None))
}

/// After an unclosed quote: the byte offset of the first line after the one
/// at `from` that starts (after blanks) with a keyword and a blank.
fn next_instruction_line(text: &str, from: usize) -> Option<usize> {
    let mut offset = from;
    let rest = text.get(from..)?;
    let mut lines = rest.split_inclusive(['\r', '\n']);
    offset += lines.next()?.len();
    for line in lines {
        let body = line.trim_start_matches([' ', '\t']);
        let word_len = body.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (word, after) = body.split_at(word_len);
        if Keyword::parse(word).is_some() && after.starts_with([' ', '\t']) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}
