//! The Sigma rule model, read from YAML and validated.
//!
//! [`parse_document`] turns one YAML document into a [`Document`]: a
//! detection [`Rule`], or a correlation or filter document, which are
//! recognized but not supported yet. Validation errors carry the file, the
//! line of the offending key (found in the source text) and a reason.

use serde_yaml::{Mapping, Value};

use crate::error::{find_key_line, RuleError};

/// The `logsource` of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// `product`, e.g. `windows`.
    pub product: Option<String>,
    /// `category`, e.g. `process_creation`.
    pub category: Option<String>,
    /// `service`, e.g. `security`.
    pub service: Option<String>,
}

/// One search identifier of the detection, in file order.
#[derive(Debug, Clone)]
pub struct SearchIdentifier {
    /// Its name, e.g. `selection_img`.
    pub name: String,
    /// Its body: a map, a list of maps or a list of keywords.
    pub value: Value,
    /// 1-based line of the identifier in the file.
    pub line: usize,
    /// 1-based lines of the detection items' keys, in iteration order (map
    /// entries, or the entries of each map of a list); empty for keywords.
    pub key_lines: Vec<usize>,
}

/// A validated Sigma detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The file the rule was read from.
    pub file: String,
    /// 1-based line where the rule's YAML document starts.
    pub line: usize,
    /// `title`.
    pub title: String,
    /// `id` (a UUID), when present.
    pub id: Option<String>,
    /// `name`, when present.
    pub name: Option<String>,
    /// `status`, when present.
    pub status: Option<String>,
    /// `description`, when present.
    pub description: Option<String>,
    /// `level`, when present.
    pub level: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `logsource`.
    pub logsource: LogSource,
    /// The search identifiers of `detection`, in file order.
    pub detection: Vec<SearchIdentifier>,
    /// `detection.condition`: one entry, or several ORed together.
    pub conditions: Vec<String>,
    /// 1-based line of `detection.condition`.
    pub condition_line: usize,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// `fields`.
    pub fields: Vec<String>,
}

/// What a YAML document in a rule file is.
#[derive(Debug, Clone)]
pub enum Document {
    /// A detection rule.
    Rule(Box<Rule>),
    /// A correlation rule (`correlation:`), recognized but not supported.
    Correlation {
        /// Its title, if any.
        title: Option<String>,
        /// 1-based line of the `correlation` key.
        line: usize,
    },
    /// A Sigma filter (`filter:`), recognized but not supported.
    Filter {
        /// Its title, if any.
        title: Option<String>,
        /// 1-based line of the `filter` key.
        line: usize,
    },
}

/// Accepted `status` values.
pub const STATUSES: &[&str] = &[
    "stable",
    "test",
    "experimental",
    "deprecated",
    "unsupported",
];
/// Accepted `level` values.
pub const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    start: usize,
}

impl Ctx<'_> {
    fn err(&self, path: &[&str], reason: impl Into<String>) -> RuleError {
        RuleError::new(
            self.file,
            find_key_line(self.source, self.start, path),
            reason,
        )
    }
}

fn get<'v>(m: &'v Mapping, key: &str) -> Option<&'v Value> {
    m.get(Value::String(key.to_string()))
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn opt_string(ctx: &Ctx, m: &Mapping, path: &[&str]) -> Result<Option<String>, RuleError> {
    let key = path[path.len() - 1];
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_string(v)
            .map(Some)
            .ok_or_else(|| ctx.err(path, format!("'{}' must be a string", path.join(".")))),
    }
}

fn string_list(ctx: &Ctx, m: &Mapping, key: &str) -> Result<Vec<String>, RuleError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| {
                scalar_string(v)
                    .ok_or_else(|| ctx.err(&[key], format!("'{key}' must be a list of strings")))
            })
            .collect(),
        Some(v) => scalar_string(v)
            .map(|s| vec![s])
            .ok_or_else(|| ctx.err(&[key], format!("'{key}' must be a list of strings"))),
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Reads one YAML document (`value`) of `file`.
///
/// `source` is the whole file text and `start_line` the 1-based line where
/// this document starts; they are used to report line numbers.
pub fn parse_document(
    value: &Value,
    file: &str,
    source: &str,
    start_line: usize,
) -> Result<Document, RuleError> {
    let ctx = Ctx {
        file,
        source,
        start: start_line,
    };
    let m = match value {
        Value::Mapping(m) => m,
        _ => return Err(ctx.err(&[], "a rule must be a YAML mapping")),
    };
    let title = get(m, "title").and_then(scalar_string);
    if get(m, "correlation").is_some() {
        return Ok(Document::Correlation {
            title,
            line: find_key_line(source, start_line, &["correlation"]),
        });
    }
    if get(m, "filter").is_some() && get(m, "detection").is_none() {
        return Ok(Document::Filter {
            title,
            line: find_key_line(source, start_line, &["filter"]),
        });
    }
    parse_rule(&ctx, m).map(|r| Document::Rule(Box::new(r)))
}

