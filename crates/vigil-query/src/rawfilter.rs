//! A check on an event's stored bytes that rules most non-matches out
//! before the event is decoded.
//!
//! Decoding stored JSON into an event costs far more than looking for a few
//! words in its bytes. Every literal a query needs (free text, a field's
//! whole value, the literal runs of a wildcard) occurs, ignoring ASCII case,
//! in the stored bytes of any event that matches: serde writes every
//! character of such a literal as itself. [`RawFilter::may_match`] checks
//! that, combined by the query's `AND`/`OR` structure, and only a `true`
//! leads to decoding and the exact match. It never rejects a match:
//!
//! - literals with `"`, `\`, control or non-ASCII characters (which JSON may
//!   escape, or case folding may change) ask nothing;
//! - so do IP addresses (another spelling may be stored) and numbers that a
//!   stored number may spell differently (only integers have one spelling);
//! - the two characters whose lowercase is ASCII though they are not
//!   (`İ` U+0130, the Kelvin sign U+212A), and any `\u` escape, make an
//!   event pass unchecked.

use memchr::memmem::Finder;

use crate::ast::{Expr, Predicate, Query, Term, TextPattern};
use crate::glob::GlobToken;

/// What a query needs to find in an event's stored bytes.
#[derive(Debug)]
pub struct RawFilter {
    root: Node,
    /// The filter looks for an IPv4 address as text, which an IPv4-mapped
    /// IPv6 address (`::ffff:c000:2b5`) spells differently: events holding
    /// `::ffff:` pass unchecked.
    ipv4: bool,
}

#[derive(Debug)]
enum Node {
    Lit(Box<Finder<'static>>),
    All(Vec<Node>),
    Any(Vec<Node>),
}

/// Shortest literal worth looking for: shorter ones occur everywhere.
const MIN_LEN: usize = 3;

impl RawFilter {
    /// The filter of `query`, or `None` when it would ask nothing.
    pub fn of(query: &Query) -> Option<RawFilter> {
        let mut ipv4 = false;
        node(&query.root, &mut ipv4).map(|root| RawFilter { root, ipv4 })
    }

    /// Whether the event stored as `payload` may match; `scratch` is reused
    /// between calls to hold the lowercased bytes.
    pub fn may_match(&self, payload: &[u8], scratch: &mut Vec<u8>) -> bool {
        if hazard(payload) {
            return true;
        }
        scratch.clear();
        scratch.extend(payload.iter().map(u8::to_ascii_lowercase));
        if self.ipv4 && memchr::memmem::find(scratch, b"::ffff:").is_some() {
            return true;
        }
        eval(&self.root, scratch)
    }
}

fn eval(n: &Node, hay: &[u8]) -> bool {
    match n {
        Node::Lit(f) => f.find(hay).is_some(),
        Node::All(items) => items.iter().all(|n| eval(n, hay)),
        Node::Any(items) => items.iter().any(|n| eval(n, hay)),
    }
}

/// Bytes after which plain ASCII lowercasing may miss a match: `İ`
/// (C4 B0), the Kelvin sign (E2 84 AA) or a `\u` escape. One pass over the
/// bytes for the three lead bytes, then a look at what follows each.
fn hazard(b: &[u8]) -> bool {
    memchr::memchr3_iter(b'\\', 0xc4, 0xe2, b).any(|i| {
        let rest = &b[i..];
        rest.starts_with(b"\\u")
            || rest.starts_with("\u{130}".as_bytes())
            || rest.starts_with("\u{212a}".as_bytes())
    })
}

fn lit(text: &str) -> Option<Node> {
    let plain = text.len() >= MIN_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_control() && b != b'"' && b != b'\\');
    plain.then(|| {
        Node::Lit(Box::new(
            Finder::new(text.to_ascii_lowercase().as_bytes()).into_owned(),
        ))
    })
}

fn node(e: &Expr, ipv4: &mut bool) -> Option<Node> {
    match e {
        Expr::All | Expr::Not(_) => None,
        Expr::And(items) => {
            let mut kept: Vec<Node> = items.iter().filter_map(|e| node(e, ipv4)).collect();
            match kept.len() {
                0 => None,
                1 => kept.pop(),
                _ => Some(Node::All(kept)),
            }
        }
        Expr::Or(items) => {
            let kept: Option<Vec<Node>> = items.iter().map(|e| node(e, ipv4)).collect();
            kept.map(Node::Any)
        }
        Expr::Term(Term::FreeText(p)) => pattern(p),
        Expr::Term(Term::Field { pred, .. }) => match pred {
            Predicate::Eq(TextPattern::Literal(l)) => {
                match l.ip() {
                    // A stored IPv4 address equal to the literal is written as
                    // the literal, or as a mapped IPv6 address (see `ipv4`).
                    Some(std::net::IpAddr::V4(v4)) if v4.to_string() == l.text() => {
                        *ipv4 = true;
                        return lit(l.text());
                    }
                    Some(_) => return None,
                    None => {}
                }
                match l.number() {
                    None => lit(l.text()),
                    Some(x) if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 => {
                        // A stored number equal to the literal is written as
                        // this integer (`22`) or starts with it (`22.0`).
                        let int = format!("{}", x as i64);
                        if int == l.text() {
                            lit(&int)
                        } else {
                            Some(Node::Any(vec![lit(l.text())?, lit(&int)?]))
                        }
                    }
                    Some(_) => None,
                }
            }
            Predicate::Eq(p) => pattern(p),
            Predicate::Range { .. } | Predicate::Cidr(_) | Predicate::Exists => None,
        },
    }
}

