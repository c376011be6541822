//! Splits a query into tokens with byte spans.
//!
//! The lexer, not the parser, decides what `:` means, because the same
//! character is a field separator in `user.name:root` but part of the value in
//! `source.ip:2001:db8::1`. After `field:` (and inside `field:( … )`) words are
//! read as values, where colons are ordinary characters.

use crate::ast::RangeOp;
use crate::error::QueryError;

/// One piece of a bare word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    Char(char),
    /// Unescaped `?`.
    AnyChar,
    /// Unescaped `*`.
    AnySeq,
}

/// A bare (unquoted) word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text with escapes resolved; wildcards appear as `*` and `?`.
    pub text: String,
    pub pieces: Vec<Piece>,
    /// Whether any unescaped `*` or `?` occurs.
    pub wild: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// `-` directly before a term.
    Minus,
    /// `name:`; the span covers the colon.
    Field(String),
    Cmp(RangeOp),
    Word(Word),
    Phrase(String),
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::And => "'AND'".into(),
            Tok::Or => "'OR'".into(),
            Tok::Not => "'NOT'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Field(f) => format!("field '{f}:'"),
            Tok::Cmp(op) => format!("'{}'", op.as_str()),
            Tok::Word(w) => format!("'{}'", w.text),
            Tok::Phrase(p) => format!("\"{p}\""),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

/// Characters a backslash makes literal inside a bare word. Elsewhere a
/// backslash is kept as typed, so Windows paths (`C:\Windows`) need no doubling.
fn escapable(c: char) -> bool {
    matches!(
        c,
        '*' | '?' | '\\' | '"' | '(' | ')' | ':' | '<' | '>' | '-' | '|'
    ) || c.is_whitespace()
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '|')
}

/// Field names: `[A-Za-z0-9_@.-]+`.
pub(crate) fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-')
}

