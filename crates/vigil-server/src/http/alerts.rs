//! Alert routes: list, show, acknowledge and close alerts; manage
//! suppressions; list deliveries (e.g. the dead ones).
//!
//! Status changes and suppressions name the API token that made them; a
//! status change is answered only once its ledger event is durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use vigil_alert::model::{now_ms, Level, Status};
use vigil_alert::store::{ListFilter, StoreError};

use super::{error, AppState};
use crate::alerting::Alerting;
use crate::auth::Principal;

/// Most alerts or deliveries one request returns.
pub const MAX_LIMIT: usize = 1000;

/// Longest note on an acknowledgement or closure.
pub const MAX_NOTE: usize = 1024;

/// The answer of every alert route while alert tracking is off.
fn off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "alert tracking is off (configure [alerts] with a channel, or set enabled = true)",
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound { .. } => error(StatusCode::NOT_FOUND, &e.to_string()),
        StoreError::Invalid(_) => error(StatusCode::CONFLICT, &e.to_string()),
        StoreError::Sqlite { .. } => {
            tracing::error!(error = %e, "alert store failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the alert store failed")
        }
    }
}

/// Runs `f` on the store off the async workers.
async fn blocking<T: Send + 'static>(
    a: &Alerting,
    f: impl FnOnce(&mut vigil_alert::store::Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let engine = a.engine.clone();
    tokio::task::spawn_blocking(move || engine.with_store(f))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "the alert store failed"))?
        .map_err(store_error)
}

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open`, `acknowledged` or `closed`.
    pub status: Option<String>,
    /// Lowest Sigma level (`low`, `medium`, `high`, `critical`).
    pub severity: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// A value of `source.ip`, `user.name` or `host.name`.
    pub entity: Option<String>,
    /// Seen at or after: `15m`, `2h`, `7d` or RFC 3339.
    pub since: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<usize>,
    /// Alerts to skip.
    pub offset: Option<usize>,
}

/// `GET /api/v1/alerts`
pub async fn list(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, &m);
    let status = match q.status.as_deref().map(|s| (s, Status::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => return bad(format!("status {s:?} is not open, acknowledged or closed")),
    };
    let min_level = match q.severity.as_deref().map(|s| (s, Level::parse(s))) {
        None => None,
        Some((_, Some(l))) => Some(l),
        Some((s, None)) => {
            return bad(format!(
                "severity {s:?} is not informational, low, medium, high or critical"
            ))
        }
    };
    let since = match &q.since {
        None => None,
        Some(s) => match vigil_query::parse_time(s, chrono::Utc::now()) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(e) => return bad(format!("since: {e}")),
        },
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return bad(format!("limit must be 1..={MAX_LIMIT}"));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = ListFilter {
        status,
        min_level,
        rule_id: q.rule,
        entity: q.entity,
        since,
        limit,
        offset,
    };
    match blocking(a, move |s| s.list(&filter)).await {
        Ok((alerts, total)) => Json(json!({
            "alerts": alerts,
            "total": total,
            "limit": limit,
            "offset": offset,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// `GET /api/v1/alerts/{id}`
pub async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    match blocking(a, move |s| s.get(&id)).await {
        Ok((alert, history, deliveries)) => Json(json!({
            "alert": alert,
            "history": history,
            "deliveries": deliveries,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// Body of `POST /api/v1/alerts/{id}/ack` and `/close` (optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// Why (kept in the alert's history and the ledger event).
    #[serde(default)]
    pub note: String,
}

async fn set_status(
    state: Arc<AppState>,
    principal: Principal,
    id: String,
    body: Option<Json<NoteBody>>,
    to: Status,
) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    let note = body.map(|b| b.0.note).unwrap_or_default();
    if note.len() > MAX_NOTE {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("note is longer than {MAX_NOTE} bytes"),
        );
    }
    let actor = principal.name.clone();
    let change = match blocking(a, move |s| s.set_status(&id, to, &actor, &note, now_ms())).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    a.record_change(&state.pipeline, &change).await;
    let id = change.alert_id.clone();
    match blocking(a, move |s| s.get(&id)).await {
        Ok((alert, history, _)) => {
            Json(json!({ "alert": alert, "history": history })).into_response()
        }
        Err(r) => r,
    }
}

/// `POST /api/v1/alerts/{id}/ack`
pub async fn ack(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Option<Json<NoteBody>>,
) -> Response {
    set_status(state, principal, id, body, Status::Acknowledged).await
}

/// `POST /api/v1/alerts/{id}/close`
pub async fn close(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Option<Json<NoteBody>>,
) -> Response {
    set_status(state, principal, id, body, Status::Closed).await
}

/// `GET /api/v1/suppressions`
pub async fn suppressions(State(state): State<Arc<AppState>>) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    match blocking(a, |s| s.suppressions(now_ms())).await {
        Ok(list) => Json(json!({ "suppressions": list })).into_response(),
        Err(r) => r,
    }
}

/// Body of `POST /api/v1/suppressions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// Alert fields that must all equal.
    pub fields: BTreeMap<String, String>,
    /// Why.
    pub reason: String,
    /// RFC 3339 expiry, or a duration from now (`2h`, `7d`).
    pub expires: Option<String>,
}

/// `POST /api/v1/suppressions`
pub async fn add_suppression(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<NewSuppression>,
) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    let now = chrono::Utc::now();
    let expires = match body.expires.as_deref() {
        None => None,
        Some(s) => match expiry(s, now) {
            Ok(t) => Some(t),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("expires: {e}")),
        },
    };
    let author = principal.name.clone();
    let now = now.timestamp_millis();
    match blocking(a, move |s| {
        s.add_suppression(body.fields, &body.reason, &author, expires, now)
    })
    .await
    {
        Ok(sup) => (StatusCode::CREATED, Json(json!({ "suppression": sup }))).into_response(),
        Err(r) => match r.status() {
            // Bad fields or reason are the caller's mistake.
            StatusCode::CONFLICT => {
                let (mut parts, body) = r.into_parts();
                parts.status = StatusCode::BAD_REQUEST;
                Response::from_parts(parts, body)
            }
            _ => r,
        },
    }
}

/// An expiry given as RFC 3339 or as a duration from `now` (`30m`, `2h`, `7d`).
fn expiry(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    if let Some(t) = vigil_query::parse_absolute(s) {
        return Ok(t.timestamp_millis());
    }
    // `parse_time` reads durations as "that long ago"; an expiry is ahead.
    let ago = vigil_query::parse_time(s, now).map_err(|e| e.to_string())?;
    Ok((now + (now - ago)).timestamp_millis())
}

/// `DELETE /api/v1/suppressions/{id}`
pub async fn delete_suppression(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    match blocking(a, move |s| s.delete_suppression(&id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Query of `GET /api/v1/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    /// Most deliveries returned (default 100).
    pub limit: Option<usize>,
}

/// `GET /api/v1/deliveries`
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    let Some(a) = state.alerts.as_ref() else {
        return off();
    };
    if let Some(s) = q.state.as_deref() {
        if !matches!(s, "pending" | "delivered" | "dead") {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("state {s:?} is not pending, delivered or dead"),
            );
        }
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("limit must be 1..={MAX_LIMIT}"),
        );
    }
    match blocking(a, move |s| s.deliveries(q.state.as_deref(), limit)).await {
        Ok(list) => Json(json!({ "deliveries": list })).into_response(),
        Err(r) => r,
    }
}
