//! `POST /api/v1/events`: NDJSON, a JSON array, or plain-text lines.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use vigil_event::{fields, Event};
use vigil_ingest::{InputKind, RawMessage};

use super::{error, AppState};
use crate::auth::Principal;
use crate::pipeline::{count_decoded, decode_message, stamp, Prepared};

/// Query parameters of the ingest route.
#[derive(Debug, Deserialize)]
pub struct IngestParams {
    /// Overrides `vigil.source` (default: the token's name).
    pub source: Option<String>,
}

/// One refused line.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number (element index + 1 for a JSON array).
    pub line: usize,
    /// Why it was refused.
    pub error: String,
}

/// The decoded body: events to store and lines refused.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Events ready to store.
    pub events: Vec<Event>,
    /// Lines refused with reasons.
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Ndjson,
    JsonArray,
    Text,
}

fn body_kind(headers: &HeaderMap, body: &[u8]) -> Result<BodyKind, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    match ct.as_deref() {
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines") => {
            Ok(BodyKind::Ndjson)
        }
        Some("application/json") => Ok(if first == Some(b'[') { BodyKind::JsonArray } else { BodyKind::Ndjson }),
        Some("text/plain") => Ok(BodyKind::Text),
        None | Some("") | Some("application/octet-stream") => Ok(match first {
            Some(b'[') => BodyKind::JsonArray,
            Some(b'{') => BodyKind::Ndjson,
            _ => BodyKind::Text,
        }),
        Some(other) => Err(format!(
            "unsupported Content-Type {other:?}; use application/x-ndjson, application/json or text/plain"
        )),
    }
}

/// Decodes an ingest body. Pure, so it is tested without a server.
pub fn decode_body(
    kind_headers: &HeaderMap,
    body: &[u8],
    source: &str,
    opts: &vigil_parse::ParseOptions,
    max_lines: usize,
) -> Result<Decoded, (StatusCode, String)> {
    let kind =
        body_kind(kind_headers, body).map_err(|e| (StatusCode::UNSUPPORTED_MEDIA_TYPE, e))?;
    let now = SystemTime::now();
    let mut out = Decoded::default();
    let too_many = |n: usize| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request has more than {max_lines} events (line {n}); split it into smaller requests"),
        )
    };
    match kind {
        BodyKind::JsonArray => {
            let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "invalid JSON array at line {} column {}: {e}",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            if items.len() > max_lines {
                return Err(too_many(max_lines + 1));
            }
            for (i, v) in items.into_iter().enumerate() {
                push_json(&mut out, i + 1, v, None, source, opts, now);
            }
        }
        BodyKind::Ndjson | BodyKind::Text => {
            let mut n = 0usize;
            for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                let line = raw.strip_suffix(b"\r").unwrap_or(raw);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                n += 1;
                if n > max_lines {
                    return Err(too_many(i + 1));
                }
                if kind == BodyKind::Text {
                    // Like a syslog message: cut at the limit and flagged.
                    let cut = line.len() > opts.max_message_bytes;
                    let msg = RawMessage {
                        bytes: line[..line.len().min(opts.max_message_bytes)].to_vec(),
                        truncated: cut,
                        input: InputKind::Http,
                        peer: None,
                        received_at: now,
                    };
                    out.events.push(decode_message(&msg, Some(source), opts));
                    continue;
                }
                if line.len() > opts.max_message_bytes {
                    out.rejected.push(Rejected {
                        line: i + 1,
                        error: format!(
                            "line is {} bytes, the limit is {}",
                            line.len(),
                            opts.max_message_bytes
                        ),
                    });
                    continue;
                }
                match serde_json::from_slice::<serde_json::Value>(line) {
                    Ok(v) => push_json(&mut out, i + 1, v, Some(line), source, opts, now),
                    Err(e) => out.rejected.push(Rejected {
                        line: i + 1,
                        error: format!("invalid JSON at column {}: {e}", e.column()),
                    }),
                }
            }
        }
    }
    Ok(out)
}

fn push_json(
    out: &mut Decoded,
    line: usize,
    v: serde_json::Value,
    raw: Option<&[u8]>,
    source: &str,
    opts: &vigil_parse::ParseOptions,
    now: SystemTime,
) {
    match vigil_parse::parse_json(v, opts) {
        Ok(mut ev) => {
            let keep = opts.keep_original == vigil_parse::KeepOriginal::Always;
            if let (Some(raw), true) = (raw, keep) {
                // Keep the line exactly as received, not a re-serialization.
                ev.set(
                    fields::EVENT_ORIGINAL,
                    String::from_utf8_lossy(raw).into_owned(),
                );
            }
            // `vigil.*` is Vigil's own bookkeeping (sequence, input, parse
            // flags); a client must not be able to forge any of it.
            ev.remove("vigil");
            stamp(&mut ev, InputKind::Http, Some(source), now);
            out.events.push(ev);
        }
        Err(e) => out.rejected.push(Rejected {
            line,
            error: e.to_string(),
        }),
    }
}

