use super::*;
use crate::config::RouteConfig;
use crate::model::Level;

fn input(rule: &str, ip: &str) -> AlertInput {
    AlertInput {
        rule_id: rule.into(),
        rule_name: format!("Rule {rule}"),
        level: Level::High,
        tags: vec!["attack.t1110".into()],
        entity: [("source.ip".to_string(), ip.to_string())].into(),
        message: "m".into(),
        seqs: vec![7],
        evidence_truncated: false,
        seq: None,
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("alerts.db")).unwrap();
    (dir, s)
}

fn routed(throttle_max: u32) -> Policy {
    Policy {
        routes: vec![RouteConfig {
            name: "all".into(),
            channels: vec!["hook".into()],
            throttle_max,
            throttle_window_secs: 60,
            ..Default::default()
        }],
        max_evidence: 3,
        ..Policy::default()
    }
}

const ANY: &dyn Fn(&str) -> bool = &|_| true;

#[test]
fn repeats_within_the_window_raise_the_count() {
    let (_d, mut s) = store();
    let p = routed(0);
    let t0 = 1_700_000_000_000;
    let a = s.record(&input("r1", "203.0.113.9"), t0, &p, ANY).unwrap();
    assert!(a.created);
    assert_eq!(a.queued.len(), 1);
    for i in 1..5 {
        let r = s
            .record(&input("r1", "203.0.113.9"), t0 + i * 1000, &p, ANY)
            .unwrap();
        assert_eq!(r.alert_id, a.alert_id);
        assert!(!r.created && r.queued.is_empty());
    }
    let (al, hist, dels) = s.get(&a.alert_id).unwrap();
    assert_eq!(al.count, 5);
    assert_eq!(al.last_seen, format_ms(t0 + 4000));
    // Evidence is capped at max_evidence and flagged.
    assert_eq!(al.evidence_seqs.len(), 3);
    assert!(al.evidence_truncated);
    assert_eq!(dels.len(), 1);
    assert_eq!(hist[0].action, "created");

    // Another entity, another alert; after the window, a new alert too.
    let b = s
        .record(&input("r1", "203.0.113.10"), t0 + 5000, &p, ANY)
        .unwrap();
    assert!(b.created);
    let c = s
        .record(
            &input("r1", "203.0.113.9"),
            t0 + p.group_window_ms + 1,
            &p,
            ANY,
        )
        .unwrap();
    assert!(c.created);
    assert_ne!(c.alert_id, a.alert_id);
}

#[test]
fn closed_alerts_do_not_group_and_acked_ones_do() {
    let (_d, mut s) = store();
    let p = routed(0);
    let a = s.record(&input("r1", "x"), 1000, &p, ANY).unwrap();
    let ch = s
        .set_status(&a.alert_id, Status::Acknowledged, "alice", "looking", 1100)
        .unwrap();
    assert_eq!(ch.action, "acknowledged");
    assert!(s
        .set_status(&a.alert_id, Status::Acknowledged, "alice", "", 1150)
        .is_err());
    let r = s.record(&input("r1", "x"), 1200, &p, ANY).unwrap();
    assert_eq!(r.alert_id, a.alert_id);
    s.set_status(&a.alert_id, Status::Closed, "alice", "done", 1300)
        .unwrap();
    let r = s.record(&input("r1", "x"), 1400, &p, ANY).unwrap();
    assert!(r.created);
    assert!(matches!(
        s.set_status("nope", Status::Closed, "a", "", 1),
        Err(StoreError::NotFound { .. })
    ));
    let (al, hist, _) = s.get(&a.alert_id).unwrap();
    assert_eq!(al.status, Status::Closed);
    let actions: Vec<_> = hist.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "notification_queued",
            "acknowledged",
            "count_raised",
            "closed"
        ]
    );
}