/// Reads a single-document rule from YAML text.
pub fn parse_rule_str(source: &str, file: &str) -> Result<Rule, RuleError> {
    let value: Value = serde_yaml::from_str(source).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        RuleError::new(file, line, format!("invalid YAML: {e}"))
    })?;
    match parse_document(&value, file, source, 1)? {
        Document::Rule(r) => Ok(*r),
        Document::Correlation { line, .. } => Err(RuleError::new(
            file,
            line,
            "correlation rules are not supported yet",
        )),
        Document::Filter { line, .. } => Err(RuleError::new(
            file,
            line,
            "Sigma filters are not supported yet",
        )),
    }
}

fn parse_rule(ctx: &Ctx, m: &Mapping) -> Result<Rule, RuleError> {
    for k in m.keys() {
        if !matches!(k, Value::String(_)) {
            return Err(ctx.err(&[], format!("top-level key {k:?} is not a string")));
        }
    }
    let title = match get(m, "title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(ctx.err(&["title"], "'title' is empty")),
        Some(_) => return Err(ctx.err(&["title"], "'title' must be a string")),
        None => return Err(ctx.err(&[], "missing 'title'")),
    };
    let id = opt_string(ctx, m, &["id"])?;
    if let Some(id) = &id {
        if !is_uuid(id) {
            return Err(ctx.err(&["id"], format!("'id' {id:?} is not a UUID")));
        }
    }
    let status = opt_string(ctx, m, &["status"])?;
    if let Some(s) = &status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ctx.err(&["status"], format!("unknown status {s:?}")));
        }
    }
    let level = opt_string(ctx, m, &["level"])?;
    if let Some(l) = &level {
        if !LEVELS.contains(&l.as_str()) {
            return Err(ctx.err(&["level"], format!("unknown level {l:?}")));
        }
    }
    let logsource = match get(m, "logsource") {
        Some(Value::Mapping(ls)) => LogSource {
            product: opt_string(ctx, ls, &["logsource", "product"])?,
            category: opt_string(ctx, ls, &["logsource", "category"])?,
            service: opt_string(ctx, ls, &["logsource", "service"])?,
        },
        Some(_) => return Err(ctx.err(&["logsource"], "'logsource' must be a mapping")),
        None => return Err(ctx.err(&[], "missing 'logsource'")),
    };
    let det = match get(m, "detection") {
        Some(Value::Mapping(d)) => d,
        Some(_) => return Err(ctx.err(&["detection"], "'detection' must be a mapping")),
        None => return Err(ctx.err(&[], "missing 'detection'")),
    };
    let mut detection = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in det {
        let name = match k {
            Value::String(s) => s.clone(),
            other => {
                return Err(ctx.err(
                    &["detection"],
                    format!("search identifier {other:?} is not a string"),
                ))
            }
        };
        if name == "condition" {
            conditions = match v {
                Value::String(s) => vec![s.clone()],
                Value::Sequence(items) if !items.is_empty() => items
                    .iter()
                    .map(|c| match c {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(ctx.err(
                            &["detection", "condition"],
                            "each condition must be a string",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ctx.err(
                        &["detection", "condition"],
                        "'condition' must be a string or a non-empty list of strings",
                    ))
                }
            };
            continue;
        }
        if name == "timeframe" {
            return Err(ctx.err(
                &["detection", "timeframe"],
                "'timeframe' in detection (Sigma 1 aggregation) is not supported",
            ));
        }
        let line = find_key_line(ctx.source, ctx.start, &["detection", &name]);
        match v {
            Value::Mapping(mm) if !mm.is_empty() => {}
            Value::Sequence(s) if !s.is_empty() => {}
            Value::Mapping(_) | Value::Sequence(_) => {
                return Err(RuleError::new(
                    ctx.file,
                    line,
                    format!("search identifier {name:?} is empty"),
                ))
            }
            _ => {
                return Err(RuleError::new(
                    ctx.file,
                    line,
                    format!("search identifier {name:?} must be a map or a list"),
                ))
            }
        }
        let key_lines = item_key_lines(ctx.source, line, v);
        detection.push(SearchIdentifier {
            name,
            value: v.clone(),
            line,
            key_lines,
        });
    }
    if conditions.is_empty() {
        return Err(ctx.err(&["detection"], "missing 'detection.condition'"));
    }
    if detection.is_empty() {
        return Err(ctx.err(&["detection"], "'detection' has no search identifier"));
    }
    Ok(Rule {
        file: ctx.file.to_string(),
        line: ctx.start,
        title,
        id,
        name: opt_string(ctx, m, &["name"])?,
        status,
        description: opt_string(ctx, m, &["description"])?,
        level,
        tags: string_list(ctx, m, "tags")?,
        logsource,
        detection,
        conditions,
        condition_line: find_key_line(ctx.source, ctx.start, &["detection", "condition"]),
        falsepositives: string_list(ctx, m, "falsepositives")?,
        fields: string_list(ctx, m, "fields")?,
    })
}

/// Lines of the keys of a search identifier's items, searched in order
/// from the identifier's line.
fn item_key_lines(source: &str, ident_line: usize, v: &Value) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = ident_line;
    let mut push_map = |m: &Mapping, out: &mut Vec<usize>| {
        for k in m.keys() {
            let key = scalar_string(k).unwrap_or_default();
            let l = find_key_line(source, from, &[&key]);
            out.push(l);
            if l >= from {
                from = l + 1;
            }
        }
    };
    match v {
        Value::Mapping(m) => push_map(m, &mut out),
        Value::Sequence(items) => {
            for item in items {
                if let Value::Mapping(m) = item {
                    push_map(m, &mut out);
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "title: Whoami Execution
id: 8d3b3c9e-0c4e-4c66-9d8b-7b1d1b0b7a11
status: test
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image: 'C:\\Windows\\System32\\whoami.exe'
    condition: selection
falsepositives:
    - Admins
level: high
tags:
    - attack.discovery
";

    fn refuse(src: &str) -> RuleError {
        parse_rule_str(src, "t.yml").unwrap_err()
    }

    #[test]
    fn parses_the_spec_example() {
        let r = parse_rule_str(GOOD, "t.yml").unwrap();
        assert_eq!(r.title, "Whoami Execution");
        assert_eq!(r.level.as_deref(), Some("high"));
        assert_eq!(r.status.as_deref(), Some("test"));
        assert_eq!(r.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(r.logsource.product.as_deref(), Some("windows"));
        assert_eq!(r.detection.len(), 1);
        assert_eq!(r.detection[0].name, "selection");
        assert_eq!(r.detection[0].line, 8);
        assert_eq!(r.conditions, vec!["selection".to_string()]);
        assert_eq!(r.condition_line, 10);
        assert_eq!(r.tags, vec!["attack.discovery".to_string()]);
        assert_eq!(r.falsepositives, vec!["Admins".to_string()]);
    }

    #[test]
    fn missing_title() {
        let e = refuse(&GOOD.replace("title: Whoami Execution\n", ""));
        assert_eq!((e.line, e.reason.as_str()), (1, "missing 'title'"));
        assert_eq!(e.file, "t.yml");
    }

    #[test]
    fn bad_level_names_its_line() {
        let e = refuse(&GOOD.replace("level: high", "level: severe"));
        assert_eq!(e.line, 13);
        assert!(e.reason.contains("unknown level"), "{}", e.reason);
    }

    #[test]
    fn bad_status_and_id() {
        let e = refuse(&GOOD.replace("status: test", "status: beta"));
        assert_eq!(e.line, 3);
        let e = refuse(&GOOD.replace("8d3b3c9e-0c4e-4c66-9d8b-7b1d1b0b7a11", "not-a-uuid"));
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("UUID"));
    }

    #[test]
    fn missing_condition_and_logsource() {
        let e = refuse(&GOOD.replace("    condition: selection\n", ""));
        assert_eq!(
            (e.line, e.reason.as_str()),
            (7, "missing 'detection.condition'")
        );
        let e = refuse(&GOOD.replace(
            "logsource:\n    category: process_creation\n    product: windows\n",
            "",
        ));
        assert_eq!(e.reason, "missing 'logsource'");
    }

    #[test]
    fn scalar_search_identifier_is_refused() {
        let e = refuse(&GOOD.replace("    condition:", "    oops: 5\n    condition:"));
        assert_eq!(e.line, 10);
        assert!(e.reason.contains("\"oops\""), "{}", e.reason);
    }

    #[test]
    fn invalid_yaml_names_its_line() {
        let e = refuse("title: x\nlogsource: [\n");
        assert!(e.reason.starts_with("invalid YAML"), "{}", e.reason);
        assert!(e.line >= 2);
    }

    #[test]
    fn correlation_and_filter_are_recognized() {
        let src = "title: c\ncorrelation:\n    type: event_count\n";
        let e = refuse(src);
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("correlation"));
        let src = "title: f\nlogsource:\n    product: windows\nfilter:\n    rules: [x]\n";
        let e = refuse(src);
        assert_eq!(e.line, 4);
        assert!(e.reason.contains("filter"));
    }
}
