//! Alerts end to end: `vigil serve` with a Sigma rule and a webhook channel
//! pointing at a receiver started here (loopback allowlisted). Matching
//! events become one grouped alert, the receiver gets one signed
//! notification, and the alert can be listed, acknowledged and closed
//! through the API and the CLI, each change landing in the ledger.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::{json, Value};

const RULE: &str = "title: SSH login failure for root\nid: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11\nstatus: test\nlevel: high\ntags:\n  - attack.credential_access\n  - attack.t1110.001\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  sel:\n    process.name: sshd\n    user.name: root\n    event.outcome: failure\n  condition: sel\n";

const SECRET: &str = "e2e-webhook-secret";

/// Requests received: (headers, body).
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A webhook receiver answering 200 to everything, for 120 s at most.
fn receiver() -> (std::net::SocketAddr, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut len = 0;
            for _ in 0..100 {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim().split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                g.lock().unwrap().push((headers, body));
            }
            let mut w = s;
            let _ =
                w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

fn poll(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

fn post_json(server: &Server, path: &str, body: Value) -> reqwest::blocking::Response {
    server.post(path, "application/json", body.to_string())
}

#[test]
fn matches_become_one_signed_notification_and_an_alert_to_ack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("root.yml"), RULE).unwrap();
    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (addr, got) = receiver();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\n\n[alerts]\noutbound_allow = [\"127.0.0.1/32\"]\n\
             [alerts.retry]\ninitial_ms = 100\n\n[[alerts.channel]]\nname = \"soc-hook\"\nkind = \"webhook\"\n\
             url = \"http://{addr}/vigil\"\nsecret_file = '{}'\n\n[[alerts.route]]\nname = \"high\"\n\
             min_level = \"high\"\nchannels = [\"soc-hook\"]\n",
            rules.display(),
            secret.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);

    // Unauthenticated callers see nothing.
    let r = Server::client()
        .get(server.url("/api/v1/alerts"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        udp.send_to(
            format!("<38>Mar  1 10:00:0{i} bastion sshd[47{i}]: Failed password for root from 203.0.113.10 port 5214{i} ssh2").as_bytes(),
            server.udp,
        )
        .unwrap();
    }
    server.wait_for("event.kind:alert AND event.dataset:vigil.alert", 3);

    // One alert, counted three times.
    assert!(poll(|| {
        let v = server.get_json("/api/v1/alerts", &[]);
        v["total"] == 1 && v["alerts"][0]["count"] == 3
    }));
    let v = server.get_json(
        "/api/v1/alerts",
        &[("status", "open"), ("severity", "high")],
    );
    let alert = &v["alerts"][0];
    let id = alert["id"].as_str().unwrap().to_string();
    assert_eq!(alert["rule_id"], "0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11");
    assert_eq!(alert["level"], "high");
    assert_eq!(alert["entity"]["user.name"], "root");
    assert_eq!(alert["entity"]["source.ip"], "203.0.113.10");
    assert!(alert["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("attack.t1110.001")));
    assert_eq!(alert["evidence_seqs"].as_array().unwrap().len(), 6);
    let none = server.get_json("/api/v1/alerts", &[("severity", "critical")]);
    assert_eq!(none["total"], 0);
    let r = server.get("/api/v1/alerts", &[("status", "maybe")]);
    assert_eq!(r.status(), 400);

    // One signed notification reached the receiver.
    assert!(poll(|| !got.lock().unwrap().is_empty()));
    assert!(poll(|| server
        .get_json("/api/v1/deliveries", &[("state", "delivered")])
        ["deliveries"]
        .as_array()
        .unwrap()
        .len()
        == 1));
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let (headers, body) = &reqs[0];
    let h = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert!(vigil_alert::sign::verify(
        SECRET.as_bytes(),
        body,
        &h("x-vigil-signature")
    ));
    let b: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(b["alert"]["id"], id.as_str());
    assert_eq!(b["delivery_id"], h("x-vigil-delivery").as_str());
    assert_eq!(b["sent_at"], h("x-vigil-timestamp").as_str());

    // Acknowledge, then close; both are in the history and the ledger.
    let r = post_json(
        &server,
        &format!("/api/v1/alerts/{id}/ack"),
        json!({"note": "on it"}),
    );
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["alert"]["status"], "acknowledged");
    let r = post_json(&server, &format!("/api/v1/alerts/{id}/ack"), json!({}));
    assert_eq!(r.status(), 409);
    let out = common::run_ok(
        common::vigil()
            .args(["alerts", "close", &id, "--note", "false positive"])
            .args(["--server", &server.url(""), "--token", TOKEN]),
    );
    assert!(out.contains("closed"), "{out}");
    let v = server.get_json(&format!("/api/v1/alerts/{id}"), &[]);
    assert_eq!(v["alert"]["status"], "closed");
    let actions: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"notification_delivered"), "{actions:?}");
    assert!(
        actions.ends_with(&["acknowledged", "closed"]),
        "{actions:?}"
    );
    // The count is recorded at powers of two (2 here), not on every repeat.
    let ledger = server.wait_for("event.dataset:vigil.alert.lifecycle", 4);
    let mut seen: Vec<&str> = ledger["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["action"].as_str().unwrap())
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "alert_acknowledged",
            "alert_closed",
            "alert_count_raised",
            "alert_created"
        ],
        "{ledger:#}"
    );
    assert!(server.get("/api/v1/alerts/nope", &[]).status() == 404);

    // The CLI lists it.
    let out = common::run_ok(
        common::vigil()
            .args(["alerts", "list", "--status", "closed"])
            .args(["--server", &server.url(""), "--token", TOKEN]),
    );
    assert!(
        out.contains(&id) && out.contains("SSH login failure for root"),
        "{out}"
    );

    // Suppressions: create, list, delete; bad ones are refused.
    let r = post_json(
        &server,
        "/api/v1/suppressions",
        json!({"fields": {"source.ip": "203.0.113.10"}, "reason": "pentest", "expires": "2h"}),
    );
    assert_eq!(r.status(), 201);
    let sid = r.json::<Value>().unwrap()["suppression"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post_json(
        &server,
        "/api/v1/suppressions",
        json!({"fields": {"password": "x"}, "reason": "r"}),
    );
    assert_eq!(r.status(), 400);
    udp.send_to(
        b"<38>Mar  1 10:01:00 bastion sshd[480]: Failed password for root from 203.0.113.10 port 52150 ssh2",
        server.udp,
    )
    .unwrap();
    assert!(poll(|| server
        .get_json("/api/v1/alerts", &[("status", "open")])["alerts"][0]
        ["suppressed"]
        == true));
    let list = server.get_json("/api/v1/suppressions", &[]);
    assert_eq!(list["suppressions"][0]["hits"], 1);
    assert_eq!(
        list["suppressions"][0]["author"],
        "admin (VIGIL_ADMIN_TOKEN)"
    );
    let r = Server::client()
        .delete(server.url(&format!("/api/v1/suppressions/{sid}")))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    // The CLI creates suppressions and shows alerts too.
    let cli = |args: &[&str]| {
        common::run_ok(common::vigil().arg("alerts").args(args).args([
            "--server",
            &server.url(""),
            "--token",
            TOKEN,
        ]))
    };
    let out = cli(&[
        "suppress",
        "--field",
        "user.name=svc-backup",
        "--field",
        "level=low",
        "--reason",
        "known job",
        "--expires",
        "1d",
    ]);
    assert!(out.starts_with("suppression "), "{out}");
    let list = server.get_json("/api/v1/suppressions", &[]);
    assert!(list["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["fields"]["user.name"] == "svc-backup" && s["reason"] == "known job"));
    let shown: Value = serde_json::from_str(&cli(&["show", &id])).unwrap();
    assert_eq!(shown["alert"]["id"], id.as_str());
    assert_eq!(shown["deliveries"][0]["state"], "delivered");

    // The suppressed alert was not sent.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(got.lock().unwrap().len(), 1);

    let m = server.metrics();
    assert!(m.contains("vigil_alerts_total 2"), "{m}");
    assert!(m.contains("vigil_alerts_suppressed_total 1"), "{m}");
    assert!(
        m.contains("vigil_deliveries_total{channel=\"soc-hook\",state=\"delivered\"} 1"),
        "{m}"
    );
}

#[test]
fn a_bad_alerts_section_stops_the_start_with_the_key() {
    let err = common::refused_config("[[alerts.route]]\nname = \"r\"\nchannels = [\"missing\"]\n");
    assert!(
        err.contains("route[0]") && err.contains("unknown channel"),
        "{err}"
    );
}

/// A config with the root rule and a file channel; `enabled` as given.
fn file_channel_config(dir: &std::path::Path, enabled: bool) -> std::path::PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("root.yml"), RULE).unwrap();
    let cfg = dir.join(format!("vigil-{enabled}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[detection]\nrules_dirs = ['{}']\n\n[alerts]\nenabled = {enabled}\n\n[[alerts.channel]]\n\
             name = \"archive\"\nkind = \"file\"\npath = '{}'\n\n[[alerts.route]]\nname = \"all\"\n\
             channels = [\"archive\"]\n",
            rules.display(),
            dir.join("alerts.ndjson").display()
        ),
    )
    .unwrap();
    cfg
}

