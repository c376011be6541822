//! The incident store: incidents, their linked alerts, pinned events and
//! history, in one SQLite file (`incidents.db`, WAL, owner-only).
//!
//! Every change is one transaction that also writes a history entry (with
//! actor and time) and queues a [`Change`]; the caller drains the queue
//! with [`Store::take_changes`] to record the changes in the ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use vigil_alert::model::{format_ms, new_id, now_ms, parse_time, Alert, Level, Millis};

use crate::model::*;
use crate::policy::{self, AlertFacts, Candidate, Decision, IncidentsConfig};

/// A store failure, naming what was being done or what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// SQLite failed.
    #[error("incident store: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// No incident (or linked alert, or pin) with this id.
    #[error("no {what} {id:?}")]
    NotFound {
        /// `incident`, `linked alert`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The workflow does not allow this step.
    #[error("an incident cannot go from {from} to {to} (from {from} it can go to: {allowed})")]
    IllegalTransition {
        /// The current status.
        from: Status,
        /// The status asked for.
        to: Status,
        /// What the table allows from `from`.
        allowed: String,
    },
    /// A value is missing, too long or malformed; the text names the field.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the stored state (e.g. an alert linked elsewhere).
    #[error("{0}")]
    Conflict(String),
    /// The store could not be reached (e.g. the task running it failed).
    #[error("incident store unavailable: {0}")]
    Unavailable(String),
}

type Result<T> = std::result::Result<T, IncidentError>;

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| IncidentError::Sqlite { context, source })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT NOT NULL,
    tags TEXT NOT NULL,
    entity TEXT NOT NULL,
    tactics TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    detected_at INTEGER NOT NULL,
    evidence_at INTEGER,
    acknowledged_at INTEGER,
    resolved_at INTEGER,
    first_alert_at INTEGER NOT NULL,
    last_alert_at INTEGER NOT NULL,
    alert_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents(status, last_alert_at);
