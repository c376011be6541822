//! Rule test cases ("sidecars") and rule style checks, for detection as code.
//!
//! A rule file `X.yml` may have a sidecar `X.tests.yml` next to it:
//!
//! ```yaml
//! match:                       # every event here must match a rule of X.yml
//!   - line: "Mar  3 09:14:07 bastion sshd[4721]: Invalid user oracle from 45.95.147.10 port 39512"
//!   - {"event": {"action": "ssh_invalid_user"}}
//! no_match:                    # no event here may match any rule of X.yml
//!   - line: "Mar  3 09:14:07 bastion sshd[4721]: Accepted publickey for alice from 198.51.100.7 port 50122 ssh2"
//!   - EventID: 4624            # flat Windows fields
//!     Channel: Security
//! ```
//!
//! Each case is either `line: "<raw log line>"` (decoded by
//! `vigil_parse::parse_line`, as `vigil hunt` decodes text logs) or any other
//! mapping, taken as the event itself (nested ECS JSON, or flat Windows /
//! `evtx_dump` JSON). Events are evaluated as `vigil hunt` evaluates them:
//! Windows-shaped events through `FlatWindowsView` against Windows rules
//! (scoped by the built-in logsource mapping), other events through
//! `JsonView` against the other rules (see [`RuleSet`]).

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::error::{find_key_line, RuleError};
use crate::ruleset::RuleSet;

/// What a test case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// At least one rule of the file must match.
    Match,
    /// No rule of the file may match.
    NoMatch,
}

/// The event of a test case.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    /// A raw log line, decoded with `vigil_parse::parse_line`.
    Line(String),
    /// An event given as a mapping.
    Json(Json),
}

/// One test case of a sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// 1-based number of the case in the file (`match` cases first, then
    /// `no_match` cases, each in file order).
    pub number: usize,
    /// 1-based line of the case in the sidecar (best effort).
    pub line: usize,
    /// What is expected.
    pub expect: Expect,
    /// The event.
    pub event: CaseEvent,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case.
    pub case: TestCase,
    /// Titles of the rules that matched the event.
    pub matched: Vec<String>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        match self.case.expect {
            Expect::Match => !self.matched.is_empty(),
            Expect::NoMatch => self.matched.is_empty(),
        }
    }

    /// Why the case failed (`None` when it passed).
    pub fn failure(&self) -> Option<String> {
        if self.passed() {
            return None;
        }
        Some(match self.case.expect {
            Expect::Match => "expected match, got none".to_string(),
            Expect::NoMatch => format!("expected no match, got {}", self.matched.join(", ")),
        })
    }
}

/// Whether `path` is a sidecar (`*.tests.yml` / `*.tests.yaml`), not a rule.
pub fn is_sidecar(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".tests.yml") || n.ends_with(".tests.yaml"))
}

/// The sidecar of a rule file: `X.yml` → `X.tests.yml` (`.yaml` likewise).
pub fn sidecar_path(rule: &Path) -> PathBuf {
    let ext = rule.extension().and_then(|e| e.to_str()).unwrap_or("yml");
    rule.with_extension(format!("tests.{ext}"))
}

pub use crate::loader::rule_files;

/// 1-based lines of the items of the list under the top-level `key`.
fn item_lines(source: &str, key: &str) -> Vec<usize> {
    let start = find_key_line(source, 1, &[key]);
    let lines: Vec<&str> = source.lines().collect();
    let Some(first) = lines.get(start - 1) else {
        return Vec::new();
    };
    if !first.trim_start().starts_with(key) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut indent = None;
    for (i, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = l.len() - t.len();
        let is_item = t == "-" || t.starts_with("- ");
        if ind == 0 && !(is_item && matches!(indent, None | Some(0))) {
            break;
        }
        if is_item {
            match indent {
                None => {
                    indent = Some(ind);
                    out.push(i + 1);
                }
                Some(n) if n == ind => out.push(i + 1),
                _ => {}
            }
        }
    }
    out
}

