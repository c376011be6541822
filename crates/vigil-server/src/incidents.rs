//! Wiring of `vigil-incident` into the server.
//!
//! ```text
//! alert engine ──alert_created / alert_count_raised──> vigil-incidents thread ──> Store::observe (incidents.db)
//! API / CLI / playbooks ──> Incidents::run ──> Store::{set_status, pin, …} ─┐
//!                                                     incident_* events <─────┘──> pipeline.write_durable ──> ledger
//! ```
//!
//! The alert engine's lifecycle queue calls [`on_alert_change`] for every
//! change; newly created and raised alerts are handed to the incident
//! thread without blocking (a full queue drops the hand-over and counts it
//! in `vigil_incident_handovers_dropped_total`, and the thread then sweeps
//! the recent alerts no incident holds, as it does at start for alerts
//! recorded while it was not running). The thread reads the alert from `alerts.db`,
//! the time of its earliest evidence from the ledger, and runs the grouping
//! policy. Every incident change becomes a ledger event
//! (`event.dataset: vigil.incident`, `event.action: incident_<change>`),
//! written through the same path as alert lifecycle events; a change made
//! through the API is answered only once its event is durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde_json::Value;
use vigil_alert::model::{parse_time, Millis};
use vigil_event::{fields, Event};
use vigil_incident::{Change, IncidentError, Store};
use vigil_ingest::InputKind;

use crate::alerting::Alerting;
use crate::pipeline::{PipelineHandle, Prepared};

/// The `event.dataset` of incident change events.
pub const DATASET: &str = "vigil.incident";

/// Alert ids waiting for the grouping policy.
const HANDOVER_QUEUE: usize = 4096;

/// Incident changes waiting for the ledger (automatic grouping).
const CHANGE_QUEUE: usize = 4096;

/// Evidence seqs read to find an alert's earliest evidence time.
const MAX_EVIDENCE_READ: usize = 8;

/// Where created and raised alerts go; set by [`start`] (one server per process).
static HANDOVER: Mutex<Option<SyncSender<String>>> = Mutex::new(None);

/// Set when a hand-over was dropped: the thread then sweeps recent alerts.
static DROPPED: AtomicBool = AtomicBool::new(false);

/// How long the grouping thread waits for hand-overs before looking at
/// [`DROPPED`].
const SWEEP_CHECK: Duration = Duration::from_secs(5);

/// Sweeps run at least this often.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Alerts read per page, and most pages, in a sweep.
const SWEEP_PAGE: usize = 500;
const SWEEP_PAGES: usize = 20;

/// Hands a newly created or raised alert to the grouping policy, without
/// blocking; other alert changes are ignored.
pub fn on_alert_change(change: &vigil_alert::model::Change) {
    if !matches!(change.action, "created" | "count_raised") {
        return;
    }
    let guard = HANDOVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = guard.as_ref() {
        if tx.try_send(change.alert_id.clone()).is_err() {
            metrics::counter!("vigil_incident_handovers_dropped_total").increment(1);
            DROPPED.store(true, Ordering::Release);
            tracing::warn!(alert = %change.alert_id, "incident queue full; the alert was not grouped");
        }
    }
}

/// The running incident store, for the HTTP API and automation.
#[derive(Clone)]
pub struct Incidents {
    store: Arc<Mutex<Store>>,
    pipeline: Arc<PipelineHandle>,
    ledger_dir: PathBuf,
    keys_dir: PathBuf,
    changes: tokio::sync::mpsc::Sender<Change>,
}

impl std::fmt::Debug for Incidents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incidents")
            .field("ledger_dir", &self.ledger_dir)
            .finish()
    }
}

/// Runs `f` under the store's lock; returns its result and the changes it
/// made (the metrics are republished when there were any).
fn locked<T>(store: &Mutex<Store>, f: impl FnOnce(&mut Store) -> T) -> (T, Vec<Change>) {
    let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
    let out = f(&mut s);
    let changes = s.take_changes();
    if !changes.is_empty() {
        publish(&s);
    }
    (out, changes)
}

