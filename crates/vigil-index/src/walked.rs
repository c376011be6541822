//! The column values of an event, read during the walk that finds its
//! filter keys, so that building the columns does not decode each event a
//! second time.
//!
//! This is a shortcut for the plain case only: every column field and
//! `@timestamp` found at most once, through objects whose keys hold no
//! dot and appear once, and each value in the exact spelling `serde_json`
//! gives it. Any
//! other event is left to the decoder (see
//! [`crate::columns::ColumnBuilder::push_walked`]), so both paths record
//! the same values.

use crate::columns::COLUMN_FIELDS;
use crate::scan::{Span, WalkFacts};

/// What the walk saw at one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Absent,
    /// Once, on a plain path: the value's byte range.
    Once(usize, usize),
    /// More than once, or through an array or a dotted key.
    Unclear,
}

/// The column fields and `@timestamp` of one walked event.
#[derive(Debug, Clone)]
pub struct Walked {
    time: Seen,
    cols: Vec<Seen>,
    /// The objects on the way to the column fields (`event`, `http`,
    /// `http.response`, …), and which of them were seen.
    prefixes: Vec<&'static str>,
    prefix_seen: Vec<bool>,
    /// A key repeated on the way: the decoder keeps only the last object,
    /// so what the walk saw under the first must not count.
    repeated: bool,
    /// The first bytes and the lengths of every name above (and of
    /// `@timestamp`): most spans are told apart by these alone.
    firsts: [bool; 256],
    lens: u64,
}

impl Default for Walked {
    fn default() -> Self {
        let mut prefixes: Vec<&'static str> = COLUMN_FIELDS
            .iter()
            .flat_map(|f| f.match_indices('.').map(|(i, _)| &f[..i]))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut firsts = [false; 256];
        let mut lens = 0u64;
        let names = COLUMN_FIELDS.iter().chain(&prefixes);
        for name in names.chain([&vigil_event::fields::TIMESTAMP]) {
            // Names are short ASCII constants, below 64 bytes.
            firsts[usize::from(name.as_bytes()[0])] = true;
            lens |= 1 << name.len();
        }
        Walked {
            firsts,
            lens,
            time: Seen::Absent,
            cols: vec![Seen::Absent; COLUMN_FIELDS.len()],
            prefix_seen: vec![false; prefixes.len()],
            prefixes,
            repeated: false,
        }
    }
}

impl Walked {
    /// Forgets the previous event.
    pub fn clear(&mut self) {
        self.time = Seen::Absent;
        self.cols.fill(Seen::Absent);
        self.prefix_seen.fill(false);
        self.repeated = false;
    }

    /// Takes note of one span of the walk.
    pub fn see(&mut self, span: Span<'_>) {
        let p = span.path.as_bytes();
        let named = match p.first() {
            Some(&b) => {
                p.len() < 64 && self.lens & 1 << p.len() != 0 && self.firsts[usize::from(b)]
            }
            None => false,
        };
        if !named {
            return;
        }
        let slot = if span.path == vigil_event::fields::TIMESTAMP {
            &mut self.time
        } else if let Some(i) = COLUMN_FIELDS.iter().position(|f| *f == span.path) {
            &mut self.cols[i]
        } else {
            if let Some(i) = self.prefixes.iter().position(|p| *p == span.path) {
                self.repeated |= std::mem::replace(&mut self.prefix_seen[i], true);
            }
            return;
        };
        *slot = match (*slot, span.plain) {
            (Seen::Absent, true) => Seen::Once(span.start, span.end),
            _ => Seen::Unclear,
        };
    }

