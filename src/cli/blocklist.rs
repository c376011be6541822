//! `vigil blocklist list|add|remove`: the IP blocklist through a running
//! server's API.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use vigil_event::sanitize::display;

use super::client::{path_segment, Client};
use super::ServerArgs;

/// `vigil blocklist`.
#[derive(Debug, Args)]
pub struct BlocklistArgs {
    #[command(subcommand)]
    command: BlocklistCommand,
}

#[derive(Debug, Subcommand)]
enum BlocklistCommand {
    /// List the blocked addresses and networks that have not expired.
    List(ListArgs),
    /// Block an address or network for a while.
    Add(AddArgs),
    /// Unblock an address or network.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print the API's JSON (reason, source, expiry) instead of one address per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct AddArgs {
    /// An address (203.0.113.9) or a network (203.0.113.0/24).
    address: String,
    /// How long: 30m, 1h, 7d (at most [response] max_ttl_secs).
    #[arg(long)]
    ttl: String,
    /// Why (shown in the JSON list and the ledger).
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct RemoveArgs {
    /// The address or network as listed.
    address: String,
    #[command(flatten)]
    server: ServerArgs,
}

fn client(s: &ServerArgs) -> anyhow::Result<Client> {
    Client::from_args(s, Some(std::time::Duration::from_secs(60)))?
        .context("vigil blocklist talks to a server: give --server (or VIGIL_SERVER)")
}

/// Sends a request with a JSON body (or none); returns the JSON answer.
fn send(
    s: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    client(s)?.json(method, path, body)
}

/// Runs `vigil blocklist`.
pub fn run(a: BlocklistArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match a.command {
        BlocklistCommand::List(l) => {
            let v: Value = client(&l.server)?
                .get("/api/v1/blocklist", &[("format", "json".into())])?
                .json()?;
            if l.json {
                writeln!(out, "{v}")?;
                return Ok(ExitCode::SUCCESS);
            }
            for e in v["entries"].as_array().into_iter().flatten() {
                let f = |k: &str| display(e[k].as_str().unwrap_or("")).into_owned();
                writeln!(
                    out,
                    "{:<40} until {}  {} ({})",
                    f("address"),
                    f("expires_at"),
                    f("reason"),
                    f("source")
                )?;
            }
        }
        BlocklistCommand::Add(a) => {
            let v = send(
                &a.server,
                reqwest::Method::POST,
                "/api/v1/blocklist",
                Some(&json!({"address": a.address, "ttl": a.ttl, "reason": a.reason})),
            )?;
            writeln!(
                out,
                "blocked {} until {}",
                display(v["entry"]["address"].as_str().unwrap_or("")),
                display(v["entry"]["expires_at"].as_str().unwrap_or(""))
            )?;
        }
        BlocklistCommand::Remove(r) => {
            let path = format!("/api/v1/blocklist/{}", path_segment(r.address.trim()));
            let v = send(&r.server, reqwest::Method::DELETE, &path, None)?;
            writeln!(
                out,
                "unblocked {}",
                display(v["removed"].as_str().unwrap_or(""))
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