impl Incidents {
    /// Runs `f` on the store (blocking), then queues its changes for the ledger.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let (out, changes) = locked(&self.store, f);
        for c in changes {
            if self.changes.try_send(c).is_err() {
                metrics::counter!("vigil_incident_changes_dropped_total").increment(1);
                tracing::error!(
                    "incident change queue full; a change was not written to the ledger"
                );
            }
        }
        out
    }

    /// Runs `f` on the store off the async workers and waits until the
    /// ledger events of its changes are durable.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, IncidentError> + Send + 'static,
    ) -> Result<T, IncidentError> {
        let store = self.store.clone();
        let (out, changes) = tokio::task::spawn_blocking(move || locked(&store, f))
            .await
            .map_err(|e| {
                IncidentError::Unavailable(format!("the incident store task failed: {e}"))
            })?;
        if !changes.is_empty() {
            let events = changes
                .iter()
                .map(|c| Prepared::new(&change_event(c)))
                .collect();
            if let Err(e) = self
                .pipeline
                .write_durable(events, Vec::new(), InputKind::Internal)
                .await
            {
                tracing::error!(error = %e, "recording incident changes in the ledger failed");
            }
        }
        out
    }

    /// The stored event of ledger record `seq` (only durable records).
    pub fn event(&self, seq: u64) -> Result<Value, String> {
        read_event(&self.ledger_dir, self.pipeline.durable_seq(), seq)
    }

    /// The ledger directory (for proofs).
    pub fn ledger_dir(&self) -> &std::path::Path {
        &self.ledger_dir
    }

    /// The checkpoint verifier key, when it can be read.
    pub fn verifier_key(&self) -> Option<String> {
        vigil_ledger::integrity::load_verifier(&self.keys_dir)
            .ok()
            .map(|k| k.to_string())
    }
}

/// Reads ledger record `seq` as JSON, refusing seqs not yet durable.
pub fn read_event(ledger_dir: &std::path::Path, durable: u64, seq: u64) -> Result<Value, String> {
    if seq == 0 || seq > durable {
        return Err(format!(
            "no stored event {seq} (the ledger holds 1..={durable})"
        ));
    }
    let reader = vigil_ledger::LedgerReader::open(ledger_dir).map_err(|e| e.to_string())?;
    read_with(&reader, seq)
}

/// Reads record `seq` through an open reader, as JSON.
fn read_with(reader: &vigil_ledger::LedgerReader, seq: u64) -> Result<Value, String> {
    match reader.iter_range(seq, seq).next() {
        Some(Ok(rec)) => serde_json::from_slice(&rec.payload)
            .map_err(|e| format!("event {seq} is not JSON: {e}")),
        Some(Err(e)) => Err(format!("reading event {seq}: {e}")),
        None => Err(format!(
            "event {seq} is no longer stored (deleted by retention)"
        )),
    }
}

/// An event's `@timestamp` in ms.
pub fn event_time(ev: &Value) -> Option<Millis> {
    ev.get("@timestamp")
        .and_then(Value::as_str)
        .and_then(|t| parse_time(t).ok())
}

/// The ledger event of an incident change.
pub fn change_event(c: &Change) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::EVENT_ACTION, format!("incident_{}", c.action));
    ev.set("vigil.incident.id", c.incident_id.as_str());
    ev.set("vigil.incident.title", c.title.as_str());
    ev.set("vigil.incident.status", c.status.as_str());
    ev.set("vigil.incident.severity", c.severity.as_str());
    if let Some(a) = &c.alert_id {
        ev.set("vigil.alert.id", a.as_str());
    }
    if let Some(s) = c.seq {
        ev.set("vigil.incident.pinned_seq", s);
    }
    ev.set(fields::USER_NAME, c.actor.as_str());
    if !c.detail.is_empty() {
        ev.set(fields::EVENT_REASON, c.detail.as_str());
    }
    let detail: String = c.detail.chars().take(200).collect();
    ev.set(
        fields::MESSAGE,
        format!(
            "incident {} {} by {}: {}",
            c.incident_id, c.action, c.actor, detail
        ),
    );
    crate::pipeline::stamp(
        &mut ev,
        InputKind::Internal,
        Some("vigil"),
        SystemTime::now(),
    );
    ev
}

