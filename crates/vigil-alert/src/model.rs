//! The alert model: what an alert event contributes ([`AlertInput`]), the
//! tracked [`Alert`], its [`Status`], and the [`Change`]s worth recording
//! in the ledger.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_event::Event;

/// Fields of an alert event that name its entity.
pub const ENTITY_FIELDS: [&str; 3] = ["source.ip", "user.name", "host.name"];

/// Longest text kept from an alert event field (rule name, message, tag).
pub const MAX_TEXT: usize = 1024;

/// Most tags kept from one alert event.
pub const MAX_TAGS: usize = 64;

/// A Sigma level, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `informational`
    #[default]
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Level {
    /// The Sigma name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The level stored as its rank (0 informational … 4 critical, as the
    /// stores keep it); anything else is informational.
    pub fn from_rank(n: i64) -> Level {
        match n {
            1 => Level::Low,
            2 => Level::Medium,
            3 => Level::High,
            4 => Level::Critical,
            _ => Level::Informational,
        }
    }

    /// Parses a Sigma level name.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// New, nobody has looked at it.
    Open,
    /// Somebody is on it; repeats still raise its count.
    Acknowledged,
    /// Done; a repeat opens a new alert.
    Closed,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "open" => Status::Open,
            "acknowledged" => Status::Acknowledged,
            "closed" => Status::Closed,
            _ => return None,
        })
    }
}

/// What one alert event (a Sigma match, a correlation, a detector's
/// finding) contributes to the alert store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertInput {
    /// `rule.id` (the rule name when the rule has no id).
    pub rule_id: String,
    /// `rule.name`.
    pub rule_name: String,
    /// `vigil.alert.level`.
    pub level: Level,
    /// `tags`.
    pub tags: Vec<String>,
    /// The entity fields present on the event.
    pub entity: BTreeMap<String, String>,
    /// `message`.
    pub message: String,
    /// The alert event's own seq, then its evidence seqs.
    pub seqs: Vec<u64>,
    /// Whether the event already had more evidence than it listed.
    pub evidence_truncated: bool,
    /// The alert event's own ledger seq (`vigil.seq`), by which the store
    /// knows how far through the ledger it has recorded.
    pub seq: Option<u64>,
}

/// Why an event cannot be read as an alert.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    /// `event.kind` is not `alert`.
    #[error("event.kind is not \"alert\"")]
    NotAlert,
    /// Neither `rule.id` nor `rule.name` is present.
    #[error("the alert event has neither rule.id nor rule.name")]
    NoRule,
}

fn text(v: &str) -> String {
    let mut s: String = v.chars().take(MAX_TEXT).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    s
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(text(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl AlertInput {
    /// Reads an alert event as stored in the ledger.
    pub fn from_event(ev: &Event) -> Result<AlertInput, InputError> {
        if ev.get_str("event.kind") != Some("alert") {
            return Err(InputError::NotAlert);
        }
        let rule_name = ev.get_str("rule.name").map(text);
        let rule_id = ev
            .get_str("rule.id")
            .map(text)
            .or_else(|| rule_name.clone());
        let Some(rule_id) = rule_id else {
            return Err(InputError::NoRule);
        };
        let level = ev
            .get_str("vigil.alert.level")
            .and_then(Level::parse)
            .unwrap_or_default();
        let tags = match ev.get("tags") {
            Some(Value::Array(a)) => a.iter().filter_map(scalar).take(MAX_TAGS).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => Vec::new(),
        };
        let entity = ENTITY_FIELDS
            .iter()
            .filter_map(|f| ev.get(f).and_then(scalar).map(|v| (f.to_string(), v)))
            .collect();
        let seq = ev.get("vigil.seq").and_then(Value::as_u64);
        let mut seqs: Vec<u64> = seq.into_iter().collect();
        match ev.get("vigil.alert.evidence_seqs") {
            Some(Value::Array(a)) => seqs.extend(a.iter().filter_map(Value::as_u64)),
            _ => seqs.extend(ev.get("vigil.alert.evidence_seq").and_then(Value::as_u64)),
        }
        let evidence_truncated = ev
            .get("vigil.alert.evidence_truncated")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(AlertInput {
            rule_name: rule_name.unwrap_or_else(|| rule_id.clone()),
            rule_id,
            level,
            tags,
            entity,
            message: ev.get_str("message").map(text).unwrap_or_default(),
            seqs,
            evidence_truncated,
            seq,
        })
    }

    /// The value of an alert field as suppressions and maintenance windows
    /// compare it: `rule.id`, `rule.name`, `level`, an entity field, or
    /// `tags` (true when any tag equals).
    pub fn field_matches(&self, field: &str, want: &str) -> bool {
        match field {
            "rule.id" => self.rule_id == want,
            "rule.name" => self.rule_name == want,
            "level" | "vigil.alert.level" => self.level.as_str() == want,
            "tags" => self.tags.iter().any(|t| t == want),
            f => self.entity.get(f).is_some_and(|v| v == want),
        }
    }

    /// Whether every `field = value` pair holds.
    pub fn matches_all(&self, pairs: &BTreeMap<String, String>) -> bool {
        pairs.iter().all(|(k, v)| self.field_matches(k, v))
    }

    /// The grouping key over `fields` (absent fields count as empty).
    pub fn group_key(&self, fields: &[String]) -> String {
        let mut key = String::new();
        for f in fields {
            let v = match f.as_str() {
                "rule.id" => Some(self.rule_id.as_str()),
                "rule.name" => Some(self.rule_name.as_str()),
                "level" => Some(self.level.as_str()),
                other => self.entity.get(other).map(String::as_str),
            };
            key.push_str(f);
            key.push('=');
            key.push_str(v.unwrap_or(""));
            key.push('\u{1f}');
        }
        key
    }
}

/// A tracked alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Random id (32 hex digits).
    pub id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule name.
    pub rule_name: String,
    /// Sigma level.
    pub level: Level,
    /// Tags (ATT&CK tactics and techniques among them).
    pub tags: Vec<String>,
    /// Entity fields.
    pub entity: BTreeMap<String, String>,
    /// The first alert event's message.
    pub message: String,
    /// Grouping key.
    pub group_key: String,
    /// First sighting (RFC 3339).
    pub first_seen: String,
    /// Latest sighting (RFC 3339).
    pub last_seen: String,
    /// Sightings grouped into this alert.
    pub count: u64,
    /// Ledger seqs of the alert events and their evidence, oldest first, capped.
    pub evidence_seqs: Vec<u64>,
    /// Whether seqs were dropped beyond the cap.
    pub evidence_truncated: bool,
    /// Status.
    pub status: Status,
    /// Whether a suppression rule matched when the alert was opened.
    pub suppressed: bool,
    /// The suppression that matched.
    pub suppression_id: Option<String>,
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// When (RFC 3339).
    pub at: String,
    /// What: `created`, `count_raised`, `acknowledged`, `closed`,
    /// `suppressed`, `notification_queued`, `notification_held`, …
    pub action: String,
    /// Who (`vigil` for the engine, else the API token's name).
    pub actor: String,
    /// Details.
    pub detail: String,
}

/// A state change worth recording in the ledger (`event.kind: alert`,
/// `event.action: alert_<action>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `created`, `count_raised`, `acknowledged`, `closed`, `suppressed`,
    /// `delivery_dead`.
    pub action: &'static str,
    /// The alert.
    pub alert_id: String,
    /// Its rule.
    pub rule_id: String,
    /// Its rule name.
    pub rule_name: String,
    /// Its level.
    pub level: Level,
    /// Its count after the change.
    pub count: u64,
    /// Who.
    pub actor: String,
    /// Details (the reason, the channel, the error).
    pub detail: String,
}

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Formats milliseconds as RFC 3339 (UTC, milliseconds).
pub fn format_ms(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses RFC 3339 into milliseconds.
pub fn parse_time(s: &str) -> Result<Millis, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))
}

