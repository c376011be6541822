//! Trigrams: what a block's filter records of its events and what a query
//! needs from a block.
//!
//! The query language matches text case-insensitively, as a substring (free
//! text) or as a whole value (`field:value`), and both sides fold case
//! character by character. So a stored value can only match a literal if
//! every three-byte window of the folded literal occurs in the folded value.
//! A block that lacks any of those windows holds no match. Windows are
//! recorded per block, not per field: one filter serves free text and every
//! field, and is still exact in the direction that matters (it never hides
//! a match).
//!
//! Besides each value's own text, a value is recorded in the other spellings
//! the matcher treats as equal: an IP address in its canonical form (so
//! `2001:DB8::1` finds `2001:db8:0:0::1`) and an integral number as an
//! integer (so `22.0` finds `22`).

use std::net::IpAddr;

use serde_json::{Map, Number, Value};

/// A trigram: three bytes of folded UTF-8, packed big-endian.
pub type Gram = u32;

/// Largest integer every f64 represents exactly; beyond it numeric equality
/// is not a question of text.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Calls `f` for every trigram of `folded`.
pub fn each_gram(folded: &[u8], mut f: impl FnMut(Gram)) {
    for w in folded.windows(3) {
        f(u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2]));
    }
}

/// The distinct trigrams of already-folded text, in first-seen order.
pub fn grams_of(folded: &str) -> Vec<Gram> {
    let mut out = Vec::new();
    each_gram(folded.as_bytes(), |g| {
        if !out.contains(&g) {
            out.push(g);
        }
    });
    out
}

/// Folds case the way the query language does (character by character).
pub fn fold(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(s.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    } else {
        std::borrow::Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    }
}

/// The integer spelling of a number that equals an integer exactly.
pub fn integral_text(x: f64) -> Option<String> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT_INT).then(|| format!("{}", x as i64))
}

/// Calls `f` for every trigram an event's values contribute.
pub fn event_grams(root: &Map<String, Value>, f: &mut impl FnMut(Gram)) {
    for v in root.values() {
        value_grams(v, f);
    }
}

fn value_grams(v: &Value, f: &mut impl FnMut(Gram)) {
    match v {
        Value::Object(m) => m.values().for_each(|v| value_grams(v, f)),
        Value::Array(items) => items.iter().for_each(|v| value_grams(v, f)),
        Value::String(s) => {
            let folded = fold(s);
            each_gram(folded.as_bytes(), &mut *f);
            if let Ok(ip) = s.parse::<IpAddr>() {
                let canon = ip.to_canonical().to_string();
                if canon != *folded {
                    each_gram(canon.as_bytes(), &mut *f);
                }
            }
        }
        Value::Number(n) => number_grams(n, f),
        Value::Bool(b) => each_gram(if *b { b"true" } else { b"false" }, &mut *f),
        Value::Null => {}
    }
}

fn number_grams(n: &Number, f: &mut impl FnMut(Gram)) {
    let text = n.to_string();
    each_gram(text.as_bytes(), &mut *f);
    if let Some(int) = n.as_f64().and_then(integral_text) {
        if int != text {
            each_gram(int.as_bytes(), &mut *f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(v: Value) -> Vec<Gram> {
        let mut out = Vec::new();
        event_grams(v.as_object().expect("object"), &mut |g| out.push(g));
        out
    }

    #[test]
    fn values_are_folded_and_respelled() {
        let g = all(json!({"a": "ABc", "ip": "2001:DB8:0:0::1", "n": 22.0, "b": true}));
        for needle in ["abc", "2001:db8::1", "22", "true"] {
            assert!(
                grams_of(needle).iter().all(|x| g.contains(x)),
                "{needle} missing"
            );
        }
    }

    #[test]
    fn folding_matches_the_query_language() {
        assert_eq!(fold("ÉTÉ Σ"), "été σ");
        assert_eq!(fold("abc"), "abc");
        assert_eq!(integral_text(1e3).as_deref(), Some("1000"));
        assert_eq!(integral_text(1.5), None);
        assert_eq!(integral_text(1e300), None);
    }
}
