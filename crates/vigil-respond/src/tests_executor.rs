//! The executor with in-test implementations of the outside traits, which
//! record what they were asked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_alert::model::{now_ms, Alert, Level, Status};

use crate::blocklist::Blocklist;
use crate::executor::{
    IncidentActions, NotifyActions, Outcome, Responder, SearchActions, SearchHits, Services,
};
use crate::geoip::GeoIp;
use crate::guard::{parse_net, NeverBlock};
use crate::playbook::{parse, LoadContext, Playbook};

#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
}

impl IncidentActions for Recorder {
    fn open_or_attach(&mut self, alert: &Alert, actor: &str) -> Result<String, String> {
        self.calls
            .push(format!("open_or_attach {} {actor}", alert.id));
        Ok("inc-1".into())
    }
    fn set_severity(&mut self, id: &str, level: Level, actor: &str) -> Result<(), String> {
        self.calls
            .push(format!("set_severity {id} {} {actor}", level.as_str()));
        Ok(())
    }
    fn set_assignee(&mut self, id: &str, user: &str, actor: &str) -> Result<(), String> {
        self.calls.push(format!("set_assignee {id} {user} {actor}"));
        Ok(())
    }
    fn add_timeline(&mut self, id: &str, kind: &str, text: &str, _: &str) -> Result<(), String> {
        self.calls.push(format!("timeline {id} {kind} {text}"));
        Ok(())
    }
}

impl SearchActions for Recorder {
    fn search(
        &mut self,
        q: &str,
        since: &str,
        limit: usize,
        _: Duration,
    ) -> Result<SearchHits, String> {
        self.calls.push(format!("search {q} {since} {limit}"));
        Ok(SearchHits {
            total: 42,
            hits: vec![serde_json::json!({"message": "hit"})],
        })
    }
}

impl NotifyActions for Recorder {
    fn notify(&mut self, alert: &Alert, channel: &str, _: Duration) -> Result<String, String> {
        self.calls.push(format!("notify {} {channel}", alert.id));
        Ok(format!("sent to {channel}"))
    }
}

fn alert(ip: &str) -> Alert {
    Alert {
        id: "a1".repeat(16),
        rule_id: "vigil.brute_force".into(),
        rule_name: "SSH brute force".into(),
        level: Level::High,
        tags: vec!["attack.t1110".into()],
        entity: BTreeMap::from([
            ("source.ip".to_owned(), ip.to_owned()),
            ("user.name".to_owned(), "root".to_owned()),
        ]),
        message: String::new(),
        group_key: String::new(),
        first_seen: String::new(),
        last_seen: String::new(),
        count: 10,
        evidence_seqs: vec![],
        evidence_truncated: false,
        status: Status::Open,
        suppressed: false,
        suppression_id: None,
    }
}

fn cx() -> LoadContext {
    LoadContext {
        never_block: NeverBlock::new(&[], true),
        channels: Some(BTreeSet::from(["soc".to_owned()])),
        max_ttl: Duration::from_secs(86_400),
        default_timeout: Duration::from_secs(10),
        outbound: vigil_alert::netguard::OutboundPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]),
    }
}

fn responder(dir: &Path, yaml: &[&str]) -> Responder {
    let pbs: Vec<Playbook> = yaml
        .iter()
        .map(|y| parse(y, Path::new("t.yml"), &cx()).unwrap())
        .collect();
    let bl = Arc::new(Blocklist::open(&dir.join("response.db"), 100).unwrap());
    Responder::new(
        pbs,
        bl,
        NeverBlock::new(&[parse_net("192.0.2.0/24").unwrap()], true),
        GeoIp::default(),
        cx().outbound,
    )
}

fn run(r: &Responder, a: &Alert, rec: &mut Recorder) -> Vec<crate::executor::ActionResult> {
    let (mut i, mut s, mut n) = (
        Recorder::default(),
        Recorder::default(),
        Recorder::default(),
    );
    let out = r.respond(
        a,
        &mut Services {
            incidents: &mut i,
            search: &mut s,
            notify: &mut n,
        },
    );
    rec.calls.extend(i.calls);
    rec.calls.extend(s.calls);
    rec.calls.extend(n.calls);
    out
}

const FULL: &str = r#"
id: contain
name: Contain brute force
match: {rule_id: "vigil.brute*", min_severity: high}
actions:
  - incident: {open_or_attach: true}
  - set_severity: {level: critical}
  - set_assignee: {user: alice}
  - enrich_geoip:
  - block_ip: {field: source.ip, ttl: 1h, reason: ssh brute force}
  - search: {query: "source.ip:{{source.ip}}", since: 1h, limit: 3}
  - notify: {channel: soc}
"#;

