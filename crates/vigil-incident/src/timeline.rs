//! The merged timeline of an incident: its alerts' sightings, its pinned
//! events at their own time, and its history, in one list sorted by time.

use vigil_alert::model::{parse_time, Millis};

use crate::model::{HistoryEntry, LinkedAlert, Pin, TimelineItem};
use crate::store::entity_text;

/// Alerts (first and last sighting), pinned events (at their own time) and
/// history, sorted by time; ties keep that order.
pub fn merge(
    alerts: &[LinkedAlert],
    pins: &[Pin],
    history: &[(Millis, HistoryEntry)],
) -> Vec<TimelineItem> {
    let ms = |s: &str| parse_time(s).unwrap_or_default();
    let mut items: Vec<(Millis, TimelineItem)> = Vec::new();
    for a in alerts {
        let what = format!("[{}] {}", a.level.as_str(), a.rule_name);
        items.push((
            ms(&a.first_seen),
            TimelineItem {
                at: a.first_seen.clone(),
                kind: "alert_first_seen".into(),
                actor: String::new(),
                text: format!("{what} first seen ({})", entity_text(&a.entity)),
                alert_id: Some(a.alert_id.clone()),
                seq: a.evidence_seqs.first().copied(),
            },
        ));
        if a.last_seen != a.first_seen {
            items.push((
                ms(&a.last_seen),
                TimelineItem {
                    at: a.last_seen.clone(),
                    kind: "alert_last_seen".into(),
                    actor: String::new(),
                    text: format!("{what} last seen (count {})", a.count),
                    alert_id: Some(a.alert_id.clone()),
                    seq: None,
                },
            ));
        }
    }
    for p in pins {
        let at = p.event_at.clone().unwrap_or_else(|| p.pinned_at.clone());
        items.push((
            ms(&at),
            TimelineItem {
                at,
                kind: "event".into(),
                actor: String::new(),
                text: if p.note.is_empty() {
                    format!("event {}", p.seq)
                } else {
                    format!("event {}: {}", p.seq, p.note)
                },
                alert_id: None,
                seq: Some(p.seq),
            },
        ));
    }
    for (at, h) in history {
        items.push((
            *at,
            TimelineItem {
                at: h.at.clone(),
                kind: h.kind.clone(),
                actor: h.actor.clone(),
                text: h.text.clone(),
                alert_id: None,
                seq: None,
            },
        ));
    }
    items.sort_by_key(|(t, _)| *t);
    items.into_iter().map(|(_, i)| i).collect()
}
