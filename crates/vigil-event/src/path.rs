//! Dotted-path access into nested JSON maps.

use serde_json::{Map, Value};

pub(crate) fn get<'a>(root: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // Fast path, and also finds keys that themselves contain dots.
    if let Some(v) = root.get(path) {
        return Some(v);
    }
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = cur.get(p)?;
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
        let v = cur.get_mut(p)?;
        if parts.peek().is_none() {
            return Some(v);
        }
        cur = v.as_object_mut()?;
    }
    None
}

pub(crate) fn set(root: &mut Map<String, Value>, path: &str, value: Value) {
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
