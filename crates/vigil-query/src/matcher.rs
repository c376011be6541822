//! Evaluates a parsed query against one event.
//!
//! This runs once per stored event during a scan, so it walks the event's
//! JSON in place (no flattening, no path strings built), stops at the first
//! value that decides the answer, and allocates only when a stored string is
//! non-ASCII and must be lowercased the Unicode way.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{Map, Number as JsonNumber, Value};
use vigil_event::Event;

use crate::ast::{
    fold_case, parse_number, Expr, Literal, Number, Predicate, Query, RangeOp, RangeValue, Term,
    TextPattern,
};
use crate::time::parse_absolute;

impl Query {
    /// Whether `ev` satisfies the query.
    pub fn matches(&self, ev: &Event) -> bool {
        self.root.matches(ev)
    }
}

impl Expr {
    /// Whether `ev` satisfies this expression.
    pub fn matches(&self, ev: &Event) -> bool {
        eval(self, ev.as_map())
    }
}

fn eval(e: &Expr, root: &Map<String, Value>) -> bool {
    match e {
        Expr::All => true,
        Expr::And(items) => items.iter().all(|e| eval(e, root)),
        Expr::Or(items) => items.iter().any(|e| eval(e, root)),
        Expr::Not(e) => !eval(e, root),
        Expr::Term(Term::FreeText(p)) => {
            let numeric = could_be_in_number(p);
            root.values()
                .any(|v| any_leaf(v, &mut |leaf| free_text(leaf, p, numeric)))
        }
        Expr::Term(Term::Field { field, pred }) => match pred {
            Predicate::Exists => at_path(root, field, &mut |v| !v.is_null()),
            pred => at_path(root, field, &mut |v| {
                any_element(v, &mut |leaf| field_pred(leaf, pred))
            }),
        },
    }
}

/// Calls `f` on every value stored at a dotted path, fanning out over arrays
/// of objects (`{"process":[{"pid":1},{"pid":2}]}` has two `process.pid`s)
/// and finding keys that themselves contain dots at any level, as flat
/// shippers write them.
fn at_path<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    f: &mut impl FnMut(&'a Value) -> bool,
) -> bool {
    if let Some(v) = map.get(path) {
        if f(v) {
            return true;
        }
    }
    for (i, _) in path.match_indices('.') {
        if let Some(v) = map.get(&path[..i]) {
            if descend(v, &path[i + 1..], f) {
                return true;
            }
        }
    }
    false
}

fn descend<'a>(v: &'a Value, rest: &str, f: &mut impl FnMut(&'a Value) -> bool) -> bool {
    match v {
        Value::Object(m) => at_path(m, rest, f),
        Value::Array(items) => items.iter().any(|item| descend(item, rest, f)),
        _ => false,
    }
}

/// A value matches if it, or any element of it when it is an array, does.
fn any_element(v: &Value, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| any_element(i, f)),
        v => f(v),
    }
}

fn any_leaf(v: &Value, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Object(m) => m.values().any(|v| any_leaf(v, f)),
        Value::Array(items) => items.iter().any(|v| any_leaf(v, f)),
        v => f(v),
    }
}

fn field_pred(v: &Value, pred: &Predicate) -> bool {
    match pred {
        Predicate::Exists => !v.is_null(),
        Predicate::Eq(TextPattern::Literal(l)) => eq_literal(v, l),
        Predicate::Eq(TextPattern::Wildcard(g)) => with_text(v, |s| g.is_match(s)),
        Predicate::Range { op, value } => in_range(v, *op, value),
        Predicate::Cidr(net) => match v {
            Value::String(s) => s.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(ip)),
            _ => false,
        },
    }
}

fn eq_literal(v: &Value, l: &Literal) -> bool {
    match v {
        Value::String(s) => {
            eq_folded(s, l.text())
                || l.ip()
                    .is_some_and(|ip| s.parse::<IpAddr>().is_ok_and(|s| s.to_canonical() == ip))
        }
        Value::Number(n) => match l.number_exact() {
            Some(Number::Int(i)) => match n.as_i64() {
                Some(x) => x == i,
                None => n.as_f64() == Some(i as f64),
            },
            Some(Number::Float(f)) => n.as_f64() == Some(f),
            None => false,
        },
        Value::Bool(b) => l.text() == if *b { "true" } else { "false" },
        _ => false,
    }
}

