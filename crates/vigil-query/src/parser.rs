//! Recursive-descent parser from tokens to an [`Expr`] tree.
//!
//! Grammar (precedence NOT > AND > OR; adjacent terms are ANDed):
//!
//! ```text
//! query   = [ or ]
//! or      = and { "OR" and }
//! and     = unary { [ "AND" ] unary }
//! unary   = ( "NOT" | "-" ) unary | primary
//! primary = "(" or ")" | FIELD value | WORD | PHRASE
//! value   = "(" or ")"          -- inside, bare words and phrases are values of FIELD
//!         | CMP ( WORD | PHRASE ) | WORD | PHRASE
//! ```

use std::net::IpAddr;

use crate::ast::{Cidr, Expr, Predicate, Query, RangeValue, Term, TextPattern};
use crate::error::QueryError;
use crate::glob::{Glob, GlobToken};
use crate::lexer::{lex, Piece, Tok, Token, Word};
use crate::{MAX_DEPTH, MAX_QUERY_LEN, MAX_TERMS};

/// Parses a filter query; see the crate docs for the syntax.
///
/// Pipes (`| stats …`) are refused here, where only a filter makes sense
/// (`vigil tail`, detection rules); [`crate::parse_search`] accepts them.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    let (query, pipe) = parse_filter(input)?;
    if let Some(at) = pipe {
        return Err(QueryError::new(
            at,
            "expected AND, OR or a term, found '|': pipes such as '| stats count()' work only \
             in search (write \\| to search for a '|')",
        ));
    }
    Ok(query)
}

