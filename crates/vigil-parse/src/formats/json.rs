//! Helpers for JSON input: event time from the keys loggers commonly use, and
//! the structural limits that [`Event::from_json`] alone does not enforce.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use vigil_event::{fields, Event};

use crate::ParseOptions;

/// Keys that hold the event time, in order of preference.
pub const TIMESTAMP_KEYS: [&str; 4] = ["@timestamp", "timestamp", "time", "ts"];

/// Sets `@timestamp` (RFC 3339, UTC) from the first of [`TIMESTAMP_KEYS`] that
/// holds a recognisable time. Returns whether a time was found.
///
/// The source key is left in place: it is the sender's data, and `@timestamp`
/// is only Vigil's normalized reading of it.
pub fn normalize_timestamp(ev: &mut Event, opts: &ParseOptions) -> bool {
    for key in TIMESTAMP_KEYS {
        // Top-level keys only: `Event::get` would read `ts` fine, but a nested
        // `time` object (`{"time":{"taken":…}}`) is not a timestamp.
        let Some(v) = ev.as_map().get(key) else {
            continue;
        };
        if let Some(t) = parse_time_value(v, opts) {
            ev.set_timestamp(t);
            return true;
        }
    }
    false
}

/// Reads a time from a JSON value: an RFC 3339 string (or `YYYY-MM-DD HH:MM:SS[.f]`
/// in `opts.timezone`), or a number / numeric string of seconds, milliseconds,
/// microseconds or nanoseconds since the epoch (told apart by magnitude).
pub fn parse_time_value(v: &Value, opts: &ParseOptions) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => n.as_f64().and_then(from_epoch),
        Value::String(s) => parse_time_str(s, opts),
        _ => None,
    }
}

/// [`parse_time_value`] for text.
pub fn parse_time_str(s: &str, opts: &ParseOptions) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(from_epoch);
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return opts
                .timezone
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds by magnitude:
/// seconds stay below 1e11 until the year 5138, so larger values are finer units.
fn from_epoch(x: f64) -> Option<DateTime<Utc>> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let nanos = if x < 1e11 {
        x * 1e9
    } else if x < 1e14 {
        x * 1e6
    } else if x < 1e17 {
        x * 1e3
    } else {
        x
    };
    if nanos > i64::MAX as f64 {
        return None;
    }
    // Whole microseconds: f64 cannot carry nanoseconds of a current date exactly.
    let micros = (nanos / 1e3).round() as i64;
    DateTime::from_timestamp_micros(micros)
}

/// Nesting depth of an event (an object of scalars is 1), measured after
/// dotted keys were expanded: `{"a.b.c": 1}` is 3 deep, although the JSON
/// that carried it was 1 deep.
pub fn depth(map: &Map<String, Value>) -> usize {
    fn value_depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => depth(m),
            Value::Array(a) => 1 + a.iter().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + map.values().map(value_depth).max().unwrap_or(0)
}

/// Sets `event.original` to the compact JSON of the event unless the sender
/// supplied one.
pub fn keep_original(ev: &mut Event) {
    if !ev.contains(fields::EVENT_ORIGINAL) {
        let compact = String::from_utf8_lossy(&ev.canonical_bytes()).into_owned();
        ev.set(fields::EVENT_ORIGINAL, compact);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> ParseOptions {
        ParseOptions::default()
    }

    #[test]
    fn time_shapes() {
        let o = opts();
        let want = "2024-01-12T06:30:00Z";
        for v in [
            json!("2024-01-12T06:30:00Z"),
            json!("2024-01-12T07:30:00+01:00"),
            json!("2024-01-12 06:30:00"),
            json!(1705041000),
            json!(1705041000000u64),
            json!("1705041000"),
            json!(1705041000000000u64),
            json!(1705041000000000000u64),
        ] {
            let t = parse_time_value(&v, &o).unwrap_or_else(|| panic!("{v}"));
            assert_eq!(vigil_event::format_time(t), want, "{v}");
        }
        let t = parse_time_value(&json!(1705041000.25), &o).unwrap();
        assert_eq!(vigil_event::format_time(t), "2024-01-12T06:30:00.250Z");
        assert!(parse_time_value(&json!("yesterday"), &o).is_none());
        assert!(parse_time_value(&json!(-5), &o).is_none());
        assert!(parse_time_value(&json!(true), &o).is_none());
    }

    #[test]
    fn timestamp_key_preference() {
        let mut ev =
            Event::from_json(json!({"ts": 1705041000, "time": "2020-01-01T00:00:00Z"}), 8).unwrap();
        assert!(normalize_timestamp(&mut ev, &opts()));
        assert_eq!(ev.get_str("@timestamp"), Some("2020-01-01T00:00:00Z"));
        assert_eq!(ev.get_i64("ts"), Some(1705041000));
        let mut ev = Event::from_json(json!({"time": {"taken": 5}}), 8).unwrap();
        assert!(!normalize_timestamp(&mut ev, &opts()));
    }

    #[test]
    fn depth_counts_expanded_keys() {
        let ev = Event::from_json(json!({"a.b.c": 1, "d": [{"e": 1}]}), 8).unwrap();
        assert_eq!(depth(ev.as_map()), 3);
    }
}
