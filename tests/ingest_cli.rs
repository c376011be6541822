//! `vigil ingest` offline, then `vigil search` on the same data dir.

mod common;

use serde_json::Value;

#[test]
fn ingest_file_then_search_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Mar  1 10:00:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2\n\
         Mar  1 10:00:05 bastion sshd[4721]: Accepted password for root from 203.0.113.9 port 52144 ssh2\n\
         Mar  1 10:01:00 bastion sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash\n\
         \n\
         some line \u{1b}[31mwith escapes\r\n",
    )
    .unwrap();
    let text = common::run_ok(
        common::vigil()
            .args(["ingest", "--data-dir"])
            .arg(&data)
            .arg(&log),
    );
    assert!(text.contains("stored 4 events"), "{text}");
    // A new data dir gets keys; the initial sealing key is shown once, and a
    // signed checkpoint covers what was stored.
    assert!(text.contains("initial sealing key"), "{text}");
    let log = std::fs::read_to_string(data.join("ledger/checkpoints.log")).unwrap();
    let rec: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    let body = rec["note"].as_str().unwrap();
    assert_eq!(body.lines().nth(1), Some("4"), "{body}");
    let key = common::run_ok(common::vigil().args(["key", "--data-dir"]).arg(&data));
    assert!(
        key.starts_with(body.lines().next().unwrap()),
        "{key} vs {body}"
    );

    let hits = common::ndjson(
        common::vigil()
            .args(["search", "source.ip:203.0.113.9", "--json", "--data-dir"])
            .arg(&data),
    );
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["event"]["outcome"], "success"); // newest first
    assert_eq!(hits[1]["event"]["outcome"], "failure");
    assert_eq!(hits[0]["vigil"]["input"], "file");
    assert_eq!(hits[0]["vigil"]["source"], "auth.log");

    // The table neutralizes control characters.
    let table = common::run_ok(
        common::vigil()
            .args(["search", "escapes", "--data-dir"])
            .arg(&data),
    );
    assert!(table.contains("\\x1b[31m"), "{table}");
    assert!(!table.contains('\u{1b}'));

    // Stdin works and appends after the existing events.
    let mut child = common::vigil()
        .args(["ingest", "--source", "pipe", "-", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"message\":\"from stdin\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("seq 5..5"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn ingest_refuses_a_data_dir_held_by_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = common::Server::start(&data);
    let log = dir.path().join("x.log");
    std::fs::write(&log, "hello\n").unwrap();
    let out = common::vigil()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use") || err.contains("running server"),
        "{err}"
    );
}

#[test]
fn init_prints_secrets_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        common::run_ok(
            common::vigil()
                .args(["init", "--data-dir"])
                .arg(&data)
                .env_remove("VIGIL_ADMIN_TOKEN"),
        )
    };
    let first = run();
    assert!(
        first.contains("initial sealing key") && first.contains("vgl_"),
        "{first}"
    );
    let second = run();
    assert!(
        !second.contains("vgl_") && second.contains("already existed"),
        "{second}"
    );
    let key = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("verifier key"))
            .map(str::to_owned)
    };
    assert_eq!(key(&first), key(&second));
    // The seal key on disk is not the initial one shown to the auditor.
    let initial = first
        .lines()
        .skip_while(|l| !l.contains("initial sealing key"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let stored = std::fs::read_to_string(data.join("keys/seal.key")).unwrap();
    assert!(!stored.contains(&initial));
}

#[test]
fn offline_ingest_redacts_like_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, "[redaction]\nkinds = [\"email\", \"secret_pair\"]\n").unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "login ok for carol@example.org password=hunter2hunter2 marker=r1\n",
    )
    .unwrap();
    let text = common::run_ok(
        common::vigil()
            .args(["ingest", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .arg(&log),
    );
    assert!(text.contains("stored 1 events"), "{text}");
    assert!(text.contains("redacted before storage"), "{text}");
    let out = common::run_ok(
        common::vigil()
            .args(["search", "--json", "--data-dir"])
            .arg(&data)
            .arg("marker"),
    );
    assert!(out.contains("marker=r1"), "{out}");
    assert!(!out.contains("carol@example.org"), "{out}");
    assert!(!out.contains("hunter2hunter2"), "{out}");
    // Nothing of the secrets is anywhere in the ledger files either.
    for entry in walk(&data.join("ledger")) {
        let bytes = std::fs::read(&entry).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains("hunter2hunter2"), "{}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
