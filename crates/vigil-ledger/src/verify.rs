//! Offline verification of a ledger against its signed, sealed checkpoints
//! and against checkpoints kept elsewhere (witnesses): [`verify`].
//!
//! What is checked, in one pass over every segment in seq order:
//!
//! * every record's length and CRC (a bad one is [`FindingKind::Corrupt`];
//!   reading stops there, since nothing after it can be placed in the tree);
//! * that seqs run gap-free from 1 ([`FindingKind::Missing`] for a gap,
//!   [`FindingKind::Reordered`] for a seq that goes backwards or repeats), and
//!   that the `vigil.seq` inside each payload equals the record's seq;
//! * the RFC 9162 Merkle tree over the payloads, compared with every stored
//!   checkpoint that verifies with the trusted key ([`FindingKind::Changed`],
//!   narrowed with the per-segment `X.frontier` files, which are unsigned and
//!   so only ever used to narrow a failure, never to pass anything), and with
//!   checkpoints larger than the ledger ([`FindingKind::Truncated`]);
//! * with the auditor's initial seal key, every checkpoint's forward-secure
//!   seal and that the epochs run without gaps from the first one
//!   ([`FindingKind::BrokenSeal`]);
//! * external checkpoints: a witness that saw more records than the ledger
//!   holds is a [`FindingKind::Rollback`]; one whose root differs from the
//!   ledger's at its size is [`FindingKind::Changed`], and
//!   [`FindingKind::Inconsistent`] when a stored checkpoint of the same size
//!   claims another root (the stored log was re-signed).
//!
//! Readers take no lock, so this runs beside a live server. Checkpoints are
//! read before the segments are listed: every record a checkpoint covers was
//! durable before the checkpoint was written, so a checkpoint read first is
//! never ahead of the records listed after.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::checkpoint::Checkpoint;
use crate::dir::{self, SegEntry, SegKind};
use crate::format::{self, SegmentHeader, HEADER_LEN, RECORD_HEADER_LEN};
use crate::integrity::{CheckpointRecord, CHECKPOINT_LOG};
use crate::merkle::{self, CompactTree, Hash};
use crate::note::VerifierKey;
use crate::seal::{SealKey, MAX_VERIFY_EPOCH};
use crate::{LedgerError, MAX_PAYLOAD_LEN};

/// Epoch of the first checkpoint a notary ever seals: the key is created at
/// epoch 0 (`k[0]`, given to the auditor), evolved once before it is stored,
/// and evolved again before each checkpoint.
pub const FIRST_SEAL_EPOCH: u64 = 2;

/// Most ranges reported per kind of finding; the rest are summarised.
const MAX_RANGES: usize = 50;

/// What to verify against.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The trusted checkpoint key. Pass the published key rather than the one
    /// on the host when the host may be compromised.
    pub verifier: VerifierKey,
    /// The auditor's initial seal key `k[0]` (64 hex digits); `None` skips
    /// the seal check (reported in [`VerifyReport::notes`]).
    pub seal_key: Option<String>,
    /// External checkpoints: `(label, bytes)`, where the bytes are a signed
    /// checkpoint note, or one or more `checkpoints.log` JSON lines (as file
    /// witnesses store them).
    pub external: Vec<(String, Vec<u8>)>,
}

/// The kind of a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Stored content differs from what a signed checkpoint covers.
    Changed,
    /// Records are missing from the middle of the ledger (a seq gap).
    Missing,
    /// A record is out of place: its seq goes backwards or repeats, or its
    /// payload's `vigil.seq` names another position.
    Reordered,
    /// The ledger ends before the end of a stored signed checkpoint.
    Truncated,
    /// A checkpoint's signature does not verify with the trusted key.
    ForgedSignature,
    /// A checkpoint's seal does not verify with the auditor's key, or seal
    /// epochs are missing from the checkpoint log.
    BrokenSeal,
    /// Bytes fail their checksum or format; reading stopped there.
    Corrupt,
    /// An external checkpoint covers more records than the ledger holds.
    Rollback,
    /// Two signed checkpoints contradict each other.
    Inconsistent,
}

impl FindingKind {
    /// A short lower-case name (`changed`, `forged_signature`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Changed => "changed",
            FindingKind::Missing => "missing",
            FindingKind::Reordered => "reordered",
            FindingKind::Truncated => "truncated",
            FindingKind::ForgedSignature => "forged_signature",
            FindingKind::BrokenSeal => "broken_seal",
            FindingKind::Corrupt => "corrupt",
            FindingKind::Rollback => "rollback",
            FindingKind::Inconsistent => "inconsistent",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found. Details may quote file names and labels; sanitize
/// them before display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// First seq affected, when known.
    pub first_seq: Option<u64>,
    /// Last seq affected, when known.
    pub last_seq: Option<u64>,
    /// Explanation for a person.
    pub detail: String,
}

