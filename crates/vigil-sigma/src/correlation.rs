//! Sigma correlation rules (specification v2.1): parsed model, reference
//! resolution and a streaming, event-time [`Correlator`].
//!
//! A correlation document ([`CorrelationDoc`]) names other rules (detection
//! rules or correlations, by `id` or `name`). [`resolve`] turns the
//! documents of a load into a [`CorrelationSet`] whose references are
//! indices. Evaluation is split in two steps so that the expensive part can
//! run where the event is at hand and the stateful part where it is cheap to
//! serialize access:
//!
//! 1. [`CorrelationSet::observe`] reads, from an event that matched a
//!    referenced detection rule, everything the correlations need (event
//!    time, group-by values, the `field` value) into an [`Observation`];
//! 2. [`Correlator::feed`] adds the observation to per-group sliding windows
//!    and returns the [`CorrelationMatch`]es it completes, each carrying the
//!    evidence (any `E`: an event, a ledger seq) of the contributing events.
//!
//! Semantics (see docs/RULES.md, "Correlation rules"):
//! * time is the event's own time ([`event_time`]); an event without one
//!   takes the newest time the correlator has seen (processing order);
//! * the window of a group is every entry within `timespan` of the group's
//!   newest entry, both ends inclusive; an entry older than that is late and
//!   dropped (counted in [`CorrelationStats::late`]);
//! * the condition is checked after each entry is added; when it holds the
//!   match is emitted and the group's window is cleared, so the same events
//!   never fire twice and a new match needs a fresh set of events;
//! * state is bounded by [`CorrelationLimits`]: groups and entries beyond
//!   the caps are evicted oldest first and counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compile::RuleMeta;
use crate::error::RuleError;
use crate::event::{EventView, FieldValue};

/// The correlation types of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    /// Number of events in the window.
    EventCount,
    /// Number of distinct values of `field` in the window.
    ValueCount,
    /// Referenced rules that all matched within the window, in any order.
    Temporal,
    /// Referenced rules that matched within the window in the listed order.
    TemporalOrdered,
    /// Sum of the numeric `field`.
    ValueSum,
    /// Average of the numeric `field`.
    ValueAvg,
    /// A percentile of `field` (see [`CorrelationCondition::percentile`]).
    ValuePercentile,
}

impl CorrelationType {
    /// Every type, with its name in the specification.
    pub const ALL: [(&'static str, CorrelationType); 7] = [
        ("event_count", CorrelationType::EventCount),
        ("value_count", CorrelationType::ValueCount),
        ("temporal", CorrelationType::Temporal),
        ("temporal_ordered", CorrelationType::TemporalOrdered),
        ("value_sum", CorrelationType::ValueSum),
        ("value_avg", CorrelationType::ValueAvg),
        ("value_percentile", CorrelationType::ValuePercentile),
    ];

    /// Parses a type name (`event_count`, ...).
    pub fn parse(s: &str) -> Option<CorrelationType> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, t)| *t)
    }

    /// The type's name in the specification.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether the type aggregates a `field` (and so requires one).
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueCount
                | CorrelationType::ValueSum
                | CorrelationType::ValueAvg
                | CorrelationType::ValuePercentile
        )
    }

    /// Whether the type reads `field` as a number.
    fn numeric(self) -> bool {
        matches!(self, CorrelationType::ValueSum | CorrelationType::ValueAvg)
    }
}

/// A comparison operator of a correlation condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `eq`
    Eq,
    /// `neq`
    Neq,
}

impl CmpOp {
    /// Parses an operator key.
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            "gt" => CmpOp::Gt,
            "gte" => CmpOp::Gte,
            "lt" => CmpOp::Lt,
            "lte" => CmpOp::Lte,
            "eq" => CmpOp::Eq,
            "neq" => CmpOp::Neq,
            _ => return None,
        })
    }

    fn holds(self, v: f64, limit: f64) -> bool {
        match self {
            CmpOp::Gt => v > limit,
            CmpOp::Gte => v >= limit,
            CmpOp::Lt => v < limit,
            CmpOp::Lte => v <= limit,
            CmpOp::Eq => v == limit,
            CmpOp::Neq => v != limit,
        }
    }
}

/// The `condition` of a correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationCondition {
    /// Comparisons, all of which must hold (the spec's "range" form).
    pub ops: Vec<(CmpOp, f64)>,
    /// `field`: one name, or several whose values are combined (AND) into
    /// one value for `value_count`. Empty for types without a field.
    pub fields: Vec<String>,
    /// `percentile` (value_percentile only, as in pySigma): compare the
    /// P-th percentile of the numeric `field`. Without it, value_percentile
    /// compares the share (in percent) of the window's events that carry
    /// the current event's `field` value, as in the spec's example ("a
    /// process name seen in at most 1% of the processes").
    pub percentile: Option<f64>,
}

impl CorrelationCondition {
    /// Whether every comparison holds for `v`.
    pub fn holds(&self, v: f64) -> bool {
        self.ops.iter().all(|(op, limit)| op.holds(v, *limit))
    }
}

/// A parsed `timespan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timespan {
    /// As written, e.g. `5m`.
    pub text: String,
    /// In milliseconds.
    pub ms: i64,
}

impl Timespan {
    /// Parses `<number><unit>`, unit one of `s m h d w M y` (the spec lists
    /// s/m/h/d; w/M/y as in pySigma). Zero is refused.
    pub fn parse(s: &str) -> Result<Timespan, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("timespan {s:?} has no unit (s, m, h, d, w, M, y)"))?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("timespan {s:?} must be a number followed by a unit"))?;
        let secs: i64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "M" => 2_629_746,
            "y" => 31_556_952,
            _ => {
                return Err(format!(
                    "timespan {s:?}: unknown unit {unit:?} (s, m, h, d, w, M, y)"
                ))
            }
        };
        if n <= 0 {
            return Err(format!("timespan {s:?} must be greater than zero"));
        }
        let ms = n
            .checked_mul(secs)
            .and_then(|x| x.checked_mul(1000))
            .ok_or_else(|| format!("timespan {s:?} is too long"))?;
        Ok(Timespan {
            text: t.to_string(),
            ms,
        })
    }
}

