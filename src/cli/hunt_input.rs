//! Reading hunt inputs: EVTX, JSON/NDJSON, and text logs.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How an input file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Windows event log (`.evtx`), rendered in `evtx_dump` JSON layout.
    Evtx,
    /// One JSON object per line, or concatenated objects.
    Json,
    /// Log lines, decoded by Vigil's decoders into ECS events.
    Text,
    /// A Vigil data directory: the events stored in its ledger whose
    /// `@timestamp` lies in `[since, until)` (a retro-hunt over history).
    Ledger {
        /// Earliest event time (inclusive); `None`: from the first event.
        since: Option<DateTime<Utc>>,
        /// Latest event time (exclusive); `None`: to the last event.
        until: Option<DateTime<Utc>>,
    },
}

/// Picks the format: a directory with a `ledger/` folder is a Vigil data
/// directory; a file by its extension (`.evtx`; `.json`/`.ndjson`/`.jsonl`;
/// `.log`/`.txt` as text lines, which may mix JSON and syslog), else by its
/// first byte.
pub fn detect(path: &Path) -> anyhow::Result<InputFormat> {
    if path.is_dir() {
        if path.join("ledger").is_dir() {
            return Ok(InputFormat::Ledger {
                since: None,
                until: None,
            });
        }
        anyhow::bail!("is a directory but not a Vigil data directory (it has no ledger/ folder)");
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "evtx" {
        return Ok(InputFormat::Evtx);
    }
    if matches!(ext.as_str(), "json" | "ndjson" | "jsonl") {
        return Ok(InputFormat::Json);
    }
    // Log files may mix JSON lines with syslog and access-log lines: each
    // line is decoded on its own (JSON lines included).
    if matches!(ext.as_str(), "log" | "txt") {
        return Ok(InputFormat::Text);
    }
    let mut head = [0u8; 512];
    let n = File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .read(&mut head)?;
    if head[..n].starts_with(b"ElfFile\0") {
        return Ok(InputFormat::Evtx);
    }
    let first = head[..n]
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    Ok(if first == Some(b'{') {
        InputFormat::Json
    } else {
        InputFormat::Text
    })
}

/// For JSON inputs: a test on one line (without its line end) that says
/// the line is an event needing no further work (e.g. a flat event that
/// matches no rule): it is counted, and `f` is not called for it.
pub type SkipLine<'a> = &'a (dyn Fn(&[u8]) -> bool + Sync);

/// Calls `f` with each event of `path` (except the JSON lines `skip`
/// accepts); returns the number of events and of records that could not
/// be read (each also reported through `warn`).
pub fn for_each_event(
    path: &Path,
    format: InputFormat,
    opts: &vigil_parse::ParseOptions,
    warn: &mut dyn FnMut(String),
    f: &mut dyn FnMut(Value),
    skip: Option<SkipLine<'_>>,
) -> anyhow::Result<(u64, u64)> {
    let (mut n, mut bad) = (0u64, 0u64);
    match format {
        InputFormat::Evtx => {
            let mut parser = evtx::EvtxParser::from_path(path)
                .with_context(|| format!("opening EVTX {}", path.display()))?;
            // The EVTX parser is third-party code reading hostile bytes, and
            // it panics on some damaged files (a debug assertion found by the
            // `evtx` fuzz target): a panic ends this file with a warning, not
            // the hunt.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Bounded per chunk: a damaged chunk cannot make the reader
                // loop or grow without end (vigil_parse::evtx).
                bad += vigil_parse::evtx::for_each_record(&mut parser, &mut |rec| match rec {
                    Ok(v) => {
                        n += 1;
                        f(v);
                    }
                    Err(e) => warn(format!(
                        "{}: unreadable EVTX record: {}",
                        path.display(),
                        vigil_event::sanitize::display(&e)
                    )),
                });
            }));
            if let Err(panic) = outcome {
                bad += 1;
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown failure");
                warn(format!(
                    "{}: the EVTX parser failed after {n} records and the rest of the file was skipped: {}",
                    path.display(),
                    vigil_event::sanitize::display(why)
                ));
            }
        }
        InputFormat::Json => {
            let (good, b) = read_json_values(path, warn, f, skip)?;
            n += good;
            bad += b;
        }
        InputFormat::Ledger { since, until } => {
            let (good, b) = read_ledger(path, since, until, warn, f)?;
            n += good;
            bad += b;
        }
        InputFormat::Text => {
            let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
            let mut line = Vec::new();
            loop {
                line.clear();
                let (read, truncated) = super::lines::read_line_limited(
                    &mut reader,
                    &mut line,
                    opts.max_message_bytes,
                )?;
                if read == 0 {
                    break;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                n += 1;
                let mut ev = vigil_parse::parse_line(&line, opts);
                if truncated {
                    ev.set(vigil_event::fields::VIGIL_TRUNCATED, true);
                }
                f(ev.into_json());
            }
        }
    }
    Ok((n, bad))
}