#[test]
fn actions_run_in_order_and_each_has_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let r = responder(dir.path(), &[FULL]);
    let mut rec = Recorder::default();
    let out = run(&r, &alert("203.0.113.9"), &mut rec);
    let summary: Vec<_> = out.iter().map(|r| (r.action, r.outcome)).collect();
    assert_eq!(
        summary,
        [
            ("incident", Outcome::Ok),
            ("set_severity", Outcome::Ok),
            ("set_assignee", Outcome::Ok),
            ("enrich_geoip", Outcome::Skipped),
            ("block_ip", Outcome::Ok),
            ("search", Outcome::Ok),
            ("notify", Outcome::Ok),
        ]
    );
    assert_eq!(
        out[3].detail,
        "no GeoIP database configured ([response] geoip_city_db, geoip_asn_db)"
    );
    assert_eq!(out[4].address.as_deref(), Some("203.0.113.9"));
    assert_eq!(out[5].data["total"], 42);
    assert!(out
        .iter()
        .all(|r| r.incident_id.as_deref() == Some("inc-1")));
    let live = r.blocklist().list(now_ms()).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].address, "203.0.113.9");
    assert_eq!(live[0].source, "playbook:contain");
    assert_eq!(live[0].reason, "ssh brute force");
    let a = "a1".repeat(16);
    assert_eq!(rec.calls[0], format!("open_or_attach {a} playbook:contain"));
    assert_eq!(rec.calls[1], "set_severity inc-1 critical playbook:contain");
    assert!(rec
        .calls
        .contains(&"set_assignee inc-1 alice playbook:contain".to_owned()));
    assert!(rec
        .calls
        .contains(&"search source.ip:203.0.113.9 1h 3".to_owned()));
    assert!(rec.calls.contains(&format!("notify {a} soc")));
    // Every action after the incident is on its timeline.
    let timeline = rec
        .calls
        .iter()
        .filter(|c| c.starts_with("timeline inc-1"))
        .count();
    assert_eq!(timeline, 6, "{:?}", rec.calls);
}

#[test]
fn a_dry_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = FULL.replace("actions:", "dry_run: true\nactions:");
    let r = responder(dir.path(), &[&yaml]);
    let mut rec = Recorder::default();
    let out = run(&r, &alert("203.0.113.9"), &mut rec);
    assert_eq!(out.len(), 7);
    assert!(out.iter().all(|r| r.dry_run));
    assert!(rec.calls.is_empty(), "{:?}", rec.calls);
    assert!(r.blocklist().list(now_ms()).unwrap().is_empty());
    assert_eq!(out[4].detail, "would block 203.0.113.9 for 1h");
    assert_eq!(out[4].outcome, Outcome::Ok);
    assert_eq!(
        out[5].detail,
        "would search \"source.ip:203.0.113.9\" since 1h"
    );
}

#[test]
fn the_runtime_guard_refuses_never_block_addresses_from_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: b\nname: B\nactions:\n  - block_ip: {field: source.ip, ttl: 1h}\n";
    let r = responder(dir.path(), &[yaml]);
    for ip in [
        "127.0.0.1",
        "::1",
        "10.0.0.5",
        "192.0.2.44",
        "::ffff:127.0.0.1",
    ] {
        let mut rec = Recorder::default();
        let out = run(&r, &alert(ip), &mut rec);
        assert_eq!(out[0].outcome, Outcome::Failed, "{ip}");
        assert!(out[0].refused, "{ip}");
        assert!(out[0].detail.starts_with("refused: "), "{}", out[0].detail);
    }
    assert!(r.blocklist().list(now_ms()).unwrap().is_empty());
    // A value that is not an IP fails validation instead.
    let out = run(
        &r,
        &alert("203.0.113.9; rm -rf /"),
        &mut Recorder::default(),
    );
    assert_eq!(out[0].outcome, Outcome::Failed);
    assert_eq!(
        out[0].detail,
        "source.ip \"203.0.113.9; rm -rf /\" is not an IP address"
    );
}

#[test]
fn unmatched_and_disabled_playbooks_do_not_run_and_steps_need_an_incident() {
    let dir = tempfile::tempdir().unwrap();
    let other = "id: o\nname: O\nmatch: {rule_id: sigma.*}\nactions:\n  - notify: {channel: soc}\n";
    let off = "id: off\nname: Off\nenabled: false\nactions:\n  - notify: {channel: soc}\n";
    let lone = "id: lone\nname: L\nactions:\n  - set_severity: {level: low}\n";
    let r = responder(dir.path(), &[other, off, lone]);
    let mut rec = Recorder::default();
    let out = run(&r, &alert("203.0.113.9"), &mut rec);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].playbook, "lone");
    assert_eq!(out[0].outcome, Outcome::Skipped);
    assert_eq!(
        out[0].detail,
        "no incident: set_severity needs an incident action before it"
    );
    assert!(rec.calls.is_empty());
}

