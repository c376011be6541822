//! `vigil search` and `vigil tail`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::Value;
use vigil_event::{sanitize, Event};
use vigil_query::Pipe;

use super::client::Client;
use super::{output, DataArgs, ServerArgs};

/// Flags of `vigil search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The search: a filter, then any pipes, e.g.
    /// 'event.outcome:failure | stats count() by user.name | sort -count | head 10'.
    #[arg(default_value = "*")]
    query: String,
    /// Only events at or after this time: 15m, 2h, 7d or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    until: Option<String>,
    /// Most events to show: the newest for a plain filter, the first ones
    /// out of the pipes otherwise (tables are not cut by this).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per line (NDJSON): events, or one object per table row.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV (RFC 4180) with a header line: table rows, or the events' fields.
    #[arg(long)]
    csv: bool,
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

/// What a search answered, from the server or from the local ledger.
struct Answer {
    hits: Vec<Event>,
    /// Columns and rows, when the search ended in a table pipe.
    table: Option<(Vec<String>, Vec<Vec<Value>>)>,
    total: u64,
    took_ms: u64,
    partial: Option<String>,
}

/// Parses `query`; when it cannot be, prints the error with its caret
/// lines (sanitized) under "the `what` cannot be parsed" and returns `None`.
pub(super) fn parse_or_report(query: &str, what: &str) -> Option<vigil_query::Search> {
    match vigil_query::parse_search(query) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("vigil: error: the {what} cannot be parsed:");
            for line in e.render(query).lines() {
                eprintln!("{}", sanitize::display(line));
            }
            None
        }
    }
}

pub fn run(a: SearchArgs) -> anyhow::Result<ExitCode> {
    // Checked here too, not only by the server, so that the caret lines
    // reach the terminal as lines rather than inside one escaped message.
    let Some(search) = parse_or_report(&a.query, "search") else {
        return Ok(ExitCode::from(1));
    };
    // Events cut down by `| fields a, b` are shown in exactly those columns.
    let chosen = search
        .pipeline
        .pipes
        .iter()
        .rev()
        .find_map(|p| match &p.node {
            Pipe::Fields(fs) => Some(fs.clone()),
            _ => None,
        });
    let answer = match Client::from_args(&a.server, Some(std::time::Duration::from_secs(120)))? {
        Some(client) => remote(&client, &a)?,
        None => local(&a)?,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match (&answer.table, a.json, a.csv) {
        (Some((cols, rows)), true, _) => {
            for r in rows {
                let obj: serde_json::Map<String, Value> =
                    cols.iter().cloned().zip(r.iter().cloned()).collect();
                serde_json::to_writer(&mut out, &obj)?;
                out.write_all(b"\n")?;
            }
        }
        (Some((cols, rows)), false, true) => {
            let header: Vec<Value> = cols.iter().map(|c| Value::from(c.as_str())).collect();
            output::csv_record(&mut out, &header)?;
            for r in rows {
                output::csv_record(&mut out, r)?;
            }
        }
        (Some((cols, rows)), false, false) => {
            output::rows_table(&mut out, cols, rows)?;
            out.flush()?;
            eprintln!(
                "{} rows from {} matching events ({} ms)",
                rows.len(),
                answer.total,
                answer.took_ms
            );
        }
        (None, true, _) => {
            for ev in &answer.hits {
                out.write_all(&ev.canonical_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        (None, false, true) => events_csv(&mut out, &answer.hits, chosen.as_deref())?,
        (None, false, false) => {
            match &chosen {
                Some(cols) => {
                    let rows: Vec<Vec<Value>> = answer
                        .hits
                        .iter()
                        .map(|ev| {
                            cols.iter()
                                .map(|c| ev.get(c).cloned().unwrap_or(Value::Null))
                                .collect()
                        })
                        .collect();
                    output::rows_table(&mut out, cols, &rows)?;
                }
                None => output::table(&mut out, &answer.hits, output::terminal_width())?,
            }
            out.flush()?;
            let shown = answer.hits.len();
            eprintln!(
                "{shown} of {} matching events shown ({} ms)",
                answer.total, answer.took_ms
            );
        }
    }
    out.flush()?;
    if let Some(p) = answer.partial {
        eprintln!("partial result: {}", sanitize::display(&p));
    }
    Ok(ExitCode::SUCCESS)
}

fn remote(client: &Client, a: &SearchArgs) -> anyhow::Result<Answer> {
    let mut q = vec![("q", a.query.clone()), ("limit", a.limit.to_string())];
    if let Some(s) = &a.since {
        q.push(("since", s.clone()));
    }
    if let Some(u) = &a.until {
        q.push(("until", u.clone()));
    }
    let v: Value = client.get("/api/v1/search", &q)?.json()?;
    let hits = v["hits"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| Event::from_json(h.clone(), 512).ok())
                .collect()
        })
        .unwrap_or_default();
    let table = match (v["columns"].as_array(), v["rows"].as_array()) {
        (Some(cols), Some(rows)) => Some((
            cols.iter()
                .map(|c| c.as_str().unwrap_or_default().to_string())
                .collect(),
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect(),
        )),
        _ => None,
    };
    Ok(Answer {
        hits,
        table,
        total: v["total"].as_u64().unwrap_or(0),
        took_ms: v["took_ms"].as_u64().unwrap_or(0),
        partial: v["partial_reason"].as_str().map(str::to_owned),
    })
}

fn local(a: &SearchArgs) -> anyhow::Result<Answer> {
    let config = a.data.load()?;
    let req = vigil_server::http::SearchRequest {
        q: a.query.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        limit: Some(a.limit),
        ..Default::default()
    };
    let (search, params) =
        vigil_server::http::prepare_search(&req, &config.search).map_err(anyhow::Error::msg)?;
    if !config.ledger_dir().exists() {
        bail!(
            "no ledger in {} (is --data-dir right?)",
            config.data_dir.display()
        );
    }
    let t = std::time::Instant::now();
    // Use the index files a server (or `vigil reindex`) left; never build here.
    let r = if config.search.index && config.data_dir.join("index").is_dir() {
        let ix = vigil_server::indexer::Indexer::open(
            &config.data_dir,
            &config.ledger_dir(),
            config.search.index_options(),
        )?;
        // Up to the ledger's last seq: `Indexer::search` reads it.
        ix.search(&search, &params)?
    } else {
        vigil_query::exec::run(&config.ledger_dir(), &search, &params)?
    };
    Ok(Answer {
        hits: r.hits,
        table: r.table.map(|t| (t.columns, t.rows)),
        total: r.total,
        took_ms: t.elapsed().as_millis() as u64,
        partial: r.partial_reason,
    })
}

/// Events as CSV: the `fields` columns when the search chose some, else one
/// column per field path any of the events holds, in the order first seen.
fn events_csv(
    out: &mut impl Write,
    hits: &[Event],
    chosen: Option<&[String]>,
) -> std::io::Result<()> {
    let mut cols: Vec<String> = chosen.map(<[String]>::to_vec).unwrap_or_default();
    for ev in hits.iter().filter(|_| chosen.is_none()) {
        ev.for_each_leaf(|path, _| {
            if !cols.iter().any(|c| c == path) {
                cols.push(path.to_string());
            }
        });
    }
    let header: Vec<Value> = cols.iter().map(|c| Value::from(c.as_str())).collect();
    output::csv_record(out, &header)?;
    for ev in hits {
        let row: Vec<Value> = cols
            .iter()
            .map(|c| ev.get(c).cloned().unwrap_or(Value::Null))
            .collect();
        output::csv_record(out, &row)?;
    }
    Ok(())
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