#[test]
fn throttle_limits_notifications_per_route_window() {
    let (_d, mut s) = store();
    let p = routed(2);
    let mut queued = 0;
    for i in 0..5 {
        let r = s
            .record(&input(&format!("r{i}"), "x"), 1000 + i, &p, ANY)
            .unwrap();
        assert!(r.created);
        queued += r.queued.len();
    }
    assert_eq!(queued, 2);
    // A new window opens after 60 s.
    let r = s
        .record(&input("late", "x"), 1000 + 61_000, &p, ANY)
        .unwrap();
    assert_eq!(r.queued.len(), 1);
    let (list, total) = s
        .list(&ListFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(total, 6);
    assert_eq!(list.len(), 6);
}

#[test]
fn suppressions_mark_and_count_until_they_expire() {
    let (_d, mut s) = store();
    let p = routed(0);
    let sup = s
        .add_suppression(
            [("source.ip".to_string(), "10.0.0.5".to_string())].into(),
            "scanner",
            "alice",
            Some(10_000),
            1000,
        )
        .unwrap();
    let r = s.record(&input("r1", "10.0.0.5"), 2000, &p, ANY).unwrap();
    assert!(r.created && r.suppressed);
    assert!(r.queued.is_empty(), "a suppressed alert is not sent");
    s.record(&input("r1", "10.0.0.5"), 3000, &p, ANY).unwrap();
    let (a, _, _) = s.get(&r.alert_id).unwrap();
    assert!(a.suppressed);
    assert_eq!(a.suppression_id.as_deref(), Some(sup.id.as_str()));
    assert_eq!(a.count, 2);
    let list = s.suppressions(5000).unwrap();
    assert_eq!(list[0].hits, 2);
    assert!(list[0].active);
    // Other entities are not suppressed.
    let r2 = s.record(&input("r1", "10.0.0.6"), 4000, &p, ANY).unwrap();
    assert!(!r2.suppressed && r2.queued.len() == 1);
    // After expiry a new alert (new rule id, no group) is not suppressed.
    let r3 = s.record(&input("r2", "10.0.0.5"), 10_000, &p, ANY).unwrap();
    assert!(!r3.suppressed);
    assert!(!s.suppressions(10_000).unwrap()[0].active);
    s.delete_suppression(&sup.id).unwrap();
    assert!(s.delete_suppression(&sup.id).is_err());
}

#[test]
fn suppression_input_is_checked() {
    let (_d, mut s) = store();
    let f = |k: &str| [(k.to_string(), "v".to_string())].into();
    assert!(s.add_suppression(f("rule.id"), "", "a", None, 1).is_err());
    assert!(s
        .add_suppression(f("password"), "why", "a", None, 1)
        .is_err());
    assert!(s
        .add_suppression(BTreeMap::new(), "why", "a", None, 1)
        .is_err());
    assert!(s
        .add_suppression(f("rule.id"), "why", "a", Some(1), 5)
        .is_err());
    assert!(s.add_suppression(f("tags"), "why", "a", None, 1).is_ok());
}

#[test]
fn failures_back_off_then_die() {
    let (_d, mut s) = store();
    let mut p = routed(0);
    p.retry.initial_ms = 1000;
    p.retry.jitter = 0.0;
    p.retry.max_attempts = 3;
    let r = s.record(&input("r1", "x"), 0, &p, ANY).unwrap();
    let id = &r.queued[0];
    assert_eq!(s.due(0, 10).unwrap().len(), 1);
    assert!(s.mark_failed(id, "refused", 0, &p).unwrap().is_none());
    assert!(s.due(999, 10).unwrap().is_empty());
    assert_eq!(s.next_due().unwrap(), Some(1000));
    assert!(s.mark_failed(id, "refused", 1000, &p).unwrap().is_none());
    assert_eq!(s.next_due().unwrap(), Some(3000));
    let dead = s
        .mark_failed(id, "refused\r\nagain", 3000, &p)
        .unwrap()
        .unwrap();
    assert_eq!(dead.action, "delivery_dead");
    let d = s.deliveries(Some("dead"), 10).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].attempts, 3);
    assert_eq!(d[0].last_error.as_deref(), Some("refused\\r\\nagain"));
    assert!(s.next_due().unwrap().is_none());
}