#[test]
fn a_command_gets_validated_placeholders_as_single_arguments() {
    if !Path::new("/bin/echo").exists() {
        println!("skipped: /bin/echo is not present on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: c\nname: C\nactions:\n  - command: {program: /bin/echo, args: [block, \"{{source.ip}}\", \"{{user.name}}\"]}\n";
    let r = responder(dir.path(), &[yaml]);
    let out = run(&r, &alert("203.0.113.9"), &mut Recorder::default());
    assert_eq!(out[0].outcome, Outcome::Ok, "{}", out[0].detail);
    assert_eq!(out[0].data["stdout"], "block 203.0.113.9 root\\n");
    for bad in [
        "$(reboot)",
        "`reboot`",
        "1.2.3.4\nreboot",
        "1.2.3.4 5.6.7.8",
    ] {
        let out = run(&r, &alert(bad), &mut Recorder::default());
        assert_eq!(out[0].outcome, Outcome::Failed, "{bad:?}");
        assert!(
            out[0].detail.starts_with("args[1]: source.ip "),
            "{}",
            out[0].detail
        );
        assert!(out[0].data.is_null(), "the program did not run");
    }
}

#[test]
fn a_command_over_its_timeout_is_killed_and_recorded_as_failed() {
    if !Path::new("/bin/sleep").exists() {
        println!("skipped: /bin/sleep is not present on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: s\nname: S\nactions:\n  - command: {program: /bin/sleep, args: [\"30\"]}\n    timeout: 1s\n";
    let r = responder(dir.path(), &[yaml]);
    let out = run(&r, &alert("203.0.113.9"), &mut Recorder::default());
    assert_eq!(out[0].outcome, Outcome::Failed);
    assert_eq!(out[0].detail, "/bin/sleep killed after the 1s timeout");
    assert_eq!(out[0].data["timed_out"], true);
}

#[test]
fn a_webhook_posts_signed_json_through_the_outbound_policy() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut headers = Vec::new();
        let mut len = 0;
        for _ in 0..64 {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.trim().split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
                headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut w = s;
        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        (headers, body)
    });
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "s3cret-for-tests\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let yaml = format!(
        "id: w\nname: W\nactions:\n  - webhook: {{url: \"http://{addr}/disable\", secret_file: '{}', fields: {{user: \"{{{{user.name}}}}\", action: disable_user}}}}\n",
        secret.display()
    );
    let r = responder(dir.path(), &[&yaml]);
    let out = run(&r, &alert("203.0.113.9"), &mut Recorder::default());
    assert_eq!(out[0].outcome, Outcome::Ok, "{}", out[0].detail);
    let (headers, body) = got.join().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["fields"]["user"], "root");
    assert_eq!(v["fields"]["action"], "disable_user");
    assert_eq!(v["playbook"], "w");
    let sig = headers
        .iter()
        .find(|(k, _)| k == "x-vigil-signature")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(vigil_alert::sign::verify(b"s3cret-for-tests", &body, &sig));

    // Without the allowlist entry the same URL is refused at load.
    let mut strict = cx();
    strict.outbound = Default::default();
    let e = parse(&yaml, Path::new("w.yml"), &strict)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(webhook): url") && e.contains("loopback"),
        "{e}"
    );
}

#[test]
fn enrich_geoip_attaches_city_and_as_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (city, asn) = crate::geoip::testdb::write(dir.path());
    let yaml = "id: g\nname: G\nactions:\n  - enrich_geoip:\n";
    let pb = parse(yaml, Path::new("g.yml"), &cx()).unwrap();
    let r = Responder::new(
        vec![pb],
        Arc::new(Blocklist::open(&dir.path().join("response.db"), 10).unwrap()),
        NeverBlock::new(&[], true),
        GeoIp::open(Some(&city), Some(&asn)).unwrap(),
        Default::default(),
    );
    let out = run(&r, &alert("203.0.113.9"), &mut Recorder::default());
    assert_eq!(out[0].outcome, Outcome::Ok, "{}", out[0].detail);
    assert_eq!(out[0].detail, "source.ip 203.0.113.9 enriched");
    assert_eq!(out[0].data["geo.country_iso_code"], "AU");
    assert_eq!(out[0].data["as.organization.name"], "Example Net");
    let out = run(&r, &alert("198.51.100.1"), &mut Recorder::default());
    assert_eq!(out[0].outcome, Outcome::Skipped);
    assert_eq!(out[0].detail, "198.51.100.1 is not in the GeoIP databases");
}
