//! Vigil's append-only event ledger: the durable record of every event, kept
//! under `DATA_DIR/ledger/`.
//!
//! In the data flow (`ingest -> parse -> pipeline -> ledger -> index`), the
//! ledger is the source of truth: the pipeline's writer thread appends the
//! canonical JSON bytes of each event, commits, and only then acknowledges the
//! senders. The ledger knows nothing of the schema; it stores opaque payloads
//! and gives each a gap-free sequence number starting at 1. The Merkle tree is
//! computed over exactly these payloads in seq order, so nothing here rewrites
//! a record.
//!
//! The principal types:
//!
//! * [`Ledger`] is the single writer. [`Ledger::append`] buffers a record
//!   (no syscall), [`Ledger::commit`] writes the batch and `fdatasync`s it
//!   (group commit) and returns the highest durable seq. Opening takes an
//!   exclusive lock and repairs whatever a crash left behind, reported by
//!   [`Ledger::recovery`].
//! * [`LedgerReader`] reads without a lock, beside the writer, in this process
//!   or another: [`LedgerReader::iter_range`] yields owned [`Record`]s, and
//!   [`LedgerReader::for_each_range`] lends payload slices for full scans.
//! * [`LedgerOptions`] sets when segments roll (size, age) and how sealed
//!   segments are compressed.
//!
//! On disk, records live in segment files named by their first seq
//! (`00000000000000000001.seg`); a rolled segment is sealed and compressed in
//! the background to `....seg.zst`. Each record carries a crc32c. `FORMAT.md`
//! in this crate describes the bytes and the recovery rules.
//!
//! # Example
//!
//! ```
//! use vigil_ledger::{Ledger, LedgerOptions, LedgerReader};
//!
//! # fn main() -> Result<(), vigil_ledger::LedgerError> {
//! let data = tempfile::tempdir().expect("temp dir");
//! let dir = data.path().join("ledger");
//!
//! let mut ledger = Ledger::open(&dir, LedgerOptions::default())?;
//! for event in [&br#"{"event":{"action":"authn_login_fail"}}"#[..], br#"{"event":{}}"#] {
//!     ledger.append(event)?;
//! }
//! let durable = ledger.commit()?; // now safe to acknowledge seqs 1..=durable
//! assert_eq!(durable, 2);
//!
//! let reader = LedgerReader::open(&dir)?;
//! for record in reader.iter_range(1, durable) {
//!     let record = record?;
//!     println!("{} {}", record.seq, String::from_utf8_lossy(&record.payload));
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod compress;
mod dir;
mod format;
pub mod merkle;
mod pace;
mod reader;
mod seek;
mod writer;

pub mod checkpoint;
pub mod integrity;
pub mod note;
pub mod proof;
pub mod retention;
pub mod seal;
pub mod verify;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use format::MAX_PAYLOAD_LEN;
pub use reader::{LedgerReader, Record, RecordIter};
pub use retention::{RetentionPolicy, RetentionRun};
pub use seek::FRAME_ALIGN_SEQS;
pub use writer::Ledger;

/// Tuning for a [`Ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    /// A segment is sealed before a record would take it past this size
    /// (a segment always holds at least one record). Default 64 MiB.
    pub segment_max_bytes: u64,
    /// A non-empty segment older than this is sealed at the next append,
    /// commit or [`Ledger::maybe_roll`]. Default 1 hour.
    pub segment_max_age: Duration,
    /// Compress sealed segments with zstd on a background thread. Default on.
    pub compress_sealed: bool,
    /// zstd level for sealed segments. Default 9. Past
    /// [`LedgerOptions::max_uncompressed_bytes`] a segment is compressed at
    /// level 1 first and again at this level once a core is idle (see
    /// [`LedgerStats::fast_compressions`]).
    pub zstd_level: i32,
    /// Bytes of sealed segments that may wait uncompressed for a core that
    /// nothing else wants (the compression thread runs under `SCHED_IDLE`),
    /// so an ingest burst does not pay for compression while it lasts. Past
    /// this, the oldest is compressed at once at normal priority, at level 1
    /// and marked provisional, and compressed again at
    /// [`LedgerOptions::zstd_level`] once a core is idle. 0: compress each
    /// segment as soon as it is sealed (at level 3 while another waits
    /// behind it). Default 1 GiB.
    pub max_uncompressed_bytes: u64,
    /// What a retention run ([`Ledger::retain_by_options`]) deletes. Default:
    /// keep everything.
    pub retention: RetentionPolicy,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(3600),
            compress_sealed: true,
            zstd_level: 9,
            max_uncompressed_bytes: 1 << 30,
            retention: RetentionPolicy::default(),
        }
    }
}

