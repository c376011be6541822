//! Tests of the host-activity detectors and their extraction.

use serde_json::{json, Value};

use super::*;

const S: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

/// Defaults with only `d` (and, for source silence, its notice) on.
fn only(d: Detector) -> Config {
    let mut c = Config::default();
    c.brute_force.enabled = false;
    c.password_spray.enabled = false;
    c.credential_stuffing.enabled = false;
    c.success_after_failures.enabled = false;
    c.web_scan.enabled = false;
    c.web_attack.enabled = false;
    c.log_tampering.enabled = d == Detector::LogTampering;
    c.privilege_change.enabled = d == Detector::PrivilegeChange;
    c.new_account_used.enabled = d == Detector::NewAccountUsed;
    c.source_silent.enabled = d == Detector::SourceSilent;
    c.first_sudo.enabled = d == Detector::FirstSudo;
    c.new_source_network.enabled = d == Detector::NewSourceNetwork;
    c.new_user_agent.enabled = d == Detector::NewUserAgent;
    c.new_process_pair.enabled = d == Detector::NewProcessPair;
    c.rate.enabled = matches!(d, Detector::RateSpike | Detector::RateDrop);
    c
}

fn obs(v: Value, t: i64, c: &Config) -> Option<Observation> {
    observe(v.as_object().unwrap(), t, c)
}

fn tamper_of(v: Value) -> Option<Tamper> {
    obs(v, T0, &only(Detector::LogTampering)).and_then(|o| o.tamper)
}

fn sudo(cmd: &str) -> Value {
    json!({"event":{"action":"sudo_command","outcome":"success"},
        "user":{"name":"alice"},"host":{"name":"app01"},
        "process":{"command_line":cmd}})
}

