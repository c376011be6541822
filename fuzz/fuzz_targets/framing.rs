//! The RFC 6587 stream framer fed an arbitrary stream in two pushes.
//!
//! Byte 0 picks the split point, byte 1 the message limit (1..=64); the rest
//! is the stream. Invariants: no panic, no frame longer than the limit, no
//! more bytes framed than were pushed, nothing after an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_ingest::framing::{FrameEvent, Framer};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[1] % 64) + 1;
    let stream = &data[2..];
    let split = usize::from(data[0]) % (stream.len() + 1);
    let (a, b) = stream.split_at(split);

    let mut f = Framer::new(max);
    let mut events = Vec::new();
    f.push(a);
    while let Some(e) = f.next_event() {
        events.push(e);
    }
    f.push(b);
    while let Some(e) = f.next_event() {
        events.push(e);
    }
    events.extend(f.finish());

    let mut framed = 0usize;
    let mut failed = false;
    for e in &events {
        assert!(!failed, "event after an error: {events:?}");
        match e {
            FrameEvent::Frame(fr) => {
                assert!(
                    fr.bytes.len() <= max,
                    "frame of {} bytes over the limit {max}",
                    fr.bytes.len()
                );
                assert!(!fr.bytes.is_empty() || fr.truncated, "empty frame");
                framed += fr.bytes.len();
            }
            FrameEvent::Error { offset, .. } => {
                assert!(
                    *offset <= stream.len() as u64,
                    "error offset past the input"
                );
                failed = true;
            }
        }
    }
    assert!(
        framed <= stream.len(),
        "framed {framed} of {} bytes",
        stream.len()
    );
});
