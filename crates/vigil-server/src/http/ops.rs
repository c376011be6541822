//! Health, readiness, metrics and source listing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{error, AppState};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the writer is running and can accept events. Also says
/// how far the ledger is durable and the search index complete (`null`
/// when the index is off), which is what a load test waits for.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.pipeline.is_alive() {
        let indexed = state.indexer.as_ref().map(|ix| ix.covered());
        Json(json!({
            "status": "ready",
            "durable_seq": state.pipeline.durable_seq(),
            "indexed_seq": indexed,
        }))
        .into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the ledger writer is not running",
        )
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed in this process",
        ),
    }
}

/// `GET /api/v1/sources`: every source that has sent events.
pub async fn sources(State(state): State<Arc<AppState>>) -> Response {
    let dir = state.config.data_dir.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let conn = crate::meta::open(&dir)?;
        crate::meta::list_sources(&conn)
    })
    .await;
    match rows {
        Ok(Ok(rows)) => Json(json!({"sources": rows})).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("metadata database: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
