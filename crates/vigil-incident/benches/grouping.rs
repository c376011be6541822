//! Grouping throughput: alerts through `Store::observe` on a file store
//! (WAL, synchronous=FULL), with many incidents open.
//!
//! `cargo bench -p vigil-incident --bench grouping`

use std::time::Instant;

use vigil_alert::model::{format_ms, Alert, Level, Status};
use vigil_incident::{IncidentsConfig, Store};

const T0: i64 = 1_795_000_000_000;

fn alert(n: usize, user: usize, at: i64) -> Alert {
    Alert {
        id: format!("{n:032x}"),
        rule_id: format!("rule-{}", n % 20),
        rule_name: format!("Rule {}", n % 20),
        level: Level::High,
        tags: vec!["attack.credential_access".into()],
        entity: [
            ("user.name".to_string(), format!("user{user}")),
            ("host.name".to_string(), format!("host{}", user % 50)),
        ]
        .into(),
        message: String::new(),
        group_key: String::new(),
        first_seen: format_ms(at),
        last_seen: format_ms(at),
        count: 1,
        evidence_seqs: vec![n as u64 + 1],
        evidence_truncated: false,
        status: Status::Open,
        suppressed: false,
        suppression_id: None,
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file =
        Store::open(&dir.path().join("incidents.db"), IncidentsConfig::default()).expect("open");
    let memory = Store::open_in_memory(IncidentsConfig::default()).expect("open");
    for (what, store) in [("in memory", memory), ("incidents.db", file)] {
        run(what, store);
    }
}

fn run(what: &str, mut store: Store) {
    // 2000 distinct users: about 2000 incidents open, then repeats join them.
    let users = 2000;
    let n = 10_000;
    let start = Instant::now();
    for i in 0..n {
        let a = alert(i, i % users, T0 + i as i64 * 100);
        store.observe(&a, Some(T0)).expect("observe");
        store.take_changes();
    }
    let took = start.elapsed();
    let (open, total) = store
        .list(&vigil_incident::ListFilter {
            limit: 1,
            ..Default::default()
        })
        .expect("list");
    drop(open);
    println!(
        "{what}: {n} alerts grouped into {total} incidents in {:.2} s: {:.0} alerts/s, {:.0} µs per alert",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        took.as_micros() as f64 / n as f64
    );
    let start = Instant::now();
    let m = store.metrics().expect("metrics");
    println!(
        "metrics over {} incidents in {:.1} ms",
        m.all.incidents,
        start.elapsed().as_secs_f64() * 1000.0
    );
}
