//! `vigil search` and `vigil tail`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use vigil_event::Event;

use super::client::Client;
use super::{output, DataArgs, ServerArgs};

/// Flags of `vigil search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query, e.g. 'event.outcome:failure AND source.ip:203.0.113.0/24'.
    #[arg(default_value = "*")]
    query: String,
    /// Only events at or after this time: 15m, 2h, 7d or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    until: Option<String>,
    /// Most events to show (the newest).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON event per line (NDJSON).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    server: ServerArgs,
}

/// Flags of `vigil tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The query; empty follows everything.
    #[arg(default_value = "")]
    query: String,
    /// One JSON event per line instead of a table row.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let (hits, total, took_ms, partial) =
        match Client::from_args(&a.server, Some(std::time::Duration::from_secs(120)))? {
            Some(client) => {
                let mut q = vec![("q", a.query.clone()), ("limit", a.limit.to_string())];
                if let Some(s) = &a.since {
                    q.push(("since", s.clone()));
                }
                if let Some(u) = &a.until {
                    q.push(("until", u.clone()));
                }
                let v: serde_json::Value = client.get("/api/v1/search", &q)?.json()?;
                let hits = v["hits"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|h| Event::from_json(h.clone(), 512).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                let partial = v["partial_reason"].as_str().map(str::to_owned);
                (
                    hits,
                    v["total"].as_u64().unwrap_or(0),
                    v["took_ms"].as_u64().unwrap_or(0),
                    partial,
                )
            }
            None => {
                let config = a.data.load()?;
                let req = vigil_server::http::SearchRequest {
                    q: a.query.clone(),
                    since: a.since.clone(),
                    until: a.until.clone(),
                    limit: Some(a.limit),
                };
                let (query, params) = vigil_server::http::prepare_search(&req, &config.search)
                    .map_err(anyhow::Error::msg)?;
                if !config.ledger_dir().exists() {
                    bail!(
                        "no ledger in {} (is --data-dir right?)",
                        config.data_dir.display()
                    );
                }
                let t = std::time::Instant::now();
                let r = vigil_query::exec::search(&config.ledger_dir(), &query, &params)?;
                (
                    r.hits,
                    r.total,
                    t.elapsed().as_millis() as u64,
                    r.partial_reason,
                )
            }
        };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        for ev in &hits {
            out.write_all(&ev.canonical_bytes())?;
            out.write_all(b"\n")?;
        }
    } else {
        output::table(&mut out, &hits, output::terminal_width())?;
        out.flush()?;
        let shown = hits.len();
        eprintln!("{shown} of {total} matching events shown ({took_ms} ms)");
    }
    if let Some(p) = partial {
        eprintln!("partial result: {p}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn tail(a: TailArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = Client::from_args(&a.server, None)? else {
        bail!("vigil tail follows a running server: give --server URL --token T (or VIGIL_SERVER / VIGIL_TOKEN)");
    };
    let resp = client.get("/api/v1/tail", &[("q", a.query.clone())])?;
    let reader = std::io::BufReader::new(resp);
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line?;
        if a.json {
            writeln!(out, "{line}")?;
        } else if let Some(ev) = serde_json::from_str(&line)
            .ok()
            .and_then(|v| Event::from_json(v, 512).ok())
        {
            writeln!(out, "{}", output::line(&ev))?;
        }
        if tty {
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