/// Now, in milliseconds.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// A random 128-bit id in hex.
pub fn new_id() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        Event::from_json(v, 32).unwrap()
    }

    #[test]
    fn reads_sigma_correlation_and_detector_alerts() {
        let sigma = ev(json!({
            "event": {"kind": "alert", "dataset": "vigil.alert"},
            "rule": {"id": "r-1", "name": "SSH root"},
            "vigil": {"seq": 12, "alert": {"level": "high", "evidence_seq": 11}},
            "tags": ["attack.t1110.001", "attack.credential_access"],
            "user": {"name": "root"}, "source": {"ip": "203.0.113.9"}, "host": {"name": "bastion"},
            "message": "Sigma: SSH root",
        }));
        let a = AlertInput::from_event(&sigma).unwrap();
        assert_eq!(a.rule_id, "r-1");
        assert_eq!(a.level, Level::High);
        assert_eq!(a.seqs, [12, 11]);
        assert_eq!(a.entity.len(), 3);
        assert!(a.field_matches("tags", "attack.credential_access"));
        assert!(a.field_matches("level", "high"));
        assert!(!a.field_matches("user.name", "alice"));

        // A correlation lists every contributing seq; a rule without id is keyed by name.
        let corr = ev(json!({
            "event": {"kind": "alert"},
            "rule": {"name": "Many failures"},
            "vigil": {"seq": 40, "alert": {"evidence_seq": 39, "evidence_seqs": [30, 35, 39],
                      "evidence_truncated": true}},
        }));
        let c = AlertInput::from_event(&corr).unwrap();
        assert_eq!(c.rule_id, "Many failures");
        assert_eq!(c.level, Level::Informational);
        assert_eq!(c.seqs, [40, 30, 35, 39]);
        assert!(c.evidence_truncated);

        assert_eq!(
            AlertInput::from_event(&ev(json!({"event": {"kind": "event"}}))),
            Err(InputError::NotAlert)
        );
        assert_eq!(
            AlertInput::from_event(&ev(json!({"event": {"kind": "alert"}}))),
            Err(InputError::NoRule)
        );
    }

    #[test]
    fn long_text_is_cut_and_group_keys_differ_by_entity() {
        let long = "x".repeat(MAX_TEXT * 2);
        let a = AlertInput::from_event(&ev(json!({
            "event": {"kind": "alert"}, "rule": {"id": "r", "name": long},
            "user": {"name": "a"},
        })))
        .unwrap();
        assert_eq!(a.rule_name.chars().count(), MAX_TEXT + 1);
        let mut b = a.clone();
        b.entity.insert("user.name".into(), "b".into());
        let by: Vec<String> = vec!["rule.id".into(), "user.name".into()];
        assert_ne!(a.group_key(&by), b.group_key(&by));
        assert_eq!(
            a.group_key(&["rule.id".into()]),
            b.group_key(&["rule.id".into()])
        );
    }
}
