use serde_json::json;

use super::*;

const S: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

fn auth(t: i64, user: &str, src: &str, outcome: Outcome) -> Observation {
    Observation {
        time: t,
        user: (!user.is_empty()).then(|| Box::from(user)),
        source: (!src.is_empty()).then(|| Box::from(src)),
        host: Some(Box::from("bastion")),
        auth: Some(extract::Auth {
            outcome,
            via: "test",
        }),
        web: None,
        ..Default::default()
    }
}

fn fail(t: i64, user: &str, src: &str) -> Observation {
    auth(t, user, src, Outcome::Failure)
}

/// Only `d` enabled, with a small config.
fn only(d: Detector) -> Config {
    let mut c = Config::default();
    c.brute_force.enabled = d == Detector::BruteForce;
    c.password_spray.enabled = d == Detector::PasswordSpray;
    c.credential_stuffing.enabled = d == Detector::CredentialStuffing;
    c.success_after_failures.enabled = d == Detector::SuccessAfterFailures;
    c.web_scan.enabled = d == Detector::WebScan;
    c.web_attack.enabled = d == Detector::WebAttack;
    c.rate.enabled = matches!(d, Detector::RateSpike | Detector::RateDrop);
    c.log_tampering.enabled = d == Detector::LogTampering;
    c.privilege_change.enabled = d == Detector::PrivilegeChange;
    c.new_account_used.enabled = d == Detector::NewAccountUsed;
    c.source_silent.enabled = d == Detector::SourceSilent;
    c.first_sudo.enabled = d == Detector::FirstSudo;
    c.new_source_network.enabled = d == Detector::NewSourceNetwork;
    c.new_user_agent.enabled = d == Detector::NewUserAgent;
    c.new_process_pair.enabled = d == Detector::NewProcessPair;
    c
}

fn run(d: &mut Detectors<u64>, obs: &[Observation]) -> Vec<Alert<u64>> {
    obs.iter()
        .enumerate()
        .flat_map(|(i, o)| d.feed(o, i as u64))
        .collect()
}

#[test]
fn defaults_validate_and_bad_values_refused() {
    Config::default().validate().unwrap();
    let mut c = Config::default();
    c.brute_force.threshold = 1;
    assert_eq!(c.validate().unwrap_err().key, "brute_force.threshold");
    let mut c = Config::default();
    c.password_spray.window_secs = 0;
    assert_eq!(c.validate().unwrap_err().key, "password_spray.window_secs");
    let mut c = Config::default();
    c.credential_stuffing.min_failure_ratio = 1.5;
    assert!(c.validate().is_err());
    let c: Config = serde_json::from_value(json!({"brute_force": {"threshold": 3}})).unwrap();
    assert_eq!(c.brute_force.threshold, 3);
    assert_eq!(c.brute_force.window_secs, 300);
    assert!(serde_json::from_value::<Config>(json!({"brute_force": {"thresold": 3}})).is_err());
}

#[test]
fn brute_force_threshold_boundary() {
    let mut c = only(Detector::BruteForce);
    c.brute_force.threshold = 5;
    // N-1 failures from distinct sources for one account: nothing.
    let mut d = Detectors::new(c.clone());
    let seq: Vec<_> = (0..4)
        .map(|i| fail(T0 + i * S, "root", &format!("10.0.0.{i}")))
        .collect();
    assert!(run(&mut d, &seq).is_empty());
    // The Nth: one alert naming the account, with every failure.
    let a = d.feed(&fail(T0 + 4 * S, "root", "10.0.0.9"), 4);
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!(a.detector, Detector::BruteForce);
    assert_eq!(a.entity[0], ("user.name", "root".to_string()));
    assert_eq!(a.counts["failures"], json!(5));
    assert_eq!(a.evidence, vec![0, 1, 2, 3, 4]);
    assert_eq!((a.first, a.last), (T0, T0 + 4 * S));
    let f = a.fields();
    assert!(f.contains(&("event.kind".into(), json!("alert"))));
    assert!(f.contains(&("rule.id".into(), json!("vigil.brute_force"))));
    assert!(f.contains(&("threat.technique.id".into(), json!(["T1110.001"]))));
}

