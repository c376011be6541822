//! The search executor: a scan over the ledger at this stage, feeding
//! the pipes' [`Executor`] when the search has any.
//!
//! Events are read in sequence order, decoded, filtered by time and by the
//! [`Query`], and the newest `limit` matches are kept. A scan is bounded by
//! an event budget and a deadline; when either stops it early the result
//! says so (`partial`) instead of the server hanging.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use vigil_event::Event;
use vigil_ledger::{LedgerError, LedgerReader};

use crate::rawfilter::RawFilter;
use crate::{Bucket, Executor, Query, QueryError, Search, Table};

/// Bounds of one search.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Only events with `@timestamp` at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only events with `@timestamp` before this.
    pub until: Option<DateTime<Utc>>,
    /// Most hits returned (the newest ones).
    pub limit: usize,
    /// Most events examined; the most recent ones are scanned first.
    pub max_scan: u64,
    /// Stop when this instant passes.
    pub deadline: Option<Instant>,
    /// Scan only up to this sequence number (the writer's durable seq).
    pub up_to_seq: Option<u64>,
    /// Read only these inclusive seq ranges (increasing, not overlapping),
    /// as a search index narrows them; `None` reads every seq.
    pub ranges: Option<Vec<(u64, u64)>>,
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
    /// Events examined.
    pub scanned: u64,
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
    scan(ledger_dir, query, params, &mut result, |ev| {
        if params.limit > 0 {
            if kept.len() == params.limit {
                kept.pop_front();
            }
            kept.push_back(ev);
        }
        true
    })?;
    result.hits = kept.into_iter().rev().collect();
    Ok(result)
}

/// Runs a whole search, filter and pipes, over the ledger in `ledger_dir`.
///
/// Without pipes this is [`search`] (newest hits first). With pipes the
/// events that pass the filter go through the [`Executor`] oldest first, in
/// ledger order; the scan stops early once the pipeline is
/// [`done`](Executor::done) (a `head` has what it needs).
pub fn run(
    ledger_dir: &Path,
    s: &Search,
    params: &SearchParams,
) -> Result<SearchResult, SearchError> {
    if s.pipeline.is_empty() {
        return search(ledger_dir, &s.query, params);
    }
    let mut ex = Executor::new(&s.pipeline, params.limit)?;
    let mut result = SearchResult::default();
    scan(ledger_dir, &s.query, params, &mut result, |ev| {
        ex.push(&ev);
        !ex.done()
    })?;
    let out = ex.finish();
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

/// Reads events in ledger order, counting matches into `result` and
/// handing each to `keep`, which returns false to stop the scan.
fn scan(
    ledger_dir: &Path,
    query: &Query,
    params: &SearchParams,
    result: &mut SearchResult,
    mut keep: impl FnMut(Event) -> bool,
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
    let mut first = 1;
    if params.max_scan < last {
        first = last - params.max_scan + 1;
        result.partial = true;
        result.partial_reason = Some(format!(
            "only the most recent {} events were scanned (search.max_scan_events)",
            params.max_scan
        ));
    }
    let match_all = query.is_match_all();
    // Most events of a selective search fail this check on their bytes,
    // which costs a fraction of decoding them.
    let raw = RawFilter::of(query);
    let mut scratch = Vec::new();
    let ranges = clip(params.ranges.as_deref(), first, last);
    result.skipped = (last - first + 1) - ranges.iter().map(|(lo, hi)| hi - lo + 1).sum::<u64>();
    'ranges: for (lo, hi) in ranges {
        for rec in reader.iter_range(lo, hi) {
            let rec = rec?;
            result.scanned += 1;
            if result.scanned.is_multiple_of(4096) {
                if let Some(d) = params.deadline {
                    if Instant::now() > d {
                        result.partial = true;
                        result.partial_reason = Some(format!(
                            "the search timed out after scanning {} events",
                            result.scanned
                        ));
                        break 'ranges;
                    }
                }
            }
            if raw
                .as_ref()
                .is_some_and(|f| !f.may_match(&rec.payload, &mut scratch))
            {
                continue;
            }
            let Ok(ev) = Event::from_canonical(&rec.payload) else {
                continue;
            };
            if !in_range(&ev, params) || (!match_all && !query.matches(&ev)) {
                continue;
            }
            result.total += 1;
            if !keep(ev) {
                break 'ranges;
            }
        }
    }
    Ok(())
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
