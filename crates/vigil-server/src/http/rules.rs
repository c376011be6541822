//! `GET /api/v1/rules`: the loaded Sigma rules and correlation rules, their
//! match counts, and the rules that were refused.

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
    let correlations: Vec<_> = set
        .correlations()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let m = c.meta();
            let stats = set.correlation_stats(i);
            json!({
                "id": m.id,
                "name": m.name,
                "title": m.title,
                "level": m.level,
                "file": m.file,
                "type": c.doc.kind.as_str(),
                "rules": c.doc.rules,
                "group_by": c.doc.group_by,
                "timespan": c.doc.timespan.text,
                "generate": c.doc.generate,
                "matches": set.correlation_matches(i),
                "groups": stats.groups,
                "evictions": stats.evictions,
                "late": stats.late,
            })
        })
        .collect();
    let problem = |e: &vigil_sigma::error::RuleError| json!({"file": e.file, "line": e.line, "reason": e.reason});
    let refused: Vec<_> = set.refused.iter().map(problem).collect();
    let warnings: Vec<_> = set.warnings.iter().map(problem).collect();
    Json(json!({
        "rules": rules,
        "correlations": correlations,
        "refused": refused,
        "warnings": warnings,
        "loaded_at": vigil_event::format_time(set.loaded_at),
        "rules_dirs": state.detection.rules_dirs(),
    }))
    .into_response()
}
