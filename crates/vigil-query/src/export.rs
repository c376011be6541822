//! Writing exported events as NDJSON or CSV, one row at a time.
//!
//! The server's `/api/v1/export` and `vigil export` both write through an
//! [`ExportWriter`], so the rows of a file exported offline and of one
//! streamed from a server are byte for byte alike (an end marker's reason
//! names the limit that applied where the export ran). CSV follows the rules of
//! `vigil search --csv`: RFC 4180 quoting, CRLF line ends, text that a
//! spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) prefixed
//! with `'`, and control characters escaped.
//!
//! An export that stops before its end (the row cap, a timeout, a
//! cancellation) ends with a marker line saying so ([`ExportWriter::cut`]):
//! in NDJSON an object `{"vigil_export": {...}}`, in CSV a line starting
//! with `# export cut:`. A complete export has no marker.

use std::io::Write;

use serde_json::{json, Value};
use vigil_event::{sanitize, Event};

/// Columns of a CSV export when none are chosen.
pub const DEFAULT_CSV_FIELDS: &[&str] = &[
    "@timestamp",
    "vigil.seq",
    "host.name",
    "event.action",
    "event.outcome",
    "user.name",
    "source.ip",
    "message",
];

/// Most columns (`fields=`) an export may choose.
pub const MAX_FIELDS: usize = 64;

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One canonical JSON event per line.
    Ndjson,
    /// A header line, then one row per event.
    Csv,
}

impl ExportFormat {
    /// Reads `ndjson` or `csv`.
    pub fn parse(s: &str) -> Result<ExportFormat, String> {
        match s {
            "ndjson" | "json" => Ok(ExportFormat::Ndjson),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(format!(
                "format {:?} is not known (use ndjson or csv)",
                sanitize::display(other)
            )),
        }
    }

    /// The name, as `parse` reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Reads a comma-separated field list (`fields=`), checking each name.
pub fn parse_fields(s: &str) -> Result<Vec<String>, String> {
    let fields: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    if fields.len() > MAX_FIELDS {
        return Err(format!(
            "fields: {} names, at most {MAX_FIELDS} are allowed",
            fields.len()
        ));
    }
    for f in &fields {
        let ok = f.len() <= 256
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-'));
        if !ok {
            return Err(format!(
                "fields: {:?} is not a field name (letters, digits and _ @ . - only)",
                sanitize::display(f)
            ));
        }
    }
    Ok(fields)
}

/// Turns events into export lines.
#[derive(Debug, Clone)]
pub struct ExportWriter {
    format: ExportFormat,
    /// The chosen fields: CSV columns, or the fields an NDJSON line keeps.
    fields: Option<Vec<String>>,
}

impl ExportWriter {
    /// A writer; `fields` chooses the columns (CSV) or the fields kept (NDJSON).
    pub fn new(format: ExportFormat, fields: Option<Vec<String>>) -> ExportWriter {
        ExportWriter { format, fields }
    }

