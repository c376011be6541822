//! Runs a [`Pipeline`] over events pushed one at a time.
//!
//! Each pipe is a stage. Streaming stages (`where`, `head`, `fields`,
//! `dedup`) pass or drop each record as it arrives; blocking stages (`sort`,
//! `stats`, `timechart`, `top`, `rare`) hold their input and release their
//! result when the scan ends, feeding the stages after them. Records are
//! events until the first aggregating pipe and table rows after it, so
//! `fields` or `dedup` after a `stats` work on columns.
//!
//! Memory is bounded by [`MAX_GROUPS`](crate::MAX_GROUPS), [`MAX_SORT`], [`MAX_DEDUP`] and
//! [`MAX_STORED_VALUES`](crate::MAX_STORED_VALUES); hitting one makes the
//! output partial with a reason rather than growing. `head` lets the scan
//! stop early: see [`Executor::done`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use vigil_event::Event;

use crate::aggregate::{by_values, Budget, Group, Groups, State};
use crate::error::QueryError;
use crate::pipeline::{AggFn, CmpOp, Cond, Pipe, Pipeline, Scalar, SortKey, Timechart, Top};
use crate::values::{as_number, cmp_values, folded_text, key_text, number_value};
use crate::{MAX_BUCKETS, MAX_DEDUP, MAX_SORT};

/// A table result (`stats`, `timechart`, `top`, `rare` and the pipes after them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// One time bucket of a `timechart`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, RFC 3339 UTC.
    pub time: String,
    /// Value per series (or per aggregation when there is no `by`).
    pub values: Map<String, Value>,
}

/// What a pipeline produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipeOutput {
    /// Events, in pipeline order, when the last pipe yields events.
    pub hits: Vec<Event>,
    /// The table, when an aggregating pipe ran.
    pub table: Option<Table>,
    /// Time buckets, when the table came from a `timechart`.
    pub buckets: Option<Vec<Bucket>>,
    /// Why the output is incomplete (a memory cap was reached), if it is.
    pub partial_reason: Option<String>,
}

/// A record flowing between stages.
enum Rec<'a> {
    Ev(Cow<'a, Event>),
    Row(Arc<[String]>, Vec<Value>),
}

