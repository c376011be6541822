//! `POST /api/v1/verify` and `GET /api/v1/proof/…`: the ledger's integrity
//! checks, served from a running server.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vigil_ledger::proof::{prove_consistency, prove_inclusion, ProofError};
use vigil_ledger::verify::{verify, VerifyOptions};

use super::{error, AppState};

/// Body of `POST /api/v1/verify` (all fields optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The auditor's initial seal key `k[0]` (hex), to check every seal.
    pub seal_key: Option<String>,
    /// External checkpoints (signed notes or `checkpoints.log` lines), e.g. from witnesses.
    #[serde(default)]
    pub checkpoints: Vec<String>,
    /// A published verifier key to trust instead of the one on this host.
    pub key: Option<String>,
}

/// `POST /api/v1/verify`
pub async fn verify_route(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let req: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid verify request body: {e}"),
                )
            }
        }
    };
    let verifier = match &req.key {
        Some(k) => match k.parse() {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("key: {e}")),
        },
        None => match vigil_ledger::integrity::load_verifier(&state.config.data_dir.join("keys")) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("loading the verifier key: {e}"),
                )
            }
        },
    };
    let opts = VerifyOptions {
        verifier,
        seal_key: req.seal_key,
        external: req
            .checkpoints
            .into_iter()
            .enumerate()
            .map(|(i, c)| (format!("checkpoints[{i}]"), c.into_bytes()))
            .collect(),
    };
    let dir = state.config.ledger_dir();
    metrics::counter!("vigil_http_requests_total", "route" => "verify").increment(1);
    match tokio::task::spawn_blocking(move || verify(&dir, &opts)).await {
        Ok(Ok(r)) => Json(json!({
            "ok": r.ok(),
            "records": r.records,
            "last_seq": r.last_seq,
            "bytes": r.bytes,
            "segments": r.segments,
            "stored_checkpoints": r.stored_checkpoints,
            "checkpoints_checked": r.checkpoints_checked,
            "newest_checkpoint": r.newest_checkpoint,
            "seals_checked": r.seals_checked,
            "findings": r.findings,
            "notes": r.notes,
            "took_ms": r.elapsed.as_millis() as u64,
        }))
        .into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("verification could not run: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /api/v1/proof/{seq}`: an inclusion proof for one event.
pub async fn inclusion(State(state): State<Arc<AppState>>, UrlPath(seq): UrlPath<u64>) -> Response {
    let dir = state.config.ledger_dir();
    respond(tokio::task::spawn_blocking(move || prove_inclusion(&dir, seq).map(|p| json!(p))).await)
}

/// Parameters of a consistency proof.
#[derive(Debug, Deserialize)]
pub struct ConsistencyParams {
    /// Size of the older tree.
    pub old: u64,
    /// Size of the newer tree (a stored checkpoint; default the newest).
    pub new: Option<u64>,
}

/// `GET /api/v1/proof/consistency?old=N[&new=M]`
pub async fn consistency(
    State(state): State<Arc<AppState>>,
    Query(p): Query<ConsistencyParams>,
) -> Response {
    let dir = state.config.ledger_dir();
    respond(
        tokio::task::spawn_blocking(move || {
            prove_consistency(&dir, p.old, p.new).map(|p| json!(p))
        })
        .await,
    )
}

fn respond(r: Result<Result<serde_json::Value, ProofError>, tokio::task::JoinError>) -> Response {
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        // Asking for a proof the ledger cannot give (unknown seq, no covering
        // checkpoint yet) is the caller's problem; storage failures are ours.
        Ok(Err(e @ (ProofError::Ledger(_) | ProofError::Integrity(_)))) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
