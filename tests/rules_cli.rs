//! `vigil rules lint` and `vigil rules test` through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/vigil")
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = common::vigil();
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const RULE: &str = "title: Invalid SSH user
id: 2b0f5d4e-8c1a-4e7b-9d3f-6a5c4b3a2f10
status: experimental
description: test rule
author: Vigil tests
date: 2026-11-22
logsource:
    product: linux
    service: auth
detection:
    selection:
        event.action: ssh_invalid_user
    condition: selection
level: low
";

#[test]
fn lint_passes_on_the_shipped_pack() {
    let o = run(&["rules", "lint", "--strict"], &[&pack()]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "", "no findings expected");
}

#[test]
fn lint_reports_broken_rule_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yml"), RULE).unwrap();
    // The condition names a selection that does not exist (line 13).
    let broken = RULE
        .replace(
            "2b0f5d4e-8c1a-4e7b-9d3f-6a5c4b3a2f10",
            "9c1e2d3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
        )
        .replace("condition: selection", "condition: selection and nope");
    std::fs::write(dir.path().join("broken.yml"), broken).unwrap();
    // Same id as good.yml, no author: a duplicate (error) and a warning.
    std::fs::write(
        dir.path().join("dup.yml"),
        RULE.replace("author: Vigil tests\n", ""),
    )
    .unwrap();
    let o = run(&["rules", "lint"], &[dir.path()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let broken_path = dir.path().join("broken.yml").display().to_string();
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{broken_path}:13: ")) && l.contains("nope")),
        "{out}"
    );
    assert!(out.contains("duplicate id 2b0f5d4e"), "{out}");
    assert!(out.contains("warning: missing 'author'"), "{out}");

    // Warnings alone pass, unless --strict.
    let w = tempfile::tempdir().unwrap();
    std::fs::write(
        w.path().join("r.yml"),
        RULE.replace("date: 2026-11-22\n", ""),
    )
    .unwrap();
    assert_eq!(run(&["rules", "lint"], &[w.path()]).status.code(), Some(0));
    assert_eq!(
        run(&["rules", "lint", "--strict"], &[w.path()])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn test_passes_on_the_shipped_pack() {
    let o = run(&["rules", "test"], &[&pack()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("PASS "), "{out}");
    assert!(!out.contains("FAIL "), "{out}");
    assert!(out.contains(" 0 failed"), "{out}");
}

#[test]
fn failing_sidecar_exits_1_and_names_the_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yml"), RULE).unwrap();
    std::fs::write(
        dir.path().join("r.tests.yml"),
        "match:\n  - line: 'Mar  3 09:14:07 bastion sshd[4721]: Invalid user oracle from 45.95.147.10 port 39512'\n  - line: 'Mar  3 09:14:07 bastion sshd[4721]: Accepted publickey for alice from 198.51.100.7 port 50122 ssh2'\nno_match:\n  - event:\n      action: ssh_invalid_user\n      dataset: system.auth\n",
    )
    .unwrap();
    let o = run(&["rules", "test"], &[dir.path()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let side = dir.path().join("r.tests.yml").display().to_string();
    assert!(out.contains(&format!("PASS {side}: case 1")), "{out}");
    assert!(
        out.contains(&format!("FAIL {side}: case 2: expected match, got none")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL {side}: case 3: expected no match, got Invalid SSH user"
        )),
        "{out}"
    );

    // A sidecar that does not parse fails too.
    std::fs::write(dir.path().join("r.tests.yml"), "match: [\n").unwrap();
    let o = run(&["rules", "test"], &[dir.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("invalid YAML"), "{}", stdout(&o));
}