impl Rec<'_> {
    fn owned(self) -> Rec<'static> {
        match self {
            Rec::Ev(e) => Rec::Ev(Cow::Owned(e.into_owned())),
            Rec::Row(c, v) => Rec::Row(c, v),
        }
    }

    /// The value of a field (event) or column (row).
    fn get(&self, field: &str) -> Option<&Value> {
        match self {
            Rec::Ev(e) => e.get(field),
            Rec::Row(cols, vals) => cols
                .iter()
                .position(|c| c == field)
                .and_then(|i| vals.get(i)),
        }
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Rec::Ev(e) => e.timestamp(),
            Rec::Row(..) => ["_time", "@timestamp"]
                .iter()
                .find_map(|f| self.get(f).and_then(Value::as_str))
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

enum Stage {
    Where(Cond),
    Head {
        left: u64,
    },
    Fields(Vec<String>),
    Dedup {
        fields: Vec<String>,
        seen: HashSet<Vec<String>>,
    },
    /// `keep` is the count of a `head` right after the sort: only that
    /// many records can come out, so the buffer is trimmed to it as it fills.
    Sort {
        keys: Vec<SortKey>,
        buf: Vec<Rec<'static>>,
        keep: Option<usize>,
    },
    Stats {
        by: Vec<String>,
        groups: Groups,
    },
    Timechart {
        tc: Timechart,
        groups: Groups,
    },
    Top {
        top: Top,
        groups: Groups,
        seen: u64,
    },
}

/// What flows into a stage: events, or rows with known (or, after a
/// `timechart … by`, data-dependent) columns.
#[derive(Debug, Clone)]
enum Schema {
    Events,
    Columns(Vec<String>),
    Dynamic,
}

/// Executes a pipeline: [`push`](Self::push) each event that passed the
/// filter, then [`finish`](Self::finish).
///
/// ```
/// use serde_json::json;
/// use vigil_event::Event;
///
/// let s = vigil_query::parse_search("* | stats count() by user.name")?;
/// let mut ex = vigil_query::Executor::new(&s.pipeline, 100)?;
/// for name in ["root", "alice", "root"] {
///     ex.push(&Event::from_json(json!({"user": {"name": name}}), 8).unwrap());
/// }
/// let table = ex.finish().table.unwrap();
/// assert_eq!(table.columns, ["user.name", "count"]);
/// assert_eq!(table.rows, [[json!("alice"), json!(1)], [json!("root"), json!(2)]]);
/// # Ok::<(), vigil_query::QueryError>(())
/// ```
pub struct Executor {
    stages: Vec<Stage>,
    /// Schema of each stage's input; the last entry is the output's.
    schemas: Vec<Schema>,
    /// The `head` whose exhaustion ends the whole scan, if one is reached
    /// only through streaming stages.
    stop_at: Option<usize>,
    sink: Vec<Rec<'static>>,
    limit: usize,
    budget: Budget,
}

impl Executor {
    /// Prepares `pipeline`; at most `limit` events are kept when the result is events.
    ///
    /// Fails when a pipe names a column that the table before it does not
    /// have (`stats count() by a | sort -b`); the error points at that pipe.
    pub fn new(pipeline: &Pipeline, limit: usize) -> Result<Executor, QueryError> {
        let mut stages = Vec::with_capacity(pipeline.pipes.len());
        let mut schemas = vec![Schema::Events];
        let mut stop_at = None;
        let mut streaming = true;
        for (i, p) in pipeline.pipes.iter().enumerate() {
            let schema = schemas.last().cloned().unwrap_or(Schema::Events);
            let (stage, out) = match &p.node {
                Pipe::Where(c) => {
                    check_cond(c, &schema, p.at)?;
                    (Stage::Where(c.clone()), schema)
                }
                Pipe::Head(n) => {
                    if streaming && stop_at.is_none() {
                        stop_at = Some(stages.len());
                    }
                    (Stage::Head { left: *n }, schema)
                }
                Pipe::Fields(fs) => {
                    check_columns(fs.iter(), &schema, "fields", p.at)?;
                    let out = match schema {
                        Schema::Columns(_) => Schema::Columns(fs.clone()),
                        s => s,
                    };
                    (Stage::Fields(fs.clone()), out)
                }
                Pipe::Dedup(fs) => {
                    check_columns(fs.iter(), &schema, "dedup", p.at)?;
                    (
                        Stage::Dedup {
                            fields: fs.clone(),
                            seen: HashSet::new(),
                        },
                        schema,
                    )
                }
                Pipe::Sort(keys) => {
                    check_columns(keys.iter().map(|k| &k.field), &schema, "sort", p.at)?;
                    streaming = false;
                    let keep = match pipeline.pipes.get(i + 1).map(|n| &n.node) {
                        Some(Pipe::Head(n)) => usize::try_from(*n).ok(),
                        _ => None,
                    };
                    (
                        Stage::Sort {
                            keys: keys.clone(),
                            buf: Vec::new(),
                            keep,
                        },
                        schema,
                    )
                }
                Pipe::Stats(st) => {
                    let fields = st
                        .by
                        .iter()
                        .chain(st.aggs.iter().filter_map(|a| a.field.as_ref()));
                    check_columns(fields, &schema, "stats", p.at)?;
                    streaming = false;
                    let mut cols = st.by.clone();
                    cols.extend(st.aggs.iter().map(|a| a.name.clone()));
                    (
                        Stage::Stats {
                            by: st.by.clone(),
                            groups: Groups::new(st.aggs.clone()),
                        },
                        Schema::Columns(cols),
                    )
                }
                Pipe::Timechart(tc) => {
                    let fields = tc
                        .by
                        .iter()
                        .chain(tc.aggs.iter().filter_map(|a| a.field.as_ref()));
                    check_columns(fields, &schema, "timechart", p.at)?;
                    streaming = false;
                    let out = match &tc.by {
                        Some(_) => Schema::Dynamic,
                        None => {
                            let mut cols = vec!["_time".to_string()];
                            cols.extend(tc.aggs.iter().map(|a| a.name.clone()));
                            Schema::Columns(cols)
                        }
                    };
                    (
                        Stage::Timechart {
                            tc: tc.clone(),
                            groups: Groups::new(tc.aggs.clone()),
                        },
                        out,
                    )
                }
                Pipe::Top(t) => {
                    check_columns(t.fields.iter(), &schema, t_name(t), p.at)?;
                    streaming = false;
                    let mut cols = t.fields.clone();
                    cols.extend(["count".to_string(), "percent".to_string()]);
                    (
                        Stage::Top {
                            top: t.clone(),
                            groups: Groups::new(Vec::new()),
                            seen: 0,
                        },
                        Schema::Columns(cols),
                    )
                }
            };
            stages.push(stage);
            schemas.push(out);
        }
        Ok(Executor {
            stages,
            schemas,
            stop_at,
            sink: Vec::new(),
            limit,
            budget: Budget::default(),
        })
    }

    /// Feeds one event that passed the filter.
    pub fn push(&mut self, ev: &Event) {
        if self.done() {
            return;
        }
        self.feed(0, Rec::Ev(Cow::Borrowed(ev)));
    }

    /// Feeds `n` events that all look like `ev` to the pipeline's reading of
    /// them: same values of every field the first aggregating pipe reads,
    /// same time. A first pipe that aggregates adds them at once (`count`
    /// adds `n`; `dc`, `min` and `max` are unchanged by repeats); any
    /// other first pipe gets `ev` `n` times, so the output always equals
    /// pushing the events one by one.
    pub fn push_weighted(&mut self, ev: &Event, n: u64) {
        if n == 0 || self.done() {
            return;
        }
        let aggregating = matches!(
            self.stages.first(),
            Some(Stage::Stats { .. } | Stage::Timechart { .. } | Stage::Top { .. })
        );
        if aggregating {
            let rec = Rec::Ev(Cow::Borrowed(ev));
            // An aggregating stage keeps everything it accepts.
            let _ = accept(&mut self.stages[0], rec, &mut self.budget, n);
            return;
        }
        for _ in 0..n {
            self.push(ev);
            if self.done() {
                return;
            }
        }
    }

    /// Whether no further event can change the output (a `head` reached only
    /// through streaming pipes is exhausted), so the scan may stop.
    pub fn done(&self) -> bool {
        self.stop_at
            .is_some_and(|i| matches!(self.stages.get(i), Some(Stage::Head { left: 0 })))
    }

    fn feed(&mut self, from: usize, mut rec: Rec<'_>) {
        for i in from..self.stages.len() {
            match accept(&mut self.stages[i], rec, &mut self.budget, 1) {
                Some(r) => rec = r,
                None => return,
            }
        }
        if matches!(rec, Rec::Ev(_)) && self.sink.len() >= self.limit {
            return;
        }
        self.sink.push(rec.owned());
    }

    /// Ends the input: releases what blocking stages hold and returns the output.
    pub fn finish(mut self) -> PipeOutput {
        let mut timechart_last = false;
        for i in 0..self.stages.len() {
            let released = match &mut self.stages[i] {
                Stage::Sort { keys, buf, .. } => {
                    let mut buf = std::mem::take(buf);
                    sort_records(&mut buf, keys);
                    buf
                }
                Stage::Stats { groups, .. } => {
                    timechart_last = false;
                    stats_rows(
                        std::mem::replace(groups, Groups::new(Vec::new())),
                        &self.schemas[i + 1],
                    )
                }
                Stage::Timechart { tc, groups } => {
                    timechart_last = true;
                    let g = std::mem::replace(groups, Groups::new(Vec::new()));
                    timechart_rows(tc, g)
                }
                Stage::Top { top, groups, seen } => {
                    timechart_last = false;
                    let g = std::mem::replace(groups, Groups::new(Vec::new()));
                    top_rows(top, g, *seen)
                }
                _ => continue,
            };
            for r in released {
                self.feed(i + 1, r);
            }
        }
        let mut out = PipeOutput {
            partial_reason: (!self.budget.partial.is_empty())
                .then(|| self.budget.partial.join("; ")),
            ..PipeOutput::default()
        };
        let schema = self.schemas.last().cloned().unwrap_or(Schema::Events);
        if let Schema::Events = schema {
            out.hits = self
                .sink
                .into_iter()
                .filter_map(|r| match r {
                    Rec::Ev(e) => Some(e.into_owned()),
                    Rec::Row(..) => None,
                })
                .collect();
            return out;
        }
        let mut columns = match schema {
            Schema::Columns(c) => c,
            _ => vec!["_time".to_string()],
        };
        let mut rows = Vec::with_capacity(self.sink.len());
        for (i, r) in self.sink.into_iter().enumerate() {
            if let Rec::Row(cols, vals) = r {
                if i == 0 {
                    columns = cols.to_vec();
                }
                rows.push(vals);
            }
        }
        if timechart_last {
            if let Some(ti) = columns.iter().position(|c| c == "_time") {
                let buckets = rows
                    .iter()
                    .map(|row| Bucket {
                        time: row.get(ti).map(key_text).unwrap_or_default(),
                        values: columns
                            .iter()
                            .zip(row)
                            .enumerate()
                            .filter(|(j, _)| *j != ti)
                            .map(|(_, (c, v))| (c.clone(), v.clone()))
                            .collect(),
                    })
                    .collect();
                out.buckets = Some(buckets);
            }
        }
        out.table = Some(Table { columns, rows });
        out
    }
}

fn t_name(t: &Top) -> &'static str {
    if t.rare {
        "rare"
    } else {
        "top"
    }
}