impl LedgerOptions {
    fn validate(&self) -> Result<(), LedgerError> {
        if self.segment_max_bytes == 0 {
            return Err(LedgerError::InvalidOptions(
                "segment_max_bytes must be greater than 0".into(),
            ));
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.zstd_level) {
            return Err(LedgerError::InvalidOptions(format!(
                "zstd_level {} is outside {}..={}",
                self.zstd_level,
                levels.start(),
                levels.end()
            )));
        }
        Ok(())
    }
}

/// What [`Ledger::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the end of the open segment (a torn or corrupt tail of
    /// records that were never acknowledged).
    pub truncated_bytes: u64,
    /// Seq of the last record kept (0 if the ledger is empty).
    pub last_seq: u64,
    /// Segment files after recovery, the open one included.
    pub segments: usize,
}

/// Counters describing a [`Ledger`], from [`Ledger::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Segments on disk, the open one included.
    pub segments: usize,
    /// Of those, sealed and compressed.
    pub compressed_segments: usize,
    /// Bytes of all segment files.
    pub bytes_on_disk: u64,
    /// Bytes written to the open segment (durable or not).
    pub active_segment_bytes: u64,
    /// Bytes appended but not yet written.
    pub buffered_bytes: usize,
    /// The seq the next append gets.
    pub next_seq: u64,
    /// Highest seq on stable storage.
    pub durable_seq: u64,
    /// Commits that wrote something, since open.
    pub commits: u64,
    /// Wall time of the last commit that wrote something (write + fdatasync).
    pub last_commit_duration: Duration,
    /// Sealed segments waiting for or under compression.
    pub pending_compressions: usize,
    /// Segments compressed since open.
    pub compressed_segments_written: u64,
    /// Segments compressed at a faster level than configured since open,
    /// because others were waiting.
    pub fast_compressions: u64,
    /// Provisional (fast-compressed) segments waiting to be compressed
    /// again at the configured level.
    pub provisional_segments: usize,
    /// Provisional segments compressed again at the configured level since open.
    pub refined_segments: u64,
    /// Failed compressions since open (the plain segment is kept).
    pub compression_errors: u64,
    /// Message of the last compression failure.
    pub last_compression_error: Option<String>,
}

/// Everything that can go wrong in the ledger. Messages name the file and,
/// for corruption, the byte offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// An I/O operation on `path` failed.
    #[error("ledger I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored bytes fail validation.
    #[error("corrupt ledger segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record or header (in the decompressed
        /// stream for `.seg.zst`).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another writer holds the directory lock.
    #[error("data dir is in use by another Vigil process (lock {path} is held)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The payload exceeds [`MAX_PAYLOAD_LEN`].
    #[error("ledger record of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or fsync failed; the writer refuses further work
    /// until reopened, because the file's state is unknown.
    #[error("ledger writer stopped after an earlier failure ({reason}); reopen to recover")]
    Poisoned {
        /// The original failure.
        reason: String,
    },
    /// [`LedgerOptions`] out of range.
    #[error("invalid ledger options: {0}")]
    InvalidOptions(String),
}