/// The filter's tokens, and the byte offset of the first unquoted,
/// unescaped `|` where the pipes begin, if there is one.
pub(crate) fn lex(src: &str) -> Result<(Vec<Token>, Option<usize>), QueryError> {
    Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        value_next: false,
        parens: 0,
        group_at: None,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
    /// The next token is the value of a `field:` or a comparison.
    value_next: bool,
    parens: usize,
    /// Paren depth outside the open `field:( … )` group, if inside one.
    group_at: Option<usize>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            start,
            end: self.pos,
        });
    }

    fn run(mut self) -> Result<(Vec<Token>, Option<usize>), QueryError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c == '|' {
                return Ok((self.out, Some(start)));
            }
            if c.is_whitespace() {
                self.pos += c.len_utf8();
                // A value must follow its `:` or comparison directly; the
                // parser reports the gap, since it knows what was expected.
                self.value_next = false;
                continue;
            }
            let value_next = std::mem::take(&mut self.value_next);
            match c {
                '(' => {
                    self.pos += 1;
                    if value_next {
                        self.group_at = Some(self.parens);
                    }
                    self.parens += 1;
                    self.push(Tok::LParen, start);
                }
                ')' => {
                    self.pos += 1;
                    self.parens = self.parens.saturating_sub(1);
                    if self.group_at == Some(self.parens) {
                        self.group_at = None;
                    }
                    self.push(Tok::RParen, start);
                }
                '"' => {
                    let text = self.phrase()?;
                    self.push(Tok::Phrase(text), start);
                }
                '>' | '<' => {
                    self.pos += 1;
                    let eq = self.peek() == Some('=');
                    if eq {
                        self.pos += 1;
                    }
                    let op = match (c, eq) {
                        ('>', false) => RangeOp::Gt,
                        ('>', true) => RangeOp::Ge,
                        ('<', false) => RangeOp::Lt,
                        _ => RangeOp::Le,
                    };
                    self.push(Tok::Cmp(op), start);
                    self.value_next = true;
                }
                '-' if !value_next => {
                    self.pos += 1;
                    self.push(Tok::Minus, start);
                }
                _ => self.word(value_next, start)?,
            }
        }
        Ok((self.out, None))
    }

    fn phrase(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(QueryError::new(
                    open,
                    "this quote is never closed: expected a closing '\"'",
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(text),
                '\\' if matches!(self.peek(), Some('"' | '\\')) => {
                    let e = self.peek().unwrap_or('\\');
                    self.pos += 1;
                    text.push(e);
                }
                c => text.push(c),
            }
        }
    }

    fn word(&mut self, value_next: bool, start: usize) -> Result<(), QueryError> {
        let in_value = value_next || self.group_at.is_some();
        let mut w = Word {
            text: String::new(),
            pieces: Vec::new(),
            wild: false,
        };
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if ends_word(c) {
                break;
            }
            if c == ':' && (!in_value || (!value_next && !self.address_ahead(start))) {
                return self.field(w, escaped, start);
            }
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.peek() {
                    Some(e) if escapable(e) => {
                        self.pos += e.len_utf8();
                        escaped = true;
                        w.text.push(e);
                        w.pieces.push(Piece::Char(e));
                    }
                    _ => {
                        w.text.push('\\');
                        w.pieces.push(Piece::Char('\\'));
                    }
                },
                '*' => {
                    w.wild = true;
                    w.text.push('*');
                    w.pieces.push(Piece::AnySeq);
                }
                '?' => {
                    w.wild = true;
                    w.text.push('?');
                    w.pieces.push(Piece::AnyChar);
                }
                c => {
                    w.text.push(c);
                    w.pieces.push(Piece::Char(c));
                }
            }
        }
        let tok = match w.text.as_str() {
            _ if value_next || escaped => Tok::Word(w),
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "NOT" => Tok::Not,
            _ => Tok::Word(w),
        };
        self.push(tok, start);
        Ok(())
    }

    /// Whether the word starting at `start` is an IP address or network, the
    /// one kind of value inside `field:( … )` whose colons are not a field
    /// separator; any other `name:` there is reported as a misplaced field
    /// rather than silently searched for as text.
    fn address_ahead(&self, start: usize) -> bool {
        let rest = &self.src[start..];
        let word = &rest[..rest.find(ends_word).unwrap_or(rest.len())];
        let addr = word.split_once('/').map_or(word, |(a, _)| a);
        addr.parse::<std::net::IpAddr>().is_ok()
    }

    /// Called with the text before an unescaped `:` outside a value.
    fn field(&mut self, w: Word, escaped: bool, start: usize) -> Result<(), QueryError> {
        let name = &self.src[start..self.pos];
        if name.is_empty() {
            return Err(QueryError::new(
                self.pos,
                "expected a field name before ':' (quote the text or write \\: to search for a colon)",
            ));
        }
        if escaped || w.wild || !name.chars().all(is_field_char) {
            let (off, bad) = name
                .char_indices()
                .find(|&(_, c)| !is_field_char(c))
                .unwrap_or((0, ':'));
            return Err(QueryError::new(
                start + off,
                format!(
                    "invalid character '{bad}' in field name '{name}': expected letters, digits, \
                     '_', '@', '.' or '-' (quote the text or write \\: to search for a colon)"
                ),
            ));
        }
        let name = name.to_string();
        self.pos += 1;
        self.push(Tok::Field(name), start);
        self.value_next = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s).unwrap().0.into_iter().map(|t| t.tok).collect()
    }

    fn word(s: &str) -> Tok {
        let pieces = s
            .chars()
            .map(|c| match c {
                '*' => Piece::AnySeq,
                '?' => Piece::AnyChar,
                c => Piece::Char(c),
            })
            .collect();
        Tok::Word(Word {
            text: s.into(),
            pieces,
            wild: s.contains(['*', '?']),
        })
    }

    #[test]
    fn tokens_and_spans() {
        let t = lex("user.name:root AND -(x)").unwrap().0;
        assert_eq!(t[0].tok, Tok::Field("user.name".into()));
        assert_eq!((t[0].start, t[0].end), (0, 10));
        assert_eq!(t[1].tok, word("root"));
        assert_eq!((t[1].start, t[1].end), (10, 14));
        assert_eq!(t[2].tok, Tok::And);
        assert_eq!(t[3].tok, Tok::Minus);
        assert_eq!(t[4].tok, Tok::LParen);
        assert_eq!(t[6].tok, Tok::RParen);
    }

    #[test]
    fn colons_in_values() {
        assert_eq!(
            kinds("source.ip:2001:db8::1"),
            vec![Tok::Field("source.ip".into()), word("2001:db8::1")]
        );
        assert_eq!(
            kinds("ip:(::1 OR fe80::1/64)"),
            vec![
                Tok::Field("ip".into()),
                Tok::LParen,
                word("::1"),
                Tok::Or,
                word("fe80::1/64"),
                Tok::RParen
            ]
        );
        // After the group closes, colons separate fields again.
        assert_eq!(kinds("a:(b) c:d")[4], Tok::Field("c".into()));
    }

    #[test]
    fn keywords_only_uppercase_and_standalone() {
        assert_eq!(
            kinds("and or not"),
            vec![word("and"), word("or"), word("not")]
        );
        assert_eq!(kinds("NOTE"), vec![word("NOTE")]);
        assert_eq!(kinds("f:AND"), vec![Tok::Field("f".into()), word("AND")]);
        assert_eq!(kinds("\"AND\""), vec![Tok::Phrase("AND".into())]);
    }

    #[test]
    fn escapes() {
        let literal_star = Tok::Word(Word {
            text: "a*b".into(),
            pieces: vec![Piece::Char('a'), Piece::Char('*'), Piece::Char('b')],
            wild: false,
        });
        assert_eq!(kinds(r"a\*b"), vec![literal_star]);
        assert_eq!(
            kinds(r"p:C:\Windows"),
            vec![Tok::Field("p".into()), word(r"C:\Windows")]
        );
        assert_eq!(
            kinds(r#""a \"b\" \\ \n""#),
            vec![Tok::Phrase(r#"a "b" \ \n"#.into())]
        );
        assert_eq!(kinds(r"a\ b"), vec![word("a b")]);
    }

    #[test]
    fn pipe_ends_the_filter() {
        let (t, pipe) = lex("a:b|c").unwrap();
        assert_eq!(pipe, Some(3));
        assert_eq!(t.len(), 2);
        let (t, pipe) = lex(r#""x|y" z\|w | stats"#).unwrap();
        assert_eq!(pipe, Some(11));
        assert_eq!(t[0].tok, Tok::Phrase("x|y".into()));
        assert_eq!(t[1].tok, word("z|w"));
    }

    #[test]
    fn comparisons() {
        assert_eq!(
            kinds("n:>=5 n:<-1"),
            vec![
                Tok::Field("n".into()),
                Tok::Cmp(RangeOp::Ge),
                word("5"),
                Tok::Field("n".into()),
                Tok::Cmp(RangeOp::Lt),
                word("-1")
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(lex("\"abc").unwrap_err().position, 0);
        assert_eq!(lex("x \"abc\\\"").unwrap_err().position, 2);
        assert_eq!(lex(":x").unwrap_err().position, 0);
        let e = lex("a/b:c").unwrap_err();
        assert_eq!(e.position, 1);
        assert!(e.message.contains("invalid character '/'"), "{}", e.message);
    }
}