/// Passes a record on (`Some`) or keeps / drops it (`None`). An aggregating
/// stage counts the record `weight` times; streaming stages are only ever
/// given weight 1.
fn accept<'a>(
    stage: &mut Stage,
    rec: Rec<'a>,
    budget: &mut Budget,
    weight: u64,
) -> Option<Rec<'a>> {
    match stage {
        Stage::Where(c) => eval(c, &rec).then_some(rec),
        Stage::Head { left } => {
            if *left == 0 {
                return None;
            }
            *left -= 1;
            Some(rec)
        }
        Stage::Fields(fs) => Some(project(rec, fs)),
        Stage::Dedup { fields, seen } => {
            let mut key = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                key.push(key_text(rec.get(f).filter(|v| !v.is_null())?));
            }
            if seen.contains(&key) {
                return None;
            }
            if seen.len() >= MAX_DEDUP {
                budget.flag(format!(
                    "dedup remembered at most {MAX_DEDUP} distinct values; later ones were dropped"
                ));
                return None;
            }
            seen.insert(key);
            Some(rec)
        }
        Stage::Sort { keys, buf, keep } => {
            if let Some(k) = *keep {
                // Once trimmed, the k-th record is a bar: a record not
                // strictly better cannot make the cut (earlier records win
                // ties), so it is dropped without being copied.
                if k == 0 || (buf.len() >= k && cmp_records(&rec, &buf[k - 1], keys).is_ge()) {
                    return None;
                }
                // Trimming at twice the kept count sorts O(n log k) overall;
                // the stable sort keeps earlier records first among equals.
                buf.push(rec.owned());
                if buf.len() >= k.saturating_mul(2).max(1024) {
                    sort_records(buf, keys);
                    buf.truncate(k);
                }
                return None;
            }
            if buf.len() >= MAX_SORT {
                budget.flag(format!(
                    "sort holds at most {MAX_SORT} results; later ones were left out"
                ));
            } else {
                buf.push(rec.owned());
            }
            None
        }
        Stage::Stats { by, groups } => {
            let keys: Vec<Vec<&Value>> = by.iter().map(|f| by_values(rec.get(f))).collect();
            groups.add(&keys, &|f| rec.get(f), budget, weight);
            None
        }
        Stage::Timechart { tc, groups } => {
            let t = rec.time()?;
            let span = tc.span_secs;
            let bucket = Value::from(t.timestamp().div_euclid(span) * span);
            let mut keys = vec![vec![&bucket]];
            if let Some(by) = &tc.by {
                keys.push(by_values(rec.get(by)));
            }
            groups.add(&keys, &|f| rec.get(f), budget, weight);
            None
        }
        Stage::Top { top, groups, seen } => {
            *seen += weight;
            let keys: Vec<Vec<&Value>> = top.fields.iter().map(|f| by_values(rec.get(f))).collect();
            groups.add(&keys, &|_| None, budget, weight);
            None
        }
    }
}

