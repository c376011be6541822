//! End to end: the server indexes what it stores, searches skip blocks the
//! index rules out, and the answers are exactly those of a full scan, also
//! after an index file is damaged.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ndjson, vigil, Server};
use serde_json::Value;

/// Each query is limited to the ingested events: every search also stores
/// an audit event (whose text holds the query), and those differ between
/// the two servers compared.
const QUERIES: &[&str] = &[
    "vigil.source:ix user.name:mallory",
    "vigil.source:ix 203.0.113.77",
    "vigil.source:ix source.ip:203.0.113.77",
    "vigil.source:ix user.name:USER3",
    "vigil.source:ix (mallory OR user.name:user1)",
    "vigil.source:ix NOT user.name:user2",
    "vigil.source:ix event.code:4625",
    "vigil.source:ix source.port:>60000",
    "vigil.source:ix Failed*user5",
    "vigil.source:ix user.name:user* | stats count() by user.name | sort user.name",
    "vigil.source:ix | timechart span=1h count()",
];

fn events() -> String {
    let mut out = String::new();
    for i in 0..400u32 {
        let (user, ip) = if i == 150 {
            ("mallory".to_string(), "203.0.113.77".to_string())
        } else {
            (
                format!("user{}", i % 7),
                format!("10.0.{}.{}", i % 3, i % 250),
            )
        };
        out.push_str(&format!(
            r#"{{"@timestamp":"2026-03-01T{:02}:{:02}:00Z","message":"Failed password for {user} from {ip}","user":{{"name":"{user}"}},"source":{{"ip":"{ip}","port":{}}},"event":{{"code":{}}}}}"#,
            i / 60,
            i % 60,
            40000 + i * 60,
            if i % 5 == 0 { 4625 } else { 4624 },
        ));
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

/// Totals, hit seqs and tables of every query, for comparing two servers.
fn answers(server: &Server) -> Vec<(u64, Vec<Value>, Value)> {
    QUERIES
        .iter()
        .map(|q| {
            let v = server.search(q, 1000);
            let seqs = v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["vigil"]["seq"].clone())
                .collect();
            (v["total"].as_u64().unwrap(), seqs, v["rows"].clone())
        })
        .collect()
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
            // The unauthenticated readiness probe says the same.
            let ready: Value = Server::client()
                .get(server.url("/readyz"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert!(ready["indexed_seq"].as_u64().unwrap() >= seq, "{ready}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index covers only {covered} of {seq}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn indexed_search_skips_blocks_and_answers_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let with_index = config(dir.path(), true);
    let scan_only = config(dir.path(), false);

    let mut server = Server::start_with(&data, Some(common::TOKEN), &["--config", &with_index]);
    let resp = server.post_ndjson("/api/v1/events?source=ix", events());
    assert_eq!(resp.status(), 200);
    assert_eq!(server.wait_for("vigil.source:ix", 400)["total"], 400);
    // Three files of 2 × 64 seqs are complete; seqs 385..=400 stay a tail.
    wait_indexed(&server, 384);

    let v = server.search("user.name:mallory", 10);
    assert_eq!(v["total"], 1, "{v:#}");
    assert_eq!(v["hits"][0]["source"]["ip"], "203.0.113.77");
    // One block of 64 plus the unindexed tail (the last events and the
    // audit events of the searches so far) are read; five blocks are not.
    let (scanned, skipped) = (
        v["scanned"].as_u64().unwrap(),
        v["skipped"].as_u64().unwrap(),
    );
    assert!(skipped >= 320, "{v:#}");
    assert!(scanned <= 64 + 128, "{v:#}");
    let indexed = answers(&server);
    server.terminate();

    // The same data searched by a full scan gives the same answers.
    let mut server = Server::start_with(&data, Some(common::TOKEN), &["--config", &scan_only]);
    let v = server.search("user.name:mallory", 10);
    assert_eq!(v["skipped"], 0, "{v:#}");
    assert!(v["scanned"].as_u64().unwrap() > 400, "{v:#}");
    assert_eq!(answers(&server), indexed);
    server.terminate();

    // Offline search uses the index files too.
    let hits = ndjson(
        vigil()
            .args(["search", "--json", "--data-dir"])
            .arg(&data)
            .args(["--config", &with_index, "source.ip:203.0.113.77"]),
    );
    assert_eq!(hits.len(), 1);

    // A damaged file is discarded at start, never trusted, and rebuilt.
    let file = data.join("index").join(format!("{:020}.vidx", 129));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    let server = Server::start_with(&data, Some(common::TOKEN), &["--config", &with_index]);
    assert_eq!(answers(&server), indexed);
    wait_indexed(&server, 384);
    assert_eq!(answers(&server), indexed);
    let v = server.search("user.name:mallory", 10);
    assert!(v["skipped"].as_u64().unwrap() >= 320, "{v:#}");
}

/// A file is built as soon as its events are durable, not at the next
/// rescan: with an hour between rescans the index still catches up.
#[test]
fn a_complete_file_is_indexed_without_waiting_for_the_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.path().join("slow-rescan.toml");
    std::fs::write(
        &cfg,
        "[search]\nindex_block_events = 64\nindex_blocks_per_file = 2\nindex_interval_secs = 3600\n",
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let server = Server::start_with(&data, Some(common::TOKEN), &["--config", &cfg]);
    let resp = server.post_ndjson("/api/v1/events?source=ix", events());
    assert_eq!(resp.status(), 200);
    wait_indexed(&server, 384);
}
