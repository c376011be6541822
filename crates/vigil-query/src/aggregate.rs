//! Running aggregation states (`count`, `dc`, `sum`, `avg`, `min`, `max`,
//! percentiles) and the group table `stats` and `timechart` fill.
//!
//! States are exact and mergeable (timechart folds small series into
//! `other`). `dc` and percentiles keep the values they saw; those values are
//! charged to a shared [`Budget`] so that memory stays bounded, and when it
//! runs out the result is flagged partial instead of growing further.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::pipeline::{Agg, AggFn};
use crate::values::{as_number, cmp_values, each_scalar, key_text, number_value};
use crate::{MAX_GROUPS, MAX_STORED_VALUES};

/// Shared memory limits of one execution, and why the result is partial.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Values kept by `dc` and percentile states so far.
    pub stored: usize,
    /// Reasons the result is incomplete, in the order they happened.
    pub partial: Vec<String>,
}

impl Budget {
    /// Records a reason once.
    pub fn flag(&mut self, reason: String) {
        if !self.partial.contains(&reason) {
            self.partial.push(reason);
        }
    }

    fn charge(&mut self) -> bool {
        if self.stored >= MAX_STORED_VALUES {
            self.flag(format!(
                "dc() and percentiles kept at most {MAX_STORED_VALUES} values; later values were ignored"
            ));
            return false;
        }
        self.stored += 1;
        true
    }
}

/// The running state of one aggregation in one group.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Count(u64),
    Distinct(HashSet<String>),
    Sum {
        sum: f64,
        n: u64,
    },
    Extreme {
        num: Option<f64>,
        text: Option<String>,
    },
    Values(Vec<f64>),
}

impl State {
    pub fn new(func: AggFn) -> State {
        match func {
            AggFn::Count => State::Count(0),
            AggFn::DistinctCount => State::Distinct(HashSet::new()),
            AggFn::Sum | AggFn::Avg => State::Sum { sum: 0.0, n: 0 },
            AggFn::Min | AggFn::Max => State::Extreme {
                num: None,
                text: None,
            },
            AggFn::Percentile(_) => State::Values(Vec::new()),
        }
    }

    /// Adds the value of `weight` events that hold the same value (`None`
    /// when the field is absent): counts grow by `weight`, a sum by
    /// `x·weight`, percentiles keep `weight` copies; `dc`, `min` and `max`
    /// do not change with repeats.
    pub fn add(&mut self, agg: &Agg, v: Option<&Value>, budget: &mut Budget, weight: u64) {
        if let State::Count(c) = self {
            if agg.field.is_none() || v.is_some_and(|v| !v.is_null()) {
                *c += weight;
            }
            return;
        }
        let Some(v) = v else { return };
        let max = agg.func == AggFn::Max;
        each_scalar(v, &mut |s| match self {
            State::Count(_) => {}
            State::Distinct(set) => {
                let k = key_text(s);
                if !set.contains(&k) && budget.charge() {
                    set.insert(k);
                }
            }
            State::Sum { sum, n } => {
                if let Some(x) = as_number(s) {
                    *sum += if weight == 1 { x } else { x * weight as f64 };
                    *n += weight;
                }
            }
            State::Extreme { num, text } => match as_number(s) {
                Some(x) => {
                    let better = num.is_none_or(|cur| if max { x > cur } else { x < cur });
                    if better {
                        *num = Some(x);
                    }
                }
                None => {
                    let t = key_text(s);
                    let better = text
                        .as_ref()
                        .is_none_or(|cur| if max { &t > cur } else { &t < cur });
                    if better {
                        *text = Some(t);
                    }
                }
            },
            State::Values(vals) => {
                if let Some(x) = as_number(s) {
                    for _ in 0..weight {
                        if !budget.charge() {
                            break;
                        }
                        vals.push(x);
                    }
                }
            }
        });
    }