fn project<'a>(rec: Rec<'a>, fields: &[String]) -> Rec<'a> {
    match rec {
        Rec::Ev(e) => {
            let mut out = Event::new();
            for f in fields {
                if let Some(v) = e.get(f) {
                    out.set(f, v.clone());
                }
            }
            Rec::Ev(Cow::Owned(out))
        }
        Rec::Row(cols, vals) => {
            let mut names = Vec::with_capacity(fields.len());
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                if let Some(i) = cols.iter().position(|c| c == f) {
                    names.push(f.clone());
                    out.push(vals.get(i).cloned().unwrap_or(Value::Null));
                }
            }
            Rec::Row(names.into(), out)
        }
    }
}

fn eval(c: &Cond, rec: &Rec<'_>) -> bool {
    match c {
        Cond::And(items) => items.iter().all(|c| eval(c, rec)),
        Cond::Or(items) => items.iter().any(|c| eval(c, rec)),
        Cond::Not(c) => !eval(c, rec),
        Cond::Cmp { field, op, value } => match rec.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) => items.iter().any(|v| compare(v, *op, value)),
            Some(v) => compare(v, *op, value),
        },
    }
}

/// Numbers compare as numbers; text compares case-insensitively.
fn compare(v: &Value, op: CmpOp, rhs: &Scalar) -> bool {
    let ord = match rhs {
        Scalar::Number(n) => match as_number(v) {
            Some(x) => x.partial_cmp(n),
            None => None,
        },
        Scalar::Text(t) => Some(folded_text(v).cmp(&crate::ast::fold_case(t))),
    };
    use std::cmp::Ordering::*;
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Equal,
        (CmpOp::Ne, Some(o)) => o != Equal,
        (CmpOp::Lt, Some(o)) => o == Less,
        (CmpOp::Le, Some(o)) => o != Greater,
        (CmpOp::Gt, Some(o)) => o == Greater,
        (CmpOp::Ge, Some(o)) => o != Less,
    }
}

