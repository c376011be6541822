//! The alert store: alerts, their history, suppressions, throttle state and
//! the delivery outbox, in one SQLite file (`alerts.db`, WAL).
//!
//! [`Store::record`] takes one alert event and, in a single transaction,
//! groups it into an open alert or opens a new one, applies suppressions,
//! maintenance windows and route throttles, and enqueues one delivery per
//! channel. Because the outbox row commits with the alert change, a crash
//! can lose neither: a restarted worker finds every pending delivery.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::model::{
    format_ms, new_id, Alert, AlertInput, Change, HistoryEntry, Level, Millis, Status,
};
use crate::policy::Policy;

/// A store failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("alert store: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// No alert, suppression or delivery with this id.
    #[error("no {what} with id {id:?}")]
    NotFound {
        /// `alert`, `suppression`, `delivery`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A request that cannot be honoured (e.g. acknowledging a closed alert).
    #[error("{0}")]
    Invalid(String),
}

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    level INTEGER NOT NULL,
    tags TEXT NOT NULL,
    entity TEXT NOT NULL,
    message TEXT NOT NULL,
    group_key TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    evidence_truncated INTEGER NOT NULL,
    status TEXT NOT NULL,
    suppressed INTEGER NOT NULL,
    suppression_id TEXT
);
CREATE INDEX IF NOT EXISTS alerts_group ON alerts(group_key, first_seen);
CREATE INDEX IF NOT EXISTS alerts_last_seen ON alerts(last_seen);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history(alert_id, id);
CREATE TABLE IF NOT EXISTS suppressions (
    id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS throttle (
    route TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    sent INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
CREATE TABLE IF NOT EXISTS cursor (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
";

/// Most suppression `fields` pairs, and the longest reason/author/value.
pub const MAX_SUPPRESSION_FIELDS: usize = 16;
/// Longest suppression reason, author or field value.
pub const MAX_SUPPRESSION_TEXT: usize = 1024;

/// What [`Store::record`] did with an alert event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The alert it was grouped into or opened.
    pub alert_id: String,
    /// Whether a new alert was opened.
    pub created: bool,
    /// Whether a suppression matched.
    pub suppressed: bool,
    /// Deliveries enqueued (ids).
    pub queued: Vec<String>,
    /// Changes to record in the ledger.
    pub changes: Vec<Change>,
}

/// A suppression rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppression {
    /// Id.
    pub id: String,
    /// Alert fields that must all equal (`rule.id`, `rule.name`, `level`,
    /// `tags`, `source.ip`, `user.name`, `host.name`).
    pub fields: BTreeMap<String, String>,
    /// Why.
    pub reason: String,
    /// Who created it.
    pub author: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it stops applying (RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// Alert sightings it suppressed.
    pub hits: u64,
    /// Whether it still applies.
    pub active: bool,
}

/// A delivery (one alert notification to one channel).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Id, sent to the channel as the idempotency key.
    pub id: String,
    /// The alert.
    pub alert_id: String,
    /// The channel's name.
    pub channel: String,
    /// The route that chose the channel.
    pub route: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (RFC 3339) while pending.
    pub next_attempt_at: String,
    /// Enqueued (RFC 3339).
    pub created_at: String,
    /// Acknowledged by the channel (RFC 3339).
    pub delivered_at: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The alert as it was when the delivery was enqueued.
    pub payload: serde_json::Value,
}

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this level or above.
    pub min_level: Option<Level>,
    /// Only this rule id.
    pub rule_id: Option<String>,
    /// Only alerts with an entity field equal to this.
    pub entity: Option<String>,
    /// Only alerts seen at or after this time (ms).
    pub since: Option<Millis>,
    /// Most alerts returned.
    pub limit: usize,
    /// Alerts skipped (newest first).
    pub offset: usize,
}

/// The SQLite alert store.
pub struct Store {
    conn: Connection,
}

fn level_num(l: Level) -> i64 {
    l as i64
}

