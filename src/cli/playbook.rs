//! `vigil playbook check DIR` (offline validation, for CI) and
//! `vigil playbook list`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use vigil_event::sanitize::display;

use super::client::Client;
use super::{DataArgs, ServerArgs};

/// `vigil playbook`.
#[derive(Debug, Args)]
pub struct PlaybookArgs {
    #[command(subcommand)]
    command: PlaybookCommand,
}

#[derive(Debug, Subcommand)]
enum PlaybookCommand {
    /// Check every playbook file in DIR against the configuration, as
    /// `vigil serve` would; exits 1 and prints every error when one is refused.
    Check(CheckArgs),
    /// List playbooks: a running server's (with --server), else the configured ones.
    List(ListArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Directory of playbook files (*.yml, *.yaml), or one file.
    dir: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    data: DataArgs,
}

/// Runs `vigil playbook`.
pub fn run(a: PlaybookArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        PlaybookCommand::Check(c) => check(c),
        PlaybookCommand::List(l) => list(l),
    }
}

fn check(c: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = c.data.load()?;
    let cx = vigil_server::playbooks::load_context(&config);
    let files: Vec<PathBuf> = if c.dir.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(&c.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        f.sort();
        f
    } else {
        vec![c.dir.clone()]
    };
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    let mut ids: Vec<(String, PathBuf)> = Vec::new();
    for f in &files {
        match vigil_respond::playbook::load_file(f, &cx) {
            Ok(pb) => {
                if let Some((_, other)) = ids.iter().find(|(id, _)| *id == pb.id) {
                    failed += 1;
                    eprintln!(
                        "{}: playbook {}: the id is already used in {}",
                        f.display(),
                        display(&pb.id),
                        other.display()
                    );
                    continue;
                }
                writeln!(
                    out,
                    "ok  {}  {} ({} actions{})",
                    f.display(),
                    display(&pb.id),
                    pb.steps.len(),
                    if pb.dry_run { ", dry run" } else { "" }
                )?;
                ids.push((pb.id, f.clone()));
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} playbook files refused", files.len());
        return Ok(ExitCode::from(1));
    }
    writeln!(out, "{} playbooks ok", files.len())?;
    Ok(ExitCode::SUCCESS)
}

fn list(l: ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if let Some(c) = Client::from_args(&l.server, Some(std::time::Duration::from_secs(60)))? {
        let v: Value = c.get("/api/v1/playbooks", &[])?.json()?;
        for p in v["playbooks"].as_array().into_iter().flatten() {
            let actions: Vec<&str> = p["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["action"].as_str())
                .collect();
            writeln!(
                out,
                "{:<24} {:<8} {}  [{}]",
                display(p["id"].as_str().unwrap_or("")),
                if p["enabled"] == true {
                    "enabled"
                } else {
                    "disabled"
                },
                display(p["name"].as_str().unwrap_or("")),
                actions.join(", ")
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = l.data.load()?;
    for p in vigil_server::playbooks::load(&config)? {
        let actions: Vec<&str> = p.steps.iter().map(|s| s.action.kind()).collect();
        writeln!(
            out,
            "{:<24} {:<8} {}  [{}]",
            display(&p.id),
            if p.enabled { "enabled" } else { "disabled" },
            display(&p.name),
            actions.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
