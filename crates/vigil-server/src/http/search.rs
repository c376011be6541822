//! `GET|POST /api/v1/search`, and the list of running searches.
//!
//! `q` is a whole search: a filter, optionally followed by pipes
//! (`… | stats count() by user.name`). Plain filters answer `hits`; searches
//! ending in an aggregating pipe also answer `columns` and `rows`, and a
//! `timechart` answers `buckets`.
//!
//! Every search (and export) runs under a ticket from [`Running`]: at most
//! `search.max_concurrent` at once (more are answered 429 with
//! `Retry-After`), each listed at `GET /api/v1/search/running` under an id
//! the client may choose (`X-Request-Id` or `id=`) and cancellable with
//! `DELETE /api/v1/search/{id}` or `POST /api/v1/search/{id}/cancel`. A
//! client that goes away cancels its search: the handler's future is dropped,
//! and with it a guard that raises the scan's cancel flag.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_query::exec::{run as run_search, Cancel, SearchParams};

use super::{error, AppState};
use crate::auth::Principal;
use crate::authz::Role;

/// Search request, from the query string or a JSON body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The search: a filter (`*` or empty for everything), then any pipes.
    #[serde(default)]
    pub q: String,
    /// `15m`, `2h`, `7d` or an RFC 3339 time.
    pub since: Option<String>,
    /// Same forms as `since`.
    pub until: Option<String>,
    /// Most hits (default 100); tables are bounded by the pipes' own limits.
    pub limit: Option<usize>,
    /// Time allowed: `500ms`, `10s`, `2m` or a number of seconds; capped by
    /// `search.timeout_secs`.
    pub timeout: Option<String>,
    /// The id the search is listed and cancelled under (else `X-Request-Id`,
    /// else a random one).
    pub id: Option<String>,
}

/// `GET /api/v1/search?q=…&since=…&until=…&limit=…&timeout=…&id=…`
pub async fn search_get(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    QueryParams(req): QueryParams<SearchRequest>,
) -> Response {
    run(state, who, &headers, req).await
}

/// `POST /api/v1/search` with a JSON body of the same fields.
pub async fn search_post(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<SearchRequest>(&body) {
        Ok(req) => run(state, who, &headers, req).await,
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("invalid search request body: {e}"),
        ),
    }
}

/// Parses the request into a query and bounds; errors are 400 texts.
pub fn prepare(
    req: &SearchRequest,
    cfg: &crate::config::SearchConfig,
) -> Result<(vigil_query::Search, SearchParams), String> {
    let query = vigil_query::parse_search(&req.q).map_err(|e| e.render(&req.q))?;
    let limit = req.limit.unwrap_or(100);
    if limit > cfg.max_limit {
        return Err(format!(
            "limit {limit} is above the maximum of {}",
            cfg.max_limit
        ));
    }
    let mut params = bounds(
        req.since.as_deref(),
        req.until.as_deref(),
        req.timeout.as_deref(),
        cfg,
    )?;
    params.limit = limit;
    Ok((query, params))
}

/// The time window, scan budget and deadline of a search or export.
pub(crate) fn bounds(
    since: Option<&str>,
    until: Option<&str>,
    timeout: Option<&str>,
    cfg: &crate::config::SearchConfig,
) -> Result<SearchParams, String> {
    let now = chrono::Utc::now();
    let since = match since {
        Some(s) => Some(vigil_query::parse_time(s, now).map_err(|e| format!("since: {e}"))?),
        None => None,
    };
    let until = match until {
        Some(s) => Some(vigil_query::parse_time(s, now).map_err(|e| format!("until: {e}"))?),
        None => None,
    };
    let most = Duration::from_secs(cfg.timeout_secs);
    let allowed = match timeout {
        Some(t) => parse_timeout(t)?.min(most),
        None => most,
    };
    Ok(SearchParams {
        since,
        until,
        max_scan: cfg.max_scan_events,
        deadline: Some(Instant::now() + allowed),
        ..SearchParams::default()
    })
}

