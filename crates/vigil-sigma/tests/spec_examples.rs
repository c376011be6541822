//! The Sigma specification's example rules (`sigma/spec/example-rules/` of
//! the corpus: `$VIGIL_CORPUS`, else `<manifest>/../../../shared/corpus`)
//! load, their correlations and filters resolve against rules that define
//! the ids and names they refer to, and the event_count and temporal
//! examples fire on synthetic events exactly when they should.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use vigil_sigma::correlation::{
    event_time, format_ms, CorrelationLimits, CorrelationType, Correlator,
};
use vigil_sigma::loader::{load_source, LoadReport};
use vigil_sigma::value::Placeholders;
use vigil_sigma::views::JsonView;

fn examples() -> Option<PathBuf> {
    let base = match std::env::var_os("VIGIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    let dir = base.join("sigma/spec/example-rules");
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("spec example rules missing under {}", dir.display());
    } else {
        eprintln!(
            "spec example rules missing under {}; skipping",
            dir.display()
        );
        None
    }
}

/// Detection rules with the ids and names the examples refer to.
const SUPPORT: &str = "title: Failed logon
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource:
    product: test
detection:
    sel:
        outcome: failure
    condition: sel
---
title: Recon a
name: recon_cmd_a
logsource:
    product: test
detection:
    sel:
        cmd: whoami
    condition: sel
---
title: Recon b
name: recon_cmd_b
logsource:
    product: test
detection:
    sel:
        cmd: ipconfig
    condition: sel
---
title: Recon c
name: recon_cmd_c
logsource:
    product: test
detection:
    sel:
        cmd: netstat
    condition: sel
---
title: Rule a
name: rule_a_id
logsource:
    product: test
detection:
    sel:
        kind: traffic
    condition: sel
---
title: Website access
name: website_access
logsource:
    product: test
detection:
    sel:
        kind: web
    condition: sel
---
title: Process creation
name: process_creation
logsource:
    product: test
detection:
    sel:
        kind: process
    condition: sel
---
title: Rar compression
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
logsource:
    category: process_creation
    product: windows
detection:
    sel:
        Image|endswith: '\\rar.exe'
    condition: sel
---
title: Login on jump host
id: df0841c0-9846-4e9f-ad8a-7df91571771b
logsource:
    category: process_creation
    product: windows
detection:
    sel:
        Computer: jump01
    condition: sel
";

fn load(example: &str, name: &str) -> LoadReport {
    let ph = Placeholders::default();
    let mut r = LoadReport::default();
    load_source(SUPPORT, "support.yml", &ph, &mut r);
    load_source(example, name, &ph, &mut r);
    r.finish(&ph);
    r
}

