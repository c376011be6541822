//! `vigil verify`, `vigil prove`, `vigil verify-proof`, `vigil key`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use vigil_event::sanitize::display;
use vigil_ledger::note::VerifierKey;
use vigil_ledger::verify::{VerifyOptions, VerifyReport};

use super::DataArgs;

/// Flags of `vigil verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A checkpoint kept elsewhere (a witness file of checkpoint records, or
    /// a signed checkpoint note). Repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
    /// The initial sealing key printed when the keys were created (64 hex digits).
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "seal_key_file",
        env = "VIGIL_SEAL_KEY",
        hide_env_values = true
    )]
    seal_key: Option<String>,
    /// A file holding the initial sealing key.
    #[arg(long, value_name = "FILE")]
    seal_key_file: Option<PathBuf>,
    /// The published verifier key (text or a file holding it); default: the
    /// key in the data dir, which an intruder could have replaced.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Flags of `vigil key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    data: DataArgs,
}

/// Flags of `vigil prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// Seq of the record to prove inclusion of.
    #[arg(
        required_unless_present = "consistency",
        conflicts_with = "consistency"
    )]
    seq: Option<u64>,
    /// Prove that the tree of OLD records is a prefix of the stored
    /// checkpoint of size NEW (default: the newest).
    #[arg(long, num_args = 1..=2, value_names = ["OLD", "NEW"])]
    consistency: Option<Vec<u64>>,
    #[command(flatten)]
    data: DataArgs,
}

/// Flags of `vigil verify-proof`.
#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof (JSON from `vigil prove`), or `-` for stdin.
    file: PathBuf,
    /// The verifier key (as printed by `vigil key`), or a file holding it.
    #[arg(long, value_name = "KEY")]
    key: String,
}

/// Exit code for usage and I/O errors.
const EXIT_USAGE: u8 = 2;

fn fail_usage(e: anyhow::Error) -> ExitCode {
    let msg = format!("{e:#}");
    eprintln!("vigil: error: {}", display(&msg));
    ExitCode::from(EXIT_USAGE)
}

/// A verifier key given as text, or as a file holding the text.
fn parse_key(arg: &str) -> anyhow::Result<VerifierKey> {
    let text = if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_owned()
    };
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid verifier key: {e}"))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    match verify_inner(a) {
        Ok(code) => Ok(code),
        Err(e) => Ok(fail_usage(e)),
    }
}

fn verify_inner(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let mut notes = Vec::new();
    let verifier = match &a.key {
        Some(k) => parse_key(k)?,
        None => {
            notes.push("verifier key taken from the data dir; pass --key with the published key to rule out a replaced key".to_owned());
            vigil_ledger::integrity::load_verifier(&config.data_dir.join("keys"))
                .context("loading the verifier key (or pass --key)")?
        }
    };
    let seal_key = match (&a.seal_key, &a.seal_key_file) {
        (Some(k), _) => Some(k.trim().to_owned()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let mut external = Vec::new();
    for f in &a.checkpoints {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let label = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| f.display().to_string());
        external.push((label, bytes));
    }
    let opts = VerifyOptions {
        verifier,
        seal_key,
        external,
    };
    let report = vigil_ledger::verify::verify(&config.ledger_dir(), &opts)
        .with_context(|| format!("verifying {}", config.ledger_dir().display()))?;
    notes.extend(report.notes.iter().cloned());
    if a.json {
        print_json(&report, &notes);
    } else {
        print_text(&report, &notes);
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_json(r: &VerifyReport, notes: &[String]) {
    let v = serde_json::json!({
        "ok": r.ok(),
        "records": r.records,
        "last_seq": r.last_seq,
        "bytes": r.bytes,
        "disk_bytes": r.disk_bytes,
        "segments": r.segments,
        "checkpoints_checked": r.checkpoints_checked,
        "stored_checkpoints": r.stored_checkpoints,
        "external_checkpoints": r.external_checkpoints,
        "newest_checkpoint": r.newest_checkpoint,
        "seals_checked": r.seals_checked,
        "findings": r.findings,
        "notes": notes,
        "elapsed_secs": r.elapsed.as_secs_f64(),
    });
    println!("{v}");
}

fn print_text(r: &VerifyReport, notes: &[String]) {
    let seals = match r.seals_checked {
        Some(n) => format!("{n} seals verified"),
        None => "seals NOT checked (no --seal-key)".to_owned(),
    };
    let secs = r.elapsed.as_secs_f64();
    let speed = if secs > 0.0 {
        format!(", {:.0} MB/s", r.bytes as f64 / 1e6 / secs)
    } else {
        String::new()
    };
    if r.ok() {
        println!(
            "OK: {} records ({}) verified against {} signed checkpoints; {seals} ({secs:.2} s{speed})",
            r.records,
            mb(r.bytes),
            r.checkpoints_checked
        );
    } else {
        println!(
            "FAILED: {} findings in {} records ({}) checked against {} signed checkpoints; {seals}",
            r.findings.len(),
            r.records,
            mb(r.bytes),
            r.checkpoints_checked
        );
        for f in &r.findings {
            let range = match (f.first_seq, f.last_seq) {
                (Some(a), Some(b)) if a == b => format!("seq {a}"),
                (Some(a), Some(b)) => format!("seq {a}..={b}"),
                (Some(a), None) => format!("seq {a}.."),
                (None, Some(b)) => format!("size {b}"),
                (None, None) => "-".to_owned(),
            };
            println!(
                "  {:<16} {:<24} {}",
                f.kind.as_str().to_uppercase(),
                range,
                display(&f.detail)
            );
        }
    }
    for n in notes {
        println!("note: {}", display(n));
    }
}

pub fn key(a: KeyArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let v = vigil_ledger::integrity::load_verifier(&config.data_dir.join("keys"))?;
    println!("{v}");
    Ok(ExitCode::SUCCESS)
}

pub fn prove(a: ProveArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let dir = config.ledger_dir();
    let json = match (&a.consistency, a.seq) {
        (Some(sizes), _) => {
            let p = vigil_ledger::proof::prove_consistency(&dir, sizes[0], sizes.get(1).copied())?;
            serde_json::to_string_pretty(&p)?
        }
        (None, Some(seq)) => {
            let p = vigil_ledger::proof::prove_inclusion(&dir, seq)?;
            serde_json::to_string_pretty(&p)?
        }
        (None, None) => anyhow::bail!("give a SEQ or --consistency OLD [NEW]"),
    };
    // JSON escapes every control character, so this is safe to print as is.
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

pub fn verify_proof(a: VerifyProofArgs) -> anyhow::Result<ExitCode> {
    let key = match parse_key(&a.key) {
        Ok(k) => k,
        Err(e) => return Ok(fail_usage(e)),
    };
    let bytes = if a.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)?;
        b
    } else {
        match std::fs::read(&a.file) {
            Ok(b) => b,
            Err(e) => {
                return Ok(fail_usage(
                    anyhow::Error::new(e).context(format!("reading {}", a.file.display())),
                ))
            }
        }
    };
    match vigil_ledger::proof::verify_proof(&bytes, &key) {
        Ok(v) => {
            println!("OK: {}", display(&v.summary));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {}", display(&e.to_string()));
            Ok(ExitCode::from(1))
        }
    }
}
