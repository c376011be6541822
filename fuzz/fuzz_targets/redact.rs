//! Redaction with every built-in detector, over arbitrary text placed in an
//! event's message and original line, in mask and hash modes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_event::Event;
use vigil_parse::redact::{Kind, Mode, RedactConfig, Redactor};

fn redactors() -> &'static [Redactor; 2] {
    static R: OnceLock<[Redactor; 2]> = OnceLock::new();
    R.get_or_init(|| {
        let cfg = |mode| RedactConfig {
            kinds: Kind::ALL.to_vec(),
            mode,
            hash_key: Some(vec![7; 32]),
            ..RedactConfig::default()
        };
        [
            Redactor::new(cfg(Mode::Mask)).unwrap(),
            Redactor::new(cfg(Mode::Hash)).unwrap(),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for r in redactors() {
        let mut tally = r.tally();
        let _ = r.redact_text(s, &mut tally);
        let mut ev = Event::new();
        ev.set("message", s);
        ev.set("event.original", s);
        ev.set("url.full", s);
        r.redact(&mut ev, &mut tally);
        let _ = r.counts(&tally);
    }
});
