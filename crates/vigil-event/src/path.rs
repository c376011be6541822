//! Dotted-path access into nested JSON maps.

use serde_json::{Map, Value};

use crate::lookup::{field, field_mut};

pub(crate) fn get<'a>(root: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // Fast path, and also finds keys that themselves contain dots.
    if let Some(v) = field(root, path) {
        return Some(v);
    }
    if !path.contains('.') {
        // One segment: the walk would repeat the lookup that just failed.
        return None;
    }
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = field(cur, p)?;
        if parts.peek().is_none() {
            return Some(v);
        }
        cur = v.as_object()?;
    }
    None
}

pub(crate) fn get_mut<'a>(root: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = field_mut(cur, p)?;
        if parts.peek().is_none() {
            return Some(v);
        }
        cur = v.as_object_mut()?;
    }
    None
}

/// Path segments walked by recursion before [`set_iterative`] takes over:
/// more than any ECS path, and a bounded stack for a client's key made of
/// thousands of dots.
const MAX_RECURSIVE_SEGMENTS: usize = 16;

pub(crate) fn set(root: &mut Map<String, Value>, path: &str, value: Value) {
    set_recursive(root, path, value, MAX_RECURSIVE_SEGMENTS);
}

/// [`set`] with one map lookup per existing parent. Recursing (rather than
/// looping) lets the borrow of a found parent end where the lookup fails,
/// which a loop cannot express without looking the parent up twice.
fn set_recursive(cur: &mut Map<String, Value>, path: &str, value: Value, budget: usize) {
    // A plain byte search: segments are a few bytes long, where the
    // generic `split_once` searcher's setup costs more than the scan.
    let Some((p, rest)) = path
        .bytes()
        .position(|c| c == b'.')
        .map(|i| (&path[..i], &path[i + 1..]))
    else {
        // Replacing keeps the key's place, as assigning through `get_mut`
        // would; one hash either way.
        cur.insert(path.to_string(), value);
        return;
    };
    if budget == 0 {
        return set_iterative(cur, path, value);
    }
    if let Some(Value::Object(child)) = field_mut(cur, p) {
        return set_recursive(child, rest, value, budget - 1);
    }
    // A missing parent (or a non-object in its place) becomes a new object,
    // filled before it is put in place: the same result as inserting it
    // first, without looking it up again. Lookups in a map of zero or one
    // entries do not hash.
    let mut child = Map::new();
    set_recursive(&mut child, rest, value, budget - 1);
    cur.insert(p.to_string(), Value::Object(child));
}

/// [`set`] as a loop, for paths deeper than the recursion budget.
fn set_iterative(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            match cur.get_mut(p) {
                Some(slot) => *slot = value,
                None => {
                    cur.insert(p.to_string(), value);
                }
            }
            return;
        }
        // Look up before inserting: `entry` would allocate the key every
        // time, and most parents (`log`, `vigil`, `event`) already exist.
        if !matches!(cur.get(p), Some(Value::Object(_))) {
            cur.insert(p.to_string(), Value::Object(Map::new()));
        }
        cur = cur
            .get_mut(p)
            .and_then(Value::as_object_mut)
            .expect("just made an object");
    }
}

pub(crate) fn remove(root: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.rsplit_once('.') {
        None => root.remove(path),
        Some((parent, leaf)) => get_mut(root, parent)?.as_object_mut()?.remove(leaf),
    }
}

pub(crate) fn walk<'a>(
    map: &'a Map<String, Value>,
    prefix: &mut String,
    f: &mut impl FnMut(&str, &'a Value),
) {
    for (k, v) in map {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(k);
        match v {
            Value::Object(m) => walk(m, prefix, f),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(m) => walk(m, prefix, f),
                        other => f(prefix, other),
                    }
                }
            }
            other => f(prefix, other),
        }
        prefix.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_finds_nested_dotted_and_single_segment_paths() {
        let m = map(json!({"a": {"b": 1}, "x.y": 2, "c": 3, "": {"z": 4}}));
        assert_eq!(get(&m, "a.b"), Some(&json!(1)));
        assert_eq!(get(&m, "x.y"), Some(&json!(2)));
        assert_eq!(get(&m, "c"), Some(&json!(3)));
        assert_eq!(get(&m, ".z"), Some(&json!(4)));
        assert_eq!(get(&m, "a"), Some(&json!({"b": 1})));
        assert_eq!(get(&m, "missing"), None);
        assert_eq!(get(&m, "a.missing"), None);
        assert_eq!(get(&m, "c.d"), None);
        assert_eq!(get(&m, ""), Some(&json!({"z": 4})));
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("objects only"),
        }
    }

    /// The events, key order included, after each path is set on a copy
    /// with both walks.
    #[test]
    fn recursive_and_iterative_set_agree() {
        let start = json!({
            "log": {"syslog": {"facility": {"code": 4}}, "level": "info"},
            "event": {"kind": "event", "category": ["x"]},
            "host": "not an object",
            "a": {"b": {"c": {"d": 1}}},
        });
        let deep = (0..40)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(".");
        let paths = [
            "message",
            "log.level",
            "log.syslog.facility.name",
            "log.syslog.severity.code",
            "event.kind",
            "event.outcome",
            "host.name",
            "host",
            "new.parent.leaf",
            "a.b.c.d",
            "a.b.c.d.e",
            "a.b.x",
            ".",
            "..",
            "a.",
            ".a",
            "",
            deep.as_str(),
        ];
        for path in paths {
            let mut fast = map(start.clone());
            let mut slow = map(start.clone());
            set(&mut fast, path, json!("v"));
            set_iterative(&mut slow, path, json!("v"));
            assert_eq!(fast, slow, "{path}");
            assert_eq!(
                serde_json::to_string(&fast).unwrap(),
                serde_json::to_string(&slow).unwrap(),
                "{path}: order"
            );
            // And again over what is now there.
            set(&mut fast, path, json!(2));
            set_iterative(&mut slow, path, json!(2));
            assert_eq!(
                serde_json::to_string(&fast).unwrap(),
                serde_json::to_string(&slow).unwrap(),
                "{path}: second set"
            );
        }
    }
}