#[test]
fn tampering_extraction() {
    let w = tamper_of(json!({"EventID":1102,"Channel":"Security","Hostname":"ws1",
        "SubjectUserName":"bob"}))
    .unwrap();
    assert_eq!((w.class, &*w.what), ("log_cleared", "windows:1102"));
    let o = obs(
        json!({"EventID":1102,"Hostname":"ws1","SubjectUserName":"bob"}),
        T0,
        &only(Detector::LogTampering),
    )
    .unwrap();
    assert_eq!(o.user.as_deref(), Some("bob"));
    assert_eq!(o.host.as_deref(), Some("ws1"));
    // 104 is "log cleared" only from the Eventlog service.
    assert!(tamper_of(json!({"EventID":104,"Channel":"System"})).is_some());
    assert!(tamper_of(json!({"Event":{"System":{"EventID":104,
        "Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"Channel":"System"}}}))
    .is_some());
    assert!(
        tamper_of(json!({"EventID":104,"Channel":"Application","SourceName":"MsiInstaller"}))
            .is_none()
    );
    // Process creation with wevtutil.
    let t = tamper_of(
        json!({"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational",
        "CommandLine":"wevtutil.exe cl Security"}),
    )
    .unwrap();
    assert_eq!(t.class, "log_cleared");
    assert!(tamper_of(json!({"EventID":4688,"CommandLine":"wevtutil.exe qe Security"})).is_none());
    // Command lines of sudo, auditd EXECVE and friends.
    for (cmd, class) in [
        ("/usr/bin/truncate -s 0 /var/log/auth.log", "log_wipe"),
        ("/usr/bin/shred -u /var/log/wtmp", "log_wipe"),
        ("/bin/sh -c > /var/log/syslog", "log_wipe"),
        ("/bin/bash -c history -c", "history_wipe"),
        ("/bin/rm -f /root/.bash_history", "history_wipe"),
        ("bash -c unset HISTFILE", "history_wipe"),
        ("/sbin/auditctl -D", "audit_config"),
        ("/sbin/auditctl -e 0", "audit_config"),
    ] {
        assert_eq!(tamper_of(sudo(cmd)).map(|t| t.class), Some(class), "{cmd}");
    }
    for benign in [
        "/usr/bin/truncate -s 0 /tmp/scratch",
        "/usr/bin/tail -f /var/log/syslog",
        "/usr/bin/less /var/log/auth.log",
        "/sbin/auditctl -d exit,always -F arch=b64",
        "/sbin/auditctl -l",
        "/usr/bin/systemctl restart nginx",
    ] {
        assert!(tamper_of(sudo(benign)).is_none(), "{benign}");
    }
    // auditd CONFIG_CHANGE: loading rules is routine, removing them is not.
    let cc = |data: Value| {
        tamper_of(json!({"event":{"action":"config_change","module":"auditd"},
            "auditd":{"data":data},"host":{"name":"db01"}}))
    };
    assert!(cc(json!({"op":"add_rule","res":"1"})).is_none());
    assert_eq!(
        cc(json!({"op":"remove_rule"})).unwrap().class,
        "audit_config"
    );
    assert_eq!(
        &*cc(json!({"audit_enabled":"0","old":"1"})).unwrap().detail,
        "audit_enabled=0"
    );
    assert!(cc(json!({"audit_enabled":"1","old":"0"})).is_none());
    // Vigil's own integrity failures.
    let i = tamper_of(
        json!({"event":{"dataset":"vigil.integrity","action":"source_sequence_gap",
        "outcome":"failure"},"message":"sender x skipped 3 message(s)"}),
    )
    .unwrap();
    assert_eq!(i.class, "integrity");
    assert!(tamper_of(json!({"event":{"dataset":"vigil.integrity",
        "action":"source_sequence_restart","outcome":"unknown"}}))
    .is_none());
    // Alerts are never evidence.
    assert!(tamper_of(json!({"event":{"kind":"alert"},
        "process":{"command_line":"history -c"}}))
    .is_none());
}

fn feed_all(d: &mut Detectors<u64>, obs: &[Observation]) -> Vec<Alert<u64>> {
    obs.iter()
        .enumerate()
        .flat_map(|(i, o)| d.feed(o, i as u64))
        .collect()
}

#[test]
fn tampering_alerts_once_per_host_and_class_per_window() {
    let c = only(Detector::LogTampering);
    let w = c.log_tampering.suppress_secs as i64 * S;
    let at = |t: i64, cmd: &str| obs(sudo(cmd), t, &c).unwrap();
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            at(T0, "truncate -s 0 /var/log/auth.log"),
            // Same class within the window (inclusive edge): suppressed.
            at(T0 + w, "shred -u /var/log/wtmp"),
            // Another class: its own alert.
            at(T0 + 5 * S, "history -c"),
            // Just past the window: alerts again.
            at(T0 + w + 1, "truncate -s 0 /var/log/syslog"),
        ],
    );
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(a.iter().all(|a| a.detector == Detector::LogTampering));
    assert_eq!(a[0].counts["class"], "log_wipe");
    assert_eq!(a[0].counts["technique"], "T1070.002");
    assert_eq!(a[1].counts["technique"], "T1070.003");
    assert_eq!(a[0].evidence, vec![0]);
    assert!(a[0].summary.contains("by alice"), "{}", a[0].summary);
    assert_eq!(d.stats(Detector::LogTampering).suppressed, 1);
    let f: Vec<(String, Value)> = a[0].fields();
    assert!(f
        .iter()
        .any(|(k, v)| k == "threat.technique.id" && v == &json!(["T1070"])));
    // Disabled: nothing.
    let mut c2 = c.clone();
    c2.log_tampering.enabled = false;
    let mut d = Detectors::<u64>::new(c2.clone());
    assert!(obs(sudo("history -c"), T0, &c2).is_none());
    let o = obs(sudo("history -c"), T0, &c).unwrap();
    assert!(d.feed(&o, 1).is_empty());
}

fn usermod(user: &str, group: &str, host: &str) -> Value {
    json!({"event":{"action":"user_added_to_group","outcome":"success"},
        "user":{"target":{"name":user,"group":{"name":group}}},"group":{"name":group},
        "host":{"name":host}})
}

#[test]
fn privilege_change_linux_and_windows() {
    let c = only(Detector::PrivilegeChange);
    let mut d = Detectors::new(c.clone());
    let w = c.privilege_change.suppress_secs as i64 * S;
    let o = |v: Value, t: i64| obs(v, t, &c).unwrap();
    let a = feed_all(
        &mut d,
        &[
            o(usermod("eve", "sudo", "app01"), T0),
            // usermod writes the shadow group too: one alert.
            o(usermod("eve", "sudo", "app01"), T0 + S),
            // Not an administrative group.
            o(usermod("eve", "developers", "app01"), T0 + 2 * S),
            // Case-insensitive group names.
            o(usermod("mallory", "Wheel", "app01"), T0 + 3 * S),
            // The same change again after the window.
            o(usermod("eve", "sudo", "app01"), T0 + S + w + 1),
        ],
    );
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a[0].entity[0], ("user.target.name", "eve".to_string()));
    assert!(a[0].summary.contains("sudo"));
    assert_eq!(a[1].counts["group"], "Wheel");
    // Windows 4732 to Administrators, by name or by SID only.
    let win = |id: u64, group: &str, sid: &str| {
        json!({"EventID":id,"Hostname":"DC01","MemberName":"CN=helpdesk_adm,CN=Users,DC=corp",
            "MemberSid":"S-1-5-21-1-2-3-5001","TargetUserName":group,"TargetSid":sid,
            "SubjectUserName":"admin1"})
    };
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            o(win(4732, "Administrators", "S-1-5-32-544"), T0),
            o(win(4728, "Domain Users", "S-1-5-21-1-2-3-513"), T0),
            o(win(4756, "Renamed Admins", "S-1-5-21-1-2-3-519"), T0),
        ],
    );
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].entity[0].1, "helpdesk_adm");
    assert_eq!(a[0].entity[1], ("user.name", "admin1".to_string()));
    assert_eq!(a[1].counts["group_sid"], "S-1-5-21-1-2-3-519");
    // A configured list replaces the defaults.
    let mut c2 = c.clone();
    c2.privilege_change.groups = vec!["ops-root".into()];
    let mut d = Detectors::new(c2.clone());
    let a = feed_all(
        &mut d,
        &[
            o(usermod("eve", "sudo", "app01"), T0),
            o(usermod("eve", "OPS-root", "app01"), T0),
        ],
    );
    assert_eq!(a.len(), 1);
}

