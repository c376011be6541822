//! The Sigma rule model, read from YAML and validated.
//!
//! [`parse_document`] turns one YAML document into a [`Document`]: a
//! detection [`Rule`], a correlation ([`CorrelationDoc`]) or a filter
//! ([`FilterDoc`]). Validation errors carry the file, the line of the
//! offending key (found in the source text) and a reason.

use serde_yaml::{Mapping, Value};

use crate::compile::RuleMeta;
use crate::correlation::{CmpOp, CorrelationCondition, CorrelationDoc, CorrelationType, Timespan};
use crate::error::{find_key_line, RuleError};
use crate::filter::FilterDoc;

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
    /// File, line, `title`, `id`, `name`, `status`, `description`,
    /// `level`, `tags`, `falsepositives` and `fields`, as compiled rules
    /// keep them.
    pub meta: RuleMeta,
    /// `logsource`.
    pub logsource: LogSource,
    /// The search identifiers of `detection`, in file order.
    pub detection: Vec<SearchIdentifier>,
    /// `detection.condition`: one entry, or several ORed together.
    pub conditions: Vec<String>,
    /// 1-based line of `detection.condition`.
    pub condition_line: usize,
}

/// What a YAML document in a rule file is.
#[derive(Debug, Clone)]
pub enum Document {
    /// A detection rule.
    Rule(Box<Rule>),
    /// A correlation rule (`correlation:`), references unresolved.
    Correlation(Box<CorrelationDoc>),
    /// A Sigma filter (`filter:`), references unresolved.
    Filter(Box<FilterDoc>),
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
    if get(m, "correlation").is_some() {
        return parse_correlation(&ctx, m).map(|c| Document::Correlation(Box::new(c)));
    }
    if get(m, "filter").is_some() && get(m, "detection").is_none() {
        return parse_filter(&ctx, m).map(|f| Document::Filter(Box::new(f)));
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
        Document::Correlation(c) => Err(RuleError::new(
            file,
            find_key_line(source, 1, &["correlation"]).max(c.meta.line),
            "a correlation rule is not a detection rule",
        )),
        Document::Filter(f) => Err(RuleError::new(
            file,
            find_key_line(source, 1, &["filter"]).max(f.meta.line),
            "a Sigma filter is not a detection rule",
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
    let (detection, conditions) = parse_detection(ctx, det, "detection", &[])?;
    Ok(Rule {
        meta: RuleMeta {
            file: ctx.file.to_string(),
            line: ctx.start,
            title,
            id,
            name: opt_string(ctx, m, &["name"])?,
            status,
            description: opt_string(ctx, m, &["description"])?,
            level,
            tags: string_list(ctx, m, "tags")?,
            falsepositives: string_list(ctx, m, "falsepositives")?,
            fields: string_list(ctx, m, "fields")?,
        },
        logsource,
        detection,
        conditions,
        condition_line: find_key_line(ctx.source, ctx.start, &["detection", "condition"]),
    })
}

/// Title, id, name, status, level, description, tags and false positives
/// of a correlation or filter document. Unlike detection rules, their `id`
/// need not be a UUID (the specification only recommends one).
fn parse_meta(ctx: &Ctx, m: &Mapping) -> Result<RuleMeta, RuleError> {
    let title = match get(m, "title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(ctx.err(&["title"], "'title' is empty")),
        Some(_) => return Err(ctx.err(&["title"], "'title' must be a string")),
        None => return Err(ctx.err(&[], "missing 'title'")),
    };
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
    Ok(RuleMeta {
        file: ctx.file.to_string(),
        line: ctx.start,
        title,
        id: opt_string(ctx, m, &["id"])?,
        name: opt_string(ctx, m, &["name"])?,
        status,
        level,
        description: opt_string(ctx, m, &["description"])?,
        tags: string_list(ctx, m, "tags")?,
        falsepositives: string_list(ctx, m, "falsepositives")?,
        fields: Vec::new(),
    })
}

/// Keys of a `correlation` section.
const CORRELATION_KEYS: &[&str] = &[
    "type",
    "rules",
    "group-by",
    "timespan",
    "condition",
    "aliases",
    "generate",
];

fn parse_correlation(ctx: &Ctx, m: &Mapping) -> Result<CorrelationDoc, RuleError> {
    let meta = parse_meta(ctx, m)?;
    let c = match get(m, "correlation") {
        Some(Value::Mapping(c)) => c,
        _ => return Err(ctx.err(&["correlation"], "'correlation' must be a mapping")),
    };
    fn at(key: &str) -> [&str; 2] {
        ["correlation", key]
    }
    for k in c.keys() {
        let k = scalar_string(k).unwrap_or_default();
        if !CORRELATION_KEYS.contains(&k.as_str()) {
            return Err(ctx.err(
                &at(&k),
                format!(
                    "unknown key 'correlation.{k}' (expected one of {})",
                    CORRELATION_KEYS.join(", ")
                ),
            ));
        }
    }
    let kind = match get(c, "type").and_then(scalar_string) {
        Some(t) => CorrelationType::parse(&t).ok_or_else(|| {
            ctx.err(
                &at("type"),
                format!("unknown correlation type {t:?} (expected event_count, value_count, temporal, temporal_ordered, value_sum, value_avg or value_percentile)"),
            )
        })?,
        None => return Err(ctx.err(&["correlation"], "missing 'correlation.type'")),
    };
    let rules = match get(c, "rules") {
        Some(Value::Sequence(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                scalar_string(v).ok_or_else(|| {
                    ctx.err(
                        &at("rules"),
                        "'correlation.rules' must be a list of rule ids or names",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(v @ Value::String(_)) => vec![scalar_string(v).unwrap_or_default()],
        Some(_) => {
            return Err(ctx.err(
                &at("rules"),
                "'correlation.rules' must be a non-empty list of rule ids or names",
            ))
        }
        None => return Err(ctx.err(&["correlation"], "missing 'correlation.rules'")),
    };
    let group_by = match get(c, "group-by") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| {
                scalar_string(v).ok_or_else(|| {
                    ctx.err(
                        &at("group-by"),
                        "'correlation.group-by' must be a list of field names",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(v) => vec![scalar_string(v).ok_or_else(|| {
            ctx.err(
                &at("group-by"),
                "'correlation.group-by' must be a list of field names",
            )
        })?],
    };
    let timespan = match get(c, "timespan").and_then(scalar_string) {
        Some(t) => Timespan::parse(&t).map_err(|e| ctx.err(&at("timespan"), e))?,
        None => return Err(ctx.err(&["correlation"], "missing 'correlation.timespan'")),
    };
    let condition = match get(c, "condition") {
        Some(Value::Mapping(cm)) => parse_correlation_condition(ctx, cm, kind)?,
        Some(_) => {
            return Err(ctx.err(
                &at("condition"),
                "'correlation.condition' must be a mapping such as {gte: 10}",
            ))
        }
        // The temporal types default to "every referenced rule matched".
        None if kind.needs_field() || kind == CorrelationType::EventCount => {
            return Err(ctx.err(
                &["correlation"],
                format!(
                    "missing 'correlation.condition' (required for {})",
                    kind.as_str()
                ),
            ))
        }
        None => CorrelationCondition {
            ops: vec![(CmpOp::Gte, rules.len() as f64)],
            fields: Vec::new(),
            percentile: None,
        },
    };
    let mut aliases = Vec::new();
    match get(c, "aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(am)) => {
            for (alias, map) in am {
                let alias = scalar_string(alias).unwrap_or_default();
                let Value::Mapping(map) = map else {
                    return Err(ctx.err(
                        &["correlation", "aliases", &alias],
                        format!("alias {alias:?} must map rule names to field names"),
                    ));
                };
                let mut pairs = Vec::new();
                for (r, f) in map {
                    match (scalar_string(r), scalar_string(f)) {
                        (Some(r), Some(f)) => pairs.push((r, f)),
                        _ => {
                            return Err(ctx.err(
                                &["correlation", "aliases", &alias],
                                format!("alias {alias:?} must map rule names to field names"),
                            ))
                        }
                    }
                }
                aliases.push((alias, pairs));
            }
        }
        Some(_) => return Err(ctx.err(&at("aliases"), "'correlation.aliases' must be a mapping")),
    }
    let generate = match get(c, "generate") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ctx.err(
                &at("generate"),
                "'correlation.generate' must be true or false",
            ))
        }
    };
    Ok(CorrelationDoc {
        rules_line: find_key_line(ctx.source, ctx.start, &at("rules")),
        meta,
        kind,
        rules,
        group_by,
        timespan,
        condition,
        aliases,
        generate,
    })
}

fn parse_correlation_condition(
    ctx: &Ctx,
    cm: &Mapping,
    kind: CorrelationType,
) -> Result<CorrelationCondition, RuleError> {
    let path = ["correlation", "condition"];
    let mut ops = Vec::new();
    let mut fields = Vec::new();
    let mut percentile = None;
    for (k, v) in cm {
        let key = scalar_string(k).unwrap_or_default();
        let here = ["correlation", "condition", key.as_str()];
        if let Some(op) = CmpOp::parse(&key) {
            let n = match v {
                Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
                _ => None,
            }
            .ok_or_else(|| ctx.err(&here, format!("condition '{key}' must be a number")))?;
            ops.push((op, n));
        } else if key == "field" {
            fields = match v {
                Value::Sequence(items) if !items.is_empty() => items
                    .iter()
                    .map(|x| {
                        scalar_string(x).ok_or_else(|| {
                            ctx.err(&here, "'field' must be a field name or a list of them")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                other => vec![scalar_string(other)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ctx.err(&here, "'field' must be a field name or a list of them")
                    })?],
            };
        } else if key == "percentile" && kind == CorrelationType::ValuePercentile {
            percentile = match v {
                Value::Number(n) => n.as_f64().filter(|p| (0.0..=100.0).contains(p) && *p > 0.0),
                _ => None,
            };
            if percentile.is_none() {
                return Err(ctx.err(&here, "'percentile' must be a number in (0, 100]"));
            }
        } else {
            return Err(ctx.err(
                &here,
                format!(
                    "unknown condition key {key:?} (expected gt, gte, lt, lte, eq, neq, field)"
                ),
            ));
        }
    }
    if ops.is_empty() {
        return Err(ctx.err(
            &path,
            "the condition needs a comparison (gt, gte, lt, lte, eq or neq)",
        ));
    }
    if kind.needs_field() && fields.is_empty() {
        return Err(ctx.err(
            &path,
            format!("a {} condition needs 'field'", kind.as_str()),
        ));
    }
    if !kind.needs_field() && !fields.is_empty() {
        return Err(ctx.err(
            &path,
            format!("'field' does not apply to {} correlations", kind.as_str()),
        ));
    }
    if fields.len() > 1 && kind != CorrelationType::ValueCount {
        return Err(ctx.err(&path, format!("{} takes one 'field'", kind.as_str())));
    }
    Ok(CorrelationCondition {
        ops,
        fields,
        percentile,
    })
}

fn parse_filter(ctx: &Ctx, m: &Mapping) -> Result<FilterDoc, RuleError> {
    let meta = parse_meta(ctx, m)?;
    let logsource = match get(m, "logsource") {
        Some(Value::Mapping(ls)) => LogSource {
            product: opt_string(ctx, ls, &["logsource", "product"])?,
            category: opt_string(ctx, ls, &["logsource", "category"])?,
            service: opt_string(ctx, ls, &["logsource", "service"])?,
        },
        Some(_) => return Err(ctx.err(&["logsource"], "'logsource' must be a mapping")),
        None => return Err(ctx.err(&[], "missing 'logsource' (a filter requires one)")),
    };
    let f = match get(m, "filter") {
        Some(Value::Mapping(f)) => f,
        _ => return Err(ctx.err(&["filter"], "'filter' must be a mapping")),
    };
    let rules = match get(f, "rules") {
        Some(Value::Sequence(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                scalar_string(v).ok_or_else(|| {
                    ctx.err(
                        &["filter", "rules"],
                        "'filter.rules' must be a list of rule ids or names",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(v @ Value::String(_)) => vec![scalar_string(v).unwrap_or_default()],
        Some(_) => {
            return Err(ctx.err(
                &["filter", "rules"],
                "'filter.rules' must be a non-empty list of rule ids or names",
            ))
        }
        None => return Err(ctx.err(&["filter"], "missing 'filter.rules'")),
    };
    if let Some(c) = get(f, "condition") {
        if !matches!(c, Value::String(_)) {
            return Err(ctx.err(
                &["filter", "condition"],
                "'filter.condition' must be a string",
            ));
        }
    }
    let (detection, conditions) = parse_detection(ctx, f, "filter", &["rules"])?;
    let detection = Rule {
        meta: RuleMeta {
            file: ctx.file.to_string(),
            line: ctx.start,
            title: meta.title.clone(),
            id: meta.id.clone(),
            name: meta.name.clone(),
            description: meta.description.clone(),
            ..RuleMeta::default()
        },
        logsource: logsource.clone(),
        detection,
        conditions,
        condition_line: find_key_line(ctx.source, ctx.start, &["filter", "condition"]),
    };
    Ok(FilterDoc {
        rules_line: find_key_line(ctx.source, ctx.start, &["filter", "rules"]),
        meta,
        rules,
        logsource,
        detection,
    })
}

/// Reads the search identifiers and condition(s) of a detection section
/// (`detection`, or a filter's `filter`), skipping the keys in `skip`.
fn parse_detection(
    ctx: &Ctx,
    det: &Mapping,
    section: &str,
    skip: &[&str],
) -> Result<(Vec<SearchIdentifier>, Vec<String>), RuleError> {
    let mut detection = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in det {
        let name = match k {
            Value::String(s) => s.clone(),
            other => {
                return Err(ctx.err(
                    &[section],
                    format!("search identifier {other:?} is not a string"),
                ))
            }
        };
        if skip.contains(&name.as_str()) {
            continue;
        }
        if name == "condition" {
            conditions = match v {
                Value::String(s) => vec![s.clone()],
                Value::Sequence(items) if !items.is_empty() => items
                    .iter()
                    .map(|c| match c {
                        Value::String(s) => Ok(s.clone()),
                        _ => {
                            Err(ctx.err(&[section, "condition"], "each condition must be a string"))
                        }
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ctx.err(
                        &[section, "condition"],
                        "'condition' must be a string or a non-empty list of strings",
                    ))
                }
            };
            continue;
        }
        if name == "timeframe" {
            return Err(ctx.err(
                &[section, "timeframe"],
                "'timeframe' in detection (Sigma 1 aggregation) is not supported",
            ));
        }
        let line = find_key_line(ctx.source, ctx.start, &[section, &name]);
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
        return Err(ctx.err(&[section], format!("missing '{section}.condition'")));
    }
    if detection.is_empty() {
        return Err(ctx.err(&[section], format!("'{section}' has no search identifier")));
    }
    Ok((detection, conditions))
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
        assert_eq!(r.meta.title, "Whoami Execution");
        assert_eq!(r.meta.level.as_deref(), Some("high"));
        assert_eq!(r.meta.status.as_deref(), Some("test"));
        assert_eq!(r.logsource.category.as_deref(), Some("process_creation"));
        assert_eq!(r.logsource.product.as_deref(), Some("windows"));
        assert_eq!(r.detection.len(), 1);
        assert_eq!(r.detection[0].name, "selection");
        assert_eq!(r.detection[0].line, 8);
        assert_eq!(r.conditions, vec!["selection".to_string()]);
        assert_eq!(r.condition_line, 10);
        assert_eq!(r.meta.tags, vec!["attack.discovery".to_string()]);
        assert_eq!(r.meta.falsepositives, vec!["Admins".to_string()]);
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
    fn correlation_and_filter_are_not_detection_rules() {
        let src = "title: c\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition:\n        gte: 2\n";
        let e = refuse(src);
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("correlation"));
        let src = "title: f\nlogsource:\n    product: windows\nfilter:\n    rules: [x]\n    sel:\n        a: 1\n    condition: sel\n";
        let e = refuse(src);
        assert_eq!(e.line, 4);
        assert!(e.reason.contains("filter"));
    }

    fn parse(src: &str) -> Result<Document, RuleError> {
        let v: Value = serde_yaml::from_str(src).unwrap();
        parse_document(&v, "c.yml", src, 1)
    }

    fn corr_err(src: &str) -> RuleError {
        match parse(src) {
            Err(e) => e,
            Ok(d) => panic!("accepted: {d:?}"),
        }
    }

    const CORR: &str = "title: Brute force\nid: b180ead8-d58f-40b2-ae54-c8940995b9b6\nname: brute\nlevel: high\ncorrelation:\n    type: event_count\n    rules:\n        - failed_login\n    group-by:\n        - source.ip\n    timespan: 1m\n    condition:\n        gte: 5\n";

    #[test]
    fn parses_a_correlation() {
        let Document::Correlation(c) = parse(CORR).unwrap() else {
            panic!("not a correlation")
        };
        assert_eq!(c.kind, CorrelationType::EventCount);
        assert_eq!(c.rules, ["failed_login"]);
        assert_eq!(c.rules_line, 7);
        assert_eq!(c.group_by, ["source.ip"]);
        assert_eq!(c.timespan.ms, 60_000);
        assert_eq!(c.condition.ops, [(CmpOp::Gte, 5.0)]);
        assert!(!c.generate);
        assert_eq!(c.meta.name.as_deref(), Some("brute"));
        assert_eq!(c.meta.level.as_deref(), Some("high"));
    }

    #[test]
    fn invalid_correlations_name_line_and_reason() {
        let e = corr_err(&CORR.replace("type: event_count", "type: event_sum"));
        assert_eq!(e.line, 6);
        assert!(
            e.reason.contains("unknown correlation type"),
            "{}",
            e.reason
        );
        let e = corr_err(&CORR.replace("    timespan: 1m\n", ""));
        assert!(
            e.reason.contains("missing 'correlation.timespan'"),
            "{}",
            e.reason
        );
        let e = corr_err(&CORR.replace("timespan: 1m", "timespan: 1 minute"));
        assert_eq!(e.line, 11);
        let e = corr_err(&CORR.replace("gte: 5", "more: 5"));
        assert_eq!(e.line, 13);
        assert!(e.reason.contains("unknown condition key"), "{}", e.reason);
        let e = corr_err(&CORR.replace("gte: 5", "gte: many"));
        assert!(e.reason.contains("must be a number"), "{}", e.reason);
        let e = corr_err(&CORR.replace("type: event_count", "type: value_count"));
        assert!(e.reason.contains("needs 'field'"), "{}", e.reason);
        let e = corr_err(&CORR.replace("    condition:\n        gte: 5\n", ""));
        assert!(
            e.reason.contains("missing 'correlation.condition'"),
            "{}",
            e.reason
        );
        let e = corr_err(&CORR.replace("group-by:", "groupby:"));
        assert!(
            e.reason.contains("unknown key 'correlation.groupby'"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn temporal_defaults_to_all_rules() {
        let src = "title: t\ncorrelation:\n    type: temporal\n    rules: [a, b, c]\n    group-by: [User]\n    timespan: 5m\n    generate: true\n";
        let Document::Correlation(c) = parse(src).unwrap() else {
            panic!()
        };
        assert_eq!(c.condition.ops, [(CmpOp::Gte, 3.0)]);
        assert!(c.generate);
    }

    #[test]
    fn parses_a_filter() {
        let src = "title: Admins\nlogsource:\n    product: windows\n    category: process_creation\nfilter:\n    rules:\n        - 6f3e2987-db24-4c78-a860-b4f4095a7095\n    selection:\n        User|startswith: adm_\n    condition: selection\n";
        let Document::Filter(f) = parse(src).unwrap() else {
            panic!()
        };
        assert_eq!(f.rules.len(), 1);
        assert_eq!(f.rules_line, 6);
        assert_eq!(f.detection.detection.len(), 1);
        assert_eq!(f.detection.conditions, ["selection"]);
        let e = parse(&src.replace("    condition: selection\n", "")).unwrap_err();
        assert!(
            e.reason.contains("missing 'filter.condition'"),
            "{}",
            e.reason
        );
    }
}