/// Parses one JSON event (an NDJSON line).
pub fn parse_json_event(line: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(line)
}

/// Largest JSON value read from a JSON input; a larger one ends the file
/// with a warning instead of being buffered whole.
pub const MAX_JSON_VALUE_BYTES: u64 = 16 << 20;

/// The events stored in the data directory `dir` with `@timestamp` in
/// `[since, until)` (events without a time are kept only when neither bound
/// is given). Vigil's own alert events are skipped: they are the output of
/// detection, not evidence to hunt in. Returns (events, unreadable records).
fn read_ledger(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    warn: &mut dyn FnMut(String),
    f: &mut dyn FnMut(Value),
) -> anyhow::Result<(u64, u64)> {
    let ledger = dir.join("ledger");
    let reader = vigil_ledger::LedgerReader::open(&ledger)
        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
    let last = reader.last_seq()?;
    let (mut n, mut bad) = (0u64, 0u64);
    let bounded = since.is_some() || until.is_some();
    let _ = reader.for_each_range(1, last, |seq, payload| {
        let ev = match vigil_event::Event::from_canonical(payload) {
            Ok(ev) => ev,
            Err(e) => {
                bad += 1;
                warn(format!(
                    "{}: record {seq} is not an event: {e}",
                    dir.display()
                ));
                return std::ops::ControlFlow::<()>::Continue(());
            }
        };
        if ev.get_str(vigil_event::fields::EVENT_KIND) == Some("alert") {
            return std::ops::ControlFlow::Continue(());
        }
        if bounded {
            let Some(t) = ev.timestamp() else {
                return std::ops::ControlFlow::Continue(());
            };
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
                return std::ops::ControlFlow::Continue(());
            }
        }
        n += 1;
        f(ev.into_json());
        std::ops::ControlFlow::Continue(())
    })?;
    Ok((n, bad))
}

/// Bytes read from a JSON input per step; values are parsed from memory.
const JSON_CHUNK: usize = 4 << 20;

/// Reads concatenated JSON values (NDJSON or pretty-printed objects) in
/// chunks, parsing each from memory; a value cut by the chunk end is kept
/// and completed by the next read. Returns (objects, unreadable values).
fn read_json_values(
    path: &Path,
    warn: &mut dyn FnMut(String),
    f: &mut dyn FnMut(Value),
    skip: Option<SkipLine<'_>>,
) -> anyhow::Result<(u64, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut n, mut bad) = (0u64, 0u64);
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    // Lines before `buf`, for error positions.
    let mut line_base = 0usize;
    loop {
        // Read more than is carried over, so a long value progresses, but
        // never buffer more than one value may take.
        let target = (buf.len() + JSON_CHUNK).min(MAX_JSON_VALUE_BYTES as usize + 1);
        while !eof && buf.len() < target {
            let start = buf.len();
            buf.resize(target, 0);
            let got = file.read(&mut buf[start..])?;
            buf.truncate(start + got);
            eof = got == 0;
        }
        let mut pos = 0usize;
        let mut stop = false;
        loop {
            while buf.get(pos).is_some_and(u8::is_ascii_whitespace) {
                pos += 1;
            }
            if pos == buf.len() {
                break;
            }
            if let Some(skip) = skip {
                let nl = memchr::memchr(b'\n', &buf[pos..]).map(|i| pos + i);
                if nl.is_some() || eof {
                    let end = nl.unwrap_or(buf.len());
                    if skip(&buf[pos..end]) {
                        n += 1;
                        pos = (end + 1).min(buf.len());
                        continue;
                    }
                }
            }
            let mut stream = serde_json::Deserializer::from_slice(&buf[pos..]).into_iter::<Value>();
            match stream.next() {
                None => {
                    pos = buf.len();
                    break;
                }
                Some(Ok(v)) => {
                    pos += stream.byte_offset();
                    if v.is_object() {
                        n += 1;
                        f(v);
                    } else {
                        bad += 1;
                        warn(format!(
                            "{}: skipped a JSON value that is not an object",
                            path.display()
                        ));
                    }
                }
                // A value cut by the end of the chunk: read on.
                Some(Err(e)) if e.is_eof() && !eof => break,
                Some(Err(e)) => {
                    bad += 1;
                    let line = line_base + memchr::memchr_iter(b'\n', &buf[..pos]).count();
                    // A syntax error leaves the stream unusable past this point.
                    warn(format!(
                        "{}: invalid JSON at line {} column {}: {e}; the rest of the file was not read",
                        path.display(),
                        line + e.line(),
                        e.column()
                    ));
                    stop = true;
                    break;
                }
            }
        }
        line_base += memchr::memchr_iter(b'\n', &buf[..pos]).count();
        buf.drain(..pos);
        if stop || (eof && buf.is_empty()) {
            break;
        }
        if buf.len() as u64 > MAX_JSON_VALUE_BYTES {
            bad += 1;
            warn(format!(
                "{}: a JSON value is larger than {} MiB; the rest of the file was not read",
                path.display(),
                MAX_JSON_VALUE_BYTES >> 20
            ));
            break;
        }
    }
    Ok((n, bad))
}

