use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use vigil_alert::model::{Alert, Level, Status as AlertStatus};

use super::*;
use crate::export::{Evidence, Report};

const T0: Millis = 1_795_000_000_000;
const MIN: Millis = 60_000;

fn alert(id: &str, level: Level, entity: &[(&str, &str)], tags: &[&str], at: Millis) -> Alert {
    Alert {
        id: id.into(),
        rule_id: format!("rule-{id}"),
        rule_name: format!("Rule {id}"),
        level,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        entity: entity
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        message: String::new(),
        group_key: String::new(),
        first_seen: format_ms(at),
        last_seen: format_ms(at),
        count: 1,
        evidence_seqs: vec![10, 9],
        evidence_truncated: false,
        status: AlertStatus::Open,
        suppressed: false,
        suppression_id: None,
    }
}

/// A store whose clock the test moves.
fn store() -> (Store, Arc<AtomicI64>) {
    let mut s = Store::open_in_memory(IncidentsConfig::default()).unwrap();
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    s.set_clock(move || c.load(Ordering::SeqCst));
    (s, clock)
}

fn bastion_root() -> Alert {
    alert(
        "a1",
        Level::High,
        &[
            ("host.name", "bastion"),
            ("source.ip", "203.0.113.10"),
            ("user.name", "root"),
        ],
        &["attack.credential_access", "attack.t1110.001"],
        T0,
    )
}