fn in_range(v: &Value, op: RangeOp, bound: &RangeValue) -> bool {
    match bound {
        RangeValue::Number(b) => {
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => parse_number(s),
                _ => None,
            };
            x.and_then(|x| x.partial_cmp(b))
                .is_some_and(|o| op.accepts(o))
        }
        RangeValue::Time(t) => match v {
            Value::String(s) => parse_absolute(s).is_some_and(|x| op.accepts(x.cmp(t))),
            _ => false,
        },
    }
}

fn free_text(v: &Value, p: &TextPattern, numeric: bool) -> bool {
    match v {
        Value::String(s) => match p {
            TextPattern::Literal(l) => contains_folded(s, l.text()),
            TextPattern::Wildcard(g) => g.is_match_within(s),
        },
        // Event IDs and ports are often stored as numbers; an analyst typing
        // `4625` expects to find them, so numbers are searched as their text.
        Value::Number(n) if numeric => with_number_text(n, |s| match p {
            TextPattern::Literal(l) => s.contains(l.text()),
            TextPattern::Wildcard(g) => g.is_match_within(s),
        }),
        _ => false,
    }
}

/// Whether the pattern could occur in a number's text, so that numbers are
/// only formatted when they might match.
fn could_be_in_number(p: &TextPattern) -> bool {
    let numeric = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e'))
    };
    match p {
        TextPattern::Literal(l) => numeric(l.text()),
        TextPattern::Wildcard(g) => g.tokens().iter().all(|t| match t {
            crate::glob::GlobToken::Literal(s) => numeric(s),
            _ => true,
        }),
    }
}

/// Runs `f` on the text of a string, number or boolean.
fn with_text(v: &Value, f: impl FnOnce(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => with_number_text(n, f),
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        _ => false,
    }
}

/// Formats a number on the stack: no allocation per event.
fn with_number_text(n: &JsonNumber, f: impl FnOnce(&str) -> bool) -> bool {
    let mut buf = StackStr {
        buf: [0; 64],
        len: 0,
    };
    if write!(buf, "{n}").is_err() {
        return false;
    }
    f(buf.as_str())
}

struct StackStr {
    buf: [u8; 64],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `stored` equals `folded` (already lowercased) ignoring case.
fn eq_folded(stored: &str, folded: &str) -> bool {
    if stored.is_ascii() {
        stored.eq_ignore_ascii_case(folded)
    } else {
        stored
            .chars()
            .flat_map(char::to_lowercase)
            .eq(folded.chars())
    }
}

/// `folded` (already lowercased) occurs inside `stored`, ignoring case.
fn contains_folded(stored: &str, folded: &str) -> bool {
    if stored.is_ascii() {
        // Lowercasing never turns non-ASCII into ASCII, so an ASCII text
        // cannot contain a non-ASCII needle.
        folded.is_ascii() && contains_ascii_ci(stored.as_bytes(), folded.as_bytes())
    } else {
        fold_case(stored).contains(folded)
    }
}

fn contains_ascii_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    if needle.len() > hay.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i].to_ascii_lowercase() == first
            && hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folding_helpers() {
        assert!(eq_folded("ROOT", "root"));
        assert!(!eq_folded("ROOTS", "root"));
        assert!(eq_folded("ÉTÉ", "été"));
        assert!(contains_folded("Failed Password for", "password"));
        assert!(contains_folded("Ünïcode ÉTÉ", "été"));
        assert!(!contains_folded("abc", "é"));
        assert!(contains_ascii_ci(b"abc", b""));
        assert!(!contains_ascii_ci(b"ab", b"abc"));
    }

    #[test]
    fn numbers_format_without_allocating() {
        let n: JsonNumber = serde_json::from_str("-1.5e300").unwrap();
        assert!(with_number_text(&n, |s| s.starts_with("-1.5e")));
        let n: JsonNumber = serde_json::from_str("18446744073709551615").unwrap();
        assert!(with_number_text(&n, |s| s == "18446744073709551615"));
    }
}
