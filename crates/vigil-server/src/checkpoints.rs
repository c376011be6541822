//! When to checkpoint the ledger, and where the checkpoints go.
//!
//! The writer thread calls [`Checkpointer::after_commit`] after every group
//! commit; a checkpoint is made when `[ledger] checkpoint_interval_secs`
//! have passed or `[ledger] checkpoint_every_events` events were stored since
//! the last one, and always on shutdown. Each checkpoint is signed and sealed
//! by the ledger's [`Notary`] and then handed to the [`WitnessSet`]
//! (files on another disk, a syslog server, an HTTP service: see
//! [`crate::witness`]) so that a later rollback of the whole data dir is caught
//! by `vigil verify --checkpoint`. Handing over never blocks: the pushes run on
//! the witness thread, so a slow witness cannot stall the writer. Dropping the
//! checkpointer (when the writer thread ends, after the final checkpoint)
//! waits a few seconds for that checkpoint to reach the witnesses.

use std::time::{Duration, Instant};

use vigil_ledger::integrity::Notary;
use vigil_ledger::Ledger;

use crate::witness::WitnessSet;

/// Checkpoint policy and state.
pub struct Checkpointer {
    notary: Notary,
    interval: Duration,
    every_events: u64,
    witnesses: WitnessSet,
    last_time: Instant,
    last_size: u64,
}

impl Checkpointer {
    /// A checkpointer that signs with `notary`.
    pub fn new(
        notary: Notary,
        interval: Duration,
        every_events: u64,
        witnesses: WitnessSet,
    ) -> Self {
        let last_size = notary.last().map_or(0, |c| c.size);
        Self {
            notary,
            interval,
            every_events: every_events.max(1),
            witnesses,
            last_time: Instant::now(),
            last_size,
        }
    }

    /// Checkpoints if due (or if `force`) and the durable tree has grown.
    pub fn after_commit(&mut self, ledger: &Ledger, force: bool) {
        let Some((size, root)) = ledger.durable_root() else {
            return;
        };
        if size <= self.last_size {
            return;
        }
        let due = force
            || self.last_time.elapsed() >= self.interval
            || size - self.last_size >= self.every_events;
        if !due {
            return;
        }
        match self.notary.checkpoint(size, root) {
            Ok(rec) => {
                self.last_size = size;
                self.last_time = Instant::now();
                metrics::counter!("vigil_ledger_checkpoints_total").increment(1);
                metrics::gauge!("vigil_ledger_checkpoint_size").set(size as f64);
                self.witnesses.publish(&rec, size);
            }
            Err(e) => {
                metrics::counter!("vigil_ledger_checkpoint_errors_total").increment(1);
                tracing::error!(error = %e, "signing a ledger checkpoint failed");
            }
        }
    }
}
