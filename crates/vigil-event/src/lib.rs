//! The Vigil event: one normalized security log record.
//!
//! An [`Event`] is a nested JSON object whose keys follow the Elastic Common
//! Schema (ECS): `{"source":{"ip":"203.0.113.9"},"event":{"outcome":"failure"}}`.
//! Fields are addressed by dotted paths (`source.ip`) through [`Event::get`] and
//! [`Event::set`]; the constants in [`fields`] name every field Vigil itself fills.
//!
//! In the data flow an input hands raw bytes to a decoder (`vigil-parse`), which
//! builds an `Event`; the ledger (`vigil-ledger`) stores [`Event::canonical_bytes`]
//! and everything downstream (search, detection) reads events back with
//! [`Event::from_canonical`].
//!
//! ```
//! use vigil_event::{Event, fields};
//! let mut ev = Event::new();
//! ev.set(fields::SOURCE_IP, "203.0.113.9");
//! ev.set(fields::EVENT_OUTCOME, "failure");
//! assert_eq!(ev.get_str("source.ip"), Some("203.0.113.9"));
//! let bytes = ev.canonical_bytes();
//! assert_eq!(Event::from_canonical(&bytes).unwrap(), ev);
//! ```

mod canonical;
mod escape;
pub mod fields;
mod lookup;
mod path;
pub mod sanitize;
mod template;

pub use lookup::{field, field_mut};
pub use template::SeqTemplate;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

pub use serde_json::Value as FieldValue;

/// Errors building an event from external JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// The JSON was valid but not an object at the top level.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The JSON nests deeper than the configured limit.
    #[error("JSON nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The JSON holds more leaf fields than the configured limit.
    #[error("more than {limit} fields")]
    TooManyFields {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The stored bytes are not a JSON object.
    #[error("stored event is not valid JSON: {0}")]
    Corrupt(String),
}

/// One normalized event: a nested ECS JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    root: Map<String, Value>,
}

impl Event {
    /// An empty event, with room for the top-level fields a decoder
    /// typically fills (growing the map step by step cost an allocation
    /// and a rehash each time).
    pub fn new() -> Self {
        Event {
            root: Map::with_capacity(16),
        }
    }

    /// Builds an event from a JSON value sent by a client.
    ///
    /// Top-level keys holding dots (`"source.ip": "…"`, as flat shippers send
    /// them) are expanded into the nested form so that both spellings address
    /// the same field. Objects deeper than `max_depth` are refused.
    pub fn from_json(value: Value, max_depth: usize) -> Result<Self, EventError> {
        let obj = match value {
            Value::Object(m) => m,
            other => return Err(EventError::NotAnObject(json_kind(&other))),
        };
        if depth_of_map(&obj) > max_depth {
            return Err(EventError::TooDeep { limit: max_depth });
        }
        if !obj.keys().any(|k| expands(k)) {
            // Nothing to expand: merging the distinct keys one by one into
            // an empty event would rebuild this very map, in this order.
            return Ok(Event { root: obj });
        }
        Ok(Event::merged(obj))
    }

    /// The event of a client's object merged key by key, dotted keys
    /// expanded into paths.
    fn merged(obj: Map<String, Value>) -> Event {
        let mut ev = Event::new();
        for (k, v) in obj {
            if expands(&k) {
                ev.merge(&k, v);
            } else {
                ev.merge_top(k, v);
            }
        }
        ev
    }

