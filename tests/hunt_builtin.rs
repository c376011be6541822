//! `vigil hunt --builtin`: the built-in detectors over crafted logs, run
//! through the real binary.

mod common;

use common::{ndjson, vigil};
use serde_json::Value;

fn auth_log() -> String {
    let mut l = Vec::new();
    // 12 failures for root from one address, then a success.
    for i in 0..12 {
        l.push(format!(
            "Mar  3 09:14:{i:02} bastion sshd[4721]: Failed password for root from 203.0.113.9 port {} ssh2",
            50000 + i
        ));
    }
    l.push("Mar  3 09:14:20 bastion sshd[4721]: Accepted password for root from 203.0.113.9 port 50100 ssh2".into());
    // One address, 11 accounts, one attempt each: spraying.
    for (i, u) in [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory",
    ]
    .iter()
    .enumerate()
    {
        l.push(format!(
            "Mar  3 09:20:{i:02} bastion sshd[4800]: Failed password for invalid user {u} from 198.51.100.23 port {} ssh2",
            40000 + i
        ));
    }
    // 9 failures (one below the threshold) spread over time: nothing.
    for i in 0..9 {
        l.push(format!(
            "Mar  3 10:{:02}:00 bastion sshd[4900]: Failed password for oscar from 192.0.2.44 port {} ssh2",
            i * 2,
            41000 + i
        ));
    }
    l.join("\n") + "\n"
}

fn access_log() -> String {
    let mut l = Vec::new();
    for i in 0..60 {
        l.push(format!(
            "203.0.113.77 - - [12/Jan/2024:06:30:{i:02} +0000] \"GET /admin{i}.php HTTP/1.1\" 404 153 \"-\" \"scanner\""
        ));
    }
    l.push("203.0.113.78 - - [12/Jan/2024:06:31:00 +0000] \"GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\" 200 10 \"-\" \"x\"".into());
    l.push("203.0.113.79 - - [12/Jan/2024:06:31:01 +0000] \"GET /proxy?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F HTTP/1.1\" 200 10 \"-\" \"x\"".into());
    l.push("203.0.113.80 - - [12/Jan/2024:06:31:02 +0000] \"GET /index.html?q=select+a+union+member HTTP/1.1\" 200 10 \"-\" \"x\"".into());
    // 20 404s from a second address: below the threshold of 50.
    for i in 0..20 {
        l.push(format!(
            "203.0.113.81 - - [12/Jan/2024:06:32:{i:02} +0000] \"GET /missing{i} HTTP/1.1\" 404 153 \"-\" \"x\""
        ));
    }
    l.join("\n") + "\n"
}

fn by_id<'a>(alerts: &'a [Value], id: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule_id"] == id).collect()
}

#[test]
fn builtin_detectors_over_auth_and_access_logs() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.log");
    let access = dir.path().join("access.log");
    std::fs::write(&auth, auth_log()).unwrap();
    std::fs::write(&access, access_log()).unwrap();
    let alerts = ndjson(vigil().arg("hunt").arg("--builtin").arg(&auth).arg(&access));

    let bf = by_id(&alerts, "vigil.brute_force");
    assert_eq!(bf.len(), 2, "{alerts:#?}");
    let root = bf
        .iter()
        .find(|a| a["detector"]["entity"]["user.name"] == "root")
        .expect("brute force on root");
    assert_eq!(root["detector"]["entity"]["source.ip"], "203.0.113.9");
    assert_eq!(root["detector"]["entity"]["host.name"], "bastion");
    assert_eq!(root["detector"]["counts"]["failures"], 10);
    assert_eq!(root["detector"]["window"], "300s");
    assert_eq!(root["level"], "medium");
    assert!(root["tags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("attack.t1110.001")));
    let ev = root["events"].as_array().unwrap();
    assert_eq!(ev.len(), 10);
    assert!(ev.iter().all(|e| e["source"]["ip"] == "203.0.113.9"));
    // The spraying source also crosses the per-source brute-force bar.
    assert!(bf
        .iter()
        .any(|a| a["detector"]["entity"]["source.ip"] == "198.51.100.23"));
    // Nine failures for oscar: no alert names him.
    assert!(!alerts
        .iter()
        .any(|a| a["detector"]["entity"]["user.name"] == "oscar"));

    let spray = by_id(&alerts, "vigil.password_spray");
    assert_eq!(spray.len(), 1);
    assert_eq!(spray[0]["detector"]["counts"]["distinct_accounts"], 10);

    let saf = by_id(&alerts, "vigil.success_after_failures");
    assert_eq!(saf.len(), 1);
    let last = saf[0]["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"]["outcome"], "success");

    let scan = by_id(&alerts, "vigil.web_scan");
    assert_eq!(scan.len(), 1, "one alert per window, not one per 404");
    assert_eq!(scan[0]["detector"]["entity"]["source.ip"], "203.0.113.77");

    let attack = by_id(&alerts, "vigil.web_attack");
    let classes: Vec<&Value> = attack
        .iter()
        .map(|a| &a["detector"]["counts"]["class"])
        .collect();
    assert_eq!(classes, vec!["sqli", "ssrf"]);
    assert!(by_id(&alerts, "vigil.credential_stuffing").is_empty());
    assert_eq!(alerts.len(), 7, "{alerts:#?}");
}