fn login(user: &str, t: i64, c: &Config) -> Observation {
    obs(
        json!({"event":{"action":"ssh_login","outcome":"success"},"user":{"name":user},
            "source":{"ip":"198.51.100.7"},"host":{"name":"app01"}}),
        t,
        c,
    )
    .unwrap()
}

fn created(user: &str, t: i64, c: &Config) -> Observation {
    obs(
        json!({"event":{"action":"user_created","outcome":"success"},
            "user":{"target":{"name":user}},"host":{"name":"app01"}}),
        t,
        c,
    )
    .unwrap()
}

#[test]
fn new_account_used_window_edges_and_order() {
    let c = only(Detector::NewAccountUsed);
    let w = c.new_account_used.window_secs as i64 * S;
    // Login exactly at the window's end: alert.
    let mut d = Detectors::new(c.clone());
    let a = feed_all(&mut d, &[created("eve", T0, &c), login("eve", T0 + w, &c)]);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].evidence, vec![0, 1]);
    assert_eq!(a[0].counts["seconds_after_creation"], w / S);
    assert_eq!(a[0].entity[0], ("source.ip", "198.51.100.7".into()));
    // One past it: nothing.
    let mut d = Detectors::new(c.clone());
    assert!(feed_all(
        &mut d,
        &[created("eve", T0, &c), login("eve", T0 + w + 1, &c)]
    )
    .is_empty());
    // Another account, or a login before the creation: nothing.
    let mut d = Detectors::new(c.clone());
    assert!(feed_all(
        &mut d,
        &[
            login("eve", T0 - S, &c),
            created("eve", T0, &c),
            login("bob", T0 + S, &c)
        ]
    )
    .is_empty());
    // Fed out of order (the creation arrives after the login it precedes).
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[login("Eve", T0 + 30 * S, &c), created("eve", T0, &c)],
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].evidence, vec![1, 0]);
    // One alert per creation.
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            created("eve", T0, &c),
            login("eve", T0 + S, &c),
            login("eve", T0 + 2 * S, &c),
        ],
    );
    assert_eq!(a.len(), 1);
    // Windows 4720 then 4624.
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            obs(
                json!({"EventID":4720,"TargetUserName":"svc_adm","Hostname":"DC01"}),
                T0,
                &c,
            )
            .unwrap(),
            obs(
                json!({"EventID":4624,"TargetUserName":"svc_adm","IpAddress":"10.20.0.5",
                "Hostname":"DC01"}),
                T0 + 60 * S,
                &c,
            )
            .unwrap(),
        ],
    );
    assert_eq!(a.len(), 1);
}