/// Parses a sidecar. `file` names it in errors.
pub fn parse_sidecar(source: &str, file: &str) -> Result<Vec<TestCase>, RuleError> {
    let doc: Value = serde_yaml::from_str(source).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        RuleError::new(file, line, format!("invalid YAML: {e}"))
    })?;
    let Value::Mapping(map) = doc else {
        return Err(RuleError::new(
            file,
            1,
            "a test file must be a mapping with 'match' and/or 'no_match' lists",
        ));
    };
    for k in map.keys() {
        match k.as_str() {
            Some("match") | Some("no_match") => {}
            Some(other) => {
                return Err(RuleError::new(
                    file,
                    find_key_line(source, 1, &[other]),
                    format!("unknown key '{other}' (expected 'match' and 'no_match')"),
                ))
            }
            None => return Err(RuleError::new(file, 1, "keys must be strings")),
        }
    }
    let mut cases = Vec::new();
    for (key, expect) in [("match", Expect::Match), ("no_match", Expect::NoMatch)] {
        let Some(v) = map.get(key) else { continue };
        let key_line = find_key_line(source, 1, &[key]);
        let items = match v {
            Value::Sequence(s) => s,
            Value::Null => continue,
            _ => {
                return Err(RuleError::new(
                    file,
                    key_line,
                    format!("'{key}' must be a list of events"),
                ))
            }
        };
        let lines = item_lines(source, key);
        for (i, item) in items.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(key_line);
            let event = case_event(item).map_err(|r| RuleError::new(file, line, r))?;
            cases.push(TestCase {
                number: cases.len() + 1,
                line,
                expect,
                event,
            });
        }
    }
    if cases.is_empty() {
        return Err(RuleError::new(
            file,
            1,
            "no test cases ('match' or 'no_match')",
        ));
    }
    Ok(cases)
}

fn case_event(item: &Value) -> Result<CaseEvent, String> {
    let Value::Mapping(m) = item else {
        return Err("a case must be a mapping: an event, or 'line: <raw log line>'".into());
    };
    if let Some(l) = m.get("line") {
        if m.len() != 1 {
            return Err("a 'line' case must have no other keys".into());
        }
        return match l {
            Value::String(s) => Ok(CaseEvent::Line(s.clone())),
            _ => Err("'line' must be a string".into()),
        };
    }
    let json = serde_json::to_value(item).map_err(|e| format!("cannot use case as JSON: {e}"))?;
    Ok(CaseEvent::Json(json))
}

/// The JSON event of a case (decoding `line` cases).
pub fn case_json(event: &CaseEvent, opts: &vigil_parse::ParseOptions) -> Json {
    match event {
        CaseEvent::Line(l) => vigil_parse::parse_line(l.as_bytes(), opts).into_json(),
        CaseEvent::Json(j) => j.clone(),
    }
}

/// Titles of the rules that match `ev`, routed as `vigil hunt` routes
/// events (see [`RuleSet::matching`]).
pub fn matching_rules(rules: &RuleSet, ev: &Json) -> Vec<String> {
    let mut out = Vec::new();
    rules.matching(ev, |r| out.push(r.meta.title.clone()));
    out
}

/// Runs the cases against the rules.
pub fn run_cases(
    rules: &RuleSet,
    cases: &[TestCase],
    opts: &vigil_parse::ParseOptions,
) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|c| CaseResult {
            case: c.clone(),
            matched: matching_rules(rules, &case_json(&c.event, opts)),
        })
        .collect()
}

/// How serious a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A SigmaHQ convention is not followed.
    Warning,
    /// The rule pack is wrong.
    Error,
}

/// A lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Where and what.
    pub error: RuleError,
}

/// Longest `title` SigmaHQ accepts.
pub const MAX_TITLE_CHARS: usize = 110;

