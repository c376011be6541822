//! The Sigma condition grammar: tokenizer, parser and name resolution.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | primary
//! primary := "(" expr ")" | ("1" | "any" | "all") "of" (pattern | "them") | identifier
//! ```
//!
//! Precedence, least to most binding: `or`, `and`, `not`, `x of`, brackets.
//! Keywords are case-insensitive. A condition is first parsed into an
//! [`Expr`] over names, then [`Expr::resolve`]d against the detection's
//! search identifiers into a [`Cond`] over their indices: `1 of sel*`
//! becomes an OR, `all of sel*` an AND, and `them` means every identifier not
//! starting with `_`. Aggregations (`| count() > 5`) are the deprecated
//! Sigma 1 syntax and are refused.

use std::fmt;

/// A condition error, with the 0-based byte position it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Byte offset in the condition text.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ConditionError {}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, ConditionError> {
    Err(ConditionError {
        position,
        message: message.into(),
    })
}

/// How many of the selected search identifiers must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `1 of` / `any of`: at least one.
    One,
    /// `all of`: every one.
    All,
}

/// Which search identifiers an `x of` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `them`: all identifiers not starting with `_`.
    Them,
    /// A name pattern where `*` matches any run of characters.
    Pattern(String),
}

/// A parsed condition over search-identifier names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A search identifier, with its position in the condition text.
    Ident(String, usize),
    /// `x of target`, with its position.
    Of(Quantifier, Target, usize),
    /// Negation.
    Not(Box<Expr>),
    /// Conjunction (two or more operands).
    And(Vec<Expr>),
    /// Disjunction (two or more operands).
    Or(Vec<Expr>),
}

/// A resolved condition over selection indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// The selection at this index in the detection.
    Sel(usize),
    /// Negation.
    Not(Box<Cond>),
    /// All operands hold (true when empty).
    And(Vec<Cond>),
    /// One operand holds (false when empty).
    Or(Vec<Cond>),
}

