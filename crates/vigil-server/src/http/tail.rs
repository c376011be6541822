//! `GET /api/v1/tail?q=…`: newly stored matching events as streamed NDJSON.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query as QueryParams, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{error, AppState};

/// Tail parameters.
#[derive(Debug, Deserialize)]
pub struct TailParams {
    /// The query; empty follows everything.
    #[serde(default)]
    pub q: String,
}

/// `GET /api/v1/tail`
pub async fn tail(
    State(state): State<Arc<AppState>>,
    QueryParams(p): QueryParams<TailParams>,
) -> Response {
    let query = match vigil_query::parse(&p.q) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.render(&p.q)),
    };
    let Ok(permit) = state.tail_streams.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many tail streams open (http.max_tail_streams = {}); close one and retry",
                state.config.http.max_tail_streams
            ),
        );
    };
    let mut rx = state.pipeline.subscribe();
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        // Held for as long as the stream is open.
        let _permit = permit;
        loop {
            // A client that went away ends the stream (and frees its permit)
            // even when no events arrive.
            let next = tokio::select! {
                next = rx.recv() => next,
                () = tx.closed() => return,
            };
            let batch = match next {
                Ok(b) => b,
                Err(RecvError::Lagged(n)) => {
                    // Say so in-band rather than silently skipping events.
                    let line = format!("{{\"vigil\":{{\"notice\":\"tail fell behind; {n} batches of events were skipped\"}}}}\n");
                    if tx.send(Ok(Bytes::from(line))).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut out = Vec::new();
            for bytes in batch.iter() {
                let Ok(ev) = vigil_event::Event::from_canonical(bytes) else {
                    continue;
                };
                if query.matches(&ev) {
                    out.extend_from_slice(bytes);
                    out.push(b'\n');
                }
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
