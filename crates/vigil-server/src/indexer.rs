//! Keeps the search index (`vigil-index`) up to date beside the writer.
//!
//! A background thread indexes each chunk of seqs once all of it is
//! durable, reading it back from the ledger, and installs it while searches
//! go on ([`vigil_index::build_chunk`] holds no lock). Searches ask
//! [`Indexer::candidates`] which seq ranges can hold a match; seqs not yet
//! indexed (the newest events) are always part of the answer, so recent
//! events are found by scanning them. The index is derived: a damaged or
//! missing file is discarded at start and rebuilt from the ledger.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use vigil_index::{Candidates, Index, IndexOptions, Need};

/// Missing index files from which the indexer builds on several threads.
const BACKLOG_CHUNKS: usize = 8;

/// How often the indexer thread reads the durable seq to see whether a new
/// file's worth of events is complete: a load and a division, so polling
/// this often costs nothing, while a file is built within this long of
/// becoming complete (a wait of seconds left the index that far behind
/// after every burst).
pub const WATCH: Duration = Duration::from_millis(50);

/// The index of one data directory and the thread that extends it.
#[derive(Debug)]
pub struct Indexer {
    ledger_dir: PathBuf,
    opts: IndexOptions,
    index: RwLock<Index>,
}

impl Indexer {
    /// Opens `DATA_DIR/index`, discarding (and logging) any file that does
    /// not check out.
    pub fn open(data_dir: &Path, ledger_dir: &Path, opts: IndexOptions) -> anyhow::Result<Indexer> {
        let dir = data_dir.join("index");
        let (index, report) = Index::open(&dir, opts)
            .with_context(|| format!("opening the search index in {}", dir.display()))?;
        for (path, why) in &report.discarded {
            tracing::warn!(file = %path.display(), reason = %why, "discarded an index file; it will be rebuilt");
        }
        metrics::gauge!("vigil_index_chunks").set(index.chunk_count() as f64);
        Ok(Indexer {
            ledger_dir: ledger_dir.to_path_buf(),
            opts,
            index: RwLock::new(index),
        })
    }

    /// Indexes every complete chunk at or below `durable` that has no file;
    /// returns how many were built.
    pub fn catch_up(&self, durable: u64) -> anyhow::Result<usize> {
        let missing = self.read().missing(durable);
        let mut built = 0;
        let started = std::time::Instant::now();
        // A large backlog (a first start over an existing ledger, an index
        // rebuilt after an upgrade) is built on several threads. Otherwise
        // one chunk at a time: measured with the simulated mix, building on
        // both cores during a burst cut the stored rate by 14 % to gain 8 %
        // on the indexed one, and ingest (UDP above all) must come first.
        let threads = if missing.len() >= BACKLOG_CHUNKS {
            vigil_index::build_threads()
        } else {
            1
        };
        vigil_index::build_chunks(
            &self.ledger_dir,
            self.opts,
            &missing,
            threads,
            |first, made, report| {
                let column_bytes = made.column_bytes();
                let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
                index.install(made)?;
                built += 1;
                metrics::gauge!("vigil_index_chunks").set(index.chunk_count() as f64);
                metrics::gauge!("vigil_index_covered_seq").set(index.covered() as f64);
                metrics::counter!("vigil_index_events_total").increment(report.events);
                tracing::debug!(
                    first,
                    events = report.events,
                    column_bytes,
                    threads,
                    took_ms = started.elapsed().as_millis() as u64,
                    "indexed a chunk"
                );
                Ok(())
            },
        )
        .with_context(|| format!("indexing seqs up to {durable}"))?;
        Ok(built)
    }

    /// Starts the thread that calls [`Self::catch_up`] with the writer's
    /// durable seq: within [`WATCH`] of a file's worth of events becoming
    /// durable, and every `rescan` otherwise (which retries a failed build);
    /// it ends when the indexer is dropped.
    pub fn spawn(
        this: &Arc<Indexer>,
        durable: impl Fn() -> u64 + Send + 'static,
        rescan: Duration,
    ) -> std::io::Result<()> {
        let weak: Weak<Indexer> = Arc::downgrade(this);
        let chunk_len = this.opts.chunk_len().max(1);
        std::thread::Builder::new()
            .name("vigil-indexer".into())
            .spawn(move || {
                let mut seen = 0;
                let mut last = std::time::Instant::now();
                loop {
                    std::thread::sleep(WATCH);
                    let Some(me) = weak.upgrade() else { return };
                    let d = durable();
                    let complete = d / chunk_len;
                    if complete == seen && last.elapsed() < rescan {
                        continue;
                    }
                    seen = complete;
                    last = std::time::Instant::now();
                    me.catch_up_logged(d);
                }
            })
            .map(|_| ())
    }

