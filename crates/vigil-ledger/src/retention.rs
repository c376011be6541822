//! Retention: deleting whole old segments without breaking verification or
//! proofs for the records that remain ([`crate::Ledger::retain`]).
//!
//! Only sealed segments are deleted, oldest first and whole; the open one
//! never is. Every `X.frontier` file is kept: the frontier of the first
//! remaining segment is the compact range (the perfect-subtree roots) of
//! everything deleted, which is all that is needed to go on computing the
//! tree root, to verify later checkpoints and to build inclusion proofs for
//! the remaining records (see [`crate::proof`]).
//!
//! Before any file is removed the run is appended, as one JSON line, to
//! `ledger/retention.log` and fsynced ([`RetentionRun`]); `vigil verify`
//! reports records below the first segment as deleted by retention only when
//! that log covers exactly `1..first_seq`, and as missing otherwise. The
//! server (and `vigil retain`) also append a signed `retention_deleted`
//! event to the ledger itself.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::dir::{self, io_err};
use crate::LedgerError;

/// Name of the retention log inside the ledger directory.
pub const RETENTION_LOG: &str = "retention.log";

/// When sealed segments are deleted. `None` (or the default) keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete a sealed segment once its newest record is older than this.
    /// A segment's newest record is never newer than the creation time of
    /// the next segment (written in that segment's header), which is the
    /// time used.
    pub max_age: Option<Duration>,
    /// Delete the oldest sealed segments while all segment files together
    /// take more bytes than this on disk.
    pub max_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// True when the policy never deletes anything.
    pub fn keeps_everything(&self) -> bool {
        self.max_age.is_none() && self.max_bytes.is_none()
    }
}

/// One retention run, as stored in `retention.log` (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRun {
    /// When it ran (RFC 3339, UTC).
    pub time: String,
    /// When it ran, seconds since the Unix epoch.
    pub time_unix: u64,
    /// Who ran it: `retention` for the server's policy, or a user name.
    pub actor: String,
    /// Which limit caused it: `max_age_days=N`, `max_age_secs=N`,
    /// `max_bytes=N` (joined with `; ` when both).
    pub reason: String,
    /// First deleted seq.
    pub first_seq: u64,
    /// Last deleted seq.
    pub last_seq: u64,
    /// File names of the deleted segments.
    pub segments: Vec<String>,
    /// Bytes the deleted segment files took on disk.
    pub bytes: u64,
    /// First seq kept (`last_seq + 1`).
    pub kept_first_seq: u64,
    /// Hex of the `{kept_first_seq}.frontier` bytes: the compact range of
    /// records `1..=last_seq` that later roots and proofs are built on.
    pub frontier: String,
}

/// Reads `retention.log`; lines that do not parse are skipped (with a
/// warning), so they do not count as covering anything.
pub fn read_retention_log(ledger_dir: &Path) -> Result<Vec<RetentionRun>, LedgerError> {
    let path = ledger_dir.join(RETENTION_LOG);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RetentionRun>(line) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, error = %e, "ignoring a malformed retention log line");
            }
        }
    }
    Ok(out)
}

/// The seqs `1..=n` that `runs` delete together, when they chain without a
/// gap from seq 1 (`Some(n)`); `None` otherwise.
pub fn covered_prefix(runs: &[RetentionRun]) -> Option<u64> {
    let mut sorted: Vec<&RetentionRun> = runs.iter().collect();
    sorted.sort_by_key(|r| r.first_seq);
    let mut end = 0u64;
    for r in sorted {
        if r.first_seq > end + 1 || r.last_seq < r.first_seq {
            return None;
        }
        end = end.max(r.last_seq);
    }
    (end > 0).then_some(end)
}

/// The run that deleted `seq`, if any.
pub fn run_for_seq(runs: &[RetentionRun], seq: u64) -> Option<&RetentionRun> {
    runs.iter()
        .find(|r| r.first_seq <= seq && seq <= r.last_seq)
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The reason string for a limit.
pub(crate) fn age_reason(age: Duration) -> String {
    let s = age.as_secs();
    if s / 86_400 * 86_400 == s {
        format!("max_age_days={}", s / 86_400)
    } else {
        format!("max_age_secs={s}")
    }
}

/// Appends `run` to `retention.log` and makes it durable.
pub(crate) fn append_log(ledger_dir: &Path, run: &RetentionRun) -> Result<(), LedgerError> {
    let path = ledger_dir.join(RETENTION_LOG);
    let existed = path.exists();
    let mut line = serde_json::to_vec(run).map_err(|e| LedgerError::Io {
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(&line).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    if !existed {
        dir::fsync_dir(ledger_dir)?;
    }
    Ok(())
}

/// Removes the files of deleted segments (both forms) and syncs the directory.
pub(crate) fn remove_files(ledger_dir: &Path, paths: &[PathBuf]) -> Result<(), LedgerError> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(p)(e)),
        }
    }
    dir::fsync_dir(ledger_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: u64, b: u64) -> RetentionRun {
        RetentionRun {
            time: String::new(),
            time_unix: 0,
            actor: "retention".into(),
            reason: "max_bytes=1".into(),
            first_seq: a,
            last_seq: b,
            segments: Vec::new(),
            bytes: 0,
            kept_first_seq: b + 1,
            frontier: String::new(),
        }
    }

    #[test]
    fn coverage() {
        assert_eq!(covered_prefix(&[]), None);
        assert_eq!(covered_prefix(&[run(1, 10)]), Some(10));
        assert_eq!(covered_prefix(&[run(11, 20), run(1, 10)]), Some(20));
        assert_eq!(covered_prefix(&[run(1, 10), run(12, 20)]), None);
        assert_eq!(covered_prefix(&[run(2, 10)]), None);
        assert_eq!(
            age_reason(Duration::from_secs(86_400 * 30)),
            "max_age_days=30"
        );
        assert_eq!(age_reason(Duration::from_secs(90)), "max_age_secs=90");
    }
}
