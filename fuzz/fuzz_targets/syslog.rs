//! The syslog parsers on arbitrary UTF-8: RFC 5424, RFC 3164, the dispatcher
//! and `apply` (syslog message → ECS fields) on every success.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use vigil_event::Event;
use vigil_parse::{syslog, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // A fixed "now" keeps year inference (and so any crash) reproducible.
    let opts = ParseOptions {
        now: Some(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()),
        ..ParseOptions::default()
    };
    let check = |m: &syslog::SyslogMessage| {
        if let Some(p) = m.priority {
            assert!(p <= 191, "priority out of range: {p}");
        }
        let mut ev = Event::new();
        syslog::apply(m, &mut ev);
        let bytes = ev.canonical_bytes();
        assert_eq!(Event::from_canonical(&bytes).unwrap(), ev);
    };
    if let Ok(m) = syslog::parse_rfc5424(s) {
        assert_eq!(m.protocol, syslog::Protocol::Rfc5424);
        check(&m);
    }
    if let Ok(m) = syslog::parse_rfc3164(s, &opts) {
        assert_eq!(m.protocol, syslog::Protocol::Rfc3164);
        check(&m);
    }
    match syslog::parse(s, &opts) {
        Ok(m) => check(&m),
        Err(e) => {
            // The error renders and points inside (or just past) the input.
            let _ = e.to_string();
            assert!(e.column <= s.len(), "column {} past {}", e.column, s.len());
        }
    }
});
