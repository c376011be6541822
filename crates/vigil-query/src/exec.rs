//! The search executor: a scan over the ledger at this stage, feeding
//! the pipes' [`Executor`] when the search has any.
//!
//! Events are read in sequence order, decoded, filtered by time and by the
//! [`Query`], and the newest `limit` matches are kept. A scan is bounded by
//! an event budget, a deadline and a [`Cancel`] flag; when one of them stops
//! it early the result says so (`partial`, `partial_reason`) instead of the
//! server hanging.
//!
//! A search ending in an aggregation decodes only the fields its filter and
//! pipes read ([`Fields`]), which costs a fraction of a full decode.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use vigil_event::Event;
use vigil_ledger::{LedgerError, LedgerReader};

use crate::extract::Fields;
use crate::rawfilter::RawFilter;
use crate::{Bucket, Executor, Query, QueryError, Search, Table};

/// Events between two looks at the deadline and the cancel flag.
const CHECK_EVERY: u64 = 512;
/// Scans reading at least this many events read ahead on a second thread.
const READ_AHEAD_MIN: u64 = 32_768;
/// Events per hand-over from the reading thread.
const READ_AHEAD_BATCH: usize = 256;

/// A flag that stops a running scan at its next check; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet raised.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every scan holding this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bounds of one search.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Only events with `@timestamp` at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only events with `@timestamp` before this.
    pub until: Option<DateTime<Utc>>,
    /// Most hits returned (the newest ones).
    pub limit: usize,
    /// Most events examined: when the range to read holds more, only the
    /// newest `max_scan` of them are read.
    pub max_scan: u64,
    /// Stop when this instant passes.
    pub deadline: Option<Instant>,
    /// Scan only up to this sequence number (the writer's durable seq).
    pub up_to_seq: Option<u64>,
    /// Read only these inclusive seq ranges (increasing, not overlapping),
    /// as a search index narrows them; `None` reads every seq.
    pub ranges: Option<Vec<(u64, u64)>>,
    /// Raised to stop the scan (a client went away, or asked to cancel).
    pub cancel: Option<Cancel>,
    /// Decode only the fields an aggregating search reads (the default);
    /// off decodes every event in full, as a reference to compare with.
    pub partial_decode: bool,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            since: None,
            until: None,
            limit: 100,
            max_scan: u64::MAX,
            deadline: None,
            up_to_seq: None,
            ranges: None,
            cancel: None,
            partial_decode: true,
        }
    }
}

/// What a search found.
#[derive(Debug, Default)]
pub struct SearchResult {
    /// Matching events, newest first, at most `limit`.
    pub hits: Vec<Event>,
    /// All matches in the scanned range.
    pub total: u64,
    /// Events read from the ledger and examined.
    pub scanned: u64,
    /// Events not read because an [`Answerer`] (the index's columns)
    /// answered for them.
    pub from_columns: u64,
    /// Seqs in the searched range that were not read because the index
    /// showed they cannot match.
    pub skipped: u64,
    /// Whether the scan stopped before covering the whole range.
    pub partial: bool,
    /// Why it is partial.
    pub partial_reason: Option<String>,
    /// The table, when the search ends in an aggregating pipe (`stats`, `top`, …).
    pub table: Option<Table>,
    /// Time buckets, when the table came from a `timechart`.
    pub buckets: Option<Vec<Bucket>>,
}

/// Search failures.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The pipeline refers to a column the table before it lacks.
    #[error("invalid pipeline: {0}")]
    Pipeline(#[from] QueryError),
}

/// Runs `query` over the ledger in `ledger_dir`.
pub fn search(
    ledger_dir: &Path,
    query: &Query,
    params: &SearchParams,
) -> Result<SearchResult, SearchError> {
    let mut result = SearchResult::default();
    let mut kept: VecDeque<Event> = VecDeque::with_capacity(params.limit.min(4096));
    let sink = Sink {
        keep: |ev| {
            if params.limit > 0 {
                if kept.len() == params.limit {
                    kept.pop_front();
                }
                kept.push_back(ev);
            }
            true
        },
        weigh: |_: &Event, _| {},
    };
    scan(ledger_dir, query, None, params, &mut result, None, sink)?;
    result.hits = kept.into_iter().rev().collect();
    Ok(result)
}

