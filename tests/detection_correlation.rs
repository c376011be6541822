//! Sigma correlation rules in `vigil serve`: a correlation loaded from
//! `[detection] rules_dirs` turns five failed logons from one address
//! within a minute, posted over HTTP in two requests, into one alert that
//! names the seqs of all five events; the base rule raises no alert of its
//! own (`generate` defaults to false).

mod common;

use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::Value;

const RULES: &str = "title: SSH login failure
id: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11
name: ssh_failure
level: low
logsource:
  product: linux
  service: sshd
detection:
  sel:
    process.name: sshd
    event.outcome: failure
  condition: sel
---
title: SSH brute force from one address
id: 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f
level: high
tags:
  - attack.t1110
correlation:
  type: event_count
  rules:
    - ssh_failure
  group-by:
    - source.ip
  timespan: 1m
  condition:
    gte: 5
";

fn failure(ip: &str, secs: u32) -> String {
    format!(
        "{{\"@timestamp\":\"2024-05-01T10:00:{secs:02}Z\",\"process\":{{\"name\":\"sshd\"}},\"event\":{{\"outcome\":\"failure\"}},\"source\":{{\"ip\":\"{ip}\"}},\"user\":{{\"name\":\"root\"}}}}\n"
    )
}

fn post(server: &Server, body: String) -> (u64, u64) {
    let r = server.post_ndjson("/api/v1/events", body);
    assert!(r.status().is_success(), "{}", r.status());
    let v: Value = r.json().unwrap();
    (
        v["first_seq"].as_u64().unwrap(),
        v["last_seq"].as_u64().unwrap(),
    )
}

#[test]
fn correlation_alert_names_every_contributing_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("brute.yml"), RULES).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\ncorrelation_max_groups = 100\n",
            rules_dir.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);

    let v = server.get_json("/api/v1/rules", &[]);
    assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["correlations"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["correlations"][0]["type"], "event_count");
    assert_eq!(v["correlations"][0]["matches"], 0);
    assert!(v["refused"].as_array().unwrap().is_empty(), "{v:#}");

    // Three failures from .9 and two from .10, then two more from .9:
    // the fifth from .9 completes the correlation.
    let (first, last) = post(
        &server,
        failure("203.0.113.9", 0)
            + &failure("203.0.113.10", 1)
            + &failure("203.0.113.9", 10)
            + &failure("203.0.113.9", 20)
            + &failure("203.0.113.10", 21),
    );
    assert_eq!(last - first, 4);
    let (f2, l2) = post(
        &server,
        failure("203.0.113.9", 30) + &failure("203.0.113.9", 40),
    );
    assert_eq!(l2, f2 + 1);

    let alerts = server.wait_for("event.kind:alert", 1);
    assert_eq!(alerts["total"], 1, "{alerts:#}");
    let a = &alerts["hits"][0];
    assert_eq!(a["rule"]["id"], "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f");
    assert_eq!(a["rule"]["name"], "SSH brute force from one address");
    assert_eq!(a["event"]["severity"], 4);
    assert_eq!(a["source"]["ip"], "203.0.113.9");
    assert_eq!(
        a["message"],
        "Sigma correlation: SSH brute force from one address"
    );
    let c = &a["vigil"]["alert"]["correlation"];
    assert_eq!(c["type"], "event_count");
    assert_eq!(c["count"], 5);
    assert_eq!(c["group"]["source.ip"], "203.0.113.9");
    assert_eq!(c["first"], "2024-05-01T10:00:00.000Z");
    assert_eq!(c["last"], "2024-05-01T10:00:40.000Z");
    let seqs: Vec<u64> = a["vigil"]["alert"]["evidence_seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [first, first + 2, first + 3, f2, l2]);
    assert_eq!(a["vigil"]["alert"]["evidence_seq"], l2);
    assert!(a["vigil"]["seq"].as_u64().unwrap() > l2);
    // Every evidence seq is a stored failure from the address.
    for s in &seqs {
        let ev = server.search(&format!("vigil.seq:{s}"), 1);
        assert_eq!(ev["hits"][0]["source"]["ip"], "203.0.113.9", "{ev:#}");
    }

    // The counts are visible in the rules API and the metrics.
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = server.get_json("/api/v1/rules", &[]);
        if v["correlations"][0]["matches"] == 1 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(v["correlations"][0]["matches"], 1, "{v:#}");
    assert_eq!(v["rules"][0]["matches"], 7, "{v:#}");
    let metrics = server.metrics();
    assert!(
        metrics.contains("vigil_correlation_matches_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_correlation_evictions_total 0"),
        "{metrics}"
    );
}
