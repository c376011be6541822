//! `GET /api/v1/rules`: the loaded Sigma rules, their match counts, and
//! the rules that were refused.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;

/// `GET /api/v1/rules`
pub async fn rules(State(state): State<Arc<AppState>>) -> Response {
    let set = state.detection.current();
    let rules: Vec<_> = set
        .rules()
        .iter()
        .map(|r| {
            json!({
                "id": r.rule.meta.id,
                "title": r.rule.meta.title,
                "level": r.rule.meta.level,
                "file": r.rule.meta.file,
                "status": r.status(),
                "matches": r.matches.load(Ordering::Relaxed),
            })
        })
        .collect();
    let refused: Vec<_> = set
        .refused
        .iter()
        .map(|e| json!({"file": e.file, "line": e.line, "reason": e.reason}))
        .collect();
    Json(json!({
        "rules": rules,
        "refused": refused,
        "loaded_at": vigil_event::format_time(set.loaded_at),
        "rules_dirs": state.detection.rules_dirs(),
    }))
    .into_response()
}
