//! Searches with pipes on arbitrary UTF-8, run over a few fixed events.
//!
//! Besides not panicking, three fast paths must agree with the exact
//! matcher on every event the query matches: the byte pre-check
//! (`RawFilter`) must not reject it, and an index block holding only that
//! event must not be skipped (`vigil-index`'s `Need`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vigil_event::Event;
use vigil_index::{ChunkBuilder, Need};
use vigil_query::rawfilter::RawFilter;
use vigil_query::Executor;

fn events() -> &'static [Event] {
    static EVS: OnceLock<Vec<Event>> = OnceLock::new();
    EVS.get_or_init(|| {
        [
            json!({
                "@timestamp": "2024-01-12T06:30:00Z",
                "message": "Failed password for root from 203.0.113.9 port 52144 ssh2",
                "event": {"outcome": "failure", "category": ["authentication"], "code": 4625},
                "source": {"ip": "203.0.113.9", "port": 52144},
                "destination.ip": "2001:DB8:0:0::1",
                "user": {"name": "ROOT"},
                "process": [{"pid": 4721, "name": "sshd"}, {"pid": "1"}],
                "http": {"response": {"bytes": 1.5e3}},
                "flag": true,
            }),
            json!({
                "@timestamp": "2024-01-12T07:00:00.5Z",
                "message": "ÉTÉ İstanbul \u{212a}elvin \"quoted\" C:\\Windows",
                "source": {"ip": "::ffff:cb00:7109"},
                "n": 22.0,
                "tags": ["a|b", "-x"],
            }),
            json!({"m": "x"}),
        ]
        .into_iter()
        .map(|v| Event::from_json(v, 32).unwrap())
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(search) = vigil_query::parse_search(s) else {
        return;
    };
    let raw = RawFilter::of(&search.query);
    let need = Need::of(&search.query.root);
    let mut scratch = Vec::new();
    for ev in events() {
        if !search.query.matches(ev) {
            continue;
        }
        let bytes = ev.canonical_bytes();
        if let Some(f) = &raw {
            assert!(f.may_match(&bytes, &mut scratch), "byte pre-check rejects a match: {s:?}");
        }
        let mut b = ChunkBuilder::new(1, 1);
        b.push_bytes(1, &bytes).unwrap();
        let chunk = b.finish(1);
        assert!(
            need.admits(&|k| chunk.blocks[0].may_have(k)),
            "index skips a match: {s:?}"
        );
    }
    if let Ok(mut ex) = Executor::new(&search.pipeline, 100) {
        for ev in events() {
            if search.query.matches(ev) {
                ex.push(ev);
            }
        }
        let _ = ex.finish();
    }
});
