//! `GET|POST /api/v1/search`
//!
//! `q` is a whole search: a filter, optionally followed by pipes
//! (`… | stats count() by user.name`). Plain filters answer `hits`; searches
//! ending in an aggregating pipe also answer `columns` and `rows`, and a
//! `timechart` answers `buckets`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vigil_query::exec::{run as run_search, SearchParams};

use super::{error, AppState};

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
}

/// `GET /api/v1/search?q=…&since=…&until=…&limit=…`
pub async fn search_get(
    State(state): State<Arc<AppState>>,
    QueryParams(req): QueryParams<SearchRequest>,
) -> Response {
    run(state, req).await
}

/// `POST /api/v1/search` with a JSON body of the same fields.
pub async fn search_post(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<SearchRequest>(&body) {
        Ok(req) => run(state, req).await,
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
    let now = chrono::Utc::now();
    let since = match &req.since {
        Some(s) => Some(vigil_query::parse_time(s, now).map_err(|e| format!("since: {e}"))?),
        None => None,
    };
    let until = match &req.until {
        Some(s) => Some(vigil_query::parse_time(s, now).map_err(|e| format!("until: {e}"))?),
        None => None,
    };
    let limit = req.limit.unwrap_or(100);
    if limit > cfg.max_limit {
        return Err(format!(
            "limit {limit} is above the maximum of {}",
            cfg.max_limit
        ));
    }
    Ok((
        query,
        SearchParams {
            since,
            until,
            limit,
            max_scan: cfg.max_scan_events,
            deadline: Some(Instant::now() + Duration::from_secs(cfg.timeout_secs)),
            up_to_seq: None,
            ranges: None,
        },
    ))
}

async fn run(state: Arc<AppState>, req: SearchRequest) -> Response {
    metrics::counter!("vigil_http_requests_total", "route" => "search").increment(1);
    let started = Instant::now();
    let (query, mut params) = match prepare(&req, &state.config.search) {
        Ok(p) => p,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let durable = state.pipeline.durable_seq();
    params.up_to_seq = Some(durable);
    let dir = state.config.ledger_dir();
    let indexer = state.indexer.clone();
    let result = tokio::task::spawn_blocking(move || {
        if let Some(ix) = indexer {
            let c = ix.candidates(&query.query, params.since, params.until, 1, durable);
            params.ranges = Some(c.ranges);
        }
        run_search(&dir, &query, &params)
    })
    .await;
    match result {
        Ok(Ok(r)) => {
            crate::audit::searched(&state.identity.audit, &req.q, r.total);
            let hits: Vec<serde_json::Value> = r.hits.into_iter().map(|e| e.into_json()).collect();
            let mut body = json!({
                "hits": hits,
                "total": r.total,
                "scanned": r.scanned,
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
    }
}
