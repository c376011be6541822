//! `vigil_parse::parse_line` on arbitrary bytes.
//!
//! Invariants: parsing never panics, `event.original` is always set, and the
//! event survives the ledger round trip (`canonical_bytes` →
//! `Event::from_canonical`) unchanged, with stable canonical bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_event::Event;
use vigil_parse::{parse_line, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let ev = parse_line(data, &ParseOptions::default());
    assert!(
        ev.get_str("event.original").is_some(),
        "event.original missing: {ev:?}"
    );
    let bytes = ev.canonical_bytes();
    let back = Event::from_canonical(&bytes).expect("canonical bytes read back");
    assert_eq!(back, ev, "canonical round trip changed the event");
    assert_eq!(back.canonical_bytes(), bytes, "canonical bytes not stable");
});
