//! Neutralizing text before a person reads it.
//!
//! Log lines come from attackers. Before any stored text is printed to a
//! terminal or returned as display text, control characters (including CR/LF
//! that could forge extra lines, and ESC that starts ANSI sequences) are
//! replaced by visible escapes such as `\n`, `\r`, `\x1b`.

use std::borrow::Cow;

/// Returns `s` with every control character replaced by a visible escape.
///
/// ```
/// use vigil_event::sanitize::display;
/// assert_eq!(display("ok\r\nFAKE\x1b[31m"), "ok\\r\\nFAKE\\x1b[31m");
/// assert_eq!(display("plain"), "plain");
/// ```
pub fn display(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters that must not reach a terminal raw: C0/C1 controls, DEL, and
/// the Unicode line/paragraph separators and bidi overrides that can disguise text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(display("a\u{7f}b\u{85}c\u{202e}"), "a\\x7fb\\x85c\\u{202e}");
        assert_eq!(display("tab\there"), "tab\\there");
        assert_eq!(display("ünïcödé"), "ünïcödé");
    }
}
