//! Logsource routing and field mappings for non-Windows rules, with the
//! real SigmaHQ rules under `rules/linux` and `rules/web` of the corpus
//! (`$VIGIL_CORPUS`, else `<manifest>/../../../shared/corpus`) and events
//! decoded by vigil-parse from real-shaped log lines. Without the corpus
//! the tests fail when `CI=true` and are skipped (with a message) otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use vigil_sigma::logsource::Scope;
use vigil_sigma::ruleset::RuleSet;
use vigil_sigma::value::Placeholders;

/// Measured: all 255 rule files under `rules/linux` (210) and `rules/web`
/// (45) load and all are routable with the built-in mappings. The floor
/// leaves room for a few new upstream logsources; lower it only with a
/// reason.
const MIN_ROUTABLE: usize = 250;
const MAX_UNROUTABLE: usize = 5;

fn rules_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("VIGIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    let rules = base.join("sigma/rules/rules");
    if rules.join("linux").is_dir() {
        Some(rules)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("sigma corpus missing at {}", rules.display());
    } else {
        eprintln!("sigma corpus missing at {}; skipping", rules.display());
        None
    }
}

fn load(dirs: &[PathBuf]) -> RuleSet {
    let report = vigil_sigma::loader::load_paths(dirs, &Placeholders::default());
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    RuleSet::new(report.rules)
}

/// Ids of the rules matching a log line decoded by vigil-parse.
fn ids_for_line(set: &RuleSet, line: &str) -> Vec<String> {
    let ev = vigil_parse::parse_line(line.as_bytes(), &Default::default()).into_json();
    ids_for(set, &ev)
}

fn ids_for(set: &RuleSet, ev: &Value) -> Vec<String> {
    let mut out = Vec::new();
    set.matching(ev, |r| out.push(r.meta.id.clone().unwrap_or_default()));
    out
}

const SQLI: &str = "5513deaf-f49a-46c2-a6c8-3f111b5cb453"; // SQL Injection Strings In URI
const BINARY_PADDING: &str = "c52a914f-3d8b-4b2a-bb75-b3991e75f8ba"; // Binary Padding - Linux
const SSHD_ERROR: &str = "e76b413a-83d0-4b94-8e4c-85db4a5b8bdc"; // Suspicious OpenSSH Daemon Error
const WEBSHELL_RCE: &str = "c0d3734d-330f-4a03-aae2-65dacc6a8222"; // Webshell Remote Command Execution
const SUSP_FOLDER: &str = "a39d7fa7-3fbd-4dc2-97e1-d87f546b1bbc"; // Program Executions in Suspicious Folders

#[test]
fn sigmahq_linux_and_web_rules_are_routable() {
    let Some(dir) = rules_dir() else { return };
    let set = load(&[dir.join("linux"), dir.join("web")]);
    let mut by_logsource: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in set.rules() {
        let ls = &r.logsource;
        let key = format!(
            "{}/{}/{}",
            ls.product.as_deref().unwrap_or("-"),
            ls.category.as_deref().unwrap_or("-"),
            ls.service.as_deref().unwrap_or("-")
        );
        let slot = by_logsource.entry(key).or_default();
        match &r.scope {
            Scope::Unroutable(why) => {
                slot.1 += 1;
                *reasons.entry(why.clone()).or_default() += 1;
            }
            _ => slot.0 += 1,
        }
    }
    let unroutable = set.unroutable();
    let routable = set.rules().len() - unroutable;
    println!(
        "linux+web logsource routing: {routable} routable, {unroutable} unroutable of {}",
        set.rules().len()
    );
    for (ls, (ok, no)) in &by_logsource {
        println!("  {ok:4} routable {no:4} unroutable  {ls}");
    }
    for (why, n) in &reasons {
        println!("  {n:4} × unroutable: {why}");
    }
    assert!(routable >= MIN_ROUTABLE, "only {routable} routable");
    assert!(unroutable <= MAX_UNROUTABLE, "{unroutable} unroutable");
}

#[test]
fn sql_injection_in_an_nginx_access_log() {
    let Some(dir) = rules_dir() else { return };
    let set = load(&[dir.join("web"), dir.join("linux")]);
    let attack = r#"203.0.113.9 - - [12/Jan/2024:06:30:00 +0000] "GET /products.php?id=1%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1" 200 5120 "-" "Mozilla/5.0""#;
    // As a file line and as nginx sends it through syslog.
    for line in [
        attack.to_string(),
        format!("<190>Jan 12 06:30:00 web01 nginx: {attack}"),
    ] {
        let ids = ids_for_line(&set, &line);
        assert!(ids.iter().any(|i| i == SQLI), "{line}: {ids:?}");
    }
    // The rule's filter: a 404 is not reported.
    let not_found = attack.replace("\" 200 ", "\" 404 ");
    assert!(!ids_for_line(&set, &not_found).contains(&SQLI.to_string()));
    let benign = r#"198.51.100.7 - - [12/Jan/2024:06:30:00 +0000] "GET /products.php?id=42 HTTP/1.1" 200 5120 "-" "Mozilla/5.0""#;
    assert!(ids_for_line(&set, benign).is_empty());
    // Same payload in an sshd message: webserver rules do not see it.
    let sshd = "Jan 12 06:30:00 bastion sshd[4721]: Invalid user UNION%20SELECT from 203.0.113.9 port 52144";
    assert!(!ids_for_line(&set, sshd).contains(&SQLI.to_string()));
}