    fn merge_top(&mut self, k: String, v: Value) {
        match (self.root.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (nk, nv) in new {
                    existing.insert(nk, nv);
                }
            }
            (_, v) => {
                self.root.insert(k, v);
            }
        }
    }

    fn merge(&mut self, path: &str, v: Value) {
        match (self.get_mut(path), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (nk, nv) in new {
                    existing.insert(nk, nv);
                }
            }
            (_, v) => self.set(path, v),
        }
    }

    /// Reads back an event stored by [`Event::canonical_bytes`].
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, EventError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(root)) => Ok(Event { root }),
            Ok(other) => Err(EventError::NotAnObject(json_kind(&other))),
            Err(e) => Err(EventError::Corrupt(e.to_string())),
        }
    }

    /// The value at a dotted path (`source.ip`), if present.
    pub fn get(&self, path: &str) -> Option<&Value> {
        path::get(&self.root, path)
    }

    /// A mutable reference to the value at a dotted path.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        path::get_mut(&mut self.root, path)
    }

    /// The string at a dotted path, if present and a string.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// The integer at a dotted path, accepting numbers and numeric strings.
    pub fn get_i64(&self, path: &str) -> Option<i64> {
        match self.get(path)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Whether a field is present.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Sets a field at a dotted path, creating intermediate objects and
    /// replacing any non-object found on the way.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) {
        path::set(&mut self.root, path, value.into());
    }

    /// Sets a field only when it is not already present.
    pub fn set_default(&mut self, path: &str, value: impl Into<Value>) {
        if !self.contains(path) {
            self.set(path, value);
        }
    }

    /// Appends a string to an ECS array field (`event.category`, `event.type`),
    /// creating it and skipping duplicates.
    pub fn push(&mut self, path: &str, value: &str) {
        match self.get_mut(path) {
            Some(Value::Array(items)) => {
                if !items.iter().any(|v| v.as_str() == Some(value)) {
                    items.push(Value::String(value.to_string()));
                }
            }
            Some(Value::String(s)) if s == value => {}
            Some(existing @ Value::String(_)) => {
                let old = existing.take();
                *existing = Value::Array(vec![old, Value::String(value.to_string())]);
            }
            _ => self.set(path, Value::Array(vec![Value::String(value.to_string())])),
        }
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, path: &str) -> Option<Value> {
        path::remove(&mut self.root, path)
    }

    /// The underlying nested JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    /// The underlying nested JSON object, mutable: for walks that edit
    /// values in place without looking each top-level key up again.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.root
    }

    /// Consumes the event into a JSON value (nested ECS, as the API returns it).
    pub fn into_json(self) -> Value {
        Value::Object(self.root)
    }

    /// The event as a JSON value, cloned.
    pub fn to_json(&self) -> Value {
        Value::Object(self.root.clone())
    }

    /// The bytes that are stored and hashed for this event.
    ///
    /// Compact JSON with object keys in byte order at every level, so the
    /// same event always yields the same bytes; the ledger's Merkle tree is
    /// computed over exactly these bytes. Keys are sorted explicitly rather
    /// than trusting the map's iteration order, which depends on whether any
    /// crate in the build enables serde_json's `preserve_order`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        canonical::write_map(&mut out, &self.root, &mut Vec::new());
        out
    }

    /// The event time (`@timestamp`), if present and valid RFC 3339.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.get_str(fields::TIMESTAMP)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// Sets `@timestamp` in the canonical RFC 3339 UTC form.
    pub fn set_timestamp(&mut self, t: DateTime<Utc>) {
        self.set(fields::TIMESTAMP, format_time(t));
    }

    /// Calls `f` for every leaf value with its dotted path; array elements
    /// share their array's path.
    pub fn for_each_leaf<'a>(&'a self, mut f: impl FnMut(&str, &'a Value)) {
        let mut prefix = String::new();
        path::walk(&self.root, &mut prefix, &mut f);
    }

    /// Number of leaf fields.
    pub fn field_count(&self) -> usize {
        let mut n = 0;
        self.for_each_leaf(|_, _| n += 1);
        n
    }
}

