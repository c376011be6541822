//! `vigil hunt` with SigmaHQ Linux and web rules over Linux logs: the OTRF
//! Linux auditd datasets (raw audit.log records) of the shared corpus, and
//! an nginx access log.

mod common;

use std::path::PathBuf;

use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIGIL_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    if dir.join("linux/index.tsv").is_file() && dir.join("sigma/rules/rules/linux").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {} (required when CI=true)",
        dir.display()
    );
    eprintln!(
        "skipping: Linux datasets or SigmaHQ rules not found at {}",
        dir.display()
    );
    None
}

fn hunt(rules: &[PathBuf], input: &std::path::Path) -> Vec<Value> {
    let mut cmd = common::vigil();
    cmd.arg("hunt");
    for r in rules {
        cmd.arg("--rules").arg(r);
    }
    common::ndjson(cmd.arg(input))
}

/// SDLIN-201110081941 "DD Binary Padding Hash Change" (T1027.001):
/// `dd if=/dev/zero bs=1 count=1 >> /tmp/psexec.py`. SigmaHQ's auditd rule
/// for T1027.001 must fire on the EXECVE record of that command.
#[test]
fn binary_padding_dataset_matches_the_t1027_001_rule() {
    let Some(c) = corpus() else { return };
    let log = c.join("linux/sh_binary_padding_dd_2020-11-10081941.log");
    let matches = hunt(&[c.join("sigma/rules/rules/linux")], &log);
    let padding: Vec<&Value> = matches
        .iter()
        .filter(|m| m["rule_id"] == "c52a914f-3d8b-4b2a-bb75-b3991e75f8ba")
        .collect();
    assert_eq!(padding.len(), 1, "{matches:#?}");
    let m = padding[0];
    assert!(m["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "attack.t1027.001"));
    let ev = &m["event"];
    assert_eq!(ev["event"]["module"], "auditd");
    assert_eq!(ev["auditd"]["message_type"], "EXECVE");
    assert_eq!(ev["auditd"]["sequence"], 93777);
    assert_eq!(ev["@timestamp"], "2020-11-10T08:19:44.965Z");
    assert_eq!(
        ev["process"]["command_line"],
        "dd if=/dev/zero bs=1 count=1"
    );
    // Every match is an auditd rule on an auditd event.
    for m in &matches {
        assert_eq!(m["event"]["event"]["module"], "auditd", "{m}");
        assert!(m["rule_file"].as_str().unwrap().contains("auditd"), "{m}");
    }
}

/// SDLIN-201110074812 "Arp Cache Discovery" (T1018): `arp -a | grep -v
/// '^?'`. The records decode (hex `proctitle` included) and an auditd rule
/// for the command matches its EXECVE record. (SigmaHQ's T1018 rule is a
/// `process_creation` rule needing `Image` and `CommandLine` in one event,
/// which auditd writes in two records, SYSCALL and EXECVE.)
#[test]
fn arp_cache_dataset_decodes_and_matches_an_auditd_rule() {
    let Some(c) = corpus() else { return };
    let log = c.join("linux/sh_arp_cache_2020-11-10074812.log");
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("arp.yml");
    std::fs::write(
        &rule,
        "title: ARP cache listed\nid: 7d1f0b2e-9c1a-4c53-9a55-5f1f2e3d4a60\nstatus: test\nlevel: low\ntags:\n  - attack.t1018\nlogsource:\n  product: linux\n  service: auditd\ndetection:\n  execve:\n    type: EXECVE\n    a0: arp\n    a1: '-a'\n  proctitle:\n    type: PROCTITLE\n    proctitle: 'arp -a'\n  condition: execve or proctitle\n",
    )
    .unwrap();
    let matches = hunt(&[rule, c.join("sigma/rules/rules/linux")], &log);
    let arp: Vec<&Value> = matches
        .iter()
        .filter(|m| m["rule_title"] == "ARP cache listed")
        .collect();
    assert_eq!(arp.len(), 2, "{matches:#?}");
    let types: Vec<&str> = arp
        .iter()
        .map(|m| m["event"]["auditd"]["message_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["EXECVE", "PROCTITLE"]);
    assert!(arp
        .iter()
        .all(|m| m["event"]["auditd"]["sequence"] == 92733));
}

/// SigmaHQ web rules over an nginx access log: the SQL injection request
/// matches; the same rules see nothing in an sshd log.
#[test]
fn web_rules_on_an_access_log_only() {
    let Some(c) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    std::fs::write(
        &access,
        "198.51.100.7 - - [12/Jan/2024:06:29:59 +0000] \"GET /index.html HTTP/1.1\" 200 612 \"-\" \"Mozilla/5.0\"\n\
         203.0.113.9 - - [12/Jan/2024:06:30:00 +0000] \"GET /products.php?id=1%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1\" 200 5120 \"-\" \"sqlmap/1.7.2\"\n",
    )
    .unwrap();
    let web = c.join("sigma/rules/rules/web");
    let matches = hunt(std::slice::from_ref(&web), &access);
    assert!(
        matches
            .iter()
            .any(|m| m["rule_id"] == "5513deaf-f49a-46c2-a6c8-3f111b5cb453"
                && m["event"]["source"]["ip"] == "203.0.113.9"),
        "{matches:#?}"
    );
    assert!(matches
        .iter()
        .all(|m| m["event"]["source"]["ip"] == "203.0.113.9"));
    let auth = dir.path().join("auth.log");
    std::fs::write(
        &auth,
        "Jan 12 06:30:00 bastion sshd[4721]: Invalid user union%20select from 203.0.113.9 port 52144\n",
    )
    .unwrap();
    assert!(hunt(&[web], &auth).is_empty());
}