fn send_failure(server: &Server, user: &str, ip: &str) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        format!("<38>Mar  1 10:00:00 bastion sshd[4721]: Failed password for {user} from {ip} port 52144 ssh2").as_bytes(),
        server.udp,
    )
    .unwrap();
}

#[test]
fn alerts_stored_while_tracking_was_off_are_caught_up_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let on = file_channel_config(dir.path(), true);
    let off = file_channel_config(dir.path(), false);
    let archive = dir.path().join("alerts.ndjson");
    let lines = || {
        std::fs::read_to_string(&archive)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };

    // Run 1, alerts on: one alert, one archived notification.
    let mut server = Server::start_with(&data, Some(TOKEN), &["--config", on.to_str().unwrap()]);
    send_failure(&server, "root", "203.0.113.1");
    assert!(poll(|| lines() == 1));
    server.terminate();

    // Run 2, alerts off: the match is only in the ledger.
    let mut server = Server::start_with(&data, Some(TOKEN), &["--config", off.to_str().unwrap()]);
    send_failure(&server, "root", "203.0.113.2");
    server.wait_for("event.kind:alert AND event.dataset:vigil.alert", 2);
    assert_eq!(server.get("/api/v1/alerts", &[]).status(), 404);
    server.terminate();
    assert_eq!(lines(), 1);

    // Run 3, alerts on again: the missed alert is recorded and notified once.
    let server = Server::start_with(&data, Some(TOKEN), &["--config", on.to_str().unwrap()]);
    assert!(poll(|| server.get_json("/api/v1/alerts", &[])["total"] == 2));
    assert!(poll(|| lines() == 2));
    let v = server.get_json("/api/v1/alerts", &[("entity", "203.0.113.2")]);
    assert_eq!(v["alerts"][0]["count"], 1);
    let first = server.get_json("/api/v1/alerts", &[("entity", "203.0.113.1")]);
    assert_eq!(
        first["alerts"][0]["count"], 1,
        "run 1's alert is not recorded twice"
    );
}
