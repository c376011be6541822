//! The incident model: [`Status`] and its transition table, the
//! [`Incident`], what hangs off it ([`LinkedAlert`], [`Pin`],
//! [`HistoryEntry`]), the merged [`TimelineItem`] view, and the
//! [`Change`]s worth recording in the ledger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use vigil_alert::model::Level;
use vigil_alert::model::Millis;

/// An incident's id: 32 hex digits (random 128 bits).
pub type IncidentId = String;

/// Longest title.
pub const MAX_TITLE: usize = 256;
/// Longest note or timeline text.
pub const MAX_NOTE: usize = 4096;
/// Longest assignee or actor name.
pub const MAX_NAME: usize = 128;
/// Most tags on one incident.
pub const MAX_TAGS: usize = 32;
/// Longest tag.
pub const MAX_TAG: usize = 64;
/// Most alerts linked to one incident.
pub const MAX_ALERTS: usize = 10_000;
/// Most pinned events on one incident.
pub const MAX_PINS: usize = 1_000;
/// Most history entries on one incident (notes and other changes).
pub const MAX_HISTORY: usize = 20_000;
/// Longest timeline kind given to [`crate::Store::add_timeline`].
pub const MAX_KIND: usize = 32;

/// Where an incident is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened, nobody has looked at it yet.
    New,
    /// Somebody owns it.
    Acknowledged,
    /// Being looked into.
    Investigating,
    /// The damage is stopped; clean-up may remain.
    Contained,
    /// Done: it was real and is dealt with.
    Resolved,
    /// Done: it was not an attack.
    FalsePositive,
}

/// Every status, in workflow order.
pub const STATUSES: [Status; 6] = [
    Status::New,
    Status::Acknowledged,
    Status::Investigating,
    Status::Contained,
    Status::Resolved,
    Status::FalsePositive,
];

/// The workflow: which status may follow which. Anything not listed is
/// refused. `resolved` and `false_positive` can only be reopened, and a
/// reopened incident goes back to `investigating`.
pub const TRANSITIONS: &[(Status, &[Status])] = &[
    (Status::New, &[Status::Acknowledged, Status::FalsePositive]),
    (
        Status::Acknowledged,
        &[
            Status::Investigating,
            Status::Resolved,
            Status::FalsePositive,
        ],
    ),
    (
        Status::Investigating,
        &[Status::Contained, Status::Resolved, Status::FalsePositive],
    ),
    (
        Status::Contained,
        &[Status::Investigating, Status::Resolved],
    ),
    (Status::Resolved, &[Status::Investigating]),
    (Status::FalsePositive, &[Status::Investigating]),
];

impl Status {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Investigating => "investigating",
            Status::Contained => "contained",
            Status::Resolved => "resolved",
            Status::FalsePositive => "false_positive",
        }
    }

    /// Parses a stored or API name.
    pub fn parse(s: &str) -> Option<Status> {
        STATUSES.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the incident is finished (`resolved` or `false_positive`).
    pub fn is_closed(self) -> bool {
        matches!(self, Status::Resolved | Status::FalsePositive)
    }

    /// The statuses that may follow this one.
    pub fn next(self) -> &'static [Status] {
        TRANSITIONS
            .iter()
            .find(|(from, _)| *from == self)
            .map_or(&[], |(_, to)| to)
    }

    /// Whether `self → to` is in [`TRANSITIONS`].
    pub fn can_become(self, to: Status) -> bool {
        self.next().contains(&to)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incident as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Id.
    pub id: IncidentId,
    /// Short description (from the opening alert unless given).
    pub title: String,
    /// Severity: the highest level of its alerts unless set by hand.
    pub severity: Level,
    /// Workflow status.
    pub status: Status,
    /// Who owns it (empty: nobody).
    pub assignee: String,
    /// Labels set by people.
    pub tags: Vec<String>,
    /// The entity of the alert that opened it (`source.ip`, `user.name`, `host.name`).
    pub entity: BTreeMap<String, String>,
    /// ATT&CK tactics of its alerts (`credential_access`, …), in kill-chain order.
    pub tactics: Vec<String>,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
    /// Detection: the first sighting of its earliest alert (RFC 3339).
    pub detected_at: String,
    /// Event time of the earliest evidence behind its alerts, when known (RFC 3339).
    pub evidence_at: Option<String>,
    /// First left `new` (RFC 3339).
    pub acknowledged_at: Option<String>,
    /// Last became `resolved` or `false_positive` (RFC 3339); cleared on reopening.
    pub resolved_at: Option<String>,
    /// Number of linked alerts.
    pub alert_count: u64,
}

