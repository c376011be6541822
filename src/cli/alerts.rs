//! `vigil alerts list|show|ack|close|suppress`: alert triage through a
//! running server's API.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use vigil_event::sanitize::display;

use super::client::{path_segment, Client};
use super::ServerArgs;

/// `vigil alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// List alerts, most recently seen first.
    List(ListArgs),
    /// Show one alert with its history and deliveries.
    Show(IdArgs),
    /// Acknowledge an alert (repeats keep raising its count).
    Ack(ChangeArgs),
    /// Close an alert (a repeat opens a new one).
    Close(ChangeArgs),
    /// Suppress matching alerts (still recorded, never notified).
    Suppress(SuppressArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// open, acknowledged or closed.
    #[arg(long)]
    status: Option<String>,
    /// Lowest level: informational, low, medium, high, critical.
    #[arg(long)]
    severity: Option<String>,
    /// Rule id.
    #[arg(long)]
    rule: Option<String>,
    /// A source.ip, user.name or host.name value.
    #[arg(long)]
    entity: Option<String>,
    /// Seen at or after: 15m, 2h, 7d or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Most alerts shown.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Alerts skipped (paging).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct IdArgs {
    /// Alert id.
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct ChangeArgs {
    /// Alert id.
    id: String,
    /// Why (kept in the alert's history and the ledger).
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct SuppressArgs {
    /// FIELD=VALUE that must equal (repeatable): rule.id, rule.name, level,
    /// tags, source.ip, user.name, host.name.
    #[arg(long = "field", value_name = "FIELD=VALUE", required = true)]
    fields: Vec<String>,
    /// Why.
    #[arg(long)]
    reason: String,
    /// When it stops applying: 2h, 7d or RFC 3339 (default: never).
    #[arg(long)]
    expires: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

fn client(s: &ServerArgs) -> anyhow::Result<Client> {
    Client::from_args(s, Some(std::time::Duration::from_secs(60)))?
        .context("vigil alerts talks to a server: give --server (or VIGIL_SERVER)")
}

/// POSTs JSON; answers the JSON body.
fn post(s: &ServerArgs, path: &str, body: &Value) -> anyhow::Result<Value> {
    client(s)?.json(reqwest::Method::POST, path, Some(body))
}

/// Runs `vigil alerts`.
pub fn run(a: AlertsArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match a.command {
        AlertsCommand::List(l) => {
            let mut q = vec![
                ("limit", l.limit.to_string()),
                ("offset", l.offset.to_string()),
            ];
            for (k, v) in [
                ("status", &l.status),
                ("severity", &l.severity),
                ("rule", &l.rule),
                ("entity", &l.entity),
                ("since", &l.since),
            ] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            let v: Value = client(&l.server)?.get("/api/v1/alerts", &q)?.json()?;
            if l.json {
                writeln!(out, "{v}")?;
            } else {
                print_list(&mut out, &v)?;
            }
        }
        AlertsCommand::Show(s) => {
            let path = format!("/api/v1/alerts/{}", path_segment(&s.id));
            let v: Value = client(&s.server)?.get(&path, &[])?.json()?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        AlertsCommand::Ack(c) => change(&mut out, &c, "ack")?,
        AlertsCommand::Close(c) => change(&mut out, &c, "close")?,
        AlertsCommand::Suppress(s) => {
            let mut fields = serde_json::Map::new();
            for f in &s.fields {
                let Some((k, v)) = f.split_once('=') else {
                    bail!("--field {:?} is not FIELD=VALUE", display(f));
                };
                fields.insert(k.trim().to_string(), json!(v));
            }
            let mut body = json!({ "fields": fields, "reason": s.reason });
            if let Some(e) = &s.expires {
                body["expires"] = json!(e);
            }
            let v = post(&s.server, "/api/v1/suppressions", &body)?;
            let sup = &v["suppression"];
            writeln!(
                out,
                "suppression {} created (expires: {})",
                display(sup["id"].as_str().unwrap_or("")),
                display(sup["expires_at"].as_str().unwrap_or("never"))
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn change(out: &mut impl Write, c: &ChangeArgs, what: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/alerts/{}/{what}", path_segment(&c.id));
    let v = post(&c.server, &path, &json!({ "note": c.note }))?;
    writeln!(
        out,
        "alert {} is {}",
        display(v["alert"]["id"].as_str().unwrap_or("")),
        display(v["alert"]["status"].as_str().unwrap_or(""))
    )?;
    Ok(())
}

fn print_list(out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let alerts = v["alerts"].as_array().unwrap_or(&empty);
    writeln!(
        out,
        "{:<32}  {:<12}  {:<8}  {:>6}  {:<24}  {:<30}  ENTITY",
        "ID", "STATUS", "LEVEL", "COUNT", "LAST SEEN", "RULE"
    )?;
    for a in alerts {
        let s = |k: &str| display(a[k].as_str().unwrap_or("")).into_owned();
        let entity = a["entity"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let status = if a["suppressed"] == true {
            format!("{} (supp.)", s("status"))
        } else {
            s("status")
        };
        writeln!(
            out,
            "{:<32}  {:<12}  {:<8}  {:>6}  {:<24}  {:<30}  {}",
            s("id"),
            status,
            s("level"),
            a["count"].as_u64().unwrap_or(0),
            s("last_seen"),
            s("rule_name"),
            display(&entity)
        )?;
    }
    writeln!(
        out,
        "{} of {} alerts",
        alerts.len(),
        v["total"].as_u64().unwrap_or(0)
    )?;
    Ok(())
}