fn heard(src: &str, t: i64) -> Observation {
    Observation {
        time: t,
        origin: Some(Box::from(src)),
        ..Default::default()
    }
}

#[test]
fn source_silent_arms_after_learning_and_recovers() {
    let c = only(Detector::SourceSilent);
    let n = c.source_silent.min_observations as i64;
    let floor = c.source_silent.floor_secs as i64 * S;
    let gap = 10 * S;
    // n gaps need n + 1 events; with one fewer the source is not armed.
    let mut d = Detectors::<u64>::new(c.clone());
    for i in 0..n {
        assert!(d.feed(&heard("app01", T0 + i * gap), i as u64).is_empty());
    }
    let last = T0 + (n - 1) * gap;
    assert!(d.tick(last + 10 * floor).is_empty());
    let mut d = Detectors::<u64>::new(c.clone());
    for i in 0..=n {
        d.feed(&heard("app01", T0 + i * gap), i as u64);
    }
    let last = T0 + n * gap;
    // The floor dominates 10 × 10 s: silence of exactly the floor is not
    // yet an alert, one millisecond more is.
    assert!(d.tick(last + floor).is_empty());
    let a = d.tick(last + floor + 1);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].detector, Detector::SourceSilent);
    assert_eq!(a[0].entity, vec![("vigil.source", "app01".to_string())]);
    assert_eq!(a[0].evidence, vec![n as u64]);
    assert_eq!(a[0].counts["observed_gaps"], n);
    assert_eq!(a[0].counts["mean_gap_secs"], 10.0);
    // Reported once.
    assert!(d.tick(last + 2 * floor).is_empty());
    assert_eq!(d.stats(Detector::SourceSilent).alerts, 1);
    // It speaks again: a recovery notice naming the silence.
    let back = last + 3 * floor;
    let r = d.feed(&heard("app01", back), 999);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].detector, Detector::SourceRecovered);
    assert_eq!(r[0].counts["silent_secs"], 3 * floor / S);
    assert_eq!(r[0].evidence, vec![n as u64, 999]);
    assert_eq!(r[0].fields()[5].1, json!("informational"));
    // The outage was not learnt: the next silence has the same threshold.
    assert!(d.tick(back + floor).is_empty());
    assert_eq!(d.tick(back + floor + 1).len(), 1);
    // Out-of-order events are not learnt from.
    d.feed(&heard("app01", T0), 1000);
    assert_eq!(d.stats(Detector::SourceSilent).late, 1);
}

#[test]
fn source_silent_learns_the_usual_gap() {
    let mut c = only(Detector::SourceSilent);
    c.source_silent.floor_secs = 60;
    c.source_silent.min_observations = 10;
    let mut d = Detectors::<u64>::new(c.clone());
    // A source that speaks every 5 minutes, with one 20-minute lull.
    let mut t = T0;
    for i in 0..30 {
        t += if i == 10 { 20 * 60 * S } else { 5 * 60 * S };
        d.feed(&heard("cron-host", t), i);
    }
    // 10 × the mean (about 5.7 min) ≈ 57 min dominates 2 × 20 min.
    let a = d.tick(t + 45 * 60 * S);
    assert!(a.is_empty(), "{a:?}");
    let a = d.tick(t + 80 * 60 * S);
    assert_eq!(a.len(), 1);
    let th = a[0].counts["threshold_secs"].as_i64().unwrap();
    assert!((3000..4000).contains(&th), "{th}");
    // Sources are bounded.
    let mut c = only(Detector::SourceSilent);
    c.source_silent.max_sources = 8;
    let mut d = Detectors::<u64>::new(c);
    for i in 0..100 {
        d.feed(&heard(&format!("h{i}"), T0 + i), i as u64);
    }
    assert!(d.tracked_keys() <= 8);
    assert!(d.stats(Detector::SourceSilent).evictions >= 92);
}

