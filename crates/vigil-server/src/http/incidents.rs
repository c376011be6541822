//! Incident routes: list, open from alerts, show with timeline, change
//! (status, assignee, severity, tags), notes, pinned events, attached
//! alerts, reports (JSON, Markdown) and response metrics.
//!
//! Changes name the authenticated principal and are answered once their
//! ledger events are durable.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_incident::export::{Evidence, Report};
use vigil_incident::{IncidentError, Level, ListFilter, Status};

use super::{error, AppState};
use crate::auth::Principal;
use crate::incidents::Incidents;

/// Most incidents one request returns.
pub const MAX_LIMIT: usize = 1000;

/// Most alerts one incident is opened from in one request.
pub const MAX_CREATE_ALERTS: usize = 1000;

fn off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "incident tracking is off (it needs alert tracking: configure [alerts]; and [incidents] enabled = true)",
    )
}

fn store_error(e: IncidentError) -> Response {
    match e {
        IncidentError::NotFound { .. } => error(StatusCode::NOT_FOUND, &e.to_string()),
        IncidentError::IllegalTransition { .. } | IncidentError::Conflict(_) => {
            error(StatusCode::CONFLICT, &e.to_string())
        }
        IncidentError::Invalid(_) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        IncidentError::Sqlite { .. } | IncidentError::Unavailable(_) => {
            tracing::error!(error = %e, "incident store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the incident store failed",
            )
        }
    }
}

fn bad(m: &str) -> Response {
    error(StatusCode::BAD_REQUEST, m)
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!(
            "status {s:?} is not new, acknowledged, investigating, contained, resolved or false_positive"
        )
    })
}

fn parse_level(what: &str, s: &str) -> Result<Level, String> {
    Level::parse(s)
        .ok_or_else(|| format!("{what} {s:?} is not informational, low, medium, high or critical"))
}

async fn detail(inc: &Incidents, id: String) -> Response {
    match inc.run(move |s| s.get(&id)).await {
        Ok(d) => Json(json!(d)).into_response(),
        Err(e) => store_error(e),
    }
}

/// Query of `GET /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `new`, `acknowledged`, `investigating`, `contained`, `resolved`, `false_positive`.
    pub status: Option<String>,
    /// Lowest severity.
    pub severity: Option<String>,
    /// Assignee (empty: unassigned).
    pub assignee: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<usize>,
    /// Incidents to skip.
    pub offset: Option<usize>,
}

/// `GET /api/v1/incidents`
pub async fn list(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let status = match q.status.as_deref().map(parse_status).transpose() {
        Ok(s) => s,
        Err(m) => return bad(&m),
    };
    let min_severity = match q
        .severity
        .as_deref()
        .map(|s| parse_level("severity", s))
        .transpose()
    {
        Ok(s) => s,
        Err(m) => return bad(&m),
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return bad(&format!("limit must be 1..={MAX_LIMIT}"));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = ListFilter {
        status,
        min_severity,
        assignee: q.assignee,
        limit,
        offset,
    };
    match inc.run(move |s| s.list(&filter)).await {
        Ok((incidents, total)) => Json(json!({
            "incidents": incidents,
            "total": total,
            "limit": limit,
            "offset": offset,
        }))
        .into_response(),
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The alerts to open it from (at least one).
    pub alert_ids: Vec<String>,
    /// Title (default: from the first alert).
    pub title: Option<String>,
}

/// Reads alerts from the alert store; 404 naming the first unknown id.
async fn alerts_by_id(
    state: &AppState,
    ids: Vec<String>,
) -> Result<Vec<vigil_alert::model::Alert>, Response> {
    let Some(a) = state.alerts.as_ref() else {
        return Err(off());
    };
    let engine = a.engine.clone();
    tokio::task::spawn_blocking(move || {
        ids.iter()
            .map(|id| engine.with_store(|s| s.get(id)).map(|(a, _, _)| a))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "the alert store failed"))?
    .map_err(|e| match e {
        vigil_alert::store::StoreError::NotFound { .. } => {
            error(StatusCode::NOT_FOUND, &e.to_string())
        }
        e => {
            tracing::error!(error = %e, "alert store failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the alert store failed")
        }
    })
}

/// `POST /api/v1/incidents`
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<CreateBody>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    if body.alert_ids.is_empty() || body.alert_ids.len() > MAX_CREATE_ALERTS {
        return bad(&format!(
            "alert_ids must name 1..={MAX_CREATE_ALERTS} alerts"
        ));
    }
    let alerts = match alerts_by_id(&state, body.alert_ids).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let actor = principal.name.clone();
    let title = body.title;
    match inc
        .run(move |s| {
            let id = s.create(&alerts, title.as_deref(), &actor)?;
            s.get(&id)
        })
        .await
    {
        Ok(d) => (StatusCode::CREATED, Json(json!(d))).into_response(),
        Err(e) => store_error(e),
    }
}

/// `GET /api/v1/incidents/{id}`
pub async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    detail(inc, id).await
}