fn files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_loads() {
    let Some(dir) = examples() else { return };
    let mut seen = 0;
    for (sub, want_corr, want_filters) in [("correlation", 1, 0), ("filter", 0, 1), ("rules", 0, 0)]
    {
        let list = files(&dir.join(sub));
        assert!(!list.is_empty(), "no examples in {sub}");
        for (name, text) in list {
            let r = load(&text, &name);
            assert!(r.refused.is_empty(), "{name}: {:?}", r.refused);
            assert_eq!(r.correlations.rules.len(), want_corr, "{name}");
            if want_filters > 0 {
                // Each filter example names two rules: applied where the
                // logsource fits (process_creation), a warning where not.
                assert_eq!(
                    r.filters_applied + r.warnings.len(),
                    2,
                    "{name}: {:?}",
                    r.warnings
                );
            } else {
                assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
            }
            if sub == "rules" {
                assert_eq!(r.rules.len(), 10, "{name}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 12, "{seen} examples");
}

#[test]
fn correlations_without_their_rules_are_refused() {
    let Some(dir) = examples() else { return };
    for (name, text) in files(&dir.join("correlation")) {
        let ph = Placeholders::default();
        let mut r = LoadReport::default();
        load_source(&text, &name, &ph, &mut r);
        r.finish(&ph);
        assert!(r.correlations.is_empty(), "{name}");
        assert_eq!(r.refused.len(), 1, "{name}");
        let e = &r.refused[0];
        assert!(e.reason.contains("not loaded"), "{name}: {e}");
        assert!(e.line >= 3, "{name}: line of 'rules': {e}");
    }
}

fn at(secs: i64) -> String {
    format_ms(1_700_000_000_000 + secs * 1000)
}

/// Feeds `events` in order through the rules of `r`; returns, per event,
/// the titles of the correlations that fired.
fn run(r: &LoadReport, events: &[serde_json::Value]) -> Vec<Vec<String>> {
    let set = Arc::new(r.correlations.clone());
    let mut c = Correlator::new(set.clone(), CorrelationLimits::default());
    events
        .iter()
        .enumerate()
        .map(|(n, ev)| {
            let mut fired = Vec::new();
            for (i, rule) in r.rules.iter().enumerate() {
                if !rule.matches(&JsonView(ev)) {
                    continue;
                }
                if let Some(obs) = set.observe(i, &JsonView(ev), event_time(ev)) {
                    for m in c.feed(&obs, n) {
                        fired.push(set.rules[m.correlation].doc.meta.title.clone());
                    }
                }
            }
            fired
        })
        .collect()
}

#[test]
fn event_count_example_fires_at_the_hundredth_failure_within_an_hour() {
    let Some(dir) = examples() else { return };
    let text = std::fs::read_to_string(dir.join("correlation/event_count.yml")).unwrap();
    let r = load(&text, "event_count.yml");
    assert_eq!(
        r.correlations.rules[0].doc.kind,
        CorrelationType::EventCount
    );
    // 99 failures on one host within the hour, 50 on another, one success.
    let mut events: Vec<_> = (0..99)
        .map(|i| json!({"outcome": "failure", "ComputerName": "dc1", "@timestamp": at(i * 30)}))
        .collect();
    events.extend(
        (0..50).map(|i| json!({"outcome": "failure", "ComputerName": "dc2", "@timestamp": at(i)})),
    );
    events.push(json!({"outcome": "success", "ComputerName": "dc1", "@timestamp": at(2999)}));
    assert!(run(&r, &events).iter().all(Vec::is_empty));
    // The 100th at 3600 s: the first (0 s) is exactly one hour old, still inside.
    events.push(json!({"outcome": "failure", "ComputerName": "dc1", "@timestamp": at(3600)}));
    let fired = run(&r, &events);
    assert_eq!(fired.last().unwrap(), &["Many failed logins".to_string()]);
    assert_eq!(fired.iter().filter(|f| !f.is_empty()).count(), 1);
    // One second later it would have been 99 in the window.
    let last = events.len() - 1;
    events[last] = json!({"outcome": "failure", "ComputerName": "dc1", "@timestamp": at(3601)});
    assert!(run(&r, &events).iter().all(Vec::is_empty));
}

#[test]
fn temporal_example_needs_all_three_commands_by_one_user_on_one_host() {
    let Some(dir) = examples() else { return };
    for (file, ordered) in [("temporal.yml", false), ("temporal_ordered.yml", true)] {
        let text = std::fs::read_to_string(dir.join("correlation").join(file)).unwrap();
        let r = load(&text, file);
        let ev = |cmd: &str, user: &str, t: i64| json!({"cmd": cmd, "ComputerName": "ws1", "User": user, "@timestamp": at(t)});
        // Out of order, by two users, or spread over more than 5 minutes: no match.
        let no = [
            ev("netstat", "bob", 0),
            ev("ipconfig", "bob", 10),
            ev("whoami", "alice", 20),
            ev("whoami", "bob", 400),
            ev("ipconfig", "bob", 500),
        ];
        let fired = run(&r, &no);
        assert!(fired.iter().all(Vec::is_empty), "{file}: {fired:?}");
        // bob: whoami 400, ipconfig 500, netstat 600: in order, within 300 s.
        let mut yes = no.to_vec();
        yes.push(ev("netstat", "bob", 600));
        let fired = run(&r, &yes);
        assert_eq!(fired[5].len(), 1, "{file}: {fired:?}");
        // Unordered: netstat, ipconfig, whoami within 20 s fires only for `temporal`.
        let shuffled = [
            ev("netstat", "carol", 0),
            ev("ipconfig", "carol", 10),
            ev("whoami", "carol", 20),
        ];
        let fired = run(&r, &shuffled);
        assert_eq!(fired[2].len(), usize::from(!ordered), "{file}: {fired:?}");
    }
}
