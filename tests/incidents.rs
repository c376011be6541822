//! Incidents end to end: `vigil serve` with a Sigma rule and alert tracking
//! on. Matching events raise an alert, which opens an incident by itself;
//! the incident is walked through its workflow over the API and the CLI,
//! an evidence event is pinned, and the exported report carries that
//! event's inclusion proof, which `vigil verify-proof` accepts. Response
//! times show in the metrics route and `/metrics`, and every change is an
//! event in the ledger.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::{json, Value};

const RULE: &str = "title: SSH login failure for root\nid: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11\nstatus: test\nlevel: high\ntags:\n  - attack.credential_access\n  - attack.t1110.001\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  sel:\n    process.name: sshd\n    user.name: root\n    event.outcome: failure\n  condition: sel\n";

fn poll(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

fn send(server: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = Server::client()
        .request(method, server.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn patch(server: &Server, id: &str, body: Value) -> (u16, Value) {
    send(
        server,
        reqwest::Method::PATCH,
        &format!("/api/v1/incidents/{id}"),
        body,
    )
}

fn cli(server: &Server, args: &[&str]) -> String {
    common::run_ok(common::vigil().arg("incident").args(args).args([
        "--server",
        &server.url(""),
        "--token",
        TOKEN,
    ]))
}

#[test]
fn an_alert_opens_an_incident_that_is_worked_pinned_exported_and_measured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("root.yml"), RULE).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\n\n[alerts]\nenabled = true\n\n\
             [incidents]\ngroup_window_secs = 3600\nmin_severity = \"medium\"\n\n\
             [ledger]\ncheckpoint_interval_secs = 1\n",
            rules.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        udp.send_to(
            format!("<38>Mar  1 10:00:0{i} bastion sshd[47{i}]: Failed password for root from 203.0.113.10 port 5214{i} ssh2").as_bytes(),
            server.udp,
        )
        .unwrap();
    }

    // The alert opens one incident by itself.
    assert!(
        poll(|| server.get_json("/api/v1/incidents", &[])["total"] == 1),
        "{:#}",
        server.get_json("/api/v1/incidents", &[])
    );
    let list = server.get_json("/api/v1/incidents", &[("status", "new")]);
    let inc = &list["incidents"][0];
    let id = inc["id"].as_str().unwrap().to_string();
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["alert_count"], 1);
    assert_eq!(inc["entity"]["user.name"], "root");
    assert_eq!(inc["entity"]["source.ip"], "203.0.113.10");
    assert_eq!(inc["tactics"], json!(["credential_access"]));
    assert!(inc["evidence_at"].is_string(), "{inc:#}");
    assert_eq!(
        server.get_json("/api/v1/incidents", &[("severity", "critical")])["total"],
        0
    );
    assert_eq!(
        server
            .get("/api/v1/incidents", &[("status", "open")])
            .status(),
        400
    );
    assert_eq!(server.get("/api/v1/incidents/nope", &[]).status(), 404);

    // Repeats of the alert stay in the same incident.
    assert!(poll(|| server.get_json("/api/v1/alerts", &[])["alerts"][0]
        ["count"]
        == 3));
    let d = server.get_json(&format!("/api/v1/incidents/{id}"), &[]);
    assert_eq!(d["alerts"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    for k in ["alert_first_seen", "created", "alert_linked"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }

    // Workflow: an illegal step is refused naming both states.
    let (code, v) = patch(&server, &id, json!({"status": "contained"}));
    assert_eq!(code, 409, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("from new to contained"), "{msg}");
    let (code, v) = patch(&server, &id, json!({"status": "bogus"}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = patch(
        &server,
        &id,
        json!({"status": "acknowledged", "assignee": "alice", "tags": ["ssh", "bastion"], "note": "mine"}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["incident"]["status"], "acknowledged");
    assert_eq!(v["incident"]["assignee"], "alice");
    assert_eq!(v["incident"]["tags"], json!(["bastion", "ssh"]));
    let out = cli(
        &server,
        &["status", &id, "investigating", "--note", "looking"],
    );
    assert!(out.contains("investigating"), "{out}");
    let out = cli(&server, &["note", &id, "blocked 203.0.113.10 at the edge"]);
    assert!(out.contains(&id), "{out}");

    // Pin the first failed login as evidence.
    let hits = server.wait_for(
        "process.name:sshd AND event.outcome:failure AND NOT vigil.input:audit",
        3,
    );
    let seq = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["vigil"]["seq"].as_u64())
        .min()
        .unwrap();
    let out = cli(
        &server,
        &["pin", &id, &seq.to_string(), "--note", "first failure"],
    );
    assert!(out.contains(&format!("event {seq} pinned")), "{out}");
    let (code, v) = send(
        &server,
        reqwest::Method::POST,
        &format!("/api/v1/incidents/{id}/pins"),
        json!({"seq": 99_999_999, "note": "nothing there"}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no stored event"),
        "{v}"
    );

    // The report: wait until a signed checkpoint covers the pinned event.
    assert!(poll(|| server
        .get(&format!("/api/v1/proof/{seq}"), &[])
        .status()
        .is_success()));
    let report = server.get_json(
        &format!("/api/v1/incidents/{id}/export"),
        &[("format", "json")],
    );
    assert_eq!(report["format"], "vigil-incident-report/1");
    assert_eq!(report["incident"]["id"], id.as_str());
    let pinned = &report["pinned_events"][0];
    assert_eq!(pinned["seq"], seq);
    assert_eq!(pinned["note"], "first failure");
    assert_eq!(pinned["event"]["vigil"]["seq"], seq);
    let proof = &pinned["proof"];
    assert_eq!(proof["leaf_index"], seq - 1);
    let payload: Value = serde_json::from_str(proof["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, pinned["event"], "the proof is of the pinned event");
    let workflow: Vec<&str> = report["workflow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert!(workflow.contains(&"status_changed"), "{workflow:?}");
    // The proof checks with the published key alone.
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, serde_json::to_vec(proof).unwrap()).unwrap();
    let key = common::run_ok(
        common::vigil()
            .args(["key", "--data-dir"])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    let out = common::run_ok(
        common::vigil()
            .arg("verify-proof")
            .arg(&proof_file)
            .args(["--key", key.trim()]),
    );
    assert!(out.starts_with("OK: record"), "{out}");
    // A tampered proof does not.
    let mut bad = proof.clone();
    bad["payload"] = json!(proof["payload"]
        .as_str()
        .unwrap()
        .replace("203.0.113.10", "198.51.100.1"));
    std::fs::write(&proof_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = common::vigil()
        .arg("verify-proof")
        .arg(&proof_file)
        .args(["--key", key.trim()])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let md = server.get(
        &format!("/api/v1/incidents/{id}/export"),
        &[("format", "md")],
    );
    assert_eq!(md.status(), 200);
    assert!(md
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let md = md.text().unwrap();
    assert!(
        md.starts_with("# Incident: SSH login failure for root"),
        "{md}"
    );
    for part in [
        "## Workflow",
        "## Timeline",
        "## Alerts",
        "### Event",
        "Inclusion proof",
    ] {
        assert!(md.contains(part), "{part} missing:\n{md}");
    }
    assert_eq!(
        server
            .get(
                &format!("/api/v1/incidents/{id}/export"),
                &[("format", "pdf")]
            )
            .status(),
        400
    );

    // The CLI writes the report to an owner-only file.
    let file = dir.path().join("report.md");
    cli(
        &server,
        &[
            "export",
            &id,
            "--format",
            "md",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("## Pinned events") && written.contains(&id));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let json_file = dir.path().join("report.json");
    cli(
        &server,
        &[
            "export",
            &id,
            "--format",
            "json",
            "-o",
            json_file.to_str().unwrap(),
        ],
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    // Made later, possibly against a newer checkpoint: the same record.
    let again = &j["pinned_events"][0]["proof"];
    assert_eq!(again["leaf_index"], proof["leaf_index"]);
    assert_eq!(again["payload"], proof["payload"]);
    let out = cli(&server, &["show", &id]);
    assert!(
        out.contains("event_pinned") && out.contains("assignee nobody → alice"),
        "{out}"
    );
    let out = cli(&server, &["list", "--status", "investigating"]);
    assert!(
        out.contains(&id) && out.contains("1 of 1 incidents"),
        "{out}"
    );

    // Resolve; MTTA and MTTR show up.
    let (code, v) = patch(
        &server,
        &id,
        json!({"status": "resolved", "note": "blocked"}),
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["incident"]["resolved_at"].is_string());
    let m = server.get_json("/api/v1/incidents/metrics", &[]);
    let high = &m["by_severity"]["high"];
    assert_eq!(high["incidents"], 1, "{m:#}");
    assert_eq!(high["mtta"]["count"], 1, "{m:#}");
    assert_eq!(high["mttr"]["count"], 1, "{m:#}");
    assert!(
        high["mttr"]["mean_secs"].as_f64().unwrap() >= high["mtta"]["mean_secs"].as_f64().unwrap()
    );
    assert_eq!(high["mttd"]["count"], 1, "{m:#}");
    assert_eq!(m["by_status"]["resolved"], 1);
    let text = server.metrics();
    for want in [
        "vigil_incidents{status=\"resolved\"} 1",
        "vigil_incident_mtta_seconds_count{severity=\"high\"} 1",
        "vigil_incident_mttr_seconds_count{severity=\"high\"} 1",
        "vigil_incident_mtta_seconds{severity=\"high\",quantile=\"0.5\"}",
    ] {
        assert!(text.contains(want), "{want} missing from /metrics");
    }
    // Reopening goes back to investigating.
    let (code, v) = patch(
        &server,
        &id,
        json!({"status": "investigating", "note": "again"}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["incident"]["resolved_at"], Value::Null);

    // Every change is in the ledger.
    let q = "event.dataset:vigil.incident AND NOT vigil.input:audit";
    assert!(poll(
        || server.search(q, 1000)["total"].as_u64().unwrap() >= 8
    ));
    let hits = server.search(q, 1000);
    let actions: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["action"].as_str().unwrap())
        .collect();
    for a in [
        "incident_created",
        "incident_alert_linked",
        "incident_status_changed",
        "incident_assignee_changed",
        "incident_tags_changed",
        "incident_note_added",
        "incident_event_pinned",
    ] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    let pinned_ev = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"]["action"] == "incident_event_pinned")
        .unwrap();
    assert_eq!(pinned_ev["user"]["name"], "admin (VIGIL_ADMIN_TOKEN)");
    assert_eq!(pinned_ev["vigil"]["incident"]["pinned_seq"], seq);
}

#[test]
fn incidents_are_opened_and_extended_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // A low rule: its alert never opens an incident by itself.
    std::fs::write(
        rules.join("root.yml"),
        RULE.replace("level: high", "level: low"),
    )
    .unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\n\n[alerts]\nenabled = true\n",
            rules.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 bastion sshd[470]: Failed password for root from 203.0.113.10 port 52140 ssh2",
        server.udp,
    )
    .unwrap();
    assert!(poll(|| server.get_json("/api/v1/alerts", &[])["total"] == 1));
    let alert = server.get_json("/api/v1/alerts", &[])["alerts"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The grouping policy saw it and left it alone.
    assert!(poll(|| server.metrics().contains(
        "vigil_incident_alerts_observed_total{result=\"ignored\"} 1"
    )));
    assert_eq!(server.get_json("/api/v1/incidents", &[])["total"], 0);

    let out = cli(
        &server,
        &[
            "create",
            "--alert",
            &alert,
            "--title",
            "Root probing on bastion",
        ],
    );
    assert!(out.contains("opened new"), "{out}");
    let list = server.get_json("/api/v1/incidents", &[]);
    let id = list["incidents"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["incidents"][0]["title"], "Root probing on bastion");
    assert_eq!(list["incidents"][0]["severity"], "low");
    // The same alert cannot be in two incidents.
    let (code, v) = send(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        json!({"alert_ids": [alert]}),
    );
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&id), "{v}");
    let (code, _) = send(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        json!({"alert_ids": ["0000"]}),
    );
    assert_eq!(code, 404);
    // Detach and attach again.
    let (code, v) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/v1/incidents/{id}/alerts/{alert}"),
        Value::Null,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["incident"]["alert_count"], 0);
    let out = cli(&server, &["attach", &id, &alert]);
    assert!(out.contains("1 alerts"), "{out}");
    let (code, v) = patch(
        &server,
        &id,
        json!({"severity": "critical", "assignee": "bob"}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["incident"]["severity"], "critical");
    let out = cli(&server, &["assign", &id, "carol"]);
    assert!(out.contains("assigned to carol"), "{out}");
    let (code, _) = patch(&server, &id, json!({}));
    assert_eq!(code, 400);
    let (code, _) = patch(&server, &id, json!({"assignee": "x\u{1b}[31m"}));
    assert_eq!(code, 400);
}

#[test]
fn alerts_recorded_while_incidents_were_off_are_grouped_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("root.yml"), RULE).unwrap();
    let config = |on: bool| {
        let cfg = dir.path().join(format!("vigil-{on}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[detection]\nrules_dirs = ['{}']\n\n[alerts]\nenabled = true\n\n[incidents]\nenabled = {on}\n",
                rules.display()
            ),
        )
        .unwrap();
        cfg
    };
    let off = config(false);
    let mut server = Server::start_with(&data, Some(TOKEN), &["--config", off.to_str().unwrap()]);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(
            b"<38>Mar  1 10:00:00 bastion sshd[470]: Failed password for root from 203.0.113.10 port 52140 ssh2",
            server.udp,
        )
        .unwrap();
    assert!(poll(|| server.get_json("/api/v1/alerts", &[])["total"] == 1));
    let r = server.get("/api/v1/incidents", &[]);
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("incident tracking is off"));
    server.terminate();

    let on = config(true);
    let server = Server::start_with(&data, Some(TOKEN), &["--config", on.to_str().unwrap()]);
    assert!(poll(
        || server.get_json("/api/v1/incidents", &[])["total"] == 1
    ));
    let inc = &server.get_json("/api/v1/incidents", &[])["incidents"][0];
    assert_eq!(inc["alert_count"], 1);
    assert_eq!(inc["entity"]["user.name"], "root");
}

const SUDO_RULE: &str = "title: Root shell through sudo\nid: 6f1d2c3b-8a7e-4e5f-9b0c-1d2e3f4a5b6c\nstatus: test\nlevel: medium\ntags:\n  - attack.privilege_escalation\n  - attack.t1548.003\nlogsource:\n  product: linux\ndetection:\n  sel:\n    process.name: sudo\n    process.command_line: /bin/bash\n  condition: sel\n";

#[test]
fn a_tactic_chain_on_one_host_is_one_incident_whoever_acted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("root.yml"), RULE).unwrap();
    std::fs::write(rules.join("sudo.yml"), SUDO_RULE).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\n\n[alerts]\nenabled = true\n",
            rules.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 bastion sshd[470]: Failed password for root from 203.0.113.10 port 52140 ssh2",
        server.udp,
    )
    .unwrap();
    assert!(poll(
        || server.get_json("/api/v1/incidents", &[])["total"] == 1
    ));
    // Another user escalates on the same host: credential access, then
    // privilege escalation.
    udp.send_to(
        b"<85>Mar  1 10:05:00 bastion sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash",
        server.udp,
    )
    .unwrap();
    assert!(
        poll(|| server.get_json("/api/v1/alerts", &[])["total"] == 2),
        "{:#}",
        server.search("NOT vigil.input:audit", 10)
    );
    assert!(poll(|| server.get_json("/api/v1/incidents", &[])
        ["incidents"][0]["alert_count"]
        == 2));
    let list = server.get_json("/api/v1/incidents", &[]);
    assert_eq!(list["total"], 1, "{list:#}");
    let inc = &list["incidents"][0];
    assert_eq!(
        inc["tactics"],
        json!(["credential_access", "privilege_escalation"])
    );
    let d = server.get_json(
        &format!("/api/v1/incidents/{}", inc["id"].as_str().unwrap()),
        &[],
    );
    let reasons: Vec<&str> = d["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["opened", "chain"], "{d:#}");
}