    /// The event's time (as [`vigil_event::Event::timestamp`] reads it) and
    /// each column field's value, or `None` when the shortcut does not
    /// apply. `out` receives the values' canonical bytes, and `ends[i]` is
    /// where field `i`'s end there: equal to the previous end when the field
    /// is absent, as no JSON text is empty.
    pub(crate) fn read(
        &self,
        payload: &[u8],
        facts: Option<WalkFacts>,
        out: &mut Vec<u8>,
        ends: &mut [usize],
    ) -> Option<Option<(i64, u32)>> {
        if facts?.dotted_key || self.repeated {
            return None;
        }
        let time = match self.time {
            Seen::Absent => None,
            Seen::Unclear => return None,
            Seen::Once(lo, hi) => time_of(&payload[lo..hi])?,
        };
        out.clear();
        for (i, seen) in self.cols.iter().enumerate() {
            match *seen {
                Seen::Absent => {}
                Seen::Unclear => return None,
                Seen::Once(lo, hi) => canonical(&payload[lo..hi], out)?,
            }
            ends[i] = out.len();
        }
        Some(time)
    }
}

/// `@timestamp`'s raw JSON as the event reads it: a string in RFC 3339, or
/// no time. `None` for a string with escapes or bytes that are not JSON,
/// left to the decoder.
fn time_of(raw: &[u8]) -> Option<Option<(i64, u32)>> {
    if raw.first() != Some(&b'"') {
        return serde_json::from_slice::<serde_json::Value>(raw)
            .ok()
            .map(|_| None);
    }
    if !is_plain_string(raw) {
        return None;
    }
    let text = std::str::from_utf8(&raw[1..raw.len() - 1]).ok()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| (t.timestamp(), t.timestamp_subsec_nanos())),
    )
}

/// Appends the bytes `serde_json` writes for the value `raw` parses to.
/// The common spellings are their own canonical form and are copied; the
/// rest are parsed and written again. `None` when `raw` is not JSON.
fn canonical(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if is_plain_string(raw)
        || is_plain_integer(raw)
        || matches!(raw, b"true" | b"false" | b"null")
        || is_plain_string_array(raw)
    {
        out.extend_from_slice(raw);
        return Some(());
    }
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    serde_json::to_writer(out, &v).ok()
}

/// A quoted string without escapes or control characters: `serde_json`
/// writes such text as it is.
fn is_plain_string(raw: &[u8]) -> bool {
    raw.len() >= 2
        && raw[0] == b'"'
        && raw[raw.len() - 1] == b'"'
        && raw[1..raw.len() - 1]
            .iter()
            .all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
}

/// An integer that `serde_json` reads as an `i64` or `u64` and writes back
/// unchanged: no leading zero, no `-0`, at most 18 digits.
fn is_plain_integer(raw: &[u8]) -> bool {
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && raw.len() == 1))
}

