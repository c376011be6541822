//! The index may only skip what cannot match: for random events and random
//! queries, every event the exact matcher accepts lies in a block the index
//! keeps.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vigil_event::Event;
use vigil_index::{ChunkBuilder, Need};

const WORDS: &[&str] = &[
    "sshd",
    "Failed",
    "password",
    "ROOT",
    "admin",
    "ÉTÉ",
    "été",
    "Σίσυφος",
    "x",
    "ab",
    "GET /login?id=1",
    "C:\\Windows\\cmd.exe",
    "Failed password for root",
];
const IPS: &[&str] = &[
    "203.0.113.9",
    "10.0.0.1",
    "2001:DB8::1",
    "2001:db8:0:0::1",
    "::ffff:203.0.113.9",
    "::ffff:cb00:7109",
];
const FIELDS: &[&str] = &[
    "message",
    "user.name",
    "source.ip",
    "event.code",
    "tags",
    "n",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(WORDS).prop_map(|s| json!(s)),
        prop::sample::select(IPS).prop_map(|s| json!(s)),
        (-3i64..5000).prop_map(|n| json!(n)),
        prop::sample::select(&[22.0f64, 1000.0, 1.5, -0.0, 4625.0][..]).prop_map(|f| json!(f)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!("4625")),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => prop::collection::vec(scalar(), 1..3)
            .prop_map(|v| json!([{"name": v[0].clone()}, {"name": v.last().cloned()}])),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((prop::sample::select(FIELDS), value()), 0..5),
        prop::option::of(0i64..100),
    )
        .prop_map(|(fields, t)| {
            let mut m = Map::new();
            for (f, v) in fields {
                // Both nested and dotted-key spellings, as shippers send them.
                match f.split_once('.') {
                    Some((a, b)) if v.is_string() => {
                        m.entry(a.to_string())
                            .or_insert_with(|| json!({}))
                            .as_object_mut()
                            .map(|o| o.insert(b.to_string(), v));
                    }
                    _ => {
                        m.insert(f.to_string(), v);
                    }
                }
            }
            if let Some(t) = t {
                m.insert(
                    "@timestamp".into(),
                    json!(format!("2024-03-01T00:00:{:02}.5Z", t % 60)),
                );
            }
            Value::Object(m)
        })
}

fn term() -> impl Strategy<Value = String> {
    let lit = prop_oneof![
        prop::sample::select(WORDS).prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\"))),
        prop::sample::select(
            &[
                "sshd",
                "root",
                "fail*word",
                "*dmi?",
                "été",
                "ÉTÉ",
                "4625",
                "22",
                "22.0",
                "1e3",
                "1000",
                "true",
                "203.0.113.9",
                "2001:db8::1",
                "ab",
                "ssh*"
            ][..]
        )
        .prop_map(str::to_string),
    ];
    prop_oneof![
        lit.clone(),
        (prop::sample::select(FIELDS), lit).prop_map(|(f, l)| format!("{f}:{l}")),
        prop::sample::select(FIELDS).prop_map(|f| format!("{f}:*")),
        Just("source.ip:203.0.113.0/24".to_string()),
        Just("n:>100".to_string()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec((term(), 0u8..4), 1..4).prop_map(|parts| {
        let mut q = String::new();
        for (i, (t, op)) in parts.into_iter().enumerate() {
            if i > 0 {
                q.push_str([" AND ", " OR ", " ", " OR NOT "][op as usize]);
            }
            q.push_str(&t);
        }
        q
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn blocks_kept_cover_every_match(
        events in prop::collection::vec(event(), 1..24),
        q in query(),
        since in prop::option::of(0i64..60),
    ) {
        let Ok(query) = vigil_query::parse(&q) else { return Ok(()); };
        let need = Need::of(&query.root);
        let parsed: Vec<Event> = events
            .into_iter()
            .filter_map(|v| Event::from_json(v, 32).ok())
            .collect();
        let mut b = ChunkBuilder::new(1, 3);
        for (i, ev) in parsed.iter().enumerate() {
            b.push(i as u64 + 1, ev).unwrap();
        }
        let chunk = b.finish(parsed.len().div_ceil(3).max(1));
        let base = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z").unwrap();
        let since_t = since.map(|s| base + chrono::Duration::seconds(s));
        let since_ms = since_t.map(|t| t.timestamp_millis());
        for (i, ev) in parsed.iter().enumerate() {
            let in_time = since_t.is_none_or(|s| ev.timestamp().is_some_and(|t| t >= s));
            if in_time && query.matches(ev) {
                let blk = &chunk.blocks[i / 3];
                prop_assert!(
                    blk.may_overlap(since_ms, None) && need.admits(&|g| blk.may_have(g)),
                    "query {q:?} matches event {i} ({}) but its block is skipped",
                    ev.to_json()
                );
            }
        }
    }
}
