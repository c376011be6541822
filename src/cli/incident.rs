//! `vigil incident list|show|create|status|assign|note|pin|attach|export`:
//! incident work through a running server's API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use vigil_event::sanitize::display;

use super::client::{path_segment, Client};
use super::ServerArgs;

/// `vigil incident`.
#[derive(Debug, Args)]
pub struct IncidentArgs {
    #[command(subcommand)]
    command: IncidentCommand,
}

#[derive(Debug, Subcommand)]
enum IncidentCommand {
    /// List incidents, newest first.
    List(ListArgs),
    /// Show one incident with its timeline.
    Show(ShowArgs),
    /// Open an incident from alerts.
    Create(CreateArgs),
    /// Move an incident along its workflow
    /// (new, acknowledged, investigating, contained, resolved, false_positive).
    Status(StatusArgs),
    /// Assign an incident ("" unassigns).
    Assign(AssignArgs),
    /// Add a note.
    Note(NoteArgs),
    /// Pin a stored event (ledger seq) as evidence.
    Pin(PinArgs),
    /// Attach an alert to an incident.
    Attach(AttachArgs),
    /// Write a report (Markdown or JSON, with inclusion proofs of pinned events).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only this status.
    #[arg(long)]
    status: Option<String>,
    /// Lowest severity: informational, low, medium, high, critical.
    #[arg(long)]
    severity: Option<String>,
    /// Only incidents assigned to this name.
    #[arg(long)]
    assignee: Option<String>,
    /// Most incidents shown.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Incidents skipped (paging).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// Incident id.
    id: String,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Alert id (repeatable; at least one).
    #[arg(long = "alert", value_name = "ALERT_ID", required = true)]
    alerts: Vec<String>,
    /// Title (default: from the first alert).
    #[arg(long)]
    title: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Incident id.
    id: String,
    /// The new status.
    status: String,
    /// Why.
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct AssignArgs {
    /// Incident id.
    id: String,
    /// Who owns it.
    assignee: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct NoteArgs {
    /// Incident id.
    id: String,
    /// The note.
    text: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct PinArgs {
    /// Incident id.
    id: String,
    /// Ledger seq of the event (`vigil.seq` in search results).
    seq: u64,
    /// Why it matters.
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct AttachArgs {
    /// Incident id.
    id: String,
    /// Alert id.
    alert: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Incident id.
    id: String,
    /// md or json.
    #[arg(long, default_value = "md")]
    format: String,
    /// Write to this file (created owner-only) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

fn client(s: &ServerArgs) -> anyhow::Result<Client> {
    Client::from_args(s, Some(std::time::Duration::from_secs(120)))?
        .context("vigil incident talks to a server: give --server (or VIGIL_SERVER)")
}

/// A request to the API; answers the body as text.
fn call(
    s: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> anyhow::Result<String> {
    client(s)?
        .request(method, path, query, body)?
        .text()
        .with_context(|| format!("reading the answer to {path}"))
}

fn call_json(
    s: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let text = call(s, method, path, query, body)?;
    serde_json::from_str(&text).context("the server's answer is not JSON")
}

/// JSON with every non-ASCII character escaped, so nothing raw reaches a
/// terminal; the value is unchanged for any JSON reader.
fn ascii_json(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Runs `vigil incident`.
pub fn run(a: IncidentArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    use reqwest::Method;
    match a.command {
        IncidentCommand::List(l) => {
            let mut q = vec![
                ("limit", l.limit.to_string()),
                ("offset", l.offset.to_string()),
            ];
            for (k, v) in [
                ("status", &l.status),
                ("severity", &l.severity),
                ("assignee", &l.assignee),
            ] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            let v = call_json(&l.server, Method::GET, "/api/v1/incidents", &q, None)?;
            if l.json {
                writeln!(out, "{}", ascii_json(&v))?;
            } else {
                print_list(&mut out, &v)?;
            }
        }
        IncidentCommand::Show(s) => {
            let path = format!("/api/v1/incidents/{}", path_segment(&s.id));
            let v = call_json(&s.server, Method::GET, &path, &[], None)?;
            if s.json {
                writeln!(out, "{}", ascii_json(&v))?;
            } else {
                print_detail(&mut out, &v)?;
            }
        }
        IncidentCommand::Create(c) => {
            let mut body = json!({ "alert_ids": c.alerts });
            if let Some(t) = &c.title {
                body["title"] = json!(t);
            }
            let v = call_json(
                &c.server,
                Method::POST,
                "/api/v1/incidents",
                &[],
                Some(&body),
            )?;
            said(&mut out, &v, "opened")?;
        }
        IncidentCommand::Status(s) => {
            let path = format!("/api/v1/incidents/{}", path_segment(&s.id));
            let body = json!({ "status": s.status, "note": s.note });
            let v = call_json(&s.server, Method::PATCH, &path, &[], Some(&body))?;
            said(&mut out, &v, "is now")?;
        }
        IncidentCommand::Assign(s) => {
            let path = format!("/api/v1/incidents/{}", path_segment(&s.id));
            let body = json!({ "assignee": s.assignee });
            let v = call_json(&s.server, Method::PATCH, &path, &[], Some(&body))?;
            writeln!(
                out,
                "incident {} assigned to {}",
                display(v["incident"]["id"].as_str().unwrap_or("")),
                display(v["incident"]["assignee"].as_str().unwrap_or(""))
            )?;
        }
        IncidentCommand::Note(n) => {
            let path = format!("/api/v1/incidents/{}/notes", path_segment(&n.id));
            let v = call_json(
                &n.server,
                Method::POST,
                &path,
                &[],
                Some(&json!({ "text": n.text })),
            )?;
            said(&mut out, &v, "noted,")?;
        }
        IncidentCommand::Pin(p) => {
            let path = format!("/api/v1/incidents/{}/pins", path_segment(&p.id));
            let body = json!({ "seq": p.seq, "note": p.note });
            let v = call_json(&p.server, Method::POST, &path, &[], Some(&body))?;
            writeln!(
                out,
                "event {} pinned to incident {}",
                p.seq,
                display(v["incident"]["id"].as_str().unwrap_or(""))
            )?;
        }
        IncidentCommand::Attach(at) => {
            let path = format!("/api/v1/incidents/{}/alerts", path_segment(&at.id));
            let body = json!({ "alert_id": at.alert });
            let v = call_json(&at.server, Method::POST, &path, &[], Some(&body))?;
            said(&mut out, &v, "now has its alerts,")?;
        }
        IncidentCommand::Export(e) => {
            if !matches!(e.format.as_str(), "md" | "json") {
                bail!("--format must be md or json, got {:?}", display(&e.format));
            }
            let path = format!("/api/v1/incidents/{}/export", path_segment(&e.id));
            let text = call(
                &e.server,
                Method::GET,
                &path,
                &[("format", e.format.clone())],
                None,
            )?;
            match &e.output {
                Some(file) => {
                    write_private(file, text.as_bytes())?;
                    eprintln!(
                        "wrote the {} report of incident {} to {}",
                        e.format,
                        display(&e.id),
                        display(&file.display().to_string())
                    );
                }
                None if e.format == "json" => {
                    let v: Value = serde_json::from_str(&text).context("the report is not JSON")?;
                    writeln!(out, "{}", ascii_json(&v))?;
                }
                // The server sanitises the report; each line again, in case.
                None => {
                    for line in text.lines() {
                        writeln!(out, "{}", display(line))?;
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a new or truncated file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn said(out: &mut impl Write, v: &Value, what: &str) -> anyhow::Result<()> {
    let i = &v["incident"];
    writeln!(
        out,
        "incident {} {what} {} ({}, {} alerts)",
        display(i["id"].as_str().unwrap_or("")),
        display(i["status"].as_str().unwrap_or("")),
        display(i["severity"].as_str().unwrap_or("")),
        i["alert_count"].as_u64().unwrap_or(0)
    )?;
    Ok(())
}

fn print_list(out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let list = v["incidents"].as_array().unwrap_or(&empty);
    writeln!(
        out,
        "{:<32}  {:<14}  {:<8}  {:>6}  {:<24}  {:<12}  TITLE",
        "ID", "STATUS", "SEVERITY", "ALERTS", "OPENED", "ASSIGNEE"
    )?;
    for i in list {
        let s = |k: &str| display(i[k].as_str().unwrap_or("")).into_owned();
        writeln!(
            out,
            "{:<32}  {:<14}  {:<8}  {:>6}  {:<24}  {:<12}  {}",
            s("id"),
            s("status"),
            s("severity"),
            i["alert_count"].as_u64().unwrap_or(0),
            s("created_at"),
            s("assignee"),
            s("title")
        )?;
    }
    writeln!(
        out,
        "{} of {} incidents",
        list.len(),
        v["total"].as_u64().unwrap_or(0)
    )?;
    Ok(())
}

fn print_detail(out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
    let i = &v["incident"];
    let s = |k: &str| display(i[k].as_str().unwrap_or("—")).into_owned();
    writeln!(out, "incident {}: {}", s("id"), s("title"))?;
    writeln!(
        out,
        "status {}  severity {}  assignee {}",
        s("status"),
        s("severity"),
        s("assignee")
    )?;
    let list = |k: &str| {
        i[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    writeln!(
        out,
        "tactics {}  tags {}",
        display(&list("tactics")),
        display(&list("tags"))
    )?;
    writeln!(
        out,
        "detected {}  opened {}  acknowledged {}  resolved {}",
        s("detected_at"),
        s("created_at"),
        s("acknowledged_at"),
        s("resolved_at")
    )?;
    writeln!(out, "\ntimeline:")?;
    for t in v["timeline"].as_array().into_iter().flatten() {
        let f = |k: &str| display(t[k].as_str().unwrap_or("")).into_owned();
        let actor = f("actor");
        writeln!(
            out,
            "  {}  {:<18} {}{}",
            f("at"),
            f("kind"),
            if actor.is_empty() {
                String::new()
            } else {
                format!("[{actor}] ")
            },
            f("text")
        )?;
    }
    Ok(())
}
