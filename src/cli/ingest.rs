//! `vigil ingest`: append a file to a data dir offline.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use vigil_ingest::{InputKind, RawMessage};
use vigil_server::pipeline::{count_decoded, decode_message, EventWriter, Prepared};

use super::DataArgs;

/// Flags of `vigil ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// File to read, or `-` for stdin. Each line is one message.
    file: PathBuf,
    /// Source name stored in `vigil.source` (default: the file name).
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

const BATCH: usize = 4096;

pub fn run(a: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    vigil_server::prepare_data_dir(&config)?;
    // An import has no live traffic to make room for: segments are
    // compressed as they are sealed, beside the import, instead of all at
    // the end on one thread (which made a 1 M event import 28 % slower).
    let ledger_options = vigil_ledger::LedgerOptions {
        max_uncompressed_bytes: 0,
        ..config.ledger_options()
    };
    let ledger = vigil_ledger::Ledger::open(&config.ledger_dir(), ledger_options)
        .with_context(|| format!("opening the ledger in {} (a running server holds it: send events to its API instead)", config.ledger_dir().display()))?;
    let (mut notary, secrets) = vigil_server::open_notary(&config)?;
    if let Some(s) = &secrets {
        println!("created ledger keys; verifier key: {}", s.verifier_key);
        if !s.initial_seal_key.is_empty() {
            println!("initial sealing key (shown once, never stored; keep it offline for audits):");
            println!("  {}", s.initial_seal_key.as_str());
        }
    }
    let mut writer = EventWriter::new(ledger);
    let opts = config.parse_options();
    // Offline ingest stores exactly what the server would: redacted first.
    let redactor = config
        .redaction
        .redactor(&config.data_dir)
        .context("setting up [redaction]")?;
    let mut redacted = redactor.as_ref().map(|r| r.tally()).unwrap_or_default();
    let stdin = a.file.as_os_str() == "-";
    let source = a.source.clone().unwrap_or_else(|| {
        if stdin {
            "stdin".into()
        } else {
            a.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into())
        }
    });
    let (reader, size): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = match size {
            Some(s) => indicatif::ProgressBar::new(s),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
            )
            .expect("valid template"),
        );
        Some(b)
    } else {
        None
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::with_capacity(4096);
    let mut batch = Vec::with_capacity(BATCH);
    let mut tally = Tally::default();
    let mut bytes = 0u64;
    let limit = config.limits.max_message_bytes;
    loop {
        line.clear();
        let (read, truncated) = super::lines::read_line_limited(&mut reader, &mut line, limit)?;
        bytes += read as u64;
        if read == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let msg = RawMessage {
            bytes: std::mem::take(&mut line),
            truncated,
            input: InputKind::File,
            peer: None,
            received_at: SystemTime::now(),
        };
        let mut ev = decode_message(&msg, Some(&source), &opts);
        if let Some(r) = &redactor {
            r.redact(&mut ev, &mut redacted);
        }
        batch.push(Prepared::new(&ev));
        line = msg.bytes;
        if batch.len() >= BATCH {
            tally.flush(&mut writer, &mut batch)?;
            if let Some(b) = &bar {
                b.set_position(bytes);
                b.set_message(format!("{} events", tally.stored));
            }
        }
    }
    tally.flush(&mut writer, &mut batch)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some((size, root)) = writer.ledger().durable_root() {
        if notary.last().is_none_or(|c| c.size < size) {
            notary
                .checkpoint(size, root)
                .context("signing the ledger checkpoint")?;
        }
    }
    if let Some(r) = &redactor {
        let counts = r.counts(&redacted);
        if !counts.is_empty() {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("redacted before storage: {}", parts.join(", "));
        }
    }
    if tally.stored == 0 {
        println!("no events in {}", a.file.display());
    } else {
        println!(
            "stored {} events (seq {}..{}, {} kept raw with a parse error) in {}",
            tally.stored,
            tally.first_seq,
            tally.last_seq,
            tally.failed,
            config.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `vigil ingest` has stored so far.
#[derive(Debug, Default)]
struct Tally {
    stored: u64,
    failed: u64,
    first_seq: u64,
    last_seq: u64,
}

impl Tally {
    /// Appends and commits a batch.
    fn flush(&mut self, w: &mut EventWriter, batch: &mut Vec<Prepared>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        count_decoded(InputKind::File, batch);
        self.failed += batch.iter().filter(|e| e.parse_failed).count() as u64;
        if self.first_seq == 0 {
            self.first_seq = w.ledger().next_seq();
        }
        w.append(batch, |_| {})?;
        self.last_seq = w.commit()?;
        self.stored += batch.len() as u64;
        batch.clear();
        Ok(())
    }
}