/// A correlation document as read, with its references unresolved.
#[derive(Debug, Clone)]
pub struct CorrelationDoc {
    /// Title, id, name, level, tags and the like (`file`/`line` locate it).
    pub meta: RuleMeta,
    /// `correlation.type`.
    pub kind: CorrelationType,
    /// `correlation.rules`: ids or names of rules or correlations.
    pub rules: Vec<String>,
    /// 1-based line of `correlation.rules`.
    pub rules_line: usize,
    /// `correlation.group-by` (may be empty: one group).
    pub group_by: Vec<String>,
    /// `correlation.timespan`.
    pub timespan: Timespan,
    /// `correlation.condition` (for temporal types without one: all rules).
    pub condition: CorrelationCondition,
    /// `correlation.aliases`: alias → (rule reference → field name).
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// `correlation.generate` (default false: the referenced rules do not
    /// report their own matches).
    pub generate: bool,
}

/// What a correlation refers to, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A detection rule, by its position in [`crate::loader::LoadReport::rules`].
    Base(usize),
    /// Another correlation, by its position in [`CorrelationSet::rules`].
    Correlation(usize),
}

/// A resolved correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// The document.
    pub doc: CorrelationDoc,
    /// What each entry of `doc.rules` refers to.
    pub targets: Vec<Target>,
    /// For each target, the event field read for each `group-by` entry
    /// (the alias resolved for that rule, or the group-by name itself).
    pub group_fields: Vec<Vec<String>>,
}

impl Correlation {
    /// Title, id, level and the like.
    pub fn meta(&self) -> &RuleMeta {
        &self.doc.meta
    }
}

/// The resolved correlations of a load, and which rules they listen to.
#[derive(Debug, Clone, Default)]
pub struct CorrelationSet {
    /// The correlations, in load order; a correlation only refers to
    /// correlations before it.
    pub rules: Vec<Correlation>,
    /// Base rule index → (correlation, position in its `rules`).
    by_base: HashMap<usize, Vec<(usize, usize)>>,
    /// Correlation index → (parent correlation, position in its `rules`).
    by_corr: Vec<Vec<(usize, usize)>>,
    /// Base rules whose own matches are not reported (`generate: false`).
    silent_base: HashSet<usize>,
    /// Correlations whose own matches are not reported (referenced by a
    /// correlation with `generate: false`).
    silent_corr: HashSet<usize>,
}

impl CorrelationSet {
    /// Whether there is no correlation.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a correlation listens to base rule `base`.
    pub fn references(&self, base: usize) -> bool {
        self.by_base.contains_key(&base)
    }

    /// Whether base rule `base` reports its own matches: not when a
    /// correlation refers to it without `generate: true` (the spec's
    /// default; as in pySigma, one such reference is enough).
    pub fn base_reports(&self, base: usize) -> bool {
        !self.silent_base.contains(&base)
    }

    /// Whether correlation `i` reports its own matches (not when it only
    /// feeds a correlation with `generate: false`).
    pub fn correlation_reports(&self, i: usize) -> bool {
        !self.silent_corr.contains(&i)
    }

    /// Reads what the correlations listening to base rule `base` need from
    /// an event that matched it; `None` when none listens or none can use
    /// the event (a group-by field or the `field` value is missing).
    pub fn observe(
        &self,
        base: usize,
        ev: &dyn EventView,
        time: Option<i64>,
    ) -> Option<Observation> {
        let targets = self.by_base.get(&base)?;
        let mut items = Vec::new();
        for &(ci, pos) in targets {
            let c = &self.rules[ci];
            let Some(group) = read_group(ev, &c.group_fields[pos]) else {
                continue;
            };
            let value = if c.doc.kind.needs_field() {
                match read_value(ev, c) {
                    Some(v) => Some(v),
                    None => continue,
                }
            } else {
                None
            };
            items.push(ObservedItem {
                correlation: ci,
                position: pos,
                group,
                value,
            });
        }
        (!items.is_empty()).then_some(Observation { time, items })
    }
}

/// The first non-null value of `field`, as text.
fn first_text(ev: &dyn EventView, field: &str) -> Option<String> {
    let mut out = None;
    ev.any_value(field, &mut |v| {
        out = match v {
            FieldValue::Str(s) => Some(s.to_string()),
            FieldValue::Int(i) => Some(i.to_string()),
            FieldValue::Float(f) => Some(f.to_string()),
            FieldValue::Bool(b) => Some(b.to_string()),
            FieldValue::Null => None,
        };
        out.is_some()
    });
    out
}

/// The first numeric value of `field` (numbers, or strings that parse).
fn first_number(ev: &dyn EventView, field: &str) -> Option<f64> {
    let mut out = None;
    ev.any_value(field, &mut |v| {
        out = match v {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Float(f) if f.is_finite() => Some(*f),
            FieldValue::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        };
        out.is_some()
    });
    out
}

/// The group key; `None` when a group-by field is missing (such events are
/// not counted, as `stats ... by` drops them in most SIEMs).
fn read_group(ev: &dyn EventView, fields: &[String]) -> Option<Vec<String>> {
    fields.iter().map(|f| first_text(ev, f)).collect()
}

fn read_value(ev: &dyn EventView, c: &Correlation) -> Option<ObservedValue> {
    let fields = &c.doc.condition.fields;
    let numeric = c.doc.kind.numeric()
        || (c.doc.kind == CorrelationType::ValuePercentile && c.doc.condition.percentile.is_some());
    if numeric {
        return first_number(ev, &fields[0]).map(ObservedValue::Num);
    }
    // Several fields make one combined value (the spec: "linked by AND").
    let parts: Option<Vec<String>> = fields.iter().map(|f| first_text(ev, f)).collect();
    parts.map(|p| ObservedValue::Text(p.join("\u{1f}")))
}

/// A value read for a correlation's `field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ObservedValue {
    /// Text (value_count, value_percentile share).
    Text(String),
    /// A number (value_sum, value_avg, value_percentile with `percentile`).
    Num(f64),
}

/// What one correlation needs from one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedItem {
    /// The correlation.
    pub correlation: usize,
    /// Position of the matched rule in the correlation's `rules`.
    pub position: usize,
    /// The group-by values.
    pub group: Vec<String>,
    /// The `field` value, for types that aggregate one.
    pub value: Option<ObservedValue>,
}

/// What the correlations need from an event that matched a referenced
/// rule: serializable, so that it can travel to where the state lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Event time (ms since the epoch), when the event had one.
    pub time: Option<i64>,
    /// One item per listening correlation that could use the event.
    pub items: Vec<ObservedItem>,
}

