//! Gap detection on sender-side sequence numbers.
//!
//! Some senders number their messages: RFC 5424's `meta sequenceId`
//! structured-data parameter, or ECS `event.sequence` in JSON. A number that
//! jumps ahead means messages were lost before they reached Vigil (or were
//! suppressed on the way); a number that falls back means the sender's
//! counter restarted. Either is written to the ledger as a `vigil.integrity`
//! event, so the loss itself is on record and searchable.

use std::collections::HashMap;

use vigil_event::{fields, Event};

/// The most senders tracked at once; beyond it the table is cleared, so a
/// flood of spoofed sources costs memory only up to this bound.
const MAX_TRACKED: usize = 100_000;

/// A sender's message number, taken from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSeq {
    /// Who numbers: source, host and application.
    pub key: String,
    /// The sender's number for this message.
    pub n: u64,
}

/// Reads the sender's sequence number from a decoded event, if it has one.
pub fn source_seq(ev: &Event) -> Option<SourceSeq> {
    let n = ev
        .get("log.syslog.structured_data.meta.sequenceId")
        .or_else(|| ev.get("event.sequence"))
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })?;
    let part = |p: &str| ev.get_str(p).unwrap_or("-").to_string();
    Some(SourceSeq {
        key: format!(
            "{} {} {}",
            part(fields::VIGIL_SOURCE),
            part(fields::HOST_NAME),
            part(fields::PROCESS_NAME)
        ),
        n,
    })
}

/// Last number seen per sender.
#[derive(Debug, Default)]
pub struct GapTracker {
    last: HashMap<String, u64>,
}

impl GapTracker {
    /// Records `s`; returns an integrity event when it is not the expected next number.
    pub fn observe(&mut self, s: &SourceSeq) -> Option<Event> {
        if self.last.len() >= MAX_TRACKED && !self.last.contains_key(&s.key) {
            self.last.clear();
        }
        let prev = self.last.insert(s.key.clone(), s.n)?;
        if s.n == prev.wrapping_add(1) {
            return None;
        }
        let mut ev = Event::new();
        ev.set(fields::EVENT_KIND, "event");
        ev.set(fields::EVENT_DATASET, "vigil.integrity");
        ev.push(fields::EVENT_CATEGORY, "host");
        ev.set("vigil.integrity.sender", s.key.clone());
        ev.set("vigil.integrity.expected", prev.wrapping_add(1));
        ev.set("vigil.integrity.received", s.n);
        if s.n > prev {
            let missing = s.n - prev - 1;
            ev.set(fields::EVENT_ACTION, "source_sequence_gap");
            ev.set(fields::EVENT_OUTCOME, "failure");
            ev.set("vigil.integrity.missing", missing);
            ev.set(
                fields::MESSAGE,
                format!(
                    "sender {} skipped {missing} message(s): expected sequence {} but received {}",
                    s.key,
                    prev + 1,
                    s.n
                ),
            );
        } else {
            ev.set(fields::EVENT_ACTION, "source_sequence_restart");
            ev.set(fields::EVENT_OUTCOME, "unknown");
            ev.set(
                fields::MESSAGE,
                format!(
                    "sender {} restarted its sequence: expected {} but received {}",
                    s.key,
                    prev.wrapping_add(1),
                    s.n
                ),
            );
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seq(key: &str, n: u64) -> SourceSeq {
        SourceSeq { key: key.into(), n }
    }

    #[test]
    fn gaps_and_restarts() {
        let mut t = GapTracker::default();
        assert!(t.observe(&seq("a", 1)).is_none());
        assert!(t.observe(&seq("a", 2)).is_none());
        assert!(t.observe(&seq("b", 7)).is_none());
        let gap = t.observe(&seq("a", 6)).unwrap();
        assert_eq!(gap.get_str("event.action"), Some("source_sequence_gap"));
        assert_eq!(gap.get_i64("vigil.integrity.missing"), Some(3));
        let restart = t.observe(&seq("a", 1)).unwrap();
        assert_eq!(
            restart.get_str("event.action"),
            Some("source_sequence_restart")
        );
        assert!(t.observe(&seq("a", 2)).is_none());
    }

    #[test]
    fn reads_rfc5424_meta_and_ecs_sequence() {
        let ev = Event::from_json(
            json!({"log":{"syslog":{"structured_data":{"meta":{"sequenceId":"42"}}}},"host":{"name":"h"},"vigil":{"source":"10.0.0.1"}}),
            16,
        )
        .unwrap();
        assert_eq!(source_seq(&ev), Some(seq("10.0.0.1 h -", 42)));
        let ev = Event::from_json(json!({"event":{"sequence":9}}), 16).unwrap();
        assert_eq!(source_seq(&ev).unwrap().n, 9);
        assert!(source_seq(&Event::new()).is_none());
    }
}
