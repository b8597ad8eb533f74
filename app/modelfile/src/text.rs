//! Positions in the editor's terms (1-based lines and character columns,
//! CRLF = one line break), and the character classes Ollama's parser uses.

use serde::{Deserialize, Serialize};

/// A place in the text: 1-based line, 1-based column counted in characters
/// (Unicode scalar values). A CRLF pair, a lone LF and a lone CR each end a line.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// Line 1, column 1.
    pub const START: Position = Position { line: 1, column: 1 };
}

/// A range of text, `end` exclusive.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

impl Span {
    pub fn new(start: Position, end: Position) -> Span {
        Span { start, end }
    }

    /// An empty span at `at` (an insertion point).
    pub fn at(at: Position) -> Span {
        Span { start: at, end: at }
    }
}

/// Tracks the editor position of each character while scanning.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    pub pos: Position,
    /// The previous character was a CR (so a following LF does not start another line).
    after_cr: bool,
}

impl Cursor {
    pub fn new(pos: Position) -> Cursor {
        Cursor {
            pos,
            after_cr: false,
        }
    }

    /// Moves past `c`.
    pub fn advance(&mut self, c: char) {
        match c {
            '\n' if self.after_cr => {
                // Second half of CRLF: the line already ended at the CR.
                self.after_cr = false;
            }
            '\n' | '\r' => {
                self.pos.line = self.pos.line.saturating_add(1);
                self.pos.column = 1;
                self.after_cr = c == '\r';
            }
            _ => {
                self.pos.column = self.pos.column.saturating_add(1);
                self.after_cr = false;
            }
        }
    }
}

/// Byte offsets of each line start, to turn positions back into offsets.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes.get(i) {
                Some(b'\r') => {
                    if bytes.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    starts.push(i + 1);
                }
                Some(b'\n') => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { text, starts }
    }

    /// Byte offset of `pos`, clamped to the end of its line (or of the text).
    pub fn offset(&self, pos: Position) -> usize {
        let line = pos.line.saturating_sub(1) as usize;
        let Some(&start) = self.starts.get(line) else {
            return self.text.len();
        };
        let line_end = self
            .starts
            .get(line + 1)
            .copied()
            .unwrap_or(self.text.len());
        let line_text = self.text.get(start..line_end).unwrap_or("");
        let content_len = line_text.trim_end_matches(['\r', '\n']).len();
        let want = pos.column.saturating_sub(1) as usize;
        line_text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(line_text.len()))
            .nth(want)
            .map_or(start + content_len, |i| start + i.min(content_len))
    }
}

/// Ollama's `isSpace`: blank and tab only.
pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Ollama's `isNewline`: CR or LF, each counted as a line of its own.
pub(crate) fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Ollama drops every other character it reads (outside the
/// blanks and line breaks it handles itself).
///
/// Approximation, documented: Go classifies by its Unicode tables; here every
/// control, format, private-use, separator and noncharacter code point is
/// non-printable, but code points unassigned in Go's Unicode version are
/// treated as printable (Ollama drops them).
pub(crate) fn is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() {
        return false;
    }
    !matches!(u,
        // Space separators (Zs) other than U+0020, line and paragraph separators.
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 | 0x2028 | 0x2029
        // Format characters (Cf).
        | 0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        // Private use (Co).
        | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
        // Noncharacters (Cn).
        | 0xFDD0..=0xFDEF)
        && (u & 0xFFFE) != 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_is_one_line_and_lone_cr_is_a_line() {
        let mut c = Cursor::new(Position::START);
        for ch in "a\r\nb\rc\nd".chars() {
            c.advance(ch);
        }
        assert_eq!(c.pos, Position { line: 4, column: 2 });
    }

    #[test]
    fn line_index_finds_offsets_by_character_columns() {
        let text = "ab\r\n你好x\nend";
        let idx = LineIndex::new(text);
        assert_eq!(idx.offset(Position { line: 2, column: 3 }), 4 + 6);
        assert_eq!(
            idx.offset(Position {
                line: 2,
                column: 99
            }),
            4 + 7
        );
        assert_eq!(idx.offset(Position { line: 9, column: 1 }), text.len());
    }

    #[test]
    fn invisible_characters_are_not_printable() {
        for c in [
            '\u{200B}', '\u{00A0}', '\u{FEFF}', '\u{7}', '\t', '\u{FFFF}',
        ] {
            assert!(!is_print(c), "{c:?}");
        }
        for c in ['a', ' ', '你', '👋', '#', '\u{0301}'] {
            assert!(is_print(c), "{c:?}");
        }
    }
}
