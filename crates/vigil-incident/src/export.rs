//! Incident reports in JSON and Markdown.
//!
//! A [`Report`] is an [`IncidentDetail`] plus, for each pinned event, the
//! stored event and its inclusion proof, fetched through an [`Evidence`]
//! source (the server reads them from the ledger; this crate knows no
//! ledger). The proof is the document `GET /api/v1/proof/{seq}` and
//! `vigil prove SEQ` give, so `vigil verify-proof` checks it as it is.
//!
//! JSON keeps every value exactly as stored (the proof's payload must stay
//! byte-exact). Markdown is for people: every stored text goes through
//! [`vigil_event::sanitize::display`] and then [`md_escape`], so a hostile
//! rule name or note cannot add lines, links, HTML or table cells; event
//! and proof JSON sit in code fences longer than any backtick run inside.

use serde::Serialize;
use serde_json::{json, Value};
use vigil_event::sanitize::display;

use crate::model::{HistoryEntry, IncidentDetail, Pin};

/// The report format's name and version, in every JSON report.
pub const FORMAT: &str = "vigil-incident-report/1";

/// Where pinned events and their proofs come from.
pub trait Evidence {
    /// The stored event JSON of ledger record `seq`.
    fn event(&self, seq: u64) -> Result<Value, String>;
    /// The inclusion proof of record `seq` against the newest signed
    /// checkpoint covering it, or why there is none (yet).
    fn proof(&self, seq: u64) -> Result<Value, String>;
}

/// A pinned event with what the ledger says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PinnedEvidence {
    /// The pin.
    #[serde(flatten)]
    pub pin: Pin,
    /// The stored event.
    pub event: Option<Value>,
    /// Why the event could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_error: Option<String>,
    /// Its inclusion proof.
    pub proof: Option<Value>,
    /// Why there is no proof (e.g. no checkpoint covers it yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_error: Option<String>,
}

/// One incident's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// The incident.
    pub detail: IncidentDetail,
    /// Its pinned events with proofs.
    pub evidence: Vec<PinnedEvidence>,
    /// The key that verifies the checkpoints (`name+hash+base64`), when known.
    pub verifier_key: Option<String>,
}

/// History kinds that are workflow steps (status, owner, severity).
pub const WORKFLOW_KINDS: [&str; 4] = [
    "created",
    "status_changed",
    "assignee_changed",
    "severity_changed",
];

fn workflow(history: &[HistoryEntry]) -> Vec<&HistoryEntry> {
    history
        .iter()
        .filter(|h| WORKFLOW_KINDS.contains(&h.kind.as_str()))
        .collect()
}

impl Report {
    /// Reads every pinned event and its proof from `src`.
    pub fn build(
        detail: IncidentDetail,
        src: &dyn Evidence,
        generated_at: String,
        verifier_key: Option<String>,
    ) -> Report {
        let evidence = detail
            .pins
            .iter()
            .map(|p| {
                let (event, event_error) = split(src.event(p.seq));
                let (proof, proof_error) = split(src.proof(p.seq));
                PinnedEvidence {
                    pin: p.clone(),
                    event,
                    event_error,
                    proof,
                    proof_error,
                }
            })
            .collect();
        Report {
            generated_at,
            detail,
            evidence,
            verifier_key,
        }
    }

    /// The JSON report.
    pub fn to_json(&self) -> Value {
        let d = &self.detail;
        json!({
            "format": FORMAT,
            "generated_at": self.generated_at,
            "verifier_key": self.verifier_key,
            "incident": d.incident,
            "workflow": workflow(&d.history),
            "history": d.history,
            "timeline": d.timeline,
            "alerts": d.alerts,
            "pinned_events": self.evidence,
        })
    }