#[test]
fn auditd_records_match_sigmahq_auditd_rules() {
    let Some(dir) = rules_dir() else { return };
    let set = load(&[dir.join("linux")]);
    // The OTRF T1027.001 dataset's EXECVE record.
    let execve = r#"type=EXECVE msg=audit(1604996384.965:93777): argc=4 a0="dd" a1="if=/dev/zero" a2="bs=1" a3="count=1""#;
    let ids = ids_for_line(&set, execve);
    assert!(ids.iter().any(|i| i == BINARY_PADDING), "{ids:?}");
    // The same through audisp-syslog.
    let ids = ids_for_line(
        &set,
        &format!("<85>Nov 10 08:19:44 ubuntu5 audisp-syslog: {execve}"),
    );
    assert!(ids.iter().any(|i| i == BINARY_PADDING), "{ids:?}");
    // `of=` is the rule's filter.
    let ids = ids_for_line(&set, &execve.replace("count=1", "of=/tmp/x"));
    assert!(!ids.iter().any(|i| i == BINARY_PADDING), "{ids:?}");
    // SYSCALL records: `exe`, the syscall named from its number, `euid`.
    let www = r#"type=SYSCALL msg=audit(1604996384.965:93778): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=900 pid=901 auid=4294967295 uid=33 gid=33 euid=33 suid=33 fsuid=33 egid=33 sgid=33 fsgid=33 tty=(none) ses=4294967295 comm="sh" exe="/tmp/.x/sh" key=(null)"#;
    let ids = ids_for_line(&set, www);
    assert!(ids.iter().any(|i| i == WEBSHELL_RCE), "{ids:?}");
    assert!(ids.iter().any(|i| i == SUSP_FOLDER), "{ids:?}");
    // An auditd rule's keywords in an sshd message: not an auditd event.
    let sshd = "Jan 12 06:30:00 bastion sshd[4721]: error: type EXECVE dd if=/dev/zero";
    let ids = ids_for_line(&set, sshd);
    assert!(!ids.iter().any(|i| i == BINARY_PADDING), "{ids:?}");
}

#[test]
fn sshd_builtin_rule_sees_sshd_only() {
    let Some(dir) = rules_dir() else { return };
    let set = load(&[dir.join("linux")]);
    let line = "Jan 12 06:30:00 bastion sshd[4721]: Corrupted MAC on input. [preauth]";
    let ids = ids_for_line(&set, line);
    assert!(ids.iter().any(|i| i == SSHD_ERROR), "{ids:?}");
    let other = "Jan 12 06:30:00 bastion dhclient[52]: Corrupted MAC on input.";
    let ids = ids_for_line(&set, other);
    assert!(!ids.iter().any(|i| i == SSHD_ERROR), "{ids:?}");
}

#[test]
fn process_creation_rules_read_ecs_process_events() {
    let Some(dir) = rules_dir() else { return };
    let set = load(&[dir.join("linux").join("process_creation")]);
    // An auditd EXECVE record: CommandLine is process.command_line.
    let line = r#"type=EXECVE msg=audit(1604996384.965:93790): argc=3 a0="sh" a1="-c" a2="echo ZWNobyBoaQ== | base64 -d | bash -i""#;
    let titles = |ev: &Value| {
        let mut t = Vec::new();
        set.matching(ev, |r| t.push(r.meta.title.clone()));
        t
    };
    let ev = vigil_parse::parse_line(line.as_bytes(), &Default::default()).into_json();
    let t = titles(&ev);
    assert!(
        t.iter().any(|t| t.contains("Base64")),
        "{t:?} for {}",
        ev["process"]
    );
    // ECS JSON from an agent: Image is process.executable.
    let ecs = serde_json::json!({
        "event": {"category": ["process"], "type": ["start"]},
        "host": {"os": {"type": "linux"}},
        "process": {"executable": "/usr/sbin/arp", "command_line": "arp -a"}
    });
    assert!(
        titles(&ecs)
            .iter()
            .any(|t| t == "Linux Remote System Discovery"),
        "{:?}",
        titles(&ecs)
    );
    // Not a process start: not routed.
    let mut other = ecs.clone();
    other["event"]["type"] = serde_json::json!(["end"]);
    assert!(titles(&other).is_empty());
}
