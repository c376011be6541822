//! Playbook routes: list the loaded playbooks, and dry-run one on a stored
//! alert (nothing is done; each action says what it would do).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_respond::executor::{
    IncidentActions, NotifyActions, SearchActions, SearchHits, Services,
};

use super::{error, AppState};

/// `GET /api/v1/playbooks`
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let pbs: Vec<Value> = state
        .playbooks
        .responder
        .playbooks()
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "enabled": p.enabled,
                "dry_run": p.dry_run,
                "file": p.file.display().to_string(),
                "match": p.matcher,
                "actions": p.steps.iter().map(|s| json!({
                    "action": s.action.kind(),
                    "timeout_secs": s.timeout.as_secs(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"total": pbs.len(), "playbooks": pbs})).into_response()
}

/// Body of `POST /api/v1/playbooks/{id}/dry-run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// The stored alert to run the playbook on.
    pub alert_id: String,
}

/// A dry run reaches no outside service; these are never called.
struct Unreachable;

const DRY: &str = "not called in a dry run";

impl IncidentActions for Unreachable {
    fn open_or_attach(&mut self, _: &vigil_alert::model::Alert, _: &str) -> Result<String, String> {
        Err(DRY.into())
    }
    fn set_severity(
        &mut self,
        _: &str,
        _: vigil_alert::model::Level,
        _: &str,
    ) -> Result<(), String> {
        Err(DRY.into())
    }
    fn set_assignee(&mut self, _: &str, _: &str, _: &str) -> Result<(), String> {
        Err(DRY.into())
    }
    fn add_timeline(&mut self, _: &str, _: &str, _: &str, _: &str) -> Result<(), String> {
        Err(DRY.into())
    }
}

impl SearchActions for Unreachable {
    fn search(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
        _: std::time::Duration,
    ) -> Result<SearchHits, String> {
        Err(DRY.into())
    }
}

impl NotifyActions for Unreachable {
    fn notify(
        &mut self,
        _: &vigil_alert::model::Alert,
        _: &str,
        _: std::time::Duration,
    ) -> Result<String, String> {
        Err(DRY.into())
    }
}

/// `POST /api/v1/playbooks/{id}/dry-run` with `{"alert_id": "…"}`.
pub async fn dry_run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let req: DryRunRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid dry-run request body: {e}"),
            )
        }
    };
    let Some(alerts) = state.alerts.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "alert tracking is off (configure [alerts] with a channel, or set enabled = true)",
        );
    };
    if !state
        .playbooks
        .responder
        .playbooks()
        .iter()
        .any(|p| p.id == id)
    {
        return error(StatusCode::NOT_FOUND, &format!("no playbook {id:?}"));
    }
    let responder = state.playbooks.responder.clone();
    let alert_id = req.alert_id.clone();
    let playbook = id.clone();
    let done = tokio::task::spawn_blocking(move || {
        let (alert, _, _) = alerts
            .engine
            .with_store(|s| s.get(&alert_id))
            .map_err(|e| e.to_string())?;
        let pb = responder
            .playbooks()
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| format!("no playbook {id:?}"))?;
        let (mut i, mut s, mut n) = (Unreachable, Unreachable, Unreachable);
        let results = responder.run_playbook(
            pb,
            &alert,
            &mut Services {
                incidents: &mut i,
                search: &mut s,
                notify: &mut n,
            },
            true,
        );
        Ok::<_, String>((pb.matcher.matches(&alert), results))
    })
    .await;
    match done {
        Ok(Ok((matches, results))) => Json(json!({
            "playbook": playbook,
            "alert_id": req.alert_id,
            "matches": matches,
            "results": results,
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, &e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the dry run failed"),
    }
}