/// Stable sort by the keys; records missing a key's field go last.
fn sort_records(buf: &mut [Rec<'static>], keys: &[SortKey]) {
    buf.sort_by(|a, b| cmp_records(a, b, keys));
}

fn cmp_records(a: &Rec<'_>, b: &Rec<'_>, keys: &[SortKey]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for k in keys {
        let (x, y) = (
            a.get(&k.field).filter(|v| !v.is_null()),
            b.get(&k.field).filter(|v| !v.is_null()),
        );
        let o = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) if k.descending => cmp_values(y, x),
            (Some(x), Some(y)) => cmp_values(x, y),
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

fn stats_rows(groups: Groups, schema: &Schema) -> Vec<Rec<'static>> {
    let cols: Arc<[String]> = match schema {
        Schema::Columns(c) => c.clone().into(),
        _ => Arc::from(Vec::new()),
    };
    let funcs: Vec<AggFn> = groups.aggs.iter().map(|a| a.func).collect();
    let by_is_empty = groups.map.values().all(|g| g.key.is_empty());
    let mut sorted = groups.sorted();
    // `stats count()` without `by` over no events still answers one row of zeros.
    if sorted.is_empty() && by_is_empty && cols.len() == funcs.len() {
        sorted.push(Group {
            key: Vec::new(),
            events: 0,
            states: funcs.iter().map(|f| State::new(*f)).collect(),
        });
    }
    sorted
        .into_iter()
        .map(|g| {
            let mut row = g.key;
            row.extend(g.states.iter().zip(&funcs).map(|(s, f)| s.value(*f)));
            Rec::Row(cols.clone(), row)
        })
        .collect()
}

fn timechart_rows(tc: &Timechart, groups: Groups) -> Vec<Rec<'static>> {
    let aggs = groups.aggs.clone();
    let max = |i: usize| aggs.get(i).is_some_and(|a| a.func == AggFn::Max);
    // (bucket, series) → states; rank series by how many events they hold.
    let mut series_events: BTreeMap<String, u64> = BTreeMap::new();
    let mut cells: Vec<(i64, String, Group)> = Vec::new();
    for g in groups.map.into_values() {
        let bucket = g.key.first().and_then(Value::as_i64).unwrap_or(0);
        let series = g.key.get(1).map(key_text).unwrap_or_default();
        *series_events.entry(series.clone()).or_default() += g.events;
        cells.push((bucket, series, g));
    }
    let mut ranked: Vec<(String, u64)> = series_events.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (columns, kept): (Vec<String>, Vec<String>) = match &tc.by {
        Some(_) => {
            let kept: Vec<String> = ranked.iter().take(tc.limit).map(|s| s.0.clone()).collect();
            let mut cols = kept.clone();
            if ranked.len() > tc.limit {
                cols.push("other".into());
            }
            (cols, kept)
        }
        None => (aggs.iter().map(|a| a.name.clone()).collect(), Vec::new()),
    };
    let mut by_bucket: BTreeMap<i64, BTreeMap<String, Vec<State>>> = BTreeMap::new();
    for (bucket, series, g) in cells {
        let name = if tc.by.is_none() || kept.contains(&series) {
            series
        } else {
            "other".to_string()
        };
        let slot = by_bucket.entry(bucket).or_default();
        match slot.get_mut(&name) {
            Some(states) => {
                for (i, (s, o)) in states.iter_mut().zip(g.states).enumerate() {
                    s.merge(o, max(i));
                }
            }
            None => {
                slot.insert(name, g.states);
            }
        }
    }
    let (Some(&first), Some(&last)) = (by_bucket.keys().next(), by_bucket.keys().next_back())
    else {
        return Vec::new();
    };
    let span = tc.span_secs;
    let dense = (last - first) / span < MAX_BUCKETS as i64;
    let times: Vec<i64> = if dense {
        (0..=(last - first) / span)
            .map(|i| first + i * span)
            .collect()
    } else {
        by_bucket.keys().copied().collect()
    };
    let mut all_cols = vec!["_time".to_string()];
    all_cols.extend(columns.iter().cloned());
    let cols: Arc<[String]> = all_cols.into();
    let empty = |f: AggFn| match f {
        AggFn::Count | AggFn::DistinctCount => Value::from(0),
        _ => Value::Null,
    };
    times
        .into_iter()
        .map(|t| {
            let time = Utc
                .timestamp_opt(t, 0)
                .single()
                .map(vigil_event::format_time)
                .unwrap_or_default();
            let mut row = vec![Value::from(time)];
            let slot = by_bucket.get(&t);
            match &tc.by {
                Some(_) => {
                    let f = aggs.first().map_or(AggFn::Count, |a| a.func);
                    for c in &columns {
                        let v = slot
                            .and_then(|s| s.get(c))
                            .and_then(|st| st.first())
                            .map_or_else(|| empty(f), |st| st.value(f));
                        row.push(v);
                    }
                }
                None => {
                    let states = slot.and_then(|s| s.get(""));
                    for (i, a) in aggs.iter().enumerate() {
                        let v = states
                            .and_then(|st| st.get(i))
                            .map_or_else(|| empty(a.func), |st| st.value(a.func));
                        row.push(v);
                    }
                }
            }
            Rec::Row(cols.clone(), row)
        })
        .collect()
}