/// Resolves correlation documents against the detection rules of a load
/// (`base`, in load order). Returns the set and the documents refused:
/// a reference that matches no rule or correlation, a reference cycle, or
/// an alias naming a rule the correlation does not list.
pub fn resolve(base: &[RuleMeta], docs: Vec<CorrelationDoc>) -> (CorrelationSet, Vec<RuleError>) {
    let mut refused = Vec::new();
    let mut base_by_ref: HashMap<&str, usize> = HashMap::new();
    for (i, m) in base.iter().enumerate() {
        for r in [m.id.as_deref(), m.name.as_deref()].into_iter().flatten() {
            base_by_ref.entry(r).or_insert(i);
        }
    }
    let doc_refs = |d: &CorrelationDoc| -> Vec<String> {
        [d.meta.id.clone(), d.meta.name.clone()]
            .into_iter()
            .flatten()
            .collect()
    };
    // A correlation is accepted once each of its references is a base rule
    // or an already accepted correlation: repeat until nothing changes, so
    // chains resolve in any file order and cycles never do.
    let mut pending: Vec<Option<CorrelationDoc>> = docs.into_iter().map(Some).collect();
    let mut set = CorrelationSet::default();
    let mut corr_by_ref: HashMap<String, usize> = HashMap::new();
    loop {
        let mut progress = false;
        for slot in pending.iter_mut() {
            let Some(d) = slot else { continue };
            let targets: Option<Vec<Target>> = d
                .rules
                .iter()
                .map(|r| match base_by_ref.get(r.as_str()) {
                    Some(&i) => Some(Target::Base(i)),
                    None => corr_by_ref.get(r.as_str()).map(|&i| Target::Correlation(i)),
                })
                .collect();
            let Some(targets) = targets else { continue };
            let d = slot.take().expect("present");
            progress = true;
            // Names a target may be known by in `aliases`: the reference
            // used in `rules`, and the rule's own id and name.
            let names: Vec<Vec<String>> = targets
                .iter()
                .enumerate()
                .map(|(pos, t)| {
                    let meta = match *t {
                        Target::Base(i) => &base[i],
                        Target::Correlation(i) => &set.rules[i].doc.meta,
                    };
                    let mut v = vec![d.rules[pos].clone()];
                    v.extend(meta.id.clone());
                    v.extend(meta.name.clone());
                    v
                })
                .collect();
            let bad_alias = d.aliases.iter().find_map(|(alias, map)| {
                map.iter()
                    .find(|(r, _)| !names.iter().any(|n| n.contains(r)))
                    .map(|(r, _)| (alias, r))
            });
            if let Some((alias, r)) = bad_alias {
                refused.push(RuleError::new(
                    &d.meta.file,
                    d.rules_line,
                    format!("alias {alias:?} names rule {r:?}, which the correlation does not list in 'rules'"),
                ));
                continue;
            }
            let group_fields: Vec<Vec<String>> = names
                .iter()
                .map(|names| {
                    d.group_by
                        .iter()
                        .map(|g| {
                            d.aliases
                                .iter()
                                .find(|(a, _)| a == g)
                                .and_then(|(_, map)| map.iter().find(|(r, _)| names.contains(r)))
                                .map_or_else(|| g.clone(), |(_, f)| f.clone())
                        })
                        .collect()
                })
                .collect();
            for r in doc_refs(&d) {
                corr_by_ref.entry(r).or_insert(set.rules.len());
            }
            set.rules.push(Correlation {
                doc: d,
                targets,
                group_fields,
            });
        }
        if !progress {
            break;
        }
    }
    let all_names: HashSet<String> = pending.iter().flatten().flat_map(doc_refs).collect();
    for d in pending.into_iter().flatten() {
        let missing: Vec<&String> = d
            .rules
            .iter()
            .filter(|r| {
                !base_by_ref.contains_key(r.as_str()) && !corr_by_ref.contains_key(r.as_str())
            })
            .collect();
        let reason = match missing.iter().find(|r| !all_names.contains(**r)) {
            Some(r) => format!(
                "correlation refers to rule {r:?}, which is not loaded (no rule or correlation has that id or name)"
            ),
            None => format!(
                "correlation refers to {:?}, a correlation that was refused or that refers back to this one",
                missing.first().map_or("", |s| s.as_str())
            ),
        };
        refused.push(RuleError::new(&d.meta.file, d.rules_line, reason));
    }

    set.by_corr = vec![Vec::new(); set.rules.len()];
    for (ci, c) in set.rules.iter().enumerate() {
        for (pos, t) in c.targets.iter().enumerate() {
            match *t {
                Target::Base(b) => {
                    set.by_base.entry(b).or_default().push((ci, pos));
                    if !c.doc.generate {
                        set.silent_base.insert(b);
                    }
                }
                Target::Correlation(p) => {
                    set.by_corr[p].push((ci, pos));
                    if !c.doc.generate {
                        set.silent_corr.insert(p);
                    }
                }
            }
        }
    }
    (set, refused)
}

/// Bounds on a [`Correlator`]'s memory, per correlation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationLimits {
    /// Groups kept per correlation; beyond it the least recently updated
    /// groups are evicted.
    pub max_groups: usize,
    /// Entries (contributing events) kept per group; beyond it the oldest
    /// are evicted.
    pub max_entries: usize,
    /// Evidence items reported with one match; more are dropped and the
    /// match is flagged `truncated`.
    pub max_evidence: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        CorrelationLimits {
            max_groups: 10_000,
            max_entries: 1_000,
            max_evidence: 100,
        }
    }
}

/// Counters of one correlation rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelationStats {
    /// Matches emitted.
    pub matches: u64,
    /// Groups or entries dropped because a cap was reached.
    pub evictions: u64,
    /// Entries dropped because they were older than their group's window.
    pub late: u64,
    /// Groups currently held.
    pub groups: usize,
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationMatch<E> {
    /// Index of the correlation in [`CorrelationSet::rules`].
    pub correlation: usize,
    /// `(group-by name, value)` of the group.
    pub group: Vec<(String, String)>,
    /// The value the condition held for: the count (event, value or rule
    /// count), or the sum, average or percentile.
    pub value: f64,
    /// Time of the oldest contributing entry (ms since the epoch).
    pub first: i64,
    /// Time of the newest contributing entry.
    pub last: i64,
    /// Evidence of the contributing events, oldest first (capped).
    pub evidence: Vec<E>,
    /// Whether evidence was dropped because of the cap.
    pub truncated: bool,
}

