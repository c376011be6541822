//! The search executor: a scan over the ledger at this stage.
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

use crate::Query;

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
    /// Whether the scan stopped before covering the whole range.
    pub partial: bool,
    /// Why it is partial.
    pub partial_reason: Option<String>,
}

/// Search failures.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Runs `query` over the ledger in `ledger_dir`.
pub fn search(
    ledger_dir: &Path,
    query: &Query,
    params: &SearchParams,
) -> Result<SearchResult, SearchError> {
    let mut result = SearchResult::default();
    if !ledger_dir.exists() {
        return Ok(result);
    }
    let reader = LedgerReader::open(ledger_dir)?;
    let last = match params.up_to_seq {
        Some(s) => s,
        None => reader.last_seq()?,
    };
    if last == 0 {
        return Ok(result);
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
    let mut kept: VecDeque<Event> = VecDeque::with_capacity(params.limit.min(4096));
    let match_all = query.is_match_all();
    for rec in reader.iter_range(first, last) {
        let rec = rec?;
        result.scanned += 1;
        if result.scanned % 4096 == 0 {
            if let Some(d) = params.deadline {
                if Instant::now() > d {
                    result.partial = true;
                    result.partial_reason = Some(format!(
                        "the search timed out after scanning {} events",
                        result.scanned
                    ));
                    break;
                }
            }
        }
        let Ok(ev) = Event::from_canonical(&rec.payload) else {
            continue;
        };
        if !in_range(&ev, params) || (!match_all && !query.matches(&ev)) {
            continue;
        }
        result.total += 1;
        if params.limit == 0 {
            continue;
        }
        if kept.len() == params.limit {
            kept.pop_front();
        }
        kept.push_back(ev);
    }
    result.hits = kept.into_iter().rev().collect();
    Ok(result)
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