/// An alert linked to an incident, as it was when last seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedAlert {
    /// Alert id.
    pub alert_id: String,
    /// Rule name.
    pub rule_name: String,
    /// Rule id.
    pub rule_id: String,
    /// Level.
    pub level: Level,
    /// Tags.
    pub tags: Vec<String>,
    /// Entity.
    pub entity: BTreeMap<String, String>,
    /// First sighting (RFC 3339).
    pub first_seen: String,
    /// Latest sighting (RFC 3339).
    pub last_seen: String,
    /// Sightings.
    pub count: u64,
    /// Ledger seqs of the alert events and their evidence.
    pub evidence_seqs: Vec<u64>,
    /// Event time of its earliest evidence, when known (RFC 3339).
    pub evidence_at: Option<String>,
    /// Linked (RFC 3339).
    pub linked_at: String,
    /// Who linked it (`vigil` for the grouping policy).
    pub linked_by: String,
    /// Why: `opened`, `entity`, `chain`, `manual`.
    pub reason: String,
}

/// An event pinned as evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pin {
    /// Ledger seq of the event.
    pub seq: u64,
    /// Why it matters.
    pub note: String,
    /// The event's own time (`@timestamp`), when known (RFC 3339).
    pub event_at: Option<String>,
    /// Pinned (RFC 3339).
    pub pinned_at: String,
    /// Who pinned it.
    pub actor: String,
}

/// One entry of an incident's history (every change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// When (RFC 3339).
    pub at: String,
    /// `created`, `alert_linked`, `alert_detached`, `status_changed`,
    /// `assignee_changed`, `severity_changed`, `tags_changed`, `note_added`,
    /// `event_pinned`, or a kind given to [`crate::Store::add_timeline`].
    pub kind: String,
    /// Who (`vigil` for the grouping policy, else the principal's name).
    pub actor: String,
    /// What, for people.
    pub text: String,
}

/// One line of the merged timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineItem {
    /// When (RFC 3339).
    pub at: String,
    /// `alert_first_seen`, `alert_last_seen`, `event` (a pinned event at its
    /// own time), or a history kind.
    pub kind: String,
    /// Who (empty for alert sightings and events).
    pub actor: String,
    /// What, for people.
    pub text: String,
    /// The alert concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// The ledger seq concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// An incident with everything attached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Linked alerts, oldest first.
    pub alerts: Vec<LinkedAlert>,
    /// Pinned events, in pin order.
    pub pins: Vec<Pin>,
    /// Every change, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Alerts, pinned events and history merged and sorted by time.
    pub timeline: Vec<TimelineItem>,
}

/// A change worth recording in the ledger (`event.dataset: vigil.incident`,
/// `event.action: incident_<action>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The history kind (`created`, `status_changed`, `note_added`, …).
    pub action: String,
    /// The incident.
    pub incident_id: IncidentId,
    /// Its title.
    pub title: String,
    /// Its status after the change.
    pub status: Status,
    /// Its severity after the change.
    pub severity: Level,
    /// Who.
    pub actor: String,
    /// The history text.
    pub detail: String,
    /// The alert linked or detached.
    pub alert_id: Option<String>,
    /// The event pinned.
    pub seq: Option<u64>,
    /// When (ms since the epoch).
    pub at: Millis,
}
