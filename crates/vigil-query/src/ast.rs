//! The parsed form of a query: a tree of [`Expr`] whose leaves are [`Term`]s.
//!
//! Every node is a public enum or a struct with accessors so that a planner
//! can walk the tree and pull out `field = value` terms, prefixes and ranges
//! for an index without re-parsing text. Values are lowercased once here, at
//! parse time, because matching runs once per stored event.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::glob::Glob;

/// A parsed query; see the crate docs for the syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The expression tree.
    pub root: Expr,
}

/// A boolean combination of terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every child matches (`a AND b`, `a b`). Never empty, never directly nested.
    And(Vec<Expr>),
    /// At least one child matches (`a OR b`). Never empty, never directly nested.
    Or(Vec<Expr>),
    /// The child does not match (`NOT a`, `-a`).
    Not(Box<Expr>),
    /// A single condition.
    Term(Term),
    /// Matches every event (`*`, or the empty query).
    All,
}

/// One condition on an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A condition on one field: `source.ip:10.0.0.0/8`.
    Field {
        /// The dotted field path, as written (`source.ip`).
        field: String,
        /// What the field's value must satisfy.
        pred: Predicate,
    },
    /// Text that must occur inside some value of the event (`"Failed password"`).
    FreeText(TextPattern),
}

/// What a field's value must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// The whole value equals the pattern, ignoring case (`user.name:root`, `user.name:adm*`).
    Eq(TextPattern),
    /// The value compares with a number or time (`bytes:>1000`).
    Range {
        /// The comparison.
        op: RangeOp,
        /// The bound.
        value: RangeValue,
    },
    /// The value is an IP address inside the network (`source.ip:10.0.0.0/8`).
    Cidr(Cidr),
    /// The field is present and not null (`field:*`).
    Exists,
}

/// A comparison operator of a range term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl RangeOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::Gt => ">",
            RangeOp::Ge => ">=",
            RangeOp::Lt => "<",
            RangeOp::Le => "<=",
        }
    }

    /// Whether `ordering` (value compared with the bound) satisfies the operator.
    pub fn accepts(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        matches!(
            (self, ordering),
            (RangeOp::Gt, Greater)
                | (RangeOp::Ge, Greater | Equal)
                | (RangeOp::Lt, Less)
                | (RangeOp::Le, Less | Equal)
        )
    }
}

/// The bound of a range term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeValue {
    /// A finite number; compared with numeric values and numeric strings.
    Number(f64),
    /// An instant; compared with values holding an RFC 3339 time or a date.
    Time(DateTime<Utc>),
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`). Host bits are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address as written.
    pub addr: IpAddr,
    /// The prefix length (at most 32 for IPv4, 128 for IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) count as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (b >> shift)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Text to compare against, already lowercased.
#[derive(Debug, Clone, PartialEq)]
pub enum TextPattern {
    /// Literal text (bare word without wildcards, or a quoted phrase).
    Literal(Literal),
    /// A pattern holding `*` or `?`.
    Wildcard(Glob),
}

impl TextPattern {
    /// A literal pattern (lowercased here).
    pub fn literal(text: &str) -> Self {
        TextPattern::Literal(Literal::new(text))
    }

    /// The literal text, if this is not a wildcard pattern.
    pub fn as_literal(&self) -> Option<&str> {
        match self {
            TextPattern::Literal(l) => Some(l.text()),
            TextPattern::Wildcard(_) => None,
        }
    }
}

/// A literal query value with the forms it is also compared in, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    text: String,
    number: Option<Number>,
    ip: Option<IpAddr>,
}

/// A numeric reading of a literal: integers stay exact beyond 2^53.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Literal {
    /// A literal for `text`, lowercased.
    pub fn new(text: &str) -> Self {
        let text = fold_case(text);
        let number = parse_number(&text).map(|f| match text.parse::<i64>() {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Float(f),
        });
        let ip = text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        Literal { text, number, ip }
    }

    /// The lowercased text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value as a number, when it is one (`22`, `-1.5`), so that it also
    /// matches fields storing that number.
    pub fn number(&self) -> Option<f64> {
        self.number.map(|n| match n {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        })
    }

    pub(crate) fn number_exact(&self) -> Option<Number> {
        self.number
    }

    /// The value as an IP address, when it is one, so that differently
    /// spelled IPv6 addresses (`2001:db8::1`, `2001:DB8:0::1`) compare equal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

/// Lowercases character by character. `str::to_lowercase` would be
/// context-sensitive (a final `Σ` becomes `ς`), which a character-wise
/// comparison against stored text could then never reproduce.
pub(crate) fn fold_case(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Parses a finite decimal number. `str::parse::<f64>` alone would also
/// accept `inf`, `NaN` and `infinity`, which are words here, not numbers.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let mut digits = false;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => digits = true,
            b'+' | b'-' | b'.' | b'e' | b'E' => {}
            _ => return None,
        }
    }
    if !digits {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

impl Query {
    /// Whether this query matches every event (`*` or the empty query),
    /// so a caller can skip evaluation entirely.
    pub fn is_match_all(&self) -> bool {
        self.root == Expr::All
    }
}

/// Writes a value so that it parses back to the same pattern.
fn write_value(f: &mut fmt::Formatter<'_>, p: &TextPattern) -> fmt::Result {
    match p {
        TextPattern::Wildcard(g) => write!(f, "{g}"),
        TextPattern::Literal(l) => {
            f.write_str("\"")?;
            for c in l.text().chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::FreeText(p) => write_value(f, p),
            Term::Field { field, pred } => {
                write!(f, "{field}:")?;
                match pred {
                    Predicate::Eq(p) => write_value(f, p),
                    Predicate::Exists => f.write_str("*"),
                    Predicate::Cidr(c) => write!(f, "{c}"),
                    Predicate::Range { op, value } => {
                        f.write_str(op.as_str())?;
                        match value {
                            RangeValue::Number(n) => write!(f, "{n}"),
                            RangeValue::Time(t) => f.write_str(&vigil_event::format_time(*t)),
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Display for Expr {
    /// Writes the expression in fully parenthesized query syntax, which
    /// parses back to the same tree (handy for `--explain` and logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
            f.write_str("(")?;
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{e}")?;
            }
            f.write_str(")")
        }
        match self {
            Expr::All => f.write_str("*"),
            Expr::Term(t) => write!(f, "{t}"),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::And(items) => join(f, items, " AND "),
            Expr::Or(items) => join(f, items, " OR "),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c = Cidr {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(c.contains("10.255.1.2".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all = Cidr {
            addr: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let v6 = Cidr {
            addr: "2001:db8::".parse().unwrap(),
            prefix: 32,
        };
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let host = Cidr {
            addr: "2001:db8::1".parse().unwrap(),
            prefix: 128,
        };
        assert!(host.contains("2001:db8::1".parse().unwrap()));
        assert!(!host.contains("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_number("22"), Some(22.0));
        assert_eq!(parse_number("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("-"), None);
        assert_eq!(parse_number("1e999"), None);
    }

    #[test]
    fn literal_forms() {
        let l = Literal::new("ROOT");
        assert_eq!(l.text(), "root");
        assert_eq!(l.number(), None);
        assert_eq!(Literal::new("22").number(), Some(22.0));
        assert!(Literal::new("2001:DB8::1").ip().is_some());
    }
}
