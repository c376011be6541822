//! Canonical JSON: compact, object keys in byte order at every level.

use serde_json::{Map, Value};

/// The entries of the maps being written, outermost first: one buffer
/// for a whole event rather than one allocation per nested object.
pub(crate) type Scratch<'a> = Vec<(&'a String, &'a Value)>;

/// Writes `v` canonically.
pub(crate) fn write_value<'a>(out: &mut Vec<u8>, v: &'a Value, scratch: &mut Scratch<'a>) {
    match v {
        Value::Object(m) => write_map(out, m, scratch),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, scratch);
            }
            out.push(b']');
        }
        Value::String(s) => crate::escape::write_str(out, s),
        scalar => {
            serde_json::to_writer(&mut *out, scalar).expect("serializing a JSON scalar cannot fail")
        }
    }
}

/// Writes a map canonically.
pub(crate) fn write_map<'a>(
    out: &mut Vec<u8>,
    m: &'a Map<String, Value>,
    scratch: &mut Scratch<'a>,
) {
    out.push(b'{');
    let base = scratch.len();
    scratch.extend(m.iter());
    sort_entries(&mut scratch[base..]);
    let end = scratch.len();
    // Nested maps push their entries past `end` and take them off again.
    for i in base..end {
        let (k, v) = scratch[i];
        if i > base {
            out.push(b',');
        }
        write_key(out, k);
        write_value(out, v, scratch);
    }
    scratch.truncate(base);
    out.push(b'}');
}

/// Writes `"key":`.
pub(crate) fn write_key(out: &mut Vec<u8>, k: &str) {
    crate::escape::write_str(out, k);
    out.push(b':');
}

/// The map's entries in byte order of their keys.
pub(crate) fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    sort_entries(&mut entries);
    entries
}

/// Sorts entries by key bytes.
fn sort_entries(entries: &mut [(&String, &Value)]) {
    // Already sorted whenever serde_json's map is a BTreeMap; cheap then.
    if !entries.windows(2).all(|w| w[0].0 <= w[1].0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use serde_json::json;

    /// The canonical form as first written: a sorted copy of each map's
    /// entries and serde_json for every key and scalar.
    fn reference(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Object(m) => {
                out.push(b'{');
                for (i, (k, v)) in sorted(m).into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).unwrap();
                    out.push(b':');
                    reference(out, v);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    reference(out, item);
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).unwrap(),
        }
    }

    #[test]
    fn nested_maps_share_one_buffer_and_write_the_same_bytes() {
        for v in [
            json!({}),
            json!({"z": {"y": {"x": 1, "a": [{"q": 1, "b": {"d": null, "c": true}}, 2]}, "b": "s"}, "a": {}, "m": [[], {}]}),
            json!({"log": {"syslog": {"severity": {"name": "info", "code": 6}, "facility": {"code": 4, "name": "auth"}}}, "event": {"category": ["authentication"], "action": "x\n\"y\""}, "@timestamp": "t", "é": 1.5, "E": -3}),
        ] {
            let Value::Object(m) = &v else {
                unreachable!("objects only")
            };
            let mut ours = Vec::new();
            write_map(&mut ours, m, &mut Vec::new());
            let mut theirs = Vec::new();
            reference(&mut theirs, &v);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
