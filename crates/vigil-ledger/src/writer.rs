//! The writer: [`Ledger`].

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::compress::{with_suffix, Compressor};
use crate::dir::{self, frontier_path, fsync_dir, io_err, DirLock, SegEntry, SegKind};
use crate::format::{self, SegmentHeader, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, TMP_SUFFIX};
use crate::merkle::{self, CompactTree};
use crate::reader::{SegReader, Tail};
use crate::retention::{self, RetentionPolicy, RetentionRun};
use crate::{LedgerError, LedgerOptions, LedgerStats, RecoveryReport};

/// Buffered bytes beyond which `append` writes (without fsync) so a caller
/// that commits rarely does not grow the buffer without bound.
const FLUSH_THRESHOLD: usize = 4 << 20;

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    file: File,
    path: PathBuf,
    first_seq: u64,
    created_unix: u64,
    /// Bytes written to the file (header included), durable or not.
    len: u64,
}

/// The single writer of a ledger directory.
///
/// Appends are buffered in memory; [`Ledger::commit`] writes them and
/// `fdatasync`s the segment, and only then may the caller acknowledge them.
/// Holds an exclusive lock on `LOCK` in the directory for its lifetime.
pub struct Ledger {
    dir: PathBuf,
    opts: LedgerOptions,
    active: Active,
    buf: Vec<u8>,
    next_seq: u64,
    durable_seq: u64,
    recovery: RecoveryReport,
    compressor: Option<Compressor>,
    /// Set after a failed write or fsync: the file's state is then unknown
    /// (and after a failed fsync the kernel may have dropped the dirty pages),
    /// so the only safe continuation is a reopen, which re-runs recovery.
    poisoned: Option<String>,
    commits: u64,
    last_commit: Duration,
    /// RFC 9162 Merkle tree over every appended payload (durable or not).
    tree: CompactTree,
    // Declared last so it is released after everything above is flushed.
    _lock: DirLock,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("active", &self.active.path)
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir`, takes the writer lock
    /// and recovers from whatever state a crash left behind.
    ///
    /// Fails with [`LedgerError::Locked`] if another writer holds the lock,
    /// and with [`LedgerError::Corrupt`] if the open segment's header is bad.
    pub fn open(dir: &Path, opts: LedgerOptions) -> Result<Ledger, LedgerError> {
        opts.validate()?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = DirLock::acquire(dir)?;
        let mut listing = dir::list(dir)?;

        let mut removed_any = false;
        for tmp in &listing.tmps {
            tracing::info!(file = %tmp.display(), "removing leftover temporary ledger file");
            fs::remove_file(tmp).map_err(io_err(tmp))?;
            removed_any = true;
        }
        for plain in &listing.shadowed {
            // Both forms exist: compression died between rename and delete.
            // The rename followed an fsync, so the .zst should be whole, but
            // check before deleting the only other copy.
            let zst = with_suffix(&plain.path, ".zst");
            let entry = SegEntry {
                first_seq: plain.first_seq,
                kind: SegKind::Compressed,
                path: zst.clone(),
            };
            let ok = SegReader::open(&entry, Tail::Strict)
                .map_err(|_| ())
                .and_then(|mut r| r.scan_to_end().map_err(|_| ()))
                .is_ok();
            let victim = if ok { &plain.path } else { &zst };
            tracing::info!(file = %victim.display(), "removing redundant ledger segment copy");
            fs::remove_file(victim).map_err(io_err(victim))?;
            removed_any = true;
        }
        if removed_any {
            fsync_dir(dir)?;
            listing = dir::list(dir)?;
        }

        let (active, next_seq, truncated_bytes, tree) = match listing.segs.last() {
            None => {
                let tree = CompactTree::new();
                (create_segment(dir, 1, &tree)?, 1, 0, tree)
            }
            Some(last) if last.kind == SegKind::Compressed => {
                // Sealed and compressed but no newer segment yet: continue
                // in a fresh one.
                let mut r = open_strict(last)?;
                let (last_seq, tree) = scan_with_tree(dir, &mut r)?;
                let next = last_seq + 1;
                (create_segment(dir, next, &tree)?, next, 0, tree)
            }
            Some(last) => {
                let (active, next, cut, tree) = recover_open_segment(dir, last)?;
                (active, next, cut, tree)
            }
        };

        let compressor = if opts.compress_sealed {
            let c = Compressor::start(
                dir.to_path_buf(),
                opts.zstd_level,
                opts.max_uncompressed_bytes,
            )?;
            // Sealed segments a previous run did not get to compress.
            for e in &listing.segs {
                if e.kind == SegKind::Plain && e.first_seq != active.first_seq {
                    c.submit(e.path.clone());
                }
            }
            Some(c)
        } else {
            None
        };

        let segments = dir::list(dir)?.segs.len();
        let recovery = RecoveryReport {
            truncated_bytes,
            last_seq: next_seq - 1,
            segments,
        };
        if truncated_bytes > 0 {
            tracing::warn!(
                segment = %active.path.display(),
                truncated_bytes,
                last_seq = next_seq - 1,
                "ledger recovery cut a torn tail"
            );
        }
        Ok(Ledger {
            dir: dir.to_path_buf(),
            opts,
            active,
            buf: Vec::with_capacity(1 << 20),
            next_seq,
            durable_seq: next_seq - 1,
            recovery,
            compressor,
            poisoned: None,
            commits: 0,
            last_commit: Duration::ZERO,
            tree,
            _lock: lock,
        })
    }

    /// What recovery found and did when this writer opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The seq the next [`Ledger::append`] will assign.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The Merkle tree over every appended record, durable or not.
    pub fn tree(&self) -> &CompactTree {
        &self.tree
    }

    /// Size and root of the tree over exactly the durable records, or `None`
    /// while appended records await a commit.
    pub fn durable_root(&self) -> Option<(u64, merkle::Hash)> {
        (self.tree.size() == self.durable_seq).then(|| (self.durable_seq, self.tree.root()))
    }

    /// The highest seq known to be on stable storage (0 if none).
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Buffers one record and returns its seq. It is not durable, and must not
    /// be acknowledged, until a later [`Ledger::commit`] returns a seq `>=` it.
    ///
    /// May roll the segment (which writes and syncs what is buffered) when the
    /// record would overflow it or when it is too old.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, LedgerError> {
        self.check_poisoned()?;
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(LedgerError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        if self.has_records() {
            let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
            let size = self.active.len + self.buf.len() as u64;
            // Age is only checked at the start of a batch: it needs a clock read.
            if size + rec_len > self.opts.segment_max_bytes
                || (self.buf.is_empty() && self.age_expired())
            {
                self.roll()?;
            }
        }
        let seq = self.next_seq;
        format::encode_record(&mut self.buf, seq, payload);
        self.tree.append(merkle::leaf_hash(payload));
        self.next_seq += 1;
        if self.buf.len() >= FLUSH_THRESHOLD {
            self.flush_buf()?;
        }
        Ok(seq)
    }

    /// Writes buffered records and `fdatasync`s the segment; returns the
    /// highest durable seq (0 if the ledger is empty). Cheap when nothing is
    /// pending. Also rolls the segment if it has outlived its maximum age.
    pub fn commit(&mut self) -> Result<u64, LedgerError> {
        self.check_poisoned()?;
        if self.durable_seq + 1 < self.next_seq {
            let t = Instant::now();
            self.sync()?;
            self.last_commit = t.elapsed();
            self.commits += 1;
        }
        if self.has_records() && self.age_expired() {
            self.roll()?;
        }
        Ok(self.durable_seq)
    }

    /// Rolls the segment if it is older than `segment_max_age` and not empty;
    /// for a timer, so a quiet ledger still seals and compresses segments.
    pub fn maybe_roll(&mut self) -> Result<(), LedgerError> {
        self.check_poisoned()?;
        if self.has_records() && self.age_expired() {
            self.roll()?;
        }
        Ok(())
    }

    /// The options this writer was opened with.
    pub fn options(&self) -> &LedgerOptions {
        &self.opts
    }

    /// [`Ledger::retain`] with the policy of [`LedgerOptions::retention`];
    /// does nothing when that keeps everything.
    pub fn retain_by_options(
        &mut self,
        actor: &str,
        now: SystemTime,
    ) -> Result<Option<RetentionRun>, LedgerError> {
        if self.opts.retention.keeps_everything() {
            return Ok(None);
        }
        let policy = self.opts.retention.clone();
        self.retain(&policy, actor, now)
    }

    /// What [`Ledger::retain`] would delete at `now`, without deleting
    /// anything (`frontier` is left empty).
    pub fn retention_plan(
        &self,
        policy: &RetentionPolicy,
        actor: &str,
        now: SystemTime,
    ) -> Result<Option<RetentionRun>, LedgerError> {
        Ok(self.plan(policy, actor, now, false)?.map(|p| p.run))
    }

    /// Deletes the oldest sealed segments that `policy` no longer keeps,
    /// whole, and returns what was deleted (`None`: nothing was due).
    ///
    /// The open segment is never deleted, nor a sealed one being compressed
    /// at that moment (plain ones waiting are taken off the queue). Before
    /// anything is removed, the compact range the remaining records build
    /// on is recomputed from the records about to be deleted and compared
    /// with the first kept segment's `.frontier` (a
    /// mismatch refuses the run with [`LedgerError::Corrupt`]); then the run
    /// is appended to `retention.log` and fsynced, and only then are the
    /// files removed and the directory synced. `actor` is recorded as who
    /// deleted (`retention` for the server's policy).
    pub fn retain(
        &mut self,
        policy: &RetentionPolicy,
        actor: &str,
        now: SystemTime,
    ) -> Result<Option<RetentionRun>, LedgerError> {
        self.check_poisoned()?;
        let Some(plan) = self.plan(policy, actor, now, true)? else {
            return Ok(None);
        };
        let plain: Vec<PathBuf> = plan
            .victims
            .iter()
            .filter(|v| v.kind == SegKind::Plain)
            .map(|v| v.path.clone())
            .collect();
        let done = self.delete(plan);
        if done.is_err() {
            // Refused or failed before the files went: whatever is still
            // there goes back to the compression queue.
            if let Some(c) = &self.compressor {
                for p in plain.into_iter().filter(|p| p.exists()) {
                    c.submit(p);
                }
            }
        }
        done.map(Some)
    }

    /// Carries out a retention [`Plan`] (see [`Ledger::retain`]).
    fn delete(&mut self, mut plan: Plan) -> Result<RetentionRun, LedgerError> {
        let kept = plan.run.kept_first_seq;
        let tree = replay(&self.dir, &plan.victims, kept)?;
        let path = frontier_path(&self.dir, kept);
        match dir::read_frontier(&path) {
            Some(t) if t == tree => {}
            Some(_) => {
                return Err(LedgerError::Corrupt {
                    segment: path,
                    offset: 0,
                    reason: format!(
                        "the frontier differs from the tree of records {}..={}; refusing to delete them (run `vigil verify`)",
                        plan.run.first_seq, plan.run.last_seq
                    ),
                })
            }
            _ => {
                tracing::warn!(file = %path.display(), "ledger: rewriting a missing or unreadable frontier before retention");
                write_frontier(&self.dir, kept, &tree)?;
                fsync_dir(&self.dir)?;
            }
        }
        plan.run.frontier = hex::encode(tree.to_bytes());
        retention::append_log(&self.dir, &plan.run)?;
        retention::remove_files(&self.dir, &plan.files)?;
        tracing::info!(
            first_seq = plan.run.first_seq,
            last_seq = plan.run.last_seq,
            segments = plan.run.segments.len(),
            bytes = plan.run.bytes,
            reason = %plan.run.reason,
            actor = %plan.run.actor,
            "ledger retention deleted old segments"
        );
        Ok(plan.run)
    }

    /// The segments `policy` no longer keeps. With `claim`, the plain ones
    /// among them are taken out of the compression queue, so that no
    /// compression starts on a segment about to be deleted.
    fn plan(
        &self,
        policy: &RetentionPolicy,
        actor: &str,
        now: SystemTime,
        claim: bool,
    ) -> Result<Option<Plan>, LedgerError> {
        if policy.keeps_everything() {
            return Ok(None);
        }
        // Held from the listing to the claim: a compression that finishes
        // in between would turn a listed `.seg` into a `.seg.zst` that the
        // run then failed to delete.
        let mut queue = self.compressor.as_ref().map(|c| c.shared.queue());
        let listing = dir::list(&self.dir)?;
        let segs = &listing.segs;
        let size_of = |e: &SegEntry| -> u64 {
            let shadow: u64 = listing
                .shadowed
                .iter()
                .filter(|s| s.first_seq == e.first_seq)
                .filter_map(|s| fs::metadata(&s.path).ok())
                .map(|m| m.len())
                .sum();
            fs::metadata(&e.path).map_or(0, |m| m.len()) + shadow
        };
        let sizes: Vec<u64> = segs.iter().map(size_of).collect();
        // Sealed segments, oldest first, up to one being compressed now
        // (the thread would recreate it as a `.seg.zst`).
        let eligible = segs
            .iter()
            .take_while(|e| {
                e.first_seq < self.active.first_seq
                    && !(e.kind == SegKind::Plain
                        && queue.as_ref().is_some_and(|q| q.is_busy(&e.path)))
            })
            .count();
        if eligible == 0 {
            return Ok(None);
        }
        let mut n_age = 0;
        if let Some(max_age) = policy.max_age {
            let now = retention::unix(now);
            while n_age < eligible {
                // The next segment was created after this one's last record.
                let next = &segs[n_age + 1];
                let created = if next.first_seq == self.active.first_seq {
                    self.active.created_unix
                } else {
                    open_strict(next)?.header().created_unix
                };
                if created.saturating_add(max_age.as_secs()) > now {
                    break;
                }
                n_age += 1;
            }
        }
        let mut n_size = 0;
        if let Some(max_bytes) = policy.max_bytes {
            let mut total: u64 = sizes.iter().sum();
            while n_size < eligible && total > max_bytes {
                total -= sizes[n_size];
                n_size += 1;
            }
        }
        let n = n_age.max(n_size);
        if n == 0 {
            return Ok(None);
        }
        let mut reasons = Vec::new();
        if n_age > 0 {
            reasons.push(retention::age_reason(policy.max_age.unwrap_or_default()));
        }
        if n_size > 0 {
            reasons.push(format!(
                "max_bytes={}",
                policy.max_bytes.unwrap_or_default()
            ));
        }
        let victims: Vec<SegEntry> = segs[..n].to_vec();
        if let Some(q) = queue.as_mut().filter(|_| claim) {
            for v in victims.iter().filter(|v| v.kind == SegKind::Plain) {
                q.withdraw(&v.path);
            }
        }
        drop(queue);
        let mut files = Vec::new();
        for v in &victims {
            files.push(v.path.clone());
            files.extend(
                listing
                    .shadowed
                    .iter()
                    .filter(|s| s.first_seq == v.first_seq)
                    .map(|s| s.path.clone()),
            );
        }
        let t = retention::unix(now);
        let run = RetentionRun {
            time: crate::integrity::rfc3339(t as i64),
            time_unix: t,
            actor: actor.to_owned(),
            reason: reasons.join("; "),
            first_seq: victims[0].first_seq,
            last_seq: segs[n].first_seq - 1,
            segments: victims
                .iter()
                .filter_map(|v| v.path.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .collect(),
            bytes: sizes[..n].iter().sum(),
            kept_first_seq: segs[n].first_seq,
            frontier: String::new(),
        };
        Ok(Some(Plan {
            run,
            victims,
            files,
        }))
    }

    /// Counters for metrics and `vigil status`. Lists the directory, so call
    /// it at metrics frequency, not per record.
    pub fn stats(&self) -> LedgerStats {
        let mut s = LedgerStats {
            next_seq: self.next_seq,
            durable_seq: self.durable_seq,
            buffered_bytes: self.buf.len(),
            active_segment_bytes: self.active.len,
            commits: self.commits,
            last_commit_duration: self.last_commit,
            ..LedgerStats::default()
        };
        if let Some(c) = &self.compressor {
            {
                let q = c.shared.queue();
                s.pending_compressions = q.pending();
                s.provisional_segments = q.provisional();
            }
            s.refined_segments = c.shared.refined.load(Ordering::Relaxed);
            s.compressed_segments_written = c.shared.done.load(Ordering::Relaxed);
            s.compression_errors = c.shared.errors.load(Ordering::Relaxed);
            s.fast_compressions = c.shared.fast.load(Ordering::Relaxed);
            s.last_compression_error = c.shared.last_error.lock().ok().and_then(|g| g.clone());
        }
        if let Ok(listing) = dir::list(&self.dir) {
            s.segments = listing.segs.len();
            s.compressed_segments = listing
                .segs
                .iter()
                .filter(|e| e.kind == SegKind::Compressed)
                .count();
            s.bytes_on_disk = listing
                .segs
                .iter()
                .chain(&listing.shadowed)
                .filter_map(|e| fs::metadata(&e.path).ok())
                .map(|m| m.len())
                .sum();
        }
        s
    }

    fn has_records(&self) -> bool {
        self.next_seq > self.active.first_seq
    }

    fn age_expired(&self) -> bool {
        let age = now_unix().saturating_sub(self.active.created_unix);
        Duration::from_secs(age) >= self.opts.segment_max_age
    }

    fn check_poisoned(&self) -> Result<(), LedgerError> {
        match &self.poisoned {
            Some(reason) => Err(LedgerError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, e: LedgerError) -> LedgerError {
        self.poisoned = Some(e.to_string());
        e
    }

    /// Writes the buffer to the segment without syncing.
    fn flush_buf(&mut self) -> Result<(), LedgerError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.active.file.write_all(&self.buf) {
            let e = io_err(&self.active.path)(e);
            return Err(self.poison(e));
        }
        self.active.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes and syncs everything appended so far.
    fn sync(&mut self) -> Result<(), LedgerError> {
        self.flush_buf()?;
        // fdatasync: the data and the file size, not the mtime.
        if let Err(e) = self.active.file.sync_data() {
            let e = io_err(&self.active.path)(e);
            return Err(self.poison(e));
        }
        self.durable_seq = self.next_seq - 1;
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    fn roll(&mut self) -> Result<(), LedgerError> {
        self.sync()?;
        let new = match create_segment(&self.dir, self.next_seq, &self.tree) {
            Ok(a) => a,
            Err(e) => return Err(self.poison(e)),
        };
        let old = std::mem::replace(&mut self.active, new);
        tracing::debug!(segment = %old.path.display(), last_seq = self.next_seq - 1, "ledger segment sealed");
        drop(old.file);
        if let Some(c) = &self.compressor {
            c.submit(old.path);
        }
        Ok(())
    }
}

#[cfg(test)]
impl Ledger {
    /// Segments a compression thread is working on now.
    pub(crate) fn compressing_for_tests(&self) -> usize {
        self.compressor
            .as_ref()
            .map_or(0, |c| c.shared.queue().busy_len())
    }

    /// Holds the compression threads still (or lets them go again).
    pub(crate) fn hold_compression_for_tests(&self, held: bool) {
        if let Some(c) = &self.compressor {
            c.shared.queue().held = held;
            c.shared.wake_all();
        }
    }

    /// Simulates `kill -9` during a commit's write: the first `partial`
    /// buffered bytes reach the file, the rest and the fsync never happen.
    pub(crate) fn crash_for_tests(mut self, partial: usize) {
        let n = partial.min(self.buf.len());
        let _ = self.active.file.write_all(&self.buf[..n]);
        self.buf.clear();
        // Stops Drop from committing; Drop still releases the lock and
        // joins the compressor, as process death would end them.
        self.poisoned = Some("simulated crash".into());
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if self.poisoned.is_none() && self.durable_seq + 1 < self.next_seq {
            if let Err(e) = self.sync() {
                tracing::error!(error = %e, "ledger: final commit on close failed");
            }
        }
        // Dropping the compressor joins its thread after the queue drains.
        self.compressor = None;
    }
}

/// What a retention run is about to delete.
struct Plan {
    run: RetentionRun,
    victims: Vec<SegEntry>,
    files: Vec<PathBuf>,
}

/// The tree over records `1..kept`, from the frontier of the first victim
/// (empty when it starts at seq 1) and the victims' records.
fn replay(dir: &Path, victims: &[SegEntry], kept: u64) -> Result<CompactTree, LedgerError> {
    let first = victims.first().map_or(kept, |v| v.first_seq);
    let mut tree = if first == 1 {
        CompactTree::new()
    } else {
        let path = frontier_path(dir, first);
        match dir::read_frontier(&path) {
            Some(t) if t.size() + 1 == first => t,
            _ => {
                return Err(LedgerError::Corrupt {
                    segment: path,
                    offset: 0,
                    reason: "the frontier of the oldest segment is missing or invalid; retention cannot go on".into(),
                })
            }
        }
    };
    for v in victims {
        let mut r = open_strict(v)?;
        while let Some((seq, range)) = r.next_record()? {
            if seq != tree.size() + 1 {
                return Err(LedgerError::Corrupt {
                    segment: v.path.clone(),
                    offset: r.offset(),
                    reason: format!(
                        "seq {seq} where {} was expected; refusing retention",
                        tree.size() + 1
                    ),
                });
            }
            tree.append(merkle::leaf_hash(r.payload(range)));
        }
    }
    if tree.size() + 1 != kept {
        return Err(LedgerError::Corrupt {
            segment: frontier_path(dir, kept),
            offset: 0,
            reason: format!(
                "the segments before seq {kept} end at seq {}; refusing retention",
                tree.size()
            ),
        });
    }
    Ok(tree)
}

fn open_strict(entry: &SegEntry) -> Result<SegReader, LedgerError> {
    let file = File::open(&entry.path).map_err(io_err(&entry.path))?;
    SegReader::from_file(file, entry, Tail::Strict)
}

/// Creates `X.seg` with its header via a temp file and rename, so a `.seg`
/// never exists without a whole header.
fn create_segment(dir: &Path, first_seq: u64, tree: &CompactTree) -> Result<Active, LedgerError> {
    debug_assert_eq!(tree.size() + 1, first_seq);
    write_frontier(dir, first_seq, tree)?;
    let path = dir.join(format::seg_name(first_seq));
    let zst = dir.join(format::zst_name(first_seq));
    for p in [&path, &zst] {
        // A rename would silently replace it; that would be data loss.
        if p.exists() {
            return Err(LedgerError::Corrupt {
                segment: p.clone(),
                offset: 0,
                reason: format!("a segment starting at seq {first_seq} already exists"),
            });
        }
    }
    let tmp = with_suffix(&path, TMP_SUFFIX);
    let created_unix = now_unix();
    let header = SegmentHeader {
        first_seq,
        created_unix,
        crc_elided: false,
    }
    .encode();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(&header).map_err(io_err(&tmp))?;
    file.sync_data().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    fsync_dir(dir)?;
    Ok(Active {
        file,
        path,
        first_seq,
        created_unix,
        len: header.len() as u64,
    })
}

/// Scans the newest plain segment, cuts any torn or corrupt tail and returns
/// it ready for appending, with the next seq, the number of bytes cut and
/// the tree over every record kept.
fn recover_open_segment(
    dir: &Path,
    entry: &SegEntry,
) -> Result<(Active, u64, u64, CompactTree), LedgerError> {
    let path = &entry.path;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let reader_file = file.try_clone().map_err(io_err(path))?;
    let mut r = SegReader::from_file(reader_file, entry, Tail::Lenient)?;
    let (last_seq, tree) = scan_with_tree(dir, &mut r)?;
    let next_seq = last_seq + 1;
    let valid_end = r.offset();
    let header = r.header();
    if let Some(reason) = r.stopped() {
        tracing::warn!(segment = %path.display(), offset = valid_end, reason, "ledger: torn tail in open segment");
    }
    drop(r);
    let cut = file_len.saturating_sub(valid_end);
    if cut > 0 {
        file.set_len(valid_end).map_err(io_err(path))?;
    }
    // Make the recovered state (including records the last run wrote but
    // never synced) durable before anything new is acknowledged after it.
    file.sync_data().map_err(io_err(path))?;
    file.seek(SeekFrom::Start(valid_end))
        .map_err(io_err(path))?;
    Ok((
        Active {
            file,
            path: path.clone(),
            first_seq: header.first_seq,
            created_unix: header.created_unix,
            len: valid_end,
        },
        next_seq,
        cut,
        tree,
    ))
}

fn write_frontier(dir: &Path, first_seq: u64, tree: &CompactTree) -> Result<(), LedgerError> {
    let path = frontier_path(dir, first_seq);
    let tmp = with_suffix(&path, TMP_SUFFIX);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&tree.to_bytes()).map_err(io_err(&tmp))?;
    f.sync_data().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(())
}

/// Reads `r` (a freshly opened segment) to its end, returning the last seq
/// and the tree over records `1..=last_seq`. With a usable frontier the
/// tree is built during the same pass, so the segment is read once; without
/// one, [`load_tree`] rebuilds it from every record.
fn scan_with_tree(dir: &Path, r: &mut SegReader) -> Result<(u64, CompactTree), LedgerError> {
    let first_seq = r.header().first_seq;
    let Some(mut tree) =
        dir::read_frontier(&frontier_path(dir, first_seq)).filter(|t| t.size() + 1 == first_seq)
    else {
        let last_seq = r.scan_to_end()?;
        return Ok((last_seq, load_tree(dir, first_seq, last_seq)?));
    };
    // The reader enforces gap-free seqs from `first_seq`, so the tree stays
    // aligned with the records.
    while let Some((_, range)) = r.next_record()? {
        tree.append(merkle::leaf_hash(r.payload(range)));
    }
    Ok((r.expect() - 1, tree))
}

/// The tree over records `1..=last_seq`: the newest segment's frontier plus
/// that segment's records, or every record when the frontier is unusable.
fn load_tree(dir: &Path, seg_first_seq: u64, last_seq: u64) -> Result<CompactTree, LedgerError> {
    let path = frontier_path(dir, seg_first_seq);
    let mut tree = match dir::read_frontier(&path) {
        Some(t) if t.size() + 1 == seg_first_seq => t,
        _ => {
            tracing::warn!(file = %path.display(), "ledger: Merkle frontier missing or invalid; rebuilding the tree from every record");
            CompactTree::new()
        }
    };
    if tree.size() < last_seq {
        let reader = crate::LedgerReader::open(dir)?;
        let mut next = tree.size() + 1;
        let mut gap = None;
        let _ = reader.for_each_range(tree.size() + 1, last_seq, |seq, payload| {
            if seq != next {
                gap = Some(seq);
                return ControlFlow::Break(());
            }
            tree.append(merkle::leaf_hash(payload));
            next += 1;
            ControlFlow::Continue(())
        })?;
        if gap.is_some() || tree.size() != last_seq {
            return Err(LedgerError::Corrupt {
                segment: path,
                offset: 0,
                reason: format!("records up to seq {last_seq} could not all be read to rebuild the Merkle tree (got {})", tree.size()),
            });
        }
    }
    Ok(tree)
}