#[test]
fn list_filters() {
    let (_d, mut s) = store();
    let p = routed(0);
    let mut low = input("low", "198.51.100.1");
    low.level = Level::Low;
    s.record(&low, 1000, &p, ANY).unwrap();
    let hi = s
        .record(&input("hi", "198.51.100.2"), 2000, &p, ANY)
        .unwrap();
    let q = |s: &Store, f: ListFilter| {
        s.list(&ListFilter { limit: 10, ..f })
            .unwrap()
            .0
            .into_iter()
            .map(|a| a.rule_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&s, ListFilter::default()), ["hi", "low"]);
    assert_eq!(
        q(
            &s,
            ListFilter {
                min_level: Some(Level::High),
                ..Default::default()
            }
        ),
        ["hi"]
    );
    assert_eq!(
        q(
            &s,
            ListFilter {
                rule_id: Some("low".into()),
                ..Default::default()
            }
        ),
        ["low"]
    );
    assert_eq!(
        q(
            &s,
            ListFilter {
                entity: Some("198.51.100.2".into()),
                ..Default::default()
            }
        ),
        ["hi"]
    );
    assert_eq!(
        q(
            &s,
            ListFilter {
                since: Some(1500),
                ..Default::default()
            }
        ),
        ["hi"]
    );
    assert_eq!(
        q(
            &s,
            ListFilter {
                offset: 1,
                ..Default::default()
            }
        ),
        ["low"]
    );
    s.set_status(&hi.alert_id, Status::Closed, "a", "", 3000)
        .unwrap();
    assert_eq!(
        q(
            &s,
            ListFilter {
                status: Some(Status::Open),
                ..Default::default()
            }
        ),
        ["low"]
    );
}

#[test]
fn maintenance_windows_hold_notifications_back() {
    let (_d, mut s) = store();
    let mut p = routed(0);
    p.maintenance = vec![crate::policy::Maintenance {
        reason: "patching".into(),
        start: 1000,
        end: 2000,
        fields: [("source.ip".to_string(), "db1".to_string())].into(),
    }];
    let held = s.record(&input("r1", "db1"), 1500, &p, ANY).unwrap();
    assert!(held.created && held.queued.is_empty());
    let (a, hist, _) = s.get(&held.alert_id).unwrap();
    assert!(!a.suppressed, "held, not suppressed");
    assert_eq!(hist[1].action, "notification_held");
    assert!(hist[1].detail.contains("patching"));
    // Other entities, and the same one after the window, are notified.
    assert_eq!(
        s.record(&input("r1", "web1"), 1500, &p, ANY)
            .unwrap()
            .queued
            .len(),
        1
    );
    assert_eq!(
        s.record(&input("r2", "db1"), 2000, &p, ANY)
            .unwrap()
            .queued
            .len(),
        1
    );
}

#[test]
fn unknown_channels_are_skipped_and_recorded() {
    let (_d, mut s) = store();
    let r = s
        .record(&input("r1", "x"), 1, &routed(0), &|_| false)
        .unwrap();
    assert!(r.queued.is_empty());
    let (_, hist, _) = s.get(&r.alert_id).unwrap();
    assert_eq!(hist[1].action, "notification_skipped");
}

#[test]
fn the_ledger_cursor_makes_recording_idempotent() {
    let (_d, mut s) = store();
    let p = routed(0);
    assert_eq!(s.ledger_cursor().unwrap(), None);
    let at = |seq| AlertInput {
        seq: Some(seq),
        ..input("r1", "x")
    };
    let r = s.record_many(&[at(10), at(12)], 1, &p, ANY).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(s.ledger_cursor().unwrap(), Some(12));
    // A replay of 11..=13 records only 13.
    let r = s
        .record_many(&[at(11), at(12), at(13)], 2, &p, ANY)
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(s.get(&r[0].alert_id).unwrap().0.count, 3);
    assert!(s.record(&at(13), 3, &p, ANY).is_err());
    s.set_ledger_cursor(100).unwrap();
    assert_eq!(s.ledger_cursor().unwrap(), Some(100));
}
