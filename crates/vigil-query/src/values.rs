//! Reading, comparing and printing the field values pipes work on.

use std::cmp::Ordering;

use serde_json::Value;

use crate::ast::{fold_case, parse_number};

/// The value as a number: JSON numbers, and strings holding a finite decimal number.
pub(crate) fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// The text a value groups and compares under: strings as they are,
/// other scalars as their JSON text (`22`, `true`).
pub(crate) fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Calls `f` on each non-null scalar of `v`, fanning out over arrays
/// (an ECS array such as `event.category` counts each element).
pub(crate) fn each_scalar<'a>(v: &'a Value, f: &mut impl FnMut(&'a Value)) {
    match v {
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|i| each_scalar(i, f)),
        v => f(v),
    }
}

/// Orders two values: numerically when both read as numbers, by text otherwise.
pub(crate) fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => key_text(a).cmp(&key_text(b)),
    }
}

/// A number as JSON: integral values within the exact range of an `f64`
/// become integers, so counts print as `3`, not `3.0`.
pub(crate) fn number_value(f: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() < EXACT {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// Case-insensitive text of a value, for `where` comparisons with text.
pub(crate) fn folded_text(v: &Value) -> String {
    fold_case(&key_text(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_order() {
        assert_eq!(as_number(&json!("22")), Some(22.0));
        assert_eq!(as_number(&json!("x")), None);
        assert_eq!(cmp_values(&json!("100"), &json!(22)), Ordering::Greater);
        assert_eq!(cmp_values(&json!(5), &json!("a")), Ordering::Less);
        assert_eq!(number_value(3.0), json!(3));
        assert_eq!(number_value(2.5), json!(2.5));
        assert_eq!(key_text(&json!(true)), "true");
    }
}
