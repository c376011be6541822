//! Decoding only the fields a search needs from an event's stored bytes.
//!
//! An aggregation such as `* | stats count() by source.ip` reads one or two
//! fields of every event, yet a full decode builds the whole JSON tree (a
//! map and a string for every field) and throws nearly all of it away.
//! [`Fields::decode`] parses the same canonical bytes but keeps a value
//! only when its dotted path can matter to one of the needed fields, and
//! skips everything else without allocating.
//!
//! A value at path `P` (object keys joined by `.`, array levels left out,
//! exactly as the query language and the index name fields) is
//!
//! - kept whole when `P` is a needed field;
//! - walked into when `P` is a strict prefix of a needed field (`source`
//!   for `source.ip`, or a dotted key `a.b` for `a.b.c`): objects and arrays
//!   are rebuilt with only their relevant members, scalars are dropped (no
//!   lookup can pass through a scalar);
//! - skipped otherwise.
//!
//! Every way a field is looked up ([`Event::get`], the filter's fan-out over
//! arrays and dotted keys) only ever passes through keys on such a path, so
//! the pruned event answers every lookup of a needed field exactly as the
//! whole event does. Plans that cannot be served this way (free text reads
//! every value; pipes that output events need them whole) decode in full:
//! see [`Fields::for_search`].

use serde_json::{Map, Value};
use vigil_event::{fields, Event};

use crate::ast::{Expr, Term};
use crate::pipeline::{Cond, Pipe, Search};

/// The fields a search reads, when it can be run on partly decoded events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    paths: Vec<String>,
}

/// Why [`Fields::decode`] could not build the partial event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored event cannot be partly decoded: {0}")]
pub struct ExtractError(String);

impl Fields {
    /// A set of needed field paths (duplicates are dropped).
    pub fn new<I, S>(paths: I) -> Fields
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out: Vec<String> = Vec::new();
        for p in paths {
            let p = p.into();
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Fields { paths: out }
    }

    /// The needed paths.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The fields `s` reads, or `None` when it needs whole events: a filter
    /// with free text, or no aggregating pipe (events are the output).
    ///
    /// `@timestamp` is always included, for the time range and `timechart`.
    pub fn for_search(s: &Search) -> Option<Fields> {
        let mut paths = vec![fields::TIMESTAMP.to_string()];
        filter_fields(&s.query.root, &mut paths)?;
        let mut aggregated = false;
        for p in &s.pipeline.pipes {
            match &p.node {
                Pipe::Where(c) => cond_fields(c, &mut paths),
                Pipe::Head(_) => {}
                Pipe::Fields(fs) | Pipe::Dedup(fs) => paths.extend(fs.iter().cloned()),
                Pipe::Sort(keys) => paths.extend(keys.iter().map(|k| k.field.clone())),
                Pipe::Stats(st) => {
                    paths.extend(st.by.iter().cloned());
                    paths.extend(st.aggs.iter().filter_map(|a| a.field.clone()));
                    aggregated = true;
                }
                Pipe::Timechart(tc) => {
                    paths.extend(tc.by.iter().cloned());
                    paths.extend(tc.aggs.iter().filter_map(|a| a.field.clone()));
                    aggregated = true;
                }
                Pipe::Top(t) => {
                    paths.extend(t.fields.iter().cloned());
                    aggregated = true;
                }
            }
            // After the first aggregation records are table rows: the
            // pipes that follow read columns, not event fields.
            if aggregated {
                return Some(Fields::new(paths));
            }
        }
        None
    }

    /// Decodes from `bytes` an event holding only what lookups of the
    /// needed fields can reach.
    ///
    /// Canonical events have no dotted keys at the top level (they are
    /// expanded on the way in); bytes that do are refused, so the caller
    /// falls back to [`Event::from_canonical`], as it does for anything
    /// that is not well-formed JSON.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, ExtractError> {
        let mut p = Pruner {
            b: bytes,
            i: 0,
            path: Vec::new(),
            fields: self,
            depth: 0,
        };
        p.ws();
        if p.peek() != Some(b'{') {
            return Err(p.err("not a JSON object"));
        }
        let map = p.object()?;
        p.ws();
        if p.i != bytes.len() {
            return Err(p.err("bytes after the event"));
        }
        let mut ev = Event::new();
        for (k, v) in map {
            if k.contains('.') {
                return Err(ExtractError(format!("top-level key {k:?} holds a dot")));
            }
            ev.set(&k, v);
        }
        Ok(ev)
    }

    fn relation(&self, path: &[u8]) -> Relation {
        let mut r = Relation::Skip;
        for f in &self.paths {
            let f = f.as_bytes();
            if f.len() < path.len() || f[..path.len()] != *path {
                continue;
            }
            if f.len() == path.len() {
                return Relation::Keep;
            }
            if f[path.len()] == b'.' {
                r = Relation::Descend;
            }
        }
        r
    }
}

