//! Conformance: SigmaHQ's detection regression cases.
//!
//! For each row of `sigma/regression/cases.tsv`, the rule at `rule_path`
//! (relative to `sigma/rules`) is loaded, routed with the built-in Windows
//! logsource mapping, and run over the case's `evtx_dump`-style NDJSON
//! events through [`FlatWindowsView`]; it must match at least
//! `min_match_count` events (the upstream semantics). The set of failing
//! cases must be exactly [`EXPECTED_FAILURES`], so both a new failure and a
//! newly passing case make the test fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_sigma::loader::load_file;
use vigil_sigma::logsource::{LogsourceMapping, Scope};
use vigil_sigma::value::Placeholders;
use vigil_sigma::views::FlatWindowsView;

/// Cases known to fail (rule id, one-line reason).
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

fn corpus() -> Option<PathBuf> {
    let base = match std::env::var_os("VIGIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if base.join("sigma/regression/cases.tsv").is_file() {
        Some(base.join("sigma"))
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("sigma regression corpus missing under {}", base.display());
    } else {
        eprintln!(
            "sigma regression corpus missing under {}; skipping",
            base.display()
        );
        None
    }
}

/// Runs one case; `Ok(matches)` or `Err(reason)`.
fn run_case(
    sigma: &Path,
    mapping: &LogsourceMapping,
    rule_path: &str,
    ndjson: &str,
    min: usize,
) -> Result<usize, String> {
    let report = load_file(
        &sigma.join("rules").join(rule_path),
        &Placeholders::default(),
    );
    if let Some(e) = report.refused.first() {
        return Err(format!("rule refused: line {}: {}", e.line, e.reason));
    }
    let [rule] = &report.rules[..] else {
        return Err(format!("expected one rule, got {}", report.rules.len()));
    };
    let mut rule = rule.clone();
    rule.scope = mapping.scope_for(&rule.logsource);
    let text = std::fs::read_to_string(sigma.join("regression").join(ndjson))
        .map_err(|e| format!("cannot read events: {e}"))?;
    let (mut events, mut in_scope, mut matched, mut detection_only) = (0, 0, 0, 0);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("event line {}: {e}", i + 1))?;
        let view = FlatWindowsView::new(&v);
        events += 1;
        if rule.matches_in_scope(&view) {
            matched += 1;
        }
        if rule.matches(&view) {
            detection_only += 1;
        }
        if rule.scope.applies_to(&view) {
            in_scope += 1;
        }
    }
    if matched >= min {
        Ok(matched)
    } else {
        Err(format!(
            "{matched} of {events} events matched (need {min}); {in_scope} in logsource scope, {detection_only} match the detection alone; scope {}",
            scope_summary(&rule.scope)
        ))
    }
}

/// A short description of a scope for failure messages.
fn scope_summary(scope: &Scope) -> String {
    match scope {
        Scope::Any => "any event".to_string(),
        Scope::Unroutable(why) => format!("unroutable ({why})"),
        Scope::Constrained(alts) => alts
            .iter()
            .map(|a| {
                format!(
                    "{:?} EventID {:?} {:?}",
                    a.channels, a.event_ids, a.conditions
                )
            })
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

#[test]
fn sigmahq_regression_cases() {
    let Some(sigma) = corpus() else { return };
    let mapping = LogsourceMapping::windows();
    let cases = std::fs::read_to_string(sigma.join("regression/cases.tsv")).unwrap();
    let mut total = 0;
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for line in cases.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [_dir, id, rule_path, _evtx, ndjson, min] = cols[..] else {
            panic!("bad cases.tsv row: {line}");
        };
        total += 1;
        let min: usize = min.parse().unwrap();
        if let Err(reason) = run_case(&sigma, &mapping, rule_path, ndjson, min) {
            failures.insert(id.to_string(), format!("{rule_path}: {reason}"));
        }
    }
    // Cross-logsource control: every rule against the other cases' events
    // from other channels/EventIDs. Unscoped, rules fire on events of the
    // wrong logsource; routed, they must not.
    let mut pool: Vec<(String, serde_json::Value)> = Vec::new();
    let mut rules = Vec::new();
    for line in cases.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let text = std::fs::read_to_string(sigma.join("regression").join(cols[4])).unwrap();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            pool.push((cols[1].to_string(), serde_json::from_str(l).unwrap()));
        }
        let report = load_file(&sigma.join("rules").join(cols[2]), &Placeholders::default());
        if let Some(r) = report.rules.into_iter().next() {
            let mut r = r;
            r.scope = mapping.scope_for(&r.logsource);
            rules.push((cols[1].to_string(), r));
        }
    }
    let key = |v: &serde_json::Value| {
        let sys = &v["Event"]["System"];
        (sys["Channel"].to_string(), sys["EventID"].to_string())
    };
    let (mut unscoped, mut scoped) = (0, 0);
    for (id, rule) in &rules {
        let own: Vec<_> = pool
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, v)| key(v))
            .collect();
        for (c, v) in &pool {
            if c == id || own.contains(&key(v)) {
                continue;
            }
            let view = FlatWindowsView::new(v);
            if rule.matches(&view) {
                unscoped += 1;
            }
            if rule.matches_in_scope(&view) {
                scoped += 1;
                println!("  cross-logsource match: rule of {id} on an event of {c}");
            }
        }
    }
    println!("cross-logsource control: {unscoped} matches without routing, {scoped} with");
    assert_eq!(
        scoped, 0,
        "routed rules matched events of another logsource"
    );
    // Measured 2: keeps the control meaningful (routing must have work to do).
    assert!(
        unscoped > 0,
        "control has no cross-logsource candidates any more"
    );

    let pass = total - failures.len();
    println!("sigma regression: {pass}/{total} cases pass");
    for (id, reason) in &failures {
        println!("  FAIL {id}: {reason}");
    }
    assert_eq!(total, 150, "cases.tsv should hold 150 cases");
    let expected: BTreeMap<String, String> = EXPECTED_FAILURES
        .iter()
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect();
    let unexpected: Vec<&String> = failures
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    let now_pass: Vec<&String> = expected
        .keys()
        .filter(|k| !failures.contains_key(*k))
        .collect();
    assert!(unexpected.is_empty(), "unexpected failures: {unexpected:?}");
    assert!(
        now_pass.is_empty(),
        "expected failures that now pass (remove them): {now_pass:?}"
    );
    assert_eq!(pass, total - EXPECTED_FAILURES.len());
}