/// `POST /api/v1/events`
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = match params.source {
        Some(s)
            if s.is_empty()
                || s.len() > crate::limits::SOURCE_NAME_BYTES
                || s.chars().any(char::is_control) =>
        {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "source must be 1-{} bytes without control characters",
                    crate::limits::SOURCE_NAME_BYTES
                ),
            );
        }
        Some(s) => s,
        None => principal.name.clone(),
    };
    metrics::counter!("vigil_http_requests_total", "route" => "events").increment(1);
    let opts = state.config.parse_options();
    let max_lines = state.config.http.max_batch_lines;
    let rules = Some(state.detection.current()).filter(|r| !r.is_empty());
    let detectors = state.config.detectors.clone();
    let redactor = state.pipeline.redactor();
    let rate = state.rate.clone();
    let (client, token_id) = (
        crate::audit::context().and_then(|c| c.source),
        principal.token_id.clone(),
    );
    // A sender whose budget is already spent is refused before the parse;
    // otherwise the batch is charged right after parsing (its size is known
    // then), before redaction and rule evaluation.
    let decoded = tokio::task::spawn_blocking(move || {
        if let Err(refused) = rate.ingest_spent(client, &token_id) {
            return Ok(Err(refused));
        }
        let mut d = decode_body(&headers, &body, &source, &opts, max_lines)?;
        let charged = (d.events.len() + d.rejected.len()) as u64;
        if let Err((scope, retry_after)) = rate.ingest(client, &token_id, charged) {
            return Ok(Err((scope, retry_after)));
        }
        if let Some(r) = &redactor {
            let mut tally = r.tally();
            for ev in &mut d.events {
                r.redact(ev, &mut tally);
            }
            crate::pipeline::count_redactions(r, &tally);
        }
        let events: Vec<Prepared> = d
            .events
            .iter()
            .map(|ev| {
                let mut p = Prepared::new(ev);
                if let Some(r) = &rules {
                    p.alerts = r.evaluate(ev);
                }
                p.observation = crate::pipeline::observe(ev, Some(&detectors));
                p
            })
            .collect();
        Ok(Ok((events, d.rejected, source)))
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(Ok(d))) => d,
        Ok(Ok(Err((scope, retry_after)))) => return super::too_many(scope, "events", retry_after),
        Ok(Err((status, msg))) => return error(status, &msg),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (events, rejected, source) = decoded;
    let accepted = events.len();
    metrics::counter!("vigil_input_received_total", "input" => "http")
        .increment((accepted + rejected.len()) as u64);
    metrics::counter!("vigil_input_rejected_total", "input" => "http")
        .increment(rejected.len() as u64);
    count_decoded(InputKind::Http, &events);
    let stored = state
        .pipeline
        .write_durable(events, vec![(source, accepted as u64)], InputKind::Http)
        .await;
    match stored {
        Ok(range) => {
            let status = if accepted == 0 && !rejected.is_empty() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let mut body = serde_json::json!({ "accepted": accepted, "rejected": rejected });
            if accepted > 0 {
                body["first_seq"] = range.first.into();
                body["last_seq"] = range.last.into();
            }
            (status, Json(body)).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("events were not stored: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn ndjson_with_bad_lines() {
        let body = b"{\"message\":\"a\"}\n\nnot json\n[1]\n{\"message\":\"b\"}\n";
        let d = decode_body(
            &hdr("application/x-ndjson"),
            body,
            "t",
            &Default::default(),
            10,
        )
        .unwrap();
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.rejected.len(), 2);
        assert_eq!(d.rejected[0].line, 3);
        assert!(
            d.rejected[0].error.contains("invalid JSON"),
            "{}",
            d.rejected[0].error
        );
        assert_eq!(d.rejected[1].line, 4);
        assert!(
            d.rejected[1].error.contains("object"),
            "{}",
            d.rejected[1].error
        );
        assert_eq!(d.events[0].get_str("vigil.input"), Some("http"));
        assert_eq!(d.events[0].get_str("vigil.source"), Some("t"));
    }

    #[test]
    fn array_and_limits() {
        let d = decode_body(
            &hdr("application/json"),
            b"[{\"a\":1},{\"b\":2}]",
            "t",
            &Default::default(),
            10,
        )
        .unwrap();
        assert_eq!(d.events.len(), 2);
        let e = decode_body(
            &hdr("application/json"),
            b"[{},{},{}]",
            "t",
            &Default::default(),
            2,
        )
        .unwrap_err();
        assert_eq!(e.0, StatusCode::PAYLOAD_TOO_LARGE);
        let e = decode_body(
            &hdr("application/xml"),
            b"<a/>",
            "t",
            &Default::default(),
            2,
        )
        .unwrap_err();
        assert_eq!(e.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn text_lines_are_decoded() {
        let d = decode_body(
            &hdr("text/plain"),
            b"hello world\r\nsecond line\n",
            "t",
            &Default::default(),
            10,
        )
        .unwrap();
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.events[1].get_str("event.original"), Some("second line"));
    }

    #[test]
    fn client_cannot_set_seq() {
        let d = decode_body(
            &hdr("application/x-ndjson"),
            b"{\"vigil\":{\"seq\":5}}",
            "t",
            &Default::default(),
            10,
        )
        .unwrap();
        assert!(d.events[0].get("vigil.seq").is_none());
        let d = decode_body(
            &hdr("application/x-ndjson"),
            b"{\"vigil\":{\"parse_error\":\"x\",\"truncated\":true},\"m\":1}",
            "t",
            &Default::default(),
            10,
        )
        .unwrap();
        assert!(d.events[0].get("vigil.parse_error").is_none());
        assert!(d.events[0].get("vigil.truncated").is_none());
        assert_eq!(d.events[0].get_str("vigil.input"), Some("http"));
    }
}