/// Hands every event matching `query` to `each`, oldest first, until the
/// range ends, a bound of `params` is reached, or `each` returns false.
///
/// Nothing is kept: this is what an export streams from. `params.limit` is
/// not used; the caller counts what it took. `total` in the result counts
/// the events handed over.
pub fn stream(
    ledger_dir: &Path,
    query: &Query,
    params: &SearchParams,
    each: impl FnMut(Event) -> bool,
) -> Result<SearchResult, SearchError> {
    let mut result = SearchResult::default();
    let sink = Sink {
        keep: each,
        weigh: |_: &Event, _| {},
    };
    scan(ledger_dir, query, None, params, &mut result, None, sink)?;
    Ok(result)
}

/// Runs a whole search, filter and pipes, over the ledger in `ledger_dir`.
///
/// Without pipes this is [`search`] (newest hits first). With pipes the
/// events that pass the filter go through the [`Executor`] oldest first, in
/// ledger order; the scan stops early once the pipeline is
/// [`done`](Executor::done) (a `head` has what it needs). A search ending in
/// an aggregation decodes only the fields it reads (see [`Fields`]) unless
/// `params.partial_decode` is off.
pub fn run(
    ledger_dir: &Path,
    s: &Search,
    params: &SearchParams,
) -> Result<SearchResult, SearchError> {
    run_with(ledger_dir, s, params, None)
}

/// Answers whole runs of seqs of an aggregating search without reading
/// their events, e.g. from a search index's columns.
///
/// [`run_with`] asks which runs of the seqs it is about to read can be
/// answered, then, in seq order, reads the other seqs and has these runs
/// answered, so the pipeline sees their events in the same order a scan
/// would: an answer is exact, never an estimate.
pub trait Answerer {
    /// Of `ranges` (ascending, the seqs the search reads), the runs this
    /// can answer: ascending, each inside one of `ranges`.
    fn answerable(&self, ranges: &[(u64, u64)]) -> Vec<(u64, u64)>;

    /// Hands the events of `lo..=hi` that pass the search's filter and time
    /// range to `feed`, as `(event, n)`: `n` events that look like `event`
    /// to the pipeline ([`Executor::push_weighted`]), in the order of their
    /// first occurrence. May hold some back until [`flush`](Self::flush).
    /// Returns how many events the run held. An error means nothing was fed
    /// and the run must be read instead.
    fn answer(
        &mut self,
        lo: u64,
        hi: u64,
        feed: &mut dyn FnMut(&Event, u64),
    ) -> Result<u64, String>;

    /// Hands over whatever [`answer`](Self::answer) held back.
    fn flush(&mut self, feed: &mut dyn FnMut(&Event, u64));
}

/// [`run`], with `answerer` answering the runs of seqs it can (only used
/// when the search has pipes).
pub fn run_with(
    ledger_dir: &Path,
    s: &Search,
    params: &SearchParams,
    answerer: Option<&mut (dyn Answerer + '_)>,
) -> Result<SearchResult, SearchError> {
    if s.pipeline.is_empty() {
        return search(ledger_dir, &s.query, params);
    }
    let ex = RefCell::new(Executor::new(&s.pipeline, params.limit)?);
    let fields = params
        .partial_decode
        .then(|| Fields::for_search(s))
        .flatten();
    let mut result = SearchResult::default();
    let sink = Sink {
        keep: |ev: Event| {
            let mut ex = ex.borrow_mut();
            ex.push(&ev);
            !ex.done()
        },
        weigh: |ev: &Event, n: u64| ex.borrow_mut().push_weighted(ev, n),
    };
    scan(
        ledger_dir,
        &s.query,
        fields.as_ref(),
        params,
        &mut result,
        answerer,
        sink,
    )?;
    let out = ex.into_inner().finish();
    result.hits = out.hits;
    result.table = out.table;
    result.buckets = out.buckets;
    if let Some(reason) = out.partial_reason {
        result.partial = true;
        result.partial_reason = Some(match result.partial_reason.take() {
            Some(scan) => format!("{scan}; {reason}"),
            None => reason,
        });
    }
    Ok(result)
}

/// Where a scan puts what passed: `keep` takes each read event (false
/// stops the scan), `weigh` takes answered events with their count.
struct Sink<K, W> {
    keep: K,
    weigh: W,
}

/// One step of a scan, in seq order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Read(u64, u64),
    Answer(u64, u64),
}

