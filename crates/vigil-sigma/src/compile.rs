//! Compiling a [`Rule`] into an evaluable [`CompiledRule`].

use serde_yaml::Value;

use crate::condition::{self, Cond};
use crate::error::RuleError;
use crate::event::EventView;
use crate::logsource::{MappedView, Scope};
use crate::rule::{LogSource, Rule, SearchIdentifier};
use crate::value::{FieldMatcher, Placeholders};

/// A compiled search identifier.
#[derive(Debug, Clone)]
pub enum Selection {
    /// A map: every matcher must match (AND).
    Map(Vec<FieldMatcher>),
    /// A list of maps: one of the groups must match entirely (OR of ANDs).
    /// A plain string inside such a list is a one-matcher keyword group.
    MapList(Vec<Vec<FieldMatcher>>),
    /// A list of keywords, searched in every value of the event (OR).
    Keywords(FieldMatcher),
}

impl Selection {
    /// Whether the event matches this selection.
    pub fn matches(&self, ev: &dyn EventView) -> bool {
        match self {
            Selection::Map(ms) => ms.iter().all(|m| m.matches(ev)),
            Selection::MapList(groups) => groups.iter().any(|g| g.iter().all(|m| m.matches(ev))),
            Selection::Keywords(m) => m.matches(ev),
        }
    }
}

/// The descriptive part of a rule, kept for alerts.
#[derive(Debug, Clone, Default)]
pub struct RuleMeta {
    /// The file the rule came from.
    pub file: String,
    /// 1-based line where the rule's document starts.
    pub line: usize,
    /// `title`.
    pub title: String,
    /// `id`.
    pub id: Option<String>,
    /// `name` (Sigma 2.x), by which correlations and filters may refer to the rule.
    pub name: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `level`.
    pub level: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// `fields`.
    pub fields: Vec<String>,
}

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Title, id, level and the like.
    pub meta: RuleMeta,
    /// The rule's logsource as written.
    pub logsource: LogSource,
    /// Search identifier names, parallel to `selections`.
    pub selection_names: Vec<String>,
    /// The compiled search identifiers, in file order.
    pub selections: Vec<Selection>,
    /// The condition (several `condition` entries are ORed).
    pub condition: Cond,
    /// Which events the rule applies to (see [`CompiledRule::matches_in_scope`]);
    /// [`Scope::Any`] until a logsource mapping is applied.
    pub scope: Scope,
}

impl CompiledRule {
    /// Compiles a parsed rule; `placeholders` resolve `|expand` values.
    pub fn compile(rule: &Rule, placeholders: &Placeholders) -> Result<CompiledRule, RuleError> {
        let selections = rule
            .detection
            .iter()
            .map(|si| compile_selection(rule, si, placeholders))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = rule.detection.iter().map(|s| s.name.clone()).collect();
        let mut conds = Vec::new();
        for text in &rule.conditions {
            let c = condition::parse(text)
                .and_then(|e| e.resolve(&names))
                .map_err(|e| {
                    RuleError::new(
                        &rule.meta.file,
                        rule.condition_line,
                        format!("condition {text:?}: {e}"),
                    )
                })?;
            conds.push(c);
        }
        let condition = if conds.len() == 1 {
            conds.pop().expect("one condition")
        } else {
            Cond::Or(conds)
        };
        Ok(CompiledRule {
            meta: rule.meta.clone(),
            logsource: rule.logsource.clone(),
            selection_names: names,
            selections,
            condition,
            scope: Scope::Any,
        })
    }

    /// Whether the event satisfies the detection (the logsource is not
    /// checked; see [`CompiledRule::matches_in_scope`]).
    pub fn matches(&self, ev: &dyn EventView) -> bool {
        self.condition.eval(&mut |i| self.selections[i].matches(ev))
    }

    /// Whether the event belongs to the rule's logsource (its [`Scope`]) and
    /// satisfies the detection, read through the logsource's field mappings.
    pub fn matches_in_scope(&self, ev: &dyn EventView) -> bool {
        match &self.scope {
            Scope::Any => self.matches(ev),
            Scope::Unroutable(_) => false,
            Scope::Constrained(alts) => alts.iter().any(|alt| {
                if !alt.applies_to(ev) {
                    return false;
                }
                if alt.fieldmappings.is_empty() {
                    self.matches(ev)
                } else {
                    self.matches(&MappedView::new(ev, &alt.fieldmappings))
                }
            }),
        }
    }
}

fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compile_selection(
    rule: &Rule,
    si: &SearchIdentifier,
    ph: &Placeholders,
) -> Result<Selection, RuleError> {
    let mut key_idx = 0usize;
    let mut compile_map = |m: &serde_yaml::Mapping| -> Result<Vec<FieldMatcher>, RuleError> {
        let mut out = Vec::with_capacity(m.len());
        for (k, v) in m {
            let line = si.key_lines.get(key_idx).copied().unwrap_or(si.line);
            key_idx += 1;
            let key = key_string(k).ok_or_else(|| {
                RuleError::new(
                    &rule.meta.file,
                    line,
                    format!("{}: field name {k:?} is not a string", si.name),
                )
            })?;
            let fm = FieldMatcher::compile(&key, v, ph).map_err(|e| {
                RuleError::new(&rule.meta.file, line, format!("{}: {key:?}: {e}", si.name))
            })?;
            out.push(fm);
        }
        Ok(out)
    };
    match &si.value {
        Value::Mapping(m) => Ok(Selection::Map(compile_map(m)?)),
        Value::Sequence(items) if items.iter().all(|v| !v.is_mapping()) => {
            FieldMatcher::compile("", &si.value, ph)
                .map(Selection::Keywords)
                .map_err(|e| {
                    RuleError::new(
                        &rule.meta.file,
                        si.line,
                        format!("{}: keywords: {e}", si.name),
                    )
                })
        }
        Value::Sequence(items) => {
            let mut groups = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Mapping(m) => groups.push(compile_map(m)?),
                    other => {
                        let fm = FieldMatcher::compile("", other, ph).map_err(|e| {
                            RuleError::new(
                                &rule.meta.file,
                                si.line,
                                format!("{}: keyword: {e}", si.name),
                            )
                        })?;
                        groups.push(vec![fm]);
                    }
                }
            }
            Ok(Selection::MapList(groups))
        }
        _ => Err(RuleError::new(
            &rule.meta.file,
            si.line,
            format!("search identifier {:?} must be a map or a list", si.name),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::parse_rule_str;
    use crate::views::JsonView;
    use serde_json::json;

    fn compile(src: &str) -> CompiledRule {
        let rule = parse_rule_str(src, "t.yml").unwrap();
        CompiledRule::compile(&rule, &Placeholders::default()).unwrap()
    }

    const RULE: &str = "title: t
logsource:
    product: windows
detection:
    selection:
        Image|endswith: '\\whoami.exe'
        User|contains: admin
    selection_alt:
        - CommandLine|contains: ' /all'
        - CommandLine|contains: ' /priv'
    filter:
        ParentImage: 'C:\\Windows\\explorer.exe'
    condition: selection and 1 of selection_* and not filter
";

    #[test]
    fn map_list_and_condition() {
        let r = compile(RULE);
        assert!(matches!(r.selections[0], Selection::Map(ref m) if m.len() == 2));
        assert!(matches!(r.selections[1], Selection::MapList(ref g) if g.len() == 2));
        let ev = json!({"Image": "C:\\Windows\\System32\\WHOAMI.EXE", "User": "CORP\\Admin1",
                        "CommandLine": "whoami /priv", "ParentImage": "C:\\Windows\\cmd.exe"});
        assert!(r.matches(&JsonView(&ev)));
        let filtered = json!({"Image": "C:\\Windows\\System32\\whoami.exe", "User": "admin",
                              "CommandLine": "whoami /all", "ParentImage": "C:\\Windows\\explorer.exe"});
        assert!(!r.matches(&JsonView(&filtered)));
        let no_alt = json!({"Image": "C:\\Windows\\System32\\whoami.exe", "User": "admin",
                            "CommandLine": "whoami"});
        assert!(!r.matches(&JsonView(&no_alt)));
    }

    #[test]
    fn keywords_and_condition_list() {
        let r = compile(
            "title: k\nlogsource:\n    product: x\ndetection:\n    keywords:\n        - 'event::clear'\n        - 'event::drop'\n    other:\n        a: 1\n    condition:\n        - keywords\n        - other\n",
        );
        assert!(matches!(r.selections[0], Selection::Keywords(_)));
        assert!(r.matches(&JsonView(&json!({"msg": "mimikatz event::drop done"}))));
        assert!(r.matches(&JsonView(&json!({"a": 1}))));
        assert!(!r.matches(&JsonView(&json!({"msg": "nothing", "a": 2}))));
    }

    #[test]
    fn compile_errors_name_the_line() {
        let src = RULE.replace("selection and 1 of", "selection and 1 of nothing* or 1 of");
        let rule = parse_rule_str(&src, "t.yml").unwrap();
        let e = CompiledRule::compile(&rule, &Placeholders::default()).unwrap_err();
        assert_eq!(e.line, 13);
        assert!(
            e.reason.contains("matches no search identifier"),
            "{}",
            e.reason
        );
        let src = RULE.replace("User|contains: admin", "User|nosuchmodifier: admin");
        let rule = parse_rule_str(&src, "t.yml").unwrap();
        let e = CompiledRule::compile(&rule, &Placeholders::default()).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.reason.contains("selection"), "{}", e.reason);
    }

    #[test]
    fn scope_routes_and_maps_fields() {
        let mut r = compile(
            "title: p\nlogsource:\n    category: process_creation\n    product: windows\ndetection:\n    selection:\n        Image|endswith: '\\cmd.exe'\n    condition: selection\n",
        );
        r.scope = crate::logsource::LogsourceMapping::windows().scope_for(&r.logsource);
        let sysmon = json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\x\\cmd.exe"});
        let wrong_id = json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 3, "Image": "C:\\x\\cmd.exe"});
        let security =
            json!({"Channel": "Security", "EventID": 4688, "NewProcessName": "C:\\x\\cmd.exe"});
        assert!(r.matches_in_scope(&JsonView(&sysmon)));
        assert!(!r.matches_in_scope(&JsonView(&wrong_id)));
        assert!(r.matches_in_scope(&JsonView(&security)));
        assert!(!r.matches(&JsonView(&security)));
    }
}
