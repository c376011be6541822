//! The alert engine: the store, the policy and the channels together, and
//! the delivery worker that drains the outbox.
//!
//! Delivery guarantee: a delivery row is written in the same SQLite
//! transaction as the alert it announces, and marked `delivered` only after
//! the channel acknowledged it. A crash between the acknowledgement and the
//! mark sends it again, so delivery is at least once; after the mark it is
//! never sent again. Every attempt carries the delivery id
//! (`X-Vigil-Delivery`) for receivers to drop duplicates.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use vigil_event::Event;

use crate::channel::Notifiers;
use crate::config::{AlertsConfig, ConfigError};
use crate::model::{now_ms, AlertInput, Change, InputError, Millis};
use crate::policy::Policy;
use crate::store::{Delivery, Recorded, Store, StoreError};

/// Deliveries attempted at once.
pub const BATCH: usize = 32;

/// Longest sleep of the worker between two looks at the outbox.
pub const IDLE_POLL: Duration = Duration::from_secs(1);

/// Why the engine could not start or record.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event is not an alert.
    #[error("not an alert event: {0}")]
    Input(#[from] InputError),
}

/// Shared alert state: store, policy, channels, and the worker's wake-up.
#[derive(Clone)]
pub struct Engine {
    store: Arc<Mutex<Store>>,
    policy: Arc<Policy>,
    notifiers: Arc<Notifiers>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy)
            .field("notifiers", &self.notifiers)
            .finish()
    }
}

impl Engine {
    /// Validates `config`, opens the store at `path` and builds the channels.
    pub fn open(path: &Path, config: &AlertsConfig) -> Result<Engine, EngineError> {
        config.validate()?;
        let notifiers = Notifiers::from_config(config)?;
        let store = Store::open(path)?;
        let dead = store
            .delivery_counts()?
            .iter()
            .filter(|(_, s, _)| s == "dead")
            .map(|(_, _, n)| n)
            .sum::<u64>();
        metrics::gauge!("vigil_deliveries_dead").set(dead as f64);
        Ok(Engine {
            store: Arc::new(Mutex::new(store)),
            policy: Arc::new(Policy::from_config(config)),
            notifiers: Arc::new(notifiers),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Runs `f` on the store (blocking: call from a thread that may block).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Records an alert event stored in the ledger, at `now`.
    pub fn record_event(&self, ev: &Event, now: Millis) -> Result<Recorded, EngineError> {
        let input = AlertInput::from_event(ev)?;
        self.record(&input, now)
    }

    /// Records an alert, waking the worker when deliveries were queued.
    pub fn record(&self, input: &AlertInput, now: Millis) -> Result<Recorded, EngineError> {
        let notifiers = self.notifiers.clone();
        let r =
            self.with_store(|s| s.record(input, now, &self.policy, &|ch: &str| notifiers.has(ch)))?;
        if !r.queued.is_empty() {
            self.wake.notify_one();
        }
        Ok(r)
    }

    /// Records several alerts in one transaction, in order; waking the
    /// worker when deliveries were queued.
    pub fn record_many(
        &self,
        inputs: &[AlertInput],
        now: Millis,
    ) -> Result<Vec<Recorded>, EngineError> {
        let notifiers = self.notifiers.clone();
        let r = self.with_store(|s| {
            s.record_many(inputs, now, &self.policy, &|ch: &str| notifiers.has(ch))
        })?;
        if r.iter().any(|r| !r.queued.is_empty()) {
            self.wake.notify_one();
        }
        Ok(r)
    }

    /// Starts the delivery worker on the current tokio runtime. `on_change`
    /// receives the `delivery_dead` changes; the worker stops when
    /// `shutdown` turns true.
    pub fn spawn_worker(
        &self,
        on_change: impl Fn(Change) + Send + Sync + 'static,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move { engine.worker(on_change, shutdown).await })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Option<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s)
        })
        .await
        .ok()
    }

    async fn worker(
        self,
        on_change: impl Fn(Change) + Send + Sync + 'static,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let due = self
                .blocking(|s| s.due(now_ms(), BATCH))
                .await
                .unwrap_or(Ok(Vec::new()));
            let due = match due {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "reading the alert outbox failed");
                    Vec::new()
                }
            };
            if due.is_empty() {
                let next = self.blocking(|s| s.next_due()).await;
                let wait = match next {
                    Some(Ok(Some(t))) => Duration::from_millis(
                        t.saturating_sub(now_ms())
                            .clamp(1, IDLE_POLL.as_millis() as i64) as u64,
                    ),
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut set = tokio::task::JoinSet::new();
            for d in due {
                let notifiers = self.notifiers.clone();
                set.spawn(async move {
                    let r = notifiers.send(&d).await;
                    (d, r)
                });
            }
            while let Some(joined) = set.join_next().await {
                let Ok((d, result)) = joined else { continue };
                self.settle(d, result, &on_change).await;
            }
        }
    }

    async fn settle(
        &self,
        d: Delivery,
        result: Result<(), String>,
        on_change: &(impl Fn(Change) + Send + Sync + 'static),
    ) {
        let kind = self.notifiers.kind(&d.channel).unwrap_or("unknown");
        let channel = d.channel.clone();
        match result {
            Ok(()) => {
                let id = d.id.clone();
                match self
                    .blocking(move |s| s.mark_delivered(&id, now_ms()))
                    .await
                {
                    Some(Ok(())) => {
                        metrics::counter!("vigil_deliveries_total", "channel" => channel, "state" => "delivered").increment(1);
                    }
                    Some(Err(e)) => tracing::error!(error = %e, "recording a delivery failed"),
                    None => {}
                }
            }
            Err(err) => {
                tracing::warn!(
                    channel = %vigil_event::sanitize::display(&d.channel),
                    kind,
                    delivery = %d.id,
                    error = %vigil_event::sanitize::display(&err),
                    "alert delivery failed"
                );
                let policy = self.policy.clone();
                let id = d.id.clone();
                let r = self
                    .blocking(move |s| s.mark_failed(&id, &err, now_ms(), &policy))
                    .await;
                match r {
                    Some(Ok(Some(change))) => {
                        metrics::counter!("vigil_deliveries_total", "channel" => channel, "state" => "dead").increment(1);
                        metrics::gauge!("vigil_deliveries_dead").increment(1.0);
                        on_change(change);
                    }
                    Some(Ok(None)) => {
                        metrics::counter!("vigil_deliveries_total", "channel" => channel, "state" => "failed").increment(1);
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "recording a delivery failure failed")
                    }
                    None => {}
                }
            }
        }
    }
}