/// Parses the filter part of `input`, which ends at the first unquoted,
/// unescaped `|`; returns that `|`'s byte offset too, if there is one.
pub(crate) fn parse_filter(input: &str) -> Result<(Query, Option<usize>), QueryError> {
    if input.len() > MAX_QUERY_LEN {
        let mut at = MAX_QUERY_LEN;
        while !input.is_char_boundary(at) {
            at -= 1;
        }
        return Err(QueryError::new(
            at,
            format!(
                "query is {} bytes long; the limit is {MAX_QUERY_LEN} bytes",
                input.len()
            ),
        ));
    }
    let (tokens, pipe) = lex(input)?;
    let mut p = Parser {
        tokens,
        i: 0,
        end: pipe.unwrap_or(input.len()),
        pipe: pipe.is_some(),
        terms: 0,
    };
    if p.tokens.is_empty() {
        return Ok((Query { root: Expr::All }, pipe));
    }
    let root = p.or(None, 0)?;
    if let Some(t) = p.peek() {
        let msg = match t.tok {
            Tok::RParen => "unexpected ')' without a matching '('".to_string(),
            ref other => format!("expected AND, OR or a term, found {}", other.describe()),
        };
        return Err(QueryError::new(t.start, msg));
    }
    Ok((Query { root }, pipe))
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    /// Where the filter ends: the end of the input or the first `|`.
    end: usize,
    /// Whether a `|` ends the filter (for "found …" in messages).
    pipe: bool,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.i].clone();
        self.i += 1;
        t
    }

    fn starts_term(&self) -> bool {
        matches!(
            self.peek().map(|t| &t.tok),
            Some(
                Tok::LParen
                    | Tok::Not
                    | Tok::Minus
                    | Tok::Field(_)
                    | Tok::Cmp(_)
                    | Tok::Word(_)
                    | Tok::Phrase(_)
            )
        )
    }

    /// Error at the next token (or the end), saying what was expected and
    /// what was found instead.
    fn expected(&self, what: &str) -> QueryError {
        match self.peek() {
            Some(t) => QueryError::new(
                t.start,
                format!("expected {what}, found {}", t.tok.describe()),
            ),
            None => QueryError::new(
                self.end,
                format!(
                    "expected {what}, found {}",
                    if self.pipe {
                        "'|'"
                    } else {
                        "the end of the query"
                    }
                ),
            ),
        }
    }

    fn deeper(&self, depth: usize, at: usize) -> Result<usize, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(QueryError::new(
                at,
                format!("query nests deeper than the limit of {MAX_DEPTH} levels"),
            ));
        }
        Ok(depth + 1)
    }

    fn count_term(&mut self, at: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(QueryError::new(
                at,
                format!("query has more than the limit of {MAX_TERMS} terms"),
            ));
        }
        Ok(())
    }

    /// `field` is set inside `field:( … )`, where bare values belong to it.
    fn or(&mut self, field: Option<&str>, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(field, depth)?];
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Or)) {
            self.bump();
            if !self.starts_term() {
                return Err(self.expected("a term after 'OR'"));
            }
            items.push(self.and(field, depth)?);
        }
        Ok(or_of(items))
    }

    fn and(&mut self, field: Option<&str>, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary(field, depth)?];
        loop {
            if matches!(self.peek().map(|t| &t.tok), Some(Tok::And)) {
                self.bump();
                if !self.starts_term() {
                    return Err(self.expected("a term after 'AND'"));
                }
            } else if !self.starts_term() {
                break;
            }
            items.push(self.unary(field, depth)?);
        }
        Ok(and_of(items))
    }

    fn unary(&mut self, field: Option<&str>, depth: usize) -> Result<Expr, QueryError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("a term"));
        };
        let op = match t.tok {
            Tok::Not => "NOT",
            Tok::Minus => "-",
            _ => return self.primary(field, depth),
        };
        let t = self.bump();
        let depth = self.deeper(depth, t.start)?;
        if !self.starts_term() {
            return Err(self.expected(&format!("a term after '{op}'")));
        }
        Ok(Expr::Not(Box::new(self.unary(field, depth)?)))
    }

    fn primary(&mut self, field: Option<&str>, depth: usize) -> Result<Expr, QueryError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.expected("a term"));
        };
        match t.tok {
            Tok::LParen => {
                self.bump();
                let inner = self.deeper(depth, t.start)?;
                self.group(field, inner, t.start)
            }
            Tok::Field(name) => {
                if let Some(outer) = field {
                    return Err(QueryError::new(
                        t.start,
                        format!(
                            "expected a value for '{outer}' inside '{outer}:( … )', found field \
                             '{name}:' (close the group first, or escape the colon as \\:)"
                        ),
                    ));
                }
                self.bump();
                self.field_value(&name, t.end, depth)
            }
            Tok::Cmp(op) => {
                let Some(name) = field else {
                    return Err(QueryError::new(
                        t.start,
                        format!(
                            "a comparison needs a field before it, e.g. bytes:{}1000",
                            op.as_str()
                        ),
                    ));
                };
                self.bump();
                self.count_term(t.start)?;
                let (start, text) = match self.peek() {
                    Some(Token {
                        tok: Tok::Word(w),
                        start,
                        ..
                    }) if *start == t.end => (*start, w.text.clone()),
                    Some(Token {
                        tok: Tok::Phrase(p),
                        start,
                        ..
                    }) if *start == t.end => (*start, p.clone()),
                    _ => {
                        return Err(QueryError::new(
                            t.end,
                            format!("expected a number or a date right after '{}'", op.as_str()),
                        ))
                    }
                };
                self.bump();
                let value = range_value(&text).ok_or_else(|| {
                    QueryError::new(
                        start,
                        format!(
                            "expected a number or a date after '{}', found '{text}'",
                            op.as_str()
                        ),
                    )
                })?;
                Ok(field_term(name, Predicate::Range { op, value }))
            }
            Tok::Word(w) => {
                self.bump();
                self.count_term(t.start)?;
                match field {
                    Some(name) => Ok(field_term(name, word_predicate(&w, t.start)?)),
                    None if w.pieces == [Piece::AnySeq] => Ok(Expr::All),
                    None => Ok(Expr::Term(Term::FreeText(word_pattern(&w)))),
                }
            }
            Tok::Phrase(text) => {
                self.bump();
                self.count_term(t.start)?;
                match field {
                    Some(name) => Ok(field_term(name, Predicate::Eq(TextPattern::literal(&text)))),
                    None if text.is_empty() => Err(QueryError::new(
                        t.start,
                        "expected text between the quotes (an empty phrase would match everything)",
                    )),
                    None => Ok(Expr::Term(Term::FreeText(TextPattern::literal(&text)))),
                }
            }
            _ => Err(self.expected("a term")),
        }
    }

    /// After `(` has been consumed.
    fn group(
        &mut self,
        field: Option<&str>,
        depth: usize,
        open: usize,
    ) -> Result<Expr, QueryError> {
        if matches!(self.peek().map(|t| &t.tok), Some(Tok::RParen)) {
            return Err(self.expected("a term inside '( … )'"));
        }
        let e = self.or(field, depth)?;
        match self.peek() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => {
                self.bump();
                Ok(e)
            }
            _ => Err(self.expected(&format!("')' to close the '(' at byte {open}"))),
        }
    }

    /// After `name:` (ending at byte `colon_end`) has been consumed.
    fn field_value(
        &mut self,
        name: &str,
        colon_end: usize,
        depth: usize,
    ) -> Result<Expr, QueryError> {
        let missing = || {
            QueryError::new(
                colon_end,
                "expected a value after ':' (a word, a \"quoted phrase\", *, a comparison like >10, \
                 or a group like (a OR b))",
            )
        };
        let Some(t) = self.peek() else {
            return Err(missing());
        };
        if t.start != colon_end {
            return Err(missing());
        }
        match t.tok {
            Tok::LParen => {
                let t = self.bump();
                let inner = self.deeper(depth, t.start)?;
                self.group(Some(name), inner, t.start)
            }
            Tok::Cmp(_) | Tok::Word(_) | Tok::Phrase(_) => self.primary(Some(name), depth),
            _ => Err(missing()),
        }
    }
}