/// Body of `PATCH /api/v1/incidents/{id}` (every field optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// New status (must be allowed from the current one).
    pub status: Option<String>,
    /// Why the status changes.
    #[serde(default)]
    pub note: String,
    /// New assignee (`""` unassigns).
    pub assignee: Option<String>,
    /// New severity.
    pub severity: Option<String>,
    /// New tags (replace the old ones).
    pub tags: Option<Vec<String>>,
}

/// `PATCH /api/v1/incidents/{id}`
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<PatchBody>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let status = match body.status.as_deref().map(parse_status).transpose() {
        Ok(s) => s,
        Err(m) => return bad(&m),
    };
    let severity = match body
        .severity
        .as_deref()
        .map(|s| parse_level("severity", s))
        .transpose()
    {
        Ok(s) => s,
        Err(m) => return bad(&m),
    };
    if body.note.len() > vigil_incident::model::MAX_NOTE {
        return bad(&format!(
            "note is longer than {} bytes",
            vigil_incident::model::MAX_NOTE
        ));
    }
    if status.is_none() && severity.is_none() && body.assignee.is_none() && body.tags.is_none() {
        return bad("nothing to change: give status, assignee, severity or tags");
    }
    let actor = principal.name.clone();
    let r = inc
        .run(move |s| {
            // An illegal step fails here, before anything else changes.
            if let Some(to) = status {
                let from = s.status(&id)?;
                if from != to && !from.can_become(to) {
                    s.set_status(&id, to, &actor, &body.note)?;
                }
            }
            if let Some(a) = &body.assignee {
                s.set_assignee(&id, a, &actor)?;
            }
            if let Some(l) = severity {
                s.set_severity(&id, l, &actor)?;
            }
            if let Some(t) = &body.tags {
                s.set_tags(&id, t, &actor)?;
            }
            if let Some(to) = status {
                if s.status(&id)? != to {
                    s.set_status(&id, to, &actor, &body.note)?;
                }
            }
            s.get(&id)
        })
        .await;
    match r {
        Ok(d) => Json(json!(d)).into_response(),
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note.
    pub text: String,
}