#[test]
fn origin_extraction() {
    let c = only(Detector::SourceSilent);
    let o = |v: Value| obs(v, T0, &c).and_then(|o| o.origin);
    assert_eq!(
        o(json!({"host":{"name":"app01"},"message":"x"})).as_deref(),
        Some("app01")
    );
    assert_eq!(
        o(json!({"vigil":{"source":"10.0.0.9"},"message":"x"})).as_deref(),
        Some("10.0.0.9")
    );
    assert_eq!(
        o(json!({"EventID":4688,"Computer":"ws1.corp"})).as_deref(),
        Some("ws1.corp")
    );
    assert!(o(json!({"vigil":{"source":"vigil"}})).is_none());
    assert!(o(json!({"event":{"kind":"alert"},"host":{"name":"app01"}})).is_none());
    let mut off = c.clone();
    off.source_silent.enabled = false;
    off.rate.enabled = false;
    assert!(obs(json!({"host":{"name":"app01"}}), T0, &off).is_none());
}

#[test]
fn new_settings_are_validated() {
    let bad = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c.validate().unwrap_err().key
    };
    assert_eq!(
        bad(&|c| c.log_tampering.suppress_secs = 0),
        "log_tampering.suppress_secs"
    );
    assert_eq!(
        bad(&|c| c.privilege_change.groups = vec![String::new()]),
        "privilege_change.groups"
    );
    assert_eq!(
        bad(&|c| c.new_account_used.window_secs = 86_401),
        "new_account_used.window_secs"
    );
    assert_eq!(
        bad(&|c| c.source_silent.min_observations = 1),
        "source_silent.min_observations"
    );
    assert_eq!(bad(&|c| c.source_silent.alpha = 0.0), "source_silent.alpha");
    assert_eq!(
        bad(&|c| c.source_silent.factor = 0.5),
        "source_silent.factor"
    );
    Config::default().validate().unwrap();
}

fn sudo_obs(user: &str, outcome: &str, t: i64, c: &Config) -> Observation {
    obs(
        json!({"event":{"action":"sudo_command","outcome":outcome},
            "user":{"name":user},"host":{"name":"db01"},
            "process":{"command_line":"/usr/bin/id"}}),
        t,
        c,
    )
    .unwrap()
}

#[test]
fn first_sudo_after_learning() {
    let c = only(Detector::FirstSudo);
    let learn = c.first_sudo.learning_secs as i64 * S;
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            sudo_obs("alice", "success", T0, &c),
            // Last instant of the learning period: learnt.
            sudo_obs("bob", "success", T0 + learn - 1, &c),
            // Known users never alert.
            sudo_obs("alice", "success", T0 + learn + S, &c),
            sudo_obs("BOB", "success", T0 + learn + S, &c),
            // The first instant after it: new.
            sudo_obs("mallory", "failure", T0 + learn, &c),
            // Once.
            sudo_obs("mallory", "failure", T0 + learn + 2 * S, &c),
            sudo_obs("eve", "success", T0 + learn + 3 * S, &c),
        ],
    );
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].entity[0], ("user.name", "mallory".to_string()));
    assert_eq!(a[0].counts["ran"], false);
    assert_eq!(a[0].counts["known_sudo_users"], 2);
    assert_eq!(a[0].evidence, vec![4]);
    assert!(a[0].summary.contains("refused"), "{}", a[0].summary);
    assert_eq!(a[1].counts["ran"], true);
    // Bounded: a full set neither learns nor alerts.
    let mut c2 = c.clone();
    c2.first_sudo.max_users = 1;
    let mut d = Detectors::new(c2.clone());
    let a = feed_all(
        &mut d,
        &[
            sudo_obs("alice", "success", T0, &c2),
            sudo_obs("mallory", "success", T0 + learn + S, &c2),
        ],
    );
    assert!(a.is_empty());
    assert_eq!(d.stats(Detector::FirstSudo).evictions, 1);
    // PAM's sudo lines are not sudo use.
    assert!(obs(
        json!({"event":{"action":"authentication_failure","outcome":"failure"},
            "system":{"auth":{"pam":{"service":"sudo"}}},"user":{"name":"x"}}),
        T0,
        &c
    )
    .is_none());
}