/// The fields a filter reads; `None` when it has free text.
fn filter_fields(e: &Expr, out: &mut Vec<String>) -> Option<()> {
    match e {
        Expr::All => Some(()),
        Expr::And(items) | Expr::Or(items) => items.iter().try_for_each(|e| filter_fields(e, out)),
        Expr::Not(e) => filter_fields(e, out),
        Expr::Term(Term::Field { field, .. }) => {
            out.push(field.clone());
            Some(())
        }
        Expr::Term(Term::FreeText(_)) => None,
    }
}

fn cond_fields(c: &Cond, out: &mut Vec<String>) {
    match c {
        Cond::And(items) | Cond::Or(items) => items.iter().for_each(|c| cond_fields(c, out)),
        Cond::Not(c) => cond_fields(c, out),
        Cond::Cmp { field, .. } => out.push(field.clone()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Keep,
    Descend,
    Skip,
}

/// An object key: a byte range of the input when it has no escapes.
enum Key {
    Raw(usize, usize),
    Unescaped(String),
}

/// Deepest nesting walked; canonical events are limited far below this.
const MAX_DEPTH: usize = 128;

/// A walk over canonical JSON bytes that skips what no needed field can
/// reach. Skipping a string is a search for its closing quote, so the
/// bulk of an event (messages, the original line) costs a `memchr`.
struct Pruner<'a> {
    b: &'a [u8],
    i: usize,
    /// The dotted path of the current value, as bytes: keys are compared
    /// before they are checked as UTF-8, which only kept ones need.
    path: Vec<u8>,
    fields: &'a Fields,
    depth: usize,
}

impl Pruner<'_> {
    fn err(&self, what: &str) -> ExtractError {
        ExtractError(format!("{what} at byte {}", self.i))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), ExtractError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn nest(&mut self) -> Result<(), ExtractError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        Ok(())
    }

    /// At `{`: the object with only the members that matter.
    fn object(&mut self) -> Result<Map<String, Value>, ExtractError> {
        self.nest()?;
        self.i += 1;
        let mut out = Map::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(out);
        }
        let base = self.path.len();
        loop {
            self.ws();
            let key = self.key()?;
            if base > 0 {
                self.path.push(b'.');
            }
            match &key {
                Key::Raw(lo, hi) => self.path.extend_from_slice(&self.b[*lo..*hi]),
                Key::Unescaped(k) => self.path.extend_from_slice(k.as_bytes()),
            }
            self.eat(b':')?;
            self.ws();
            match self.fields.relation(&self.path) {
                Relation::Keep => {
                    let lo = self.i;
                    self.skip_value()?;
                    let v: Value = serde_json::from_slice(&self.b[lo..self.i])
                        .map_err(|e| ExtractError(e.to_string()))?;
                    out.insert(self.key_text(key)?, v);
                }
                Relation::Descend => match self.peek() {
                    Some(b'{') => {
                        let m = self.object()?;
                        out.insert(self.key_text(key)?, Value::Object(m));
                    }
                    Some(b'[') => {
                        let a = self.array()?;
                        out.insert(self.key_text(key)?, Value::Array(a));
                    }
                    _ => self.skip_value()?,
                },
                Relation::Skip => self.skip_value()?,
            }
            self.path.truncate(base);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(out);
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// At `[` on the way to a needed field: its objects and arrays, pruned.
    fn array(&mut self) -> Result<Vec<Value>, ExtractError> {
        self.nest()?;
        self.i += 1;
        let mut out = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(out);
        }
        loop {
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    let m = self.object()?;
                    out.push(Value::Object(m));
                }
                Some(b'[') => {
                    let a = self.array()?;
                    out.push(Value::Array(a));
                }
                _ => self.skip_value()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(out);
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// At a key's opening quote: where the key is, or its unescaped text.
    fn key(&mut self) -> Result<Key, ExtractError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a key"));
        }
        let lo = self.i;
        let escaped = self.skip_string()?;
        if escaped {
            serde_json::from_slice(&self.b[lo..self.i])
                .map(Key::Unescaped)
                .map_err(|e| ExtractError(e.to_string()))
        } else {
            Ok(Key::Raw(lo + 1, self.i - 1))
        }
    }

    fn key_text(&self, key: Key) -> Result<String, ExtractError> {
        match key {
            Key::Raw(lo, hi) => std::str::from_utf8(&self.b[lo..hi])
                .map(str::to_owned)
                .map_err(|_| self.err("key is not UTF-8")),
            Key::Unescaped(k) => Ok(k),
        }
    }

    /// At an opening quote: moves past the string; says whether it had escapes.
    fn skip_string(&mut self) -> Result<bool, ExtractError> {
        self.i += 1;
        let mut escaped = false;
        loop {
            let Some(j) = memchr::memchr2(b'"', b'\\', &self.b[self.i..]) else {
                return Err(self.err("unterminated string"));
            };
            self.i += j;
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Ok(escaped);
            }
            escaped = true;
            self.i += 2;
            if self.i > self.b.len() {
                return Err(self.err("unterminated string"));
            }
        }
    }

    /// Moves past one value of any kind.
    fn skip_value(&mut self) -> Result<(), ExtractError> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None => return Err(self.err("unterminated value")),
                        Some(b'"') => {
                            self.skip_string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                    }
                    self.i += 1;
                }
            }
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                let lo = self.i;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E')
                ) {
                    self.i += 1;
                }
                if self.i == lo {
                    return Err(self.err("expected a value"));
                }
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pruned(paths: &[&str], v: Value) -> Value {
        let bytes = serde_json::to_vec(&v).unwrap();
        Fields::new(paths.iter().copied())
            .decode(&bytes)
            .unwrap()
            .into_json()
    }

    #[test]
    fn keeps_only_what_lookups_of_the_fields_reach() {
        let v = json!({
            "@timestamp": "2026-03-01T10:00:00Z",
            "source": {"ip": "10.0.0.1", "port": 22, "geo": {"x": 1}},
            "process": [{"name": "sshd", "pid": 1}, "junk", {"pid": 2}],
            "a": {"b.c": 5, "b": {"c": 6}},
            "message": "long text",
            "user": "not an object"
        });
        assert_eq!(
            pruned(&["source.ip", "process.name", "a.b.c", "user.name"], v),
            json!({
                "source": {"ip": "10.0.0.1"},
                "process": [{"name": "sshd"}, {}],
                "a": {"b.c": 5, "b": {"c": 6}},
            })
        );
    }

    #[test]
    fn a_needed_object_is_kept_whole_and_escapes_decode() {
        let v = json!({"s\"q": {"x": [1, {"y": "\u{e9}\n"}]}, "n": null});
        assert_eq!(pruned(&["s\"q", "n"], v.clone()), v);
    }

    #[test]
    fn plans() {
        let f = |q: &str| {
            Fields::for_search(&crate::parse_search(q).unwrap()).map(|f| f.paths().to_vec())
        };
        assert_eq!(
            f("event.outcome:failure | where bytes > 5 | stats count() by source.ip | sort -count"),
            Some(vec![
                "@timestamp".to_string(),
                "event.outcome".into(),
                "bytes".into(),
                "source.ip".into()
            ])
        );
        assert_eq!(
            f("sshd | stats count()"),
            None,
            "free text reads everything"
        );
        assert_eq!(f("user.name:root | head 5"), None, "events are the output");
        assert_eq!(f("user.name:root"), None);
    }

    #[test]
    fn refuses_what_it_cannot_rebuild() {
        let f = Fields::new(["a"]);
        assert!(f.decode(b"[1]").is_err());
        assert!(f.decode(b"{\"a\":1").is_err());
        assert!(Fields::new(["a.b"]).decode(b"{\"a.b\":1}").is_err());
        assert!(f.decode(b"{\"a\":1} x").is_err());
    }

    mod agree {
        use super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                prop::sample::select(vec![
                    "root",
                    "alice",
                    "Bob",
                    "10.0.0.1",
                    "::1",
                    "22",
                    "",
                    "a\"b}]",
                    "c\\d[{",
                    "\u{e9}\n\u{1}",
                ])
                .prop_map(Value::from),
                (-3i64..300).prop_map(Value::from),
                Just(Value::from(2.5)),
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                4 => scalar(),
                1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
                1 => (scalar(), scalar()).prop_map(|(a, b)| json!({"name": a, "ip": b})),
                1 => prop::collection::vec(scalar(), 0..3)
                    .prop_map(|v| Value::from(v.into_iter().map(|s| json!({"name": s})).collect::<Vec<_>>())),
            ]
        }

        fn event() -> impl Strategy<Value = Value> {
            let keys = prop::sample::select(vec![
                "user", "source", "event", "bytes", "process", "host", "message",
            ]);
            let sub = prop::sample::select(vec!["name", "ip", "outcome", "b.c", "port"]);
            (
                0i64..20_000,
                prop::collection::vec((keys, prop::option::of(sub), value()), 0..8),
            )
                .prop_map(|(t, kvs)| {
                    let mut root = Map::new();
                    let ts = chrono::DateTime::from_timestamp(1_772_000_000 + t, 0).unwrap();
                    root.insert(
                        "@timestamp".into(),
                        Value::from(vigil_event::format_time(ts)),
                    );
                    for (k, sub, v) in kvs {
                        match sub {
                            Some(s) => {
                                let slot = root.entry(k).or_insert_with(|| json!({}));
                                if let Value::Object(m) = slot {
                                    m.insert(s.to_string(), v);
                                }
                            }
                            None => {
                                root.insert(k.to_string(), v);
                            }
                        }
                    }
                    Value::Object(root)
                })
        }

        fn search() -> impl Strategy<Value = String> {
            let filter = prop::sample::select(vec![
                "*",
                "user.name:root",
                "-user.name:root",
                "source.ip:10.0.0.0/8 OR bytes:>20",
                "process.name:(alice OR bob)",
                "user:*",
                "event.b.c:22",
            ]);
            let pipes = prop::sample::select(vec![
                "stats count() by user.name",
                "stats count(), dc(source.ip), sum(bytes), max(bytes), p50(bytes) by event.outcome",
                "timechart span=1h count() by event.outcome",
                "timechart span=10m avg(bytes)",
                "top 3 process.name",
                "rare 2 source.ip, user.name",
                "where bytes > 10 | stats count() by host.name | sort -count",
                "dedup user.name | stats count() by user",
                "sort -bytes | head 5 | stats count() by user.name",
                "stats count() by event.b.c, source.port",
                "stats count() by message, process",
            ]);
            (filter, pipes).prop_map(|(f, p)| format!("{f} | {p}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// The partial decode and the full decode give the same tables.
            #[test]
            fn partial_and_full_decode_aggregate_alike(
                events in prop::collection::vec(event(), 0..40),
                q in search(),
            ) {
                let s = crate::parse_search(&q).unwrap();
                let fields = Fields::for_search(&s).expect("aggregating searches have a plan");
                let mut full = crate::Executor::new(&s.pipeline, 100).unwrap();
                let mut part = crate::Executor::new(&s.pipeline, 100).unwrap();
                for v in events {
                    let bytes = Event::from_json(v, 16).unwrap().canonical_bytes();
                    let a = Event::from_canonical(&bytes).unwrap();
                    let b = fields.decode(&bytes).unwrap();
                    prop_assert_eq!(a.timestamp(), b.timestamp());
                    let (ma, mb) = (s.query.matches(&a), s.query.matches(&b));
                    prop_assert_eq!(ma, mb, "filter disagrees on {}", String::from_utf8_lossy(&bytes));
                    if ma {
                        full.push(&a);
                        part.push(&b);
                    }
                }
                prop_assert_eq!(full.finish(), part.finish(), "{}", q);
            }
        }
    }
}
