//! `vigil bench search`: needle and aggregation searches over generated
//! telemetry, with the index, with a full scan, and with `grep -F` over the
//! raw lines, side by side in one run. Aggregations also run the way they
//! ran before partial decoding (every event decoded in full), so the gain
//! is measured in the same run.
//!
//! The data is made by `vigil simulate` (seeded, so every run sees the same
//! events), stored by `vigil ingest` into a fresh data dir, and indexed by
//! `vigil reindex`; the searches then run in this process, as the server
//! runs them (the time reported is the server-side time).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use vigil_query::exec::{run as run_search, SearchParams};

use super::bench::median;

/// Flags of `vigil bench search`.
#[derive(Debug, Args)]
pub struct SearchBench {
    /// Events to generate and store.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Seed for `vigil simulate`.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Runs per query; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Keep the generated data here instead of a temporary directory (and
    /// reuse it when it already holds the same number of events).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

/// Runs the benchmark and prints a Markdown table.
pub fn run(b: SearchBench) -> anyhow::Result<ExitCode> {
    let tmp;
    let work = match &b.work_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work)?;
    let raw = work.join(format!("sim-{}-{}.log", b.seed, b.events));
    let data = work.join(format!("data-{}-{}", b.seed, b.events));
    let exe = std::env::current_exe()?;
    if !raw.exists() || !data.join("ledger").exists() {
        let _ = std::fs::remove_dir_all(&data);
        eprintln!("generating {} events (seed {})", b.events, b.seed);
        step(
            Command::new(&exe)
                .args([
                    "simulate",
                    "--events",
                    &b.events.to_string(),
                    "--seed",
                    &b.seed.to_string(),
                    "--out",
                ])
                .arg(&raw),
        )?;
        eprintln!("storing them with vigil ingest");
        let t = Instant::now();
        step(
            Command::new(&exe)
                .arg("ingest")
                .arg("--data-dir")
                .arg(&data)
                .arg(&raw),
        )?;
        eprintln!("  stored in {:.1} s", t.elapsed().as_secs_f64());
    }
    eprintln!("indexing with vigil reindex");
    let t = Instant::now();
    step(
        Command::new(&exe)
            .arg("reindex")
            .arg("--data-dir")
            .arg(&data),
    )?;
    let index_secs = t.elapsed().as_secs_f64();

    let raw_bytes = std::fs::metadata(&raw)?.len();
    let ledger_bytes = dir_bytes(&data.join("ledger"))?;
    let index_bytes = dir_bytes(&data.join("index"))?;
    let column_bytes = dir_bytes_ending(&data.join("index"), ".vcol")?;
    let needle = rare_ip(&raw)?;
    eprintln!("needle: {needle} (the rarest IPv4 address in the raw lines)");

    let config = vigil_server::config::Config {
        data_dir: data.clone(),
        ..Default::default()
    };
    let ix = vigil_server::indexer::Indexer::open(
        &data,
        &config.ledger_dir(),
        config.search.index_options(),
    )?;
    let last = vigil_ledger::LedgerReader::open(&config.ledger_dir())?.last_seq()?;

