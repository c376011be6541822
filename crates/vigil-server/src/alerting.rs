//! Wiring of `vigil-alert` into the server.
//!
//! ```text
//! writer ──committed alert events (try_send)──> vigil-alerts thread ──> Engine::record (alerts.db)
//!                                                       │                    └──> outbox ──> delivery worker ──> channels
//!                                                       └──> alert_* lifecycle events ──> pipeline.write_durable ──> ledger
//! ```
//!
//! The writer hands over alert events only after they are durable, so every
//! tracked alert names ledger seqs. The engine thread is the only place
//! that waits for the store; ingest never waits for it or for a channel.
//! Lifecycle changes (`alert_created`, `alert_count_raised`,
//! `alert_acknowledged`, `alert_closed`, `alert_suppressed`,
//! `alert_delivery_dead`) are appended to the ledger through the same
//! path as HTTP ingest, as internal events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use vigil_alert::model::{now_ms, Change};
use vigil_alert::Engine;
use vigil_event::{fields, Event};
use vigil_ingest::InputKind;

use crate::pipeline::{AlertSink, PipelineHandle, Prepared};

/// Batches of committed alert events the writer may queue for the engine.
pub const QUEUE: usize = 4096;

/// Lifecycle changes waiting to be written to the ledger.
const CHANGE_QUEUE: usize = 4096;

/// The `event.dataset` of lifecycle events (alerts themselves are `vigil.alert`).
pub const LIFECYCLE_DATASET: &str = "vigil.alert.lifecycle";

/// The running alert engine, for the HTTP API.
#[derive(Clone, Debug)]
pub struct Alerting {
    /// The engine (store, policy, channels).
    pub engine: Engine,
    changes: tokio::sync::mpsc::Sender<Change>,
}

impl Alerting {
    /// Records a lifecycle change in the ledger and waits until it is durable.
    pub async fn record_change(&self, pipeline: &PipelineHandle, change: &Change) {
        let ev = Prepared::new(&lifecycle_event(change));
        if let Err(e) = pipeline
            .write_durable(vec![ev], Vec::new(), InputKind::Internal)
            .await
        {
            tracing::error!(error = %e, "recording an alert change in the ledger failed");
        }
    }

    /// Queues a lifecycle change for the ledger without waiting.
    pub fn queue_change(&self, change: Change) {
        queue(&self.changes, change);
    }
}

fn queue(tx: &tokio::sync::mpsc::Sender<Change>, change: Change) {
    crate::incidents::on_alert_change(&change);
    if tx.try_send(change).is_err() {
        metrics::counter!("vigil_alert_changes_dropped_total").increment(1);
        tracing::error!("alert lifecycle queue full; a change was not written to the ledger");
    }
}

/// Most alert sightings recorded in one store transaction.
const MAX_PER_TRANSACTION: usize = 4096;

/// Reads a stored alert event; logs and skips what is not one.
fn read_alert(bytes: &[u8]) -> Option<vigil_alert::model::AlertInput> {
    let ev = serde_json::from_slice(bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| Event::from_json(v, 64).map_err(|e| e.to_string()));
    match ev.map(|ev| vigil_alert::model::AlertInput::from_event(&ev)) {
        Ok(Ok(input)) => Some(input),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a committed alert event is not an alert");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "a committed alert event could not be read");
            None
        }
    }
}

/// The engine thread: records what the writer hands over, in batches; after
/// a dropped hand-over, discards the queue and reads the missed alert events
/// back from the ledger instead.
fn run_feed(
    engine: &Engine,
    feed: &AlertFeed,
    durable: impl Fn() -> u64,
    ledger: &std::path::Path,
    changes: impl Fn(Change),
) {
    // Ends when the writer drops its sender at shutdown.
    'feed: while let Ok(first) = feed.rx.recv() {
        let mut inputs: Vec<_> = first.iter().filter_map(|b| read_alert(b)).collect();
        loop {
            if feed.lost.swap(false, Ordering::Acquire) {
                // Everything not yet recorded is in the ledger up to durable.
                while feed.rx.try_recv().is_ok() {}
                match catch_up(engine, ledger, durable()) {
                    Ok(n) => tracing::warn!(
                        alerts = n,
                        "read alert events back from the ledger after a full queue"
                    ),
                    Err(err) => {
                        tracing::error!(error = %err, "catching up on stored alert events failed")
                    }
                }
                continue 'feed;
            }
            if inputs.len() >= MAX_PER_TRANSACTION {
                break;
            }
            match feed.rx.try_recv() {
                Ok(b) => inputs.extend(b.iter().filter_map(|b| read_alert(b))),
                Err(_) => break,
            }
        }
        match engine.record_many(&inputs, now_ms()) {
            Ok(rs) => rs.into_iter().flat_map(|r| r.changes).for_each(&changes),
            Err(err) => tracing::error!(error = %err, "recording alerts failed"),
        }
    }
}

