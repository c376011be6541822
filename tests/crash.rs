//! Durability: SIGKILL during a load loses nothing that was acknowledged.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::Value;

#[test]
fn kill_9_during_load_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let url = server.url("/api/v1/events");
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3 {
        let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            // Bounded: at most 2000 requests per worker, and the test kills the server long before.
            for b in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let ids: Vec<String> = (0..50).map(|i| format!("w{w}-b{b}-i{i}")).collect();
                let body: String = ids
                    .iter()
                    .map(|id| format!("{{\"message\":\"load\",\"labels\":{{\"id\":\"{id}\"}}}}\n"))
                    .collect();
                match c
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ids),
                    _ => break,
                }
            }
        }));
    }
    let t = Instant::now();
    while acked.lock().unwrap().len() < 3000 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3000, "load too small: {}", acked.len());

    let server = Server::start(&data);
    let v = server.search("message:load", 10_000);
    let total = v["total"].as_u64().unwrap();
    assert!(
        total >= acked.len() as u64,
        "stored {total} < acknowledged {}",
        acked.len()
    );
    // Every acknowledged id is there, and sequence numbers have no gaps.
    let mut found = HashSet::new();
    let mut seqs = Vec::new();
    for h in v["hits"].as_array().unwrap() {
        found.insert(h["labels"]["id"].as_str().unwrap().to_string());
        seqs.push(h["vigil"]["seq"].as_u64().unwrap());
    }
    if total <= 10_000 {
        let missing: Vec<_> = acked.difference(&found).take(5).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        seqs.sort_unstable();
        let expect: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expect, "sequence numbers have gaps");
    }
    // The restarted server keeps appending after the recovered tail.
    let r = server.post_ndjson("/api/v1/events", "{\"message\":\"after restart\"}");
    let body: Value = r.json().unwrap();
    // Only the self-audit events of searches (vigil.input:audit) may come between.
    let first = body["first_seq"].as_u64().unwrap();
    let audit = server.search("vigil.input:audit", 1)["total"]
        .as_u64()
        .unwrap();
    assert!(
        first > total && first <= total + 1 + audit,
        "first_seq {first} after {total} events and {audit} audit events"
    );
}
