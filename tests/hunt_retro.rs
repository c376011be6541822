//! `vigil hunt` over a data directory: a retro-hunt over stored history,
//! bounded by `--since` / `--until`.

mod common;

use std::path::PathBuf;

fn rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/vigil")
}

#[test]
fn hunts_stored_events_within_the_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "<38>1 2026-03-01T10:00:00Z web-1 sshd 4242 - - Invalid user oracle from 203.0.113.7 port 50000\n\
         <38>1 2026-03-05T10:00:00Z web-1 sshd 4243 - - Invalid user backup from 203.0.113.8 port 50001\n\
         <38>1 2026-03-05T11:00:00Z web-1 sshd 4244 - - Accepted password for alice from 198.51.100.4 port 50002 ssh2\n",
    )
    .unwrap();
    common::run_ok(
        common::vigil()
            .args(["ingest", "--data-dir"])
            .arg(&data)
            .arg(&log),
    );

    let hunt = |extra: &[&str]| {
        common::ndjson(
            common::vigil()
                .arg("hunt")
                .arg("--rules")
                .arg(rules())
                .args(extra)
                .arg(&data),
        )
    };
    // All of history: both invalid-user attempts, each with its stored seq.
    let all = hunt(&[]);
    let users: Vec<&str> = all
        .iter()
        .filter(|m| m["rule_title"] == "SSH Login Attempt for a Non-Existent User")
        .map(|m| m["event"]["user"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["oracle", "backup"], "{all:?}");
    assert!(all.iter().all(|m| m["event"]["vigil"]["seq"].is_u64()));

    // A window holding only the second attempt.
    let window = hunt(&[
        "--since",
        "2026-03-02T00:00:00Z",
        "--until",
        "2026-03-06T00:00:00Z",
    ]);
    let users: Vec<&str> = window
        .iter()
        .filter(|m| m["rule_title"] == "SSH Login Attempt for a Non-Existent User")
        .map(|m| m["event"]["user"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["backup"]);

    // A window before everything: nothing.
    assert!(hunt(&["--until", "2026-01-01T00:00:00Z"]).is_empty());

    // Bad bounds and a directory that is not a data dir are refused clearly.
    let out = common::vigil()
        .arg("hunt")
        .arg("--rules")
        .arg(rules())
        .args([
            "--since",
            "2026-03-06T00:00:00Z",
            "--until",
            "2026-03-01T00:00:00Z",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since must be before --until"));
    let out = common::vigil()
        .arg("hunt")
        .arg("--rules")
        .arg(rules())
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a Vigil data directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
