//! The built-in detectors in the real server: a brute-force sequence sent
//! over HTTP becomes a `vigil.brute_force` alert naming its evidence seqs.

mod common;

use common::Server;
use serde_json::Value;

#[test]
fn brute_force_alert_is_stored_with_evidence_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);

    // Nine failures: one below the default threshold of 10.
    let line = |i: u32| {
        format!(
            "<38>Mar  3 09:14:{i:02} bastion sshd[4721]: Failed password for root from 203.0.113.9 port {} ssh2\n",
            50000 + i
        )
    };
    let body: String = (0..9).map(line).collect();
    let r = server.post("/api/v1/events", "text/plain", body);
    assert!(r.status().is_success(), "{}", r.status());
    let all = server.wait_for("event.action:ssh_login", 9);
    assert_eq!(all["total"], 9);
    let none = server.search("event.kind:alert", 10);
    assert_eq!(none["total"], 0, "{none}");

    // The tenth completes the burst.
    let r: Value = server
        .post("/api/v1/events", "text/plain", line(9))
        .json()
        .unwrap();
    let tenth = r["last_seq"].as_u64().unwrap();
    let alerts = server.wait_for("event.kind:alert", 1);
    assert_eq!(alerts["total"], 1, "{alerts}");
    let a = &alerts["hits"][0];
    assert_eq!(a["event"]["kind"], "alert");
    assert_eq!(a["rule"]["ruleset"], "vigil");
    assert_eq!(a["source"]["ip"], "203.0.113.9");
    assert_eq!(a["user"]["name"], "root");
    assert_eq!(a["vigil"]["alert"]["evidence_seq"], tenth);
    assert_eq!(a["vigil"]["alert"]["detector"]["counts"]["failures"], 10);
    let seqs: Vec<u64> = a["vigil"]["alert"]["evidence_seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 10);
    assert_eq!(*seqs.last().unwrap(), tenth);
    // Every evidence seq is one of the failures.
    for s in &seqs {
        let e = server.search(&format!("vigil.seq:{s}"), 1);
        assert_eq!(e["hits"][0]["event"]["action"], "ssh_login", "{e}");
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains("vigil_detector_alerts_total{detector=\"vigil.brute_force\"} 1"),
        "{metrics}"
    );
}
