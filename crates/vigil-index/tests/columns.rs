//! Aggregations answered from the blocks' columns equal the full scan's
//! answer, table for table and bucket for bucket: for random events
//! (arrays, missing fields, numbers and their text, events without a time,
//! arrays of objects, blocks over the distinct-value cap, overlong values)
//! and random qualifying searches over random time ranges.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vigil_index::{build_chunk_with_cap, Index, IndexOptions};
use vigil_ledger::{Ledger, LedgerOptions};
use vigil_query::exec::{run, SearchParams, SearchResult};

const OUTCOMES: &[&str] = &["success", "failure", "FAILURE", "unknown"];
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "2001:DB8::1",
    "2001:db8::1",
    "192.0.2.7",
];
const USERS: &[&str] = &["root", "admin", "alice", "Root"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
}

fn scalar_from(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::sample::select(pool).prop_map(|s| json!(s)),
        1 => Just(json!(200)),
        1 => Just(json!("200")),
        1 => Just(json!(200.0)),
        1 => Just(json!(true)),
        1 => Just(Value::Null),
    ]
}

/// A field's value: missing, a scalar, an array, an array of objects
/// (which the filter follows but `by` does not), or overlong text.
fn field(pool: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        8 => scalar_from(pool).prop_map(Some),
        2 => prop::collection::vec(scalar_from(pool), 0..3).prop_map(|v| Some(Value::Array(v))),
        1 => Just(Some(json!("x".repeat(300)))),
    ]
}

fn status() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        3 => prop::sample::select(&[200i64, 404, 500, 302][..]).prop_map(|n| Some(json!(n))),
        1 => Just(Some(json!("404"))),
        1 => Just(Some(json!(500.0))),
    ]
}

#[derive(Debug, Clone)]
struct Ev {
    time: Option<Result<i64, ()>>,
    outcome: Option<Value>,
    ip: Option<Value>,
    user: Option<Value>,
    status: Option<Value>,
    /// `source` is an array of objects: the filter sees `source.ip`
    /// inside, `Event::get` does not.
    nested_ip: bool,
    /// An odd shape for `user.name`: 0 none, 1 a dotted top-level key
    /// beside it, 2 an empty object, 3 an object, 4 a dotted key one level
    /// down (`{"user": {"name.x": …}}`).
    odd: u8,
}

fn event() -> impl Strategy<Value = Ev> {
    (
        prop_oneof![
            6 => (0i64..7_200_000).prop_map(|ms| Some(Ok(ms))),
            1 => Just(None),
            1 => Just(Some(Err(()))),
        ],
        field(OUTCOMES),
        field(IPS),
        field(USERS),
        status(),
        prop::bool::weighted(0.05),
        prop_oneof![12 => Just(0u8), 1 => 1u8..5],
    )
        .prop_map(|(time, outcome, ip, user, status, nested_ip, odd)| Ev {
            time,
            outcome,
            ip,
            user,
            status,
            nested_ip,
            odd,
        })
}