/// `ranges` cut into the runs `answerable` covers and the rest, in order.
fn parts(ranges: &[(u64, u64)], answerable: &[(u64, u64)]) -> Vec<Part> {
    let mut out = Vec::new();
    let mut runs = answerable.iter().peekable();
    for &(lo, hi) in ranges {
        let mut at = lo;
        while let Some(&&(a, b)) = runs.peek() {
            if a > hi {
                break;
            }
            runs.next();
            if a < at || b > hi {
                // Not inside this range: read, never trust.
                continue;
            }
            if a > at {
                out.push(Part::Read(at, a - 1));
            }
            out.push(Part::Answer(a, b));
            at = b + 1;
        }
        if at <= hi {
            out.push(Part::Read(at, hi));
        }
    }
    out
}

/// The state of one scan: what it counts and where matches go.
struct Scanner<'a, 'b, K, W> {
    query: &'a Query,
    match_all: bool,
    raw: Option<RawFilter>,
    scratch: Vec<u8>,
    fields: Option<&'a Fields>,
    params: &'a SearchParams,
    result: &'a mut SearchResult,
    sink: Sink<K, W>,
    answerer: Option<&'a mut (dyn Answerer + 'b)>,
    /// Whether the answerer may hold events back.
    held: bool,
}

impl<K: FnMut(Event) -> bool, W: FnMut(&Event, u64)> Scanner<'_, '_, K, W> {
    /// Handles one stored event; false stops the scan.
    fn handle(&mut self, payload: &[u8]) -> bool {
        self.flush();
        let result = &mut *self.result;
        result.scanned += 1;
        if result.scanned == 1 || result.scanned.is_multiple_of(CHECK_EVERY) {
            if let Some(reason) = stop_reason(self.params, result.scanned) {
                result.scanned -= 1;
                result.partial = true;
                result.partial_reason = Some(reason);
                return false;
            }
        }
        // Most events of a selective search fail this check on their bytes,
        // which costs a fraction of decoding them.
        if self
            .raw
            .as_ref()
            .is_some_and(|f| !f.may_match(payload, &mut self.scratch))
        {
            return true;
        }
        let decoded = match self.fields {
            Some(f) => f
                .decode(payload)
                .or_else(|_| Event::from_canonical(payload)),
            None => Event::from_canonical(payload),
        };
        let Ok(ev) = decoded else {
            return true;
        };
        if !in_range(&ev, self.params) || (!self.match_all && !self.query.matches(&ev)) {
            return true;
        }
        result.total += 1;
        (self.sink.keep)(ev)
    }

    /// Has `lo..=hi` answered: `Some(false)` stops the scan, `None` means
    /// the run must be read.
    fn answer(&mut self, lo: u64, hi: u64) -> Option<bool> {
        let answerer = self.answerer.as_deref_mut()?;
        if let Some(reason) = stop_reason(self.params, self.result.scanned + 1) {
            self.result.partial = true;
            self.result.partial_reason = Some(reason);
            return Some(false);
        }
        let mut total = 0;
        let weigh = &mut self.sink.weigh;
        let events = answerer
            .answer(lo, hi, &mut |ev, n| {
                total += n;
                weigh(ev, n);
            })
            .ok()?;
        self.held = true;
        self.result.from_columns += events;
        self.result.total += total;
        Some(true)
    }

    /// Takes what the answerer held back, before any later event is read.
    fn flush(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        let Some(answerer) = self.answerer.as_deref_mut() else {
            return;
        };
        let mut total = 0;
        let weigh = &mut self.sink.weigh;
        answerer.flush(&mut |ev, n| {
            total += n;
            weigh(ev, n);
        });
        self.result.total += total;
    }
}