const ALERT_COLS: &str = "id, rule_id, rule_name, level, tags, entity, message, group_key, \
     first_seen, last_seen, count, evidence, evidence_truncated, status, suppressed, suppression_id";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let tags: String = r.get(4)?;
    let entity: String = r.get(5)?;
    let evidence: String = r.get(11)?;
    let status: String = r.get(13)?;
    Ok(Alert {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule_name: r.get(2)?,
        level: Level::from_rank(r.get(3)?),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        entity: serde_json::from_str(&entity).unwrap_or_default(),
        message: r.get(6)?,
        group_key: r.get(7)?,
        first_seen: format_ms(r.get(8)?),
        last_seen: format_ms(r.get(9)?),
        count: r.get::<_, i64>(10)? as u64,
        evidence_seqs: serde_json::from_str(&evidence).unwrap_or_default(),
        evidence_truncated: r.get(12)?,
        status: Status::parse(&status).unwrap_or(Status::Open),
        suppressed: r.get(14)?,
        suppression_id: r.get(15)?,
    })
}

const DELIVERY_COLS: &str = "id, alert_id, channel, route, state, attempts, next_attempt_at, \
     created_at, delivered_at, last_error, payload";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let payload: String = r.get(10)?;
    Ok(Delivery {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        channel: r.get(2)?,
        route: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get::<_, i64>(5)? as u32,
        next_attempt_at: format_ms(r.get(6)?),
        created_at: format_ms(r.get(7)?),
        delivered_at: r.get::<_, Option<i64>>(8)?.map(format_ms),
        last_error: r.get(9)?,
        payload: serde_json::from_str(&payload).unwrap_or_default(),
    })
}

fn suppression_row(r: &rusqlite::Row<'_>, now: Millis) -> rusqlite::Result<Suppression> {
    let fields: String = r.get(1)?;
    let expires: Option<i64> = r.get(5)?;
    Ok(Suppression {
        id: r.get(0)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        reason: r.get(2)?,
        author: r.get(3)?,
        created_at: format_ms(r.get(4)?),
        expires_at: expires.map(format_ms),
        hits: r.get::<_, i64>(6)? as u64,
        active: expires.is_none_or(|e| now < e),
    })
}

fn history(
    tx: &Transaction<'_>,
    alert: &str,
    at: Millis,
    action: &str,
    actor: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO alert_history (alert_id, at, action, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![alert, at, action, actor, detail],
    )
    .ctx("recording alert history")?;
    Ok(())
}

fn change(a: &Alert, action: &'static str, actor: &str, detail: String) -> Change {
    Change {
        action,
        alert_id: a.id.clone(),
        rule_id: a.rule_id.clone(),
        rule_name: a.rule_name.clone(),
        level: a.level,
        count: a.count,
        actor: actor.to_string(),
        detail,
    }
}

