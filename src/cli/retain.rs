//! `vigil retain`: apply a retention policy to a data dir offline.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::Args;
use vigil_ledger::RetentionPolicy;
use vigil_server::pipeline::EventWriter;

use super::DataArgs;

/// Flags of `vigil retain`.
#[derive(Debug, Args)]
pub struct RetainArgs {
    /// Delete sealed segments whose newest record is older than this
    /// (`30d`, `12h`, `90m`, `3600s`; a bare number is days).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    max_age: Option<Duration>,
    /// Delete the oldest sealed segments while the ledger takes more than
    /// this (`10G`, `500M`, `64K`, or bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: Option<u64>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Who is deleting, recorded in retention.log and the ledger event
    /// (default: $USER).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "d"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid age {s:?}"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("invalid age unit in {s:?} (use d, h, m or s)")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("age {s:?} is too large"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        "T" | "t" => 1 << 40,
        _ => return Err(format!("invalid size unit in {s:?} (use K, M, G or T)")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err("size must be greater than 0".into()),
        Some(v) => Ok(v),
        None => Err(format!("size {s:?} is too large")),
    }
}

pub fn run(a: RetainArgs) -> anyhow::Result<ExitCode> {
    let config = a.data.load()?;
    let policy = if a.max_age.is_some() || a.max_bytes.is_some() {
        RetentionPolicy {
            max_age: a.max_age,
            max_bytes: a.max_bytes,
        }
    } else {
        config.retention_policy()
    };
    if policy.keeps_everything() {
        bail!("nothing to do: give --max-age or --max-bytes (or set retention_max_age_days / retention_max_bytes in [ledger])");
    }
    let user = a
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "vigil-cli".into());
    let ledger = vigil_ledger::Ledger::open(&config.ledger_dir(), config.ledger_options())
        .with_context(|| format!("opening the ledger in {} (a running server holds it: set retention in its [ledger] config instead)", config.ledger_dir().display()))?;
    if a.dry_run {
        match ledger.retention_plan(&policy, &user, SystemTime::now())? {
            None => println!("nothing is due for deletion"),
            Some(r) => println!(
                "would delete records {}..={} ({} segments, {} bytes; {}): {}",
                r.first_seq,
                r.last_seq,
                r.segments.len(),
                r.bytes,
                r.reason,
                r.segments.join(" ")
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (mut notary, _) = vigil_server::open_notary(&config)?;
    let mut writer = EventWriter::new(ledger);
    match writer.retain(Some(&policy), &user, &user)? {
        None => println!("nothing is due for deletion"),
        Some((r, seq)) => {
            if let Some((size, root)) = writer.ledger().durable_root() {
                if notary.last().is_none_or(|c| c.size < size) {
                    notary
                        .checkpoint(size, root)
                        .context("signing the ledger checkpoint")?;
                }
            }
            println!(
                "deleted records {}..={} ({} segments, {} bytes; {}); recorded as event {seq} and in retention.log",
                r.first_seq,
                r.last_seq,
                r.segments.len(),
                r.bytes,
                r.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("7").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_age("3w").is_err());
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("0").is_err());
        assert!(parse_size("5X").is_err());
    }
}