#[test]
fn brute_force_source_and_account_together_is_one_alert() {
    let mut c = only(Detector::BruteForce);
    c.brute_force.threshold = 3;
    let mut d = Detectors::new(c);
    let a = run(
        &mut d,
        &[
            fail(T0, "root", "203.0.113.9"),
            fail(T0 + S, "root", "203.0.113.9"),
            fail(T0 + 2 * S, "root", "203.0.113.9"),
        ],
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].entity[0].0, "source.ip");
    assert_eq!(a[0].entity[1].0, "user.name");
}

#[test]
fn brute_force_window_edges() {
    let mut c = only(Detector::BruteForce);
    c.brute_force.threshold = 3;
    c.brute_force.window_secs = 60;
    // First and last exactly one window apart: inside.
    let mut d = Detectors::new(c.clone());
    let a = run(
        &mut d,
        &[
            fail(T0, "alice", ""),
            fail(T0 + 30 * S, "alice", ""),
            fail(T0 + 60 * S, "alice", ""),
        ],
    );
    assert_eq!(a.len(), 1);
    // One millisecond more: the first has expired.
    let mut d = Detectors::new(c);
    let a = run(
        &mut d,
        &[
            fail(T0, "alice", ""),
            fail(T0 + 30 * S, "alice", ""),
            fail(T0 + 60 * S + 1, "alice", ""),
        ],
    );
    assert!(a.is_empty());
}

#[test]
fn brute_force_out_of_order_and_late() {
    let mut c = only(Detector::BruteForce);
    c.brute_force.threshold = 3;
    c.brute_force.window_secs = 60;
    // Out of order within the window still counts.
    let mut d = Detectors::new(c.clone());
    let a = run(
        &mut d,
        &[
            fail(T0 + 50 * S, "bob", ""),
            fail(T0 + 10 * S, "bob", ""),
            fail(T0 + 30 * S, "bob", ""),
        ],
    );
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].first, a[0].last), (T0 + 10 * S, T0 + 50 * S));
    assert_eq!(a[0].evidence, vec![1, 2, 0], "evidence in event-time order");
    // Older than the newest minus the window: late, ignored.
    let mut d = Detectors::new(c);
    let a = run(
        &mut d,
        &[
            fail(T0 + 100 * S, "bob", ""),
            fail(T0 + 10 * S, "bob", ""),
            fail(T0 + 101 * S, "bob", ""),
        ],
    );
    assert!(a.is_empty());
    assert_eq!(d.stats(Detector::BruteForce).late, 1);
}

#[test]
fn brute_force_suppressed_for_a_window_then_realerts() {
    let mut c = only(Detector::BruteForce);
    c.brute_force.threshold = 2;
    c.brute_force.window_secs = 60;
    let mut d = Detectors::new(c);
    let mut obs = Vec::new();
    // A failure every 10 s for 130 s.
    for i in 0..14 {
        obs.push(fail(T0 + i * 10 * S, "carol", ""));
    }
    let a = run(&mut d, &obs);
    // Alerts at 10 s, then the first event after 70 s (80 s).
    let times: Vec<i64> = a.iter().map(|a| (a.last - T0) / S).collect();
    assert_eq!(times, vec![10, 80]);
    assert!(d.stats(Detector::BruteForce).suppressed > 0);
}

#[test]
fn password_spray_positive_and_per_account_limit() {
    let mut c = only(Detector::PasswordSpray);
    c.password_spray.min_accounts = 4;
    c.password_spray.max_attempts_per_account = 2;
    // Three accounts: below the threshold.
    let mut d = Detectors::new(c.clone());
    let few: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, u)| fail(T0 + i as i64 * S, u, "198.51.100.4"))
        .collect();
    assert!(run(&mut d, &few).is_empty());
    // A fourth account: spray.
    let a = d.feed(&fail(T0 + 5 * S, "d", "198.51.100.4"), 9);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].counts["distinct_accounts"], json!(4));
    assert_eq!(a[0].entity[0], ("source.ip", "198.51.100.4".to_string()));

    // An account tried more often than the limit does not count.
    let mut d = Detectors::new(c.clone());
    let mut obs = vec![
        fail(T0, "a", "198.51.100.4"),
        fail(T0 + S, "a", "198.51.100.4"),
        fail(T0 + 2 * S, "a", "198.51.100.4"),
    ];
    obs.extend(
        ["b", "c", "d"]
            .iter()
            .map(|u| fail(T0 + 3 * S, u, "198.51.100.4")),
    );
    assert!(run(&mut d, &obs).is_empty());
    // ...but exactly at the limit it does.
    let mut d = Detectors::new(c.clone());
    let mut obs = vec![
        fail(T0, "a", "198.51.100.4"),
        fail(T0 + S, "a", "198.51.100.4"),
    ];
    obs.extend(
        ["b", "c", "d"]
            .iter()
            .map(|u| fail(T0 + 3 * S, u, "198.51.100.4")),
    );
    assert_eq!(run(&mut d, &obs).len(), 1);
    // Spread over different sources: not a spray.
    let mut d = Detectors::new(c);
    let obs: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, u)| fail(T0, u, &format!("10.1.1.{i}")))
        .collect();
    assert!(run(&mut d, &obs).is_empty());
}