/// Sets the incident gauges from the store.
fn publish(s: &Store) {
    if let Ok(counts) = s.status_counts() {
        for (st, n) in counts {
            metrics::gauge!("vigil_incidents", "status" => st.as_str()).set(n as f64);
        }
    }
    let Ok(m) = s.metrics() else { return };
    for (sev, sm) in &m.by_severity {
        for (name, stat) in [("mttd", &sm.mttd), ("mtta", &sm.mtta), ("mttr", &sm.mttr)] {
            let base = format!("vigil_incident_{name}_seconds");
            let sev = sev.clone();
            if let Some(med) = stat.median_secs {
                metrics::gauge!(base.clone(), "severity" => sev.clone(), "quantile" => "0.5")
                    .set(med);
            }
            let sum = stat.mean_secs.unwrap_or(0.0) * stat.count as f64;
            metrics::gauge!(format!("{base}_sum"), "severity" => sev.clone()).set(sum);
            metrics::gauge!(format!("{base}_count"), "severity" => sev).set(stat.count as f64);
        }
    }
}

/// The earliest `@timestamp` among an alert's first evidence seqs.
fn evidence_time(ledger_dir: &std::path::Path, durable: u64, seqs: &[u64]) -> Option<Millis> {
    // One reader for all of them: opening one lists the ledger directory.
    let reader = vigil_ledger::LedgerReader::open(ledger_dir).ok()?;
    seqs.iter()
        .take(MAX_EVIDENCE_READ)
        .filter(|&&s| s != 0 && s <= durable)
        .filter_map(|&s| read_with(&reader, s).ok())
        .filter_map(|ev| event_time(&ev))
        .min()
}

/// Runs the grouping policy for one alert.
fn group(incidents: &Incidents, alert: &vigil_alert::model::Alert) {
    let ev = evidence_time(
        &incidents.ledger_dir,
        incidents.pipeline.durable_seq(),
        &alert.evidence_seqs,
    );
    match incidents.with_store(|s| s.observe(alert, ev)) {
        Ok(found) => {
            let result = if found.is_some() {
                "grouped"
            } else {
                "ignored"
            };
            metrics::counter!("vigil_incident_alerts_observed_total", "result" => result)
                .increment(1);
        }
        Err(e) => {
            tracing::error!(error = %e, alert = %alert.id, "grouping an alert into incidents failed")
        }
    }
}

/// Groups the alerts seen within the longest grouping window that no
/// incident holds yet: those recorded while the policy did not see them
/// (read back from the ledger after a crash, a dropped hand-over, a run
/// with incidents off). Linked alerts are only refreshed.
fn sweep(incidents: &Incidents, alerting: &Alerting) {
    let window = {
        let s = incidents.store.lock().unwrap_or_else(|e| e.into_inner());
        s.config()
            .group_window_secs
            .max(s.config().chain_window_secs)
    };
    let since =
        vigil_alert::model::now_ms().saturating_sub((window as Millis).saturating_mul(1000));
    for page in 0..SWEEP_PAGES {
        let filter = vigil_alert::store::ListFilter {
            since: Some(since),
            limit: SWEEP_PAGE,
            offset: page * SWEEP_PAGE,
            ..Default::default()
        };
        let (alerts, total) = match alerting.engine.with_store(|s| s.list(&filter)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading recent alerts for incident grouping failed");
                return;
            }
        };
        for a in alerts
            .iter()
            .filter(|a| a.status != vigil_alert::model::Status::Closed)
        {
            let linked = incidents.with_store(|s| s.incident_of(&a.id));
            if matches!(linked, Ok(None)) {
                group(incidents, a);
            }
        }
        if ((page + 1) * SWEEP_PAGE) as u64 >= total {
            break;
        }
    }
}