/// Reads events in ledger order, counting matches into `result` and
/// handing each to `sink.keep`, which returns false to stop the scan;
/// runs the `answerer` can answer go to `sink.weigh` instead. With
/// `fields`, events are decoded only as far as those fields need.
fn scan<K: FnMut(Event) -> bool, W: FnMut(&Event, u64)>(
    ledger_dir: &Path,
    query: &Query,
    fields: Option<&Fields>,
    params: &SearchParams,
    result: &mut SearchResult,
    answerer: Option<&mut (dyn Answerer + '_)>,
    sink: Sink<K, W>,
) -> Result<(), SearchError> {
    if !ledger_dir.exists() {
        return Ok(());
    }
    let reader = LedgerReader::open(ledger_dir)?;
    let last = match params.up_to_seq {
        Some(s) => s,
        None => reader.last_seq()?,
    };
    if last == 0 {
        return Ok(());
    }
    let candidates = clip(params.ranges.as_deref(), 1, last);
    let (ranges, cut) = newest(&candidates, params.max_scan);
    let in_candidates: u64 = candidates.iter().map(|(lo, hi)| hi - lo + 1).sum();
    result.skipped = last - in_candidates;
    let answerable = answerer
        .as_deref()
        .map(|a| a.answerable(&ranges))
        .unwrap_or_default();
    let parts = parts(&ranges, &answerable);
    let to_read: u64 = parts
        .iter()
        .map(|p| match p {
            Part::Read(lo, hi) => hi - lo + 1,
            Part::Answer(..) => 0,
        })
        .sum();
    if cut {
        let all: u64 = ranges.iter().map(|(lo, hi)| hi - lo + 1).sum();
        result.partial = true;
        result.partial_reason = Some(format!(
            "only the newest {all} of {in_candidates} events to read were examined (search.max_scan_events)"
        ));
    }
    let mut sc = Scanner {
        query,
        match_all: query.is_match_all(),
        raw: RawFilter::of(query),
        scratch: Vec::new(),
        fields,
        params,
        result,
        sink,
        answerer,
        held: false,
    };
    let flow = if to_read < READ_AHEAD_MIN {
        scan_inline(&reader, &parts, &mut sc)
    } else {
        scan_ahead(&reader, &parts, &mut sc)
    };
    if flow? {
        sc.flush();
    }
    Ok(())
}

/// Reads `lo..=hi` on this thread; false when the scan must stop.
fn read_range<K: FnMut(Event) -> bool, W: FnMut(&Event, u64)>(
    reader: &LedgerReader,
    lo: u64,
    hi: u64,
    sc: &mut Scanner<'_, '_, K, W>,
) -> Result<bool, SearchError> {
    for rec in reader.iter_range(lo, hi) {
        if !sc.handle(&rec?.payload) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs the parts on this thread; false when the scan stopped early.
fn scan_inline<K: FnMut(Event) -> bool, W: FnMut(&Event, u64)>(
    reader: &LedgerReader,
    parts: &[Part],
    sc: &mut Scanner<'_, '_, K, W>,
) -> Result<bool, SearchError> {
    for p in parts {
        let go = match *p {
            Part::Read(lo, hi) => read_range(reader, lo, hi, sc)?,
            Part::Answer(lo, hi) => match sc.answer(lo, hi) {
                Some(go) => go,
                None => read_range(reader, lo, hi, sc)?,
            },
        };
        if !go {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What the reading thread hands over, in seq order.
enum Ahead {
    Events(Vec<Vec<u8>>),
    Answer(u64, u64),
}

/// Runs the parts with the ledger read and decompressed on a second
/// thread, in order, while this one decodes and aggregates; false when
/// the scan stopped early.
fn scan_ahead<K: FnMut(Event) -> bool, W: FnMut(&Event, u64)>(
    reader: &LedgerReader,
    parts: &[Part],
    sc: &mut Scanner<'_, '_, K, W>,
) -> Result<bool, SearchError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Ahead, LedgerError>>(4);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(READ_AHEAD_BATCH);
            for &p in parts {
                let (lo, hi) = match p {
                    Part::Read(lo, hi) => (lo, hi),
                    Part::Answer(lo, hi) => {
                        if !batch.is_empty() {
                            let full = std::mem::take(&mut batch);
                            if tx.send(Ok(Ahead::Events(full))).is_err() {
                                return;
                            }
                        }
                        if tx.send(Ok(Ahead::Answer(lo, hi))).is_err() {
                            return;
                        }
                        continue;
                    }
                };
                for rec in reader.iter_range(lo, hi) {
                    match rec {
                        Ok(r) => batch.push(r.payload),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if batch.len() == READ_AHEAD_BATCH {
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(READ_AHEAD_BATCH));
                        // Fails once the scan stopped and dropped the receiver.
                        if tx.send(Ok(Ahead::Events(full))).is_err() {
                            return;
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(Ok(Ahead::Events(batch)));
            }
        });
        // Ends when the reader thread has sent everything and hung up.
        for msg in rx {
            match msg? {
                Ahead::Events(batch) => {
                    for payload in batch {
                        if !sc.handle(&payload) {
                            return Ok(false);
                        }
                    }
                }
                Ahead::Answer(lo, hi) => {
                    let go = match sc.answer(lo, hi) {
                        Some(go) => go,
                        None => read_range(reader, lo, hi, sc)?,
                    };
                    if !go {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    })
}

/// Why the scan must stop before reading its `n`-th event, if it must.
fn stop_reason(params: &SearchParams, n: u64) -> Option<String> {
    let read = n - 1;
    if params.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
        return Some(format!("the search was cancelled after {read} events"));
    }
    match params.deadline {
        Some(d) if Instant::now() >= d => Some(format!(
            "the search timed out after examining {read} events (search.timeout_secs or timeout=)"
        )),
        _ => None,
    }
}

/// The newest `max` seqs of `ranges`, and whether that cut anything off.
fn newest(ranges: &[(u64, u64)], max: u64) -> (Vec<(u64, u64)>, bool) {
    let mut left = max;
    let mut out = Vec::new();
    for &(lo, hi) in ranges.iter().rev() {
        if left == 0 {
            return (out.into_iter().rev().collect(), true);
        }
        let len = hi - lo + 1;
        if len <= left {
            out.push((lo, hi));
            left -= len;
        } else {
            out.push((hi - left + 1, hi));
            out.reverse();
            return (out, true);
        }
    }
    out.reverse();
    (out, false)
}

/// The parts of `ranges` inside `first..=last` (all of it without ranges).
fn clip(ranges: Option<&[(u64, u64)]>, first: u64, last: u64) -> Vec<(u64, u64)> {
    match ranges {
        None => vec![(first, last)],
        Some(rs) => rs
            .iter()
            .map(|&(lo, hi)| (lo.max(first), hi.min(last)))
            .filter(|(lo, hi)| lo <= hi)
            .collect(),
    }
}

fn in_range(ev: &Event, p: &SearchParams) -> bool {
    if p.since.is_none() && p.until.is_none() {
        return true;
    }
    let Some(t) = ev.timestamp() else {
        return false;
    };
    p.since.is_none_or(|s| t >= s) && p.until.is_none_or(|u| t < u)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough to read ahead on a second thread: every event arrives,
    /// in order, and stopping early (a `head`, a cancel) ends the reader.
    #[test]
    fn long_scans_read_ahead_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let n = READ_AHEAD_MIN + 1000;
        let mut ledger =
            vigil_ledger::Ledger::open(dir.path(), vigil_ledger::LedgerOptions::default()).unwrap();
        for i in 0..n {
            ledger
                .append(format!(r#"{{"n":{i},"k":{}}}"#, i % 7).as_bytes())
                .unwrap();
        }
        ledger.commit().unwrap();
        let run_q = |q: &str, p: &SearchParams| {
            run(dir.path(), &crate::parse_search(q).unwrap(), p).unwrap()
        };
        let p = SearchParams::default();

        let r = run_q("* | stats count() by k", &p);
        let counts: Vec<u64> = r
            .table
            .unwrap()
            .rows
            .iter()
            .map(|row| row[1].as_u64().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), n);
        assert_eq!(r.scanned, n);

        let r = run_q("* | head 3", &p);
        let ns: Vec<_> = r
            .hits
            .iter()
            .map(|e| e.get("n").cloned().unwrap())
            .collect();
        assert_eq!(ns, [0, 1, 2]);
        assert!(r.scanned < n);

        let r = run_q(
            "k:3",
            &SearchParams {
                limit: 2,
                ..SearchParams::default()
            },
        );
        let ns: Vec<_> = r
            .hits
            .iter()
            .map(|e| e.get("n").and_then(|v| v.as_u64()).unwrap())
            .collect();
        let last3 = (0..n)
            .rev()
            .filter(|i| i % 7 == 3)
            .take(2)
            .collect::<Vec<_>>();
        assert_eq!(ns, last3, "newest first");

        let cancel = Cancel::new();
        cancel.cancel();
        let r = run_q(
            "* | stats count()",
            &SearchParams {
                cancel: Some(cancel),
                ..SearchParams::default()
            },
        );
        assert_eq!(r.scanned, 0);
        assert_eq!(
            r.partial_reason.as_deref(),
            Some("the search was cancelled after 0 events")
        );
    }

    #[test]
    fn newest_keeps_the_end_of_the_ranges() {
        let rs = [(1, 10), (21, 30), (41, 45)];
        assert_eq!(newest(&rs, 100), (rs.to_vec(), false));
        assert_eq!(newest(&rs, 25), (rs.to_vec(), false));
        assert_eq!(newest(&rs, 24), (vec![(2, 10), (21, 30), (41, 45)], true));
        assert_eq!(newest(&rs, 15), (vec![(21, 30), (41, 45)], true));
        assert_eq!(newest(&rs, 7), (vec![(29, 30), (41, 45)], true));
        assert_eq!(newest(&rs, 0), (vec![], true));
        assert_eq!(newest(&[], 0), (vec![], false));
    }
}