#[test]
fn password_spray_window_expiry_and_4648_attempts() {
    let mut c = only(Detector::PasswordSpray);
    c.password_spray.min_accounts = 3;
    c.password_spray.window_secs = 60;
    let mut d = Detectors::new(c);
    let obs = vec![
        fail(T0, "a", "10.9.9.9"),
        fail(T0 + 30 * S, "b", "10.9.9.9"),
        // "a" has expired when "c" arrives.
        auth(T0 + 61 * S, "c", "10.9.9.9", Outcome::Attempt),
    ];
    assert!(run(&mut d, &obs).is_empty());
    let a = d.feed(&auth(T0 + 62 * S, "d", "10.9.9.9", Outcome::Attempt), 7);
    assert_eq!(a.len(), 1);
    // 4648's IpAddress is the target server: many users of many
    // workstations reaching one server is not a spray from it; one
    // workstation trying many accounts is.
    let mut c = only(Detector::PasswordSpray);
    c.password_spray.min_accounts = 3;
    let e4648 = |user: &str, ws: &str| {
        observe(
            json!({"EventID":4648,"TargetUserName":user,"IpAddress":"10.0.1.12",
                "Hostname":ws})
            .as_object()
            .unwrap(),
            T0,
            &c,
        )
        .unwrap()
    };
    assert_eq!(e4648("a", "WS-1").source, None);
    let mut d = Detectors::new(c.clone());
    let spread = [e4648("a", "WS-1"), e4648("b", "WS-2"), e4648("c", "WS-3")];
    assert!(run(&mut d, &spread).is_empty());
    let one = [e4648("a", "WS-9"), e4648("b", "WS-9"), e4648("c", "WS-9")];
    let a = run(&mut d, &one);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].entity, vec![("host.name", "WS-9".to_string())]);
}

#[test]
fn credential_stuffing() {
    let mut c = only(Detector::CredentialStuffing);
    c.credential_stuffing.min_accounts = 6;
    c.credential_stuffing.min_sources = 3;
    c.credential_stuffing.min_failure_ratio = 0.8;
    let mk = |n: usize| -> Vec<Observation> {
        (0..n)
            .map(|i| {
                fail(
                    T0 + i as i64 * S,
                    &format!("user{i}"),
                    &format!("10.2.0.{}", i % 3),
                )
            })
            .collect()
    };
    let mut d = Detectors::new(c.clone());
    assert!(run(&mut d, &mk(5)).is_empty());
    let mut d = Detectors::new(c.clone());
    let a = run(&mut d, &mk(6));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].counts["distinct_sources"], json!(3));
    assert_eq!(a[0].entity, vec![("host.name", "bastion".to_string())]);
    assert_eq!(a[0].counts["target"], json!("bastion|test"));
    assert_eq!(a[0].counts["failure_ratio"], json!(1.0));
    // Sources that succeed as often as they fail (a typo, then the right
    // password) are not stuffing, however many accounts they cover.
    let mut d = Detectors::new(c.clone());
    let mut obs = Vec::new();
    for i in 0..40 {
        let (u, ip, t) = (format!("c{i}"), format!("10.4.0.{i}"), T0 + i * S);
        obs.push(fail(t, &u, &ip));
        obs.push(auth(t + 500, &u, &ip, Outcome::Success));
    }
    assert!(run(&mut d, &obs).is_empty());
    // Many successes from the attacking sources keep their ratio below
    // the bar.
    let mut d = Detectors::new(c.clone());
    let mut obs: Vec<_> = (0..3)
        .flat_map(|i| {
            let ip = format!("10.2.0.{i}");
            [auth(T0, "ok", &ip, Outcome::Success)]
        })
        .collect();
    obs.extend(mk(9));
    assert!(run(&mut d, &obs).is_empty());
    // The same attempts spread over three targets are three small ones.
    let mut d = Detectors::new(c.clone());
    let obs: Vec<_> = mk(12)
        .into_iter()
        .enumerate()
        .map(|(i, mut o)| {
            o.host = Some(format!("web0{}", i % 3).into());
            o
        })
        .collect();
    assert!(run(&mut d, &obs).is_empty());
    // Only two sources: that is spraying, not stuffing.
    let mut d = Detectors::new(c);
    let obs: Vec<_> = (0..10)
        .map(|i| fail(T0, &format!("user{i}"), &format!("10.2.0.{}", i % 2)))
        .collect();
    assert!(run(&mut d, &obs).is_empty());
}

