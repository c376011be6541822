//! Measures how fast the store records alert sightings: a burst of
//! repeats of one alert (grouped) and distinct alerts (each opened,
//! routed and enqueued), each in its own durable transaction.
//!
//! `cargo run --release -p vigil-alert --example record_rate -- 2000`

use std::time::Instant;

use vigil_alert::config::{AlertsConfig, ChannelConfig, ChannelKind, RouteConfig};
use vigil_alert::model::{now_ms, AlertInput, Level};

fn input(rule: String, user: &str) -> AlertInput {
    AlertInput {
        rule_id: rule.clone(),
        rule_name: rule,
        level: Level::High,
        tags: vec!["attack.t1110".into()],
        entity: [("user.name".to_string(), user.to_string())].into(),
        message: "m".into(),
        seqs: vec![1, 2],
        evidence_truncated: false,
        seq: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let cfg = AlertsConfig {
        channels: vec![ChannelConfig {
            name: "out".into(),
            kind: ChannelKind::Stdout {},
        }],
        routes: vec![RouteConfig {
            name: "all".into(),
            channels: vec!["out".into()],
            ..Default::default()
        }],
        ..AlertsConfig::default()
    };
    let engine = vigil_alert::Engine::open(&dir.path().join("alerts.db"), &cfg)?;
    let t = Instant::now();
    for _ in 0..n {
        engine.record(&input("burst".into(), "root"), now_ms())?;
    }
    let e = t.elapsed();
    println!(
        "repeats:  {n} sightings in {:.2} s = {:.0}/s",
        e.as_secs_f64(),
        n as f64 / e.as_secs_f64()
    );
    let t = Instant::now();
    for i in 0..n {
        engine.record(&input(format!("r{i}"), "root"), now_ms())?;
    }
    let e = t.elapsed();
    println!(
        "distinct: {n} alerts (each with one queued delivery) in {:.2} s = {:.0}/s",
        e.as_secs_f64(),
        n as f64 / e.as_secs_f64()
    );
    // As the server records them: every waiting sighting in one transaction.
    let batch: Vec<AlertInput> = (0..n).map(|_| input("batched".into(), "root")).collect();
    let t = Instant::now();
    for chunk in batch.chunks(256) {
        engine.record_many(chunk, now_ms())?;
    }
    let e = t.elapsed();
    println!(
        "batched:  {n} sightings in transactions of 256 in {:.3} s = {:.0}/s",
        e.as_secs_f64(),
        n as f64 / e.as_secs_f64()
    );
    Ok(())
}
