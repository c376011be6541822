//! The HTTP API (axum): ingest, search, tail, health and metrics.
//!
//! Every route except `/healthz` and `/readyz` requires a bearer token; the
//! authentication layer sits on the whole API router so a route added later
//! cannot forget it.

mod alerts;
mod events;
mod integrity;
mod ops;
mod rules;
mod search;
mod tail;

pub use search::{prepare as prepare_search, SearchRequest};

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::auth::{AuthError, Principal, TokenStore};
use crate::config::Config;
use crate::pipeline::PipelineHandle;

/// State shared by all handlers.
pub struct AppState {
    /// Server configuration.
    pub config: Config,
    /// The event pipeline.
    pub pipeline: Arc<PipelineHandle>,
    /// Token verification.
    pub tokens: Arc<TokenStore>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Sigma detection rules.
    pub detection: Arc<crate::detection::Detection>,
    /// One permit per open tail stream (`http.max_tail_streams`).
    pub tail_streams: Arc<tokio::sync::Semaphore>,
    /// The search index, unless `search.index` is off.
    pub indexer: Option<Arc<crate::indexer::Indexer>>,
    /// The alert engine, when `[alerts]` is on.
    pub alerts: Option<crate::alerting::Alerting>,
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/events", post(events::ingest))
        .route(
            "/api/v1/search",
            get(search::search_get).post(search::search_post),
        )
        .route("/api/v1/tail", get(tail::tail))
        .route("/api/v1/sources", get(ops::sources))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/verify", post(integrity::verify_route))
        .route("/api/v1/proof/consistency", get(integrity::consistency))
        .route("/api/v1/proof/{seq}", get(integrity::inclusion))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::show))
        .route("/api/v1/alerts/{id}/ack", post(alerts::ack))
        .route("/api/v1/alerts/{id}/close", post(alerts::close))
        .route(
            "/api/v1/suppressions",
            get(alerts::suppressions).post(alerts::add_suppression),
        )
        .route(
            "/api/v1/suppressions/{id}",
            delete(alerts::delete_suppression),
        )
        .route("/api/v1/deliveries", get(alerts::deliveries))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(api)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.http.max_body_bytes,
        ))
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = bearer(&req);
    match check_token(&state, header).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(refusal) => refusal,
    }
}

/// Checks the request's bearer token; the error is the response to send.
fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn check_token(state: &AppState, header: Option<String>) -> Result<Principal, Response> {
    let tokens = state.tokens.clone();
    // Argon2 verification is CPU-heavy on first use of a token: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || tokens.authenticate(header.as_deref()))
        .await
        .unwrap_or_else(|e| Err(AuthError::Store(e.to_string())));
    result.map_err(|e| match e {
        AuthError::Store(e) => {
            tracing::error!(error = %e, "token store failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication is unavailable",
            )
        }
        e => {
            metrics::counter!("vigil_http_unauthorized_total").increment(1);
            let mut r = error(StatusCode::UNAUTHORIZED, &e.to_string());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
            r
        }
    })
}

/// Unknown routes are behind authentication too, so anonymous callers
/// cannot probe which routes exist.
async fn not_found(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let header = bearer(&req);
    match check_token(&state, header).await {
        Ok(_) => error(StatusCode::NOT_FOUND, "no such route"),
        Err(refusal) => refusal,
    }
}

/// A JSON error body `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": vigil_event::sanitize::display(message) })),
    )
        .into_response()
}