#[derive(Debug)]
struct Entry<E> {
    time: i64,
    position: usize,
    value: Option<ObservedValue>,
    evidence: Vec<E>,
}

#[derive(Debug)]
struct Group<E> {
    entries: VecDeque<Entry<E>>,
    newest: i64,
    /// Text value → entries holding it (value_count, value_percentile share).
    counts: HashMap<String, u64>,
    /// Sum of numeric values (value_sum, value_avg).
    sum: f64,
}

impl<E> Group<E> {
    fn new(time: i64) -> Self {
        Group {
            entries: VecDeque::new(),
            newest: time,
            counts: HashMap::new(),
            sum: 0.0,
        }
    }

    fn insert(&mut self, e: Entry<E>) {
        match &e.value {
            Some(ObservedValue::Text(t)) => *self.counts.entry(t.clone()).or_default() += 1,
            Some(ObservedValue::Num(n)) => self.sum += n,
            None => {}
        }
        self.newest = self.newest.max(e.time);
        // Keep entries in time order; late-but-in-window entries are rare.
        let at = self.entries.partition_point(|x| x.time <= e.time);
        self.entries.insert(at, e);
    }

    fn pop_oldest(&mut self) -> Option<Entry<E>> {
        let e = self.entries.pop_front()?;
        match &e.value {
            Some(ObservedValue::Text(t)) => {
                if let Some(n) = self.counts.get_mut(t) {
                    *n -= 1;
                    if *n == 0 {
                        self.counts.remove(t);
                    }
                }
            }
            Some(ObservedValue::Num(n)) => self.sum -= n,
            None => {}
        }
        if self.entries.is_empty() {
            // Recomputed from scratch so float drift cannot accumulate.
            self.sum = 0.0;
        }
        Some(e)
    }

    fn expire(&mut self, span: i64) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.time < self.newest.saturating_sub(span))
        {
            self.pop_oldest();
        }
    }
}

#[derive(Debug)]
struct State<E> {
    groups: HashMap<Vec<String>, Group<E>>,
    stats: CorrelationStats,
}

/// Streaming evaluation of a [`CorrelationSet`]; `E` is the evidence kept
/// per contributing event (the event itself, or a reference to it).
#[derive(Debug)]
pub struct Correlator<E> {
    set: Arc<CorrelationSet>,
    limits: CorrelationLimits,
    states: Vec<State<E>>,
    /// Newest event time seen: the time of events without one, and the
    /// reference for expiring idle groups.
    clock: i64,
    fed: u64,
}

/// How many feeds between sweeps of idle groups.
const SWEEP_EVERY: u64 = 4096;

impl<E: Clone> Correlator<E> {
    /// A correlator with empty windows.
    pub fn new(set: Arc<CorrelationSet>, limits: CorrelationLimits) -> Self {
        let states = (0..set.rules.len())
            .map(|_| State {
                groups: HashMap::new(),
                stats: CorrelationStats::default(),
            })
            .collect();
        Correlator {
            set,
            limits: CorrelationLimits {
                max_groups: limits.max_groups.max(1),
                max_entries: limits.max_entries.max(1),
                max_evidence: limits.max_evidence,
            },
            states,
            clock: i64::MIN,
            fed: 0,
        }
    }

    /// The correlations evaluated.
    pub fn set(&self) -> &Arc<CorrelationSet> {
        &self.set
    }

    /// Counters of correlation `i`.
    pub fn stats(&self, i: usize) -> CorrelationStats {
        let s = &self.states[i];
        CorrelationStats {
            groups: s.groups.len(),
            ..s.stats
        }
    }

    /// Adds an observation with its evidence; returns the matches it
    /// completes, including those of correlations fed by other
    /// correlations' matches (chains), innermost first.
    pub fn feed(&mut self, obs: &Observation, evidence: E) -> Vec<CorrelationMatch<E>> {
        let time = match obs.time {
            Some(t) => {
                self.clock = self.clock.max(t);
                t
            }
            None if self.clock == i64::MIN => 0,
            None => self.clock,
        };
        self.fed += 1;
        if self.fed.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        let mut out = Vec::new();
        let mut queue: VecDeque<(ObservedItem, i64, Vec<E>)> = obs
            .items
            .iter()
            .map(|i| (i.clone(), time, vec![evidence.clone()]))
            .collect();
        while let Some((item, t, ev)) = queue.pop_front() {
            let Some(m) = self.add(&item, t, ev) else {
                continue;
            };
            let set = self.set.clone();
            for &(parent, pos) in &set.by_corr[m.correlation] {
                if let Some(item) = chained_item(&set, parent, pos, &m) {
                    queue.push_back((item, m.last, m.evidence.clone()));
                }
            }
            out.push(m);
        }
        out
    }

    fn add(
        &mut self,
        item: &ObservedItem,
        time: i64,
        evidence: Vec<E>,
    ) -> Option<CorrelationMatch<E>> {
        let c = &self.set.rules[item.correlation];
        let span = c.doc.timespan.ms;
        let limits = self.limits;
        let clock = self.clock;
        let state = &mut self.states[item.correlation];
        if !state.groups.contains_key(&item.group) && state.groups.len() >= limits.max_groups {
            evict_groups(state, limits.max_groups, clock, span);
        }
        let group = state
            .groups
            .entry(item.group.clone())
            .or_insert_with(|| Group::new(time));
        if time < group.newest.saturating_sub(span) {
            state.stats.late += 1;
            return None;
        }
        group.insert(Entry {
            time,
            position: item.position,
            value: item.value.clone(),
            evidence,
        });
        group.expire(span);
        while group.entries.len() > limits.max_entries {
            group.pop_oldest();
            state.stats.evictions += 1;
        }
        let value = aggregate(c, group, item)?;
        if !c.doc.condition.holds(value) {
            return None;
        }
        let group = state.groups.remove(&item.group).expect("group present");
        state.stats.matches += 1;
        let mut entries: Vec<Entry<E>> = group.entries.into();
        if c.doc.kind == CorrelationType::TemporalOrdered {
            // Only the events of the sequence found, not those around it.
            let mut stage = 0;
            entries.retain(|e| {
                let keep = stage < c.targets.len() && e.position == stage;
                stage += usize::from(keep);
                keep
            });
        }
        let first = entries.first().map_or(time, |e| e.time);
        let last = entries.last().map_or(time, |e| e.time);
        let mut evidence = Vec::new();
        let mut truncated = false;
        for e in entries {
            for x in e.evidence {
                if evidence.len() < limits.max_evidence {
                    evidence.push(x);
                } else {
                    truncated = true;
                }
            }
        }
        Some(CorrelationMatch {
            correlation: item.correlation,
            group: c
                .doc
                .group_by
                .iter()
                .cloned()
                .zip(item.group.iter().cloned())
                .collect(),
            value,
            first,
            last,
            evidence,
            truncated,
        })
    }