#[test]
fn silence_uses_arrival_time_when_known() {
    let c = only(Detector::SourceSilent);
    let o = obs(
        json!({"host":{"name":"app01"},"vigil":{"received_at":"2026-01-02T03:04:05.678Z"}}),
        T0,
        &c,
    )
    .unwrap();
    assert_eq!(o.received, Some(1_767_323_045_678));
    // Old event times, arriving steadily now: armed by arrival, and
    // judged against the wall clock given to tick.
    let mut d = Detectors::<u64>::new(c.clone());
    let now = 1_767_323_045_678;
    for i in 0..=60 {
        let mut o = heard("app01", T0 - 86_400 * S);
        o.received = Some(now + i * S);
        d.feed(&o, i as u64);
    }
    assert_eq!(d.newest(), Some(now + 60 * S));
    assert!(d.tick(now + 60 * S + 1).is_empty());
    assert_eq!(d.tick(now + 60 * S + 901 * S).len(), 1);
}

fn login_from(user: &str, ip: &str, t: i64, c: &Config) -> Observation {
    obs(
        json!({"event":{"action":"ssh_login","outcome":"success"},"user":{"name":user},
            "source":{"ip":ip},"host":{"name":"bastion01"}}),
        t,
        c,
    )
    .unwrap()
}

#[test]
fn new_source_network_after_learning_and_rare() {
    let c = only(Detector::NewSourceNetwork);
    let learn = c.new_source_network.learning_secs as i64 * S;
    let mut d = Detectors::new(c.clone());
    let seq = vec![
        login_from("alice", "10.20.1.5", T0, &c),
        // Learnt at the last instant of learning.
        login_from("alice", "198.51.100.20", T0 + learn - 1, &c),
        // Same /24: known.
        login_from("alice", "10.20.1.99", T0 + learn, &c),
        // New /24 after learning: alert.
        login_from("alice", "203.0.113.50", T0 + learn, &c),
        // Again: known now.
        login_from("alice", "203.0.113.51", T0 + learn + S, &c),
        // IPv6 /48.
        login_from("alice", "2001:db8:1:2::5", T0 + learn + 2 * S, &c),
        login_from("alice", "2001:db8:1:ffff::9", T0 + learn + 3 * S, &c),
    ];
    let a = feed_all(&mut d, &seq);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].counts["observed"], "203.0.113.0/24");
    assert_eq!(a[0].counts["known_count"], 2);
    assert_eq!(
        a[0].counts["known_sample"],
        json!(["198.51.100.0/24", "10.20.1.0/24"])
    );
    assert_eq!(a[0].evidence, vec![3]);
    assert!(a[0].counts["score"].as_f64().unwrap() > 0.0);
    assert!(a[0].summary.contains("new for alice"), "{}", a[0].summary);
    assert_eq!(a[1].counts["observed"], "2001:db8:1::/48");
    // A network many other users know (the office) is not news.
    let mut d = Detectors::new(c.clone());
    let mut seq: Vec<Observation> = (0..3)
        .map(|i| login_from(&format!("u{i}"), "10.9.9.1", T0, &c))
        .collect();
    seq.push(login_from("bob", "192.0.2.1", T0, &c));
    seq.push(login_from("bob", "10.9.9.7", T0 + learn, &c));
    seq.push(login_from("carol", "192.0.2.1", T0 + learn, &c));
    let a = feed_all(&mut d, &seq);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].counts["other_entities_with_value"], 1);
    // Failures teach nothing and alert nothing.
    let mut d = Detectors::new(c.clone());
    let f = obs(
        json!({"event":{"action":"ssh_login","outcome":"failure"},"user":{"name":"alice"},
            "source":{"ip":"203.0.113.5"}}),
        T0 + learn,
        &c,
    )
    .unwrap();
    assert!(feed_all(&mut d, &[login_from("alice", "10.0.0.1", T0, &c), f]).is_empty());
}