    let queries = [
        format!("source.ip:{needle}"),
        needle.clone(),
        "user.name:nosuchuser".to_string(),
        "* | stats count() by source.ip | sort -count | head 5".to_string(),
        "* | timechart span=1h count() by event.outcome".to_string(),
    ];
    println!(
        "{} events, raw {:.1} MiB, ledger {:.1} MiB ({:.0}% of raw), index {:.1} MiB ({:.1}% of raw, {:.1} bytes/event; columns {:.1} MiB, {:.1} bytes/event), indexed in {:.1} s ({:.0} events/s)\n",
        last,
        raw_bytes as f64 / 1048576.0,
        ledger_bytes as f64 / 1048576.0,
        100.0 * ledger_bytes as f64 / raw_bytes as f64,
        index_bytes as f64 / 1048576.0,
        100.0 * index_bytes as f64 / raw_bytes as f64,
        index_bytes as f64 / last.max(1) as f64,
        column_bytes as f64 / 1048576.0,
        column_bytes as f64 / last.max(1) as f64,
        index_secs,
        last as f64 / index_secs,
    );
    println!("| query | hits | indexed ms | events read | from columns | full scan ms | grep -F ms | full decode ms | scan / indexed | grep / indexed | full decode / indexed |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for q in &queries {
        let search = vigil_query::parse_search(q).map_err(|e| anyhow::anyhow!(e.render(q)))?;
        let mut indexed = Vec::new();
        let mut scanned = Vec::new();
        let mut greps = Vec::new();
        let mut decodes = Vec::new();
        let (mut hits, mut read, mut answered) = (0, 0, 0);
        let is_needle = !q.contains('|');
        for _ in 0..b.runs {
            // As the server searches: the index's candidates, and the
            // columns for an aggregation they can answer.
            let t = Instant::now();
            let params = SearchParams {
                limit: 100,
                up_to_seq: Some(last),
                ..SearchParams::default()
            };
            let r = ix.search(&search, &params)?;
            indexed.push(t.elapsed().as_secs_f64() * 1000.0);
            hits = r.total;
            read = r.scanned;
            answered = r.from_columns;

            let t = Instant::now();
            let params = SearchParams {
                limit: 100,
                up_to_seq: Some(last),
                ..SearchParams::default()
            };
            let full = run_search(&config.ledger_dir(), &search, &params)?;
            scanned.push(t.elapsed().as_secs_f64() * 1000.0);
            if full.total != hits {
                bail!(
                    "{q:?}: the index found {hits} events, the full scan {}",
                    full.total
                );
            }
            if full.table != r.table || full.buckets != r.buckets {
                bail!("{q:?}: the indexed search and the full scan give different tables");
            }
            if !is_needle {
                // The way aggregations ran before: every event decoded in full.
                let t = Instant::now();
                let c = ix.candidates(&search.query, None, None, 1, last);
                let params = SearchParams {
                    limit: 100,
                    up_to_seq: Some(last),
                    ranges: Some(c.ranges),
                    partial_decode: false,
                    ..SearchParams::default()
                };
                let old = run_search(&config.ledger_dir(), &search, &params)?;
                decodes.push(t.elapsed().as_secs_f64() * 1000.0);
                if old.table != full.table {
                    bail!("{q:?}: the partial and the full decode give different tables");
                }
            }
            if is_needle {
                let t = Instant::now();
                let out = Command::new("grep")
                    .args(["-F", "-c"])
                    .arg(&needle)
                    .arg(&raw)
                    .output()
                    .context("running grep")?;
                greps.push(t.elapsed().as_secs_f64() * 1000.0);
                if out.stdout.is_empty() {
                    bail!("grep printed nothing");
                }
            }
        }
        let (i, s) = (median(indexed), median(scanned));
        let g = (!greps.is_empty()).then(|| median(greps));
        let d = (!decodes.is_empty()).then(|| median(decodes));
        println!(
            "| `{}` | {hits} | {i:.1} | {read} | {answered} | {s:.1} | {} | {} | {:.1} | {} | {} |",
            q.replace('|', "\\|"),
            g.map_or("–".into(), |g| format!("{g:.1}")),
            d.map_or("–".into(), |d| format!("{d:.1}")),
            s / i,
            g.map_or("–".into(), |g| format!("{:.1}", g / i)),
            d.map_or("–".into(), |d| format!("{:.1}", d / i)),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn step(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    dir_bytes_ending(dir, "")
}

/// Bytes of the files in `dir` whose names end with `suffix`.
fn dir_bytes_ending(dir: &Path, suffix: &str) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        if m.is_file() && e.file_name().to_string_lossy().ends_with(suffix) {
            n += m.len();
        }
    }
    Ok(n)
}

/// The least frequent dotted-quad in the raw file (ties: the first seen),
/// read line by line so a 10 M-event file is never held in memory.
fn rare_ip(raw: &Path) -> anyhow::Result<String> {
    use std::io::BufRead;
    let file = std::fs::File::open(raw).with_context(|| format!("opening {}", raw.display()))?;
    let mut counts: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut order = 0;
    for line in std::io::BufReader::with_capacity(1 << 20, file).split(b'\n') {
        let line = line?;
        for tok in line.split(|b| !(b.is_ascii_digit() || *b == b'.')) {
            let dots = tok.iter().filter(|b| **b == b'.').count();
            if dots == 3 && tok.len() >= 7 && !tok.starts_with(b".") && !tok.ends_with(b".") {
                let e = counts.entry(tok.to_vec()).or_insert((0, order));
                e.0 += 1;
                order += 1;
            }
        }
    }
    counts
        .into_iter()
        .min_by_key(|(_, (n, first))| (*n, *first))
        .map(|(ip, _)| String::from_utf8_lossy(&ip).into_owned())
        .context("no IPv4 address in the generated lines")
}