    /// Drops groups whose newest entry has left the window (by the clock).
    fn sweep(&mut self) {
        let clock = self.clock;
        for (i, state) in self.states.iter_mut().enumerate() {
            let span = self.set.rules[i].doc.timespan.ms;
            state
                .groups
                .retain(|_, g| g.newest >= clock.saturating_sub(span));
        }
    }
}

/// Makes room for a new group: drops idle groups first, then the least
/// recently updated sixteenth (at least one), counted as evictions.
fn evict_groups<E>(state: &mut State<E>, cap: usize, clock: i64, span: i64) {
    state
        .groups
        .retain(|_, g| g.newest >= clock.saturating_sub(span));
    if state.groups.len() < cap {
        return;
    }
    let n = (state.groups.len() / 16).max(1);
    let mut ages: Vec<(i64, Vec<String>)> = state
        .groups
        .iter()
        .map(|(k, g)| (g.newest, k.clone()))
        .collect();
    ages.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
    for (_, k) in ages.into_iter().take(n) {
        state.groups.remove(&k);
        state.stats.evictions += 1;
    }
}

/// The value the condition is checked against, for the group after the
/// entry of `item` was added.
fn aggregate<E>(c: &Correlation, g: &Group<E>, item: &ObservedItem) -> Option<f64> {
    let n = g.entries.len();
    Some(match c.doc.kind {
        CorrelationType::EventCount => n as f64,
        CorrelationType::ValueCount => g.counts.len() as f64,
        CorrelationType::ValueSum => g.sum,
        CorrelationType::ValueAvg => {
            if n == 0 {
                return None;
            }
            g.sum / n as f64
        }
        CorrelationType::ValuePercentile => match c.doc.condition.percentile {
            Some(p) => {
                let mut vals: Vec<f64> = g
                    .entries
                    .iter()
                    .filter_map(|e| match e.value {
                        Some(ObservedValue::Num(x)) => Some(x),
                        _ => None,
                    })
                    .collect();
                if vals.is_empty() {
                    return None;
                }
                // Nearest-rank percentile.
                let rank = ((p / 100.0) * vals.len() as f64).ceil().max(1.0) as usize;
                let k = rank.min(vals.len()) - 1;
                let (_, v, _) = vals.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
                *v
            }
            None => {
                let Some(ObservedValue::Text(t)) = &item.value else {
                    return None;
                };
                let seen = g.counts.get(t).copied().unwrap_or(0);
                100.0 * seen as f64 / n.max(1) as f64
            }
        },
        CorrelationType::Temporal => {
            let mut seen: Vec<bool> = vec![false; c.targets.len()];
            for e in &g.entries {
                seen[e.position] = true;
            }
            seen.iter().filter(|s| **s).count() as f64
        }
        CorrelationType::TemporalOrdered => {
            // Longest prefix of `rules` found in time order (greedy, which
            // finds a full sequence whenever one exists).
            let mut stage = 0;
            for e in &g.entries {
                if stage < c.targets.len() && e.position == stage {
                    stage += 1;
                }
            }
            stage as f64
        }
    })
}

/// The item a correlation match contributes to a parent correlation:
/// group-by values (and the `field` value) are read from the match's group.
fn chained_item<E>(
    set: &CorrelationSet,
    parent: usize,
    pos: usize,
    m: &CorrelationMatch<E>,
) -> Option<ObservedItem> {
    let p = &set.rules[parent];
    let lookup = |f: &str| -> Option<String> {
        m.group.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone())
    };
    let group: Option<Vec<String>> = p.group_fields[pos].iter().map(|f| lookup(f)).collect();
    let value = if p.doc.kind.needs_field() {
        let f = &p.doc.condition.fields;
        if p.doc.kind.numeric() || p.doc.condition.percentile.is_some() {
            // A correlation's own value (a count, a sum) when the field
            // names no group-by value of the match.
            Some(ObservedValue::Num(
                lookup(&f[0])
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(m.value),
            ))
        } else {
            let parts: Option<Vec<String>> = f.iter().map(|x| lookup(x)).collect();
            Some(ObservedValue::Text(parts?.join("\u{1f}")))
        }
    } else {
        None
    };
    Some(ObservedItem {
        correlation: parent,
        position: pos,
        group: group?,
        value,
    })
}

/// Names of the time fields read by [`event_time`], in order.
pub const TIME_FIELDS: &[&str] = &["@timestamp", "TimeCreated", "UtcTime", "EventTime"];

/// The event's own time in ms since the epoch: `@timestamp` (ECS), the
/// `evtx_dump` `Event.System.TimeCreated.#attributes.SystemTime`, or a flat
/// `TimeCreated`, `UtcTime` or `EventTime` (RFC 3339, or `YYYY-MM-DD
/// HH:MM:SS[.fff]` read as UTC). `None` when none is present and readable.
pub fn event_time(ev: &Value) -> Option<i64> {
    ev.as_object().and_then(event_time_map)
}

/// [`event_time`] for an event given as its map.
pub fn event_time_map(ev: &Map<String, Value>) -> Option<i64> {
    if let Some(t) = ev.get("@timestamp").and_then(parse_time_value) {
        return Some(t);
    }
    let sys = ev
        .get("Event")
        .and_then(|e| e.get("System"))
        .and_then(|s| s.get("TimeCreated"));
    if let Some(t) = sys.and_then(|tc| {
        tc.get("#attributes")
            .and_then(|a| a.get("SystemTime"))
            .or_else(|| tc.get("SystemTime"))
            .and_then(parse_time_value)
    }) {
        return Some(t);
    }
    TIME_FIELDS[1..]
        .iter()
        .find_map(|f| ev.get(*f).and_then(parse_time_value))
}