#[test]
fn every_pair_of_statuses_follows_the_table() {
    let legal: &[(Status, Status)] = &[
        (Status::New, Status::Acknowledged),
        (Status::New, Status::FalsePositive),
        (Status::Acknowledged, Status::Investigating),
        (Status::Acknowledged, Status::Resolved),
        (Status::Acknowledged, Status::FalsePositive),
        (Status::Investigating, Status::Contained),
        (Status::Investigating, Status::Resolved),
        (Status::Investigating, Status::FalsePositive),
        (Status::Contained, Status::Investigating),
        (Status::Contained, Status::Resolved),
        (Status::Resolved, Status::Investigating),
        (Status::FalsePositive, Status::Investigating),
    ];
    // A path from `new` to each status, through legal steps only.
    let path_to = |s: Status| -> &'static [Status] {
        match s {
            Status::New => &[],
            Status::Acknowledged => &[Status::Acknowledged],
            Status::Investigating => &[Status::Acknowledged, Status::Investigating],
            Status::Contained => &[
                Status::Acknowledged,
                Status::Investigating,
                Status::Contained,
            ],
            Status::Resolved => &[Status::Acknowledged, Status::Resolved],
            Status::FalsePositive => &[Status::FalsePositive],
        }
    };
    let mut checked = 0;
    for from in STATUSES {
        for to in STATUSES {
            let (mut s, _) = store();
            let id = s.observe(&bastion_root(), None).unwrap().unwrap();
            for step in path_to(from) {
                s.set_status(&id, *step, "alice", "").unwrap();
            }
            let want = legal.contains(&(from, to));
            assert_eq!(from.can_become(to), want, "{from} → {to}");
            match s.set_status(&id, to, "alice", "") {
                Ok(()) => {
                    assert!(want, "{from} → {to} was allowed");
                    assert_eq!(s.get(&id).unwrap().incident.status, to);
                }
                Err(e) => {
                    assert!(!want, "{from} → {to} was refused: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&format!("from {from} to {to}")),
                        "the error names both states: {msg}"
                    );
                    assert_eq!(s.get(&id).unwrap().incident.status, from);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

#[test]
fn acknowledgement_resolution_and_reopening_set_their_times() {
    let (mut s, clock) = store();
    let id = s.observe(&bastion_root(), None).unwrap().unwrap();
    clock.store(T0 + 2 * MIN, Ordering::SeqCst);
    s.set_status(&id, Status::Acknowledged, "alice", "mine")
        .unwrap();
    clock.store(T0 + 5 * MIN, Ordering::SeqCst);
    s.set_status(&id, Status::Resolved, "alice", "").unwrap();
    let i = s.get(&id).unwrap().incident;
    assert_eq!(
        i.acknowledged_at.as_deref(),
        Some(&*format_ms(T0 + 2 * MIN))
    );
    assert_eq!(i.resolved_at.as_deref(), Some(&*format_ms(T0 + 5 * MIN)));
    // Reopening goes back to investigating and clears the resolution.
    clock.store(T0 + 9 * MIN, Ordering::SeqCst);
    s.set_status(&id, Status::Investigating, "bob", "it is back")
        .unwrap();
    let d = s.get(&id).unwrap();
    assert_eq!(d.incident.status, Status::Investigating);
    assert_eq!(d.incident.resolved_at, None);
    assert_eq!(
        d.incident.acknowledged_at.as_deref(),
        Some(&*format_ms(T0 + 2 * MIN))
    );
    let last = d.history.last().unwrap();
    assert_eq!(last.actor, "bob");
    assert_eq!(last.text, "resolved → investigating (reopened): it is back");
}

#[test]
fn alerts_of_one_entity_share_an_incident_within_the_window() {
    let (mut s, _) = store();
    let id = s.observe(&bastion_root(), Some(T0 - MIN)).unwrap().unwrap();
    // Another rule, same user and host, 59 minutes later: joins.
    let a2 = alert(
        "a2",
        Level::Medium,
        &[("host.name", "bastion"), ("user.name", "root")],
        &[],
        T0 + 59 * MIN,
    );
    assert_eq!(s.observe(&a2, None).unwrap().as_deref(), Some(&*id));
    // Exactly one window after the last alert: still joins (edge included).
    let a3 = alert(
        "a3",
        Level::Medium,
        &[("user.name", "root")],
        &[],
        T0 + 119 * MIN,
    );
    assert_eq!(s.observe(&a3, None).unwrap().as_deref(), Some(&*id));
    // One millisecond beyond: a new incident.
    let a4 = alert(
        "a4",
        Level::Medium,
        &[("user.name", "root")],
        &[],
        T0 + 179 * MIN + 1,
    );
    let other = s.observe(&a4, None).unwrap().unwrap();
    assert_ne!(other, id);
    // A raised count updates the snapshot in place.
    let mut again = a2.clone();
    again.count = 5;
    again.last_seen = format_ms(T0 + 60 * MIN);
    assert_eq!(s.observe(&again, None).unwrap().as_deref(), Some(&*id));
    let d = s.get(&id).unwrap();
    assert_eq!(d.incident.alert_count, 3);
    assert_eq!(
        d.alerts.iter().find(|a| a.alert_id == "a2").unwrap().count,
        5
    );
    assert_eq!(d.incident.severity, Level::High);
    assert_eq!(
        d.incident.evidence_at.as_deref(),
        Some(&*format_ms(T0 - MIN))
    );
    assert_eq!(d.alerts[1].reason, "entity");
    // A closed incident takes no more alerts.
    s.set_status(&id, Status::FalsePositive, "alice", "")
        .unwrap();
    let a5 = alert(
        "a5",
        Level::High,
        &[("user.name", "root")],
        &[],
        T0 + 61 * MIN,
    );
    assert_ne!(s.observe(&a5, None).unwrap().as_deref(), Some(&*id));
}

#[test]
fn a_tactic_chain_on_one_host_joins_and_low_alerts_do_not_open() {
    let (mut s, _) = store();
    let id = s.observe(&bastion_root(), None).unwrap().unwrap();
    let privesc = alert(
        "p1",
        Level::Critical,
        &[("host.name", "bastion"), ("user.name", "deploy")],
        &["attack.privilege_escalation", "attack.t1548.003"],
        T0 + 10 * MIN,
    );
    assert_eq!(s.observe(&privesc, None).unwrap().as_deref(), Some(&*id));
    let d = s.get(&id).unwrap();
    assert_eq!(
        d.incident.tactics,
        ["credential_access", "privilege_escalation"]
    );
    assert_eq!(d.incident.severity, Level::Critical);
    assert!(d
        .history
        .iter()
        .any(|h| h.kind == "severity_changed" && h.text.starts_with("severity high → critical")));
    assert_eq!(d.alerts[1].reason, "chain");

    // Low alerts: join an open incident, never open one.
    let low_join = alert(
        "l1",
        Level::Low,
        &[("user.name", "root")],
        &[],
        T0 + 11 * MIN,
    );
    assert_eq!(s.observe(&low_join, None).unwrap().as_deref(), Some(&*id));
    let low_alone = alert("l2", Level::Low, &[("user.name", "carol")], &[], T0);
    assert_eq!(s.observe(&low_alone, None).unwrap(), None);
    // A playbook can still open one for it.
    let forced = s.open_or_attach(&low_alone, "playbook:triage").unwrap();
    assert_ne!(forced, id);
    assert_eq!(
        s.open_or_attach(&low_alone, "playbook:triage").unwrap(),
        forced
    );
    // Suppressed alerts are left alone.
    let mut supp = alert("s1", Level::Critical, &[("user.name", "zed")], &[], T0);
    supp.suppressed = true;
    assert_eq!(s.observe(&supp, None).unwrap(), None);
}

#[test]
fn manual_create_attach_detach_and_limits() {
    let (mut s, _) = store();
    let a = alert("m1", Level::Low, &[("user.name", "x")], &[], T0);
    let b = alert("m2", Level::Low, &[("user.name", "y")], &[], T0 + MIN);
    let id = s
        .create(&[a.clone(), b.clone()], Some("Suspicious pair"), "alice")
        .unwrap();
    let d = s.get(&id).unwrap();
    assert_eq!(d.incident.title, "Suspicious pair");
    assert_eq!(d.incident.alert_count, 2);
    // Linked elsewhere: refused with the other incident's id.
    let e = s.create(std::slice::from_ref(&a), None, "bob").unwrap_err();
    assert!(e.to_string().contains(&id), "{e}");
    assert!(matches!(
        s.create(&[], None, "bob"),
        Err(IncidentError::Invalid(_))
    ));
    s.detach(&id, "m2", "alice").unwrap();
    assert_eq!(s.get(&id).unwrap().incident.alert_count, 1);
    assert!(matches!(
        s.detach(&id, "m2", "alice"),
        Err(IncidentError::NotFound { .. })
    ));
    // The policy does not put a detached alert back, even when it is raised.
    let mut raised = b.clone();
    raised.level = Level::High;
    raised.count = 2;
    assert_eq!(s.observe(&raised, None).unwrap(), None);
    assert_eq!(s.get(&id).unwrap().incident.alert_count, 1);
    s.attach(&id, &b, "alice").unwrap();
    assert_eq!(s.get(&id).unwrap().incident.alert_count, 2);
    assert_eq!(s.observe(&raised, None).unwrap().as_deref(), Some(&*id));
    assert!(matches!(
        s.attach("nope", &b, "alice"),
        Err(IncidentError::NotFound { .. })
    ));

    s.set_assignee(&id, "bob", "alice").unwrap();
    s.set_severity(&id, Level::Critical, "alice").unwrap();
    s.set_tags(
        &id,
        &["ransomware".into(), " finance ".into(), "ransomware".into()],
        "alice",
    )
    .unwrap();
    let i = s.get(&id).unwrap().incident;
    assert_eq!((i.assignee.as_str(), i.severity), ("bob", Level::Critical));
    assert_eq!(i.tags, ["finance", "ransomware"]);
    assert!(s.set_assignee(&id, "bob\r\nEvil", "alice").is_err());
    assert!(s.set_tags(&id, &["".into()], "alice").is_err());
    assert!(s.add_note(&id, &"x".repeat(MAX_NOTE + 1), "alice").is_err());
    assert!(s.add_note(&id, "  ", "alice").is_err());
    assert!(s.add_timeline(&id, "Bad Kind", "x", "a").is_err());
    s.add_timeline(
        &id,
        "playbook_step",
        "blocked 203.0.113.10",
        "playbook:block",
    )
    .unwrap();
    s.pin(&id, 9, "first failure", Some(T0 - 5 * MIN), "alice")
        .unwrap();
    assert!(matches!(
        s.pin(&id, 9, "again", None, "alice"),
        Err(IncidentError::Conflict(_))
    ));
    assert!(s.pin(&id, 0, "", None, "alice").is_err());
}

#[test]
fn timeline_merges_alerts_pins_notes_and_status_by_time() {
    let (mut s, clock) = store();
    let mut a = bastion_root();
    a.last_seen = format_ms(T0 + 3 * MIN);
    a.count = 4;
    clock.store(T0 + 4 * MIN, Ordering::SeqCst);
    let id = s.observe(&a, None).unwrap().unwrap();
    clock.store(T0 + 6 * MIN, Ordering::SeqCst);
    s.set_status(&id, Status::Acknowledged, "alice", "")
        .unwrap();
    clock.store(T0 + 7 * MIN, Ordering::SeqCst);
    s.add_note(&id, "blocked at the firewall", "alice").unwrap();
    s.pin(&id, 9, "the first failure", Some(T0 - MIN), "alice")
        .unwrap();
    let kinds: Vec<(String, String)> = s
        .get(&id)
        .unwrap()
        .timeline
        .into_iter()
        .map(|t| (t.at, t.kind))
        .collect();
    let want = [
        (T0 - MIN, "event"),
        (T0, "alert_first_seen"),
        (T0 + 3 * MIN, "alert_last_seen"),
        (T0 + 4 * MIN, "created"),
        (T0 + 4 * MIN, "alert_linked"),
        (T0 + 6 * MIN, "status_changed"),
        (T0 + 7 * MIN, "note_added"),
        (T0 + 7 * MIN, "event_pinned"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, k)| (format_ms(*t), k.to_string()))
        .collect();
    assert_eq!(kinds, want);
    let changes = s.take_changes();
    let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "alert_linked",
            "status_changed",
            "note_added",
            "event_pinned"
        ]
    );
    assert_eq!(changes[4].seq, Some(9));
    assert_eq!(changes[2].status, Status::Acknowledged);
    assert!(s.take_changes().is_empty());
}

#[test]
fn metrics_from_the_store_with_known_numbers() {
    let (mut s, clock) = store();
    let mut ids = Vec::new();
    for (n, user) in ["u1", "u2", "u3"].iter().enumerate() {
        clock.store(T0, Ordering::SeqCst);
        let a = alert(
            &format!("x{n}"),
            Level::High,
            &[("user.name", user)],
            &[],
            T0 - 30_000,
        );
        ids.push(s.observe(&a, Some(T0 - 90_000)).unwrap().unwrap());
    }
    // Acknowledged after 1, 2 and 6 minutes; two resolved after 10 and 20.
    for (id, ack) in ids.iter().zip([1, 2, 6]) {
        clock.store(T0 + ack * MIN, Ordering::SeqCst);
        s.set_status(id, Status::Acknowledged, "alice", "").unwrap();
    }
    for (id, res) in ids.iter().zip([10, 20]) {
        clock.store(T0 + res * MIN, Ordering::SeqCst);
        s.set_status(id, Status::Resolved, "alice", "").unwrap();
    }
    let m = s.metrics().unwrap();
    let h = &m.by_severity["high"];
    assert_eq!(h.incidents, 3);
    assert_eq!(
        (h.mtta.count, h.mtta.mean_secs, h.mtta.median_secs),
        (3, Some(180.0), Some(120.0))
    );
    assert_eq!(
        (h.mttr.count, h.mttr.mean_secs, h.mttr.median_secs),
        (2, Some(900.0), Some(900.0))
    );
    assert_eq!((h.mttd.count, h.mttd.mean_secs), (3, Some(60.0)));
    let counts = s.status_counts().unwrap();
    assert!(counts.contains(&(Status::Resolved, 2)));
    assert!(counts.contains(&(Status::Acknowledged, 1)));
    assert!(counts.contains(&(Status::New, 0)));

    let (page, total) = s
        .list(&ListFilter {
            status: Some(Status::Resolved),
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.len(), total), (1, 2));
    let (none, _) = s
        .list(&ListFilter {
            min_severity: Some(Level::Critical),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

struct Fake;

impl Evidence for Fake {
    fn event(&self, seq: u64) -> std::result::Result<Value, String> {
        Ok(
            json!({"vigil": {"seq": seq}, "message": "Failed password for <b>root</b>\n```\n# hi | x"}),
        )
    }
    fn proof(&self, seq: u64) -> std::result::Result<Value, String> {
        if seq == 9 {
            Ok(
                json!({"leaf_index": 8, "tree_size": 12, "leaf_hash": "x", "audit_path": [], "checkpoint": "c"}),
            )
        } else {
            Err("no stored checkpoint covers seq 11 yet".into())
        }
    }
}

#[test]
fn reports_escape_hostile_fields_and_carry_proofs() {
    let (mut s, _) = store();
    let mut a = bastion_root();
    a.rule_name = "Evil | rule\n# <img src=x onerror=alert(1)> [x](http://e)".into();
    let id = s.observe(&a, None).unwrap().unwrap();
    s.add_note(
        &id,
        "note with | pipe and **bold** and `tick`\r\nforged line",
        "alice",
    )
    .unwrap();
    s.pin(&id, 9, "<script>", Some(T0), "alice").unwrap();
    s.pin(&id, 11, "", None, "alice").unwrap();
    let r = Report::build(
        s.get(&id).unwrap(),
        &Fake,
        format_ms(T0),
        Some("vigil+1+AAAA".into()),
    );
    let md = r.to_markdown();
    // Outside code fences nothing is raw HTML.
    let mut in_fence = false;
    let prose: Vec<&str> = md
        .lines()
        .filter(|l| {
            if l.starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .collect();
    let prose = prose.join("\n");
    assert!(!prose.contains('<'), "{prose}");
    assert!(
        md.contains("&lt;img src=x onerror=alert\\(1\\)&gt;"),
        "{md}"
    );
    assert!(
        !md.contains("\nforged line") && !md.contains("\n# <"),
        "{md}"
    );
    for line in md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("note with"))
    {
        let cells = line
            .char_indices()
            .filter(|(i, c)| *c == '|' && !line[..*i].ends_with('\\'))
            .count();
        assert_eq!(cells, 5, "a table row keeps its four cells: {line}");
    }
    // The event's own backticks cannot close its fence.
    assert!(md.contains("````json\n"), "{md}");
    assert!(
        md.contains("No inclusion proof: no stored checkpoint covers seq 11 yet"),
        "{md}"
    );
    assert!(md.contains("signed checkpoint of 12 records"), "{md}");

    let j = r.to_json();
    assert_eq!(j["format"], crate::export::FORMAT);
    assert_eq!(j["incident"]["id"], id.as_str());
    assert_eq!(j["pinned_events"][0]["seq"], 9);
    assert_eq!(j["pinned_events"][0]["proof"]["tree_size"], 12);
    assert_eq!(j["pinned_events"][1]["proof"], Value::Null);
    assert!(j["pinned_events"][1]["proof_error"].is_string());
    // JSON keeps the stored text exactly.
    assert_eq!(j["alerts"][0]["rule_name"], a.rule_name.as_str());
    assert!(j["workflow"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["kind"] != "note_added"));
}

#[test]
fn the_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.db");
    let id = {
        let mut s = Store::open(&path, IncidentsConfig::default()).unwrap();
        s.observe(&bastion_root(), None).unwrap().unwrap()
    };
    let s = Store::open(&path, IncidentsConfig::default()).unwrap();
    assert_eq!(s.get(&id).unwrap().alerts.len(), 1);
    assert_eq!(s.incident_of("a1").unwrap().as_deref(), Some(&*id));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn the_workflow_table_in_the_docs_is_the_one_in_code() {
    let doc = include_str!("../../../../docs/INCIDENTS.md");
    for from in STATUSES {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{from}` |")))
            .unwrap_or_else(|| panic!("docs/INCIDENTS.md has no workflow row for {from}"));
        let cell = row.split('|').nth(2).unwrap();
        for to in STATUSES {
            assert_eq!(
                cell.contains(&format!("`{to}`")),
                from.can_become(to),
                "docs/INCIDENTS.md row {row:?} disagrees with TRANSITIONS about {from} → {to}"
            );
        }
    }
}