#[test]
fn builtin_reads_windows_logon_failures() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("security.ndjson");
    let mut lines = Vec::new();
    for i in 0..10 {
        lines.push(format!(
            r#"{{"EventID":4625,"Channel":"Security","Hostname":"dc01","TargetUserName":"svc_sql","IpAddress":"10.0.0.{i}","LogonType":3,"@timestamp":"2024-01-12T06:30:{i:02}Z"}}"#
        ));
    }
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let alerts = ndjson(vigil().arg("hunt").arg("--builtin").arg(&f));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["rule_id"], "vigil.brute_force");
    assert_eq!(alerts[0]["detector"]["entity"]["user.name"], "svc_sql");
    assert_eq!(alerts[0]["detector"]["entity"]["host.name"], "dc01");
    // Nine: nothing.
    std::fs::write(&f, lines[..9].join("\n") + "\n").unwrap();
    assert!(ndjson(vigil().arg("hunt").arg("--builtin").arg(&f)).is_empty());
}

#[test]
fn rules_or_builtin_is_required() {
    let out = vigil().args(["hunt", "x.log"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn score_against_simulate_labels() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.log");
    let labels = dir.path().join("labels.ndjson");
    let out = vigil()
        .args(["simulate", "--seed", "5", "--events", "30000"])
        .args(["--attacks", "log_clearing,new_admin,sudo_abuse"])
        .arg("--out")
        .arg(&log)
        .arg("--labels")
        .arg(&labels)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vigil()
        .args(["hunt", "--builtin", "--score"])
        .arg(&labels)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let row = |name: &str| {
        err.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name} in {err}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // attack, instances, detected, recall, delay, detectors…
    let lc = row("log_clearing");
    assert_eq!(lc[1], lc[2], "{err}");
    assert_eq!(lc[3], "1.00", "{err}");
    assert!(
        lc[5..]
            .iter()
            .any(|d| d.starts_with("vigil.log_tampering×")),
        "{err}"
    );
    let na = row("new_admin");
    assert_eq!(na[3], "1.00", "{err}");
    assert!(
        na[5..]
            .iter()
            .any(|d| d.starts_with("vigil.privilege_change×")),
        "{err}"
    );
    // Every log_tampering alert is credited to an attack.
    let lt = row("vigil.log_tampering");
    assert_eq!(lt[1], lt[2], "alerts == tp: {err}");
    assert_eq!(lt[3], "0", "{err}");
    // The alerts on stdout are the ones scored.
    let alerts = ndjson(vigil().args(["hunt", "--builtin"]).arg(&log));
    let total: usize = err
        .lines()
        .find(|l| l.trim_start().starts_with("all "))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(alerts.len(), total);

    // A labels file that is not JSON is refused, naming the line.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"type\":\"event\",\"attack_id\":\"A1\",\"time\":\"2025-01-06T00:00:00Z\"}\nnot json\n",
    )
    .unwrap();
    let out = vigil()
        .args(["hunt", "--builtin", "--score"])
        .arg(&bad)
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.ndjson:2"), "{err}");
    // --score needs --builtin.
    let out = vigil()
        .args(["hunt", "--rules", "/nonexistent", "--score"])
        .arg(&labels)
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn tampering_and_silence_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("host.log");
    let mut l = Vec::new();
    // app01 speaks every 10 s for 10 minutes, then stops; db01 goes on for
    // two more hours. Offline, silence is judged at db01's last event.
    for i in 0..60 {
        let (m, s) = (i * 10 / 60, i * 10 % 60);
        l.push(format!(
            "<86>1 2025-01-06T08:{m:02}:{s:02}.000Z app01 cron 1 - - pam_unix(cron:session): session closed for user root"
        ));
    }
    for i in 0..=120 {
        let (h, m) = (8 + i / 60, i % 60);
        l.push(format!(
            "<86>1 2025-01-06T{h:02}:{m:02}:30.000Z db01 cron 1 - - pam_unix(cron:session): session closed for user root"
        ));
    }
    l.push("<85>1 2025-01-06T09:00:00.000Z db01 sudo 9 - - alice : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/rm -f /root/.bash_history".into());
    std::fs::write(&log, l.join("\n") + "\n").unwrap();
    let alerts = ndjson(vigil().args(["hunt", "--builtin"]).arg(&log));
    let ids: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["vigil.log_tampering", "vigil.source_silent"],
        "{alerts:?}"
    );
    let t = &alerts[0]["detector"];
    assert_eq!(t["counts"]["class"], "history_wipe");
    assert_eq!(t["entity"]["user.name"], "alice");
    let s = &alerts[1]["detector"];
    assert_eq!(s["entity"]["vigil.source"], "app01");
    // 08:09:50 to 10:00:30.
    assert_eq!(s["counts"]["silent_secs"], 6640);
    assert_eq!(s["counts"]["threshold_secs"], 900);
    let _: &Value = &alerts[1]["events"][0];
}