/// The YAML documents of `source` (null ones dropped), with their 1-based start lines.
fn doc_values(source: &str) -> Vec<(usize, Value)> {
    use serde::Deserialize;
    let mut out = Vec::new();
    let mut start = 1usize;
    let starts = {
        let mut s = vec![1usize];
        let mut seen = false;
        for (i, l) in source.lines().enumerate() {
            if l == "---" || l.starts_with("--- ") {
                if seen {
                    s.push(i + 2);
                } else {
                    s[0] = i + 2;
                }
                seen = false;
            } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
                seen = true;
            }
        }
        s
    };
    for (i, de) in serde_yaml::Deserializer::from_str(source).enumerate() {
        let Ok(v) = Value::deserialize(de) else { break };
        start = starts.get(i).copied().unwrap_or(start);
        if !v.is_null() {
            out.push((start, v));
        }
    }
    out
}

/// Style checks of one rule file that SigmaHQ conventions expect: missing
/// `id`, `level`, `description`, `author` or `date` (warnings) and a
/// `title` longer than [`MAX_TITLE_CHARS`] (warning). Returns the findings
/// and the `(id, line)` of each rule document, for duplicate checks.
pub fn lint_source(source: &str, file: &str) -> (Vec<Finding>, Vec<(String, usize)>) {
    let mut findings = Vec::new();
    let mut ids = Vec::new();
    for (start, v) in doc_values(source) {
        let Value::Mapping(m) = &v else { continue };
        if m.contains_key("correlation") || m.contains_key("filter") || !m.contains_key("detection")
        {
            continue;
        }
        let warn = |key: &str, reason: String| Finding {
            severity: Severity::Warning,
            error: RuleError::new(file, find_key_line(source, start, &[key]), reason),
        };
        for key in ["id", "level", "description", "author", "date"] {
            let present = m.get(key).is_some_and(|x| match x {
                Value::String(s) => !s.trim().is_empty(),
                Value::Null => false,
                _ => true,
            });
            if !present {
                findings.push(Finding {
                    severity: Severity::Warning,
                    error: RuleError::new(file, start, format!("missing '{key}'")),
                });
            }
        }
        if let Some(t) = m.get("title").and_then(Value::as_str) {
            let n = t.chars().count();
            if n > MAX_TITLE_CHARS {
                findings.push(warn(
                    "title",
                    format!("title is {n} characters, longer than {MAX_TITLE_CHARS}"),
                ));
            }
        }
        if let Some(id) = m.get("id").and_then(Value::as_str) {
            ids.push((id.to_string(), find_key_line(source, start, &["id"])));
        }
    }
    (findings, ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{load_source, LoadReport};
    use crate::value::Placeholders;

    const RULE: &str = "title: Invalid SSH user
id: 6d1f0c2a-4b8e-4f0e-9a51-0c1f2e3d4a5b
logsource:
    product: linux
    service: sshd
detection:
    selection:
        event.action: ssh_invalid_user
    condition: selection
level: low
";

    fn rules(src: &str) -> RuleSet {
        let mut r = LoadReport::default();
        load_source(src, "r.yml", &Placeholders::default(), &mut r);
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        RuleSet::new(r.rules)
    }

    #[test]
    fn parses_cases_with_numbers_and_lines() {
        let src = "match:\n  - line: \"a b\"\n  # comment\n  - event:\n      action: x\nno_match:\n  - {\"EventID\": 4624}\n";
        let cases = parse_sidecar(src, "t.tests.yml").unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].event, CaseEvent::Line("a b".into()));
        assert_eq!((cases[0].number, cases[0].line), (1, 2));
        assert_eq!((cases[1].number, cases[1].line), (2, 4));
        assert_eq!(
            cases[1].event,
            CaseEvent::Json(serde_json::json!({"event": {"action": "x"}}))
        );
        assert_eq!(cases[2].expect, Expect::NoMatch);
        assert_eq!((cases[2].number, cases[2].line), (3, 7));
    }

    #[test]
    fn refuses_bad_sidecars() {
        assert!(parse_sidecar("match: [\n", "t").is_err());
        assert!(parse_sidecar("- a\n", "t").is_err());
        assert!(parse_sidecar("matches: []\n", "t")
            .unwrap_err()
            .reason
            .contains("unknown key"));
        assert!(parse_sidecar("match: 3\n", "t").is_err());
        assert!(parse_sidecar("match:\n  - 3\n", "t").is_err());
        assert!(parse_sidecar("match:\n  - line: a\n    x: 1\n", "t").is_err());
        assert!(parse_sidecar("match: []\n", "t").is_err());
    }

    #[test]
    fn runs_line_and_json_cases() {
        let r = rules(RULE);
        let src = "match:
  - line: \"Mar  3 09:14:07 bastion sshd[4721]: Invalid user oracle from 45.95.147.10 port 39512\"
  - {\"event\": {\"action\": \"ssh_invalid_user\"}, \"process\": {\"name\": \"sshd\"}}
  - line: \"Mar  3 09:14:07 bastion sshd[4721]: Accepted publickey for alice from 198.51.100.7 port 50122 ssh2\"
no_match:
  - line: \"Mar  3 09:14:07 bastion sshd[4721]: Accepted publickey for alice from 198.51.100.7 port 50122 ssh2\"
  - EventID: 4624
    event.action: ssh_invalid_user
";
        let cases = parse_sidecar(src, "t").unwrap();
        let res = run_cases(&r, &cases, &Default::default());
        let passed: Vec<bool> = res.iter().map(CaseResult::passed).collect();
        assert_eq!(passed, vec![true, true, false, true, true]);
        assert_eq!(
            res[2].failure().unwrap(),
            "expected match, got none".to_string()
        );
    }

    #[test]
    fn windows_rules_see_only_windows_events_in_scope() {
        let r = rules(
            "title: Logon\nlogsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n        EventID: 4624\n    condition: selection\n",
        );
        let ok = serde_json::json!({"EventID": 4624, "Channel": "Security"});
        let other_channel = serde_json::json!({"EventID": 4624, "Channel": "System"});
        assert_eq!(matching_rules(&r, &ok), vec!["Logon".to_string()]);
        assert!(matching_rules(&r, &other_channel).is_empty());
        let ecs = serde_json::json!({"event": {"code": "4624"}, "EventID2": 4624});
        assert!(matching_rules(&r, &ecs).is_empty());
    }

    #[test]
    fn no_match_failure_names_rules() {
        let r = rules(RULE);
        let cases = parse_sidecar(
            "no_match:\n  - event.action: ssh_invalid_user\n    process.name: sshd\n",
            "t",
        )
        .unwrap();
        let res = run_cases(&r, &cases, &Default::default());
        assert_eq!(
            res[0].failure().unwrap(),
            "expected no match, got Invalid SSH user"
        );
    }

    #[test]
    fn sidecar_paths() {
        assert_eq!(
            sidecar_path(Path::new("a/b.yml")),
            PathBuf::from("a/b.tests.yml")
        );
        assert_eq!(
            sidecar_path(Path::new("b.yaml")),
            PathBuf::from("b.tests.yaml")
        );
        assert!(is_sidecar(Path::new("x/b.tests.yml")));
        assert!(!is_sidecar(Path::new("x/b.yml")));
    }

    #[test]
    fn lint_reports_missing_metadata_long_titles_and_ids() {
        let (f, ids) = lint_source(RULE, "r.yml");
        let reasons: Vec<&str> = f.iter().map(|x| x.error.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "missing 'description'",
                "missing 'author'",
                "missing 'date'"
            ]
        );
        assert!(f.iter().all(|x| x.severity == Severity::Warning));
        assert_eq!(
            ids,
            vec![("6d1f0c2a-4b8e-4f0e-9a51-0c1f2e3d4a5b".to_string(), 2)]
        );
        let long = format!(
            "title: {}\nid: x\nlevel: low\ndescription: d\nauthor: a\ndate: 2026-01-01\nlogsource:\n    product: linux\ndetection:\n    s:\n        a: 1\n    condition: s\n",
            "t".repeat(111)
        );
        let (f, _) = lint_source(&long, "l.yml");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].error.line, 1);
        assert!(f[0].error.reason.contains("111 characters"));
    }
}
