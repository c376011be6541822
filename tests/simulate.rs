//! `vigil simulate`: determinism, attack coverage, decoding by Vigil's own
//! parsers, and sending to a running server.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `vigil simulate` with `args`, writing `out` and `labels` in `dir`.
fn simulate(dir: &Path, name: &str, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let out = dir.join(format!("{name}.log"));
    let labels = dir.join(format!("{name}.labels.ndjson"));
    common::run_ok(
        common::vigil()
            .arg("simulate")
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("--labels")
            .arg(&labels),
    );
    (
        std::fs::read(&out).unwrap(),
        std::fs::read(&labels).unwrap(),
    )
}

fn parse_ndjson(b: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(b)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect()
}

#[test]
fn same_seed_same_bytes_and_other_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--seed", "42", "--events", "3000"];
    let a = simulate(dir.path(), "a", &args);
    let b = simulate(dir.path(), "b", &args);
    assert_eq!(a.0, b.0, "output differs for the same seed");
    assert_eq!(a.1, b.1, "labels differ for the same seed");
    assert_eq!(String::from_utf8_lossy(&a.0).lines().count(), 3000);
    let c = simulate(dir.path(), "c", &["--seed", "43", "--events", "3000"]);
    assert_ne!(a.0, c.0);
    assert_ne!(a.1, c.1);
    // NDJSON and a duration bound are deterministic too.
    let args = ["--seed", "7", "--duration", "20m", "--format", "ndjson"];
    let d = simulate(dir.path(), "d", &args);
    let e = simulate(dir.path(), "e", &args);
    assert_eq!(d.0, e.0);
    assert_eq!(d.1, e.1);
    for l in String::from_utf8_lossy(&d.0).lines() {
        let v: Value = serde_json::from_str(l).expect("every ndjson line is JSON");
        assert!(v["@timestamp"].is_string(), "{l}");
    }
}

#[test]
fn every_attack_is_labelled_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let (out, labels) = simulate(dir.path(), "all", &["--seed", "3", "--events", "4000"]);
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    let labels = parse_ndjson(&labels);
    let kinds = [
        "brute_force",
        "password_spray",
        "credential_stuffing",
        "sudo_abuse",
        "web_scan",
        "new_admin",
        "log_clearing",
    ];
    let summaries: Vec<&Value> = labels.iter().filter(|l| l["type"] == "attack").collect();
    let events: Vec<&Value> = labels.iter().filter(|l| l["type"] == "event").collect();
    for k in kinds {
        assert!(
            summaries.iter().any(|s| s["attack"] == k),
            "no {k} instance"
        );
        assert!(events.iter().any(|e| e["attack"] == k), "no {k} line");
    }
    // Both platforms for the platform-specific attacks.
    for k in ["new_admin", "log_clearing"] {
        let p: HashSet<&str> = summaries
            .iter()
            .filter(|s| s["attack"] == k)
            .map(|s| s["platform"].as_str().unwrap())
            .collect();
        assert_eq!(p.len(), 2, "{k}: {p:?}");
    }
    // Each summary agrees with its event lines, and each event line points
    // at an output line that names its user and address.
    for s in &summaries {
        let mine: Vec<&&Value> = events
            .iter()
            .filter(|e| e["attack_id"] == s["attack_id"])
            .collect();
        assert_eq!(s["events"].as_u64().unwrap() as usize, mine.len());
        assert_eq!(s["first_line"], mine[0]["line"]);
        assert!(s["technique"].as_str().unwrap().starts_with('T'));
    }
    for e in &events {
        let n = e["line"].as_u64().unwrap() as usize;
        let line = lines[n - 1];
        if let Some(ip) = e["source.ip"].as_str() {
            assert!(line.contains(ip), "line {n} lacks {ip}: {line}");
        }
        if let Some(u) = e["user.name"].as_str() {
            assert!(line.contains(u), "line {n} lacks {u}: {line}");
        }
    }
    // A narrowed list injects only what it names; none injects nothing.
    let (_, labels) = simulate(
        dir.path(),
        "two",
        &[
            "--seed",
            "3",
            "--events",
            "2000",
            "--attacks",
            "web_scan,sudo_abuse",
        ],
    );
    let names: HashSet<String> = parse_ndjson(&labels)
        .iter()
        .map(|l| l["attack"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["web_scan".to_string(), "sudo_abuse".to_string()])
    );
    let (out, labels) = simulate(
        dir.path(),
        "none",
        &["--events", "500", "--attacks", "none"],
    );
    assert!(labels.is_empty());
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 500);
}