/// Formats a time as Vigil stores it: RFC 3339, UTC, with as many fraction digits as needed (up to nanoseconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether a client's top-level key is a dotted path to expand
/// (`source.ip`), rather than a key kept as written (`.x`, `a..b`, `x.`).
fn expands(k: &str) -> bool {
    k.contains('.') && !k.starts_with('.') && !k.ends_with('.') && !k.contains("..")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn depth_of_map(m: &Map<String, Value>) -> usize {
    1 + m.values().map(depth_of).max().unwrap_or(0)
}

fn depth_of(v: &Value) -> usize {
    match v {
        Value::Object(m) => depth_of_map(m),
        Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_expand() {
        let ev = Event::from_json(json!({"source.ip":"1.2.3.4","source":{"port":22}}), 16).unwrap();
        assert_eq!(ev.get_str("source.ip"), Some("1.2.3.4"));
        assert_eq!(ev.get_i64("source.port"), Some(22));
    }

    #[test]
    fn canonical_is_stable_and_sorted() {
        let mut a = Event::new();
        a.set("b.z", 1);
        a.set("a", "x");
        let mut b = Event::new();
        b.set("a", "x");
        b.set("b.z", 1);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        assert_eq!(a.canonical_bytes(), br#"{"a":"x","b":{"z":1}}"#);
    }

    #[test]
    fn canonical_round_trip_keeps_floats_exact() {
        // Found by fuzzing (fuzz/ parse_line): without exact float parsing
        // this read back as 1.7050410001233333e53, not the stored 1.705041000123333e53.
        for text in [
            r#"{"ts":170504100012333333333333333333333333333333333333333333}"#,
            r#"{"a":[0.1,2.2250738585072014e-308,1.7976931348623157e308,9007199254740993.0]}"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            let ev = Event::from_json(v, 8).unwrap();
            let bytes = ev.canonical_bytes();
            let back = Event::from_canonical(&bytes).unwrap();
            assert_eq!(back, ev, "{text}");
            assert_eq!(back.canonical_bytes(), bytes, "{text}");
        }
    }

    #[test]
    fn undotted_objects_are_kept_as_sent_in_order() {
        for v in [
            json!({}),
            json!({"z": 1, "a": {"y": [1, {"b": 2}], "c": null}, "m": "x"}),
            json!({".x": 1, "a..b": 2, "x.": 3, "b": {"k.v": 4}}),
            json!({"EventID": 4688, "SubjectUserName": "dkim", "Channel": "Security", "@timestamp": "t"}),
        ] {
            let Value::Object(obj) = v.clone() else {
                unreachable!("objects only")
            };
            let fast = Event::from_json(v, 16).unwrap();
            let slow = Event::merged(obj);
            assert_eq!(fast, slow);
            let order = |e: &Event| e.as_map().keys().cloned().collect::<Vec<_>>();
            assert_eq!(order(&fast), order(&slow));
            assert_eq!(fast.canonical_bytes(), slow.canonical_bytes());
        }
        // A dotted key still expands, merged with its parent.
        let ev = Event::from_json(json!({"source": {"port": 1}, "source.ip": "a"}), 16).unwrap();
        assert_eq!(ev.to_json(), json!({"source": {"port": 1, "ip": "a"}}));
    }

    #[test]
    fn depth_limit() {
        let v = json!({"a":{"b":{"c":{"d":1}}}});
        assert!(Event::from_json(v.clone(), 4).is_ok());
        assert_eq!(
            Event::from_json(v, 3),
            Err(EventError::TooDeep { limit: 3 })
        );
        assert_eq!(
            Event::from_json(json!([1]), 3),
            Err(EventError::NotAnObject("an array"))
        );
    }

    #[test]
    fn push_array() {
        let mut e = Event::new();
        e.push("event.category", "authentication");
        e.push("event.category", "authentication");
        e.push("event.category", "session");
        assert_eq!(
            e.get("event.category"),
            Some(&json!(["authentication", "session"]))
        );
    }

    #[test]
    fn leaves() {
        let e = Event::from_json(json!({"a":{"b":1,"c":[1,2]},"d":"x"}), 8).unwrap();
        let mut seen = vec![];
        e.for_each_leaf(|p, v| seen.push((p.to_string(), v.clone())));
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].0, "a.b");
        assert_eq!(seen[1].0, "a.c");
    }
}