/// The grouping thread: sweeps recent alerts, then reads each handed-over
/// alert and runs the policy; sweeps again after a dropped hand-over and
/// every [`SWEEP_EVERY`] while idle.
fn run_grouping(incidents: &Incidents, alerting: &Alerting, rx: &Receiver<String>) {
    sweep(incidents, alerting);
    let mut last_sweep = std::time::Instant::now();
    loop {
        let id = match rx.recv_timeout(SWEEP_CHECK) {
            Ok(id) => id,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Alerts read back from the ledger (the alert engine's
                // catch-up) bypass the hand-over: a periodic sweep finds them.
                if DROPPED.swap(false, Ordering::AcqRel) || last_sweep.elapsed() >= SWEEP_EVERY {
                    sweep(incidents, alerting);
                    last_sweep = std::time::Instant::now();
                }
                continue;
            }
            // The sender was replaced or dropped.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match alerting.engine.with_store(|s| s.get(&id)) {
            Ok((a, _, _)) => group(incidents, &a),
            Err(e) => tracing::warn!(error = %e, "an alert handed to incidents could not be read"),
        }
    }
}

/// Opens `incidents.db` and starts the grouping thread and the change
/// recorder. `None` when incidents are off or alert tracking is.
pub fn start(
    config: &crate::config::Config,
    pipeline: Arc<PipelineHandle>,
    alerting: Option<&Alerting>,
) -> anyhow::Result<Option<Incidents>> {
    let Some(alerting) = alerting else {
        return Ok(None);
    };
    if !config.incidents.enabled {
        return Ok(None);
    }
    let path = config.data_dir.join("incidents.db");
    let store = Store::open(&path, config.incidents.clone())
        .with_context(|| format!("opening the incident store {}", path.display()))?;
    publish(&store);
    let changes = crate::pipeline::spawn_recorder(
        pipeline.clone(),
        CHANGE_QUEUE,
        change_event,
        "incident changes",
    );
    let incidents = Incidents {
        store: Arc::new(Mutex::new(store)),
        pipeline,
        ledger_dir: config.ledger_dir(),
        keys_dir: config.data_dir.join("keys"),
        changes,
    };
    let (tx, rx) = sync_channel(HANDOVER_QUEUE);
    *HANDOVER.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    let inc = incidents.clone();
    let al = alerting.clone();
    std::thread::Builder::new()
        .name("vigil-incidents".into())
        .spawn(move || run_grouping(&inc, &al, &rx))
        .context("starting the incident thread")?;
    Ok(Some(incidents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_incident::{Level, Status};

    #[test]
    fn change_events_name_the_incident_and_the_actor() {
        let c = Change {
            action: "status_changed".into(),
            incident_id: "abc".into(),
            title: "SSH brute force".into(),
            status: Status::Contained,
            severity: Level::High,
            actor: "alice".into(),
            detail: "investigating → contained".into(),
            alert_id: None,
            seq: Some(7),
            at: 0,
        };
        let ev = change_event(&c);
        assert_eq!(ev.get_str("event.action"), Some("incident_status_changed"));
        assert_eq!(ev.get_str("event.dataset"), Some(DATASET));
        assert_eq!(ev.get_str("vigil.incident.status"), Some("contained"));
        assert_eq!(ev.get_str("user.name"), Some("alice"));
        assert_eq!(ev.get_str("vigil.input"), Some("internal"));
        assert_eq!(
            ev.get("vigil.incident.pinned_seq").and_then(Value::as_u64),
            Some(7)
        );
    }
}
