//! `vigil hunt`: run Sigma rules over files, offline.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};
use vigil_event::sanitize::display;
use vigil_sigma::ruleset::RuleSet;
use vigil_sigma::value::Placeholders;

use super::hunt_input::{detect, for_each_event};

/// Flags of `vigil hunt`.
#[derive(Debug, Args)]
pub struct HuntArgs {
    /// A Sigma rule file or a directory of rules (recursive). Repeatable.
    #[arg(long = "rules", required = true, value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// A value for an `|expand` placeholder: NAME=VALUE (repeatable).
    #[arg(long = "placeholder", value_name = "NAME=VALUE")]
    placeholders: Vec<String>,
    /// Files to hunt in: .evtx, JSON/NDJSON, or text logs.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

pub fn run(a: HuntArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut ph = Placeholders::default();
    for p in &a.placeholders {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--placeholder takes NAME=VALUE, got {:?}", p);
        };
        ph.0.entry(k.trim_matches('%').to_string())
            .or_default()
            .push(v.to_string());
    }
    if let Some(missing) = a.rules.iter().find(|p| !p.exists()) {
        bail!("rules path {} does not exist", missing.display());
    }
    let report = vigil_sigma::loader::load_paths(&a.rules, &ph);
    let refused = report.refused;
    // Windows rules are routed to their channels and event IDs; other
    // products' rules see every non-Windows event.
    let rules = RuleSet::new(report.rules);
    let unroutable = rules.unroutable();
    let opts = vigil_parse::ParseOptions::default();
    let events = AtomicU64::new(0);
    let unreadable = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let counts: Mutex<BTreeMap<String, u64>> = Mutex::default();
    let warnings: Mutex<Vec<String>> = Mutex::default();
    let failed_files: Mutex<Vec<String>> = Mutex::default();
    let stdout = Mutex::new(std::io::stdout());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(a.inputs.len().max(1));
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message("hunting");
        b
    });
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = a.inputs.get(i) else { return };
                let mut out = Vec::with_capacity(1 << 16);
                let mut local: BTreeMap<String, u64> = BTreeMap::new();
                let format = match detect(path) {
                    Ok(f) => f,
                    Err(e) => {
                        failed_files
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e:#}", path.display()));
                        continue;
                    }
                };
                let mut warn = |w: String| warnings.lock().unwrap().push(w);
                let mut n = 0u64;
                let result = for_each_event(path, format, &opts, &mut warn, &mut |ev| {
                    n += 1;
                    evaluate(&rules, &ev, &mut out, &mut local);
                    if out.len() > 1 << 16 {
                        let _ = stdout.lock().unwrap().write_all(&out);
                        out.clear();
                    }
                    if n.is_multiple_of(4096) {
                        if let Some(b) = &bar {
                            b.set_message(format!("{} events", events.load(Ordering::Relaxed) + n));
                            b.tick();
                        }
                    }
                });
                events.fetch_add(n, Ordering::Relaxed);
                match result {
                    Ok((_, bad)) => {
                        unreadable.fetch_add(bad, Ordering::Relaxed);
                    }
                    Err(e) => failed_files
                        .lock()
                        .unwrap()
                        .push(format!("{}: {e:#}", path.display())),
                }
                let _ = stdout.lock().unwrap().write_all(&out);
                let mut c = counts.lock().unwrap();
                for (k, v) in local {
                    *c.entry(k).or_default() += v;
                }
            });
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let _ = stdout.lock().unwrap().flush();

    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    let counts = counts.into_inner().unwrap();
    let total: u64 = counts.values().sum();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "hunt: {} files, {events} events in {secs:.2} s ({:.0} events/s), {total} matches",
        a.inputs.len(),
        events as f64 / secs.max(1e-9)
    )?;
    writeln!(
        err,
        "rules: {} loaded, {} refused, {unroutable} Windows rules with an unknown logsource (not applied)",
        rules.rules().len(),
        refused.len()
    )?;
    for r in refused.iter().take(20) {
        writeln!(err, "  refused: {}", display(&r.to_string()))?;
    }
    if refused.len() > 20 {
        writeln!(err, "  … and {} more refused", refused.len() - 20)?;
    }
    let mut by_count: Vec<(&String, &u64)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (title, n) in by_count.iter().take(20) {
        writeln!(err, "  {n:>8}  {}", display(title))?;
    }
    let unreadable = unreadable.load(Ordering::Relaxed);
    if unreadable > 0 {
        writeln!(err, "{unreadable} records could not be read:")?;
        for w in warnings.lock().unwrap().iter().take(10) {
            writeln!(err, "  {}", display(w))?;
        }
    }
    let failed = failed_files.into_inner().unwrap();
    for f in &failed {
        writeln!(err, "failed: {}", display(f))?;
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Writes one NDJSON line per rule that matches `ev` and counts it by title.
fn evaluate(rules: &RuleSet, ev: &Value, out: &mut Vec<u8>, counts: &mut BTreeMap<String, u64>) {
    rules.matching(ev, |r| {
        *counts.entry(r.meta.title.clone()).or_default() += 1;
        let line = json!({
            "rule_id": r.meta.id,
            "rule_title": r.meta.title,
            "level": r.meta.level,
            "tags": r.meta.tags,
            "rule_file": r.meta.file,
            "event": ev,
        });
        let _ = serde_json::to_writer(&mut *out, &line);
        out.push(b'\n');
    });
}