fn json_of(e: &Ev) -> String {
    let mut root = Map::new();
    match e.time {
        Some(Ok(ms)) => {
            let t = base() + Duration::milliseconds(ms);
            root.insert("@timestamp".into(), json!(vigil_event::format_time(t)));
        }
        Some(Err(())) => {
            root.insert("@timestamp".into(), json!("not a time"));
        }
        None => {}
    }
    let mut put = |path: &str, v: &Option<Value>| {
        if let Some(v) = v {
            let (a, b) = path.split_once('.').unwrap();
            let obj = root
                .entry(a.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = obj {
                m.insert(b.to_string(), v.clone());
            }
        }
    };
    put("event.outcome", &e.outcome);
    put("user.name", &e.user);
    put("http.response", &None);
    if e.nested_ip {
        root.insert("source".into(), json!([{"ip": e.ip.clone()}]));
    } else {
        put("source.ip", &e.ip);
    }
    if let Some(s) = &e.status {
        root.insert("http".into(), json!({"response": {"status_code": s}}));
    }
    match e.odd {
        1 => {
            root.insert("user.name".into(), json!("dotted"));
        }
        2 => {
            root.insert("user".into(), json!({"name": {}}));
        }
        3 => {
            root.insert("user".into(), json!({"name": {"first": "root"}}));
        }
        4 => {
            root.insert("user".into(), json!({"name.x": "root", "name": "admin"}));
        }
        _ => {}
    }
    Value::Object(root).to_string()
}

const FILTERS: &[&str] = &[
    "event.outcome:failure",
    "NOT event.outcome:success",
    "source.ip:2001:db8::1",
    "source.ip:10.0.0.0/8",
    "user.name:(root OR admin)",
    "http.response.status_code:>=400",
    "-user.name:alice",
    "event.outcome:*",
];

const PIPES: &[&str] = &[
    "stats count() by event.outcome",
    "stats count() by source.ip, user.name",
    "stats count(), dc(user.name), min(http.response.status_code), max(source.ip) by event.outcome",
    "stats count(user.name) as named",
    "stats count()",
    "timechart span=10m count() by event.outcome",
    "timechart span=1h count()",
    "timechart span=7s count() by user.name",
    "top 3 source.ip",
    "rare 2 user.name, event.outcome",
    "stats count() by http.response.status_code | sort -count | head 2",
];

fn search_text(filters: &[usize], pipe: usize) -> String {
    let f: Vec<&str> = filters.iter().map(|i| FILTERS[*i]).collect();
    let filter = if f.is_empty() {
        "*".to_string()
    } else {
        f.join(" AND ")
    };
    format!("{filter} | {}", PIPES[pipe])
}

struct Store {
    _dir: tempfile::TempDir,
    ledger: std::path::PathBuf,
    index: Index,
    last: u64,
}

fn store(events: &[Ev], block_size: u32, cap: usize) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let mut ledger = Ledger::open(&ledger_dir, LedgerOptions::default()).unwrap();
    for e in events {
        ledger.append(json_of(e).as_bytes()).unwrap();
    }
    let last = ledger.commit().unwrap();
    let opts = IndexOptions {
        block_size,
        blocks_per_chunk: 2,
    };
    let (mut index, _) = Index::open(&dir.path().join("index"), opts).unwrap();
    for first in index.missing(last) {
        let (built, _) = build_chunk_with_cap(&ledger_dir, opts, first, cap).unwrap();
        index.install(built).unwrap();
    }
    Store {
        _dir: dir,
        ledger: ledger_dir,
        index,
        last,
    }
}