impl Store {
    /// Opens (creating) the store at `path`, in WAL mode, owner-only.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).ctx("opening alerts.db")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .ctx("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("setting synchronous")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .ctx("setting the busy timeout")?;
        conn.execute_batch(SCHEMA).ctx("creating the schema")?;
        Ok(Store { conn })
    }

    /// Records one alert event at `now`: groups, suppresses, routes,
    /// throttles and enqueues, in one transaction.
    pub fn record(
        &mut self,
        input: &AlertInput,
        now: Millis,
        policy: &Policy,
        channels: &dyn Fn(&str) -> bool,
    ) -> Result<Recorded, StoreError> {
        let mut r = self.record_many(std::slice::from_ref(input), now, policy, channels)?;
        r.pop().ok_or_else(|| {
            StoreError::Invalid(format!(
                "alert event seq {:?} was recorded already",
                input.seq
            ))
        })
    }

    /// [`Store::record`] for several sightings in one transaction (one
    /// fsync), in order: what a burst of alert events costs.
    pub fn record_many(
        &mut self,
        inputs: &[AlertInput],
        now: Millis,
        policy: &Policy,
        channels: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Recorded>, StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let cursor = read_cursor(&tx)?;
        let mut high = cursor;
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(seq) = input.seq {
                // Seen already (a catch-up overlapping the live hand-over).
                if cursor.is_some_and(|c| seq <= c) {
                    continue;
                }
                high = Some(high.map_or(seq, |h| h.max(seq)));
            }
            out.push(record_in(&tx, input, now, policy, channels)?);
        }
        if high != cursor {
            write_cursor(&tx, high.unwrap_or(0))?;
        }
        tx.commit().ctx("committing alerts")?;
        Ok(out)
    }

    /// The highest ledger seq of an alert event recorded, `None` for a new store.
    pub fn ledger_cursor(&mut self) -> Result<Option<u64>, StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        read_cursor(&tx)
    }

    /// Moves the ledger cursor (alert events at or below it are skipped).
    pub fn set_ledger_cursor(&mut self, seq: u64) -> Result<(), StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        write_cursor(&tx, seq)?;
        tx.commit().ctx("moving the ledger cursor")
    }

    /// One alert with its history and deliveries.
    pub fn get(&self, id: &str) -> Result<(Alert, Vec<HistoryEntry>, Vec<Delivery>), StoreError> {
        let a = self
            .conn
            .query_row(
                &format!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()
            .ctx("reading an alert")?
            .ok_or_else(|| StoreError::NotFound {
                what: "alert",
                id: id.to_string(),
            })?;
        let mut st = self
            .conn
            .prepare("SELECT at, action, actor, detail FROM alert_history WHERE alert_id = ?1 ORDER BY id")
            .ctx("reading alert history")?;
        let hist = st
            .query_map(params![id], |r| {
                Ok(HistoryEntry {
                    at: format_ms(r.get(0)?),
                    action: r.get(1)?,
                    actor: r.get(2)?,
                    detail: r.get(3)?,
                })
            })
            .ctx("reading alert history")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading alert history")?;
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE alert_id = ?1 ORDER BY created_at"
            ))
            .ctx("reading deliveries")?;
        let dels = st
            .query_map(params![id], delivery_row)
            .ctx("reading deliveries")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading deliveries")?;
        Ok((a, hist, dels))
    }

    /// Alerts matching `f`, most recently seen first, and how many match in all.
    pub fn list(&self, f: &ListFilter) -> Result<(Vec<Alert>, u64), StoreError> {
        let mut wh = vec!["1 = 1".to_string()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = f.status {
            args.push(s.as_str().to_string().into());
            wh.push(format!("status = ?{}", args.len()));
        }
        if let Some(l) = f.min_level {
            args.push(level_num(l).into());
            wh.push(format!("level >= ?{}", args.len()));
        }
        if let Some(r) = &f.rule_id {
            args.push(r.clone().into());
            wh.push(format!("rule_id = ?{}", args.len()));
        }
        if let Some(e) = &f.entity {
            args.push(e.clone().into());
            wh.push(format!(
                "EXISTS (SELECT 1 FROM json_each(alerts.entity) WHERE json_each.value = ?{})",
                args.len()
            ));
        }
        if let Some(s) = f.since {
            args.push(s.into());
            wh.push(format!("last_seen >= ?{}", args.len()));
        }
        let cond = wh.join(" AND ");
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT COUNT(*) FROM alerts WHERE {cond}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )
            .ctx("counting alerts")?;
        args.push((f.limit as i64).into());
        args.push((f.offset as i64).into());
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE {cond} ORDER BY last_seen DESC, id \
             LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        );
        let mut st = self.conn.prepare(&sql).ctx("listing alerts")?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), alert_row)
            .ctx("listing alerts")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("listing alerts")?;
        Ok((rows, total as u64))
    }

    /// Acknowledges or closes an alert.
    pub fn set_status(
        &mut self,
        id: &str,
        to: Status,
        actor: &str,
        note: &str,
        now: Millis,
    ) -> Result<Change, StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let mut a = tx
            .query_row(
                &format!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()
            .ctx("reading an alert")?
            .ok_or_else(|| StoreError::NotFound {
                what: "alert",
                id: id.to_string(),
            })?;
        let action = match (a.status, to) {
            (Status::Closed, _) => {
                return Err(StoreError::Invalid(format!("alert {id} is already closed")))
            }
            (Status::Acknowledged, Status::Acknowledged) => {
                return Err(StoreError::Invalid(format!(
                    "alert {id} is already acknowledged"
                )))
            }
            (_, Status::Acknowledged) => "acknowledged",
            (_, Status::Closed) => "closed",
            (_, Status::Open) => {
                return Err(StoreError::Invalid("alerts cannot be reopened".into()))
            }
        };
        tx.execute(
            "UPDATE alerts SET status = ?2 WHERE id = ?1",
            params![id, to.as_str()],
        )
        .ctx("changing an alert's status")?;
        history(&tx, id, now, action, actor, note)?;
        tx.commit().ctx("committing a status change")?;
        a.status = to;
        Ok(change(&a, action, actor, note.to_string()))
    }

    /// Adds a suppression rule.
    pub fn add_suppression(
        &mut self,
        fields: BTreeMap<String, String>,
        reason: &str,
        author: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Suppression, StoreError> {
        if fields.is_empty() || fields.len() > MAX_SUPPRESSION_FIELDS {
            return Err(StoreError::Invalid(format!(
                "a suppression needs 1..={MAX_SUPPRESSION_FIELDS} fields"
            )));
        }
        for (k, v) in &fields {
            let known = matches!(k.as_str(), "rule.id" | "rule.name" | "level" | "tags")
                || crate::model::ENTITY_FIELDS.contains(&k.as_str());
            if !known {
                return Err(StoreError::Invalid(format!(
                    "suppression field {:?} is not one of rule.id, rule.name, level, tags, source.ip, user.name, host.name",
                    vigil_event::sanitize::display(k)
                )));
            }
            if v.len() > MAX_SUPPRESSION_TEXT {
                return Err(StoreError::Invalid(format!(
                    "suppression value for {k} is longer than {MAX_SUPPRESSION_TEXT} bytes"
                )));
            }
        }
        if reason.trim().is_empty() || reason.len() > MAX_SUPPRESSION_TEXT {
            return Err(StoreError::Invalid(format!(
                "a suppression needs a reason of 1..={MAX_SUPPRESSION_TEXT} bytes"
            )));
        }
        if expires_at.is_some_and(|e| e <= now) {
            return Err(StoreError::Invalid("expires_at is in the past".into()));
        }
        let id = new_id();
        self.conn
            .execute(
                "INSERT INTO suppressions (id, fields, reason, author, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    serde_json::to_string(&fields).unwrap_or_default(),
                    reason,
                    author,
                    now,
                    expires_at
                ],
            )
            .ctx("adding a suppression")?;
        Ok(Suppression {
            id,
            fields,
            reason: reason.to_string(),
            author: author.to_string(),
            created_at: format_ms(now),
            expires_at: expires_at.map(format_ms),
            hits: 0,
            active: true,
        })
    }

    /// Every suppression, newest first, with whether it is still active at `now`.
    pub fn suppressions(&self, now: Millis) -> Result<Vec<Suppression>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, fields, reason, author, created_at, expires_at, hits FROM suppressions \
                 ORDER BY created_at DESC LIMIT 10000",
            )
            .ctx("listing suppressions")?;
        let rows = st
            .query_map([], |r| suppression_row(r, now))
            .ctx("listing suppressions")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("listing suppressions")?;
        Ok(rows)
    }

    /// Deletes a suppression.
    pub fn delete_suppression(&mut self, id: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM suppressions WHERE id = ?1", params![id])
            .ctx("deleting a suppression")?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "suppression",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Pending deliveries due at `now`, oldest first.
    pub fn due(&self, now: Millis, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= ?1 ORDER BY next_attempt_at, created_at LIMIT ?2"
            ))
            .ctx("reading due deliveries")?;
        let rows = st
            .query_map(params![now, limit as i64], delivery_row)
            .ctx("reading due deliveries")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading due deliveries")?;
        Ok(rows)
    }

    /// When the next pending delivery is due.
    pub fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .ctx("reading the next due delivery")
    }

    /// Marks a delivery acknowledged by its channel; it is never sent again.
    pub fn mark_delivered(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let alert: Option<(String, String)> = tx
            .query_row(
                "SELECT alert_id, channel FROM deliveries WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("reading a delivery")?;
        tx.execute(
            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = ?2, \
             delivered_at = ?2, last_error = NULL WHERE id = ?1 AND state = 'pending'",
            params![id, now],
        )
        .ctx("marking a delivery delivered")?;
        if let Some((a, ch)) = alert {
            history(
                &tx,
                &a,
                now,
                "notification_delivered",
                "vigil",
                &format!("channel {ch}, delivery {id}"),
            )?;
        }
        tx.commit().ctx("committing a delivery")?;
        Ok(())
    }

    /// Records a failed attempt: retried after `delay_ms`, or `dead` once
    /// `max_attempts` attempts failed (returning the change to record).
    pub fn mark_failed(
        &mut self,
        id: &str,
        error: &str,
        now: Millis,
        policy: &Policy,
    ) -> Result<Option<Change>, StoreError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let row: Option<(String, String, i64)> = tx
            .query_row(
                "SELECT alert_id, channel, attempts FROM deliveries WHERE id = ?1 AND state = 'pending'",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ctx("reading a delivery")?;
        let Some((alert_id, channel, attempts)) = row else {
            return Ok(None);
        };
        let attempts = attempts as u32 + 1;
        let error: String = vigil_event::sanitize::display(error)
            .chars()
            .take(1000)
            .collect();
        let mut out = None;
        if attempts >= policy.retry.max_attempts {
            tx.execute(
                "UPDATE deliveries SET state = 'dead', attempts = ?2, updated_at = ?3, last_error = ?4 \
                 WHERE id = ?1",
                params![id, attempts, now, error],
            )
            .ctx("marking a delivery dead")?;
            let d = format!("channel {channel}, delivery {id}, {attempts} attempts: {error}");
            history(&tx, &alert_id, now, "delivery_dead", "vigil", &d)?;
            let a = tx
                .query_row(
                    &format!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?1"),
                    params![alert_id],
                    alert_row,
                )
                .optional()
                .ctx("reading an alert")?;
            out = a.map(|a| change(&a, "delivery_dead", "vigil", d));
        } else {
            let delay = crate::policy::backoff(&policy.retry, attempts) as i64;
            tx.execute(
                "UPDATE deliveries SET attempts = ?2, updated_at = ?3, last_error = ?4, \
                 next_attempt_at = ?5 WHERE id = ?1",
                params![id, attempts, now, error, now.saturating_add(delay)],
            )
            .ctx("scheduling a retry")?;
        }
        tx.commit().ctx("committing a failed attempt")?;
        Ok(out)
    }

    /// Deliveries in `state` (any when `None`), newest first.
    pub fn deliveries(
        &self,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE (?1 IS NULL OR state = ?1) \
                 ORDER BY updated_at DESC LIMIT ?2"
            ))
            .ctx("listing deliveries")?;
        let rows = st
            .query_map(params![state, limit as i64], delivery_row)
            .ctx("listing deliveries")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("listing deliveries")?;
        Ok(rows)
    }

    /// Deliveries per `(channel, state)`.
    pub fn delivery_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state")
            .ctx("counting deliveries")?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .ctx("counting deliveries")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("counting deliveries")?;
        Ok(rows)
    }
}

