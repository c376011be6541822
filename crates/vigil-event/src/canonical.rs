//! Canonical JSON: compact, object keys in byte order at every level.

use serde_json::{Map, Value};

/// Writes `v` canonically.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(m) => write_map(out, m),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        scalar => {
            serde_json::to_writer(&mut *out, scalar).expect("serializing a JSON scalar cannot fail")
        }
    }
}

/// Writes a map canonically.
pub(crate) fn write_map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(out, k);
        write_value(out, v);
    }
    out.push(b'}');
}

/// Writes `"key":`.
pub(crate) fn write_key(out: &mut Vec<u8>, k: &str) {
    serde_json::to_writer(&mut *out, k).expect("serializing a string cannot fail");
    out.push(b':');
}

/// The map's entries in byte order of their keys.
pub(crate) fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    // Already sorted whenever serde_json's map is a BTreeMap; cheap then.
    if !entries.windows(2).all(|w| w[0].0 <= w[1].0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    entries
}