#[test]
fn success_after_failures() {
    let mut c = only(Detector::SuccessAfterFailures);
    c.success_after_failures.min_failures = 3;
    c.success_after_failures.window_secs = 60;
    let ok = |t| auth(t, "dave", "192.0.2.7", Outcome::Success);
    // Two failures: not enough.
    let mut d = Detectors::new(c.clone());
    let obs = vec![
        fail(T0, "dave", "192.0.2.7"),
        fail(T0 + S, "dave", "192.0.2.7"),
        ok(T0 + 2 * S),
    ];
    assert!(run(&mut d, &obs).is_empty());
    // Three: alert, evidence ends with the success.
    let mut d = Detectors::new(c.clone());
    let obs = vec![
        fail(T0, "dave", "192.0.2.7"),
        fail(T0 + S, "dave", "192.0.2.7"),
        fail(T0 + 2 * S, "dave", "192.0.2.7"),
        ok(T0 + 3 * S),
    ];
    let a = run(&mut d, &obs);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].evidence, vec![0, 1, 2, 3]);
    assert_eq!(a[0].counts["failures"], json!(3));
    // Failures older than the window before the success do not count.
    let mut d = Detectors::new(c.clone());
    let obs = vec![
        fail(T0, "dave", "192.0.2.7"),
        fail(T0 + S, "dave", "192.0.2.7"),
        fail(T0 + 2 * S, "dave", "192.0.2.7"),
        ok(T0 + 62 * S),
    ];
    assert!(run(&mut d, &obs).is_empty());
    // Failures of other accounts from one source, then a success: a
    // spray that hit.
    let mut d = Detectors::new(c.clone());
    let obs = vec![
        fail(T0, "ann", "192.0.2.7"),
        fail(T0 + S, "bea", "192.0.2.7"),
        fail(T0 + 2 * S, "cy", "192.0.2.7"),
        ok(T0 + 3 * S),
    ];
    let a = run(&mut d, &obs);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].counts["failures"], json!(3));
    // The same at a shared address whose logins mostly succeed (NAT,
    // proxy): as many successes as failures, so nothing. One fewer
    // success: the failures outnumber them again.
    for (goods, alerts) in [(3, 0), (2, 1)] {
        let mut d = Detectors::new(c.clone());
        let mut obs: Vec<Observation> = (0..goods)
            .map(|i| {
                auth(
                    T0 + i * 100,
                    &format!("ok{i}"),
                    "192.0.2.7",
                    Outcome::Success,
                )
            })
            .collect();
        obs.extend([
            fail(T0 + S, "ann", "192.0.2.7"),
            fail(T0 + 2 * S, "bea", "192.0.2.7"),
            fail(T0 + 3 * S, "cy", "192.0.2.7"),
            ok(T0 + 4 * S),
        ]);
        assert_eq!(run(&mut d, &obs).len(), alerts, "{goods} successes");
    }
    // The OWASP vocabulary without the user in the event: user.name.
    let o = observe(
        json!({"event":{"action":"authn_login_fail"},"user":{"name":"ann"},
            "source":{"ip":"192.0.2.7"}})
        .as_object()
        .unwrap(),
        T0,
        &c,
    )
    .unwrap();
    assert_eq!(o.user.as_deref(), Some("ann"));
    // A success logged before the failures (out of order) is not "after".
    let mut d = Detectors::new(c);
    let obs = vec![
        fail(T0 + 5 * S, "dave", "192.0.2.7"),
        fail(T0 + 6 * S, "dave", "192.0.2.7"),
        fail(T0 + 7 * S, "dave", "192.0.2.7"),
        ok(T0 + 4 * S),
    ];
    assert!(run(&mut d, &obs).is_empty());
}