    /// [`Self::catch_up`], with a failure counted and logged.
    fn catch_up_logged(&self, durable: u64) {
        if let Err(e) = self.catch_up(durable) {
            metrics::counter!("vigil_index_errors_total").increment(1);
            tracing::error!(
                error = format!("{e:#}"),
                "building the search index failed; searches read those events in full"
            );
        }
    }

    /// The seq ranges within `from..=to` that may hold events matching
    /// `query` in `[since, until)`.
    pub fn candidates(
        &self,
        query: &vigil_query::Query,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        from: u64,
        to: u64,
    ) -> Candidates {
        let need = Need::of(&query.root);
        let c = self.read().candidates(
            &need,
            since.map(|t| t.timestamp_millis()),
            until.map(|t| t.timestamp_millis()),
            from,
            to,
        );
        metrics::counter!("vigil_search_blocks_skipped_total").increment(c.skipped);
        c
    }

    /// Runs a search (filter and pipes) over the ledger up to
    /// `params.up_to_seq` (or its last seq): reads only the seqs the index
    /// cannot rule out, and answers an aggregation from the blocks'
    /// columns where it can ([`vigil_index::ColumnPlan`]). The API, `vigil
    /// search` and `vigil bench search` all search through here, so they
    /// give the same answer as a full scan.
    pub fn search(
        &self,
        s: &vigil_query::Search,
        params: &vigil_query::exec::SearchParams,
    ) -> Result<vigil_query::exec::SearchResult, vigil_query::exec::SearchError> {
        let to = match params.up_to_seq {
            Some(seq) => seq,
            None if !self.ledger_dir.exists() => 0,
            None => vigil_ledger::LedgerReader::open(&self.ledger_dir)?.last_seq()?,
        };
        let params = vigil_query::exec::SearchParams {
            up_to_seq: Some(to),
            ..params.clone()
        };
        // The lock is held only while the plan is taken, never during the read.
        let prepared = self.read().prepare(s, params.since, params.until, 1, to);
        metrics::counter!("vigil_search_blocks_skipped_total")
            .increment(prepared.candidates.skipped);
        let r = vigil_index::run_prepared(&self.ledger_dir, s, &params, prepared)?;
        metrics::counter!("vigil_search_events_from_columns_total").increment(r.from_columns);
        Ok(r)
    }

    /// Highest seq covered by index files.
    pub fn covered(&self) -> u64 {
        self.read().covered()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_ledger::{Ledger, LedgerOptions};

    #[test]
    fn catches_up_and_prunes() {
        let data = tempfile::tempdir().unwrap();
        let ledger_dir = data.path().join("ledger");
        let mut ledger = Ledger::open(&ledger_dir, LedgerOptions::default()).unwrap();
        for i in 0..40 {
            let user = if i == 25 { "mallory" } else { "alice" };
            ledger
                .append(format!(r#"{{"user":{{"name":"{user}"}}}}"#).as_bytes())
                .unwrap();
        }
        let durable = ledger.commit().unwrap();
        let opts = IndexOptions {
            block_size: 8,
            blocks_per_chunk: 2,
        };
        let ix = Indexer::open(data.path(), &ledger_dir, opts).unwrap();
        assert_eq!(ix.catch_up(durable).unwrap(), 2);
        assert_eq!(ix.catch_up(durable).unwrap(), 0);
        assert_eq!(ix.covered(), 32);
        let q = vigil_query::parse("user.name:mallory").unwrap();
        let c = ix.candidates(&q, None, None, 1, durable);
        // Seq 26 is in block 25..=32; 33..=40 is not indexed yet.
        assert_eq!(c.ranges, vec![(25, 40)]);
    }
}
