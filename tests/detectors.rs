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

fn sudo_line(t: &str, user: &str, cmd: &str) -> String {
    format!("<85>1 {t} app01 sudo 4242 - - {user} : TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}\n")
}

fn rule_ids(server: &Server, n: u64) -> Vec<String> {
    let alerts = server.wait_for("event.kind:alert", n);
    let mut ids: Vec<String> = alerts["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn host_activity_detectors_alert_in_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let body = [
        sudo_line("2025-01-06T10:00:00.000Z", "alice", "/usr/bin/id"),
        sudo_line(
            "2025-01-06T10:00:05.000Z",
            "alice",
            "/usr/bin/truncate -s 0 /var/log/auth.log",
        ),
        "<86>1 2025-01-06T10:01:00.000Z app01 useradd 77 - - new user: name=backdoor, UID=1600, GID=1600, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/1\n".to_string(),
        "<86>1 2025-01-06T10:01:10.000Z app01 usermod 78 - - add 'backdoor' to group 'sudo'\n".to_string(),
        "<86>1 2025-01-06T10:01:11.000Z app01 usermod 78 - - add 'backdoor' to shadow group 'sudo'\n".to_string(),
        "<86>1 2025-01-06T10:03:00.000Z app01 sshd 79 - - Accepted password for backdoor from 203.0.113.77 port 50022 ssh2\n".to_string(),
    ]
    .concat();
    let r = server.post("/api/v1/events", "text/plain", body);
    assert!(r.status().is_success(), "{}", r.status());
    let ids = rule_ids(&server, 3);
    assert_eq!(
        ids,
        [
            "vigil.log_tampering",
            "vigil.new_account_used",
            "vigil.privilege_change"
        ]
    );
    let t = server.search("rule.id:vigil.log_tampering", 1);
    let a = &t["hits"][0];
    assert_eq!(a["host"]["name"], "app01");
    assert_eq!(a["user"]["name"], "alice");
    assert_eq!(
        a["vigil"]["alert"]["detector"]["counts"]["technique"],
        "T1070.002"
    );
    // The evidence is the truncate line.
    let seq = a["vigil"]["alert"]["evidence_seqs"][0].as_u64().unwrap();
    let e = server.search(&format!("vigil.seq:{seq}"), 1);
    assert!(
        e["hits"][0]["process"]["command_line"]
            .as_str()
            .unwrap()
            .contains("truncate"),
        "{e}"
    );
    let p = server.search("rule.id:vigil.privilege_change", 1);
    assert_eq!(p["hits"][0]["user"]["target"]["name"], "backdoor");
    assert_eq!(p["hits"][0]["group"]["name"], "sudo");
}

#[test]
fn sudo_baseline_survives_a_restart_and_a_corrupt_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    // Learning starts with the first sudo seen (2 h of event time).
    let r = server.post(
        "/api/v1/events",
        "text/plain",
        sudo_line("2025-01-06T08:00:00.000Z", "alice", "/usr/bin/id"),
    );
    assert!(r.status().is_success());
    server.wait_for("event.action:sudo_command", 1);
    // A graceful stop in the middle of the learning period writes the
    // snapshot, readable by its owner only.
    server.terminate();
    let snap = data.join("detectors").join("baselines.json");
    let meta = std::fs::metadata(&snap).expect("snapshot written at shutdown");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let v: Value = serde_json::from_slice(&std::fs::read(&snap).unwrap()).unwrap();
    assert_eq!(v["version"], 2);

    // After the restart the learning period still ends at 10:00: alice is
    // known, mallory is new.
    let server = Server::start(&data);
    let body = [
        sudo_line("2025-01-06T11:00:00.000Z", "alice", "/usr/bin/id"),
        sudo_line("2025-01-06T11:00:01.000Z", "mallory", "/usr/bin/id"),
    ]
    .concat();
    assert!(server
        .post("/api/v1/events", "text/plain", body)
        .status()
        .is_success());
    let alerts = server.wait_for("event.kind:alert", 1);
    assert_eq!(alerts["total"], 1, "{alerts}");
    assert_eq!(alerts["hits"][0]["rule"]["id"], "vigil.first_sudo");
    assert_eq!(alerts["hits"][0]["user"]["name"], "mallory");
    drop(server);

    // A corrupt snapshot is ignored whole: the baselines start empty, so
    // a new sudo user is learnt, not alerted.
    let dir2 = tempfile::tempdir().unwrap();
    let data2 = dir2.path().join("data");
    std::fs::create_dir_all(data2.join("detectors")).unwrap();
    std::fs::write(
        data2.join("detectors").join("baselines.json"),
        b"{\"version\":1,\"sudo\":{\"set\":[\"alice\"",
    )
    .unwrap();
    let server = Server::start(&data2);
    assert!(server
        .post(
            "/api/v1/events",
            "text/plain",
            sudo_line("2025-01-06T11:00:01.000Z", "mallory", "/usr/bin/id"),
        )
        .status()
        .is_success());
    server.wait_for("event.action:sudo_command", 1);
    assert_eq!(server.search("event.kind:alert", 10)["total"], 0);
}

