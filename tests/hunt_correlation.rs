//! `vigil hunt` with a Sigma correlation: five failed logons from one IP
//! within a minute, across two input files, in event-time order.

mod common;

use serde_json::Value;

const RULES: &str = "title: Failed logon
id: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11
name: failed_logon
level: low
logsource:
  product: linux
  service: sshd
detection:
  sel:
    event.outcome: failure
    process.name: sshd
  condition: sel
---
title: Brute force from one address
id: 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f
level: high
tags:
  - attack.t1110
correlation:
  type: event_count
  rules:
    - failed_logon
  group-by:
    - source.ip
  timespan: 1m
  condition:
    gte: 5
";

fn logon(ip: &str, secs: u32, outcome: &str) -> String {
    format!(
        "{{\"@timestamp\":\"2024-05-01T10:{:02}:{:02}Z\",\"process\":{{\"name\":\"sshd\"}},\"event\":{{\"outcome\":\"{outcome}\"}},\"source\":{{\"ip\":\"{ip}\"}},\"user\":{{\"name\":\"root\"}}}}\n",
        secs / 60,
        secs % 60
    )
}

fn hunt(dir: &std::path::Path, rules: &str, inputs: &[&str]) -> (Vec<Value>, String) {
    let rule = dir.join("rules.yml");
    std::fs::write(&rule, rules).unwrap();
    let out = common::vigil()
        .arg("hunt")
        .arg("--rules")
        .arg(&rule)
        .args(inputs.iter().map(|i| dir.join(i)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (lines, stderr)
}

#[test]
fn event_count_correlation_across_files() {
    let dir = tempfile::tempdir().unwrap();
    // 203.0.113.9: failures at 0, 20, 40 s in one file and 50, 59 s in the
    // other (the later file lists them first): five within a minute.
    // 198.51.100.4: five failures over two minutes; never five in one.
    // A success from 203.0.113.9 is not a failure.
    let mut a = String::new();
    for s in [0, 20, 40] {
        a.push_str(&logon("203.0.113.9", s, "failure"));
    }
    for s in [0, 30, 60, 90, 120] {
        a.push_str(&logon("198.51.100.4", s, "failure"));
    }
    a.push_str(&logon("203.0.113.9", 45, "success"));
    std::fs::write(dir.path().join("a.ndjson"), a).unwrap();
    let b = logon("203.0.113.9", 59, "failure") + &logon("203.0.113.9", 50, "failure");
    std::fs::write(dir.path().join("b.ndjson"), b).unwrap();

    let (lines, stderr) = hunt(dir.path(), RULES, &["a.ndjson", "b.ndjson"]);
    // generate defaults to false: the failed-logon rule prints nothing itself.
    assert_eq!(lines.len(), 1, "{lines:#?}\n{stderr}");
    let m = &lines[0];
    assert_eq!(m["rule_id"], "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f");
    assert_eq!(m["rule_title"], "Brute force from one address");
    assert_eq!(m["level"], "high");
    assert_eq!(m["tags"][0], "attack.t1110");
    let c = &m["correlation"];
    assert_eq!(c["type"], "event_count");
    assert_eq!(c["group"]["source.ip"], "203.0.113.9");
    assert_eq!(c["count"], 5);
    assert_eq!(c["first"], "2024-05-01T10:00:00.000Z");
    assert_eq!(c["last"], "2024-05-01T10:00:59.000Z");
    let events = m["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(m["events_truncated"], false);
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["@timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:20Z",
            "2024-05-01T10:00:40Z",
            "2024-05-01T10:00:50Z",
            "2024-05-01T10:00:59Z"
        ]
    );
    assert!(events.iter().all(|e| e["source"]["ip"] == "203.0.113.9"));
    assert!(
        stderr.contains("correlations: 1 loaded, 1 matches, 0 evictions"),
        "{stderr}"
    );

    // generate: true keeps the base rule's own lines (10 failures), in
    // today's form; a cap of 2 events truncates the evidence.
    let rules = RULES.replace("    gte: 5\n", "    gte: 5\n  generate: true\n");
    let rule = dir.path().join("rules.yml");
    std::fs::write(&rule, &rules).unwrap();
    let out = common::run_ok(
        common::vigil()
            .arg("hunt")
            .arg("--rules")
            .arg(&rule)
            .arg("--correlation-max-events")
            .arg("2")
            .arg(dir.path().join("a.ndjson"))
            .arg(dir.path().join("b.ndjson")),
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let base: Vec<&Value> = lines.iter().filter(|l| l.get("event").is_some()).collect();
    assert_eq!(base.len(), 10);
    assert_eq!(base[0]["rule_title"], "Failed logon");
    assert!(base[0]["rule_file"]
        .as_str()
        .unwrap()
        .ends_with("rules.yml"));
    let corr: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("correlation").is_some())
        .collect();
    assert_eq!(corr.len(), 1);
    assert_eq!(corr[0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(corr[0]["events_truncated"], true);
    // The correlation line follows the base lines.
    assert!(lines.last().unwrap().get("correlation").is_some());
}

#[test]
fn group_cap_evicts_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    // Ten addresses, one failure each: with room for 4 groups, some are evicted.
    let mut a = String::new();
    for i in 0..10 {
        a.push_str(&logon(&format!("192.0.2.{i}"), i, "failure"));
    }
    std::fs::write(dir.path().join("a.ndjson"), a).unwrap();
    let rule = dir.path().join("rules.yml");
    std::fs::write(&rule, RULES).unwrap();
    let out = common::vigil()
        .arg("hunt")
        .arg("--rules")
        .arg(&rule)
        .args(["--correlation-max-groups", "4"])
        .arg(dir.path().join("a.ndjson"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 matches, 6 evictions"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_correlation_is_refused_and_others_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.ndjson"),
        logon("192.0.2.1", 0, "failure"),
    )
    .unwrap();
    let rules = format!(
        "{RULES}---\ntitle: Broken\ncorrelation:\n  type: event_count\n  rules: [no_such_rule]\n  timespan: 1m\n  condition:\n    gte: 1\n"
    );
    let (lines, stderr) = hunt(dir.path(), &rules, &["a.ndjson"]);
    assert!(lines.is_empty());
    assert!(stderr.contains("1 refused"), "{stderr}");
    assert!(
        stderr.contains("rules.yml:32: correlation refers to rule \"no_such_rule\""),
        "{stderr}"
    );
    assert!(stderr.contains("correlations: 1 loaded"), "{stderr}");
}
