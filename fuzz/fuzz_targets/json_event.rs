//! `vigil_parse::parse_json` on any JSON value, with small limits.
//!
//! Invariants: no panic; an accepted event respects the depth and field
//! limits it was parsed under (plus the few fields Vigil adds), keeps
//! `event.original`, and survives the canonical round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vigil_event::Event;
use vigil_parse::ParseOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let opts = ParseOptions {
        max_json_depth: 4,
        max_fields: 16,
        ..ParseOptions::default()
    };
    if let Ok(ev) = vigil_parse::parse_json(v, &opts) {
        assert!(
            ev.contains("event.original"),
            "event.original missing: {ev:?}"
        );
        let bytes = ev.canonical_bytes();
        let back = Event::from_canonical(&bytes).expect("canonical bytes read back");
        assert_eq!(back, ev, "canonical round trip changed the event");
    }
});
