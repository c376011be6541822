//! Blocklist routes, for bouncers and people.
//!
//! `GET /api/v1/blocklist` answers plain text, one address or CIDR per line
//! (what nftables, ipset and reverse-proxy bouncers read), unless JSON is
//! asked for with `?format=json` or `Accept: application/json`.
//! `POST` adds an entry by hand (with a TTL), `DELETE …/{addr}` removes one
//! (a CIDR is URL-encoded: `203.0.113.0%2F24`). The never-block allowlist
//! applies to manual adds as to playbooks, and every change is a ledger
//! event naming who made it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use vigil_alert::model::now_ms;
use vigil_ingest::InputKind;
use vigil_respond::blocklist::BlocklistError;
use vigil_respond::guard::parse_net;

use super::{error, AppState};
use crate::auth::Principal;
use crate::pipeline::Prepared;

/// Longest reason of a manual block.
pub const MAX_REASON: usize = 512;

/// Query of `GET /api/v1/blocklist`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `text` (default) or `json`.
    pub format: Option<String>,
}

/// Body of `POST /api/v1/blocklist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// An address or a CIDR network.
    pub address: String,
    /// `30m`, `1h`, `7d`; at most `[response] max_ttl_secs`.
    pub ttl: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

fn failed(e: BlocklistError) -> Response {
    match e {
        BlocklistError::Full(_) => error(StatusCode::INSUFFICIENT_STORAGE, &e.to_string()),
        BlocklistError::Sql { .. } => {
            tracing::error!(error = %e, "blocklist store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the blocklist store failed",
            )
        }
    }
}

fn wants_json(q: &ListQuery, headers: &HeaderMap) -> Result<bool, String> {
    match q.format.as_deref() {
        Some("json") => return Ok(true),
        Some("text") => return Ok(false),
        Some(other) => return Err(format!("format {other:?} is not text or json")),
        None => {}
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(accept.contains("application/json") && !accept.contains("text/plain"))
}

/// `GET /api/v1/blocklist[?format=json]`
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let json = match wants_json(&q, &headers) {
        Ok(j) => j,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let b = state.playbooks.blocklist().clone();
    let entries = match tokio::task::spawn_blocking(move || b.list(now_ms())).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return failed(e),
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the blocklist store failed",
            )
        }
    };
    if json {
        return Json(json!({"total": entries.len(), "entries": entries})).into_response();
    }
    let mut body = String::new();
    for e in &entries {
        body.push_str(&e.address);
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// `POST /api/v1/blocklist` with `{"address", "ttl", "reason"}`.
pub async fn add(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    let req: AddRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid blocklist request body: {e}"),
            )
        }
    };
    let net = match parse_net(&req.address) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, &format!("address: {m}")),
    };
    if let Err(m) = state.playbooks.responder.never_block().check(&net) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("refused: {m}"));
    }
    let max = state.playbooks.max_ttl;
    let ttl = match vigil_respond::duration::parse(&req.ttl) {
        Ok(d) if !d.is_zero() && d <= max => d,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "ttl {} is out of range (1s..={}, [response] max_ttl_secs)",
                    req.ttl,
                    vigil_respond::duration::format(max)
                ),
            )
        }
        Err(m) => return error(StatusCode::BAD_REQUEST, &format!("ttl: {m}")),
    };
    if req.reason.len() > MAX_REASON || req.reason.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("reason must be at most {MAX_REASON} bytes without control characters"),
        );
    }
    let who = format!("user:{}", principal.name);
    let b = state.playbooks.blocklist().clone();
    let (reason, source) = (req.reason.clone(), who.clone());
    let entry =
        match tokio::task::spawn_blocking(move || b.add(&net, &reason, &source, ttl, now_ms()))
            .await
        {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => return failed(e),
            Err(_) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the blocklist store failed",
                )
            }
        };
    let detail = format!(
        "until {}{}",
        entry.expires_at,
        if req.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", req.reason)
        }
    );
    let ev = crate::playbooks::manual_event("ip_blocked", &entry.address, &principal.name, &detail);
    if let Err(e) = state
        .pipeline
        .write_durable(vec![Prepared::new(&ev)], Vec::new(), InputKind::Internal)
        .await
    {
        tracing::error!(error = %e, "recording a manual block failed");
    }
    (StatusCode::CREATED, Json(json!({ "entry": entry }))).into_response()
}

/// `DELETE /api/v1/blocklist/{addr}`
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(addr): Path<String>,
) -> Response {
    let net = match parse_net(&addr) {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, &format!("address: {m}")),
    };
    let b = state.playbooks.blocklist().clone();
    match tokio::task::spawn_blocking(move || b.remove(&net, now_ms())).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!(
                    "{} is not on the blocklist",
                    vigil_respond::guard::show(&net)
                ),
            )
        }
        Ok(Err(e)) => return failed(e),
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the blocklist store failed",
            )
        }
    }
    let shown = vigil_respond::guard::show(&net);
    let ev =
        crate::playbooks::manual_event("ip_unblocked", &shown, &principal.name, "removed by hand");
    if let Err(e) = state
        .pipeline
        .write_durable(vec![Prepared::new(&ev)], Vec::new(), InputKind::Internal)
        .await
    {
        tracing::error!(error = %e, "recording a manual unblock failed");
    }
    Json(json!({ "removed": shown })).into_response()
}
