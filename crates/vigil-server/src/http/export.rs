//! `GET|POST /api/v1/export`: every event a filter matches, streamed.
//!
//! The scan runs on a blocking thread and hands the formatted lines in
//! chunks of about 64 KiB to the response body through a bounded channel,
//! so memory stays flat however many events match, and a slow client slows
//! the scan instead of filling memory. The export takes a filter without
//! pipes (tables come from `/api/v1/search`); `fields=` chooses the CSV
//! columns or the NDJSON fields. Events come oldest first.
//!
//! It ends early, with a marker line (see [`vigil_query::export`]), at
//! `search.export_max_events` rows (or a lower `limit=`), at the timeout,
//! at `search.max_scan_events`, or when cancelled through the running list.
//! A client that disconnects stops the scan: the body is dropped, the
//! channel closes and the next hand-over fails. Every export is recorded in
//! the self-audit, with its row count and why it ended early.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query as QueryParams, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use vigil_query::export::{parse_fields, ExportFormat, ExportWriter};

use super::search::{bounds, request_id, CancelOnDrop};
use super::{error, AppState};
use crate::auth::Principal;

/// Bytes gathered before a chunk is handed to the body.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most.
const QUEUED_CHUNKS: usize = 4;

/// Export request, from the query string or a JSON body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The filter (`*` or empty for everything); pipes are refused.
    #[serde(default)]
    pub q: String,
    /// `15m`, `2h`, `7d` or an RFC 3339 time.
    pub since: Option<String>,
    /// Same forms as `since`.
    pub until: Option<String>,
    /// `ndjson` (default) or `csv`.
    pub format: Option<String>,
    /// Comma-separated fields: CSV columns, or the fields NDJSON lines keep.
    pub fields: Option<String>,
    /// Most rows, at most `search.export_max_events` (the default).
    pub limit: Option<u64>,
    /// Time allowed, as for search; capped by `search.timeout_secs`.
    pub timeout: Option<String>,
    /// The id the export is listed and cancelled under.
    pub id: Option<String>,
}

/// `GET /api/v1/export?q=…&format=ndjson|csv&fields=…`
pub async fn export_get(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    QueryParams(req): QueryParams<ExportRequest>,
) -> Response {
    start(state, who, &headers, req)
}

/// `POST /api/v1/export` with a JSON body of the same fields.
pub async fn export_post(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<ExportRequest>(&body) {
        Ok(req) => start(state, who, &headers, req),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("invalid export request body: {e}"),
        ),
    }
}

fn start(
    state: Arc<AppState>,
    who: Principal,
    headers: &HeaderMap,
    req: ExportRequest,
) -> Response {
    metrics::counter!("vigil_http_requests_total", "route" => "export").increment(1);
    let cfg = &state.config.search;
    let search = match vigil_query::parse_search(&req.q) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.render(&req.q)),
    };
    if let Some(p) = search.pipeline.pipes.first() {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "export takes a filter without pipes (found '| {}' at byte {}); choose columns with fields= and get tables from /api/v1/search",
                p.node.name(),
                p.at
            ),
        );
    }
    let format = match ExportFormat::parse(req.format.as_deref().unwrap_or("ndjson")) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let fields = match req.fields.as_deref().map(parse_fields).transpose() {
        Ok(f) => f.filter(|f| !f.is_empty()),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let mut params = match bounds(
        req.since.as_deref(),
        req.until.as_deref(),
        req.timeout.as_deref(),
        cfg,
    ) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let cap = cfg.export_max_events;
    let limit = req.limit.map_or(cap, |l| l.min(cap));
    let ticket = match state.searches.start(
        request_id(req.id.as_deref(), headers),
        &who,
        &req.q,
        "export",
    ) {
        Ok(t) => t,
        Err(refusal) => return *refusal,
    };
    let id = ticket.id.clone();
    params.cancel = Some(ticket.cancel.clone());
    let durable = state.pipeline.durable_seq();
    params.up_to_seq = Some(durable);
    let ctx = crate::audit::context();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    let stop = CancelOnDrop(ticket.cancel.clone());
    let state2 = state.clone();
    let q = req.q.clone();
    tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        if let Some(ix) = &state2.indexer {
            let c = ix.candidates(&search.query, params.since, params.until, 1, durable);
            params.ranges = Some(c.ranges);
        }
        let writer = ExportWriter::new(format, fields);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        writer.header(&mut buf);
        let (mut rows, mut capped, mut gone) = (0u64, false, false);
        let result =
            vigil_query::exec::stream(&state2.config.ledger_dir(), &search.query, &params, |ev| {
                if rows == limit {
                    capped = true;
                    return false;
                }
                writer.event(&ev, &mut buf);
                rows += 1;
                if buf.len() >= CHUNK {
                    let chunk = Bytes::from(std::mem::replace(
                        &mut buf,
                        Vec::with_capacity(CHUNK + 4096),
                    ));
                    if tx.blocking_send(chunk).is_err() {
                        gone = true;
                        return false;
                    }
                }
                true
            });
        let cut = match (&result, capped) {
            (Err(e), _) => Some(format!("the export failed: {e}")),
            (Ok(_), true) if limit < cap => Some(format!("limit ({limit}) reached")),
            (Ok(_), true) => Some(format!("search.export_max_events ({cap}) reached")),
            (Ok(r), false) => r.partial_reason.clone(),
        };
        let ended = if gone {
            metrics::counter!("vigil_search_cancelled_total", "by" => "disconnect").increment(1);
            Some("the client disconnected".to_string())
        } else {
            if let Some(why) = &cut {
                writer.cut(why, rows, &mut buf);
            }
            if !buf.is_empty() && tx.blocking_send(Bytes::from(buf)).is_err() {
                metrics::counter!("vigil_search_cancelled_total", "by" => "disconnect")
                    .increment(1);
                Some("the client disconnected".to_string())
            } else {
                cut
            }
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "export failed");
        }
        metrics::counter!("vigil_export_rows_total").increment(rows);
        crate::audit::exported(
            &state2.identity.audit,
            ctx.as_ref(),
            &q,
            format.as_str(),
            rows,
            ended.as_deref(),
        );
    });
    let body = ReceiverStream::new(rx).map(move |chunk| {
        // Lives as long as the body: dropping it (the client went away)
        // raises the cancel flag even while the scan is between matches.
        let _ = &stop;
        Ok::<_, Infallible>(chunk)
    });
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!("attachment; filename=\"vigil-export.{}\"", format.as_str());
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    resp
}