#[test]
fn a_silent_source_is_reported_by_the_servers_tick_and_its_return_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("vigil.toml");
    // Armed after 2 gaps; silence beyond 1 s (whatever the gaps) alerts.
    std::fs::write(
        &cfg,
        "[detectors.source_silent]\nmin_observations = 2\nfactor = 1.0\nmax_gap_factor = 0.0\nfloor_secs = 1\n",
    )
    .unwrap();
    let server = Server::start_with(
        &data,
        Some(common::TOKEN),
        &["--config", cfg.to_str().unwrap()],
    );
    let line = |n: u32| {
        format!("<86>1 2025-01-06T08:00:0{n}.000Z quiet01 cron 1 - - pam_unix(cron:session): session closed for user root\n")
    };
    // Three events, received now (their old timestamps do not matter:
    // silence is about arrival).
    for n in 0..3 {
        assert!(server
            .post("/api/v1/events", "text/plain", line(n))
            .status()
            .is_success());
    }
    // Nothing else arrives: the writer's periodic tick raises the alert.
    let a = server.wait_for("rule.id:vigil.source_silent", 1);
    assert_eq!(a["total"], 1, "{a}");
    let hit = &a["hits"][0];
    assert_eq!(hit["vigil"]["source"], "vigil");
    assert_eq!(
        hit["vigil"]["alert"]["detector"]["entity"]["vigil.source"],
        "quiet01"
    );
    assert_eq!(
        hit["vigil"]["alert"]["detector"]["counts"]["observed_gaps"],
        2
    );
    // Its evidence is the source's last event.
    let seq = hit["vigil"]["alert"]["evidence_seqs"][0].as_u64().unwrap();
    let e = server.search(&format!("vigil.seq:{seq}"), 1);
    assert_eq!(e["hits"][0]["host"]["name"], "quiet01");
    // It speaks again: a recovery notice.
    assert!(server
        .post("/api/v1/events", "text/plain", line(5))
        .status()
        .is_success());
    let r = server.wait_for("rule.id:vigil.source_recovered", 1);
    assert_eq!(r["total"], 1, "{r}");
    assert_eq!(r["hits"][0]["vigil"]["alert"]["level"], "informational");
}

