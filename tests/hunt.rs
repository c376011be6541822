//! `vigil hunt` over EVTX, NDJSON and text inputs.

mod common;

use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIGIL_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    if dir.join("sigma/regression/cases.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {} (required when CI=true)",
        dir.display()
    );
    eprintln!("skipping: corpus not found at {}", dir.display());
    None
}

#[test]
fn regression_cases_match_from_evtx_and_ndjson() {
    let Some(c) = corpus() else { return };
    let tsv = std::fs::read_to_string(c.join("sigma/regression/cases.tsv")).unwrap();
    // A few cases end to end through the binary (the full set runs in vigil-sigma's tests).
    for row in tsv.lines().skip(1).step_by(37) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (rule_id, rule_path, evtx, ndjson) = (cols[1], cols[2], cols[3], cols[4]);
        for input in [evtx, ndjson] {
            let matches = common::ndjson(
                common::vigil()
                    .arg("hunt")
                    .arg("--rules")
                    .arg(c.join("sigma/rules").join(rule_path))
                    .arg(c.join("sigma/regression").join(input)),
            );
            assert!(
                matches.iter().any(|m| m["rule_id"] == rule_id),
                "{rule_path} did not match {input}: {matches:?}"
            );
        }
    }
}

#[test]
fn text_logs_are_decoded_before_matching() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("ssh_root.yml");
    std::fs::write(
        &rule,
        "title: SSH login failure for root\nid: 0b0b7f3e-2c1d-4d8e-9a55-0f6a1f3c9e11\nstatus: test\nlevel: high\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  sel:\n    process.name: sshd\n    user.name: root\n    event.outcome: failure\n  condition: sel\n",
    )
    .unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Mar  1 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n\
         Mar  1 10:00:01 h sshd[1]: Failed password for alice from 192.0.2.1 port 22 ssh2\n\
         Mar  1 10:00:02 h sshd[1]: Accepted password for root from 192.0.2.1 port 22 ssh2\n",
    )
    .unwrap();
    let matches = common::ndjson(
        common::vigil()
            .arg("hunt")
            .arg("--rules")
            .arg(&rule)
            .arg(&log),
    );
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert_eq!(matches[0]["level"], "high");
    assert_eq!(matches[0]["event"]["source"]["ip"], "192.0.2.1");
}

/// A damaged EVTX file found by the `evtx` fuzz target whose chunk claims
/// a record of size zero: the `evtx` crate's own iterator never moved past
/// it and collected records until memory ran out (release), or overflowed
/// (debug). `vigil_parse::evtx` bounds each chunk; the hunt reports the
/// file and reads the next one.
#[test]
fn an_evtx_chunk_that_never_ends_is_bounded() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/damaged-endless-chunk.evtx");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("auth.log");
    std::fs::write(
        &good,
        "Mar  1 10:00:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2\n",
    )
    .unwrap();
    let out = common::vigil()
        .args(["hunt", "--builtin"])
        .arg(&fixture)
        .arg(&good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hunt failed: {stderr}");
    assert!(stderr.contains("2 files"), "{stderr}");
    assert!(
        stderr.contains("damaged-endless-chunk.evtx: "),
        "the damage is reported with the file name: {stderr}"
    );
}

/// A damaged EVTX file found by the `evtx` fuzz target: the parser trips
/// on it (a debug assertion inside the `evtx` crate). The hunt warns and
/// goes on with the next file instead of crashing.
#[test]
fn a_damaged_evtx_file_is_skipped_with_a_warning() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/damaged-debug-assert.evtx");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("auth.log");
    std::fs::write(
        &good,
        "Mar  1 10:00:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2\n",
    )
    .unwrap();
    let out = common::vigil()
        .args(["hunt", "--builtin"])
        .arg(&fixture)
        .arg(&good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c < 101),
        "hunt crashed: {stderr}"
    );
    // The good file is still read.
    assert!(stderr.contains("2 files"), "{stderr}");
    // Release builds compile the parser's debug assertion out and read on.
    if cfg!(debug_assertions) {
        assert!(
            stderr.contains("damaged-debug-assert.evtx: the EVTX parser failed after 0 records"),
            "{stderr}"
        );
    }
}
