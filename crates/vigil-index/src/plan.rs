//! What a query needs from a block before any of its events can match.
//!
//! [`Need::of`] reads the query's expression tree and keeps only what the
//! block filters can answer: the trigrams of literal text and whole field
//! values (see [`crate::grams`]). Everything else
//! (ranges, networks, `field:*`, negations) needs nothing, so a block is
//! only ever skipped when its filter proves no event in it can match.

use vigil_query::{Expr, GlobToken, Predicate, Term, TextPattern};

use crate::grams::{
    each_address_gram, fold, gram_keys, has_value_key, integral_text, value_key, MAX_VALUE_KEY,
};

/// A condition on a block's trigram filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any block may hold a match.
    Any,
    /// Every one of these filter keys must be present.
    Keys(Vec<u64>),
    /// Every child must hold.
    All(Vec<Need>),
    /// At least one child must hold.
    Either(Vec<Need>),
}

impl Need {
    /// The need of a query expression.
    pub fn of(expr: &Expr) -> Need {
        match expr {
            Expr::All | Expr::Not(_) => Need::Any,
            Expr::And(items) => Need::all(items.iter().map(Need::of).collect()),
            Expr::Or(items) => Need::either(items.iter().map(Need::of).collect()),
            Expr::Term(Term::FreeText(p)) => pattern(p),
            Expr::Term(Term::Field { field, pred }) => match pred {
                Predicate::Eq(TextPattern::Literal(l)) => {
                    let mut spellings = vec![l.text().to_string()];
                    if let Some(ip) = l.ip() {
                        spellings.push(ip.to_string());
                    }
                    if let Some(x) = l.number() {
                        // A number equal to the literal may be spelled differently
                        // (`1e3` and `1000`); only integers have one spelling.
                        match integral_text(x) {
                            Some(int) => spellings.push(int),
                            None => return Need::Any,
                        }
                    }
                    spellings.sort_unstable();
                    spellings.dedup();
                    Need::either(spellings.iter().map(|s| whole(field, s)).collect())
                }
                Predicate::Eq(p) => pattern(p),
                Predicate::Range { .. } | Predicate::Cidr(_) | Predicate::Exists => Need::Any,
            },
        }
    }

    /// Whether this need asks nothing of a block.
    pub fn is_any(&self) -> bool {
        matches!(self, Need::Any)
    }

    /// Whether a block whose filter answers `has` may hold a match.
    pub fn admits(&self, has: &impl Fn(u64) -> bool) -> bool {
        match self {
            Need::Any => true,
            Need::Keys(ks) => ks.iter().all(|k| has(*k)),
            Need::All(items) => items.iter().all(|n| n.admits(has)),
            Need::Either(items) => items.iter().any(|n| n.admits(has)),
        }
    }

    fn all(items: Vec<Need>) -> Need {
        let mut grams = Vec::new();
        let mut rest = Vec::new();
        for n in items {
            match n {
                Need::Any => {}
                Need::Keys(ks) => grams.extend(ks),
                n => rest.push(n),
            }
        }
        grams.sort_unstable();
        grams.dedup();
        if !grams.is_empty() {
            rest.insert(0, Need::Keys(grams));
        }
        match rest.len() {
            0 => Need::Any,
            1 => rest.pop().unwrap_or(Need::Any),
            _ => Need::All(rest),
        }
    }

    fn either(items: Vec<Need>) -> Need {
        if items.is_empty() || items.iter().any(Need::is_any) {
            return Need::Any;
        }
        let mut items = items;
        if items.len() == 1 {
            return items.pop().unwrap_or(Need::Any);
        }
        Need::Either(items)
    }
}

fn text(folded: &str) -> Need {
    let mut gs = gram_keys(folded);
    // A dotted-number run of the literal lies inside a run of the value
    // with at least as many dots, whose five-grams are recorded.
    each_address_gram(folded.as_bytes(), |k| {
        if !gs.contains(&k) {
            gs.push(k);
        }
    });
    if gs.is_empty() {
        Need::Any
    } else {
        Need::Keys(gs)
    }
}

/// `field` holding exactly `folded`: one key, unless the value is too long
/// or its field too unique to have been given one.
fn whole(field: &str, folded: &str) -> Need {
    if folded.len() <= MAX_VALUE_KEY && has_value_key(field) {
        Need::Keys(vec![value_key(field, &fold(folded))])
    } else {
        text(folded)
    }
}

/// A wildcard's literal runs must each occur; the wildcards between them
/// break the windows.
fn pattern(p: &TextPattern) -> Need {
    match p {
        TextPattern::Literal(l) => text(l.text()),
        TextPattern::Wildcard(g) => Need::all(
            g.tokens()
                .iter()
                .map(|t| match t {
                    GlobToken::Literal(s) => text(s),
                    _ => Need::Any,
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(q: &str) -> Need {
        Need::of(&vigil_query::parse(q).expect("query").root)
    }

    #[test]
    fn literals_need_their_trigrams() {
        assert_eq!(need("sshd"), Need::Keys(gram_keys("sshd")));
        assert!(need("ab").is_any());
        assert!(need("NOT sshd").is_any());
        assert!(need("source.port:>1024").is_any());
        assert!(need("sshd OR ab").is_any());
        assert!(matches!(need("sshd OR failed"), Need::Either(_)));
        assert_eq!(
            need("user.name:root AND source.ip:10.0.0.0/8"),
            Need::Keys(vec![value_key("user.name", "root")])
        );
        assert!(matches!(need("fail*word"), Need::Keys(g) if g.len() == 4));
        assert!(matches!(need("user.name:adm*"), Need::Keys(g) if g.len() == 1));
        assert!(matches!(need("source.ip:2001:DB8::1"), Need::Keys(g) if g.len() == 1));
        // A non-integral number may be spelled many ways: no pruning.
        assert!(need("x:1.5").is_any());
        assert_eq!(
            need("event.code:4625"),
            Need::Keys(vec![value_key("event.code", "4625")])
        );
        assert!(matches!(need("x:1e3"), Need::Either(_)));
        // A free-text address needs its five-grams too; a short number not.
        match need("192.0.2.181") {
            Need::Keys(k) => {
                assert_eq!(k.len(), gram_keys("192.0.2.181").len() + 7);
                assert!(k.contains(&(crate::grams::FIVE_GRAM_BIT | 0x32_2e_31_38_31)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(need("8080"), Need::Keys(gram_keys("8080")));
        // Fields without value keys need the trigrams of the value.
        assert_eq!(need("vigil.seq:12345"), Need::Keys(gram_keys("12345")));
        assert_eq!(
            need("@timestamp:\"2025-01-06T02:11:52Z\""),
            Need::Keys(gram_keys("2025-01-06t02:11:52z"))
        );
    }
}