CREATE INDEX IF NOT EXISTS incidents_last_alert ON incidents(last_alert_at);
CREATE INDEX IF NOT EXISTS incidents_created ON incidents(created_at);
CREATE TABLE IF NOT EXISTS incident_entity (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    PRIMARY KEY (field, value, incident_id)
);
CREATE TABLE IF NOT EXISTS incident_detached (
    alert_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_alerts (
    alert_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    linked_at INTEGER NOT NULL,
    linked_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    evidence_at INTEGER,
    alert TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_alerts_incident ON incident_alerts(incident_id, first_seen);
CREATE TABLE IF NOT EXISTS incident_pins (
    incident_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    note TEXT NOT NULL,
    event_at INTEGER,
    pinned_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
CREATE TABLE IF NOT EXISTS incident_history (
    id INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_history_incident ON incident_history(incident_id, id);
";

const COLS: &str = "id, title, severity, status, assignee, tags, entity, tactics, created_at, \
     updated_at, detected_at, evidence_at, acknowledged_at, resolved_at, alert_count";

fn json_of<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let status: String = r.get(3)?;
    Ok(Incident {
        id: r.get(0)?,
        title: r.get(1)?,
        severity: Level::from_rank(r.get(2)?),
        status: Status::parse(&status).unwrap_or(Status::New),
        assignee: r.get(4)?,
        tags: json_of(&r.get::<_, String>(5)?),
        entity: json_of(&r.get::<_, String>(6)?),
        tactics: json_of(&r.get::<_, String>(7)?),
        created_at: format_ms(r.get(8)?),
        updated_at: format_ms(r.get(9)?),
        detected_at: format_ms(r.get(10)?),
        evidence_at: r.get::<_, Option<i64>>(11)?.map(format_ms),
        acknowledged_at: r.get::<_, Option<i64>>(12)?.map(format_ms),
        resolved_at: r.get::<_, Option<i64>>(13)?.map(format_ms),
        alert_count: r.get::<_, i64>(14)? as u64,
    })
}

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this severity or above.
    pub min_severity: Option<Level>,
    /// Only incidents assigned to this name (empty: unassigned).
    pub assignee: Option<String>,
    /// Most incidents returned.
    pub limit: usize,
    /// Incidents skipped (newest first).
    pub offset: usize,
}

/// The SQLite incident store with its grouping policy.
pub struct Store {
    conn: Connection,
    config: IncidentsConfig,
    changes: Vec<Change>,
    clock: Box<dyn Fn() -> Millis + Send>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .finish()
    }
}

/// The alert's sighting times in ms (its own fields are RFC 3339).
fn alert_times(a: &Alert) -> Result<(Millis, Millis)> {
    let first = parse_time(&a.first_seen)
        .map_err(|e| IncidentError::Invalid(format!("alert {}: first_seen: {e}", a.id)))?;
    let last = parse_time(&a.last_seen).unwrap_or(first);
    Ok((first, last.max(first)))
}

/// Checks a short single-line text: length and no control characters.
fn short_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.len() > max {
        return Err(IncidentError::Invalid(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(IncidentError::Invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// An entity as `field=value` pairs separated by spaces.
pub(crate) fn entity_text(e: &BTreeMap<String, String>) -> String {
    e.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A pending history entry, turned into a [`Change`] once written.
struct Entry<'a> {
    kind: &'a str,
    actor: &'a str,
    text: String,
    alert_id: Option<String>,
    seq: Option<u64>,
}

impl Store {
    /// Opens (creating) the store at `path`, in WAL mode, owner-only.
    pub fn open(path: &Path, config: IncidentsConfig) -> Result<Store> {
        let conn = Connection::open(path).ctx("opening incidents.db")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .ctx("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("setting synchronous")?;
        Self::with_conn(conn, config)
    }

    /// A store in memory (tests, dry runs).
    pub fn open_in_memory(config: IncidentsConfig) -> Result<Store> {
        Self::with_conn(
            Connection::open_in_memory().ctx("opening an in-memory store")?,
            config,
        )
    }

    fn with_conn(conn: Connection, config: IncidentsConfig) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .ctx("setting the busy timeout")?;
        conn.execute_batch(SCHEMA).ctx("creating the schema")?;
        Ok(Store {
            conn,
            config,
            changes: Vec::new(),
            clock: Box::new(now_ms),
        })
    }

    /// Replaces the clock (tests use fixed times).
    pub fn set_clock(&mut self, clock: impl Fn() -> Millis + Send + 'static) {
        self.clock = Box::new(clock);
    }

    /// The grouping policy in force.
    pub fn config(&self) -> &IncidentsConfig {
        &self.config
    }

    /// The changes made since the last call, oldest first, for the ledger.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    /// Runs the grouping policy for an alert the engine created or raised:
    /// updates it where it is linked already, else joins a matching open
    /// incident or opens one (only at or above `min_severity`). Suppressed
    /// alerts, and alerts detached from an incident by hand, are left
    /// alone. `evidence_at` is the event time of the alert's earliest
    /// evidence, when known. Returns the incident, if any.
    pub fn observe(
        &mut self,
        alert: &Alert,
        evidence_at: Option<Millis>,
    ) -> Result<Option<IncidentId>> {
        if alert.suppressed {
            return Ok(None);
        }
        let detached: Option<String> = self
            .conn
            .query_row(
                "SELECT incident_id FROM incident_detached WHERE alert_id = ?1",
                params![alert.id],
                |r| r.get(0),
            )
            .optional()
            .ctx("looking up detached alerts")?;
        if detached.is_some() {
            return Ok(None);
        }
        self.group(alert, evidence_at, "vigil", false)
    }

    /// Refreshes the snapshot of a linked alert (count, last sighting);
    /// false when the alert is not linked to any incident.
    pub fn refresh_alert(&mut self, alert: &Alert) -> Result<bool> {
        let (first, last) = alert_times(alert)?;
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let id: Option<String> = tx
            .query_row(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = ?1",
                params![alert.id],
                |r| r.get(0),
            )
            .optional()
            .ctx("looking up an alert's incident")?;
        let Some(id) = id else { return Ok(false) };
        tx.execute(
            "UPDATE incident_alerts SET first_seen = ?2, last_seen = ?3, alert = ?4 WHERE alert_id = ?1",
            params![alert.id, first, last, to_json(alert)],
        )
        .ctx("refreshing a linked alert")?;
        refresh(&tx, &id, now, false)?;
        tx.commit().ctx("refreshing a linked alert")?;
        Ok(true)
    }

    /// Puts `alert` into an incident whatever its level: the incident it is
    /// linked to already, else a matching open incident (grouping policy),
    /// else a new one. For automation (playbooks) that wants an incident.
    pub fn open_or_attach(&mut self, alert: &Alert, actor: &str) -> Result<IncidentId> {
        short_text("actor", actor, MAX_NAME)?;
        self.group(alert, None, actor, true)?
            .ok_or_else(|| IncidentError::Invalid("no incident was opened".into()))
    }

    fn group(
        &mut self,
        alert: &Alert,
        evidence_at: Option<Millis>,
        actor: &str,
        force: bool,
    ) -> Result<Option<IncidentId>> {
        let now = self.now();
        let (first, last) = alert_times(alert)?;
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let linked: Option<(String, Option<i64>)> = tx
            .query_row(
                "SELECT incident_id, evidence_at FROM incident_alerts WHERE alert_id = ?1",
                params![alert.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("looking up an alert's incident")?;
        let mut pending = Vec::new();
        let id = if let Some((id, old_ev)) = linked {
            // A raised count: refresh the snapshot, no history (the count says it).
            let ev = match (old_ev, evidence_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tx.execute(
                "UPDATE incident_alerts SET first_seen = ?2, last_seen = ?3, evidence_at = ?4, \
                 alert = ?5 WHERE alert_id = ?1",
                params![alert.id, first, last, ev, to_json(alert)],
            )
            .ctx("refreshing a linked alert")?;
            refresh(&tx, &id, now, false)?;
            id
        } else {
            let facts = AlertFacts {
                level: alert.level,
                entity: alert.entity.clone(),
                stages: policy::stages(&alert.tags),
                at: last,
            };
            let reach = (self
                .config
                .group_window_secs
                .max(self.config.chain_window_secs) as Millis)
                .saturating_mul(1000);
            let open = candidates(
                &tx,
                &alert.entity,
                last.saturating_sub(reach),
                last.saturating_add(reach),
            )?;
            match policy::decide(&self.config, &facts, &open) {
                Decision::Join(id, reason) => {
                    link(
                        &tx,
                        &id,
                        alert,
                        evidence_at,
                        actor,
                        reason.as_str(),
                        now,
                        &mut pending,
                    )?;
                    id
                }
                Decision::Ignore if !force => return Ok(None),
                Decision::Open | Decision::Ignore => {
                    let title = default_title(alert);
                    create_in(&tx, &title, alert, evidence_at, actor, now, &mut pending)?
                }
            }
        };
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(Some(id))
    }

    fn keep(&mut self, changes: Vec<Change>) {
        self.changes.extend(changes);
    }
}

/// Writes the pending history entries, commits, and returns the changes.
fn commit(tx: Transaction<'_>, pending: Vec<(String, Entry)>, now: Millis) -> Result<Vec<Change>> {
    let mut changes = Vec::with_capacity(pending.len());
    for (id, e) in pending {
        tx.execute(
            "INSERT INTO incident_history (incident_id, at, kind, actor, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, now, e.kind, e.actor, e.text],
        )
        .ctx("recording incident history")?;
        let (title, status, severity): (String, String, i64) = tx
            .query_row(
                "SELECT title, status, severity FROM incidents WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ctx("reading an incident")?;
        changes.push(Change {
            action: e.kind.to_string(),
            incident_id: id,
            title,
            status: Status::parse(&status).unwrap_or(Status::New),
            severity: Level::from_rank(severity),
            actor: e.actor.to_string(),
            detail: e.text,
            alert_id: e.alert_id,
            seq: e.seq,
            at: now,
        });
    }
    tx.commit().ctx("committing an incident change")?;
    Ok(changes)
}

impl Store {
    /// Opens an incident from chosen alerts (at least one), by hand.
    /// Alerts linked to another incident are refused (detach them first).
    pub fn create(
        &mut self,
        alerts: &[Alert],
        title: Option<&str>,
        actor: &str,
    ) -> Result<IncidentId> {
        short_text("actor", actor, MAX_NAME)?;
        let Some(first) = alerts.first() else {
            return Err(IncidentError::Invalid(
                "an incident needs at least one alert".into(),
            ));
        };
        if alerts.len() > MAX_ALERTS {
            return Err(IncidentError::Invalid(format!(
                "at most {MAX_ALERTS} alerts per incident"
            )));
        }
        let title = match title.map(str::trim) {
            Some(t) if !t.is_empty() => {
                short_text("title", t, MAX_TITLE)?;
                t.to_string()
            }
            _ => default_title(first),
        };
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        for a in alerts {
            refuse_linked(&tx, &a.id)?;
        }
        let mut pending = Vec::new();
        let id = create_in(&tx, &title, first, None, actor, now, &mut pending)?;
        for a in &alerts[1..] {
            if a.id != first.id {
                link(&tx, &id, a, None, actor, "manual", now, &mut pending)?;
            }
        }
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(id)
    }

    /// Links an alert to an incident by hand.
    pub fn attach(&mut self, id: &str, alert: &Alert, actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        exists(&tx, id)?;
        refuse_linked(&tx, &alert.id)?;
        let n: i64 = tx
            .query_row(
                "SELECT alert_count FROM incidents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .ctx("counting alerts")?;
        if n as usize >= MAX_ALERTS {
            return Err(IncidentError::Invalid(format!(
                "incident {id} has {MAX_ALERTS} alerts already"
            )));
        }
        let mut pending = Vec::new();
        link(&tx, id, alert, None, actor, "manual", now, &mut pending)?;
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Unlinks an alert from an incident.
    pub fn detach(&mut self, id: &str, alert_id: &str, actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        exists(&tx, id)?;
        let n = tx
            .execute(
                "DELETE FROM incident_alerts WHERE alert_id = ?1 AND incident_id = ?2",
                params![alert_id, id],
            )
            .ctx("detaching an alert")?;
        if n == 0 {
            return Err(IncidentError::NotFound {
                what: "linked alert",
                id: alert_id.to_string(),
            });
        }
        // A person took it out: the policy must not put it back.
        tx.execute(
            "INSERT OR REPLACE INTO incident_detached (alert_id, incident_id, at) VALUES (?1, ?2, ?3)",
            params![alert_id, id, now],
        )
        .ctx("remembering a detached alert")?;
        refresh(&tx, id, now, true)?;
        let pending = vec![(
            id.to_string(),
            Entry {
                kind: "alert_detached",
                actor,
                text: format!("alert {alert_id} detached"),
                alert_id: Some(alert_id.to_string()),
                seq: None,
            },
        )];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// An incident's status, without loading the rest of it.
    pub fn status(&self, id: &str) -> Result<Status> {
        status_of(&self.conn, id)
    }

    /// Moves an incident along its workflow; `note` (optional) says why.
    pub fn set_status(&mut self, id: &str, to: Status, actor: &str, note: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        if note.len() > MAX_NOTE {
            return Err(IncidentError::Invalid(format!(
                "note is longer than {MAX_NOTE} bytes"
            )));
        }
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let from = status_of(&tx, id)?;
        if !from.can_become(to) {
            return Err(IncidentError::IllegalTransition {
                from,
                to,
                allowed: from
                    .next()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Acknowledgement is the first step out of `new`; resolution the
        // latest step into a closed status (reopening clears it).
        tx.execute(
            "UPDATE incidents SET status = ?2, updated_at = ?3, \
             acknowledged_at = COALESCE(acknowledged_at, CASE WHEN ?4 THEN ?3 END), \
             resolved_at = CASE WHEN ?5 THEN ?3 ELSE NULL END WHERE id = ?1",
            params![id, to.as_str(), now, from == Status::New, to.is_closed()],
        )
        .ctx("changing an incident's status")?;
        let mut text = format!("{from} → {to}");
        if from.is_closed() {
            text.push_str(" (reopened)");
        }
        if !note.is_empty() {
            text.push_str(": ");
            text.push_str(note);
        }
        let pending = vec![(id.to_string(), plain("status_changed", actor, text))];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Sets the severity.
    pub fn set_severity(&mut self, id: &str, severity: Level, actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let old: i64 = tx
            .query_row(
                "SELECT severity FROM incidents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading an incident")?
            .ok_or_else(|| not_found(id))?;
        tx.execute(
            "UPDATE incidents SET severity = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, severity as i64, now],
        )
        .ctx("changing an incident's severity")?;
        let text = format!(
            "severity {} → {}",
            Level::from_rank(old).as_str(),
            severity.as_str()
        );
        let pending = vec![(id.to_string(), plain("severity_changed", actor, text))];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Assigns the incident (`""` unassigns).
    pub fn set_assignee(&mut self, id: &str, assignee: &str, actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        short_text("assignee", assignee, MAX_NAME)?;
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let old: String = tx
            .query_row(
                "SELECT assignee FROM incidents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading an incident")?
            .ok_or_else(|| not_found(id))?;
        tx.execute(
            "UPDATE incidents SET assignee = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, assignee, now],
        )
        .ctx("assigning an incident")?;
        let shown = |s: &str| {
            if s.is_empty() {
                "nobody".to_string()
            } else {
                s.to_string()
            }
        };
        let text = format!("assignee {} → {}", shown(&old), shown(assignee));
        let pending = vec![(id.to_string(), plain("assignee_changed", actor, text))];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Replaces the tags (trimmed, deduplicated, sorted).
    pub fn set_tags(&mut self, id: &str, tags: &[String], actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        if tags.len() > MAX_TAGS {
            return Err(IncidentError::Invalid(format!(
                "at most {MAX_TAGS} tags per incident"
            )));
        }
        let mut set = BTreeSet::new();
        for t in tags {
            let t = t.trim();
            if t.is_empty() {
                return Err(IncidentError::Invalid("a tag is empty".into()));
            }
            short_text("tag", t, MAX_TAG)?;
            set.insert(t.to_string());
        }
        let tags: Vec<String> = set.into_iter().collect();
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        exists(&tx, id)?;
        tx.execute(
            "UPDATE incidents SET tags = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, to_json(&tags), now],
        )
        .ctx("tagging an incident")?;
        let text = format!("tags: {}", tags.join(", "));
        let pending = vec![(id.to_string(), plain("tags_changed", actor, text))];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Adds a note.
    pub fn add_note(&mut self, id: &str, text: &str, actor: &str) -> Result<()> {
        self.add_timeline(id, "note_added", text, actor)
    }

    /// Adds a timeline entry of any `kind` (lower-case letters, digits and
    /// `_`, e.g. `playbook_step`) with free `text`.
    pub fn add_timeline(&mut self, id: &str, kind: &str, text: &str, actor: &str) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        if kind.is_empty()
            || kind.len() > MAX_KIND
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(IncidentError::Invalid(format!(
                "timeline kind {kind:?} must be 1..={MAX_KIND} lower-case letters, digits or _"
            )));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(IncidentError::Invalid("the text is empty".into()));
        }
        if text.len() > MAX_NOTE {
            return Err(IncidentError::Invalid(format!(
                "the text is longer than {MAX_NOTE} bytes"
            )));
        }
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        exists(&tx, id)?;
        room_for(&tx, Bounded::History, id)?;
        touch(&tx, id, now)?;
        let pending = vec![(
            id.to_string(),
            Entry {
                kind,
                actor,
                text: text.to_string(),
                alert_id: None,
                seq: None,
            },
        )];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// Pins a stored event (ledger `seq`) as evidence. `event_at` is the
    /// event's own time, when known (the caller read the event).
    pub fn pin(
        &mut self,
        id: &str,
        seq: u64,
        note: &str,
        event_at: Option<Millis>,
        actor: &str,
    ) -> Result<()> {
        short_text("actor", actor, MAX_NAME)?;
        if seq == 0 || seq > i64::MAX as u64 {
            return Err(IncidentError::Invalid(format!("seq {seq} is out of range")));
        }
        if note.len() > MAX_NOTE {
            return Err(IncidentError::Invalid(format!(
                "note is longer than {MAX_NOTE} bytes"
            )));
        }
        let now = self.now();
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        exists(&tx, id)?;
        room_for(&tx, Bounded::Pins, id)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO incident_pins (incident_id, seq, note, event_at, pinned_at, actor) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, seq as i64, note, event_at, now, actor],
            )
            .ctx("pinning an event")?;
        if added == 0 {
            return Err(IncidentError::Conflict(format!(
                "event {seq} is pinned to incident {id} already"
            )));
        }
        touch(&tx, id, now)?;
        let mut text = format!("event {seq} pinned");
        if !note.is_empty() {
            text.push_str(": ");
            text.push_str(note);
        }
        let pending = vec![(
            id.to_string(),
            Entry {
                kind: "event_pinned",
                actor,
                text,
                alert_id: None,
                seq: Some(seq),
            },
        )];
        let c = commit(tx, pending, now)?;
        self.keep(c);
        Ok(())
    }

    /// The incident an alert is linked to.
    pub fn incident_of(&self, alert_id: &str) -> Result<Option<IncidentId>> {
        self.conn
            .query_row(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = ?1",
                params![alert_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("looking up an alert's incident")
    }

    /// One incident with its alerts, pins, history and merged timeline.
    pub fn get(&self, id: &str) -> Result<IncidentDetail> {
        let incident = self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()
            .ctx("reading an incident")?
            .ok_or_else(|| not_found(id))?;
        let mut st = self
            .conn
            .prepare(
                "SELECT alert, first_seen, last_seen, evidence_at, linked_at, linked_by, reason \
                 FROM incident_alerts WHERE incident_id = ?1 ORDER BY first_seen, alert_id",
            )
            .ctx("reading linked alerts")?;
        let alerts = st
            .query_map(params![id], |r| {
                let a: serde_json::Value = json_of(&r.get::<_, String>(0)?);
                let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                Ok(LinkedAlert {
                    alert_id: s("id"),
                    rule_name: s("rule_name"),
                    rule_id: s("rule_id"),
                    level: Level::parse(&s("level")).unwrap_or_default(),
                    tags: serde_json::from_value(a["tags"].clone()).unwrap_or_default(),
                    entity: serde_json::from_value(a["entity"].clone()).unwrap_or_default(),
                    first_seen: format_ms(r.get(1)?),
                    last_seen: format_ms(r.get(2)?),
                    count: a["count"].as_u64().unwrap_or(1),
                    evidence_seqs: serde_json::from_value(a["evidence_seqs"].clone())
                        .unwrap_or_default(),
                    evidence_at: r.get::<_, Option<i64>>(3)?.map(format_ms),
                    linked_at: format_ms(r.get(4)?),
                    linked_by: r.get(5)?,
                    reason: r.get(6)?,
                })
            })
            .ctx("reading linked alerts")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("reading linked alerts")?;
        let mut st = self
            .conn
            .prepare(
                "SELECT seq, note, event_at, pinned_at, actor FROM incident_pins \
                 WHERE incident_id = ?1 ORDER BY pinned_at, seq",
            )
            .ctx("reading pins")?;
        let pins = st
            .query_map(params![id], |r| {
                Ok(Pin {
                    seq: r.get::<_, i64>(0)? as u64,
                    note: r.get(1)?,
                    event_at: r.get::<_, Option<i64>>(2)?.map(format_ms),
                    pinned_at: format_ms(r.get(3)?),
                    actor: r.get(4)?,
                })
            })
            .ctx("reading pins")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("reading pins")?;
        let mut st = self
            .conn
            .prepare(
                "SELECT at, kind, actor, text FROM incident_history WHERE incident_id = ?1 ORDER BY id",
            )
            .ctx("reading history")?;
        let rows = st
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    HistoryEntry {
                        at: format_ms(r.get(0)?),
                        kind: r.get(1)?,
                        actor: r.get(2)?,
                        text: r.get(3)?,
                    },
                ))
            })
            .ctx("reading history")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("reading history")?;
        let timeline = crate::timeline::merge(&alerts, &pins, &rows);
        Ok(IncidentDetail {
            incident,
            alerts,
            pins,
            history: rows.into_iter().map(|(_, h)| h).collect(),
            timeline,
        })
    }

    /// Incidents matching `f`, most recently opened first, and how many match in all.
    pub fn list(&self, f: &ListFilter) -> Result<(Vec<Incident>, u64)> {
        let mut wh = vec!["1 = 1".to_string()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = f.status {
            args.push(s.as_str().to_string().into());
            wh.push(format!("status = ?{}", args.len()));
        }
        if let Some(l) = f.min_severity {
            args.push((l as i64).into());
            wh.push(format!("severity >= ?{}", args.len()));
        }
        if let Some(a) = &f.assignee {
            args.push(a.clone().into());
            wh.push(format!("assignee = ?{}", args.len()));
        }
        let wh = wh.join(" AND ");
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT COUNT(*) FROM incidents WHERE {wh}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )
            .ctx("counting incidents")?;
        args.push((f.limit as i64).into());
        args.push((f.offset as i64).into());
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLS} FROM incidents WHERE {wh} ORDER BY created_at DESC, id \
                 LIMIT ?{} OFFSET ?{}",
                args.len() - 1,
                args.len()
            ))
            .ctx("listing incidents")?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), incident_row)
            .ctx("listing incidents")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("listing incidents")?;
        Ok((rows, total as u64))
    }

    /// Incidents per status (every status listed, zeros included).
    pub fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM incidents GROUP BY status")
            .ctx("counting incidents")?;
        let got: BTreeMap<String, i64> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("counting incidents")?
            .collect::<std::result::Result<_, _>>()
            .ctx("counting incidents")?;
        Ok(STATUSES
            .iter()
            .map(|s| (*s, got.get(s.as_str()).copied().unwrap_or(0) as u64))
            .collect())
    }

    /// The time samples behind the response metrics, one per incident.
    pub fn samples(&self) -> Result<Vec<crate::metrics::Sample>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT severity, created_at, detected_at, evidence_at, acknowledged_at, \
                 resolved_at FROM incidents",
            )
            .ctx("reading incident times")?;
        let rows = st
            .query_map([], |r| {
                Ok(crate::metrics::Sample {
                    severity: Level::from_rank(r.get(0)?),
                    created_at: r.get(1)?,
                    detected_at: r.get(2)?,
                    evidence_at: r.get(3)?,
                    acknowledged_at: r.get(4)?,
                    resolved_at: r.get(5)?,
                })
            })
            .ctx("reading incident times")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("reading incident times")?;
        Ok(rows)
    }

    /// MTTD, MTTA and MTTR per severity, from the stored incidents.
    pub fn metrics(&self) -> Result<crate::metrics::Metrics> {
        Ok(crate::metrics::Metrics::compute(&self.samples()?))
    }
}

fn plain<'a>(kind: &'a str, actor: &'a str, text: String) -> Entry<'a> {
    Entry {
        kind,
        actor,
        text,
        alert_id: None,
        seq: None,
    }
}

fn not_found(id: &str) -> IncidentError {
    IncidentError::NotFound {
        what: "incident",
        id: id.to_string(),
    }
}

/// Per-incident lists with a cap.
#[derive(Clone, Copy)]
enum Bounded {
    History,
    Pins,
}

/// Refuses to add to an incident's list once it holds its maximum.
fn room_for(tx: &Transaction<'_>, list: Bounded, id: &str) -> Result<()> {
    let (sql, max, what, context) = match list {
        Bounded::History => (
            "SELECT COUNT(*) FROM incident_history WHERE incident_id = ?1",
            MAX_HISTORY,
            "history entries",
            "counting history",
        ),
        Bounded::Pins => (
            "SELECT COUNT(*) FROM incident_pins WHERE incident_id = ?1",
            MAX_PINS,
            "pinned events",
            "counting pins",
        ),
    };
    let n: i64 = tx.query_row(sql, params![id], |r| r.get(0)).ctx(context)?;
    if n as usize >= max {
        return Err(IncidentError::Invalid(format!(
            "incident {id} has {max} {what} already"
        )));
    }
    Ok(())
}

fn exists(tx: &Transaction<'_>, id: &str) -> Result<()> {
    status_of(tx, id).map(|_| ())
}

fn status_of(tx: &Connection, id: &str) -> Result<Status> {
    let s: String = tx
        .query_row(
            "SELECT status FROM incidents WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading an incident")?
        .ok_or_else(|| not_found(id))?;
    Ok(Status::parse(&s).unwrap_or(Status::New))
}

fn touch(tx: &Transaction<'_>, id: &str, now: Millis) -> Result<()> {
    tx.execute(
        "UPDATE incidents SET updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )
    .ctx("updating an incident")?;
    Ok(())
}

fn refuse_linked(tx: &Transaction<'_>, alert_id: &str) -> Result<()> {
    let other: Option<String> = tx
        .query_row(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = ?1",
            params![alert_id],
            |r| r.get(0),
        )
        .optional()
        .ctx("looking up an alert's incident")?;
    match other {
        Some(o) => Err(IncidentError::Conflict(format!(
            "alert {alert_id} is linked to incident {o}; detach it there first"
        ))),
        None => Ok(()),
    }
}

/// Open incidents the policy may group into: those sharing an entity
/// value with the alert (both policies need one: the same entity, or the
/// same host) whose alerts reach into `[from, to]`.
fn candidates(
    tx: &Transaction<'_>,
    entity: &BTreeMap<String, String>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Candidate>> {
    if entity.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<rusqlite::types::Value> = vec![from.into(), to.into()];
    let mut any = Vec::new();
    for (k, v) in entity {
        args.push(k.clone().into());
        args.push(v.clone().into());
        any.push(format!(
            "(field = ?{} AND value = ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    let mut st = tx
        .prepare_cached(&format!(
            "SELECT id, entity, tactics, first_alert_at, last_alert_at FROM incidents \
             WHERE status NOT IN ('resolved', 'false_positive') \
             AND last_alert_at >= ?1 AND first_alert_at <= ?2 \
             AND id IN (SELECT incident_id FROM incident_entity WHERE {})",
            any.join(" OR ")
        ))
        .ctx("reading open incidents")?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            let tactics: Vec<String> = json_of(&r.get::<_, String>(2)?);
            let tags: Vec<String> = tactics.iter().map(|t| format!("attack.{t}")).collect();
            Ok(Candidate {
                id: r.get(0)?,
                entity: json_of(&r.get::<_, String>(1)?),
                stages: policy::stages(&tags),
                first_alert_at: r.get(3)?,
                last_alert_at: r.get(4)?,
            })
        })
        .ctx("reading open incidents")?
        .collect::<std::result::Result<Vec<_>, _>>()
        .ctx("reading open incidents")?;
    Ok(rows)
}

fn default_title(a: &Alert) -> String {
    let mut t = a.rule_name.clone();
    if !a.entity.is_empty() {
        t.push_str(" — ");
        t.push_str(&entity_text(&a.entity));
    }
    let mut cut: String = t.chars().filter(|c| !c.is_control()).take(200).collect();
    if cut.len() < t.len() && t.chars().count() > 200 {
        cut.push('…');
    }
    cut
}

#[allow(clippy::too_many_arguments)]
fn create_in<'a>(
    tx: &Transaction<'_>,
    title: &str,
    alert: &Alert,
    evidence_at: Option<Millis>,
    actor: &'a str,
    now: Millis,
    pending: &mut Vec<(String, Entry<'a>)>,
) -> Result<IncidentId> {
    let (first, last) = alert_times(alert)?;
    let id = new_id();
    tx.execute(
        &format!(
            "INSERT INTO incidents ({COLS}, first_alert_at, last_alert_at) VALUES \
             (?1, ?2, ?3, 'new', '', '[]', ?4, '[]', ?5, ?5, ?6, ?7, NULL, NULL, 0, ?6, ?8)"
        ),
        params![
            id,
            title,
            alert.level as i64,
            to_json(&alert.entity),
            now,
            first,
            evidence_at,
            last
        ],
    )
    .ctx("opening an incident")?;
    for (k, v) in &alert.entity {
        tx.execute(
            "INSERT OR IGNORE INTO incident_entity (field, value, incident_id) VALUES (?1, ?2, ?3)",
            params![k, v, id],
        )
        .ctx("indexing an incident's entity")?;
    }
    pending.push((
        id.clone(),
        plain(
            "created",
            actor,
            format!("opened from alert {} ({})", alert.id, alert.rule_name),
        ),
    ));
    link(tx, &id, alert, evidence_at, actor, "opened", now, pending)?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
fn link<'a>(
    tx: &Transaction<'_>,
    id: &str,
    alert: &Alert,
    evidence_at: Option<Millis>,
    actor: &'a str,
    reason: &str,
    now: Millis,
    pending: &mut Vec<(String, Entry<'a>)>,
) -> Result<()> {
    let (first, last) = alert_times(alert)?;
    tx.execute(
        "DELETE FROM incident_detached WHERE alert_id = ?1",
        params![alert.id],
    )
    .ctx("linking an alert")?;
    tx.execute(
        "INSERT INTO incident_alerts (alert_id, incident_id, linked_at, linked_by, reason, \
         first_seen, last_seen, evidence_at, alert) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            alert.id,
            id,
            now,
            actor,
            reason,
            first,
            last,
            evidence_at,
            to_json(alert)
        ],
    )
    .ctx("linking an alert")?;
    pending.push((
        id.to_string(),
        Entry {
            kind: "alert_linked",
            actor,
            text: format!(
                "alert {} linked ({reason}): [{}] {} {}",
                alert.id,
                alert.level.as_str(),
                alert.rule_name,
                entity_text(&alert.entity)
            ),
            alert_id: Some(alert.id.clone()),
            seq: None,
        },
    ));
    let old: i64 = tx
        .query_row(
            "SELECT severity FROM incidents WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .ctx("reading an incident")?;
    if (alert.level as i64) > old {
        tx.execute(
            "UPDATE incidents SET severity = ?2 WHERE id = ?1",
            params![id, alert.level as i64],
        )
        .ctx("raising an incident's severity")?;
        pending.push((
            id.to_string(),
            plain(
                "severity_changed",
                actor,
                format!(
                    "severity {} → {} (alert {})",
                    Level::from_rank(old).as_str(),
                    alert.level.as_str(),
                    alert.id
                ),
            ),
        ));
    }
    refresh(tx, id, now, true)
}

/// Recomputes what an incident derives from its alerts.
fn refresh(tx: &Transaction<'_>, id: &str, now: Millis, changed: bool) -> Result<()> {
    let mut st = tx
        .prepare_cached(
            "SELECT alert, first_seen, last_seen, evidence_at FROM incident_alerts WHERE incident_id = ?1",
        )
        .ctx("reading linked alerts")?;
    let mut tags = Vec::new();
    let (mut first, mut last, mut ev, mut n) = (None::<i64>, None::<i64>, None::<i64>, 0i64);
    let rows = st
        .query_map(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .ctx("reading linked alerts")?;
    for row in rows {
        let (a, f, l, e) = row.ctx("reading linked alerts")?;
        let a: serde_json::Value = json_of(&a);
        if let Some(t) = a["tags"].as_array() {
            tags.extend(t.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
        first = Some(first.map_or(f, |x| x.min(f)));
        last = Some(last.map_or(l, |x| x.max(l)));
        if let Some(e) = e {
            ev = Some(ev.map_or(e, |x| x.min(e)));
        }
        n += 1;
    }
    // With no alert left, the times stay as they were.
    tx.execute(
        "UPDATE incidents SET tactics = ?2, alert_count = ?3, \
         first_alert_at = COALESCE(?4, first_alert_at), last_alert_at = COALESCE(?5, last_alert_at), \
         detected_at = COALESCE(?4, detected_at), evidence_at = COALESCE(?6, evidence_at), \
         updated_at = CASE WHEN ?8 THEN ?7 ELSE updated_at END WHERE id = ?1",
        params![
            id,
            to_json(&policy::tactics(&tags)),
            n,
            first,
            last,
            ev,
            now,
            changed
        ],
    )
    .ctx("updating an incident")?;
    Ok(())
}

#[cfg(test)]
mod tests;
