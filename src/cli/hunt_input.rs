//! Reading hunt inputs: EVTX, JSON/NDJSON, and text logs.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
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
}

/// Picks the format from the extension, else from the first byte.
pub fn detect(path: &Path) -> anyhow::Result<InputFormat> {
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

/// Calls `f` with each event of `path`; returns the number of events and of
/// records that could not be read (each also reported through `warn`).
pub fn for_each_event(
    path: &Path,
    format: InputFormat,
    opts: &vigil_parse::ParseOptions,
    warn: &mut dyn FnMut(String),
    f: &mut dyn FnMut(Value),
) -> anyhow::Result<(u64, u64)> {
    let (mut n, mut bad) = (0u64, 0u64);
    match format {
        InputFormat::Evtx => {
            let mut parser = evtx::EvtxParser::from_path(path)
                .with_context(|| format!("opening EVTX {}", path.display()))?;
            for rec in parser.records_json_value() {
                match rec {
                    Ok(r) => {
                        n += 1;
                        f(r.data);
                    }
                    Err(e) => {
                        bad += 1;
                        warn(format!("{}: unreadable EVTX record: {e}", path.display()));
                    }
                }
            }
        }
        InputFormat::Json => {
            let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
            let stream = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
            for v in stream {
                match v {
                    Ok(v @ Value::Object(_)) => {
                        n += 1;
                        f(v);
                    }
                    Ok(_) => {
                        bad += 1;
                        warn(format!(
                            "{}: skipped a JSON value that is not an object",
                            path.display()
                        ));
                    }
                    Err(e) => {
                        bad += 1;
                        // A syntax error leaves the stream unusable past this point.
                        warn(format!("{}: invalid JSON at line {} column {}: {e}; the rest of the file was not read", path.display(), e.line(), e.column()));
                        break;
                    }
                }
            }
        }
        InputFormat::Text => {
            let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
            for line in reader.split(b'\n') {
                let line = line?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                n += 1;
                f(vigil_parse::parse_line(&line, opts).into_json());
            }
        }
    }
    Ok((n, bad))
}

#[cfg(test)]
mod tests {
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
        )
        .unwrap();
        assert_eq!(seen[0]["user"]["name"], "root");
    }
}
