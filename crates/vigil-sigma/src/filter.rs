//! Sigma filters (specification v2.1): a `filter:` document names rules
//! (by `id` or `name`) and adds its own selections and condition to them,
//! so that a referenced rule matches only when `rule AND NOT filter` holds.
//!
//! As in pySigma, a filter applies to a referenced rule only when the
//! rule's logsource is within the filter's: every logsource field the
//! filter sets (`product`, `category`, `service`) must equal the rule's.
//! A reference that names no loaded rule, or a rule outside the filter's
//! logsource, is a warning of the load, not a refusal: the other rules and
//! filters load as usual.

use crate::compile::{CompiledRule, RuleMeta};
use crate::condition::Cond;
use crate::error::RuleError;
use crate::rule::{LogSource, Rule};
use crate::value::Placeholders;

/// A filter document as read.
#[derive(Debug, Clone)]
pub struct FilterDoc {
    /// Title, id, name and where it was read (`file`/`line`).
    pub meta: RuleMeta,
    /// `filter.rules`: ids or names of the rules to filter.
    pub rules: Vec<String>,
    /// 1-based line of `filter.rules`.
    pub rules_line: usize,
    /// `logsource`.
    pub logsource: LogSource,
    /// The filter's search identifiers and condition, as a detection rule
    /// (title and logsource of the filter) so that it compiles like one.
    pub detection: Rule,
}

/// What applying filters did.
#[derive(Debug, Default)]
pub struct FilterOutcome {
    /// Filters whose own detection could not be compiled.
    pub refused: Vec<RuleError>,
    /// References to rules that are not loaded, or outside the filter's logsource.
    pub warnings: Vec<RuleError>,
    /// (filter, rule) pairs applied.
    pub applied: usize,
}

/// Whether `rule`'s logsource is within `filter`'s.
pub fn logsource_within(rule: &LogSource, filter: &LogSource) -> bool {
    let same = |f: &Option<String>, r: &Option<String>| match f {
        None => true,
        Some(f) => r.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(f)),
    };
    same(&filter.product, &rule.product)
        && same(&filter.category, &rule.category)
        && same(&filter.service, &rule.service)
}

/// Applies every filter to the rules it names.
pub fn apply_filters(
    rules: &mut [CompiledRule],
    filters: &[FilterDoc],
    placeholders: &Placeholders,
) -> FilterOutcome {
    let mut out = FilterOutcome::default();
    for f in filters {
        let compiled = match CompiledRule::compile(&f.detection, placeholders) {
            Ok(c) => c,
            Err(e) => {
                out.refused.push(e);
                continue;
            }
        };
        for r in &f.rules {
            let mut found = false;
            for rule in rules.iter_mut() {
                let m = &rule.meta;
                if m.id.as_deref() != Some(r) && m.name.as_deref() != Some(r) {
                    continue;
                }
                found = true;
                if !logsource_within(&rule.logsource, &f.logsource) {
                    out.warnings.push(RuleError::new(
                        &f.meta.file,
                        f.rules_line,
                        format!(
                            "filter {:?}: rule {r:?} ({}) is outside the filter's logsource; not applied",
                            f.meta.title, m.file
                        ),
                    ));
                    continue;
                }
                add_filter(rule, &compiled);
                out.applied += 1;
            }
            if !found {
                out.warnings.push(RuleError::new(
                    &f.meta.file,
                    f.rules_line,
                    format!(
                        "filter {:?} refers to rule {r:?}, which is not loaded",
                        f.meta.title
                    ),
                ));
            }
        }
    }
    out
}

/// Rewrites `rule` to `rule AND NOT filter`: the filter's selections are
/// appended (their names prefixed with `filter:`), and its condition is
/// shifted to their new positions.
pub fn add_filter(rule: &mut CompiledRule, filter: &CompiledRule) {
    let offset = rule.selections.len();
    rule.selections.extend(filter.selections.iter().cloned());
    rule.selection_names.extend(
        filter
            .selection_names
            .iter()
            .map(|n| format!("filter:{}:{n}", filter.meta.title)),
    );
    let original = std::mem::replace(&mut rule.condition, Cond::And(Vec::new()));
    rule.condition = Cond::And(vec![
        original,
        Cond::Not(Box::new(shift(&filter.condition, offset))),
    ]);
}

fn shift(c: &Cond, by: usize) -> Cond {
    match c {
        Cond::Sel(i) => Cond::Sel(i + by),
        Cond::Not(x) => Cond::Not(Box::new(shift(x, by))),
        Cond::And(xs) => Cond::And(xs.iter().map(|x| shift(x, by)).collect()),
        Cond::Or(xs) => Cond::Or(xs.iter().map(|x| shift(x, by)).collect()),
    }
}