    /// Folds `other` (a state of the same aggregation) into this one.
    pub fn merge(&mut self, other: State, max: bool) {
        match (self, other) {
            (State::Count(a), State::Count(b)) => *a += b,
            (State::Distinct(a), State::Distinct(b)) => a.extend(b),
            (State::Sum { sum, n }, State::Sum { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (State::Extreme { num, text }, State::Extreme { num: n2, text: t2 }) => {
                if let Some(x) = n2 {
                    if num.is_none_or(|cur| if max { x > cur } else { x < cur }) {
                        *num = Some(x);
                    }
                }
                if let Some(t) = t2 {
                    if text
                        .as_ref()
                        .is_none_or(|cur| if max { &t > cur } else { &t < cur })
                    {
                        *text = Some(t);
                    }
                }
            }
            (State::Values(a), State::Values(b)) => a.extend(b),
            _ => {}
        }
    }

    /// The aggregation's result; `null` when no value fed it (except counts, which are 0).
    pub fn value(&self, func: AggFn) -> Value {
        match self {
            State::Count(c) => Value::from(*c),
            State::Distinct(s) => Value::from(s.len() as u64),
            State::Sum { sum, n } => match (func, *n) {
                (AggFn::Avg, 0) => Value::Null,
                (AggFn::Avg, n) => number_value(*sum / n as f64),
                (_, 0) => Value::Null,
                _ => number_value(*sum),
            },
            State::Extreme { num, text } => match (num, text) {
                (Some(x), _) => number_value(*x),
                (None, Some(t)) => Value::from(t.clone()),
                (None, None) => Value::Null,
            },
            State::Values(vals) => {
                let AggFn::Percentile(p) = func else {
                    return Value::Null;
                };
                percentile(vals, p).map_or(Value::Null, number_value)
            }
        }
    }
}

/// Nearest-rank percentile: the smallest value with at least `p`% of the
/// values at or below it.
fn percentile(vals: &[f64], p: u8) -> Option<f64> {
    if vals.is_empty() {
        return None;
    }
    let mut v = vals.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (f64::from(p) / 100.0 * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

/// One group of a [`Groups`] table.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The group's values of the `by` fields, as first seen.
    pub key: Vec<Value>,
    /// Events that fell into the group.
    pub events: u64,
    /// One state per aggregation.
    pub states: Vec<State>,
}

/// Aggregation states per combination of `by` values, capped at [`MAX_GROUPS`].
#[derive(Debug)]
pub(crate) struct Groups {
    pub aggs: Vec<Agg>,
    /// Keyed by [`group_key`] of the `by` values.
    pub map: HashMap<String, Group>,
    cap: usize,
}

/// Most key combinations one event may fan out to when `by` fields hold arrays.
const MAX_FANOUT: usize = 64;

impl Groups {
    pub fn new(aggs: Vec<Agg>) -> Groups {
        Groups {
            aggs,
            map: HashMap::new(),
            cap: MAX_GROUPS,
        }
    }

    /// Adds `weight` like events under each combination of their `by`
    /// values (`keys`, one list per by-field); `get` reads an
    /// aggregation's field.
    pub fn add<'v>(
        &mut self,
        keys: &[Vec<&Value>],
        get: &dyn Fn(&str) -> Option<&'v Value>,
        budget: &mut Budget,
        weight: u64,
    ) {
        if keys.iter().any(Vec::is_empty) {
            return;
        }
        // The common case, every `by` value a scalar, needs no fan-out.
        if keys.iter().all(|k| k.len() == 1) {
            let combo: Vec<&Value> = keys.iter().map(|k| k[0]).collect();
            self.add_one(&combo, get, budget, weight);
            return;
        }
        let mut combos: Vec<Vec<&Value>> = vec![Vec::new()];
        for values in keys {
            let mut next = Vec::new();
            for c in &combos {
                for v in values {
                    if next.len() == MAX_FANOUT {
                        break;
                    }
                    let mut c = c.clone();
                    c.push(*v);
                    next.push(c);
                }
            }
            combos = next;
        }
        for combo in combos {
            self.add_one(&combo, get, budget, weight);
        }
    }

    fn add_one<'v>(
        &mut self,
        combo: &[&Value],
        get: &dyn Fn(&str) -> Option<&'v Value>,
        budget: &mut Budget,
        weight: u64,
    ) {
        let text = group_key(combo);
        let group = match self.map.get_mut(&text) {
            Some(g) => g,
            None => {
                if self.map.len() >= self.cap {
                    budget.flag(format!(
                        "more than {} groups; events of further groups were left out",
                        self.cap
                    ));
                    return;
                }
                self.map.entry(text).or_insert_with(|| Group {
                    key: combo.iter().map(|v| (*v).clone()).collect(),
                    events: 0,
                    states: self.aggs.iter().map(|a| State::new(a.func)).collect(),
                })
            }
        };
        group.events += weight;
        for (state, agg) in group.states.iter_mut().zip(&self.aggs) {
            let v = agg.field.as_deref().and_then(get);
            state.add(agg, v, budget, weight);
        }
    }

    /// The groups ordered by their `by` values; groups whose values
    /// compare equal (`200` and `200.0`) by their text, so the order never
    /// depends on the hash map's.
    pub fn sorted(self) -> Vec<Group> {
        let mut groups: Vec<(String, Group)> = self.map.into_iter().collect();
        groups.sort_by(|(ta, a), (tb, b)| {
            a.key
                .iter()
                .zip(&b.key)
                .map(|(x, y)| cmp_values(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| ta.cmp(tb))
        });
        groups.into_iter().map(|(_, g)| g).collect()
    }
}

/// One string for a combination of `by` values: each value's text with its
/// length in front, so that no two combinations can run together.
fn group_key(combo: &[&Value]) -> String {
    let mut key = String::new();
    for v in combo {
        let text = match v {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        key.push_str(&text.len().to_string());
        key.push(':');
        key.push_str(&text);
    }
    key
}

/// The values of `v` that a `by` field groups under (none when absent).
pub(crate) fn by_values(v: Option<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    if let Some(v) = v {
        each_scalar(v, &mut |s| {
            if out.len() < MAX_FANOUT {
                out.push(s)
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_never_run_together() {
        let (a, b, c, d) = (
            Value::from("a"),
            Value::from("1:b"),
            Value::from("a1:"),
            Value::from("b"),
        );
        assert_ne!(group_key(&[&a, &b]), group_key(&[&c, &d]));
        // A number and its text are one group, as numbers are read from text.
        assert_eq!(
            group_key(&[&Value::from(22)]),
            group_key(&[&Value::from("22")])
        );
    }

    #[test]
    fn percentile_nearest_rank() {
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 5), Some(15.0));
        assert_eq!(percentile(&v, 30), Some(20.0));
        assert_eq!(percentile(&v, 40), Some(20.0));
        assert_eq!(percentile(&v, 50), Some(35.0));
        assert_eq!(percentile(&v, 99), Some(50.0));
        assert_eq!(percentile(&[], 50), None);
    }
}