fn top_rows(top: &Top, groups: Groups, seen: u64) -> Vec<Rec<'static>> {
    let mut cols = top.fields.clone();
    cols.extend(["count".to_string(), "percent".to_string()]);
    let cols: Arc<[String]> = cols.into();
    let mut groups = groups.sorted();
    // Stable: equal counts keep the value order `sorted` gave them.
    if top.rare {
        groups.sort_by_key(|g| g.events);
    } else {
        groups.sort_by_key(|g| std::cmp::Reverse(g.events));
    }
    groups
        .into_iter()
        .take(usize::try_from(top.limit).unwrap_or(usize::MAX))
        .map(|g| {
            let pct = if seen == 0 {
                0.0
            } else {
                (g.events as f64 * 10_000.0 / seen as f64).round() / 100.0
            };
            let mut row = g.key;
            row.push(Value::from(g.events));
            row.push(number_value(pct));
            Rec::Row(cols.clone(), row)
        })
        .collect()
}

fn check_columns<'a>(
    fields: impl Iterator<Item = &'a String>,
    schema: &Schema,
    pipe: &str,
    at: usize,
) -> Result<(), QueryError> {
    let Schema::Columns(cols) = schema else {
        return Ok(());
    };
    for f in fields {
        if !cols.contains(f) {
            return Err(QueryError::new(
                at,
                format!(
                    "{pipe}: no column '{f}' in the table before it; its columns are {}",
                    cols.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn check_cond(c: &Cond, schema: &Schema, at: usize) -> Result<(), QueryError> {
    match c {
        Cond::And(items) | Cond::Or(items) => {
            items.iter().try_for_each(|c| check_cond(c, schema, at))
        }
        Cond::Not(c) => check_cond(c, schema, at),
        Cond::Cmp { field, .. } => check_columns(std::iter::once(field), schema, "where", at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        Event::from_json(v, 8).expect("event")
    }

    /// A weight of `n` is `n` pushes of the same event, for every
    /// aggregation and pipe shape (integers, so sums are exact either way).
    #[test]
    fn weighted_input_equals_repeated_pushes() {
        let events = [
            (
                ev(json!({"k": "a", "x": 3, "@timestamp": "2024-03-01T00:00:10Z"})),
                4u64,
            ),
            (ev(json!({"k": ["a", "b"], "x": "5"})), 2),
            (
                ev(json!({"k": "b", "@timestamp": "2024-03-01T01:00:00Z"})),
                1,
            ),
            (ev(json!({"x": 7, "@timestamp": "2024-03-01T00:30:00Z"})), 3),
        ];
        for q in [
            "* | stats count(), count(x), sum(x), avg(x), dc(x), min(x), max(x), p50(x) by k",
            "* | timechart span=1h count() by k",
            "* | timechart span=30m count(), max(x)",
            "* | top 2 k",
            "* | rare 1 k, x",
            "* | head 5",
            "* | where x > 4 | stats count()",
            "* | stats count() by k | sort -count | head 1",
        ] {
            let s = crate::parse_search(q).unwrap();
            let mut one = Executor::new(&s.pipeline, 100).unwrap();
            let mut weighted = Executor::new(&s.pipeline, 100).unwrap();
            for (e, n) in &events {
                for _ in 0..*n {
                    one.push(e);
                }
                weighted.push_weighted(e, *n);
            }
            assert_eq!(one.finish(), weighted.finish(), "{q}");
        }
    }
}