/// The last "N of TOTAL matching events" count that `vigil search` prints.
fn offline_search(data: &Path, q: &str) -> Vec<Value> {
    common::ndjson(
        common::vigil()
            .args(["search", "--json", "--limit", "10000", "--data-dir"])
            .arg(data)
            .arg(q)
            .current_dir(data.parent().unwrap())
            .env_remove("VIGIL_CONFIG"),
    )
}

#[test]
fn output_decodes_with_vigils_parsers_and_matches_the_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (out, labels) = simulate(dir.path(), "sim", &["--seed", "11", "--events", "5000"]);
    let n_lines = String::from_utf8_lossy(&out).lines().count();
    let data = dir.path().join("data");
    let text = common::run_ok(
        common::vigil()
            .args(["ingest", "--data-dir"])
            .arg(&data)
            .arg(dir.path().join("sim.log"))
            .current_dir(dir.path())
            .env_remove("VIGIL_CONFIG"),
    );
    assert!(
        text.contains("stored 5000 events") && text.contains("0 kept raw with a parse error"),
        "{text}"
    );
    let all = offline_search(&data, "*");
    assert_eq!(all.len(), n_lines);
    let by_seq: HashMap<u64, &Value> = all
        .iter()
        .map(|e| (e["vigil"]["seq"].as_u64().unwrap(), e))
        .collect();

    // Every syslog line was recognised by an application decoder.
    let syslog = offline_search(&data, "log.format:rfc5424");
    assert!(!syslog.is_empty());
    for e in &syslog {
        assert!(e["event"]["action"].is_string(), "undecoded: {e}");
        assert_eq!(e["event"]["dataset"], "system.auth");
    }
    assert!(!offline_search(&data, "event.dataset:http.access").is_empty());
    assert!(!offline_search(&data, "EventID:4688").is_empty());
    assert!(!offline_search(&data, "event.action:su").is_empty());
    assert!(!offline_search(&data, "event.action:session_opened").is_empty());
    assert!(!offline_search(&data, "event.action:authn_login_success").is_empty());

    // Each labelled line decodes to the action, address and user its label says.
    let labels = parse_ndjson(&labels);
    let mut attackers = HashSet::new();
    let mut labelled = HashSet::new();
    for l in labels.iter().filter(|l| l["type"] == "event") {
        let seq = l["line"].as_u64().unwrap(); // ingested in order: seq = line
        labelled.insert(seq);
        let ev = by_seq[&seq];
        if let Some(a) = l["event.action"].as_str() {
            assert_eq!(ev["event"]["action"], a, "line {seq}: {ev}");
        }
        if let Some(ip) = l["source.ip"].as_str() {
            attackers.insert(ip.to_string());
            let got = ev["source"]["ip"].as_str().or(ev["IpAddress"].as_str());
            assert_eq!(got, Some(ip), "line {seq}: {ev}");
        }
        if let Some(u) = l["user.name"].as_str() {
            assert!(ev.to_string().contains(u), "line {seq} lacks {u}: {ev}");
        }
    }
    // Labels are complete: attacker addresses appear in no unlabelled event,
    // so counting by address equals counting by label.
    for (seq, ev) in &by_seq {
        let ip = ev["source"]["ip"].as_str().or(ev["IpAddress"].as_str());
        if let Some(ip) = ip.filter(|ip| attackers.contains(*ip)) {
            assert!(
                labelled.contains(seq),
                "unlabelled attacker line {seq}: {ip}"
            );
        }
    }
    let brute: Vec<&Value> = labels
        .iter()
        .filter(|l| l["type"] == "event" && l["attack"] == "brute_force")
        .collect();
    let ip = brute[0]["source.ip"].as_str().unwrap();
    let hits = offline_search(&data, &format!("event.action:ssh_login AND source.ip:{ip}"));
    assert_eq!(hits.len(), brute.len());
}

