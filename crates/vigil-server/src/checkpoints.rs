//! When to checkpoint the ledger, and where the checkpoints go.
//!
//! The writer thread calls [`Checkpointer::after_commit`] after every group
//! commit; a checkpoint is made when `[ledger] checkpoint_interval_secs`
//! have passed or `[ledger] checkpoint_every_events` events were stored since
//! the last one, and always on shutdown. Each checkpoint is signed and sealed
//! by the ledger's [`Notary`] and then appended to every file witness
//! (`[ledger] witness_files`, e.g. on another disk or mount) so that a later
//! rollback of the whole data dir is caught by `vigil verify --checkpoint`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_ledger::integrity::{CheckpointRecord, Notary};
use vigil_ledger::Ledger;

/// Checkpoint policy and state.
pub struct Checkpointer {
    notary: Notary,
    interval: Duration,
    every_events: u64,
    witnesses: Vec<PathBuf>,
    last_time: Instant,
    last_size: u64,
}

impl Checkpointer {
    /// A checkpointer that signs with `notary`.
    pub fn new(
        notary: Notary,
        interval: Duration,
        every_events: u64,
        witnesses: Vec<PathBuf>,
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
                self.push(&rec);
            }
            Err(e) => {
                metrics::counter!("vigil_ledger_checkpoint_errors_total").increment(1);
                tracing::error!(error = %e, "signing a ledger checkpoint failed");
            }
        }
    }

    fn push(&self, rec: &CheckpointRecord) {
        for w in &self.witnesses {
            let r = OpenOptions::new()
                .create(true)
                .append(true)
                .open(w)
                .and_then(|mut f| {
                    let mut line = serde_json::to_string(rec).map_err(std::io::Error::other)?;
                    line.push('\n');
                    f.write_all(line.as_bytes())?;
                    f.sync_data()
                });
            match r {
                Ok(()) => metrics::counter!("vigil_witness_pushes_total", "witness" => "file")
                    .increment(1),
                Err(e) => {
                    metrics::counter!("vigil_witness_push_failures_total", "witness" => "file")
                        .increment(1);
                    tracing::warn!(witness = %w.display(), error = %e, "pushing a checkpoint to a file witness failed; the next checkpoint retries");
                }
            }
        }
    }
}