#[test]
fn new_user_agent_and_process_pair() {
    let c = only(Detector::NewUserAgent);
    let learn = c.new_user_agent.learning_secs as i64 * S;
    let ua = |user: &str, agent: &str, t: i64| {
        obs(
            json!({"event":{"action":"session_created"},"user":{"name":user},
                "user_agent":{"original":agent},"source":{"ip":"198.51.100.3"}}),
            t,
            &c,
        )
        .unwrap()
    };
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            ua("ann", "Mozilla/5.0 Firefox/120", T0),
            ua("ann", "Mozilla/5.0 Firefox/120", T0 + learn),
            ua("ann", "python-requests/2.31", T0 + learn),
        ],
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].counts["observed"], "python-requests/2.31");
    // Without a user there is no baseline.
    assert!(obs(
        json!({"user_agent":{"original":"curl/8"},"event":{"action":"x"}}),
        T0,
        &c
    )
    .is_none());

    let c = only(Detector::NewProcessPair);
    let learn = c.new_process_pair.learning_secs as i64 * S;
    let p = |host: &str, parent: &str, image: &str, t: i64| {
        obs(
            json!({"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational",
                "Hostname":host,"ParentImage":parent,"Image":image}),
            t,
            &c,
        )
        .unwrap()
    };
    let o = p(
        "WS-1",
        "C:\\Windows\\explorer.exe",
        "C:\\Windows\\System32\\CMD.EXE",
        T0,
    );
    assert_eq!(
        o.process,
        Some((Box::from("explorer.exe"), Box::from("cmd.exe")))
    );
    let mut d = Detectors::new(c.clone());
    let a = feed_all(
        &mut d,
        &[
            p("WS-1", "C:\\Windows\\explorer.exe", "C:\\x\\chrome.exe", T0),
            p("WS-2", "C:\\Windows\\explorer.exe", "C:\\x\\chrome.exe", T0),
            // Common in the fleet (2 hosts know it): new here but not rare.
            p(
                "WS-3",
                "C:\\Windows\\explorer.exe",
                "C:\\x\\chrome.exe",
                T0 + learn,
            ),
            // Rare: alert, naming the host.
            p("WS-3", "C:\\x\\cmd.exe", "C:\\x\\wevtutil.exe", T0 + learn),
        ],
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].counts["observed"], "cmd.exe -> wevtutil.exe");
    assert!(a[0].entity.contains(&("host.name", "WS-3".to_string())));
    // ECS process fields (auditd, Sysmon for Linux).
    let o = obs(
        json!({"process":{"executable":"/usr/bin/curl","parent":{"executable":"/usr/sbin/apache2"}},
            "host":{"name":"web01"}}),
        T0,
        &c,
    )
    .unwrap();
    assert_eq!(o.process, Some((Box::from("apache2"), Box::from("curl"))));
}