fn web(t: i64, src: &str, status: u16, url: &str) -> Observation {
    let attack = web::inspect(url, 4096);
    Observation {
        time: t,
        user: None,
        source: Some(Box::from(src)),
        host: None,
        auth: None,
        web: Some(extract::Web {
            status,
            attack,
            url: attack.map(|_| Box::from(url)),
        }),
        ..Default::default()
    }
}

#[test]
fn web_scan_threshold_and_window() {
    let mut c = only(Detector::WebScan);
    c.web_scan.threshold = 10;
    c.web_scan.window_secs = 10;
    let mut d = Detectors::new(c.clone());
    let obs: Vec<_> = (0..9)
        .map(|i| web(T0 + i * 100, "203.0.113.50", 404, &format!("/p{i}")))
        .collect();
    assert!(run(&mut d, &obs).is_empty());
    assert_eq!(
        d.feed(&web(T0 + 950, "203.0.113.50", 404, "/x"), 9).len(),
        1
    );
    // Slow: 10 404s over 20 s never fill a 10 s window.
    let mut d = Detectors::new(c);
    let obs: Vec<_> = (0..10)
        .map(|i| web(T0 + i * 2 * S, "203.0.113.51", 404, "/y"))
        .collect();
    assert!(run(&mut d, &obs).is_empty());
}

#[test]
fn web_attack_alerts_once_per_source_and_class() {
    let mut d = Detectors::new(only(Detector::WebAttack));
    let obs = vec![
        web(T0, "203.0.113.7", 200, "/item?id=1%27%20OR%201=1--"),
        web(T0 + S, "203.0.113.7", 200, "/item?id=2%27%20OR%201=1--"),
        web(T0 + 2 * S, "203.0.113.7", 404, "/../../etc/passwd"),
        web(T0 + 3 * S, "203.0.113.8", 200, "/ok"),
    ];
    let a = run(&mut d, &obs);
    let classes: Vec<_> = a.iter().map(|a| a.counts["class"].clone()).collect();
    assert_eq!(classes, vec![json!("sqli"), json!("path_traversal")]);
    assert_eq!(a[0].evidence, vec![0]);
    assert_eq!(d.stats(Detector::WebAttack).suppressed, 1);
}

#[test]
fn keys_are_capped_with_evictions_counted() {
    let mut c = only(Detector::BruteForce);
    c.max_keys = 100;
    let mut d = Detectors::new(c);
    for i in 0..1000 {
        d.feed(&fail(T0 + i, &format!("u{i}"), ""), i as u64);
    }
    assert!(d.tracked_keys() <= 100);
    assert!(d.stats(Detector::BruteForce).evictions >= 900);
}

#[test]
fn idle_keys_expire() {
    let mut d = Detectors::new(only(Detector::BruteForce));
    d.feed(&fail(T0, "old", ""), 0);
    for i in 0..5000 {
        d.feed(&fail(T0 + 3_600 * S + i, "new", ""), 1);
    }
    assert_eq!(d.tracked_keys(), 1);
    assert_eq!(d.stats(Detector::BruteForce).evictions, 0);
}

#[test]
fn disabled_detectors_do_nothing() {
    let c = Config {
        enabled: false,
        ..Default::default()
    };
    let ev = json!({"event":{"action":"ssh_login","outcome":"failure"},"user":{"name":"x"}});
    assert!(observe(ev.as_object().unwrap(), T0, &c).is_none());
}

/// Observation under the defaults, without the silence detector (which
/// makes every event with an origin an observation).
fn obs_of(v: serde_json::Value) -> Option<Observation> {
    let mut c = Config::default();
    c.source_silent.enabled = false;
    c.first_sudo.enabled = false;
    c.new_user_agent.enabled = false;
    c.new_process_pair.enabled = false;
    c.rate.enabled = false;
    observe(v.as_object().unwrap(), T0, &c)
}

