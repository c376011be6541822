//! `vigil bench detect`: how long after an attack's first event reaches a
//! running `vigil serve` its built-in detector alert is stored.
//!
//! Starts a real server on loopback ports with a fresh data dir, streams
//! `vigil simulate` output to it over syslog TCP in real time (`--speed 1`
//! from `--start now`: each line is sent at its event time), then reads the
//! built-in alerts back through the search API. Each alert is credited to
//! an attack instance the way `vigil hunt --builtin --score` does it (one of
//! its evidence events is a labelled attack line); an instance's delay is
//! its first credited alert's storage time (`vigil.received_at`, stamped by
//! the writer just before the commit) minus the event time of the
//! instance's first line, which is also when it was sent. Both clocks are
//! this machine's. That delay includes the attack's own pace (ten failures
//! a few seconds apart take their time); the latency of detection itself,
//! from the arrival of the event that completed an alert to the alert's
//! storage, is reported per alert as well.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use super::bench::{median, serve_command, start_server};
use super::hunt::score::Scorer;

/// Flags of `vigil bench detect`.
#[derive(Debug, Args)]
pub struct DetectBench {
    /// Simulated (and real) time streamed, e.g. `10m`.
    #[arg(long, default_value = "10m")]
    duration: String,
    /// Background lines per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seed for `vigil simulate`.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seconds to wait after the stream ends for the last alerts.
    #[arg(long, default_value_t = 15)]
    settle_secs: u64,
}

const TOKEN: &str = "vgl_bench_token_0123456789abcdef0123456789abcdef";
/// Alerts read back at most.
const MAX_ALERTS: usize = 10_000;

/// Runs the benchmark and prints per-instance delays and their median.
pub fn run(b: DetectBench) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let (server, (http, tcp, _)) =
        start_server(serve_command(&dir.path().join("data"), TOKEN, "warn")?)?;
    let labels = dir.path().join("labels.ndjson");
    eprintln!(
        "bench detect: streaming {} of simulated activity at {} lines/s (seed {}) to {tcp}",
        b.duration, b.rate, b.seed
    );
    let started = Instant::now();
    let status = Command::new(&exe)
        .args(["simulate", "--seed", &b.seed.to_string()])
        .args(["--duration", &b.duration, "--start", "now", "--speed", "1"])
        .args(["--sim-rate", &b.rate.to_string()])
        .arg("--send")
        .arg(format!("syslog-tcp://{tcp}"))
        .arg("--labels")
        .arg(&labels)
        .status()
        .context("running vigil simulate")?;
    if !status.success() {
        bail!("vigil simulate failed: {status}");
    }
    eprintln!(
        "bench detect: stream done in {:.0}s; waiting {}s for the last alerts",
        started.elapsed().as_secs_f64(),
        b.settle_secs
    );
    std::thread::sleep(Duration::from_secs(b.settle_secs));

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let search = |q: &str, limit: usize| -> anyhow::Result<Value> {
        let r = client
            .get(format!("http://{http}/api/v1/search"))
            .bearer_auth(TOKEN)
            .query(&[("q", q), ("limit", &limit.to_string())])
            .send()
            .with_context(|| format!("searching {q:?}"))?;
        if !r.status().is_success() {
            bail!("search {q:?} answered {}", r.status());
        }
        Ok(r.json()?)
    };
    let alerts = search("rule.ruleset:vigil", MAX_ALERTS)?;
    let hits = alerts["hits"].as_array().cloned().unwrap_or_default();
    let mut scorer = Scorer::load(&labels)?;
    // Per alert: from the arrival of the event that completed it to the
    // alert's storage, the latency of detection itself.
    let mut latency = Vec::new();
    for a in &hits {
        let Some(alert) = to_alert(a, &search)? else {
            continue;
        };
        if let Some(seq) = a["vigil"]["alert"]["evidence_seq"].as_u64() {
            let e = search(&format!("vigil.seq:{seq}"), 1)?;
            if let Some(arrived) = e["hits"].get(0).and_then(received_ms) {
                latency.push((alert.last - arrived) as f64 / 1000.0);
            }
        }
        scorer.record(&alert);
    }
    let mut out = std::io::stdout();
    let events = search("NOT event.kind:alert", 1)?["total"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "{} built-in alerts read back; {events} events stored",
        hits.len()
    );
    scorer.report(events, &mut out)?;
    let delays = scorer.delays();
    println!("| instance | attack | delay s |");
    println!("|---|---|---|");
    for (id, attack, d) in &delays {
        println!("| {id} | {attack} | {d:.2} |");
    }
    if delays.is_empty() {
        println!("no attack instance was detected");
    } else {
        println!(
            "median delay from an attack's first event to its first stored alert: {:.2} s over {} detected instances",
            median(delays.iter().map(|d| d.2).collect()),
            delays.len()
        );
    }
    if !latency.is_empty() {
        latency.sort_by(f64::total_cmp);
        println!(
            "alert stored after its completing event arrived: median {:.3} s, max {:.3} s over {} alerts",
            median(latency.clone()),
            latency[latency.len() - 1],
            latency.len()
        );
    }
    drop(server);
    Ok(ExitCode::SUCCESS)
}

/// The stored alert as a detector alert whose evidence is the text of its
/// evidence events and whose `last` is its storage time (what the scorer
/// measures the delay to).
fn to_alert(
    a: &Value,
    search: &dyn Fn(&str, usize) -> anyhow::Result<Value>,
) -> anyhow::Result<Option<vigil_detect::Alert<Arc<str>>>> {
    let id = a["rule"]["id"].as_str().unwrap_or("");
    let Some(d) = vigil_detect::Detector::ALL
        .into_iter()
        .find(|d| d.id() == id)
    else {
        return Ok(None);
    };
    let stored = received_ms(a).context("an alert without vigil.received_at")?;
    let seqs: Vec<u64> = a["vigil"]["alert"]["evidence_seqs"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let mut evidence: Vec<Arc<str>> = Vec::new();
    if !seqs.is_empty() {
        // One search for every evidence event of the alert.
        let q: Vec<String> = seqs.iter().map(|s| format!("vigil.seq:{s}")).collect();
        let e = search(&q.join(" OR "), seqs.len())?;
        for hit in e["hits"].as_array().into_iter().flatten() {
            evidence.push(Arc::from(hit.to_string()));
        }
    }
    Ok(Some(
        vigil_detect::Alert::new(d, a["message"].as_str().unwrap_or(""))
            .span(stored, stored)
            .evidence(evidence, false),
    ))
}

/// `vigil.received_at` of a stored event, in ms.
fn received_ms(ev: &Value) -> Option<i64> {
    ev["vigil"]["received_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}
