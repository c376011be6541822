//! Answering aggregations from the per-block columns ([`crate::columns`]).
//!
//! A search qualifies ([`ColumnPlan::of`]) when its first pipe is
//! `stats` (with `count`, `dc`, `min`, `max`), `timechart` (the same
//! aggregations, any span) or `top`/`rare`, every field those read is a
//! column field, and its filter is `*` or a conjunction (`AND`) of
//! conditions that each read one column field (`user.name:root`,
//! `NOT event.outcome:success`, `http.response.status_code:>=500`). `sum`,
//! `avg` and percentiles are not pushed down: a float sum taken as `x·n`
//! is not always the sum of `n` copies of `x`, and the answer must equal
//! the scan's bit for bit.
//!
//! For each block that the search reads in full, whose events all lie in
//! the time range, and that has every needed column, [`ColumnAnswerer`]
//! evaluates the filter once per dictionary value, groups the block's
//! events by (time bucket, values of the fed fields), and hands each group
//! to the executor once, with its size as weight, in the order the groups
//! first occur, so that even the executor's group cap drops the same
//! groups a scan would. Groups are merged across consecutive blocks
//! before they are handed over; everything else is read and scanned as
//! before ([`vigil_query::exec::run_with`]).

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use vigil_event::Event;
use vigil_query::exec::Answerer;
use vigil_query::{AggFn, Expr, Pipe, Search, Term};

use crate::columns::{read_block_with, BlockColumns, BlockDir, BlockReader, FnvMap, COLUMN_FIELDS};

/// Most groups held back across blocks before they are handed over.
const MAX_HELD: usize = 1 << 16;
/// Largest number of distinct keys a block's grouping addresses directly
/// (an array) rather than through a hash map.
const DIRECT_KEYS: u64 = 1 << 16;

/// What a qualifying search needs from the columns.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// `timechart` span in seconds, when the first pipe is one.
    span: Option<i64>,
    /// Column fields the executor reads (positions in `want`).
    feed: Vec<usize>,
    /// One condition per column field (position in `want`).
    filters: Vec<(usize, Expr)>,
    /// Column fields read, as indexes into [`COLUMN_FIELDS`].
    want: Vec<usize>,
    /// Bits of `want`.
    mask: u32,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

fn column(field: &str) -> Option<usize> {
    COLUMN_FIELDS.iter().position(|c| *c == field)
}

impl ColumnPlan {
    /// The plan of `s` searched over `[since, until)`, or `None` when the
    /// columns cannot answer it exactly.
    pub fn of(
        s: &Search,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Option<ColumnPlan> {
        let first = s.pipeline.pipes.first()?;
        let mut fed: Vec<&str> = Vec::new();
        let mut span = None;
        // Only aggregations that repeats do not change, or that add up
        // exactly (`count`); never sums or percentiles.
        let aggs_ok = |aggs: &[vigil_query::Agg]| {
            aggs.iter().all(|a| {
                matches!(
                    (a.func, &a.field),
                    (AggFn::Count, _) | (AggFn::DistinctCount | AggFn::Min | AggFn::Max, Some(_))
                )
            })
        };
        match &first.node {
            Pipe::Stats(st) => {
                aggs_ok(&st.aggs).then_some(())?;
                fed.extend(st.by.iter().map(String::as_str));
                fed.extend(st.aggs.iter().filter_map(|a| a.field.as_deref()));
            }
            Pipe::Timechart(tc) => {
                aggs_ok(&tc.aggs).then_some(())?;
                fed.extend(tc.by.iter().map(String::as_str));
                fed.extend(tc.aggs.iter().filter_map(|a| a.field.as_deref()));
                span = Some(tc.span_secs).filter(|s| *s > 0);
                span?;
            }
            Pipe::Top(t) => fed.extend(t.fields.iter().map(String::as_str)),
            _ => return None,
        }
        let mut want: Vec<usize> = Vec::new();
        let mut slot = |c: usize| match want.iter().position(|w| *w == c) {
            Some(p) => p,
            None => {
                want.push(c);
                want.len() - 1
            }
        };
        let mut feed = Vec::new();
        for f in fed {
            let p = slot(column(f)?);
            if !feed.contains(&p) {
                feed.push(p);
            }
        }
        let mut items = Vec::new();
        conjuncts(&s.query.root, &mut items);
        let mut filters = Vec::new();
        for e in items {
            let mut fields = Vec::new();
            fields_of(e, &mut fields)?;
            fields.sort_unstable();
            fields.dedup();
            let [f] = fields.as_slice() else {
                return None;
            };
            filters.push((slot(column(f)?), e.clone()));
        }
        let mask = want.iter().fold(0u32, |m, c| m | (1 << c));
        Some(ColumnPlan {
            span,
            feed,
            filters,
            want,
            mask,
            since,
            until,
        })
    }
}

fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::All => {}
        Expr::And(items) => items.iter().for_each(|i| conjuncts(i, out)),
        e => out.push(e),
    }
}