#[cfg(test)]
mod tests {
    use super::super::lines::read_line_limited;
    use super::*;

    #[test]
    fn reads_concatenated_json_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("a.json");
        std::fs::write(&j, "{\"a\":1}\n{\n \"b\": 2\n}{\"c\":3}\n[1]\n").unwrap();
        let mut seen = Vec::new();
        let mut warns = Vec::new();
        let (n, bad) = for_each_event(
            &j,
            detect(&j).unwrap(),
            &Default::default(),
            &mut |w| warns.push(w),
            &mut |v| seen.push(v),
            None,
        )
        .unwrap();
        assert_eq!((n, bad), (3, 1));
        let t = dir.path().join("auth.log");
        std::fs::write(
            &t,
            "Mar  1 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n\n",
        )
        .unwrap();
        assert_eq!(detect(&t).unwrap(), InputFormat::Text);
        seen.clear();
        for_each_event(
            &t,
            InputFormat::Text,
            &Default::default(),
            &mut |_| {},
            &mut |v| seen.push(v),
            None,
        )
        .unwrap();
        assert_eq!(seen[0]["user"]["name"], "root");
    }

    #[test]
    fn long_text_lines_are_cut_and_flagged() {
        let opts = vigil_parse::ParseOptions::default();
        let long = "x".repeat(opts.max_message_bytes * 3);
        let mut r = std::io::Cursor::new(format!("{long}\r\nshort\r\n\nlast"));
        let mut out = Vec::new();
        let (n, cut) = read_line_limited(&mut r, &mut out, opts.max_message_bytes).unwrap();
        assert_eq!(
            (n, cut, out.len()),
            (long.len() + 2, true, opts.max_message_bytes)
        );
        out.clear();
        assert_eq!(read_line_limited(&mut r, &mut out, 8).unwrap(), (7, false));
        assert_eq!(out, b"short\r");
        out.clear();
        assert_eq!(read_line_limited(&mut r, &mut out, 8).unwrap(), (1, false));
        out.clear();
        assert_eq!(read_line_limited(&mut r, &mut out, 8).unwrap(), (4, false));
        assert_eq!(out, b"last");
        out.clear();
        assert_eq!(read_line_limited(&mut r, &mut out, 8).unwrap(), (0, false));

        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("big.log");
        std::fs::write(&t, format!("{long}\nsmall line\n")).unwrap();
        let mut seen = Vec::new();
        let (n, _) = for_each_event(
            &t,
            InputFormat::Text,
            &opts,
            &mut |_| {},
            &mut |v| seen.push(v),
            None,
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen[0]["vigil"]["truncated"], true, "{:.200}", seen[0]);
        assert!(seen[1].pointer("/vigil/truncated").is_none());
    }

    #[test]
    fn values_cut_by_the_read_chunk_are_completed_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("long.ndjson");
        let long = "z".repeat(JSON_CHUNK + JSON_CHUNK / 2);
        let mut text = String::new();
        for i in 0..3 {
            text.push_str(&format!("{{\"i\":{i},\"s\":\"{long}\"}}\n"));
        }
        text.push_str("{\"a\":\n 1}\n{\"b\": nope}\n{\"c\":3}\n");
        std::fs::write(&j, text).unwrap();
        let mut warns = Vec::new();
        let mut seen = Vec::new();
        let (n, bad) = for_each_event(
            &j,
            InputFormat::Json,
            &Default::default(),
            &mut |w| warns.push(w),
            &mut |v| seen.push(v),
            None,
        )
        .unwrap();
        assert_eq!((n, bad), (4, 1));
        assert_eq!(seen[2]["i"], 2);
        assert_eq!(seen[2]["s"].as_str().unwrap().len(), long.len());
        assert_eq!(seen[3]["a"], 1);
        assert!(warns[0].contains("line 6"), "{warns:?}");
    }

    #[test]
    fn oversized_json_value_stops_the_file_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("big.json");
        let big = "y".repeat(MAX_JSON_VALUE_BYTES as usize + 10);
        std::fs::write(
            &j,
            format!("{{\"a\":1}}\n{{\"b\":\"{big}\"}}\n{{\"c\":3}}\n"),
        )
        .unwrap();
        let mut warns = Vec::new();
        let mut seen = 0;
        let (n, bad) = for_each_event(
            &j,
            InputFormat::Json,
            &Default::default(),
            &mut |w| warns.push(w),
            &mut |_| seen += 1,
            None,
        )
        .unwrap();
        assert_eq!((n, bad, seen), (1, 1, 1));
        assert!(warns[0].contains("larger than 16 MiB"), "{warns:?}");
    }
}