/// Polls the server until `q` counts `n` events, or fails after a minute.
fn wait_total(server: &common::Server, q: &str, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total = server.search(q, 1)["total"].as_u64().unwrap();
        if total >= n || Instant::now() > deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sends_to_a_running_server_over_syslog_tcp_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = common::Server::start(&data);
    let labels = dir.path().join("labels.ndjson");
    let out = common::vigil()
        .args([
            "simulate", "--seed", "5", "--events", "2000", "--rate", "20000",
        ])
        .arg("--send")
        .arg(format!("syslog-tcp://{}", server.tcp))
        .arg("--labels")
        .arg(&labels)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sent 2000 lines"), "{err}");
    assert_eq!(
        wait_total(&server, "NOT event.kind:alert NOT vigil.input:audit", 2000),
        2000
    );
    assert_eq!(server.search("vigil.parse_error:*", 1)["total"], 0);
    // The brute force arrived decoded, as many failures as labelled.
    let brute = parse_ndjson(&std::fs::read(&labels).unwrap())
        .into_iter()
        .filter(|l| l["type"] == "event" && l["attack"] == "brute_force")
        .collect::<Vec<_>>();
    let ip = brute[0]["source.ip"].as_str().unwrap();
    let q = format!("event.action:ssh_login AND source.ip:{ip}");
    assert_eq!(server.search(&q, 1)["total"], brute.len() as u64);

    // HTTP: batches of text lines with the token, paced to the rate.
    let t = Instant::now();
    let out = common::vigil()
        .args([
            "simulate", "--seed", "6", "--events", "500", "--rate", "1000",
        ])
        .arg("--send")
        .arg(format!("http://{}", server.http))
        .env("VIGIL_TOKEN", common::TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 500 lines at 1000/s cannot take much less than half a second.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        wait_total(&server, "NOT event.kind:alert NOT vigil.input:audit", 2500),
        2500
    );
    assert_eq!(
        server.search("vigil.source:simulate", 1)["total"],
        500,
        "HTTP lines carry source=simulate"
    );

    // UDP on loopback, paced. UDP may still drop datagrams when the
    // receiving thread is starved (tests run in parallel on a small
    // machine), so up to 5% loss is tolerated; the other inputs are exact.
    let out = common::vigil()
        .args([
            "simulate", "--seed", "8", "--events", "300", "--rate", "1000",
        ])
        .arg("--send")
        .arg(format!("syslog-udp://{}", server.udp))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = wait_total(&server, "NOT event.kind:alert NOT vigil.input:audit", 2800);
    assert!((2785..=2800).contains(&total), "{total} of 2800 stored");
    assert_eq!(server.search("vigil.parse_error:*", 1)["total"], 0);
}

#[test]
fn sending_needs_a_bound_and_a_loopback_target() {
    let out = common::vigil()
        .args(["simulate", "--send", "syslog-udp://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--events"));
    let out = common::vigil()
        .args([
            "simulate",
            "--events",
            "10",
            "--send",
            "syslog-udp://192.0.2.1:514",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

#[test]
fn ndjson_output_decodes_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_, labels) = simulate(
        dir.path(),
        "nd",
        &["--seed", "4", "--events", "3000", "--format", "ndjson"],
    );
    let data = dir.path().join("data");
    let text = common::run_ok(
        common::vigil()
            .args(["ingest", "--data-dir"])
            .arg(&data)
            .arg(dir.path().join("nd.log"))
            .current_dir(dir.path())
            .env_remove("VIGIL_CONFIG"),
    );
    assert!(text.contains("stored 3000 events"), "{text}");
    // Syslog records became JSON with process.name + message: all decoded.
    assert!(offline_search(&data, "process.name:* -event.action:*").is_empty());
    let by_seq: HashMap<u64, Value> = offline_search(&data, "*")
        .into_iter()
        .map(|e| (e["vigil"]["seq"].as_u64().unwrap(), e))
        .collect();
    let mut checked = 0;
    for l in parse_ndjson(&labels)
        .iter()
        .filter(|l| l["type"] == "event")
    {
        let ev = &by_seq[&l["line"].as_u64().unwrap()];
        if let Some(a) = l["event.action"].as_str() {
            assert_eq!(ev["event"]["action"], a, "{ev}");
            checked += 1;
        }
        if let Some(ip) = l["source.ip"].as_str() {
            let got = ev["source"]["ip"].as_str().or(ev["IpAddress"].as_str());
            assert_eq!(got, Some(ip), "{ev}");
        }
    }
    assert!(checked > 50, "{checked}");
}
