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

/// A table cell as text: strings as they are, `null` empty, other values as JSON.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Writes a result table (`stats`, `top`, `timechart`) with aligned columns;
/// numbers are right-aligned, cells are sanitized and cut at 60 characters.
pub fn rows_table(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Vec<serde_json::Value>],
) -> std::io::Result<()> {
    const MAX_CELL: usize = 60;
    let shown = |v: &serde_json::Value| -> String {
        sanitize::display(&value_text(v))
            .chars()
            .take(MAX_CELL)
            .collect()
    };
    let header: Vec<String> = columns
        .iter()
        .map(|c| sanitize::display(c).chars().take(MAX_CELL).collect())
        .collect();
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(shown).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String], numeric: &[bool]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if numeric.get(i).copied().unwrap_or(false) {
                s.push_str(&format!("{c:>w$}  "));
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header, &[]))?;
    for (r, c) in rows.iter().zip(&cells) {
        let numeric: Vec<bool> = r.iter().map(serde_json::Value::is_number).collect();
        writeln!(out, "{}", line(c, &numeric))?;
    }
    Ok(())
}

/// Writes one CSV record, ending in CRLF as RFC 4180 asks, with the same
/// field rules as streamed exports ([`vigil_query::export::csv_field`]:
/// quoting, formulas neutralised, control characters escaped).
pub fn csv_record(out: &mut impl Write, fields: &[serde_json::Value]) -> std::io::Result<()> {
    let mut line = Vec::new();
    vigil_query::export::csv_record(&mut line, fields);
    out.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigil_query::export::csv_field;

    #[test]
    fn csv_quotes_and_neutralises() {
        assert_eq!(csv_field(&json!("plain")), "plain");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&json!("two\nlines")), "\"two\nlines\"");
        assert_eq!(csv_field(&json!("=1+2")), "'=1+2");
        assert_eq!(csv_field(&json!("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(csv_field(&json!("+x,y")), "\"'+x,y\"");
        assert_eq!(csv_field(&json!("-cmd")), "'-cmd");
        assert_eq!(csv_field(&json!(-5)), "-5");
        assert_eq!(csv_field(&json!(null)), "");
        assert_eq!(csv_field(&json!("\u{1b}[31m")), "\\x1b[31m");
        let mut out = Vec::new();
        csv_record(&mut out, &[json!("a"), json!(1), json!("b,c")]).unwrap();
        assert_eq!(out, b"a,1,\"b,c\"\r\n");
    }

    #[test]
    fn table_aligns_and_sanitizes() {
        let mut out = Vec::new();
        rows_table(
            &mut out,
            &["user.name".into(), "count".into()],
            &[
                vec![json!("root"), json!(4)],
                vec![json!("a\u{1b}b"), json!(12)],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "user.name  count\nroot           4\na\\x1bb        12\n"
        );
    }
}