fn read_cursor(tx: &Transaction<'_>) -> Result<Option<u64>, StoreError> {
    tx.query_row("SELECT seq FROM cursor WHERE name = 'ledger'", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .ctx("reading the ledger cursor")
    .map(|s| s.map(|s| s as u64))
}

fn write_cursor(tx: &Transaction<'_>, seq: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO cursor (name, seq) VALUES ('ledger', ?1) \
         ON CONFLICT(name) DO UPDATE SET seq = ?1",
        params![seq as i64],
    )
    .ctx("moving the ledger cursor")?;
    Ok(())
}

/// Records one sighting inside `tx`.
fn record_in(
    tx: &Transaction<'_>,
    input: &AlertInput,
    now: Millis,
    policy: &Policy,
    channels: &dyn Fn(&str) -> bool,
) -> Result<Recorded, StoreError> {
    let key = input.group_key(&policy.group_by);
    let since = now.saturating_sub(policy.group_window_ms);
    let existing: Option<Alert> = tx
        .query_row(
            &format!(
                "SELECT {ALERT_COLS} FROM alerts WHERE group_key = ?1 AND first_seen > ?2 \
                     AND status != 'closed' ORDER BY first_seen DESC LIMIT 1"
            ),
            params![key, since],
            alert_row,
        )
        .optional()
        .ctx("looking up the alert group")?;
    let suppression = find_suppression(tx, input, now)?;
    if let Some(s) = &suppression {
        tx.execute(
            "UPDATE suppressions SET hits = hits + 1 WHERE id = ?1",
            params![s],
        )
        .ctx("counting a suppression hit")?;
        metrics::counter!("vigil_alerts_suppressed_total").increment(1);
    }
    let out = match existing {
        Some(mut a) => {
            a.count += 1;
            let room = policy.max_evidence.saturating_sub(a.evidence_seqs.len());
            if input.seqs.len() > room {
                a.evidence_truncated = true;
            }
            a.evidence_seqs.extend(input.seqs.iter().take(room));
            a.evidence_truncated |= input.evidence_truncated;
            tx.execute(
                "UPDATE alerts SET count = ?2, last_seen = MAX(last_seen, ?3), evidence = ?4, \
                     evidence_truncated = ?5 WHERE id = ?1",
                params![
                    a.id,
                    a.count as i64,
                    now,
                    serde_json::to_string(&a.evidence_seqs).unwrap_or_default(),
                    a.evidence_truncated
                ],
            )
            .ctx("raising an alert's count")?;
            // History stays short under a burst: the count says how many.
            let changes = if a.count.is_power_of_two() {
                history(
                    tx,
                    &a.id,
                    now,
                    "count_raised",
                    "vigil",
                    &format!("count {}", a.count),
                )?;
                vec![change(
                    &a,
                    "count_raised",
                    "vigil",
                    format!("count {}", a.count),
                )]
            } else {
                Vec::new()
            };
            Recorded {
                alert_id: a.id,
                created: false,
                suppressed: suppression.is_some(),
                queued: Vec::new(),
                changes,
            }
        }
        None => {
            metrics::counter!("vigil_alerts_total").increment(1);
            let mut evidence: Vec<u64> = input.seqs.clone();
            let truncated = evidence.len() > policy.max_evidence || input.evidence_truncated;
            evidence.truncate(policy.max_evidence);
            let a = Alert {
                id: new_id(),
                rule_id: input.rule_id.clone(),
                rule_name: input.rule_name.clone(),
                level: input.level,
                tags: input.tags.clone(),
                entity: input.entity.clone(),
                message: input.message.clone(),
                group_key: key,
                first_seen: format_ms(now),
                last_seen: format_ms(now),
                count: 1,
                evidence_seqs: evidence,
                evidence_truncated: truncated,
                status: Status::Open,
                suppressed: suppression.is_some(),
                suppression_id: suppression.clone(),
            };
            tx.execute(
                &format!(
                    "INSERT INTO alerts ({ALERT_COLS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, ?10, ?11, 'open', ?12, ?13)"
                ),
                params![
                    a.id,
                    a.rule_id,
                    a.rule_name,
                    level_num(a.level),
                    serde_json::to_string(&a.tags).unwrap_or_default(),
                    serde_json::to_string(&a.entity).unwrap_or_default(),
                    a.message,
                    a.group_key,
                    now,
                    serde_json::to_string(&a.evidence_seqs).unwrap_or_default(),
                    a.evidence_truncated,
                    a.suppressed,
                    a.suppression_id,
                ],
            )
            .ctx("opening an alert")?;
            history(tx, &a.id, now, "created", "vigil", &a.message)?;
            let mut changes = vec![change(&a, "created", "vigil", a.message.clone())];
            let mut queued = Vec::new();
            if let Some(s) = &suppression {
                let d = format!("suppression {s}");
                history(tx, &a.id, now, "suppressed", "vigil", &d)?;
                changes.push(change(&a, "suppressed", "vigil", d));
            } else if let Some(m) = policy.maintenance_for(input, now) {
                let d = format!("maintenance window: {}", m.reason);
                history(tx, &a.id, now, "notification_held", "vigil", &d)?;
            } else {
                queued = enqueue(tx, &a, input, now, policy, channels)?;
            }
            Recorded {
                alert_id: a.id,
                created: true,
                suppressed: suppression.is_some(),
                queued,
                changes,
            }
        }
    };
    Ok(out)
}