fn parse_time_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_time(s),
        // winlogbeat may nest `TimeCreated: {SystemTime: ..}`.
        Value::Object(o) => o.get("SystemTime").and_then(parse_time_value),
        _ => None,
    }
}

/// Parses an RFC 3339 time, or `YYYY-MM-DD HH:MM:SS[.f]` as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_millis());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// Formats ms since the epoch as RFC 3339 (UTC, milliseconds).
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{load_source, LoadReport};
    use crate::value::Placeholders;
    use crate::views::JsonView;
    use serde_json::json;

    /// Rules `a`, `b`, `c` (matching `rule: a` etc.) plus `extra` YAML.
    fn load(extra: &str) -> LoadReport {
        let mut src = String::new();
        for n in ["a", "b", "c"] {
            src.push_str(&format!(
                "title: Rule {n}\nname: {n}\nlogsource:\n    product: test\ndetection:\n    sel:\n        rule: {n}\n    condition: sel\n---\n"
            ));
        }
        src.push_str(extra);
        let mut r = LoadReport::default();
        let ph = Placeholders::default();
        load_source(&src, "t.yml", &ph, &mut r);
        r.finish(&ph);
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        r
    }

    struct Harness {
        report: LoadReport,
        c: Correlator<usize>,
        n: usize,
    }

    impl Harness {
        fn new(extra: &str, limits: CorrelationLimits) -> Harness {
            let report = load(extra);
            let c = Correlator::new(Arc::new(report.correlations.clone()), limits);
            Harness { report, c, n: 0 }
        }

        /// Feeds `ev` for every base rule it matches; evidence is a counter.
        fn feed(&mut self, ev: serde_json::Value) -> Vec<CorrelationMatch<usize>> {
            let mut out = Vec::new();
            self.n += 1;
            for (i, r) in self.report.rules.iter().enumerate() {
                if !r.matches(&JsonView(&ev)) {
                    continue;
                }
                if let Some(obs) =
                    self.report
                        .correlations
                        .observe(i, &JsonView(&ev), event_time(&ev))
                {
                    out.extend(self.c.feed(&obs, self.n));
                }
            }
            out
        }
    }

    fn at(secs: i64) -> String {
        format_ms(1_700_000_000_000 + secs * 1000)
    }

    const COUNT: &str = "title: Five a\ncorrelation:\n    type: event_count\n    rules: [a]\n    group-by: [ip]\n    timespan: 1m\n    condition:\n        gte: 5\n";

    #[test]
    fn event_count_window_edges_and_reset() {
        let mut h = Harness::new(COUNT, CorrelationLimits::default());
        // 0..45 s: four events, no match; a fifth at 61 s: the one at 0 s left the window.
        for t in [0, 15, 30, 45] {
            assert!(h
                .feed(json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(t)}))
                .is_empty());
        }
        assert!(h
            .feed(json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(61)}))
            .is_empty());
        // At 75 s the window [15, 75] holds 15, 30, 45, 61, 75: exactly 60 s is inside.
        let m = h.feed(json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(75)}));
        assert_eq!(m.len(), 1);
        let m = &m[0];
        assert_eq!(m.value, 5.0);
        assert_eq!(m.group, [("ip".to_string(), "1.2.3.4".to_string())]);
        assert_eq!(m.evidence, [2, 3, 4, 5, 6]);
        assert_eq!(m.last - m.first, 60_000);
        assert!(!m.truncated);
        // The window was reset: four more events do not fire again.
        for t in [76, 77, 78, 79] {
            assert!(h
                .feed(json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(t)}))
                .is_empty());
        }
        assert_eq!(
            h.feed(json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(80)}))
                .len(),
            1
        );
        assert_eq!(h.c.stats(0).matches, 2);
        // Events of other rules, other groups or without the group field do not count.
        for t in 100..104 {
            h.feed(json!({"rule": "a", "ip": "5.6.7.8", "@timestamp": at(t)}));
            h.feed(json!({"rule": "a", "@timestamp": at(t)}));
            h.feed(json!({"rule": "b", "ip": "5.6.7.8", "@timestamp": at(t)}));
        }
        assert!(h
            .feed(json!({"rule": "a", "ip": "9.9.9.9", "@timestamp": at(105)}))
            .is_empty());
        assert_eq!(
            h.feed(json!({"rule": "a", "ip": "5.6.7.8", "@timestamp": at(105)}))
                .len(),
            1
        );
    }

    #[test]
    fn late_events_and_events_without_time() {
        let mut h = Harness::new(COUNT, CorrelationLimits::default());
        h.feed(json!({"rule": "a", "ip": "x", "@timestamp": at(1000)}));
        // Older than the group's window: dropped and counted.
        assert!(h
            .feed(json!({"rule": "a", "ip": "x", "@timestamp": at(900)}))
            .is_empty());
        assert_eq!(h.c.stats(0).late, 1);
        // Out of order but within the window: counted. No time: the clock's.
        h.feed(json!({"rule": "a", "ip": "x", "@timestamp": at(990)}));
        h.feed(json!({"rule": "a", "ip": "x"}));
        h.feed(json!({"rule": "a", "ip": "x", "@timestamp": at(991)}));
        let m = h.feed(json!({"rule": "a", "ip": "x", "@timestamp": at(995)}));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].first, 1_700_000_000_000 + 990_000);
        assert_eq!(m[0].last, 1_700_000_000_000 + 1_000_000);
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let y = "title: Spray\ncorrelation:\n    type: value_count\n    rules: [a]\n    group-by: [ip]\n    timespan: 1h\n    condition:\n        field: user\n        gt: 2\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        for u in ["u1", "u1", "u2", "u2"] {
            assert!(h
                .feed(json!({"rule": "a", "ip": "i", "user": u, "@timestamp": at(1)}))
                .is_empty());
        }
        // Missing field: not counted.
        assert!(h
            .feed(json!({"rule": "a", "ip": "i", "@timestamp": at(1)}))
            .is_empty());
        let m = h.feed(json!({"rule": "a", "ip": "i", "user": "u3", "@timestamp": at(2)}));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].value, 3.0);
        assert_eq!(m[0].evidence.len(), 5);
    }

    #[test]
    fn temporal_any_order_within_the_window() {
        let y = "title: Recon\ncorrelation:\n    type: temporal\n    rules: [a, b, c]\n    group-by: [host]\n    timespan: 5m\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        h.feed(json!({"rule": "c", "host": "h", "@timestamp": at(0)}));
        h.feed(json!({"rule": "a", "host": "h", "@timestamp": at(100)}));
        // b at 301 s: c (0 s) has left the 300 s window.
        assert!(h
            .feed(json!({"rule": "b", "host": "h", "@timestamp": at(301)}))
            .is_empty());
        let m = h.feed(json!({"rule": "c", "host": "h", "@timestamp": at(302)}));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].value, 3.0);
        assert_eq!(m[0].evidence, [2, 3, 4]);
    }

    #[test]
    fn temporal_ordered_needs_the_listed_order() {
        let y = "title: Ordered\ncorrelation:\n    type: temporal_ordered\n    rules: [a, b]\n    group-by: [user]\n    timespan: 1m\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        h.feed(json!({"rule": "b", "user": "u", "@timestamp": at(0)}));
        assert!(h
            .feed(json!({"rule": "a", "user": "u", "@timestamp": at(1)}))
            .is_empty());
        let m = h.feed(json!({"rule": "b", "user": "u", "@timestamp": at(2)}));
        assert_eq!(m.len(), 1);
        // Too far apart.
        h.feed(json!({"rule": "a", "user": "v", "@timestamp": at(10)}));
        assert!(h
            .feed(json!({"rule": "b", "user": "v", "@timestamp": at(71)}))
            .is_empty());
    }

    #[test]
    fn value_sum_avg_and_percentile() {
        let y = "title: Sum\ncorrelation:\n    type: value_sum\n    rules: [a]\n    group-by: [ip]\n    timespan: 1h\n    condition:\n        field: bytes\n        gt: 1000\n---\ntitle: Avg\ncorrelation:\n    type: value_avg\n    rules: [b]\n    group-by: [ip]\n    timespan: 1h\n    condition:\n        field: bytes\n        gte: 500\n        lt: 600\n---\ntitle: Rare\ncorrelation:\n    type: value_percentile\n    rules: [c]\n    group-by: [host]\n    timespan: 1d\n    condition:\n        field: image\n        lte: 10\n---\ntitle: P90\ncorrelation:\n    type: value_percentile\n    rules: [c]\n    group-by: [host]\n    timespan: 1d\n    condition:\n        field: ms\n        percentile: 90\n        gt: 100\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        assert!(h
            .feed(json!({"rule": "a", "ip": "i", "bytes": 600, "@timestamp": at(0)}))
            .is_empty());
        assert!(h
            .feed(json!({"rule": "a", "ip": "i", "bytes": "not a number", "@timestamp": at(1)}))
            .is_empty());
        let m = h.feed(json!({"rule": "a", "ip": "i", "bytes": "401", "@timestamp": at(2)}));
        assert_eq!((m.len(), m[0].value), (1, 1001.0));
        // Average: 400 → 400, 700 → 550 (in [500, 600)).
        assert!(h
            .feed(json!({"rule": "b", "ip": "i", "bytes": 400, "@timestamp": at(0)}))
            .is_empty());
        let m = h.feed(json!({"rule": "b", "ip": "i", "bytes": 700, "@timestamp": at(1)}));
        assert_eq!((m.len(), m[0].value), (1, 550.0));
        // Share of an image in the window: 10 common ones, then a rare one
        // (1 of 11 = 9.1% <= 10%); P90 of `ms` is not above 100 meanwhile.
        let mut fired = Vec::new();
        for i in 0..10 {
            fired.extend(h.feed(json!({"rule": "c", "host": "h", "image": "common.exe", "ms": 10 + i, "@timestamp": at(i)})));
        }
        assert!(fired.is_empty(), "{fired:?}");
        let m = h.feed(
            json!({"rule": "c", "host": "h", "image": "rare.exe", "ms": 20, "@timestamp": at(11)}),
        );
        assert_eq!(m.len(), 1);
        assert_eq!(
            h.report.correlations.rules[m[0].correlation].doc.meta.title,
            "Rare"
        );
        assert!((m[0].value - 100.0 / 11.0).abs() < 1e-9);
        // Nearest-rank P90 of 11 values: the 10th smallest. Two slow ones push it above 100.
        assert!(h.feed(json!({"rule": "c", "host": "h", "image": "common.exe", "ms": 500, "@timestamp": at(12)})).is_empty());
        let m = h.feed(json!({"rule": "c", "host": "h", "image": "common.exe", "ms": 900, "@timestamp": at(13)}));
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].value, 500.0);
    }

    #[test]
    fn aliases_map_fields_per_rule() {
        let y = "title: Error then connection\ncorrelation:\n    type: temporal\n    rules: [a, b]\n    group-by: [internal_ip, remote_ip]\n    timespan: 10s\n    aliases:\n        internal_ip:\n            a: destination.ip\n            b: source.ip\n        remote_ip:\n            a: source.ip\n            b: destination.ip\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        let c = &h.report.correlations.rules[0];
        assert_eq!(c.group_fields[0], ["destination.ip", "source.ip"]);
        assert_eq!(c.group_fields[1], ["source.ip", "destination.ip"]);
        h.feed(json!({"rule": "a", "source": {"ip": "8.8.8.8"}, "destination": {"ip": "10.0.0.1"}, "@timestamp": at(0)}));
        // Same addresses, not swapped: another group.
        assert!(h.feed(json!({"rule": "b", "source": {"ip": "8.8.8.8"}, "destination": {"ip": "10.0.0.1"}, "@timestamp": at(1)})).is_empty());
        let m = h.feed(json!({"rule": "b", "source": {"ip": "10.0.0.1"}, "destination": {"ip": "8.8.8.8"}, "@timestamp": at(2)}));
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].group,
            [
                ("internal_ip".to_string(), "10.0.0.1".to_string()),
                ("remote_ip".to_string(), "8.8.8.8".to_string())
            ]
        );
        // An alias naming a rule the correlation does not list is refused.
        let bad = y.replace("            b: source.ip\n", "            zzz: source.ip\n");
        let mut r = LoadReport::default();
        load_source(
            &bad.replace("rules: [a, b]", "rules: [x]"),
            "t.yml",
            &Placeholders::default(),
            &mut r,
        );
        let mut src = String::from("title: x\nname: x\nlogsource:\n    product: t\ndetection:\n    s:\n        a: 1\n    condition: s\n");
        src.push_str("---\n");
        src.push_str(
            &bad.replace("rules: [a, b]", "rules: [x]")
                .replace("a: destination.ip", "x: destination.ip")
                .replace("a: source.ip", "x: source.ip"),
        );
        let mut r = LoadReport::default();
        load_source(&src, "t.yml", &Placeholders::default(), &mut r);
        r.finish(&Placeholders::default());
        assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
        assert!(
            r.refused[0].reason.contains("\"zzz\""),
            "{}",
            r.refused[0].reason
        );
    }

    #[test]
    fn caps_evict_and_count() {
        let limits = CorrelationLimits {
            max_groups: 2,
            max_entries: 3,
            max_evidence: 2,
        };
        let mut h = Harness::new(COUNT.replace("gte: 5", "gte: 4").as_str(), limits);
        for (t, ip) in [(0, "g1"), (1, "g2"), (2, "g3")] {
            h.feed(json!({"rule": "a", "ip": ip, "@timestamp": at(t)}));
        }
        let s = h.c.stats(0);
        assert_eq!((s.groups, s.evictions), (2, 1));
        // g1 (the oldest) was evicted: three more g1 events start over.
        for t in 3..6 {
            assert!(h
                .feed(json!({"rule": "a", "ip": "g3", "@timestamp": at(t)}))
                .is_empty());
        }
        // The entry cap (3) keeps the count below 4: entries are evicted instead.
        assert!(h
            .feed(json!({"rule": "a", "ip": "g3", "@timestamp": at(7)}))
            .is_empty());
        assert!(h.c.stats(0).evictions >= 2);
    }

    #[test]
    fn evidence_is_capped_and_flagged() {
        let limits = CorrelationLimits {
            max_evidence: 2,
            ..CorrelationLimits::default()
        };
        let mut h = Harness::new(COUNT, limits);
        let mut m = Vec::new();
        for t in 0..5 {
            m = h.feed(json!({"rule": "a", "ip": "i", "@timestamp": at(t)}));
        }
        assert_eq!(m[0].evidence, [1, 2]);
        assert!(m[0].truncated);
    }

    #[test]
    fn chained_correlations_and_generate() {
        let y = "title: Brute force then success\ncorrelation:\n    type: temporal_ordered\n    rules: [many_a, b]\n    group-by: [user]\n    timespan: 10m\n---\ntitle: Many a\nname: many_a\ncorrelation:\n    type: event_count\n    rules: [a]\n    group-by: [user]\n    timespan: 10m\n    condition:\n        gte: 3\n---\ntitle: C with generate\ncorrelation:\n    type: event_count\n    rules: [c]\n    timespan: 1m\n    generate: true\n    condition:\n        gte: 2\n";
        let mut h = Harness::new(y, CorrelationLimits::default());
        let set = &h.report.correlations;
        let outer = set
            .rules
            .iter()
            .position(|c| c.doc.meta.title.starts_with("Brute"))
            .unwrap();
        let inner = set
            .rules
            .iter()
            .position(|c| c.doc.meta.title == "Many a")
            .unwrap();
        assert!(inner < outer, "a correlation follows the ones it refers to");
        assert!(!set.base_reports(0) && !set.base_reports(1));
        assert!(set.base_reports(2), "generate: true keeps c's own matches");
        assert!(!set.correlation_reports(inner) && set.correlation_reports(outer));
        // b before the failures: no sequence.
        h.feed(json!({"rule": "b", "user": "u", "@timestamp": at(0)}));
        h.feed(json!({"rule": "a", "user": "u", "@timestamp": at(1)}));
        h.feed(json!({"rule": "a", "user": "u", "@timestamp": at(2)}));
        let m = h.feed(json!({"rule": "a", "user": "u", "@timestamp": at(3)}));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].correlation, inner);
        let m = h.feed(json!({"rule": "b", "user": "u", "@timestamp": at(4)}));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].correlation, outer);
        assert_eq!(m[0].evidence, [2, 3, 4, 5]);
        // No group-by: one global group.
        h.feed(json!({"rule": "c", "@timestamp": at(5)}));
        assert_eq!(h.feed(json!({"rule": "c", "@timestamp": at(6)})).len(), 1);
    }

    #[test]
    fn event_times() {
        let t = |v: serde_json::Value| event_time(&v);
        assert_eq!(
            t(json!({"@timestamp": "2024-01-01T00:00:01.5Z"})),
            Some(1_704_067_201_500)
        );
        assert_eq!(
            t(
                json!({"Event": {"System": {"TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:01.000000Z"}}}}})
            ),
            Some(1_704_067_201_000)
        );
        assert_eq!(
            t(json!({"UtcTime": "2024-01-01 00:00:01.250"})),
            Some(1_704_067_201_250)
        );
        assert_eq!(
            t(json!({"TimeCreated": {"SystemTime": "2024-01-01T00:00:01Z"}})),
            Some(1_704_067_201_000)
        );
        assert_eq!(
            t(json!({"EventTime": "2024-01-01 00:00:01"})),
            Some(1_704_067_201_000)
        );
        assert_eq!(t(json!({"@timestamp": "yesterday"})), None);
        assert_eq!(t(json!({"msg": 1})), None);
        assert_eq!(Timespan::parse("90m").unwrap().ms, 5_400_000);
        assert!(Timespan::parse("0s").is_err());
        assert!(Timespan::parse("5x").is_err());
        assert!(Timespan::parse("m").is_err());
    }

    #[test]
    fn observations_round_trip_as_json() {
        let h = Harness::new(COUNT, CorrelationLimits::default());
        let ev = json!({"rule": "a", "ip": "1.2.3.4", "@timestamp": at(0)});
        let obs = h
            .report
            .correlations
            .observe(0, &JsonView(&ev), event_time(&ev))
            .unwrap();
        let back: Observation =
            serde_json::from_value(serde_json::to_value(&obs).unwrap()).unwrap();
        assert_eq!(back, obs);
        assert!(h
            .report
            .correlations
            .observe(1, &JsonView(&ev), None)
            .is_none());
    }
}