impl Cond {
    /// Evaluates the condition; `sel(i)` says whether selection `i` matches.
    pub fn eval(&self, sel: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::Not(c) => !c.eval(sel),
            Cond::And(cs) => cs.iter().all(|c| c.eval(sel)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(sel)),
        }
    }

    /// Every selection index the condition refers to.
    pub fn referenced(&self, out: &mut Vec<usize>) {
        match self {
            Cond::Sel(i) => out.push(*i),
            Cond::Not(c) => c.referenced(out),
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| c.referenced(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Pipe,
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ConditionError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            out.push((Tok::LParen, i));
            chars.next();
        } else if c == ')' {
            out.push((Tok::RParen, i));
            chars.next();
        } else if c == '|' {
            // The rest is a (refused) aggregation; the parser reports it.
            out.push((Tok::Pipe, i));
            break;
        } else if is_word_char(c) {
            let mut w = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if !is_word_char(c) {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push((Tok::Word(w), i));
        } else {
            return err(i, format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?')
}

fn is_kw(w: &str, kw: &str) -> bool {
    w.eq_ignore_ascii_case(kw)
}

fn is_reserved(w: &str) -> bool {
    ["and", "or", "not", "of", "them"]
        .iter()
        .any(|k| is_kw(w, k))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |t| t.1)
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if is_kw(w, kw))
    }

    fn expr(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.and()?];
        while self.peek_kw("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.not()?];
        while self.peek_kw("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        let at = self.here();
        match self.toks.get(self.pos).cloned() {
            None => err(at, "unexpected end of condition"),
            Some((Tok::LParen, _)) => {
                self.pos += 1;
                let e = self.expr()?;
                match self.peek() {
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => err(self.here(), "expected ')'"),
                }
            }
            Some((Tok::RParen, _)) => err(at, "unexpected ')'"),
            Some((Tok::Pipe, _)) => err(
                at,
                "aggregation expressions ('| count() ...') are not supported (deprecated; use correlation rules)",
            ),
            Some((Tok::Word(w), _)) => {
                let next_is_of = matches!(self.toks.get(self.pos + 1), Some((Tok::Word(n), _)) if is_kw(n, "of"));
                if next_is_of {
                    let q = if w == "1" || is_kw(&w, "any") {
                        Quantifier::One
                    } else if is_kw(&w, "all") {
                        Quantifier::All
                    } else {
                        return err(at, format!("unsupported quantifier {w:?} (expected '1' or 'all')"));
                    };
                    self.pos += 2;
                    let tat = self.here();
                    match self.toks.get(self.pos).cloned() {
                        Some((Tok::Word(t), _)) if is_kw(&t, "them") => {
                            self.pos += 1;
                            Ok(Expr::Of(q, Target::Them, at))
                        }
                        Some((Tok::Word(t), _)) if !is_reserved(&t) => {
                            self.pos += 1;
                            Ok(Expr::Of(q, Target::Pattern(t), at))
                        }
                        _ => err(tat, "expected a search-identifier pattern or 'them' after 'of'"),
                    }
                } else if is_reserved(&w) {
                    err(at, format!("unexpected keyword {w:?}"))
                } else {
                    self.pos += 1;
                    Ok(Expr::Ident(w, at))
                }
            }
        }
    }
}

/// Parses condition text into an [`Expr`].
pub fn parse(text: &str) -> Result<Expr, ConditionError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        len: text.len(),
    };
    let e = p.expr()?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some((Tok::Pipe, at)) => err(
            *at,
            "aggregation expressions ('| count() ...') are not supported (deprecated; use correlation rules)",
        ),
        Some((_, at)) => err(*at, "expected 'and', 'or' or end of condition"),
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Expr {
    /// Resolves names against the detection's search identifiers (in order).
    ///
    /// An unknown identifier, or a pattern or `them` that selects nothing,
    /// is an error naming its position.
    pub fn resolve(&self, names: &[String]) -> Result<Cond, ConditionError> {
        match self {
            Expr::Ident(name, at) => match names.iter().position(|n| n == name) {
                Some(i) => Ok(Cond::Sel(i)),
                None => err(*at, format!("unknown search identifier {name:?}")),
            },
            Expr::Of(q, target, at) => {
                let idx: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| match target {
                        Target::Them => !n.starts_with('_'),
                        Target::Pattern(p) => wildcard_match(p, n),
                    })
                    .map(|(i, _)| i)
                    .collect();
                if idx.is_empty() {
                    let what = match target {
                        Target::Them => "'them'".to_string(),
                        Target::Pattern(p) => format!("pattern {p:?}"),
                    };
                    return err(*at, format!("{what} matches no search identifier"));
                }
                let items = idx.into_iter().map(Cond::Sel).collect();
                Ok(match q {
                    Quantifier::One => Cond::Or(items),
                    Quantifier::All => Cond::And(items),
                })
            }
            Expr::Not(e) => Ok(Cond::Not(Box::new(e.resolve(names)?))),
            Expr::And(es) => Ok(Cond::And(
                es.iter()
                    .map(|e| e.resolve(names))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Or(es) => Ok(Cond::Or(
                es.iter()
                    .map(|e| e.resolve(names))
                    .collect::<Result<_, _>>()?,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|s| s.to_string()).collect()
    }

    /// Evaluates `cond` with the named selections that are true.
    fn eval(cond: &str, all: &[&str], truthy: &[&str]) -> bool {
        let ns = names(all);
        let c = parse(cond).unwrap().resolve(&ns).unwrap();
        c.eval(&mut |i| truthy.contains(&ns[i].as_str()))
    }

    #[test]
    fn spec_examples_parse() {
        for c in [
            "keywords1 or keywords2",
            "1 of them",
            "all of them",
            "all of selection*",
            "1 of selection* and keywords",
            "1 of selection* and not 1 of filter*",
            "keywords and not filters",
            "selection1 and (keywords1 or keywords2)",
        ] {
            parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
        }
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let e = parse("a or b and c").unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::Ident("a".into(), 0),
                Expr::And(vec![
                    Expr::Ident("b".into(), 5),
                    Expr::Ident("c".into(), 11)
                ]),
            ])
        );
        assert!(eval("a or b and c", &["a", "b", "c"], &["a"]));
        assert!(!eval("(a or b) and c", &["a", "b", "c"], &["a"]));
    }

    #[test]
    fn not_binds_tighter_than_and() {
        // not a and b == (not a) and b
        assert!(eval("not a and b", &["a", "b"], &["b"]));
        assert!(!eval("not a and b", &["a", "b"], &[]));
        assert!(eval("not (a and b)", &["a", "b"], &[]));
        assert!(eval("not not a", &["a"], &["a"]));
    }

    #[test]
    fn of_binds_tighter_than_not() {
        let all = ["selection", "filter_a", "filter_b"];
        assert!(eval("selection and not 1 of filter*", &all, &["selection"]));
        assert!(!eval(
            "selection and not 1 of filter*",
            &all,
            &["selection", "filter_b"]
        ));
        assert!(eval(
            "selection and not all of filter*",
            &all,
            &["selection", "filter_b"]
        ));
        assert!(!eval(
            "selection and not all of filter*",
            &all,
            &["selection", "filter_a", "filter_b"]
        ));
    }

    #[test]
    fn them_excludes_underscore_names() {
        let all = ["sel1", "sel2", "_helper"];
        let ns = names(&all);
        let c = parse("all of them").unwrap().resolve(&ns).unwrap();
        assert_eq!(c, Cond::And(vec![Cond::Sel(0), Cond::Sel(1)]));
        assert!(eval("all of them", &all, &["sel1", "sel2"]));
        assert!(eval("1 of them", &all, &["sel2"]));
        assert!(!eval("1 of them", &all, &["_helper"]));
    }

    #[test]
    fn patterns_resolve_with_wildcards_anywhere() {
        let ns = names(&["selection_img", "selection_cli", "filter_main_x", "sel"]);
        let c = parse("1 of selection_*").unwrap().resolve(&ns).unwrap();
        assert_eq!(c, Cond::Or(vec![Cond::Sel(0), Cond::Sel(1)]));
        let c = parse("all of *_main_*").unwrap().resolve(&ns).unwrap();
        assert_eq!(c, Cond::And(vec![Cond::Sel(2)]));
        assert!(wildcard_match("s*l*", "selection"));
        assert!(!wildcard_match("x*", "selection"));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert!(eval("a AND NOT b", &["a", "b"], &["a"]));
        assert!(eval("ALL OF sel*", &["sel1"], &["sel1"]));
    }

    #[test]
    fn errors_name_positions() {
        let e = parse("selection and").unwrap_err();
        assert_eq!(e.position, 13);
        let e = parse("(a or b").unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (7, "expected ')'"));
        let e = parse("a b").unwrap_err();
        assert_eq!(e.position, 2);
        let e = parse("selection | count() > 5").unwrap_err();
        assert_eq!(e.position, 10);
        assert!(e.message.contains("aggregation"));
        let e = parse("2 of sel*").unwrap_err();
        assert_eq!(e.position, 0);
        let e = parse("a and $b").unwrap_err();
        assert_eq!(e.position, 6);
        let e = parse("selection and not filtr")
            .unwrap()
            .resolve(&names(&["selection", "filter"]))
            .unwrap_err();
        assert_eq!(e.position, 18);
        assert!(e.message.contains("unknown search identifier"));
        let e = parse("a and 1 of filter*")
            .unwrap()
            .resolve(&names(&["a"]))
            .unwrap_err();
        assert_eq!(e.position, 6);
    }
}