    /// The Markdown report.
    pub fn to_markdown(&self) -> String {
        let d = &self.detail;
        let i = &d.incident;
        let e = |s: &str| md_escape(s);
        let opt = |s: &Option<String>| s.as_deref().map_or("—".to_string(), md_escape);
        let mut out = String::new();
        out.push_str(&format!("# Incident: {}\n\n", e(&i.title)));
        out.push_str("| | |\n|---|---|\n");
        let entity = i
            .entity
            .iter()
            .map(|(k, v)| format!("{}={}", e(k), e(v)))
            .collect::<Vec<_>>()
            .join(" ");
        for (k, v) in [
            ("Id", e(&i.id)),
            ("Status", e(i.status.as_str())),
            ("Severity", e(i.severity.as_str())),
            (
                "Assignee",
                if i.assignee.is_empty() {
                    "—".into()
                } else {
                    e(&i.assignee)
                },
            ),
            ("Entity", entity),
            ("ATT&CK tactics", e(&i.tactics.join(", "))),
            ("Tags", e(&i.tags.join(", "))),
            ("First evidence", opt(&i.evidence_at)),
            ("Detected", e(&i.detected_at)),
            ("Opened", e(&i.created_at)),
            ("Acknowledged", opt(&i.acknowledged_at)),
            ("Resolved", opt(&i.resolved_at)),
            ("Alerts", i.alert_count.to_string()),
            ("Pinned events", d.pins.len().to_string()),
        ] {
            out.push_str(&format!("| {} | {v} |\n", e(k)));
        }
        out.push_str(&format!(
            "\nReport generated {} ({FORMAT}).\n",
            e(&self.generated_at)
        ));

        out.push_str("\n## Workflow\n\n| Time | Actor | Change |\n|---|---|---|\n");
        for h in workflow(&d.history) {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                e(&h.at),
                e(&h.actor),
                e(&h.text)
            ));
        }

        out.push_str("\n## Timeline\n\n| Time | Kind | Actor | What |\n|---|---|---|---|\n");
        for t in &d.timeline {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                e(&t.at),
                e(&t.kind),
                e(&t.actor),
                e(&t.text)
            ));
        }

        out.push_str(
            "\n## Alerts\n\n| Alert | Level | Rule | Entity | First seen | Last seen | Count | Linked |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for a in &d.alerts {
            let entity = a
                .entity
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} by {} |\n",
                e(&a.alert_id),
                e(a.level.as_str()),
                e(&a.rule_name),
                e(&entity),
                e(&a.first_seen),
                e(&a.last_seen),
                a.count,
                e(&a.reason),
                e(&a.linked_by)
            ));
        }

        out.push_str("\n## Pinned events\n");
        if self.evidence.is_empty() {
            out.push_str("\nNone.\n");
        }
        for p in &self.evidence {
            out.push_str(&format!("\n### Event {}\n\n", p.pin.seq));
            out.push_str(&format!(
                "Pinned {} by {}{}.\n\n",
                e(&p.pin.pinned_at),
                e(&p.pin.actor),
                if p.pin.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e(&p.pin.note))
                }
            ));
            match (&p.event, &p.event_error) {
                (Some(ev), _) => out.push_str(&fenced("json", &pretty(ev))),
                (None, err) => {
                    out.push_str(&format!("The event could not be read: {}.\n", opt(err)))
                }
            }
            match (&p.proof, &p.proof_error) {
                (Some(proof), _) => {
                    out.push_str(&format!(
                        "\nInclusion proof against the signed checkpoint of {} records \
                         (check it with `vigil verify-proof FILE --key KEY`):\n\n",
                        proof["tree_size"].as_u64().unwrap_or(0)
                    ));
                    out.push_str(&fenced("json", &pretty(proof)));
                }
                (None, err) => out.push_str(&format!("\nNo inclusion proof: {}.\n", opt(err))),
            }
        }
        if let Some(k) = &self.verifier_key {
            out.push_str(&format!(
                "\nCheckpoints are signed by the key `{}`; compare it with the published one.\n",
                k.chars()
                    .filter(|c| c.is_ascii_graphic() && *c != '`')
                    .collect::<String>()
            ));
        }
        out
    }
}

fn split(r: Result<Value, String>) -> (Option<Value>, Option<String>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `body` in a fenced code block whose fence is longer than any backtick
/// run in it, so the body cannot close it; control characters are escaped.
pub fn fenced(lang: &str, body: &str) -> String {
    let lines: Vec<String> = body.lines().map(|l| display(l).into_owned()).collect();
    let body = lines.join("\n");
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

/// Text safe inside Markdown (a paragraph or a table cell): control
/// characters become visible escapes (so it stays on one line), Markdown
/// punctuation is backslash-escaped and `<`, `>`, `&` become entities, so
/// nothing in it is read as emphasis, code, a link (explicit or
/// auto-linked `scheme://`, `www.`, `user@host`), HTML or a cell boundary.
pub fn md_escape(s: &str) -> String {
    let shown = display(s);
    let chars: Vec<char> = shown.chars().collect();
    let mut out = String::with_capacity(shown.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let www = c == '.'
            && i >= 3
            && chars[i - 3..i]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("www");
        let scheme = c == ':' && chars.get(i + 1) == Some(&'/');
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '@' => {
                out.push('\\');
                out.push(c);
            }
            _ if www || scheme => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_inject_markdown_or_html() {
        let evil = "x | y\n# Owned <script>alert(1)</script> [click](http://evil.example) `code` **b** ![i](x)\r\u{1b}[31m";
        let m = md_escape(evil);
        assert!(
            !m.contains('\n') && !m.contains('\r') && !m.contains('\u{1b}'),
            "{m}"
        );
        assert!(
            !m.contains("<script>") && m.contains("&lt;script&gt;"),
            "{m}"
        );
        assert!(m.contains("x \\| y"), "{m}");
        assert!(m.contains("\\[click\\]\\(http\\://evil.example\\)"), "{m}");
        assert_eq!(
            md_escape("see www.evil.example or a@b.example"),
            "see www\\.evil.example or a\\@b.example"
        );
        assert_eq!(md_escape("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00Z");
        assert!(
            m.contains("\\`code\\`") && m.contains("\\*\\*b\\*\\*"),
            "{m}"
        );
        assert!(m.contains("\\\\n\\# Owned"), "{m}");
        // Every `|` is escaped, so a table row keeps its cells.
        let unescaped = m
            .char_indices()
            .filter(|(i, c)| *c == '|' && !m[..*i].ends_with('\\'))
            .count();
        assert_eq!(unescaped, 0, "{m}");
        assert_eq!(md_escape("plain words"), "plain words");
    }

    #[test]
    fn fences_outgrow_backticks_inside() {
        let f = fenced("json", "{\"a\": \"````\"}\n\u{1b}x");
        assert!(f.starts_with("`````json\n"), "{f}");
        assert!(f.ends_with("\n`````\n"), "{f}");
        assert!(f.contains("\\x1bx"), "{f}");
        assert!(fenced("", "plain").starts_with("```\n"));
    }
}