fn both(
    st: &Store,
    q: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (SearchResult, SearchResult) {
    let s = vigil_query::parse_search(q).unwrap();
    let params = SearchParams {
        since,
        until,
        up_to_seq: Some(st.last),
        ..SearchParams::default()
    };
    let full = run(&st.ledger, &s, &params).unwrap();
    let prepared = st.index.prepare(&s, since, until, 1, st.last);
    let cols = vigil_index::run_prepared(&st.ledger, &s, &params, prepared).unwrap();
    (full, cols)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn column_answers_equal_the_scan(
        events in prop::collection::vec(event(), 1..70),
        block_size in prop::sample::select(&[4u32, 8, 16][..]),
        cap in prop::sample::select(&[1usize, 3, 4096][..]),
        searches in prop::collection::vec(
            (prop::collection::vec(0..FILTERS.len(), 0..3), 0..PIPES.len()),
            1..5,
        ),
        range in prop::option::of((0i64..7200, 1i64..7200)),
        max_scan in prop::option::of(1u64..80),
    ) {
        let st = store(&events, block_size, cap);
        let (since, until) = match range {
            Some((a, len)) => (
                Some(base() + Duration::seconds(a)),
                Some(base() + Duration::seconds(a + len)),
            ),
            None => (None, None),
        };
        for (filters, pipe) in searches {
            let q = search_text(&filters, pipe);
            let (full, cols) = both(&st, &q, since, until);
            prop_assert_eq!(&full.table, &cols.table, "{}", q);
            prop_assert_eq!(&full.buckets, &cols.buckets, "{}", q);
            prop_assert_eq!(full.total, cols.total, "{}", q);
            prop_assert_eq!(full.partial_reason, cols.partial_reason, "{}", q);
            prop_assert!(cols.scanned + cols.from_columns <= full.scanned, "{}", q);

            // With an event budget, the same seqs are examined as by the
            // indexed scan without columns: the newest `max_scan` candidates.
            if let Some(max_scan) = max_scan {
                let s = vigil_query::parse_search(&q).unwrap();
                let prepared = st.index.prepare(&s, since, until, 1, st.last);
                let params = SearchParams {
                    since,
                    until,
                    max_scan,
                    up_to_seq: Some(st.last),
                    ranges: Some(prepared.candidates.ranges.clone()),
                    ..SearchParams::default()
                };
                let read = run(&st.ledger, &s, &params).unwrap();
                let cols = vigil_index::run_prepared(&st.ledger, &s, &params, prepared).unwrap();
                prop_assert_eq!(&read.table, &cols.table, "{} max_scan {}", q, max_scan);
                prop_assert_eq!(&read.buckets, &cols.buckets, "{}", q);
                prop_assert_eq!(read.total, cols.total, "{}", q);
                prop_assert_eq!(&read.partial_reason, &cols.partial_reason, "{}", q);
            }
        }
    }
}

/// Plain events where every block qualifies: everything indexed is
/// answered from columns, only the unindexed tail is read.
#[test]
fn whole_blocks_are_answered_from_columns_and_the_tail_is_read() {
    let events: Vec<Ev> = (0..50)
        .map(|i| Ev {
            time: Some(Ok(i * 60_000)),
            outcome: Some(json!(OUTCOMES[i as usize % 3])),
            ip: Some(json!(IPS[i as usize % 5])),
            user: Some(json!(USERS[i as usize % 4])),
            status: None,
            nested_ip: false,
            odd: 0,
        })
        .collect();
    let st = store(&events, 8, 64);
    // Three chunks of 16 seqs are indexed; 49..=50 is the tail.
    let (full, cols) = both(&st, "* | stats count() by event.outcome", None, None);
    assert_eq!(full.table, cols.table);
    assert_eq!(cols.from_columns, 48);
    assert_eq!(cols.scanned, 2);
    assert_eq!(full.scanned, 50);
    assert_eq!(cols.total, 50);

    // A time range that cuts a block: that block is read.
    let since = base() + Duration::minutes(3);
    let (full, cols) = both(&st, "* | timechart span=5m count()", Some(since), None);
    assert_eq!(full.buckets, cols.buckets);
    assert_eq!(cols.from_columns, 40);
    assert_eq!(cols.scanned, 8 + 2);

    // A raised cancel flag and a past deadline stop before any block is
    // answered, as they stop a scan before any event is read.
    let s = vigil_query::parse_search("* | stats count() by event.outcome").unwrap();
    let cancel = vigil_query::exec::Cancel::new();
    cancel.cancel();
    for params in [
        SearchParams {
            cancel: Some(cancel),
            ..SearchParams::default()
        },
        SearchParams {
            deadline: Some(std::time::Instant::now()),
            ..SearchParams::default()
        },
    ] {
        let prepared = st.index.prepare(&s, None, None, 1, st.last);
        let r = vigil_index::run_prepared(&st.ledger, &s, &params, prepared).unwrap();
        assert!(r.partial, "{r:?}");
        assert_eq!((r.from_columns, r.scanned, r.total), (0, 0, 0));
        let reason = r.partial_reason.unwrap();
        assert!(
            reason.contains("cancelled after 0 events") || reason.contains("timed out"),
            "{reason}"
        );
    }

    // Searches the columns cannot answer exactly are scanned.
    for q in [
        "* | stats sum(http.response.status_code) by event.outcome",
        "root | stats count() by event.outcome",
        "* | stats count() by message",
        "event.outcome:failure OR user.name:root | stats count()",
        "* | head 3 | stats count()",
    ] {
        let (full, cols) = both(&st, q, None, None);
        assert_eq!(full.table, cols.table, "{q}");
        assert_eq!(cols.from_columns, 0, "{q}");
    }
}