    /// The CSV columns.
    pub fn columns(&self) -> Vec<String> {
        match &self.fields {
            Some(f) => f.clone(),
            None => DEFAULT_CSV_FIELDS.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// What goes before the first event: the CSV header.
    pub fn header(&self, out: &mut Vec<u8>) {
        if self.format == ExportFormat::Csv {
            let cols: Vec<Value> = self.columns().into_iter().map(Value::from).collect();
            csv_record(out, &cols);
        }
    }

    /// One event.
    pub fn event(&self, ev: &Event, out: &mut Vec<u8>) {
        match (self.format, &self.fields) {
            (ExportFormat::Ndjson, None) => {
                out.extend_from_slice(&ev.canonical_bytes());
                out.push(b'\n');
            }
            (ExportFormat::Ndjson, Some(fs)) => {
                let mut cut = Event::new();
                for f in fs {
                    if let Some(v) = ev.get(f) {
                        cut.set(f, v.clone());
                    }
                }
                out.extend_from_slice(&cut.canonical_bytes());
                out.push(b'\n');
            }
            (ExportFormat::Csv, fs) => {
                let row: Vec<Value> = match fs {
                    Some(fs) => fs.iter().map(|f| cell(ev, f)).collect(),
                    None => DEFAULT_CSV_FIELDS.iter().map(|f| cell(ev, f)).collect(),
                };
                csv_record(out, &row);
            }
        }
    }

    /// The marker that ends an export cut short, after `rows` events.
    pub fn cut(&self, reason: &str, rows: u64, out: &mut Vec<u8>) {
        let reason = sanitize::display(reason);
        match self.format {
            ExportFormat::Ndjson => {
                let v =
                    json!({"vigil_export": {"complete": false, "reason": reason, "rows": rows}});
                out.extend_from_slice(v.to_string().as_bytes());
                out.push(b'\n');
            }
            ExportFormat::Csv => {
                let _ = write!(
                    out,
                    "# export cut: {} after {rows} rows\r\n",
                    reason.replace(['\r', '\n'], " ")
                );
            }
        }
    }
}

fn cell(ev: &Event, f: &str) -> Value {
    ev.get(f).cloned().unwrap_or(Value::Null)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break. Text starting with `=`, `+`, `-` or `@` gets a leading `'` so a
/// spreadsheet shows it instead of running it as a formula; JSON numbers are
/// left alone, since `-5` cannot be a formula. Control characters other than
/// line breaks and tabs are escaped as in the terminal table.
pub fn csv_field(v: &Value) -> String {
    let raw = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut text: String = raw
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => c.to_string(),
            c => sanitize::display(c.encode_utf8(&mut [0; 4])).into_owned(),
        })
        .collect();
    if !v.is_number() && text.starts_with(['=', '+', '-', '@']) {
        text.insert(0, '\'');
    }
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Appends one CSV record, ending in CRLF as RFC 4180 asks.
pub fn csv_record(out: &mut Vec<u8>, fields: &[Value]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(csv_field(f).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event::from_json(
            json!({"@timestamp": "2026-03-01T10:00:00Z", "host": {"name": "=cmd|' /C calc'!A0"},
                   "user": {"name": "a,b"}, "n": -5, "message": "x\u{1b}y"}),
            8,
        )
        .unwrap()
    }

    #[test]
    fn csv_rows_quote_neutralise_and_escape() {
        let w = ExportWriter::new(
            ExportFormat::Csv,
            Some(vec![
                "host.name".into(),
                "user.name".into(),
                "n".into(),
                "message".into(),
                "nope".into(),
            ]),
        );
        let mut out = Vec::new();
        w.header(&mut out);
        w.event(&ev(), &mut out);
        w.cut("export_max_events (1) reached", 1, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host.name,user.name,n,message,nope\r\n'=cmd|' /C calc'!A0,\"a,b\",-5,x\\x1by,\r\n\
             # export cut: export_max_events (1) reached after 1 rows\r\n"
        );
    }

    #[test]
    fn ndjson_lines_are_canonical_or_cut_to_the_fields() {
        let mut out = Vec::new();
        ExportWriter::new(ExportFormat::Ndjson, None).event(&ev(), &mut out);
        assert_eq!(out, [ev().canonical_bytes(), b"\n".to_vec()].concat());
        let mut out = Vec::new();
        let w = ExportWriter::new(ExportFormat::Ndjson, Some(vec!["user.name".into()]));
        w.event(&ev(), &mut out);
        w.cut("cancelled", 1, &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0], json!({"user": {"name": "a,b"}}));
        assert_eq!(lines[1]["vigil_export"]["complete"], false);
        assert_eq!(lines[1]["vigil_export"]["rows"], 1);
    }

    #[test]
    fn bad_names_and_formats_are_refused() {
        assert!(ExportFormat::parse("xml")
            .unwrap_err()
            .contains("ndjson or csv"));
        assert_eq!(parse_fields("a, b.c ,").unwrap(), ["a", "b.c"]);
        assert!(parse_fields("a b").is_err());
        assert!(parse_fields(&"a,".repeat(65)).is_err());
    }
}