fn field_term(field: &str, pred: Predicate) -> Expr {
    Expr::Term(Term::Field {
        field: field.to_string(),
        pred,
    })
}

fn word_pattern(w: &Word) -> TextPattern {
    if !w.wild {
        return TextPattern::literal(&w.text);
    }
    TextPattern::Wildcard(Glob::new(w.pieces.iter().map(|p| match *p {
        Piece::Char(c) => GlobToken::Literal(c.to_string()),
        Piece::AnyChar => GlobToken::AnyChar,
        Piece::AnySeq => GlobToken::AnySeq,
    })))
}

/// The predicate of `field:word`: exists, wildcard, network or equality.
fn word_predicate(w: &Word, at: usize) -> Result<Predicate, QueryError> {
    if w.pieces == [Piece::AnySeq] {
        return Ok(Predicate::Exists);
    }
    if !w.wild {
        if let Some(c) = cidr(&w.text, at)? {
            return Ok(Predicate::Cidr(c));
        }
    }
    Ok(Predicate::Eq(word_pattern(w)))
}

/// `Ok(None)` when the text is not shaped like `ip/prefix` (so `/api/v1`
/// stays a plain value); an error when it is but the prefix is impossible.
fn cidr(text: &str, at: usize) -> Result<Option<Cidr>, QueryError> {
    let Some((addr, prefix)) = text.split_once('/') else {
        return Ok(None);
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(Some(Cidr { addr, prefix: p })),
        _ => Err(QueryError::new(
            at + text.len() - prefix.len(),
            format!(
                "expected a prefix length of at most {max} for an IPv{} network, found {prefix}",
                if max == 32 { 4 } else { 6 }
            ),
        )),
    }
}

fn range_value(text: &str) -> Option<RangeValue> {
    crate::ast::parse_number(text)
        .map(RangeValue::Number)
        .or_else(|| crate::time::parse_absolute(text).map(RangeValue::Time))
}

/// ANDs items, flattening nested ANDs and dropping match-alls.
fn and_of(items: Vec<Expr>) -> Expr {
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        match e {
            Expr::And(inner) => out.extend(inner),
            Expr::All => {}
            e => out.push(e),
        }
    }
    match out.len() {
        0 => Expr::All,
        1 => out.pop().unwrap_or(Expr::All),
        _ => Expr::And(out),
    }
}

/// ORs items, flattening nested ORs; a match-all absorbs the rest.
fn or_of(items: Vec<Expr>) -> Expr {
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        match e {
            Expr::Or(inner) => out.extend(inner),
            Expr::All => return Expr::All,
            e => out.push(e),
        }
    }
    match out.len() {
        1 => out.pop().unwrap_or(Expr::All),
        _ => Expr::Or(out),
    }
}