/// `["a","b"]` with plain strings and no spaces (ECS categories and types).
fn is_plain_string_array(raw: &[u8]) -> bool {
    let Some(inner) = raw.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) else {
        return false;
    };
    if inner.is_empty() {
        return true;
    }
    let mut rest = inner;
    loop {
        if rest.first() != Some(&b'"') {
            return false;
        }
        let Some(close) = rest[1..].iter().position(|&c| c == b'"') else {
            return false;
        };
        let (item, after) = rest.split_at(close + 2);
        if !is_plain_string(item) {
            return false;
        }
        match after {
            [] => return true,
            [b',', more @ ..] => rest = more,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(raw: &str) -> Option<String> {
        let mut out = Vec::new();
        canonical(raw.as_bytes(), &mut out).map(|_| String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn copied_spellings_are_what_serde_json_writes() {
        for raw in [
            r#""x""#,
            r#""été 192.0.2.1""#,
            r#""""#,
            "0",
            "-7",
            "123456789012345678",
            "true",
            "null",
            r#"["web"]"#,
            r#"["a","b c"]"#,
            "[]",
        ] {
            let v: serde_json::Value = serde_json::from_str(raw).expect("json");
            assert_eq!(
                roundtrip(raw).as_deref(),
                Some(v.to_string().as_str()),
                "{raw}"
            );
        }
    }

    #[test]
    fn other_spellings_are_written_again() {
        for (raw, want) in [
            ("200.0", "200.0"),
            ("1e3", "1000.0"),
            ("-0", "-0.0"),
            ("1234567890123456789012", "1.2345678901234568e+21"),
            (r#""a\/b""#, r#""a/b""#),
            (r#""\u0041""#, r#""A""#),
            (r#"["a",1]"#, r#"["a",1]"#),
            (r#"[ "a" ]"#, r#"["a"]"#),
        ] {
            assert_eq!(roundtrip(raw).as_deref(), Some(want), "{raw}");
        }
        // Objects come out in the key order of this build's serde_json.
        let obj = r#"{"b":1, "a":[1, 2]}"#;
        let v: serde_json::Value = serde_json::from_str(obj).expect("json");
        assert_eq!(roundtrip(obj), Some(v.to_string()));
        assert_eq!(roundtrip("1.2.3"), None);
        assert_eq!(roundtrip("\"a\u{1}\""), None);
    }

    #[test]
    fn every_watched_name_passes_the_quick_test() {
        let mut w = Walked::default();
        let names: Vec<&str> = COLUMN_FIELDS
            .iter()
            .chain(&w.prefixes.clone())
            .copied()
            .collect();
        for (i, name) in COLUMN_FIELDS.iter().enumerate() {
            w.see(Span {
                path: name,
                start: i,
                end: i + 1,
                plain: true,
            });
            assert_eq!(w.cols[i], Seen::Once(i, i + 1), "{name}");
        }
        for name in &names[COLUMN_FIELDS.len()..] {
            let i = w.prefixes.iter().position(|p| p == name).expect("prefix");
            w.see(Span {
                path: name,
                start: 0,
                end: 1,
                plain: true,
            });
            assert!(w.prefix_seen[i], "{name}");
        }
        w.see(Span {
            path: "@timestamp",
            start: 3,
            end: 4,
            plain: true,
        });
        assert_eq!(w.time, Seen::Once(3, 4));
        // Others change nothing.
        let before = format!("{w:?}");
        for other in ["", "Image", "event.originalx", "x".repeat(80).as_str()] {
            w.see(Span {
                path: other,
                start: 0,
                end: 1,
                plain: true,
            });
        }
        assert_eq!(format!("{w:?}"), before);
    }

    #[test]
    fn the_shortcut_applies_only_to_plain_events() {
        let read = |json: &str| {
            let mut w = Walked::default();
            let facts =
                crate::scan::walk_spans(json.as_bytes(), &mut |_, _| {}, &mut |s| w.see(s)).ok();
            let (mut out, mut ends) = (Vec::new(), vec![0; COLUMN_FIELDS.len()]);
            w.read(json.as_bytes(), facts, &mut out, &mut ends)
                .map(|t| (t, String::from_utf8(out).expect("utf-8")))
        };
        let (t, vals) = read(
            r#"{"@timestamp":"2024-03-01T00:00:01.5Z","event":{"category":["web"],"outcome":"success"},"http":{"response":{"status_code":200}}}"#,
        )
        .expect("plain");
        assert_eq!(t, Some((1_709_251_201, 500_000_000)));
        assert_eq!(vals, r#""success"["web"]200"#);
        // No time, or one that is not a string: no time, still plain.
        assert_eq!(read(r#"{"a":1}"#).map(|r| r.0), Some(None));
        assert_eq!(read(r#"{"@timestamp":5}"#).map(|r| r.0), Some(None));
        assert_eq!(
            read(r#"{"@timestamp":"yesterday"}"#).map(|r| r.0),
            Some(None)
        );
        for unclear in [
            r#"{"event":{"outcome":"a"},"event":{"outcome":"b"}}"#,
            r#"{"event":{"outcome":"a"},"event":{"action":"b"}}"#,
            r#"{"http":{"response":{"status_code":200},"response":{}}}"#,
            r#"{"source":[{"ip":"192.0.2.1"}]}"#,
            r#"{"x.y":1,"host":{"name":"a"}}"#,
            r#"{"@timestamp":"2024-03-01T00:00:01\u005a"}"#,
            r#"{"user":{"name":1.2.3}}"#,
            r#"{"@timestamp":007}"#,
            "not json",
        ] {
            assert!(read(unclear).is_none(), "{unclear}");
        }
    }
}