/// `500ms`, `10s`, `2m`, or a bare number of seconds (`1.5`).
fn parse_timeout(t: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "timeout: {:?} is not a duration (use 500ms, 10s, 2m or a number of seconds)",
            vigil_event::sanitize::display(t)
        )
    };
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

async fn run(
    state: Arc<AppState>,
    who: Principal,
    headers: &HeaderMap,
    req: SearchRequest,
) -> Response {
    metrics::counter!("vigil_http_requests_total", "route" => "search").increment(1);
    let started = Instant::now();
    let (query, mut params) = match prepare(&req, &state.config.search) {
        Ok(p) => p,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let ticket = match state.searches.start(
        request_id(req.id.as_deref(), headers),
        &who,
        &req.q,
        "search",
    ) {
        Ok(t) => t,
        Err(refusal) => return *refusal,
    };
    let id = ticket.id.clone();
    params.cancel = Some(ticket.cancel.clone());
    // Dropped with this future when the client goes away: the scan stops,
    // and the blocking task below learns why.
    let gone = Arc::new(AtomicBool::new(false));
    let _stop_if_dropped = Abandon {
        cancel: ticket.cancel.clone(),
        gone: Arc::clone(&gone),
    };
    let durable = state.pipeline.durable_seq();
    params.up_to_seq = Some(durable);
    let dir = state.config.ledger_dir();
    let indexer = state.indexer.clone();
    // The scan is audited where it ends, on the blocking thread, so that a
    // search whose client went away is recorded too (the handler's future
    // is gone by then); the request's context is captured here.
    let ctx = crate::audit::context();
    let audit_state = Arc::clone(&state);
    let q = req.q.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        let r = match indexer {
            Some(ix) => ix.search(&query, &params),
            None => run_search(&dir, &query, &params),
        };
        if let Ok(r) = &r {
            let ended = if gone.load(Ordering::SeqCst) {
                metrics::counter!("vigil_search_cancelled_total", "by" => "disconnect")
                    .increment(1);
                Some("the client disconnected")
            } else {
                None
            };
            crate::audit::searched_in(
                &audit_state.identity.audit,
                ctx.as_ref(),
                &q,
                r.total,
                ended,
            );
        }
        r
    })
    .await;
    let mut resp = match result {
        Ok(Ok(r)) => {
            if r.partial {
                metrics::counter!("vigil_search_partial_total").increment(1);
            }
            let hits: Vec<serde_json::Value> = r.hits.into_iter().map(|e| e.into_json()).collect();
            let mut body = json!({
                "id": id,
                "hits": hits,
                "total": r.total,
                "scanned": r.scanned,
                "from_columns": r.from_columns,
                "skipped": r.skipped,
                "partial": r.partial,
                "partial_reason": r.partial_reason,
                "took_ms": started.elapsed().as_millis() as u64,
            });
            if let Some(t) = r.table {
                body["columns"] = json!(t.columns);
                body["rows"] = json!(t.rows);
            }
            if let Some(b) = r.buckets {
                let buckets: Vec<serde_json::Value> = b
                    .into_iter()
                    .map(|b| json!({"time": b.time, "values": b.values}))
                    .collect();
                body["buckets"] = buckets.into();
            }
            Json(body).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("search failed: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The id a client chose: `id=` first, then the `X-Request-Id` header.
pub(crate) fn request_id(param: Option<&str>, headers: &HeaderMap) -> Option<String> {
    param.map(str::to_owned).or_else(|| {
        headers
            .get("x-request-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    })
}

/// Raises a cancel flag and notes that the client went away when dropped
/// (with the handler's future, before the search answered).
struct Abandon {
    cancel: Cancel,
    gone: Arc<AtomicBool>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }
}

/// Raises a cancel flag when dropped.
pub(crate) struct CancelOnDrop(pub(crate) Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The searches and exports running now.
#[derive(Debug)]
pub struct Running {
    permits: Arc<Semaphore>,
    max: usize,
    list: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    owner: String,
    query: String,
    kind: &'static str,
    started: DateTime<Utc>,
    since: Instant,
    cancel: Cancel,
}

/// The right to run one search: listed while it lives, a permit held.
#[derive(Debug)]
pub struct Ticket {
    running: Arc<Running>,
    /// The id it is listed under.
    pub id: String,
    /// Raised by a cancel request or by the client going away.
    pub cancel: Cancel,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.running.lock().remove(&self.id);
    }
}

/// Longest id a client may choose.
const MAX_ID_LEN: usize = 64;

impl Running {
    /// Room for `max` searches at once.
    pub fn new(max: usize) -> Running {
        Running {
            permits: Arc::new(Semaphore::new(max)),
            max,
            list: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a permit and lists the search, or answers why not: 429 when
    /// all permits are taken, 400 for a malformed id, 409 for an id in use.
    pub fn start(
        self: &Arc<Self>,
        id: Option<String>,
        who: &Principal,
        query: &str,
        kind: &'static str,
    ) -> Result<Ticket, Box<Response>> {
        if let Some(id) = &id {
            let ok = !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "id (or X-Request-Id) {:?} must be 1 to {MAX_ID_LEN} letters, digits, '-', '_' or '.'",
                        vigil_event::sanitize::display(id)
                    ),
                )));
            }
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!("vigil_search_rejected_total").increment(1);
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{} searches are running, the most allowed at once (search.max_concurrent); try again shortly",
                    self.max
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(Box::new(r));
        };
        let id = id.unwrap_or_else(|| {
            use rand::RngCore;
            let mut b = [0u8; 8];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        });
        let cancel = Cancel::new();
        {
            let mut list = self.lock();
            if list.contains_key(&id) {
                return Err(Box::new(error(
                    StatusCode::CONFLICT,
                    &format!("a search with id {id:?} is already running"),
                )));
            }
            list.insert(
                id.clone(),
                Entry {
                    owner: who.user.clone(),
                    query: query.chars().take(1024).collect(),
                    kind,
                    started: Utc::now(),
                    since: Instant::now(),
                    cancel: cancel.clone(),
                },
            );
        }
        Ok(Ticket {
            running: self.clone(),
            id,
            cancel,
            _permit: permit,
        })
    }

    /// Raises the cancel flag of search `id` if `who` may see it.
    fn cancel(&self, id: &str, who: &Principal) -> bool {
        match self.lock().get(id) {
            Some(e) if visible(e, who) => {
                e.cancel.cancel();
                true
            }
            _ => false,
        }
    }
}

fn visible(e: &Entry, who: &Principal) -> bool {
    who.role == Role::Admin || e.owner == who.user
}

/// `GET /api/v1/search/running`: the caller's running searches (an admin
/// sees everyone's).
pub async fn running(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
) -> Response {
    let mut rows: Vec<(Instant, serde_json::Value)> = state
        .searches
        .lock()
        .iter()
        .filter(|(_, e)| visible(e, &who))
        .map(|(id, e)| {
            (
                e.since,
                json!({
                    "id": id,
                    "user": e.owner,
                    "kind": e.kind,
                    "query": e.query,
                    "started": vigil_event::format_time(e.started),
                    "running_ms": e.since.elapsed().as_millis() as u64,
                    "cancelling": e.cancel.is_cancelled(),
                }),
            )
        })
        .collect();
    rows.sort_by_key(|(t, _)| *t);
    let searches: Vec<serde_json::Value> = rows.into_iter().map(|(_, v)| v).collect();
    Json(json!({ "searches": searches })).into_response()
}

/// `DELETE /api/v1/search/{id}` and `POST /api/v1/search/{id}/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if state.searches.cancel(&id, &who) {
        metrics::counter!("vigil_search_cancelled_total", "by" => "request").increment(1);
        Json(json!({ "cancelled": id })).into_response()
    } else {
        // Someone else's search answers the same as none, so ids do not leak.
        error(
            StatusCode::NOT_FOUND,
            &format!(
                "no running search of yours has id {:?}",
                vigil_event::sanitize::display(&id)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_timeout("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_timeout("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        for bad in ["", "s", "5h", "-1", "1e999", "9999999"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}