fn pattern(p: &TextPattern) -> Option<Node> {
    match p {
        TextPattern::Literal(l) => lit(l.text()),
        TextPattern::Wildcard(g) => {
            let mut kept: Vec<Node> = g
                .tokens()
                .iter()
                .filter_map(|t| match t {
                    GlobToken::Literal(s) => lit(s),
                    _ => None,
                })
                .collect();
            match kept.len() {
                0 => None,
                1 => kept.pop(),
                _ => Some(Node::All(kept)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};
    use vigil_event::Event;

    fn filter(q: &str) -> Option<RawFilter> {
        RawFilter::of(&crate::parse(q).expect("query"))
    }

    #[test]
    fn what_asks_nothing() {
        for q in [
            "*",
            "ab",
            "NOT sshd",
            "x:>3",
            "ip:10.0.0.0/8",
            "x:*",
            "ip:2001:db8::1",
            "x:1.5",
            "sshd OR ab",
            "\"a\\\"b\"",
            "été",
        ] {
            assert!(filter(q).is_none(), "{q}");
        }
        for q in [
            "sshd",
            "user.name:root",
            "fail*word",
            "x:4625",
            "x:1e3",
            "a AND NOT b",
        ] {
            assert!(filter(q).is_none() == (q == "a AND NOT b"), "{q}");
        }
    }

    #[test]
    fn looks_in_the_bytes() {
        let ev = Event::from_json(json!({"message": "Failed PASSWORD", "n": 1000.0}), 8).unwrap();
        let bytes = ev.canonical_bytes();
        let mut s = Vec::new();
        assert!(filter("password").unwrap().may_match(&bytes, &mut s));
        assert!(!filter("sshd").unwrap().may_match(&bytes, &mut s));
        assert!(filter("n:1000").unwrap().may_match(&bytes, &mut s));
        assert!(filter("n:1e3").unwrap().may_match(&bytes, &mut s));
        assert!(!filter("n:1001").unwrap().may_match(&bytes, &mut s));
        assert!(filter("sshd OR failed").unwrap().may_match(&bytes, &mut s));
        assert!(!filter("sshd AND failed").unwrap().may_match(&bytes, &mut s));
    }

    #[test]
    fn ipv4_literals_look_for_their_text_unless_a_mapped_address_is_stored() {
        let f = filter("source.ip:203.0.113.9").expect("an IPv4 literal asks for its text");
        let mut s = Vec::new();
        let bytes = |ip: &str| {
            Event::from_json(json!({"source": {"ip": ip}}), 8)
                .unwrap()
                .canonical_bytes()
        };
        assert!(f.may_match(&bytes("203.0.113.9"), &mut s));
        assert!(!f.may_match(&bytes("198.51.100.1"), &mut s));
        // The same address spelled as mapped IPv6 hex passes unchecked.
        assert!(f.may_match(&bytes("::FFFF:CB00:7109"), &mut s));
    }

    const WORDS: &[&str] = &[
        "sshd",
        "Failed",
        "password",
        "ROOT",
        "admin",
        "ÉTÉ",
        "été",
        "\u{212a}ey",
        "İstanbul",
        "a\"quoted\"b",
        "tab\there",
        "C:\\Windows\\cmd.exe",
        "Failed password for root",
        "x",
    ];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(WORDS).prop_map(|s| json!(s)),
            prop::sample::select(
                &[
                    "203.0.113.9",
                    "::ffff:cb00:7109",
                    "::FFFF:CB00:7109",
                    "2001:DB8::1"
                ][..]
            )
            .prop_map(|s| json!(s)),
            (-3i64..5000).prop_map(|n| json!(n)),
            prop::sample::select(&[22.0f64, 1000.0, 1.5][..]).prop_map(|f| json!(f)),
            any::<bool>().prop_map(|b| json!(b)),
        ]
    }

    fn term() -> impl Strategy<Value = String> {
        let lit = prop::sample::select(
            &[
                "sshd",
                "root",
                "fail*word",
                "*dmi?",
                "été",
                "key",
                "istanbul",
                "4625",
                "22",
                "22.0",
                "1e3",
                "1000",
                "true",
                "203.0.113.9",
                "quoted",
                "\"a\\\"quoted\"",
                "cmd.exe",
                "ssh*",
                "\"failed password\"",
            ][..],
        );
        prop_oneof![
            lit.clone().prop_map(str::to_string),
            (prop::sample::select(&["m", "n", "u.name"][..]), lit)
                .prop_map(|(f, l)| format!("{f}:{l}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn never_rejects_a_match(
            fields in prop::collection::vec((prop::sample::select(&["m", "n", "u"][..]), scalar()), 0..5),
            terms in prop::collection::vec((term(), 0u8..3), 1..4),
        ) {
            let mut m = Map::new();
            for (f, v) in fields {
                if f == "u" {
                    m.insert("u".into(), json!({"name": v}));
                } else {
                    m.insert(f.into(), v);
                }
            }
            let Ok(ev) = Event::from_json(Value::Object(m), 8) else { return Ok(()); };
            let mut q = String::new();
            for (i, (t, op)) in terms.iter().enumerate() {
                if i > 0 {
                    q.push_str([" AND ", " OR ", " "][*op as usize]);
                }
                q.push_str(t);
            }
            let Ok(query) = crate::parse(&q) else { return Ok(()); };
            if let Some(f) = RawFilter::of(&query) {
                if query.matches(&ev) {
                    let mut s = Vec::new();
                    prop_assert!(
                        f.may_match(&ev.canonical_bytes(), &mut s),
                        "{q:?} matches {} but the byte filter rejects it",
                        ev.to_json()
                    );
                }
            }
        }
    }
}
