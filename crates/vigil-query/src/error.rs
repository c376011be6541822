//! Parse errors that point at the offending byte of the query.

use std::fmt;

/// Why a query was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Byte offset into the query where the problem was found
    /// (the query's length when something was missing at the end).
    pub position: usize,
    /// What was expected, e.g. `expected a value after ':'`.
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        QueryError {
            position,
            message: message.into(),
        }
    }

    /// The query, a caret under the error position and the message, one per
    /// line, for a terminal or a `<pre>` block:
    ///
    /// ```text
    /// source.ip:
    ///           ^
    /// expected a value after ':'
    /// ```
    ///
    /// Control characters in the query are shown as spaces so that a query
    /// holding newlines or escape sequences can neither break the caret's
    /// alignment nor drive the reader's terminal.
    pub fn render(&self, input: &str) -> String {
        let mut pos = self.position.min(input.len());
        while !input.is_char_boundary(pos) {
            pos -= 1;
        }
        let shown: String = input
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = input[..pos].chars().count();
        let message: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{shown}\n{}^\n{message}", " ".repeat(column))
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.position)
    }
}

impl std::error::Error for QueryError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_aligns_caret_by_character() {
        let e = QueryError::new(7, "expected x");
        assert_eq!(e.render("été:\u{1b}b"), "été: b\n     ^\nexpected x");
        assert_eq!(e.to_string(), "expected x (at byte 7)");
        // Positions past the end or inside a character are clamped.
        assert_eq!(QueryError::new(99, "m").render("ab"), "ab\n  ^\nm");
        assert_eq!(QueryError::new(1, "m").render("é"), "é\n^\nm");
    }
}