#[test]
fn silence_statistics_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("vigil.toml");
    // Armed after 2 gaps; silence beyond 3 s alerts.
    std::fs::write(
        &cfg,
        "[detectors.source_silent]\nmin_observations = 2\nfactor = 1.0\nmax_gap_factor = 0.0\nfloor_secs = 3\n",
    )
    .unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let mut server = Server::start_with(&data, Some(common::TOKEN), &args);
    let line = |n: u32| {
        format!("<86>1 2025-01-06T08:00:0{n}.000Z quiet02 cron 1 - - pam_unix(cron:session): session closed for user root\n")
    };
    for n in 0..3 {
        assert!(server
            .post("/api/v1/events", "text/plain", line(n))
            .status()
            .is_success());
    }
    server.wait_for("host.name:quiet02", 3);
    // Stopped well before the 3 s of silence: the gaps are only learnt.
    server.terminate();
    let snap: Value = serde_json::from_slice(
        &std::fs::read(data.join("detectors").join("baselines.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snap["silence"]["quiet02"]["gaps"], 2, "{snap}");
    assert_eq!(snap["silence"]["quiet02"]["silent"], Value::Null);
    // The rate profiles are in the same snapshot (the host is known; its
    // first, partial bucket is not learnt).
    let profile = &snap["rates"]["profiles"]["host"]["quiet02"];
    assert!(profile["since"].is_i64(), "{snap}");
    assert_eq!(profile["day"], serde_json::json!([]));

    // Restarted: quiet02 sends nothing more, yet it is known and armed, so
    // its silence is reported without learning it again.
    let server = Server::start_with(&data, Some(common::TOKEN), &args);
    let a = server.wait_for("rule.id:vigil.source_silent", 1);
    assert_eq!(a["total"], 1, "{a}");
    let d = &a["hits"][0]["vigil"]["alert"]["detector"];
    assert_eq!(d["entity"]["vigil.source"], "quiet02");
    assert_eq!(d["counts"]["observed_gaps"], 2);
    // Counted from the restart, not from before it: the downtime was
    // Vigil's, not the source's.
    assert!(d["counts"]["silent_secs"].as_u64().unwrap() < 60, "{d}");
}

/// An RFC 5424 line from `host` at minute `min`, second `sec`, millisecond `ms` of 2025-01-06 10:00.
fn app_line(host: &str, min: u32, sec: u32, ms: u32) -> String {
    let (h, m) = (10 + min / 60, min % 60);
    format!("<134>1 2025-01-06T{h:02}:{m:02}:{sec:02}.{ms:03}Z {host} app 1 - - request served\n")
}

/// `per_minute` lines from `host` spread over minute `min`.
fn minute(host: &str, min: u32, per_minute: u32) -> Vec<(u32, String)> {
    (0..per_minute)
        .map(|i| {
            let at = i * 60_000 / per_minute;
            (min * 60_000 + at, app_line(host, min, at / 1000, at % 1000))
        })
        .collect()
}

#[test]
fn rate_spike_and_drop_alert_in_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("vigil.toml");
    // Counted by event time, so that ten minutes of history can be sent at
    // once; armed at once, a slot trusted after 3 buckets, per host only.
    std::fs::write(
        &cfg,
        "[detectors.rate]\nclock = \"event\"\nbucket_secs = 60\nlearning_secs = 0\n\
         min_slot_observations = 3\nby_source = false\nby_user = false\nby_category = false\n",
    )
    .unwrap();
    let server = Server::start_with(
        &data,
        Some(common::TOKEN),
        &["--config", cfg.to_str().unwrap()],
    );
    let send = |mut lines: Vec<(u32, String)>| {
        lines.sort_by_key(|l| l.0);
        let body: String = lines.into_iter().map(|l| l.1).collect();
        let r = server.post("/api/v1/events", "text/plain", body);
        assert!(r.status().is_success(), "{}", r.status());
    };
    // Ten ordinary minutes: web01 at 200 a minute, db01 at 20.
    let mut lines = Vec::new();
    for m in 0..10 {
        lines.extend(minute("web01", m, 200));
        lines.extend(minute("db01", m, 20));
    }
    send(lines);
    server.wait_for("host.name:web01", 2000);
    assert_eq!(server.search("event.kind:alert", 1)["total"], 0);

    // Minute 10: web01 sends 1200. The alert comes when the count crosses
    // four times the usual, while the minute is still open.
    let mut lines = minute("web01", 10, 1200);
    lines.extend(minute("db01", 10, 20));
    send(lines);
    let a = server.wait_for("rule.id:vigil.rate_spike", 1);
    assert_eq!(a["total"], 1, "{a}");
    let hit = &a["hits"][0];
    let d = &hit["vigil"]["alert"]["detector"];
    assert_eq!(d["entity"]["host.name"], "web01", "{hit}");
    assert_eq!(d["counts"]["judged"], "bucket_open", "{hit}");
    assert_eq!(d["counts"]["basis"], "hour_of_week", "{hit}");
    let observed = d["counts"]["observed"].as_u64().unwrap();
    assert!((800..1200).contains(&observed), "{hit}");
    // Its evidence is web01's events of that minute.
    let seq = hit["vigil"]["alert"]["evidence_seqs"][0].as_u64().unwrap();
    let e = server.search(&format!("vigil.seq:{seq}"), 1);
    assert_eq!(e["hits"][0]["host"]["name"], "web01", "{e}");

    // Minutes 11–14: web01 is back to normal for one minute, then silent
    // while db01 goes on: one drop alert, when the first silent minute closes.
    let mut lines = minute("web01", 11, 200);
    for m in 11..15 {
        lines.extend(minute("db01", m, 20));
    }
    send(lines);
    let a = server.wait_for("rule.id:vigil.rate_drop", 1);
    assert_eq!(a["total"], 1, "{a}");
    let d = &a["hits"][0]["vigil"]["alert"]["detector"];
    assert_eq!(d["entity"]["host.name"], "web01");
    assert_eq!(d["counts"]["observed"], 0);
    assert_eq!(d["counts"]["judged"], "bucket_closed");
    // Nothing else alerted: db01 was steady throughout, and the spike was
    // not reported a second time when its minute closed.
    let all = server.search("event.kind:alert", 10);
    assert_eq!(all["total"], 2, "{all}");
}