/// Records the alert events in the ledger after the store's cursor and up
/// to `durable` (committed while the engine was stopped or behind: a crash,
/// a full hand-over queue, a run with alerts off). A new store starts at
/// `durable` instead: alerts from before tracking was turned on are not
/// imported or notified. Returns how many alert events were recorded.
fn catch_up(engine: &Engine, ledger: &std::path::Path, durable: u64) -> anyhow::Result<u64> {
    let Some(cursor) = engine.with_store(|s| s.ledger_cursor())? else {
        engine.with_store(|s| s.set_ledger_cursor(durable))?;
        return Ok(0);
    };
    if cursor >= durable {
        return Ok(0);
    }
    let reader = vigil_ledger::LedgerReader::open(ledger)?;
    let mut pending = Vec::new();
    let mut recorded = 0u64;
    let needle = b"\"vigil.alert\"";
    let flow = reader.for_each_range(cursor + 1, durable, |_, payload| {
        // Only alert events name this dataset exactly; parse just those.
        if payload.windows(needle.len()).any(|w| w == needle) {
            if let Some(input) = read_stored_alert(payload) {
                pending.push(input);
            }
        }
        if pending.len() >= MAX_PER_TRANSACTION {
            match engine.record_many(&pending, now_ms()) {
                Ok(rs) => recorded += rs.len() as u64,
                Err(e) => return std::ops::ControlFlow::Break(e),
            }
            pending.clear();
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if let std::ops::ControlFlow::Break(e) = flow {
        return Err(e.into());
    }
    recorded += engine.record_many(&pending, now_ms())?.len() as u64;
    Ok(recorded)
}

/// A stored record as an alert to track: only the server's own alert
/// events (`vigil.input: internal`, `event.dataset: vigil.alert`), never an
/// ingested event that merely looks like one.
fn read_stored_alert(bytes: &[u8]) -> Option<vigil_alert::model::AlertInput> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let ev = Event::from_json(v, 64).ok()?;
    let own = ev.get_str(fields::VIGIL_INPUT) == Some(InputKind::Internal.as_str())
        && ev.get_str(fields::EVENT_DATASET) == Some("vigil.alert");
    own.then(|| vigil_alert::model::AlertInput::from_event(&ev).ok())
        .flatten()
}

/// The engine thread's end of an [`AlertSink`].
pub struct AlertFeed {
    rx: Receiver<Vec<Vec<u8>>>,
    lost: Arc<AtomicBool>,
}

/// The channel between the writer and the engine thread.
pub fn channel() -> (AlertSink, AlertFeed) {
    let (tx, rx) = sync_channel(QUEUE);
    let lost = Arc::new(AtomicBool::new(false));
    (
        AlertSink {
            tx,
            lost: lost.clone(),
        },
        AlertFeed { rx, lost },
    )
}

/// The ledger event of a lifecycle change.
pub fn lifecycle_event(c: &Change) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "alert");
    ev.set(fields::EVENT_DATASET, LIFECYCLE_DATASET);
    ev.set(fields::EVENT_ACTION, format!("alert_{}", c.action));
    ev.set("rule.id", c.rule_id.as_str());
    ev.set("rule.name", c.rule_name.as_str());
    ev.set("vigil.alert.id", c.alert_id.as_str());
    ev.set("vigil.alert.level", c.level.as_str());
    ev.set("vigil.alert.count", c.count);
    ev.set(fields::USER_NAME, c.actor.as_str());
    if !c.detail.is_empty() {
        ev.set(fields::EVENT_REASON, c.detail.as_str());
    }
    ev.set(
        fields::MESSAGE,
        format!(
            "alert {} {} ({}, count {}) by {}",
            c.alert_id, c.action, c.rule_name, c.count, c.actor
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

/// Opens `alerts.db`, starts the engine thread (fed by `rx`), the delivery
/// worker and the lifecycle recorder. `None` when alerts are off.
pub fn start(
    config: &crate::config::Config,
    pipeline: Arc<PipelineHandle>,
    feed: AlertFeed,
    shutdown: tokio::sync::watch::Receiver<bool>,
    playbooks: Option<crate::playbooks::Trigger>,
) -> anyhow::Result<Option<Alerting>> {
    if !config.alerts.is_enabled() {
        return Ok(None);
    }
    let path = config.data_dir.join("alerts.db");
    let engine = Engine::open(&path, &config.alerts)
        .with_context(|| format!("opening the alert store {}", path.display()))?;
    // Lifecycle recorder: batches changes into durable ledger writes.
    let changes = crate::pipeline::spawn_recorder(
        pipeline.clone(),
        CHANGE_QUEUE,
        lifecycle_event,
        "alert changes",
    );

    let tx = changes.clone();
    engine.spawn_worker(move |c| queue(&tx, c), shutdown);

    let e = engine.clone();
    let tx = changes.clone();
    // Read before any input is bound: everything up to here was committed
    // by an earlier run.
    let durable = pipeline.durable_seq();
    let ledger = config.ledger_dir();
    std::thread::Builder::new()
        .name("vigil-alerts".into())
        .spawn(move || {
            match catch_up(&e, &ledger, durable) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    alerts = n,
                    "recorded alert events committed while alert tracking was not running"
                ),
                Err(err) => {
                    tracing::error!(error = %err, "catching up on stored alert events failed")
                }
            }
            run_feed(
                &e,
                &feed,
                || pipeline.durable_seq(),
                &ledger,
                |c| {
                    if let Some(t) = &playbooks {
                        t.created(&c);
                    }
                    queue(&tx, c)
                },
            );
        })
        .context("starting the alert engine thread")?;
    Ok(Some(Alerting { engine, changes }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::EventWriter;

    fn alert(rule: &str) -> Prepared {
        let mut ev = Event::new();
        ev.set(fields::EVENT_KIND, "alert");
        ev.set(fields::EVENT_DATASET, "vigil.alert");
        ev.set("rule.id", rule);
        ev.set("vigil.alert.level", "high");
        crate::pipeline::stamp(
            &mut ev,
            InputKind::Internal,
            Some("vigil"),
            SystemTime::now(),
        );
        Prepared::new(&ev)
    }

    #[test]
    fn a_dropped_hand_over_is_read_back_from_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().into(),
            alerts: vigil_alert::AlertsConfig {
                enabled: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        let ledger =
            vigil_ledger::Ledger::open(&config.ledger_dir(), config.ledger_options()).unwrap();
        let mut w = EventWriter::new(ledger);
        let engine = Engine::open(&dir.path().join("alerts.db"), &config.alerts).unwrap();
        // A new store starts at the present.
        assert_eq!(catch_up(&engine, &config.ledger_dir(), 0).unwrap(), 0);

        // An ingested look-alike, then three alerts; only the third is handed over.
        let mut fake = alert("forged");
        let mut ev = Event::new();
        ev.set(fields::EVENT_KIND, "alert");
        ev.set(fields::EVENT_DATASET, "vigil.alert");
        ev.set("rule.id", "forged");
        crate::pipeline::stamp(&mut ev, InputKind::Http, Some("x"), SystemTime::now());
        fake.template = vigil_event::SeqTemplate::new(&ev);
        let mut stored = Vec::new();
        w.append(&[fake, alert("a"), alert("b"), alert("c")], |b| {
            stored.push(b.to_vec())
        })
        .unwrap();
        let durable = w.commit().unwrap();

        let (sink, feed) = channel();
        sink.tx.send(vec![stored[3].clone()]).unwrap();
        sink.lost.store(true, Ordering::Release);
        sink.tx.send(vec![stored[3].clone()]).unwrap();
        drop(sink);
        let changes = std::sync::Mutex::new(Vec::new());
        run_feed(
            &engine,
            &feed,
            || durable,
            &config.ledger_dir(),
            |c| changes.lock().unwrap().push(c),
        );
        let (alerts, total) = engine
            .with_store(|s| {
                s.list(&vigil_alert::store::ListFilter {
                    limit: 10,
                    ..Default::default()
                })
            })
            .unwrap();
        assert_eq!(total, 3, "{alerts:?}");
        assert!(alerts.iter().all(|a| a.count == 1 && a.rule_id != "forged"));
        assert_eq!(
            engine.with_store(|s| s.ledger_cursor()).unwrap(),
            Some(durable)
        );
    }
}