#[test]
fn baselines_survive_a_restart_in_the_middle_of_learning() {
    let mut c = only(Detector::NewSourceNetwork);
    c.first_sudo.enabled = true;
    let learn = c.new_source_network.learning_secs as i64 * S;
    let mut d = Detectors::<u64>::new(c.clone());
    feed_all(
        &mut d,
        &[
            login_from("alice", "10.20.1.5", T0, &c),
            sudo_obs("alice", "success", T0, &c),
        ],
    );
    let snap = d.snapshot().unwrap();
    // A restart half-way through learning: the learning period keeps its
    // original end, and what was learnt stays known.
    let mut d = Detectors::<u64>::new(c.clone());
    d.restore(&snap).unwrap();
    let a = feed_all(
        &mut d,
        &[
            login_from("alice", "192.0.2.9", T0 + learn / 2, &c),
            login_from("alice", "10.20.1.6", T0 + learn, &c),
            sudo_obs("alice", "success", T0 + learn, &c),
            login_from("alice", "203.0.113.9", T0 + learn, &c),
            sudo_obs("mallory", "failure", T0 + learn, &c),
        ],
    );
    let ids: Vec<&str> = a.iter().map(|a| a.detector.id()).collect();
    assert_eq!(
        ids,
        ["vigil.new_source_network", "vigil.first_sudo"],
        "{a:?}"
    );
    // Without the snapshot, the restarted detectors would learn anew and
    // stay quiet.
    let mut fresh = Detectors::<u64>::new(c.clone());
    assert!(feed_all(
        &mut fresh,
        &[login_from("alice", "203.0.113.9", T0 + learn, &c)]
    )
    .is_empty());
    // A corrupt, foreign or oversized snapshot is refused whole.
    let mut d = Detectors::<u64>::new(c.clone());
    assert!(d.restore(b"{\"version\":1,").is_err());
    assert!(d.restore(b"[]").is_err());
    let other = String::from_utf8(snap.clone())
        .unwrap()
        .replace("\"version\":2", "\"version\":9");
    assert!(matches!(
        d.restore(other.as_bytes()),
        Err(SnapshotError::Version { found: 9 })
    ));
    let mut small = c.clone();
    small.new_source_network.max_entities = 0;
    small.first_sudo.max_users = 0;
    let mut d = Detectors::<u64>::new(small);
    assert!(matches!(d.restore(&snap), Err(SnapshotError::Caps(_))));
    assert_eq!(d.tracked_keys(), 0);
}

#[test]
fn silence_statistics_survive_a_restart() {
    let c = only(Detector::SourceSilent);
    let n = c.source_silent.min_observations as i64;
    let floor = c.source_silent.floor_secs as i64 * S;
    let gap = 10 * S;
    let mut d = Detectors::<u64>::new(c.clone());
    for i in 0..=n {
        d.feed(&heard("app01", T0 + i * gap), i as u64);
    }
    let last = T0 + n * gap;
    let snap = d.snapshot().unwrap();
    let v: Value = serde_json::from_slice(&snap).unwrap();
    assert_eq!(v["silence"]["app01"]["gaps"], n);

    // Restarted with the snapshot: armed at once. The time before the
    // first tick (Vigil was down) is not the source's silence.
    let mut e = Detectors::<u64>::new(c.clone());
    e.restore(&snap).unwrap();
    let back = last + 10 * floor;
    assert!(e.tick(back).is_empty());
    assert!(e.tick(back + floor).is_empty());
    let a = e.tick(back + floor + 1);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].counts["observed_gaps"], n);
    assert_eq!(a[0].counts["mean_gap_secs"], 10.0);
    assert!(
        a[0].evidence.is_empty(),
        "its last event predates the restart"
    );
    // A source heard again after the restart does not learn the downtime
    // as a gap.
    let mut e = Detectors::<u64>::new(c.clone());
    e.restore(&snap).unwrap();
    e.feed(&heard("app01", last + 100 * floor), 1);
    let s: Value = serde_json::from_slice(&e.snapshot().unwrap()).unwrap();
    assert_eq!(s["silence"]["app01"]["gaps"], n);
    assert_eq!(s["silence"]["app01"]["max_gap"], 10_000.0);

    // Without the snapshot the source would have to be learnt again.
    let mut f = Detectors::<u64>::new(c.clone());
    assert!(f.tick(back + floor + 1).is_empty());
    // Damaged gap statistics refuse the snapshot.
    let mut bad = v.clone();
    bad["silence"]["app01"]["mean_gap"] = json!(-1.0);
    assert!(f.restore(&serde_json::to_vec(&bad).unwrap()).is_err());
}
