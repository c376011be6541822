//! The index's walker over stored event bytes, on arbitrary bytes: it must
//! not panic, and on canonical event bytes (what the ledger holds) it must
//! give exactly the keys computed from the decoded event, so the fast
//! reader never makes the index miss a value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_index::grams::{decoded_event_keys, event_keys};

fuzz_target!(|data: &[u8]| {
    let mut keys = Vec::new();
    let _ = event_keys(data, &mut |k| keys.push(k));
    let Ok(ev) = vigil_event::Event::from_canonical(data) else {
        return;
    };
    if ev.canonical_bytes() != data {
        return;
    }
    let mut expect = Vec::new();
    decoded_event_keys(&ev, &mut |k| expect.push(k));
    keys.sort_unstable();
    keys.dedup();
    expect.sort_unstable();
    expect.dedup();
    assert_eq!(keys, expect, "walker and decoder disagree on {:?}", String::from_utf8_lossy(data));
});