impl Finding {
    fn new(kind: FindingKind, first: Option<u64>, last: Option<u64>, detail: String) -> Self {
        Finding {
            kind,
            first_seq: first,
            last_seq: last,
            detail,
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Records read.
    pub records: u64,
    /// Highest seq read (0 if none).
    pub last_seq: u64,
    /// Bytes of segment content read (decompressed), headers included.
    pub bytes: u64,
    /// Bytes of the segment files on disk.
    pub disk_bytes: u64,
    /// Segments read.
    pub segments: usize,
    /// Checkpoints whose root was compared with the recomputed tree (stored
    /// and external).
    pub checkpoints_checked: usize,
    /// Stored checkpoints (lines of `checkpoints.log`).
    pub stored_checkpoints: usize,
    /// External checkpoints given.
    pub external_checkpoints: usize,
    /// Size of the newest stored checkpoint with a valid signature.
    pub newest_checkpoint: Option<u64>,
    /// Seals verified, or `None` when no seal key was given.
    pub seals_checked: Option<usize>,
    /// Whether `vigil.seq` was checked in every payload that has it.
    pub payload_seqs_checked: u64,
    /// Things worth knowing that are not failures (unchecked seals, records
    /// beyond the newest checkpoint, ...).
    pub notes: Vec<String>,
    /// The problems found; empty when everything holds.
    pub findings: Vec<Finding>,
    /// Wall time of the verification.
    pub elapsed: Duration,
}

impl VerifyReport {
    /// True when nothing was found.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A checkpoint that opened with the trusted key.
#[derive(Debug, Clone)]
struct Cp {
    size: u64,
    root: Hash,
    /// `epoch N` for stored ones, the label for external ones.
    label: String,
}

/// State of the per-segment frontier file compared with the recomputed tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontierState {
    Match,
    Mismatch,
    Unusable,
}

/// Scan state.
struct Scan {
    tree: CompactTree,
    /// Highest seq seen + 1.
    next: u64,
    records: u64,
    bytes: u64,
    /// Seq ranges not seen (yet), in order.
    gaps: Vec<(u64, u64)>,
    /// Seqs that arrived out of place (backwards or duplicated).
    reordered: Vec<u64>,
    /// Records whose payload `vigil.seq` differs: (record seq, payload seq).
    seq_mismatch: Vec<(u64, u64)>,
    payload_seqs_checked: u64,
    /// Sizes whose root is needed, ascending; `need_idx` is the next one.
    needed: Vec<u64>,
    need_idx: usize,
    roots: BTreeMap<u64, Hash>,
    /// Needed sizes reached while the tree was not aligned with the seqs.
    unaligned: BTreeSet<u64>,
    /// (first seq of the segment, frontier state).
    frontiers: Vec<(u64, FrontierState)>,
    /// Where a lenient read of the newest segment stopped, and why.
    tail_stop: Option<String>,
    corrupt: Option<Finding>,
    finders: SeqFinders,
}

impl Scan {
    fn aligned(&self) -> bool {
        self.gaps.is_empty() && self.tree.size() + 1 == self.next
    }

    #[inline]
    fn record(&mut self, seq: u64, payload: &[u8]) {
        if seq != self.next {
            self.out_of_order(seq);
        } else {
            self.next = seq + 1;
        }
        self.records += 1;
        self.bytes += (RECORD_HEADER_LEN + payload.len()) as u64;
        let mut found = payload_seq(&self.finders, payload);
        if found != PayloadSeq::Seq(seq) && found != PayloadSeq::Absent {
            // Confirm a mismatch with a real parse before reporting it.
            found = payload_seq_slow(payload);
        }
        if let PayloadSeq::Seq(s) = found {
            self.payload_seqs_checked += 1;
            if s != seq && self.seq_mismatch.len() < 100_000 {
                self.seq_mismatch.push((seq, s));
            }
        }
        self.tree.append(merkle::leaf_hash(payload));
        if self.need_idx < self.needed.len() && self.tree.size() == self.needed[self.need_idx] {
            self.reached_needed();
        }
    }

    #[cold]
    fn out_of_order(&mut self, seq: u64) {
        if seq > self.next {
            self.gaps.push((self.next, seq - 1));
            self.next = seq + 1;
            return;
        }
        // Backwards or repeated: fills a gap (moved record) or duplicates one.
        if let Some(i) = self.gaps.iter().position(|&(a, b)| a <= seq && seq <= b) {
            let (a, b) = self.gaps[i];
            self.gaps.remove(i);
            if seq < b {
                self.gaps.insert(i, (seq + 1, b));
            }
            if a < seq {
                self.gaps.insert(i, (a, seq - 1));
            }
        }
        if self.reordered.len() < 100_000 {
            self.reordered.push(seq);
        }
    }

    #[cold]
    fn reached_needed(&mut self) {
        let size = self.needed[self.need_idx];
        self.need_idx += 1;
        if self.aligned() {
            self.roots.insert(size, self.tree.root());
        } else {
            self.unaligned.insert(size);
        }
    }
}

/// Verifies the ledger in `dir_ledger` (`DATA_DIR/ledger`).
///
/// Returns an error only when verification could not run at all (the
/// directory is unreadable, the seal key is malformed); everything wrong
/// with the stored data is a [`Finding`] in the report.
pub fn verify(dir_ledger: &Path, opts: &VerifyOptions) -> Result<VerifyReport, LedgerError> {
    let start = Instant::now();
    let mut report = VerifyReport::default();
    let mut findings = Vec::new();

    if let Some(k) = &opts.seal_key {
        // Fail early on a malformed key: that is a usage error, not a finding.
        SealKey::from_initial(k, 0).map_err(|e| LedgerError::InvalidOptions(e.to_string()))?;
    }
    let meta = std::fs::metadata(dir_ledger).map_err(dir::io_err(dir_ledger))?;
    if !meta.is_dir() {
        return Err(LedgerError::Io {
            path: dir_ledger.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }

    // 1. Checkpoints first (see the module docs for why).
    let log_path = dir_ledger.join(CHECKPOINT_LOG);
    let records = read_log(&log_path, &mut findings)?;
    report.stored_checkpoints = records.len();
    let mut stored: Vec<Cp> = Vec::new();
    for (line, rec) in &records {
        match Checkpoint::open(rec.note.as_bytes(), std::slice::from_ref(&opts.verifier)) {
            Ok((cp, _)) => stored.push(Cp {
                size: cp.size,
                root: cp.root,
                label: format!("epoch {}", rec.epoch),
            }),
            Err(e) => {
                let size = rec.checkpoint_unverified().ok().map(|c| c.size);
                findings.push(Finding::new(
                    FindingKind::ForgedSignature,
                    None,
                    size,
                    format!(
                        "{} line {line} (epoch {}{}): signature does not verify with key {}: {e}",
                        CHECKPOINT_LOG,
                        rec.epoch,
                        size.map(|s| format!(", size {s}")).unwrap_or_default(),
                        opts.verifier.name()
                    ),
                ));
            }
        }
    }
    stored.sort_by_key(|c| c.size);
    report.newest_checkpoint = stored.last().map(|c| c.size);

    let mut external: Vec<Cp> = Vec::new();
    for (label, bytes) in &opts.external {
        open_external(label, bytes, &opts.verifier, &mut external, &mut findings);
    }
    report.external_checkpoints = external.len();

    // 2. Seals.
    match &opts.seal_key {
        Some(k0) => {
            report.seals_checked = Some(check_seals(k0, &records, &mut findings)?);
        }
        None => report.notes.push(
            "seals were not checked (no initial sealing key given): a thief of the current signing key could re-sign history undetected".into(),
        ),
    }

    // 3. The records.
    let mut needed: Vec<u64> = stored
        .iter()
        .chain(external.iter())
        .map(|c| c.size)
        .filter(|&s| s > 0)
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let mut scan = Scan {
        tree: CompactTree::new(),
        next: 1,
        records: 0,
        bytes: 0,
        gaps: Vec::new(),
        reordered: Vec::new(),
        seq_mismatch: Vec::new(),
        payload_seqs_checked: 0,
        needed,
        need_idx: 0,
        roots: BTreeMap::new(),
        unaligned: BTreeSet::new(),
        frontiers: Vec::new(),
        tail_stop: None,
        corrupt: None,
        finders: SeqFinders::new(),
    };
    scan.roots.insert(0, merkle::EMPTY_ROOT);
    let listing = dir::list(dir_ledger)?;
    report.segments = listing.segs.len();
    // Records below the oldest segment (deleted by retention, or removed):
    // the tree starts from that segment's frontier, which later signed
    // checkpoints authenticate (their roots only match if it is right).
    let mut deleted_below = 1;
    if let Some(first) = listing.segs.first().filter(|e| e.first_seq > 1) {
        let s = first.first_seq;
        let path = dir::frontier_path(dir_ledger, s);
        let front = dir::read_frontier(&path).filter(|t| t.size() + 1 == s);
        match front {
            Some(t) => {
                deleted_below = s;
                start_from_frontier(&mut scan, t);
                deleted_prefix_finding(dir_ledger, s, &mut report, &mut findings)?;
            }
            None => report.notes.push(format!(
                "the oldest segment starts at seq {s} and its frontier {} is missing or invalid, so no checkpoint can be compared",
                path.display()
            )),
        }
    }
    let mut buf = SegBuf::new();
    for (i, entry) in listing.segs.iter().enumerate() {
        let newest = i + 1 == listing.segs.len();
        report.disk_bytes += scan_segment(dir_ledger, entry, newest, &mut scan, &mut buf)?;
        if scan.corrupt.is_some() {
            break;
        }
    }
    report.records = scan.records;
    report.last_seq = scan.next - 1;
    report.bytes = scan.bytes + (report.segments * HEADER_LEN) as u64;
    report.payload_seqs_checked = scan.payload_seqs_checked;

    // 4. Classify.
    let corrupt_at = scan.corrupt.as_ref().and_then(|f| f.first_seq);
    if let Some(f) = scan.corrupt.take() {
        findings.push(f);
    }
    for (a, b) in scan.gaps.iter().take(MAX_RANGES) {
        findings.push(Finding::new(
            FindingKind::Missing,
            Some(*a),
            Some(*b),
            format!(
                "records {a}..={b} are missing ({} records: a segment file was removed or records were cut out)",
                b - a + 1
            ),
        ));
    }
    if scan.gaps.len() > MAX_RANGES {
        report.notes.push(format!(
            "{} more gaps not listed",
            scan.gaps.len() - MAX_RANGES
        ));
    }
    let mut reordered = scan.reordered.clone();
    reordered.sort_unstable();
    reordered.dedup();
    for (a, b) in ranges(&reordered).into_iter().take(MAX_RANGES) {
        findings.push(Finding::new(
            FindingKind::Reordered,
            Some(a),
            Some(b),
            format!("records {a}..={b} are stored out of seq order (moved or duplicated)"),
        ));
    }
    let mut mism: Vec<u64> = scan.seq_mismatch.iter().map(|m| m.0).collect();
    mism.sort_unstable();
    mism.dedup();
    for (a, b) in ranges(&mism).into_iter().take(MAX_RANGES) {
        let example = scan
            .seq_mismatch
            .iter()
            .find(|m| m.0 == a)
            .map(|m| m.1)
            .unwrap_or_default();
        findings.push(Finding::new(
            FindingKind::Reordered,
            Some(a),
            Some(b),
            format!(
                "records {a}..={b} carry another position in their payload (record {a} says vigil.seq {example}): moved between positions"
            ),
        ));
    }

    check_stored(
        &stored,
        &scan,
        &mut report,
        &mut findings,
        corrupt_at,
        deleted_below,
    );
    check_external(
        &external,
        &stored,
        &scan,
        &mut report,
        &mut findings,
        corrupt_at,
    );

    if let (Some(newest), true) = (report.newest_checkpoint, report.last_seq > 0) {
        if report.last_seq > newest && scan.corrupt_free(corrupt_at) {
            report.notes.push(format!(
                "records {}..={} are newer than the newest signed checkpoint and are not covered by a signature yet",
                newest + 1,
                report.last_seq
            ));
        }
    } else if report.last_seq > 0 && stored.is_empty() {
        report.notes.push(format!(
            "no valid signed checkpoint: records 1..={} are not covered by a signature",
            report.last_seq
        ));
    }
    if let Some(why) = &scan.tail_stop {
        report.notes.push(format!(
            "the newest segment ends in an incomplete or invalid record ({why}); a writer may be in the middle of writing it"
        ));
    }

    findings.sort_by_key(|f| (f.first_seq.or(f.last_seq).unwrap_or(0), f.kind));
    report.findings = findings;
    report.elapsed = start.elapsed();
    Ok(report)
}

impl Scan {
    fn corrupt_free(&self, corrupt_at: Option<u64>) -> bool {
        corrupt_at.is_none()
    }
}

/// Reads `checkpoints.log` line by line; a line that is not a record is a
/// `Corrupt` finding (the rest are still used).
fn read_log(
    path: &Path,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(usize, CheckpointRecord)>, LedgerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(dir::io_err(path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<CheckpointRecord>(line) {
            Ok(rec) => out.push((i + 1, rec)),
            Err(e) => findings.push(Finding::new(
                FindingKind::Corrupt,
                None,
                None,
                format!(
                    "{} line {}: not a checkpoint record: {e}",
                    CHECKPOINT_LOG,
                    i + 1
                ),
            )),
        }
    }
    Ok(out)
}

/// Opens external checkpoint bytes: a signed note, or JSON lines of
/// checkpoint records.
fn open_external(
    label: &str,
    bytes: &[u8],
    verifier: &VerifierKey,
    out: &mut Vec<Cp>,
    findings: &mut Vec<Finding>,
) {
    // Checkpoint records (JSON lines, possibly inside syslog lines as a
    // syslog witness stores them), or else one signed note.
    const RECORD_START: &[u8] = b"{\"epoch\":";
    let mut notes: Vec<(String, Vec<u8>)> = Vec::new();
    if memchr::memmem::find(bytes, RECORD_START).is_some() {
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let Some(at) = memchr::memmem::find(line, RECORD_START) else {
                continue;
            };
            match serde_json::from_slice::<CheckpointRecord>(line[at..].trim_ascii_end()) {
                Ok(rec) => notes.push((format!("{label} line {}", i + 1), rec.note.into_bytes())),
                Err(e) => findings.push(Finding::new(
                    FindingKind::Corrupt,
                    None,
                    None,
                    format!(
                        "external checkpoint {label} line {}: not a checkpoint record: {e}",
                        i + 1
                    ),
                )),
            }
        }
    } else {
        notes.push((label.to_owned(), bytes.to_vec()));
    }
    for (label, note) in notes {
        match Checkpoint::open(&note, std::slice::from_ref(verifier)) {
            Ok((cp, _)) => out.push(Cp {
                size: cp.size,
                root: cp.root,
                label,
            }),
            Err(e) => findings.push(Finding::new(
                FindingKind::ForgedSignature,
                None,
                None,
                format!(
                    "external checkpoint {label}: signature does not verify with key {}: {e}",
                    verifier.name()
                ),
            )),
        }
    }
}

/// Checks every stored seal with keys derived from `k0`, and that the
/// epochs run from [`FIRST_SEAL_EPOCH`] without gaps. Returns how many seals
/// verified.
fn check_seals(
    k0: &str,
    records: &[(usize, CheckpointRecord)],
    findings: &mut Vec<Finding>,
) -> Result<usize, LedgerError> {
    let mut order: Vec<&(usize, CheckpointRecord)> = records.iter().collect();
    order.sort_by_key(|(line, r)| (r.epoch, *line));
    let mut key =
        SealKey::from_initial(k0, 0).map_err(|e| LedgerError::InvalidOptions(e.to_string()))?;
    let mut ok = 0usize;
    let mut bad: Vec<(u64, Option<u64>)> = Vec::new();
    let mut expect_epoch = FIRST_SEAL_EPOCH;
    for (line, rec) in order {
        let size = rec.checkpoint_unverified().ok().map(|c| c.size);
        if rec.epoch > MAX_VERIFY_EPOCH {
            findings.push(Finding::new(
                FindingKind::BrokenSeal,
                None,
                size,
                format!(
                    "{CHECKPOINT_LOG} line {line}: seal epoch {} exceeds the maximum {MAX_VERIFY_EPOCH}",
                    rec.epoch
                ),
            ));
            continue;
        }
        if rec.epoch > expect_epoch {
            findings.push(Finding::new(
                FindingKind::BrokenSeal,
                None,
                size,
                format!(
                    "seal epochs {expect_epoch}..={} have no checkpoint in {CHECKPOINT_LOG}: checkpoints were removed or replaced (or a checkpoint write failed after its key evolved)",
                    rec.epoch - 1
                ),
            ));
        } else if rec.epoch < expect_epoch {
            findings.push(Finding::new(
                FindingKind::BrokenSeal,
                None,
                size,
                format!(
                    "{CHECKPOINT_LOG} line {line}: seal epoch {} is used more than once (or is below the first epoch {FIRST_SEAL_EPOCH})",
                    rec.epoch
                ),
            ));
        }
        if rec.epoch < key.epoch() {
            key = SealKey::from_initial(k0, 0)
                .map_err(|e| LedgerError::InvalidOptions(e.to_string()))?;
        }
        while key.epoch() < rec.epoch {
            key.evolve()
                .map_err(|e| LedgerError::InvalidOptions(e.to_string()))?;
        }
        expect_epoch = expect_epoch.max(rec.epoch + 1);
        let tag_ok = hex::decode(&rec.seal)
            .ok()
            .filter(|t| t.len() == 32)
            .is_some_and(|t| bool::from(key.tag(rec.body().as_bytes()).ct_eq(&t[..])));
        if tag_ok {
            ok += 1;
        } else {
            bad.push((rec.epoch, size));
        }
    }
    if let Some(&(epoch, size)) = bad.first() {
        findings.push(Finding::new(
            FindingKind::BrokenSeal,
            None,
            size,
            format!(
                "seal of epoch {epoch}{} does not verify with the initial sealing key ({} of {} seals fail): the checkpoint was altered or made by someone without that epoch's key",
                size.map(|s| format!(" (checkpoint size {s})")).unwrap_or_default(),
                bad.len(),
                records.len()
            ),
        ));
    }
    Ok(ok)
}

/// Starts the scan at the first record after `front` (the frontier of the
/// oldest segment), with the roots of every needed size it can give: its
/// own and those of its peak boundaries.
fn start_from_frontier(scan: &mut Scan, front: CompactTree) {
    let size = front.size();
    while scan.need_idx < scan.needed.len() && scan.needed[scan.need_idx] <= size {
        let m = scan.needed[scan.need_idx];
        if let Some(p) = front.prefix(m) {
            scan.roots.insert(m, p.root());
        }
        scan.need_idx += 1;
    }
    scan.next = size + 1;
    scan.tree = front;
}

/// Records `1..first_seq` are absent: a note when `retention.log` accounts
/// for exactly them, a `Missing` finding otherwise.
fn deleted_prefix_finding(
    dir_ledger: &Path,
    first_seq: u64,
    report: &mut VerifyReport,
    findings: &mut Vec<Finding>,
) -> Result<(), LedgerError> {
    let runs = crate::retention::read_retention_log(dir_ledger)?;
    let last = first_seq - 1;
    if crate::retention::covered_prefix(&runs) == Some(last) {
        let newest = runs.iter().max_by_key(|r| r.last_seq);
        report.notes.push(format!(
            "records 1..={last} were deleted by retention (see {}: {} runs{}); the remaining records are verified from the frontier of seq {first_seq}, which every later signed checkpoint authenticates",
            crate::retention::RETENTION_LOG,
            runs.len(),
            newest
                .map(|r| format!(", the last on {} by {} ({})", r.time, r.actor, r.reason))
                .unwrap_or_default()
        ));
    } else {
        findings.push(Finding::new(
            FindingKind::Missing,
            Some(1),
            Some(last),
            format!(
                "records 1..={last} are missing ({last} records): the oldest segment starts at seq {first_seq} and {} does not account for exactly these records",
                crate::retention::RETENTION_LOG
            ),
        ));
    }
    Ok(())
}

/// Compares stored checkpoints with the recomputed roots.
fn check_stored(
    stored: &[Cp],
    scan: &Scan,
    report: &mut VerifyReport,
    findings: &mut Vec<Finding>,
    corrupt_at: Option<u64>,
    deleted_below: u64,
) {
    let last_seq = scan.next - 1;
    let mut good = 0u64;
    let mut first_bad: Option<(&Cp, u64, u64)> = None;
    let mut later_bad = 0usize;
    let mut unverifiable = 0usize;
    let mut deleted = 0usize;
    for cp in stored {
        if cp.size > last_seq {
            continue; // handled below
        }
        let Some(root) = scan.roots.get(&cp.size) else {
            if cp.size < deleted_below {
                deleted += 1;
            } else {
                unverifiable += 1;
            }
            continue;
        };
        report.checkpoints_checked += 1;
        if *root == cp.root {
            if first_bad.is_none() {
                good = good.max(cp.size);
            } else {
                // A later checkpoint that matches after one that did not:
                // two signed checkpoints contradict each other.
                findings.push(Finding::new(
                    FindingKind::Inconsistent,
                    None,
                    Some(cp.size),
                    format!(
                        "stored checkpoint {} (size {}) matches the ledger but an earlier one does not",
                        cp.label, cp.size
                    ),
                ));
            }
        } else if first_bad.is_none() {
            first_bad = Some((cp, good + 1, cp.size));
        } else {
            later_bad += 1;
        }
    }
    if let Some((cp, lo, hi)) = first_bad {
        let later = if later_bad > 0 {
            format!("; {later_bad} later checkpoints fail too, as they include these records")
        } else {
            String::new()
        };
        findings.push(changed_finding(
            &scan.frontiers,
            lo,
            hi,
            &format!("signed checkpoint {} (size {})", cp.label, cp.size),
            &later,
        ));
    }
    if deleted > 0 {
        report.notes.push(format!(
            "{deleted} stored checkpoints cover only records deleted before seq {deleted_below} and could not be recomputed (their signatures, and seals when a key was given, were still checked)"
        ));
    }
    if unverifiable > 0 && corrupt_at.is_none() {
        report.notes.push(format!(
            "{unverifiable} stored checkpoints could not be compared because records before them are missing or out of order"
        ));
    } else if unverifiable > 0 {
        report.notes.push(format!(
            "{unverifiable} stored checkpoints could not be compared because reading stopped at corrupt data"
        ));
    }
    // Truncation: the largest stored checkpoint beyond the records read.
    if let Some(cp) = stored.iter().rev().find(|c| c.size > last_seq) {
        let n = stored.iter().filter(|c| c.size > last_seq).count();
        if let Some(at) = corrupt_at {
            report.notes.push(format!(
                "{n} stored checkpoints (up to size {}) reach beyond seq {at}, where reading stopped at corrupt data",
                cp.size
            ));
        } else {
            let tail = scan
                .tail_stop
                .as_ref()
                .map(|w| format!("; the newest segment ends in: {w}"))
                .unwrap_or_default();
            findings.push(Finding::new(
                FindingKind::Truncated,
                Some(last_seq + 1),
                Some(cp.size),
                format!(
                    "signed checkpoint {} covers {} records but the ledger ends at seq {last_seq}: records {}..={} are gone{tail}",
                    cp.label,
                    cp.size,
                    last_seq + 1,
                    cp.size
                ),
            ));
        }
    }
}

/// Compares external checkpoints with the recomputed roots and with the
/// stored checkpoints.
fn check_external(
    external: &[Cp],
    stored: &[Cp],
    scan: &Scan,
    report: &mut VerifyReport,
    findings: &mut Vec<Finding>,
    corrupt_at: Option<u64>,
) {
    let last_seq = scan.next - 1;
    let mut ext: Vec<&Cp> = external.iter().collect();
    ext.sort_by_key(|c| c.size);
    let mut good = 0u64;
    let mut reported_changed = false;
    for cp in ext {
        if cp.size > last_seq {
            if corrupt_at.is_some() {
                report.notes.push(format!(
                    "external checkpoint {} (size {}) reaches beyond where reading stopped at corrupt data",
                    cp.label, cp.size
                ));
                continue;
            }
            findings.push(Finding::new(
                FindingKind::Rollback,
                Some(last_seq + 1),
                Some(cp.size),
                format!(
                    "witness {} saw {} records, the ledger has {last_seq}: records {}..={} were rolled back or removed",
                    cp.label,
                    cp.size,
                    last_seq + 1,
                    cp.size
                ),
            ));
            continue;
        }
        for s in stored
            .iter()
            .filter(|s| s.size == cp.size && s.root != cp.root)
        {
            findings.push(Finding::new(
                FindingKind::Inconsistent,
                None,
                Some(cp.size),
                format!(
                    "witness {} and stored checkpoint {} are both signed for size {} but name different roots: the checkpoint log was re-signed",
                    cp.label, s.label, cp.size
                ),
            ));
        }
        if !stored.iter().any(|s| s.size == cp.size) {
            findings.push(Finding::new(
                FindingKind::Inconsistent,
                None,
                Some(cp.size),
                format!(
                    "witness {} holds a signed checkpoint of size {} that {CHECKPOINT_LOG} lacks (newest stored: {}): stored checkpoints were removed",
                    cp.label,
                    cp.size,
                    stored.last().map_or("none".to_owned(), |s| s.size.to_string())
                ),
            ));
        }
        let Some(root) = scan.roots.get(&cp.size) else {
            report.notes.push(format!(
                "external checkpoint {} (size {}) could not be compared because records before it are missing, out of order or unreadable",
                cp.label, cp.size
            ));
            continue;
        };
        report.checkpoints_checked += 1;
        if *root == cp.root {
            good = good.max(cp.size);
        } else if !reported_changed {
            reported_changed = true;
            findings.push(changed_finding(
                &scan.frontiers,
                good + 1,
                cp.size,
                &format!("witness checkpoint {} (size {})", cp.label, cp.size),
                "",
            ));
        }
    }
}

/// The `Changed` finding for records `lo..=hi` (narrowed with the segment
/// frontiers) that differ from what `what` covers; `suffix` ends the detail.
fn changed_finding(
    frontiers: &[(u64, FrontierState)],
    lo: u64,
    hi: u64,
    what: &str,
    suffix: &str,
) -> Finding {
    let (a, b) = narrow(frontiers, lo, hi);
    let narrowed = if (a, b) != (lo, hi) {
        format!(" (narrowed from {lo}..={hi} with the segment frontiers)")
    } else {
        String::new()
    };
    Finding::new(
        FindingKind::Changed,
        Some(a),
        Some(b),
        format!("records {a}..={b} differ from what {what} covers{narrowed}{suffix}"),
    )
}

/// Narrows a changed range `lo..=hi` with the frontier comparisons: records
/// before a matching frontier are as the writer hashed them; a mismatching
/// frontier means a change before it. Falls back to `lo..=hi` when the
/// (unsigned, possibly altered) frontiers contradict the range.
fn narrow(frontiers: &[(u64, FrontierState)], lo: u64, hi: u64) -> (u64, u64) {
    let (mut a, mut b) = (lo, hi);
    for &(first_seq, state) in frontiers {
        let covered = first_seq - 1; // the frontier is the tree of 1..=covered
        match state {
            FrontierState::Match => {
                if covered >= a && covered < b {
                    a = covered + 1;
                }
            }
            FrontierState::Mismatch => {
                if covered >= a && covered < b {
                    b = covered;
                }
                break;
            }
            FrontierState::Unusable => {}
        }
    }
    if a > b {
        (lo, hi)
    } else {
        (a, b)
    }
}

/// Merges sorted, deduplicated seqs into inclusive ranges.
fn ranges(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// A reusable read buffer over one segment's (decompressed) bytes.
struct SegBuf {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Offset of `buf[pos]` in the segment.
    offset: u64,
}

const READ_BUF: usize = 1 << 20;

impl SegBuf {
    fn new() -> SegBuf {
        SegBuf {
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.end = 0;
        self.eof = false;
        self.offset = 0;
    }

    /// Makes `n` bytes available from `pos` unless the input ends first;
    /// returns how many are available.
    fn fill(&mut self, r: &mut dyn Read, n: usize) -> io::Result<usize> {
        while self.end - self.pos < n && !self.eof {
            if self.buf.len() - self.pos < n {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
                if self.buf.len() < n {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }
}

/// Opens a segment, following a `.seg` that was compressed meanwhile to its
/// `.seg.zst`. Returns the reader, the kind actually opened, its path and
/// its size on disk.
fn open_segment(entry: &SegEntry) -> io::Result<(Box<dyn Read>, SegKind, PathBuf, u64)> {
    let open = |kind: SegKind, path: &Path| -> io::Result<(Box<dyn Read>, SegKind, PathBuf, u64)> {
        let f = File::open(path)?;
        let len = f.metadata()?.len();
        let r: Box<dyn Read> = match kind {
            SegKind::Plain => Box::new(f),
            SegKind::Compressed => Box::new(zstd::stream::read::Decoder::new(f)?),
        };
        Ok((r, kind, path.to_path_buf(), len))
    };
    match open(entry.kind, &entry.path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && entry.kind == SegKind::Plain => {
            let zst = entry.path.with_file_name(format::zst_name(entry.first_seq));
            open(SegKind::Compressed, &zst).map_err(|_| e)
        }
        r => r,
    }
}

/// Reads one segment into the scan. Returns the bytes of the file on disk.
fn scan_segment(
    dir: &Path,
    entry: &SegEntry,
    newest: bool,
    scan: &mut Scan,
    buf: &mut SegBuf,
) -> Result<u64, LedgerError> {
    // The stored frontier is the tree before this segment's first record.
    let state = if scan.aligned() && scan.tree.size() + 1 == entry.first_seq {
        match dir::read_frontier(&dir::frontier_path(dir, entry.first_seq)) {
            Some(t) if t == scan.tree => FrontierState::Match,
            Some(_) => FrontierState::Mismatch,
            None => FrontierState::Unusable,
        }
    } else {
        FrontierState::Unusable
    };
    scan.frontiers.push((entry.first_seq, state));

    let (mut r, kind, path, disk) = match open_segment(entry) {
        Ok(x) => x,
        Err(e) => return Err(dir::io_err(&entry.path)(e)),
    };
    let lenient = newest && kind == SegKind::Plain;
    buf.reset();
    let corrupt = |scan: &mut Scan, offset: u64, reason: String| {
        let at = scan.next;
        scan.corrupt = Some(Finding::new(
            FindingKind::Corrupt,
            Some(at),
            None,
            format!(
                "segment {} at offset {offset}{}: {reason}; records from seq {at} on cannot be verified",
                path.display(),
                if kind == SegKind::Compressed {
                    " (in the decompressed stream)"
                } else {
                    ""
                }
            ),
        ));
    };
    let io_fail = |e: io::Error| -> Result<(), String> {
        if kind == SegKind::Compressed {
            Err(format!("zstd decompression failed: {e}"))
        } else {
            Err(format!("read failed: {e}"))
        }
    };

    // Header.
    let have = match buf.fill(&mut r, HEADER_LEN) {
        Ok(n) => n,
        Err(e) => {
            if kind == SegKind::Plain {
                return Err(dir::io_err(&path)(e));
            }
            corrupt(scan, 0, io_fail(e).unwrap_err());
            return Ok(disk);
        }
    };
    let header = match SegmentHeader::decode(&buf.buf[buf.pos..buf.pos + have]) {
        Ok(h) => h,
        Err(reason) => {
            corrupt(scan, 0, reason);
            return Ok(disk);
        }
    };
    if header.first_seq != entry.first_seq {
        corrupt(
            scan,
            16,
            format!(
                "header says first seq {} but the file name says {}",
                header.first_seq, entry.first_seq
            ),
        );
        return Ok(disk);
    }
    buf.consume(HEADER_LEN);

    loop {
        let avail = match buf.fill(&mut r, RECORD_HEADER_LEN) {
            Ok(n) => n,
            Err(e) => {
                if kind == SegKind::Plain {
                    return Err(dir::io_err(&path)(e));
                }
                corrupt(scan, buf.offset, io_fail(e).unwrap_err());
                return Ok(disk);
            }
        };
        if avail == 0 {
            return Ok(disk);
        }
        let bad = |scan: &mut Scan, buf: &SegBuf, reason: String| {
            if lenient {
                scan.tail_stop = Some(format!(
                    "{} at offset {}: {reason}",
                    path.display(),
                    buf.offset
                ));
            } else {
                corrupt(scan, buf.offset, reason);
            }
        };
        if avail < RECORD_HEADER_LEN {
            bad(
                scan,
                buf,
                format!("truncated record header: {avail} bytes left"),
            );
            return Ok(disk);
        }
        let h = &buf.buf[buf.pos..buf.pos + RECORD_HEADER_LEN];
        let len = format::le_u32(&h[0..4]) as usize;
        if len > MAX_PAYLOAD_LEN {
            bad(
                scan,
                buf,
                format!("record length {len} exceeds the maximum of {MAX_PAYLOAD_LEN}"),
            );
            return Ok(disk);
        }
        let total = RECORD_HEADER_LEN + len;
        let avail = match buf.fill(&mut r, total) {
            Ok(n) => n,
            Err(e) => {
                if kind == SegKind::Plain {
                    return Err(dir::io_err(&path)(e));
                }
                corrupt(scan, buf.offset, io_fail(e).unwrap_err());
                return Ok(disk);
            }
        };
        if avail < total {
            bad(
                scan,
                buf,
                format!("truncated record: {avail} bytes left, record needs {total}"),
            );
            return Ok(disk);
        }
        let rec = &buf.buf[buf.pos..buf.pos + total];
        let crc = format::le_u32(&rec[4..8]);
        let seq = format::le_u64(&rec[8..16]);
        let payload = &rec[RECORD_HEADER_LEN..];
        let zero_ok = kind == SegKind::Compressed || header.crc_elided;
        if !format::crc_accepts(crc, seq, payload, zero_ok) {
            bad(
                scan,
                buf,
                format!("checksum mismatch in record claiming seq {seq}"),
            );
            return Ok(disk);
        }
        scan.record(seq, payload);
        buf.consume(total);
    }
}

/// The `vigil.seq` of a payload, if it has one.
#[derive(Debug, PartialEq, Eq)]
enum PayloadSeq {
    Seq(u64),
    Absent,
}

/// Prebuilt substring searchers for [`payload_seq`] (building one per
/// record showed up in profiles).
struct SeqFinders {
    vigil: memchr::memmem::Finder<'static>,
    seq: memchr::memmem::Finder<'static>,
}

const VIGIL_KEY: &[u8] = b"\"vigil\":{";
const SEQ_KEY: &[u8] = b"\"seq\":";

impl SeqFinders {
    fn new() -> SeqFinders {
        SeqFinders {
            vigil: memchr::memmem::Finder::new(VIGIL_KEY),
            seq: memchr::memmem::Finder::new(SEQ_KEY),
        }
    }
}

/// Finds `vigil.seq` in a canonical event. Fast path: exactly one
/// `"vigil":{` in the payload and `"seq":` inside it before any nested
/// object. Canonical JSON escapes quotes inside strings, so these byte
/// patterns cannot come from string content. Anything else (no match in the
/// fast path, unusual layout) falls back to a real JSON parse; a nested
/// object also called `vigil` can fool the fast path only into a mismatch,
/// which the caller confirms with [`payload_seq_slow`].
fn payload_seq(f: &SeqFinders, payload: &[u8]) -> PayloadSeq {
    let mut it = f.vigil.find_iter(payload);
    let Some(first) = it.next() else {
        return PayloadSeq::Absent;
    };
    if it.next().is_none() {
        let obj = &payload[first + VIGIL_KEY.len()..];
        if let Some(i) = f.seq.find(obj) {
            if memchr::memchr2(b'{', b'}', &obj[..i]).is_none() {
                let digits = &obj[i + SEQ_KEY.len()..];
                let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                if n > 0 && n <= 19 && matches!(digits.get(n), Some(b',' | b'}')) {
                    let mut v = 0u64;
                    for &d in &digits[..n] {
                        v = v * 10 + u64::from(d - b'0');
                    }
                    return PayloadSeq::Seq(v);
                }
            }
        }
    }
    payload_seq_slow(payload)
}

#[cold]
fn payload_seq_slow(payload: &[u8]) -> PayloadSeq {
    #[derive(Deserialize)]
    struct Top {
        vigil: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        seq: Option<u64>,
    }
    match serde_json::from_slice::<Top>(payload) {
        Ok(Top {
            vigil: Some(Inner { seq: Some(s) }),
        }) => PayloadSeq::Seq(s),
        _ => PayloadSeq::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Notary;
    use crate::{Ledger, LedgerOptions};

    #[test]
    fn payload_seq_fast_and_slow() {
        let f = SeqFinders::new();
        let payload_seq = |p: &[u8]| payload_seq(&f, p);
        assert_eq!(
            payload_seq(br#"{"a":1,"vigil":{"input":"file","seq":42,"source":"x"}}"#),
            PayloadSeq::Seq(42)
        );
        assert_eq!(
            payload_seq(br#"{"a":{"vigil":{"seq":99}},"m":"x \"vigil\":{ y","vigil":{"seq":2}}"#),
            PayloadSeq::Seq(2)
        );
        assert_eq!(payload_seq(br#"{"event":{}}"#), PayloadSeq::Absent);
        // Only a nested `vigil`: the fast path is fooled, the parse is not
        // (Scan::record confirms every mismatch with it).
        assert_eq!(
            payload_seq(br#"{"a":{"vigil":{"seq":99}}}"#),
            PayloadSeq::Seq(99)
        );
        assert_eq!(
            payload_seq_slow(br#"{"a":{"vigil":{"seq":99}}}"#),
            PayloadSeq::Absent
        );
        assert_eq!(payload_seq(b"not json"), PayloadSeq::Absent);
    }

    #[test]
    fn narrowing() {
        use FrontierState::*;
        let f = [(1, Match), (11, Match), (21, Mismatch), (31, Mismatch)];
        assert_eq!(narrow(&f, 1, 40), (11, 20));
        assert_eq!(narrow(&f, 15, 40), (15, 20));
        assert_eq!(narrow(&[(1, Match), (11, Unusable)], 1, 40), (1, 40));
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
    }

    fn event(seq: u64) -> Vec<u8> {
        format!(r#"{{"message":"event {seq}","vigil":{{"seq":{seq}}}}}"#).into_bytes()
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        ledger: PathBuf,
        opts: VerifyOptions,
    }

    /// 300 records in small segments with checkpoints at 100, 200 and 300.
    fn fixture(compress: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = tmp.path().join("ledger");
        let keys = tmp.path().join("keys");
        let mut l = Ledger::open(
            &ledger,
            LedgerOptions {
                segment_max_bytes: 2048,
                compress_sealed: compress,
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::create_dir_all(&ledger).unwrap();
        let (mut notary, secrets) = Notary::open_or_init(&keys, &ledger).unwrap();
        let secrets = secrets.unwrap();
        for seq in 1..=300 {
            l.append(&event(seq)).unwrap();
            if seq % 100 == 0 {
                l.commit().unwrap();
                let (size, root) = l.durable_root().unwrap();
                notary.checkpoint(size, root).unwrap();
            }
        }
        drop(l);
        Fixture {
            _tmp: tmp,
            ledger,
            opts: VerifyOptions {
                verifier: notary.verifier(),
                seal_key: Some(secrets.initial_seal_key.to_string()),
                external: Vec::new(),
            },
        }
    }

    fn segs(dir: &Path) -> Vec<SegEntry> {
        dir::list(dir).unwrap().segs
    }

    /// Rewrites the payload of `seq` in a plain segment, keeping the CRC valid.
    fn rewrite(dir: &Path, seq: u64, mut f: impl FnMut(&mut Vec<u8>)) {
        let e = segs(dir)
            .into_iter()
            .rev()
            .find(|e| e.first_seq <= seq)
            .unwrap();
        assert_eq!(e.kind, SegKind::Plain);
        let bytes = std::fs::read(&e.path).unwrap();
        let mut out = bytes[..HEADER_LEN].to_vec();
        let mut pos = HEADER_LEN;
        while pos < bytes.len() {
            let len = format::le_u32(&bytes[pos..]) as usize;
            let s = format::le_u64(&bytes[pos + 8..]);
            let mut p = bytes[pos + 16..pos + 16 + len].to_vec();
            if s == seq {
                f(&mut p);
            }
            format::encode_record(&mut out, s, &p);
            pos += 16 + len;
        }
        std::fs::write(&e.path, out).unwrap();
    }

    #[test]
    fn clean_ledger_verifies() {
        for compress in [false, true] {
            let fx = fixture(compress);
            let r = verify(&fx.ledger, &fx.opts).unwrap();
            assert!(r.ok(), "{:?}", r.findings);
            assert_eq!((r.records, r.last_seq), (300, 300));
            assert_eq!(r.checkpoints_checked, 3);
            assert_eq!(r.seals_checked, Some(3));
            assert_eq!(r.payload_seqs_checked, 300);
        }
    }

    #[test]
    fn changed_record_is_localised() {
        let fx = fixture(false);
        rewrite(&fx.ledger, 150, |p| p[10] ^= 1);
        let r = verify(&fx.ledger, &fx.opts).unwrap();
        let changed: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Changed)
            .collect();
        assert_eq!(changed.len(), 1, "{:?}", r.findings);
        let (a, b) = (changed[0].first_seq.unwrap(), changed[0].last_seq.unwrap());
        assert!(a >= 101 && b <= 200 && a <= 150 && 150 <= b, "{a}..={b}");
        assert!(b - a < 99, "narrowed by frontiers: {a}..={b}");
    }

    #[test]
    fn moved_payload_is_reordered() {
        let fx = fixture(false);
        let p50 = event(50);
        rewrite(&fx.ledger, 51, |p| *p = p50.clone());
        let r = verify(&fx.ledger, &fx.opts).unwrap();
        assert!(r.findings.iter().any(|f| f.kind == FindingKind::Reordered
            && f.first_seq == Some(51)
            && f.last_seq == Some(51)));
        assert!(r.findings.iter().any(|f| f.kind == FindingKind::Changed));
    }

    #[test]
    fn missing_segment_and_truncation() {
        let fx = fixture(false);
        let s = segs(&fx.ledger);
        assert!(s.len() > 4);
        let gone = &s[2];
        let next = s[3].first_seq;
        std::fs::remove_file(&gone.path).unwrap();
        let r = verify(&fx.ledger, &fx.opts).unwrap();
        assert!(
            r.findings.iter().any(|f| f.kind == FindingKind::Missing
                && f.first_seq == Some(gone.first_seq)
                && f.last_seq == Some(next - 1)),
            "{:?}",
            r.findings
        );

        let fx = fixture(false);
        let last = segs(&fx.ledger).pop().unwrap();
        let len = std::fs::metadata(&last.path).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&last.path)
            .unwrap();
        f.set_len(len - 30).unwrap();
        let r = verify(&fx.ledger, &fx.opts).unwrap();
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == FindingKind::Truncated && f.last_seq == Some(300)),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn corrupt_crc_stops_reading() {
        let fx = fixture(false);
        let e = &segs(&fx.ledger)[1];
        let mut b = std::fs::read(&e.path).unwrap();
        b[HEADER_LEN + 20] ^= 1;
        std::fs::write(&e.path, b).unwrap();
        let r = verify(&fx.ledger, &fx.opts).unwrap();
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert_eq!(r.findings[0].kind, FindingKind::Corrupt);
        assert_eq!(r.findings[0].first_seq, Some(e.first_seq));
    }

    #[test]
    fn forged_broken_seal_and_witnesses() {
        let fx = fixture(false);
        // A forged signature: another key.
        let mut opts = fx.opts.clone();
        let other = crate::note::SignerKey::generate(fx.opts.verifier.name()).unwrap();
        opts.verifier = other.verifier();
        let r = verify(&fx.ledger, &opts).unwrap();
        assert_eq!(
            r.findings
                .iter()
                .filter(|f| f.kind == FindingKind::ForgedSignature)
                .count(),
            3
        );
        // A wrong seal key.
        let mut opts = fx.opts.clone();
        opts.seal_key = Some("11".repeat(32));
        let r = verify(&fx.ledger, &opts).unwrap();
        assert!(r.findings.iter().any(|f| f.kind == FindingKind::BrokenSeal));
        // A witness that saw more: rollback; one that saw other roots: changed.
        let log = std::fs::read(fx.ledger.join(CHECKPOINT_LOG)).unwrap();
        let signer = crate::integrity::load_signer(&fx.ledger.with_file_name("keys")).unwrap();
        let big = Checkpoint {
            origin: signer.name().into(),
            size: 400,
            root: [1; 32],
            extensions: vec![],
        }
        .sign(&signer)
        .unwrap();
        let other = Checkpoint {
            origin: signer.name().into(),
            size: 150,
            root: [1; 32],
            extensions: vec![],
        }
        .sign(&signer)
        .unwrap();
        let first_line = String::from_utf8_lossy(&log)
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let syslog =
            format!("<109>1 2026-11-22T12:00:00Z host vigil 1 checkpoint - {first_line}\n");
        let mut opts = fx.opts.clone();
        opts.external = vec![
            ("syslog".into(), syslog.into_bytes()),
            ("w.log".into(), log),
            ("big".into(), big.into_bytes()),
            ("other".into(), other.into_bytes()),
        ];
        let r = verify(&fx.ledger, &opts).unwrap();
        let kinds: Vec<_> = r.findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FindingKind::Changed,
                FindingKind::Inconsistent,
                FindingKind::Rollback
            ],
            "{:?}",
            r.findings
        );
        assert_eq!(r.checkpoints_checked, 3 + 5);
    }
}
