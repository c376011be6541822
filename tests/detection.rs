//! Sigma detection in `vigil serve`: rules from `[detection] rules_dirs`
//! are evaluated on ingested syslog events, matches are stored as alert
//! events next to their evidence, and new rule files are picked up by the
//! reloader.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::Value;

const ROOT_RULE: &str = "title: SSH login failure for root\nid: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11\nstatus: test\nlevel: high\ntags:\n  - attack.credential_access\n  - attack.t1110.001\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  sel:\n    process.name: sshd\n    user.name: root\n    event.outcome: failure\n  condition: sel\n";

const SECOND_RULE: &str = "title: SSH accepted publickey\nid: 7c2d9a10-4e5f-4a6b-8c7d-9e0f1a2b3c4d\nlevel: low\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  sel:\n    process.name: sshd\n    event.outcome: success\n  condition: sel\n";

fn rules(server: &Server) -> Value {
    let r = Server::client()
        .get(server.url("/api/v1/rules"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// Polls `check` until it returns true or 15 s pass.
fn poll(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[test]
fn sigma_rules_raise_alerts_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("root.yml"), ROOT_RULE).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\nreload_secs = 1\n",
            rules_dir.display()
        ),
    )
    .unwrap();

    // Unauthenticated callers cannot list rules.
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    let r = Server::client()
        .get(server.url("/api/v1/rules"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let v = rules(&server);
    assert_eq!(v["rules"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["rules"][0]["status"], "active");
    assert_eq!(v["rules"][0]["matches"], 0);

    // One matching failure over UDP, non-matching events over UDP and TCP.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 bastion sshd[4721]: Failed password for alice from 203.0.113.9 port 52144 ssh2",
        server.udp,
    )
    .unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:01 bastion sshd[4722]: Failed password for root from 203.0.113.10 port 52145 ssh2",
        server.udp,
    )
    .unwrap();
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    tcp.write_all(b"<38>Mar  1 10:00:02 bastion sshd[99]: Accepted publickey for root from 198.51.100.4 port 40000 ssh2: ED25519 SHA256:abc\n<38>Mar  1 10:00:03 bastion sudo: root : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/true\n").unwrap();
    drop(tcp);

    let alerts = server.wait_for("event.kind:alert", 1);
    // Everything sent has been stored (alerts share the commit of their evidence).
    let all = server.wait_for("NOT vigil.input:audit", 5);
    assert_eq!(all["total"], 5, "{all:#}");
    let alerts = if alerts["total"] == 1 {
        alerts
    } else {
        server.search("event.kind:alert", 100)
    };
    assert_eq!(alerts["total"], 1, "{alerts:#}");
    let a = &alerts["hits"][0];
    assert_eq!(a["rule"]["id"], "0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11");
    assert_eq!(a["rule"]["name"], "SSH login failure for root");
    assert_eq!(a["rule"]["ruleset"], "sigma");
    assert!(a["rule"]["reference"]
        .as_str()
        .unwrap()
        .ends_with("root.yml"));
    assert_eq!(a["event"]["dataset"], "vigil.alert");
    assert_eq!(a["event"]["severity"], 4);
    assert_eq!(a["vigil"]["alert"]["level"], "high");
    assert_eq!(a["message"], "Sigma: SSH login failure for root");
    assert_eq!(a["threat"]["technique"]["id"][0], "T1110.001");
    assert_eq!(a["host"]["name"], "bastion");
    assert_eq!(a["source"]["ip"], "203.0.113.10");
    assert_eq!(a["user"]["name"], "root");
    assert_eq!(a["vigil"]["input"], "internal");
    let evidence = a["vigil"]["alert"]["evidence_seq"].as_u64().unwrap();
    assert!(evidence < a["vigil"]["seq"].as_u64().unwrap());

    let ev = server.search(&format!("vigil.seq:{evidence}"), 10);
    assert_eq!(ev["total"], 1, "{ev:#}");
    let e = &ev["hits"][0];
    assert_eq!(e["user"]["name"], "root");
    assert_eq!(e["event"]["outcome"], "failure");
    assert_eq!(e["process"]["name"], "sshd");

    let v = rules(&server);
    assert_eq!(v["rules"][0]["matches"], 1, "{v:#}");
    assert!(v["refused"].as_array().unwrap().is_empty());
    assert!(v["loaded_at"].as_str().unwrap().contains('T'));
    assert_eq!(v["rules_dirs"][0], rules_dir.to_str().unwrap());

    // A new rule file is picked up by the reloader; counts survive it.
    std::fs::write(rules_dir.join("second.yml"), SECOND_RULE).unwrap();
    let mut last = Value::Null;
    let reloaded = poll(|| {
        last = rules(&server);
        last["rules"].as_array().unwrap().len() == 2
    });
    assert!(reloaded, "second rule not loaded: {last:#}");
    let titles: Vec<&str> = last["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"SSH accepted publickey"), "{titles:?}");
    let root = last["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "SSH login failure for root")
        .unwrap();
    assert_eq!(root["matches"], 1);

    let metrics = Server::client()
        .get(server.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("vigil_detection_rules_loaded 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_detection_matches_total 1"),
        "{metrics}"
    );

    // Events sent over HTTP are evaluated too; the alert follows the acked range.
    let r: Value = Server::client()
        .post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body("{\"process\":{\"name\":\"sshd\"},\"user\":{\"name\":\"root\"},\"event\":{\"outcome\":\"failure\"}}\n")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let acked = r["last_seq"].as_u64().unwrap();
    let alerts = server.wait_for("event.kind:alert", 2);
    assert_eq!(alerts["total"], 2, "{alerts:#}");
    let newest = &alerts["hits"][0];
    assert_eq!(
        newest["vigil"]["alert"]["evidence_seq"].as_u64(),
        Some(acked)
    );
    assert!(newest["vigil"]["seq"].as_u64().unwrap() > acked);
}