/// `POST /api/v1/incidents/{id}/notes`
pub async fn add_note(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let actor = principal.name.clone();
    match inc
        .run(move |s| {
            s.add_note(&id, &body.text, &actor)?;
            s.get(&id)
        })
        .await
    {
        Ok(d) => (StatusCode::CREATED, Json(json!(d))).into_response(),
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/incidents/{id}/pins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// Ledger seq of the event.
    pub seq: u64,
    /// Why it matters.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/incidents/{id}/pins`
pub async fn pin(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<PinBody>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let i = inc.clone();
    let seq = body.seq;
    let event = match tokio::task::spawn_blocking(move || i.event(seq)).await {
        Ok(Ok(ev)) => ev,
        Ok(Err(e)) => return bad(&format!("seq: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let at = crate::incidents::event_time(&event);
    let actor = principal.name.clone();
    match inc
        .run(move |s| {
            s.pin(&id, seq, &body.note, at, &actor)?;
            s.get(&id)
        })
        .await
    {
        Ok(d) => (StatusCode::CREATED, Json(json!(d))).into_response(),
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/incidents/{id}/alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    /// The alert to attach.
    pub alert_id: String,
}

/// `POST /api/v1/incidents/{id}/alerts`
pub async fn attach(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<AttachBody>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let alert = match alerts_by_id(&state, vec![body.alert_id]).await {
        Ok(mut a) => a.remove(0),
        Err(r) => return r,
    };
    let actor = principal.name.clone();
    match inc
        .run(move |s| {
            s.attach(&id, &alert, &actor)?;
            s.get(&id)
        })
        .await
    {
        Ok(d) => Json(json!(d)).into_response(),
        Err(e) => store_error(e),
    }
}

/// `DELETE /api/v1/incidents/{id}/alerts/{alert_id}`
pub async fn detach(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path((id, alert_id)): Path<(String, String)>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let actor = principal.name.clone();
    match inc
        .run(move |s| {
            s.detach(&id, &alert_id, &actor)?;
            s.get(&id)
        })
        .await
    {
        Ok(d) => Json(json!(d)).into_response(),
        Err(e) => store_error(e),
    }
}

/// Pinned events and proofs, read from this server's ledger with the same
/// proof code as `GET /api/v1/proof/{seq}`.
struct LedgerEvidence {
    incidents: Incidents,
}

impl Evidence for LedgerEvidence {
    fn event(&self, seq: u64) -> Result<Value, String> {
        self.incidents.event(seq)
    }

    fn proof(&self, seq: u64) -> Result<Value, String> {
        vigil_ledger::proof::prove_inclusion(self.incidents.ledger_dir(), seq)
            .map(|p| json!(p))
            .map_err(|e| e.to_string())
    }
}

/// Query of `GET /api/v1/incidents/{id}/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `md`.
    pub format: Option<String>,
}

/// `GET /api/v1/incidents/{id}/export?format=md|json`
pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    let markdown = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "md" | "markdown" => true,
        f => return bad(&format!("format {f:?} is not md or json")),
    };
    let mut detail = match inc
        .run({
            let id = id.clone();
            move |s| s.get(&id)
        })
        .await
    {
        Ok(d) => d,
        Err(e) => return store_error(e),
    };
    // Snapshots follow the alert engine's raises (counts 2, 4, 8, …); a
    // report shows the alerts as they are now.
    let ids: Vec<String> = detail.alerts.iter().map(|a| a.alert_id.clone()).collect();
    if let Ok(alerts) = alerts_by_id(&state, ids).await {
        match inc
            .run(move |s| {
                for a in &alerts {
                    s.refresh_alert(a)?;
                }
                s.get(&id)
            })
            .await
        {
            Ok(d) => detail = d,
            Err(e) => return store_error(e),
        }
    }
    let evidence = LedgerEvidence {
        incidents: inc.clone(),
    };
    let report = tokio::task::spawn_blocking(move || {
        let key = evidence.incidents.verifier_key();
        let now = vigil_alert::model::format_ms(vigil_alert::model::now_ms());
        Report::build(detail, &evidence, now, key)
    })
    .await;
    let report = match report {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if markdown {
        (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            report.to_markdown(),
        )
            .into_response()
    } else {
        Json(report.to_json()).into_response()
    }
}

/// `GET /api/v1/incidents/metrics`
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let Some(inc) = state.incidents.as_ref() else {
        return off();
    };
    match inc.run(|s| Ok((s.metrics()?, s.status_counts()?))).await {
        Ok((m, counts)) => {
            let by_status: serde_json::Map<String, Value> = counts
                .into_iter()
                .map(|(s, n)| (s.as_str().to_string(), json!(n)))
                .collect();
            Json(json!({ "by_status": by_status, "by_severity": m.by_severity, "all": m.all }))
                .into_response()
        }
        Err(e) => store_error(e),
    }
}