#[test]
fn extraction() {
    // sshd failure.
    let o = obs_of(json!({"event":{"action":"ssh_login","outcome":"failure"},
        "user":{"name":"admin"},"source":{"ip":"203.0.113.9"},"host":{"name":"bastion"}}))
    .unwrap();
    assert_eq!(o.auth.unwrap().outcome, Outcome::Failure);
    assert_eq!(o.user.as_deref(), Some("admin"));
    assert_eq!(o.host.as_deref(), Some("bastion"));
    // Alerts are not observations, even with an auth-shaped body.
    assert!(obs_of(
        json!({"event":{"kind":"alert","action":"ssh_login","outcome":"failure"},
        "user":{"name":"admin"},"source":{"ip":"203.0.113.9"}})
    )
    .is_none());
    // A local logon has no remote source: loopback is not an entity.
    for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0"] {
        let o = obs_of(json!({"EventID":4625,"TargetUserName":"bob","IpAddress":local})).unwrap();
        assert_eq!(o.source, None, "{local}");
        assert_eq!(o.user.as_deref(), Some("bob"));
    }
    // sshd's own PAM line is not counted twice.
    assert!(obs_of(
        json!({"event":{"action":"authentication_failure","outcome":"failure"},
        "system":{"auth":{"pam":{"service":"sshd"}}},"user":{"name":"root"}})
    )
    .is_none());
    // su: the target account is the one attacked.
    let o = obs_of(json!({"event":{"action":"su","outcome":"failure"},
        "user":{"name":"alice","target":{"name":"root"}}}))
    .unwrap();
    assert_eq!(o.user.as_deref(), Some("root"));
    // Sessions and connection noise are not authentication attempts.
    assert!(obs_of(json!({"event":{"action":"session_opened","outcome":"success"}})).is_none());
    assert!(obs_of(json!({"event":{"action":"ssh_disconnected"}})).is_none());
    // Windows flat (OTRF) and evtx_dump layouts.
    let o = obs_of(
        json!({"EventID":4625,"TargetUserName":"bob","IpAddress":"::ffff:10.0.0.8",
        "Hostname":"dc01"}),
    )
    .unwrap();
    assert_eq!(o.source.as_deref(), Some("10.0.0.8"));
    assert_eq!(o.host.as_deref(), Some("dc01"));
    let o = obs_of(
        json!({"Event":{"System":{"EventID":{"#text":"4776"},"Computer":"dc01"},
        "EventData":{"TargetUserName":"bob","Status":"0xc000006a"}}}),
    )
    .unwrap();
    assert_eq!(o.auth.unwrap().outcome, Outcome::Failure);
    assert!(obs_of(json!({"EventID":4624,"TargetUserName":"WS01$","IpAddress":"-"})).is_none());
    assert!(obs_of(json!({"EventID":4688,"TargetUserName":"bob"})).is_none());
    // OWASP vocabulary.
    let o = obs_of(json!({"event":"authn_login_fail:joebob1","source_ip":"198.51.100.1"})).unwrap();
    assert_eq!(o.user.as_deref(), Some("joebob1"));
    // Access logs: a 200 without attack is nothing; 404, 401 on login, attacks are.
    let acc = |status: u64, url: &str| {
        obs_of(
            json!({"event":{"dataset":"http.access","outcome":"failure"},
            "source":{"ip":"203.0.113.9"},"http":{"response":{"status_code":status}},
            "url":{"original":url,"path":url.split('?').next().unwrap()}}),
        )
    };
    assert!(acc(200, "/index.html").is_none());
    assert!(acc(401, "/api/data").is_none());
    assert_eq!(acc(404, "/x").unwrap().web.unwrap().status, 404);
    assert_eq!(
        acc(401, "/wp-login.php").unwrap().auth.unwrap().outcome,
        Outcome::Failure
    );
    let w = acc(200, "/p?u=http://169.254.169.254/")
        .unwrap()
        .web
        .unwrap();
    assert_eq!(w.attack.unwrap().0, web::AttackClass::Ssrf);
}

#[test]
fn shared_source_with_mostly_successes_is_not_brute_force_or_spray() {
    let mut c = Config::default();
    c.brute_force.threshold = 3;
    c.password_spray.min_accounts = 3;
    c.success_after_failures.enabled = false;
    c.credential_stuffing.enabled = false;
    c.source_silent.enabled = false;
    for (goods, alerts) in [(3, 0), (2, 2)] {
        let mut d = Detectors::new(c.clone());
        let mut obs: Vec<Observation> = (0..goods)
            .map(|i| {
                auth(
                    T0 + i * 100,
                    &format!("ok{i}"),
                    "198.51.100.1",
                    Outcome::Success,
                )
            })
            .collect();
        obs.extend((0..3).map(|i| fail(T0 + (i + 1) * S, &format!("u{i}"), "198.51.100.1")));
        let a = run(&mut d, &obs);
        assert_eq!(a.len(), alerts, "{goods} successes: {a:?}");
    }
}