/// A host sending about 60 events per 5 minutes for four hours, with
/// ten times that from 03:00 to 03:20, and a second host that goes quiet
/// from 03:30 while the first goes on.
fn rate_series() -> String {
    let mut l = Vec::new();
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-06T00:00:00Z").unwrap();
    for s in (0..4 * 3600).step_by(5) {
        let t = start + chrono::Duration::seconds(s);
        let burst = (3 * 3600..3 * 3600 + 1200).contains(&s);
        for k in 0..if burst { 10 } else { 1 } {
            let ts = (t + chrono::Duration::milliseconds(k * 400)).to_rfc3339();
            l.push(format!(
                r#"{{"@timestamp":"{ts}","host":{{"name":"web01"}},"message":"GET /"}}"#
            ));
        }
        if s < 3 * 3600 + 1800 {
            l.push(format!(
                r#"{{"@timestamp":"{}","host":{{"name":"db01"}},"message":"query"}}"#,
                (t + chrono::Duration::milliseconds(2500)).to_rfc3339()
            ));
        }
    }
    l.join("\n") + "\n"
}

#[test]
fn builtin_rate_spike_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("series.ndjson");
    std::fs::write(&f, rate_series()).unwrap();
    let alerts = ndjson(vigil().arg("hunt").arg("--builtin").arg(&f));
    let spikes = by_id(&alerts, "vigil.rate_spike");
    assert_eq!(spikes.len(), 1, "one alert per episode: {alerts:#?}");
    let s = spikes[0];
    assert_eq!(s["detector"]["entity"]["host.name"], "web01");
    assert_eq!(s["detector"]["first"], "2025-01-06T03:00:00.000Z");
    let c = &s["detector"]["counts"];
    // Called at the 240th event (4 × the expected 60), while the bucket was
    // still open; the bucket's 600 are not waited for.
    assert_eq!(c["observed"], 240);
    assert_eq!(c["judged"], "bucket_open");
    assert_eq!(c["expected"], 60.0);
    assert_eq!(c["basis"], "recent");
    assert_eq!(c["slot"], "Mon 03:00 UTC");
    assert!(c["score"].as_f64().unwrap() > 6.0, "{c}");
    // The evidence: a sample of the bucket's events up to the call.
    let ev = s["events"].as_array().unwrap();
    assert_eq!(ev.len(), 20);
    assert!(ev.iter().all(|e| e["host"]["name"] == "web01"));
    let drops = by_id(&alerts, "vigil.rate_drop");
    assert_eq!(drops.len(), 1, "{alerts:#?}");
    assert_eq!(drops[0]["detector"]["entity"]["host.name"], "db01");
    assert_eq!(drops[0]["detector"]["counts"]["observed"], 0);
    assert_eq!(drops[0]["level"], "medium");
    // db01's silence is also judged at the end of the input.
    let silent = by_id(&alerts, "vigil.source_silent");
    assert_eq!(silent[0]["detector"]["entity"]["vigil.source"], "db01");
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
}
