//! End to end: the server's indexer writes per-block columns, an
//! aggregation over indexed events is answered from them (`from_columns`
//! in the API's answer), and the answer is the one `vigil search` gives,
//! and the one a full scan gives.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ndjson, vigil, Server};
use serde_json::{json, Value};

const STATS: &str = "vigil.source:cols | stats count() by event.outcome";
const TIMECHART: &str =
    "vigil.source:cols NOT user.name:svc | timechart span=10m count() by event.outcome";
const TOP: &str = "vigil.source:cols | top 3 source.ip";

fn events() -> String {
    let mut out = String::new();
    for i in 0..600u32 {
        let outcome = match i % 4 {
            0 | 1 => json!("success"),
            2 => json!("failure"),
            _ => json!(["failure", "unknown"]),
        };
        let mut ev = json!({
            "event": {"outcome": outcome},
            "user": {"name": if i % 9 == 0 { "svc" } else { "alice" }},
            "source": {"ip": format!("10.0.{}.{}", i % 2, i % 5)},
        });
        if i % 13 != 0 {
            ev["@timestamp"] = json!(format!(
                "2026-03-01T{:02}:{:02}:{:02}Z",
                i / 120,
                (i / 2) % 60,
                i % 60
            ));
        }
        out.push_str(&ev.to_string());
        out.push('\n');
    }
    out
}

fn config(dir: &Path, index: bool) -> String {
    let path = dir.join(if index { "index.toml" } else { "scan.toml" });
    std::fs::write(
        &path,
        format!(
            "[search]\nindex = {index}\nindex_block_events = 64\nindex_blocks_per_file = 2\nindex_interval_secs = 1\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn wait_indexed(server: &Server, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let covered = server
            .metrics()
            .lines()
            .find_map(|l| {
                l.strip_prefix("vigil_index_covered_seq ")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0);
        if covered as u64 >= seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index covers only {covered} of {seq}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The table of a search as `vigil search --json` prints it: one object
/// per row.
fn rows_as_objects(v: &Value) -> Vec<Value> {
    let cols = v["columns"].as_array().expect("a table");
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let obj: serde_json::Map<String, Value> = cols
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .zip(r.as_array().unwrap().iter().cloned())
                .collect();
            Value::Object(obj)
        })
        .collect()
}

#[test]
fn aggregations_are_answered_from_columns_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let with_index = config(dir.path(), true);
    let scan_only = config(dir.path(), false);

    let mut server = Server::start_with(&data, Some(common::TOKEN), &["--config", &with_index]);
    let resp = server.post_ndjson("/api/v1/events?source=cols", events());
    assert_eq!(resp.status(), 200);
    assert_eq!(server.wait_for("vigil.source:cols", 600)["total"], 600);
    // Four files of 2 × 64 seqs are complete; the rest is an unindexed tail.
    wait_indexed(&server, 512);

    let mut answers = Vec::new();
    for q in [STATS, TIMECHART, TOP] {
        let v = server.search(q, 100);
        let from_columns = v["from_columns"].as_u64().unwrap();
        assert!(from_columns >= 512, "{q}: {v:#}");
        // Only the unindexed tail is read: the last events, the audit events
        // of the searches so far, and at most one complete file the indexer
        // has not reached yet; never the 600 events a scan reads.
        assert!(v["scanned"].as_u64().unwrap() < 400, "{q}: {v:#}");
        answers.push((v["rows"].clone(), v["buckets"].clone(), v["total"].clone()));
        if q == STATS {
            // 600 events; those with two outcomes count under both.
            let counts: u64 = v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[1].as_u64().unwrap())
                .sum();
            assert_eq!(counts, 600 + 150, "{v:#}");
            assert_eq!(v["total"], 600);
        }
    }
    let api_stats = server.search(STATS, 100);
    server.terminate();

    // `vigil search` on the data dir answers from the same columns.
    let local = ndjson(
        vigil()
            .args(["search", "--json", "--data-dir"])
            .arg(&data)
            .args(["--config", &with_index, STATS]),
    );
    assert_eq!(local, rows_as_objects(&api_stats));

    // A server that only scans gives the same tables and buckets.
    let mut server = Server::start_with(&data, Some(common::TOKEN), &["--config", &scan_only]);
    for (q, (rows, buckets, total)) in [STATS, TIMECHART, TOP].iter().zip(&answers) {
        let v = server.search(q, 100);
        assert_eq!(v["from_columns"], 0, "{q}: {v:#}");
        assert_eq!(&v["rows"], rows, "{q}");
        assert_eq!(&v["buckets"], buckets, "{q}");
        assert_eq!(&v["total"], total, "{q}");
    }
    server.terminate();
}