/// The fields an expression reads; `None` when it reads free text (every
/// value) or nothing at all.
fn fields_of<'a>(e: &'a Expr, out: &mut Vec<&'a str>) -> Option<()> {
    match e {
        Expr::All => None,
        Expr::And(items) | Expr::Or(items) => items.iter().try_for_each(|i| fields_of(i, out)),
        Expr::Not(e) => fields_of(e, out),
        Expr::Term(Term::Field { field, .. }) => {
            out.push(field);
            Some(())
        }
        Expr::Term(Term::FreeText(_)) => None,
    }
}

/// A block the index has columns for, as the search saw the index.
#[derive(Debug, Clone)]
pub(crate) struct SnapBlock {
    pub lo: u64,
    pub hi: u64,
    pub file: Arc<PathBuf>,
    pub dir: BlockDir,
}

/// Values of one column field met so far, each with a small id (0 is "no
/// such field").
#[derive(Default)]
struct Interner {
    ids: FnvMap<Vec<u8>, u32>,
    values: Vec<Value>,
}

impl Interner {
    fn id(&mut self, text: &[u8]) -> Result<u32, String> {
        if let Some(id) = self.ids.get(text) {
            return Ok(*id);
        }
        let v: Value = serde_json::from_slice(text).map_err(|e| format!("column value: {e}"))?;
        self.values.push(v);
        let id = self.values.len() as u32;
        self.ids.insert(text.to_vec(), id);
        Ok(id)
    }

    fn value(&self, id: u32) -> Option<&Value> {
        id.checked_sub(1).and_then(|i| self.values.get(i as usize))
    }
}

/// A group: time bucket (`None` without a time or outside a `timechart`)
/// and the ids of the fed fields' values.
type Key = (Option<i64>, Vec<u32>);

/// Multiplies: the keys hashed here are already well spread integers.
#[derive(Default)]
struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Answers the blocks of one search from their columns.
pub struct ColumnAnswerer {
    plan: ColumnPlan,
    block_size: u32,
    blocks: Vec<SnapBlock>,
    open: Option<(Arc<PathBuf>, File)>,
    reader: Option<BlockReader>,
    values: Vec<Interner>,
    /// Per filter: the verdict for each value id met so far.
    verdicts: Vec<Vec<Option<bool>>>,
    held: HashMap<Key, usize>,
    order: Vec<(Key, u64)>,
}

