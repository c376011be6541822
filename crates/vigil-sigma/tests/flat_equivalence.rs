//! The flat reader's fast path decides exactly as the general path.
//!
//! Every event of the OTRF Windows datasets is evaluated with all SigmaHQ
//! Windows rules twice: read by `FlatEvent::parse` through
//! `RuleSet::matching_flat`, and parsed into a `serde_json::Value` through
//! `RuleSet::matching`. The sets of matching rules must be equal for every
//! event, and the flat reader must accept every event of the datasets.

use std::path::PathBuf;

use vigil_sigma::flat::FlatEvent;
use vigil_sigma::loader::load_paths;
use vigil_sigma::ruleset::RuleSet;
use vigil_sigma::value::Placeholders;

fn corpus() -> Option<PathBuf> {
    let base = match std::env::var_os("VIGIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if base.join("windows/datasets").is_dir() && base.join("sigma/rules").is_dir() {
        Some(base)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "Windows datasets or Sigma rules missing under {}",
            base.display()
        );
    } else {
        eprintln!("corpus missing under {}; skipping", base.display());
        None
    }
}

#[test]
fn flat_path_matches_the_general_path_on_every_otrf_event() {
    let Some(c) = corpus() else { return };
    let report = load_paths(
        &[c.join("sigma/rules/rules/windows")],
        &Placeholders::default(),
    );
    let set = RuleSet::new(report.rules);
    let mut files: Vec<PathBuf> = std::fs::read_dir(c.join("windows/datasets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let (mut events, mut flat, mut matches) = (0usize, 0usize, 0usize);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for line in data.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            events += 1;
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let mut general = Vec::new();
            set.matching(&v, |r| general.push(r.meta.title.clone()));
            let Some(fe) = FlatEvent::parse(line) else {
                continue;
            };
            flat += 1;
            let mut fast = Vec::new();
            set.matching_flat(&fe, |r| fast.push(r.meta.title.clone()));
            assert_eq!(
                fast,
                general,
                "{} event {events}: {}",
                f.display(),
                String::from_utf8_lossy(&line[..line.len().min(300)])
            );
            matches += general.len();
        }
    }
    eprintln!("flat equivalence: {flat}/{events} events read flat, {matches} matches, all equal");
    assert_eq!(flat, events, "the flat reader refused some OTRF events");
    assert!(
        matches > 100,
        "only {matches} matches: rules or data missing?"
    );
}
