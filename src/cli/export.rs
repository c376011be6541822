//! `vigil export`: every event a filter matches, as NDJSON or CSV, streamed
//! to a file or standard output.
//!
//! With `--server` the server's `/api/v1/export` streams it (audited there);
//! without, the data dir's ledger is read directly, through the same writer,
//! so both give the same rows (an early end's marker names the limit that
//! applied: `--limit` here, the server's own limits there). Nothing is held in memory but one event.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use vigil_event::sanitize;
use vigil_query::export::{parse_fields, ExportFormat, ExportWriter};

use super::client::Client;
use super::{DataArgs, ServerArgs};

/// Flags of `vigil export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The filter (no pipes), e.g. 'event.outcome:failure AND user.name:root'.
    #[arg(default_value = "*")]
    query: String,
    /// `ndjson` (one event per line) or `csv`.
    #[arg(long, default_value = "ndjson")]
    format: String,
    /// Comma-separated fields: the CSV columns, or the fields each NDJSON line keeps.
    #[arg(long)]
    fields: Option<String>,
    /// Only events at or after this time: 15m, 2h, 7d or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    until: Option<String>,
    /// Most events (at most the server's search.export_max_events).
    #[arg(long)]
    limit: Option<u64>,
    /// Write here instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = ExportFormat::parse(&a.format).map_err(anyhow::Error::msg)?;
    let fields = a
        .fields
        .as_deref()
        .map(parse_fields)
        .transpose()
        .map_err(anyhow::Error::msg)?
        .filter(|f| !f.is_empty());
    let Some(search) = super::search::parse_or_report(&a.query, "filter") else {
        return Ok(ExitCode::from(1));
    };
    if !search.pipeline.is_empty() {
        bail!("export takes a filter without pipes; choose columns with --fields, and use vigil search for tables");
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let cut = match Client::from_args(&a.server, None)? {
        Some(client) => remote(&client, &a, &mut out)?,
        None => local(&a, &search.query, format, fields, &mut out)?,
    };
    out.flush()?;
    if let Some(why) = cut {
        eprintln!("export cut short: {}", sanitize::display(&why));
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies the server's stream; returns the reason from its end marker, if any.
fn remote(client: &Client, a: &ExportArgs, out: &mut dyn Write) -> anyhow::Result<Option<String>> {
    let mut q = vec![("q", a.query.clone()), ("format", a.format.clone())];
    for (k, v) in [
        ("fields", &a.fields),
        ("since", &a.since),
        ("until", &a.until),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    if let Some(l) = a.limit {
        q.push(("limit", l.to_string()));
    }
    let resp = client.get("/api/v1/export", &q)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, resp);
    let mut last = Vec::new();
    let mut line = Vec::new();
    use std::io::BufRead;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .context("reading the export stream")?
            == 0
        {
            break;
        }
        out.write_all(&line)?;
        std::mem::swap(&mut last, &mut line);
    }
    Ok(marker(&last))
}

/// The reason in an end marker line, NDJSON or CSV.
fn marker(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    if let Some(rest) = text.strip_prefix("# export cut: ") {
        return Some(rest.to_string());
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("vigil_export")?
        .get("reason")?
        .as_str()
        .map(str::to_owned)
}

fn local(
    a: &ExportArgs,
    query: &vigil_query::Query,
    format: ExportFormat,
    fields: Option<Vec<String>>,
    out: &mut dyn Write,
) -> anyhow::Result<Option<String>> {
    let config = a.data.load()?;
    if !config.ledger_dir().exists() {
        bail!(
            "no ledger in {} (is --data-dir right?)",
            config.data_dir.display()
        );
    }
    let now = chrono::Utc::now();
    let time = |s: &Option<String>, name: &str| -> anyhow::Result<_> {
        s.as_deref()
            .map(|s| vigil_query::parse_time(s, now).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
            .transpose()
    };
    let mut params = vigil_query::exec::SearchParams {
        since: time(&a.since, "since")?,
        until: time(&a.until, "until")?,
        max_scan: config.search.max_scan_events,
        ..Default::default()
    };
    if config.search.index && config.data_dir.join("index").is_dir() {
        let ix = vigil_server::indexer::Indexer::open(
            &config.data_dir,
            &config.ledger_dir(),
            config.search.index_options(),
        )?;
        let last = vigil_ledger::LedgerReader::open(&config.ledger_dir())?.last_seq()?;
        params.up_to_seq = Some(last);
        params.ranges = Some(
            ix.candidates(query, params.since, params.until, 1, last)
                .ranges,
        );
    }
    let cap = config.search.export_max_events;
    let limit = a.limit.map_or(cap, |l| l.min(cap));
    let writer = ExportWriter::new(format, fields);
    let mut buf = Vec::with_capacity(1 << 16);
    writer.header(&mut buf);
    let (mut rows, mut capped) = (0u64, false);
    let mut failed: Option<std::io::Error> = None;
    let r = vigil_query::exec::stream(&config.ledger_dir(), query, &params, |ev| {
        if rows == limit {
            capped = true;
            return false;
        }
        writer.event(&ev, &mut buf);
        rows += 1;
        if buf.len() >= 1 << 16 {
            if let Err(e) = out.write_all(&buf) {
                failed = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e).context("writing the export");
    }
    let cut = if capped {
        Some(format!("the limit of {limit} events was reached"))
    } else {
        r.partial_reason
    };
    if let Some(why) = &cut {
        writer.cut(why, rows, &mut buf);
    }
    out.write_all(&buf)?;
    Ok(cut)
}