impl std::fmt::Debug for ColumnAnswerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnAnswerer")
            .field("plan", &self.plan)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl ColumnAnswerer {
    pub(crate) fn new(plan: ColumnPlan, block_size: u32, blocks: Vec<SnapBlock>) -> Self {
        let n = plan.want.len();
        let f = plan.filters.len();
        ColumnAnswerer {
            plan,
            block_size,
            blocks,
            open: None,
            reader: None,
            values: (0..n).map(|_| Interner::default()).collect(),
            verdicts: vec![Vec::new(); f],
            held: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn usable(&self, b: &SnapBlock) -> bool {
        b.dir.mask & self.plan.mask == self.plan.mask
            && (self.plan.since.is_none() && self.plan.until.is_none()
                || b.dir.within(self.plan.since, self.plan.until))
    }

    fn file(&mut self, path: &Arc<PathBuf>) -> Result<&mut File, String> {
        let reuse = self
            .open
            .as_ref()
            .is_some_and(|(p, _)| Arc::ptr_eq(p, path));
        if !reuse {
            let f = File::open(path.as_ref()).map_err(|e| format!("{}: {e}", path.display()))?;
            self.open = Some((path.clone(), f));
        }
        match &mut self.open {
            Some((_, f)) => Ok(f),
            None => Err("no column file".to_string()),
        }
    }

    /// Whether the event with value id `id` passes filter `i`.
    fn verdict(&mut self, i: usize, id: u32) -> bool {
        let cache = &mut self.verdicts[i];
        if let Some(Some(v)) = cache.get(id as usize) {
            return *v;
        }
        let (k, expr) = &self.plan.filters[i];
        let mut ev = Event::new();
        if let Some(v) = self.values[*k].value(id) {
            ev.set(COLUMN_FIELDS[self.plan.want[*k]], v.clone());
        }
        let ok = expr.matches(&ev);
        if cache.len() <= id as usize {
            cache.resize(id as usize + 1, None);
        }
        cache[id as usize] = Some(ok);
        ok
    }

    fn hold(&mut self, key: Key, n: u64, feed: &mut dyn FnMut(&Event, u64)) {
        match self.held.get(&key) {
            Some(i) => self.order[*i].1 += n,
            None => {
                if self.order.len() >= MAX_HELD {
                    self.release(feed);
                }
                self.held.insert(key.clone(), self.order.len());
                self.order.push((key, n));
            }
        }
    }

    fn release(&mut self, feed: &mut dyn FnMut(&Event, u64)) {
        self.held.clear();
        for ((bucket, ids), n) in std::mem::take(&mut self.order) {
            let mut ev = Event::new();
            for (&k, id) in self.plan.feed.iter().zip(&ids) {
                if let Some(v) = self.values[k].value(*id) {
                    ev.set(COLUMN_FIELDS[self.plan.want[k]], v.clone());
                }
            }
            if let Some(t) = bucket.and_then(|b| Utc.timestamp_opt(b, 0).single()) {
                ev.set_timestamp(t);
            }
            feed(&ev, n);
        }
    }

    /// Groups one block's events; `Err` leaves everything as it was, so
    /// the block can be read instead.
    fn group(&mut self, cols: &BlockColumns) -> Result<Vec<(Key, u64)>, String> {
        let slots = self.block_size as usize;
        // Per wanted field: code → value id.
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(self.plan.want.len());
        let mut codes: Vec<&[u32]> = Vec::with_capacity(self.plan.want.len());
        for (k, col) in cols.fields.iter().enumerate() {
            let col = col.as_ref().ok_or("a needed column is missing")?;
            let mut m = vec![0u32];
            for text in &col.dict {
                m.push(self.values[k].id(text)?);
            }
            ids.push(m);
            codes.push(&col.codes);
        }
        if cols.times.len() != slots || codes.iter().any(|c| c.len() != slots) {
            return Err("columns of the wrong length".to_string());
        }
        // Per filter: code → passes.
        let mut pass: Vec<(usize, Vec<bool>)> = Vec::with_capacity(self.plan.filters.len());
        for i in 0..self.plan.filters.len() {
            let k = self.plan.filters[i].0;
            let table = ids[k]
                .clone()
                .into_iter()
                .map(|id| self.verdict(i, id))
                .collect();
            pass.push((k, table));
        }
        // Mixed-radix key: time part, then one digit per fed field.
        let timed = self.plan.since.is_some() || self.plan.until.is_some();
        let span = self.plan.span;
        let base_bucket = span.map(|s| cols.base_secs.div_euclid(s));
        let max_off = cols
            .times
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .saturating_sub(2);
        let time_radix: u64 = match span {
            Some(s) => {
                let last = cols.base_secs.saturating_add(max_off as i64).div_euclid(s);
                (last - base_bucket.unwrap_or(0)) as u64 + 2
            }
            None => 1,
        };
        let mut radix = time_radix;
        for &k in &self.plan.feed {
            radix = radix
                .checked_mul(ids[k].len() as u64)
                .ok_or("too many combinations in one block")?;
        }
        let mut direct: Vec<u32> = if radix <= DIRECT_KEYS {
            vec![0; radix as usize]
        } else {
            Vec::new()
        };
        let mut hashed: HashMap<u64, u32, BuildHasherDefault<MulHasher>> = HashMap::default();
        let mut local: Vec<(u64, u64)> = Vec::new();
        'slots: for slot in 0..slots {
            let t = cols.times[slot];
            if t == 0 || (timed && t == 1) {
                continue;
            }
            for (k, table) in &pass {
                if !table[codes[*k][slot] as usize] {
                    continue 'slots;
                }
            }
            let mut key = match (span, base_bucket) {
                (Some(s), Some(b0)) if t >= 2 => {
                    let secs = cols.base_secs + (t - 2) as i64;
                    (secs.div_euclid(s) - b0) as u64 + 1
                }
                _ => 0,
            };
            for &k in &self.plan.feed {
                key = key * ids[k].len() as u64 + u64::from(codes[k][slot]);
            }
            let at = if radix <= DIRECT_KEYS {
                let cell = &mut direct[key as usize];
                if *cell == 0 {
                    local.push((key, 0));
                    *cell = local.len() as u32;
                }
                *cell as usize - 1
            } else {
                let next = local.len() as u32;
                let i = *hashed.entry(key).or_insert(next);
                if i == next {
                    local.push((key, 0));
                }
                i as usize
            };
            local[at].1 += 1;
        }
        let mut out = Vec::with_capacity(local.len());
        for (mut key, n) in local {
            let mut gids = vec![0u32; self.plan.feed.len()];
            for (j, &k) in self.plan.feed.iter().enumerate().rev() {
                let r = ids[k].len() as u64;
                gids[j] = ids[k][(key % r) as usize];
                key /= r;
            }
            let bucket = match (span, base_bucket) {
                (Some(s), Some(b0)) if key > 0 => Some((b0 + key as i64 - 1) * s),
                _ => None,
            };
            out.push(((bucket, gids), n));
        }
        Ok(out)
    }
}

impl Answerer for ColumnAnswerer {
    fn answerable(&self, ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut rs = ranges.iter().peekable();
        for b in &self.blocks {
            while rs.peek().is_some_and(|(_, hi)| *hi < b.lo) {
                rs.next();
            }
            let Some(&&(lo, hi)) = rs.peek() else { break };
            if lo <= b.lo && b.hi <= hi && self.usable(b) {
                out.push((b.lo, b.hi));
            }
        }
        out
    }

    fn answer(
        &mut self,
        lo: u64,
        hi: u64,
        feed: &mut dyn FnMut(&Event, u64),
    ) -> Result<u64, String> {
        let i = self
            .blocks
            .binary_search_by_key(&lo, |b| b.lo)
            .map_err(|_| format!("no columns for seqs {lo}..={hi}"))?;
        let b = self.blocks[i].clone();
        if b.hi != hi || !self.usable(&b) {
            return Err(format!("no usable columns for seqs {lo}..={hi}"));
        }
        let want = self.plan.want.clone();
        let bs = self.block_size;
        // Times matter to a time range and to a timechart's buckets only.
        let times =
            self.plan.span.is_some() || self.plan.since.is_some() || self.plan.until.is_some();
        let mut rd = match self.reader.take() {
            Some(rd) => rd,
            None => BlockReader::new().map_err(|e| e.to_string())?,
        };
        let file = self.file(&b.file)?;
        let cols = read_block_with(&mut rd, file, b.lo, bs, &b.dir, &want, times);
        self.reader = Some(rd);
        let cols = cols.map_err(|e| e.to_string())?;
        let groups = self.group(&cols)?;
        for (key, n) in groups {
            self.hold(key, n, feed);
        }
        Ok(u64::from(b.dir.events))
    }

    fn flush(&mut self, feed: &mut dyn FnMut(&Event, u64)) {
        self.release(feed);
    }
}
