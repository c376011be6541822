//! `vigil reindex`: rebuild the search index of a data dir from its ledger.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use vigil_index::Index;
use vigil_ledger::LedgerReader;

use super::DataArgs;

/// Flags of `vigil reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    data: DataArgs,
}

/// Deletes `DATA_DIR/index` and builds every complete index file again.
/// The ledger is only read, so this is safe beside a running server (whose
/// own indexer rebuilds whatever is missing on its next pass).
pub fn run(a: ReindexArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let dir = config.data_dir.join("index");
    let ledger_dir = config.ledger_dir();
    let last = LedgerReader::open(&ledger_dir)
        .and_then(|r| r.last_seq())
        .with_context(|| format!("reading the ledger in {}", ledger_dir.display()))?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
    }
    let started = Instant::now();
    let (mut index, _) = Index::open(&dir, config.search.index_options())?;
    let report = index.build(&ledger_dir, last)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "indexed {} events in {} files ({} bytes) in {:.2} s ({:.0} events/s); seqs {}..={} stay unindexed until their file is complete",
        report.events,
        report.chunks,
        bytes,
        secs,
        report.events as f64 / secs.max(1e-9),
        index.covered() + 1,
        last,
    );
    if report.undecodable > 0 {
        println!(
            "{} records could not be read as events (searches skip them as well)",
            report.undecodable
        );
    }
    Ok(ExitCode::SUCCESS)
}