/// The id of the first active suppression matching `input`.
fn find_suppression(
    tx: &Transaction<'_>,
    input: &AlertInput,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let mut st = tx
        .prepare_cached(
            "SELECT id, fields FROM suppressions WHERE expires_at IS NULL OR expires_at > ?1 \
             ORDER BY created_at",
        )
        .ctx("reading suppressions")?;
    let rows = st
        .query_map(params![now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .ctx("reading suppressions")?;
    for row in rows {
        let (id, fields) = row.ctx("reading suppressions")?;
        let fields: BTreeMap<String, String> = serde_json::from_str(&fields).unwrap_or_default();
        if !fields.is_empty() && input.matches_all(&fields) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Enqueues one delivery per channel of the routes `a` matches, within the
/// routes' throttles; returns the delivery ids.
fn enqueue(
    tx: &Transaction<'_>,
    a: &Alert,
    input: &AlertInput,
    now: Millis,
    policy: &Policy,
    channels: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, StoreError> {
    let payload = serde_json::to_string(a).unwrap_or_default();
    let mut sent_to: Vec<&str> = Vec::new();
    let mut ids = Vec::new();
    for route in policy.routes_for(input) {
        if route.throttle_max > 0 {
            let window = (route.throttle_window_secs as Millis).saturating_mul(1000);
            let state: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT window_start, sent FROM throttle WHERE route = ?1",
                    params![route.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .ctx("reading a route throttle")?;
            let (start, sent) = match state {
                Some((s, n)) if now < s.saturating_add(window) => (s, n),
                _ => (now, 0),
            };
            if sent >= route.throttle_max as i64 {
                metrics::counter!("vigil_alerts_throttled_total", "route" => route.name.clone())
                    .increment(1);
                history(
                    tx,
                    &a.id,
                    now,
                    "notification_throttled",
                    "vigil",
                    &format!(
                        "route {} sent {} notifications in its {} s window",
                        route.name, sent, route.throttle_window_secs
                    ),
                )?;
                continue;
            }
            tx.execute(
                "INSERT INTO throttle (route, window_start, sent) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(route) DO UPDATE SET window_start = ?2, sent = ?3",
                params![route.name, start, sent + 1],
            )
            .ctx("updating a route throttle")?;
        }
        for ch in &route.channels {
            if sent_to.contains(&ch.as_str()) {
                continue;
            }
            sent_to.push(ch);
            if !channels(ch) {
                history(
                    tx,
                    &a.id,
                    now,
                    "notification_skipped",
                    "vigil",
                    &format!("route {} names unknown channel {ch}", route.name),
                )?;
                continue;
            }
            let id = new_id();
            tx.execute(
                &format!(
                    "INSERT INTO deliveries ({DELIVERY_COLS}, updated_at) VALUES \
                     (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, NULL, NULL, ?6, ?5)"
                ),
                params![id, a.id, ch, route.name, now, payload],
            )
            .ctx("enqueueing a delivery")?;
            history(
                tx,
                &a.id,
                now,
                "notification_queued",
                "vigil",
                &format!("channel {ch} (route {}), delivery {id}", route.name),
            )?;
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests;
