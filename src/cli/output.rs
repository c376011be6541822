//! Printing events for people: an aligned table with sanitized cells.

use std::io::Write;

use vigil_event::{sanitize, Event};

/// Columns shown by default, in order; a column is dropped when no event has it.
const COLUMNS: &[(&str, &str)] = &[
    ("@timestamp", "TIME"),
    ("vigil.seq", "SEQ"),
    ("host.name", "HOST"),
    ("process.name", "PROCESS"),
    ("source.ip", "SOURCE"),
    ("user.name", "USER"),
    ("event.action", "ACTION"),
    ("event.outcome", "OUTCOME"),
];

fn cell(ev: &Event, path: &str) -> String {
    match ev.get(path) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => sanitize::display(s).into_owned(),
        Some(v) => sanitize::display(&v.to_string()).into_owned(),
    }
}

fn message(ev: &Event) -> String {
    let m = ev
        .get_str("message")
        .or_else(|| ev.get_str("event.original"))
        .unwrap_or("");
    sanitize::display(m).into_owned()
}

/// Writes events as a table; the message column takes the rest of the width.
pub fn table(out: &mut impl Write, events: &[Event], width: usize) -> std::io::Result<()> {
    let cols: Vec<(&str, &str)> = COLUMNS
        .iter()
        .copied()
        .filter(|(p, _)| events.iter().any(|e| e.contains(p)))
        .collect();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| cols.iter().map(|(p, _)| cell(e, p)).collect())
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|(_, h)| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count()).min(40);
        }
    }
    let mut header = String::new();
    for ((_, h), w) in cols.iter().zip(&widths) {
        header.push_str(&format!("{h:<w$}  "));
    }
    header.push_str("MESSAGE");
    writeln!(out, "{header}")?;
    let used: usize = widths.iter().map(|w| w + 2).sum();
    let msg_width = width.saturating_sub(used).max(20);
    for (ev, r) in events.iter().zip(&rows) {
        let mut line = String::new();
        for (c, w) in r.iter().zip(&widths) {
            let c: String = c.chars().take(*w).collect();
            line.push_str(&format!("{c:<w$}  "));
        }
        let m: String = message(ev).chars().take(msg_width).collect();
        line.push_str(&m);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Terminal width from `$COLUMNS`, or 160.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(160)
}

/// One event on one line: the default columns that are present, then the message.
pub fn line(ev: &Event) -> String {
    let mut parts: Vec<String> = COLUMNS
        .iter()
        .map(|(p, _)| cell(ev, p))
        .filter(|c| !c.is_empty())
        .collect();
    parts.push(message(ev));
    parts.join("  ")
}
