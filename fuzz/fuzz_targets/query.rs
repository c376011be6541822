//! The query parser on arbitrary UTF-8.
//!
//! On success the query is evaluated against a small fixed event (it must
//! not panic); on failure the rendered error must not panic and must hold no
//! raw control characters apart from its two line breaks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vigil_event::Event;

fn event() -> &'static Event {
    static EV: OnceLock<Event> = OnceLock::new();
    EV.get_or_init(|| {
        Event::from_json(
            json!({
                "@timestamp": "2024-01-12T06:30:00Z",
                "message": "Failed password for root from 203.0.113.9 port 52144 ssh2",
                "event": {"outcome": "failure", "category": ["authentication"], "action": "ssh_login"},
                "source": {"ip": "203.0.113.9", "port": 52144},
                "destination.ip": "2001:db8::1",
                "user": {"name": "root", "id": "0"},
                "process": [{"pid": 4721, "name": "sshd"}, {"pid": "1"}],
                "http": {"response": {"bytes": 1.5e3, "status_code": "404"}},
                "flag": true,
                "nothing": null,
                "ünïcödé": "ÉTÉ İstanbul",
            }),
            32,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match vigil_query::parse(s) {
        Ok(q) => {
            let _ = q.matches(event());
            let _ = q.matches(&Event::new());
        }
        Err(e) => {
            let r = e.render(s);
            let lines: Vec<&str> = r.split('\n').collect();
            assert_eq!(lines.len(), 3, "render has extra line breaks: {r:?}");
            assert!(
                !r.chars().any(|c| c.is_control() && c != '\n'),
                "raw control character in render: {r:?}"
            );
            assert!(lines[1].ends_with('^'), "no caret: {r:?}");
        }
    }
});
