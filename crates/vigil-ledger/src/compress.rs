//! Background compression of sealed segments.
//!
//! Two threads share one queue of sealed plain segments, oldest first:
//!
//! - the *idle* thread (`vigil-ledger-zidle`) runs under `SCHED_IDLE`, so it
//!   only gets a core nothing else wants, and compresses at the configured
//!   level. It also pauses while the machine has less than half a core to
//!   spare ([`crate::pace`]). During an ingest burst it waits, and the CPU
//!   goes to decoding, storing and indexing instead;
//! - the *backlog* thread (`vigil-ledger-zstd`) runs at normal priority and
//!   only once the waiting segments pass
//!   [`LedgerOptions::max_uncompressed_bytes`](crate::LedgerOptions): then it
//!   compresses the oldest at once at [`FAST_LEVEL`] and marks the file
//!   *provisional* (see [`crate::seek`]), so a sustained overload neither
//!   fills the disk with plain segments nor takes half a core from ingest.
//!
//! Once no plain segment waits, the idle thread *refines* provisional files:
//! it decompresses each and compresses it again at the configured level
//! (about 12 × smaller than plain at level 1 against about 18 × at level 9
//! on simulated telemetry). Provisional files are found again at start, so
//! a restart loses none of that work.
//!
//! With the limit at 0 only the backlog thread runs and every segment is
//! compressed as soon as it is sealed (at level 3 while another waits behind
//! it, and final: nothing would refine it). Closing the ledger stops the idle
//! thread (its segment goes back to the queue) and the backlog thread
//! compresses the plain segments left at the configured level: about 12 s
//! per GiB waiting at level 9 on one core. Provisional files stay as they
//! are until the next start.
//!
//! Crash safety comes from ordering: the `.seg.zst` only appears (by rename)
//! once its bytes are fsync'd, and the `.seg` is deleted only after that rename
//! is durable. Dying anywhere leaves either a `.tmp` (removed at open) or both
//! files (the `.seg` is removed at open once the `.seg.zst` checks out).
//! Refining renames the new file over the provisional one, so a reader that
//! opened the old one keeps reading it whole.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::dir::{fsync_dir, io_err};
use crate::format::{
    le_u32, le_u64, record_crc, SegmentHeader, HEADER_LEN, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN,
    TMP_SUFFIX, ZST_SUFFIX,
};
use crate::seek::{self, Counting, Frames, SeekEntry, FRAMES};
use crate::LedgerError;

/// Sealed segments waiting for compression, provisional files waiting to be
/// refined, and the ones being worked on.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Plain sealed segments, oldest first, with their sizes.
    waiting: VecDeque<(PathBuf, u64)>,
    waiting_bytes: u64,
    /// Provisional `.seg.zst` files, oldest first.
    refine: VecDeque<PathBuf>,
    /// File names of the segments a thread is compressing now.
    busy: Vec<OsString>,
    /// Tests hold the threads still to look at the queue.
    #[cfg(test)]
    pub(crate) held: bool,
}

impl Queue {
    /// Segments waiting or being compressed (or refined).
    pub(crate) fn pending(&self) -> usize {
        self.waiting.len() + self.busy.len()
    }

    /// Provisional files waiting to be refined.
    pub(crate) fn provisional(&self) -> usize {
        self.refine.len()
    }

    /// Whether a thread is compressing `seg` now (it must not be deleted).
    pub(crate) fn is_busy(&self, seg: &Path) -> bool {
        seg.file_name()
            .is_some_and(|n| self.busy.iter().any(|b| b == n))
    }

    /// Takes `seg` out of the queue, so no thread starts on it (retention
    /// is about to delete it).
    pub(crate) fn withdraw(&mut self, seg: &Path) {
        let name = seg.file_name();
        self.refine.retain(|p| p.file_name() != name);
        let mut freed = 0;
        self.waiting.retain(|(p, len)| {
            let keep = p.file_name() != name;
            if !keep {
                freed += len;
            }
            keep
        });
        self.waiting_bytes -= freed;
    }

    #[cfg(test)]
    pub(crate) fn busy_len(&self) -> usize {
        self.busy.len()
    }

    fn push(&mut self, seg: PathBuf, len: u64, front: bool) {
        self.waiting_bytes += len;
        if front {
            self.waiting.push_front((seg, len));
        } else {
            self.waiting.push_back((seg, len));
        }
    }

    fn pop(&mut self) -> Option<(PathBuf, u64)> {
        let (seg, len) = self.waiting.pop_front()?;
        self.waiting_bytes -= len;
        if let Some(n) = seg.file_name() {
            self.busy.push(n.to_owned());
        }
        Some((seg, len))
    }

    /// Queues a provisional file for refining, once.
    fn push_refine(&mut self, zst: PathBuf, front: bool) {
        if self.refine.contains(&zst) {
            return;
        }
        if front {
            self.refine.push_front(zst);
        } else {
            self.refine.push_back(zst);
        }
    }

    fn pop_refine(&mut self) -> Option<PathBuf> {
        let zst = self.refine.pop_front()?;
        if let Some(n) = zst.file_name() {
            self.busy.push(n.to_owned());
        }
        Some(zst)
    }
}

/// Counters shared with the compression threads.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Set (under the queue's lock, so no waiting thread misses it) when
    /// the ledger closes; the idle thread also checks it per record.
    closing: AtomicBool,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    /// Segments compressed at a faster level than configured because others
    /// were waiting ([`BACKLOG_LEVEL`], or [`FAST_LEVEL`] and provisional).
    pub fast: AtomicU64,
    /// Provisional files compressed again at the configured level.
    pub refined: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// Linux thread id of the idle thread once it has lowered its priority
    /// (0 before), so tests can read its scheduling policy from `/proc`.
    #[cfg_attr(not(test), allow(dead_code))]
    idle_tid: AtomicU64,
}

impl Shared {
    /// The queue, locked; a poisoned lock is taken over (the queue holds no
    /// invariant a panicking thread could break halfway).
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the threads to look at the queue again.
    #[cfg(test)]
    pub(crate) fn wake_all(&self) {
        self.wake.notify_all();
    }
}

/// The level used without an idle thread (limit 0) while more sealed
/// segments wait behind the current one: a sustained ingest rate above what
/// the configured level compresses must not let plain segments pile up
/// (they take about 4× the space), so the thread trades ratio for speed
/// (about 800 MB/s against about 130 MB/s at the default level 9 on
/// simulated telemetry in 2 MiB frames).
pub(crate) const BACKLOG_LEVEL: i32 = 3;

/// The level of provisional files, written by the backlog thread past the
/// limit while the idle thread is around to refine them later: about
/// 950 MB/s on simulated telemetry, 12.4 × smaller than plain (level 9:
/// 130 MB/s, 17.6 ×). At 100 k events/s of about 1,170 bytes stored, level
/// 9 would need most of a core; this needs about a seventh.
pub(crate) const FAST_LEVEL: i32 = 1;

/// The level for the next segment, given how many are queued (this one included).
pub(crate) fn level_for(configured: i32, queued: usize) -> i32 {
    if queued > 1 {
        configured.min(BACKLOG_LEVEL)
    } else {
        configured
    }
}

/// Which of the two compression threads asks for work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Runs under `SCHED_IDLE`, at the configured level.
    Idle,
    /// Normal priority; works only past the backlog limit, or while closing.
    Backlog,
}

/// One unit of work for a compression thread.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    /// The plain `.seg`, or the provisional `.seg.zst` to refine.
    seg: PathBuf,
    level: i32,
    kind: JobKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// Compress a plain segment; `provisional` marks the file for refining.
    Compress { provisional: bool },
    /// Compress a provisional file again at the configured level.
    Refine,
}

/// The next job for `role`, or `None` to wait. Pops it from the queue.
fn pick(role: Role, q: &mut Queue, closing: bool, level: i32, limit: u64) -> Option<Job> {
    #[cfg(test)]
    if q.held && !closing {
        return None;
    }
    let compress = |seg: PathBuf, use_level: i32, provisional: bool| Job {
        seg,
        level: use_level,
        kind: JobKind::Compress { provisional },
    };
    match role {
        Role::Idle if closing => None,
        Role::Idle => match q.pop() {
            Some((seg, _)) => Some(compress(seg, level, false)),
            None => q.pop_refine().map(|seg| Job {
                seg,
                level,
                kind: JobKind::Refine,
            }),
        },
        // Closing: what waits is compressed at the configured level, so a
        // restart or the end of `vigil ingest` costs no ratio.
        Role::Backlog if closing => q.pop().map(|(seg, _)| compress(seg, level, false)),
        Role::Backlog if q.waiting_bytes > limit => {
            let (seg, _) = q.pop()?;
            if limit > 0 && FAST_LEVEL < level {
                // The idle thread is behind because ingest keeps the cores
                // busy: spend as little as possible now, refine later.
                return Some(compress(seg, FAST_LEVEL, true));
            }
            // Fast only while the rest still exceeds the limit: as long as
            // this thread keeps up at the configured level, it stays there.
            let use_level = if q.waiting_bytes > limit {
                level_for(level, q.waiting.len() + 1)
            } else {
                level
            };
            Some(compress(seg, use_level, false))
        }
        Role::Backlog => None,
    }
}

/// Handle to the compression threads; dropping it stops the idle thread and
/// waits for the backlog thread to compress what is queued.
pub(crate) struct Compressor {
    handles: Vec<JoinHandle<()>>,
    pub shared: Arc<Shared>,
}

impl Compressor {
    /// Starts the threads; `limit` is the bytes of plain sealed segments
    /// left for the idle thread (0: no idle thread).
    pub(crate) fn start(dir: PathBuf, level: i32, limit: u64) -> Result<Compressor, LedgerError> {
        let shared = Arc::new(Shared::default());
        let mut roles = vec![Role::Backlog];
        if limit > 0 {
            roles.push(Role::Idle);
        }
        let mut handles = Vec::new();
        for role in roles {
            let sh = Arc::clone(&shared);
            let dir = dir.clone();
            let name = match role {
                Role::Idle => "vigil-ledger-zidle",
                Role::Backlog => "vigil-ledger-zstd",
            };
            let spawned = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(&sh, &dir, role, level, limit));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let c = Compressor { handles, shared };
                    drop(c);
                    return Err(io_err(Path::new(name))(e));
                }
            }
        }
        Ok(Compressor { handles, shared })
    }

    /// Queues a sealed `.seg` for compression.
    pub(crate) fn submit(&self, seg: PathBuf) {
        // The size only steers the backlog limit; 0 for an unreadable file
        // still queues it (compressing it reports the real problem).
        let len = fs::metadata(&seg).map_or(0, |m| m.len());
        self.shared.queue().push(seg, len, false);
        self.shared.wake.notify_all();
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        {
            let _q = self.shared.queue();
            self.shared.closing.store(true, Ordering::Relaxed);
        }
        self.shared.wake.notify_all();
        for h in self.handles.drain(..) {
            if h.join().is_err() {
                tracing::error!("ledger compression thread panicked");
            }
        }
    }
}

/// One compression thread's loop: wait for work its role takes, compress,
/// repeat until the queue closes (and, for the backlog thread, drains).
fn run(sh: &Shared, dir: &Path, role: Role, level: i32, limit: u64) {
    let closing = || sh.closing.load(Ordering::Relaxed);
    if role == Role::Idle {
        lower_priority();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        sh.idle_tid
            .store(u64::try_from(tid).unwrap_or(0), Ordering::Relaxed);
        find_provisional(sh, dir, &closing);
    }
    let mut pacer = crate::pace::Pacer::default();
    loop {
        let job = {
            let mut q = sh.queue();
            loop {
                if let Some(job) = pick(role, &mut q, closing(), level, limit) {
                    break job;
                }
                // The backlog thread also waits for the idle one, which
                // may hand its segment back when it stops.
                if closing() && (role == Role::Idle || q.pending() == 0) {
                    return;
                }
                q = sh.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let mut cancel = || {
            if role != Role::Idle {
                return false;
            }
            pacer.step(&closing);
            closing()
        };
        let res = match job.kind {
            JobKind::Compress { provisional } => {
                compress_segment_framed(dir, &job.seg, job.level, FRAMES, provisional, &mut cancel)
                    .map(|()| true)
            }
            JobKind::Refine => refine_segment(dir, &job.seg, job.level, FRAMES, &mut cancel),
        };
        let mut q = sh.queue();
        if let Some(n) = job.seg.file_name() {
            q.busy.retain(|b| b != n);
        }
        match (res, job.kind) {
            (Ok(false), _) => {}
            (Ok(true), JobKind::Compress { provisional }) => {
                sh.done.fetch_add(1, Ordering::Relaxed);
                if job.level != level {
                    sh.fast.fetch_add(1, Ordering::Relaxed);
                }
                if provisional {
                    q.push_refine(with_suffix(&job.seg, &ZST_SUFFIX[".seg".len()..]), false);
                }
            }
            (Ok(true), JobKind::Refine) => {
                sh.refined.fetch_add(1, Ordering::Relaxed);
            }
            (Err(LedgerError::Io { source, .. }), kind)
                if source.kind() == io::ErrorKind::Interrupted =>
            {
                // Stopped for closing: back to the front, for the backlog
                // thread (a provisional file waits for the next start).
                if kind == JobKind::Refine {
                    q.push_refine(job.seg, true);
                } else {
                    let len = fs::metadata(&job.seg).map_or(0, |m| m.len());
                    q.push(job.seg, len, true);
                }
            }
            (Err(e), _) => {
                // The plain segment (or provisional file) stays in place
                // and readable; the next open queues it again.
                tracing::error!(segment = %job.seg.display(), error = %e, "ledger segment compression failed");
                sh.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = sh.last_error.lock() {
                    *last = Some(e.to_string());
                }
            }
        }
        drop(q);
        sh.wake.notify_all();
    }
}

/// Queues the provisional files an earlier run left (read from each
/// compressed segment's seek table). Runs on the idle thread, so a ledger
/// with many segments opens without waiting for it.
fn find_provisional(sh: &Shared, dir: &Path, closing: &dyn Fn() -> bool) {
    let listing = match crate::dir::list(dir) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "ledger: could not look for provisional segments");
            return;
        }
    };
    for e in listing.segs {
        if closing() {
            return;
        }
        if e.kind != crate::dir::SegKind::Compressed {
            continue;
        }
        // A file gone since the listing was deleted by retention.
        let Ok(mut f) = File::open(&e.path) else {
            continue;
        };
        if seek::is_provisional(&mut f) {
            sh.queue().push_refine(e.path, false);
            sh.wake.notify_all();
        }
    }
}

/// Puts the calling thread in `SCHED_IDLE` (only CPU nothing else wants),
/// or failing that at nice 19; either way compression still happens, and a
/// failure only costs ingest some CPU during bursts.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        return;
    }
    // SAFETY: plain syscall on the calling thread (who = 0).
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "ledger: could not lower the idle compression thread's priority");
    }
}

/// Path with `suffix` appended to the file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `X.seg` -> `X.seg.zst.tmp` -> fsync -> `X.seg.zst` -> fsync dir -> delete `X.seg`.
#[cfg(test)]
pub(crate) fn compress_segment(dir: &Path, seg: &Path, level: i32) -> Result<(), LedgerError> {
    compress_segment_framed(dir, seg, level, FRAMES, false, &mut || false)
}

/// [`compress_segment`] with frames cut by `frames` (see [`crate::seek`]),
/// marked `provisional` or final. When `cancel` turns true (checked per
/// record) the temporary file is removed and the error is
/// [`io::ErrorKind::Interrupted`]; the plain segment is untouched.
pub(crate) fn compress_segment_framed(
    dir: &Path,
    seg: &Path,
    level: i32,
    frames: Frames,
    provisional: bool,
    cancel: &mut dyn FnMut() -> bool,
) -> Result<(), LedgerError> {
    let zst = with_suffix(seg, &ZST_SUFFIX[".seg".len()..]);
    let tmp = with_suffix(&zst, TMP_SUFFIX);
    let src = File::open(seg).map_err(io_err(seg))?;
    let src_len = src.metadata().map_err(io_err(seg))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, src);
    let copied = write_tmp(&mut reader, seg, &tmp, level, frames, provisional, cancel)?;
    if copied != src_len {
        // The segment is sealed, so it cannot change size; if it did, leave it.
        let _ = fs::remove_file(&tmp);
        return Err(LedgerError::Io {
            path: seg.to_path_buf(),
            source: io::Error::other(format!(
                "sealed segment changed size during compression ({src_len} -> {copied})"
            )),
        });
    }
    fs::rename(&tmp, &zst).map_err(io_err(&zst))?;
    fsync_dir(dir)?;
    fs::remove_file(seg).map_err(io_err(seg))?;
    tracing::debug!(segment = %zst.display(), "ledger segment compressed");
    Ok(())
}

/// Compresses the provisional file `zst` again at `level`, as a final one:
/// `X.seg.zst` -> decompress -> `X.seg.zst.tmp` -> fsync -> rename over
/// `X.seg.zst` -> fsync dir. Returns `Ok(false)` when there was nothing to
/// do (the file is gone, or no longer provisional). Every zstd frame's
/// checksum is checked on the way, so damage stops the run and leaves the
/// file as it was; `cancel` is as for [`compress_segment_framed`].
pub(crate) fn refine_segment(
    dir: &Path,
    zst: &Path,
    level: i32,
    frames: Frames,
    cancel: &mut dyn FnMut() -> bool,
) -> Result<bool, LedgerError> {
    let mut src = match File::open(zst) {
        Ok(f) => f,
        // Retention deleted it after it was queued.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(zst)(e)),
    };
    if !seek::is_provisional(&mut src) {
        return Ok(false);
    }
    src.seek(io::SeekFrom::Start(0)).map_err(io_err(zst))?;
    let tmp = with_suffix(zst, TMP_SUFFIX);
    let decoder = zstd::stream::read::Decoder::new(src).map_err(io_err(zst))?;
    let mut reader = BufReader::with_capacity(1 << 20, decoder);
    write_tmp(&mut reader, zst, &tmp, level, frames, false, cancel)?;
    fs::rename(&tmp, zst).map_err(io_err(zst))?;
    fsync_dir(dir)?;
    tracing::debug!(segment = %zst.display(), "ledger segment refined");
    Ok(true)
}

/// Writes the segment read from `src` (named `from` in errors) as frames
/// into `tmp` and makes it durable; returns the segment bytes copied. On
/// any failure `tmp` is removed.
fn write_tmp(
    src: &mut impl Read,
    from: &Path,
    tmp: &Path,
    level: i32,
    frames: Frames,
    provisional: bool,
    cancel: &mut dyn FnMut() -> bool,
) -> Result<u64, LedgerError> {
    let out = File::create(tmp).map_err(io_err(tmp))?;
    let mut w = Counting {
        inner: BufWriter::with_capacity(1 << 20, out),
        written: 0,
    };
    let written = write_frames(src, &mut w, level, frames, provisional, cancel)
        .map_err(io_err(from))
        .and_then(|copied| {
            let out = w
                .inner
                .into_inner()
                .map_err(|e| io_err(tmp)(e.into_error()))?;
            out.sync_all().map_err(io_err(tmp))?;
            Ok(copied)
        });
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

/// Copies the segment into frames that each start at a record boundary,
/// then appends the seek table; returns the bytes copied. The copy differs
/// from the segment only in its header's version and in the checksum field
/// of each record whose checksum holds, which is zeroed (see
/// [`SegmentHeader::crc_elided`]). Bytes that do not parse as records (there
/// should be none in a sealed segment) are still copied, into the last
/// frame, so the file always decompresses to a segment of the same length.
fn write_frames<W: Write>(
    src: &mut impl Read,
    w: &mut Counting<W>,
    level: i32,
    frames: Frames,
    provisional: bool,
    cancel: &mut dyn FnMut() -> bool,
) -> io::Result<u64> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(src, &mut header)?;
    let decoded = (got == HEADER_LEN)
        .then(|| SegmentHeader::decode(&header).ok())
        .flatten();
    if let Some(h) = decoded {
        header = SegmentHeader {
            crc_elided: true,
            ..h
        }
        .encode();
    }
    let first_seq = decoded.map(|h| h.first_seq);
    let mut enc = FrameBuf::new(level)?;
    enc.buf.extend_from_slice(&header[..got]);
    let mut copied = got as u64;
    let mut entries = Vec::new();
    let Some(first_seq) = first_seq else {
        // Not a segment we understand: one frame, no table.
        copied += src.read_to_end(&mut enc.buf)? as u64;
        enc.finish(w)?;
        return Ok(copied);
    };
    entries.push(SeekEntry {
        first_seq,
        raw_offset: 0,
        zst_offset: 0,
    });
    let mut rec = [0u8; RECORD_HEADER_LEN];
    loop {
        let n = read_full(src, &mut rec)?;
        if n < RECORD_HEADER_LEN {
            enc.buf.extend_from_slice(&rec[..n]);
            copied += n as u64;
            break;
        }
        if cancel() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "compression stopped: the ledger is closing",
            ));
        }
        let len = le_u32(&rec[0..4]) as usize;
        let seq = le_u64(&rec[8..16]);
        if len > MAX_PAYLOAD_LEN {
            enc.buf.extend_from_slice(&rec);
            copied += RECORD_HEADER_LEN as u64 + src.read_to_end(&mut enc.buf)? as u64;
            break;
        }
        if frames.cut_before(seq, enc.buf.len()) {
            enc.finish(w)?;
            entries.push(SeekEntry {
                first_seq: seq,
                raw_offset: copied,
                zst_offset: w.written,
            });
        }
        // The payload goes straight into the frame's buffer, after its header.
        let at = enc.buf.len();
        enc.buf.extend_from_slice(&rec);
        let got = src
            .take(len as u64)
            .read_to_end(&mut enc.buf)
            .inspect_err(|_| enc.buf.truncate(at))?;
        let payload = &enc.buf[at + RECORD_HEADER_LEN..];
        if got == len && le_u32(&rec[4..8]) == record_crc(seq, payload) {
            // Checked here; zstd's frame checksum covers it from now on. A
            // record that fails keeps its checksum, so readers still see the damage.
            enc.buf[at + 4..at + 8].fill(0);
        }
        copied += (RECORD_HEADER_LEN + got) as u64;
        if got < len {
            break;
        }
    }
    enc.finish(w)?;
    w.write_all(&seek::encode(&entries, provisional))?;
    w.flush()?;
    Ok(copied)
}

/// One frame's plain bytes, compressed in one call when the frame is cut:
/// several times cheaper at level 1 than feeding zstd's streaming encoder
/// record by record, which copies everything into its own window first.
struct FrameBuf {
    buf: Vec<u8>,
    out: Vec<u8>,
    zstd: zstd::bulk::Compressor<'static>,
}

impl FrameBuf {
    fn new(level: i32) -> io::Result<FrameBuf> {
        let mut zstd = zstd::bulk::Compressor::new(level)?;
        // A checksum per frame, so readers tell a damaged file from a short one.
        zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
        Ok(FrameBuf {
            buf: Vec::new(),
            out: Vec::new(),
            zstd,
        })
    }

    /// Compresses and writes the frame, and starts an empty one.
    fn finish<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.out.clear();
        self.out
            .reserve(zstd::zstd_safe::compress_bound(self.buf.len()));
        self.zstd.compress_to_buffer(&self.buf, &mut self.out)?;
        w.write_all(&self.out)?;
        self.buf.clear();
        Ok(())
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod level_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn queue(sizes: &[u64]) -> Queue {
        let mut q = Queue::default();
        for (i, &len) in sizes.iter().enumerate() {
            q.push(PathBuf::from(format!("/l/{i:020}.seg")), len, false);
        }
        q
    }

    fn compress(seg: &str, level: i32, provisional: bool) -> Option<Job> {
        Some(Job {
            seg: PathBuf::from(seg),
            level,
            kind: JobKind::Compress { provisional },
        })
    }

    #[test]
    fn the_idle_thread_takes_everything_and_the_backlog_thread_only_past_the_limit() {
        let mut q = queue(&[100, 100, 100]);
        // Under the limit: only the idle thread works, at the configured level.
        assert_eq!(pick(Role::Backlog, &mut q, false, 9, 300), None);
        let job = pick(Role::Idle, &mut q, false, 9, 300);
        assert_eq!(job, compress("/l/00000000000000000000.seg", 9, false));
        assert!(q.is_busy(Path::new("/l/00000000000000000000.seg")));
        assert_eq!(q.pending(), 3);
        // Past the limit the backlog thread takes the oldest waiting, at
        // the fast level, marked for refining.
        q.push(PathBuf::from("/l/00000000000000000003.seg"), 150, false);
        let job = pick(Role::Backlog, &mut q, false, 9, 300);
        assert_eq!(
            job,
            compress("/l/00000000000000000001.seg", FAST_LEVEL, true)
        );
        assert_eq!(pick(Role::Backlog, &mut q, false, 9, 300), None, "250 left");
        for i in 4..8 {
            q.push(PathBuf::from(format!("/l/{i:020}.seg")), 100, false);
        }
        // 650 waiting: three more until 300 are left.
        for _ in 0..3 {
            let job = pick(Role::Backlog, &mut q, false, 9, 300).unwrap();
            assert_eq!(
                (job.level, job.kind),
                (FAST_LEVEL, JobKind::Compress { provisional: true })
            );
        }
        assert_eq!(pick(Role::Backlog, &mut q, false, 9, 300), None);
        assert_eq!(q.waiting_bytes, 300);
        // Closing: the idle thread stops, the backlog thread drains all at
        // the configured level, final.
        let closing = true;
        assert_eq!(pick(Role::Idle, &mut q, closing, 9, 300), None);
        for _ in 0..3 {
            let job = pick(Role::Backlog, &mut q, closing, 9, 300).unwrap();
            assert_eq!(
                (job.level, job.kind),
                (9, JobKind::Compress { provisional: false })
            );
        }
        assert_eq!(pick(Role::Backlog, &mut q, closing, 9, 300), None);
        assert_eq!(q.pending(), 8, "eight taken, none finished");
    }

    #[test]
    fn without_an_idle_thread_the_backlog_thread_writes_final_files() {
        // Limit 0 (`vigil ingest`): nothing would refine a provisional
        // file, so the backlog thread keeps the configured level unless
        // another segment waits, then uses the backlog level.
        let mut q = queue(&[100, 100]);
        assert_eq!(
            pick(Role::Backlog, &mut q, false, 9, 0),
            compress("/l/00000000000000000000.seg", BACKLOG_LEVEL, false)
        );
        assert_eq!(
            pick(Role::Backlog, &mut q, false, 9, 0),
            compress("/l/00000000000000000001.seg", 9, false)
        );
        // A configured level already at or below the fast one is final.
        let mut q = queue(&[100, 100, 100]);
        let job = pick(Role::Backlog, &mut q, false, FAST_LEVEL, 50).unwrap();
        assert_eq!(job.kind, JobKind::Compress { provisional: false });
    }

    #[test]
    fn the_idle_thread_refines_only_once_no_plain_segment_waits() {
        let mut q = queue(&[100]);
        q.push_refine(PathBuf::from("/l/00000000000000000007.seg.zst"), false);
        q.push_refine(PathBuf::from("/l/00000000000000000009.seg.zst"), false);
        q.push_refine(PathBuf::from("/l/00000000000000000007.seg.zst"), false);
        assert_eq!(q.provisional(), 2, "queued once");
        // The backlog thread never refines, not even while closing.
        assert_eq!(
            pick(Role::Backlog, &mut q, false, 9, 0).map(|j| j.kind),
            Some(JobKind::Compress { provisional: false })
        );
        assert_eq!(pick(Role::Backlog, &mut q, true, 9, 0), None);
        let mut q = queue(&[100]);
        q.push_refine(PathBuf::from("/l/00000000000000000007.seg.zst"), false);
        q.push_refine(PathBuf::from("/l/00000000000000000009.seg.zst"), false);
        assert_eq!(
            pick(Role::Idle, &mut q, false, 9, 300),
            compress("/l/00000000000000000000.seg", 9, false)
        );
        let job = pick(Role::Idle, &mut q, false, 9, 300).unwrap();
        assert_eq!(
            (job.seg.as_path(), job.level, job.kind),
            (
                Path::new("/l/00000000000000000007.seg.zst"),
                9,
                JobKind::Refine
            )
        );
        assert!(q.is_busy(Path::new("/l/00000000000000000007.seg.zst")));
        // Retention takes a provisional file off the queue too.
        q.withdraw(Path::new("/l/00000000000000000009.seg.zst"));
        assert_eq!(q.provisional(), 0);
        assert_eq!(pick(Role::Idle, &mut q, false, 9, 300), None);
        assert_eq!(pick(Role::Idle, &mut q, true, 9, 300), None);
    }

    #[test]
    fn withdrawn_segments_leave_the_queue_and_its_byte_count() {
        let mut q = queue(&[10, 20, 30]);
        q.withdraw(Path::new("/elsewhere/00000000000000000001.seg"));
        assert_eq!(q.waiting_bytes, 40);
        assert_eq!(q.pending(), 2);
        let job = pick(Role::Idle, &mut q, false, 9, 0).unwrap();
        assert!(job.seg.ends_with("00000000000000000000.seg"));
        assert!(q.is_busy(Path::new("/other/dir/00000000000000000000.seg")));
        assert!(!q.is_busy(Path::new("/l/00000000000000000002.seg")));
    }

    #[test]
    fn the_idle_thread_runs_under_sched_idle() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Compressor::start(tmp.path().to_path_buf(), 9, 1 << 20).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let tid = loop {
            let tid = c.shared.idle_tid.load(Ordering::Relaxed);
            if tid != 0 {
                break tid;
            }
            assert!(Instant::now() < deadline, "idle thread never started");
            std::thread::sleep(Duration::from_millis(5));
        };
        let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the parenthesised name start at field 3; the
        // scheduling policy is field 41.
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let policy: i32 = rest
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE, "{stat}");
        let comm = fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        assert_eq!(
            comm.trim(),
            "vigil-ledger-zi",
            "the name is cut to 15 bytes"
        );
    }

    #[test]
    fn a_cancelled_compression_leaves_the_plain_segment_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let seg = tmp.path().join("00000000000000000001.seg");
        let mut bytes = SegmentHeader {
            first_seq: 1,
            created_unix: 0,
            crc_elided: false,
        }
        .encode()
        .to_vec();
        for seq in 1..=3u64 {
            crate::format::encode_record(&mut bytes, seq, format!("{{\"n\":{seq}}}").as_bytes());
        }
        fs::write(&seg, &bytes).unwrap();
        let calls = std::cell::Cell::new(0);
        let mut cancel = || {
            calls.set(calls.get() + 1);
            calls.get() > 2
        };
        let err =
            compress_segment_framed(tmp.path(), &seg, 3, FRAMES, false, &mut cancel).unwrap_err();
        assert!(
            matches!(&err, LedgerError::Io { source, .. } if source.kind() == io::ErrorKind::Interrupted),
            "{err}"
        );
        assert_eq!(fs::read(&seg).unwrap(), bytes);
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no .tmp or .seg.zst left: {left:?}");
    }

    #[test]
    fn a_backlog_falls_back_to_the_fast_level() {
        assert_eq!(level_for(7, 0), 7);
        assert_eq!(level_for(7, 1), 7);
        assert_eq!(level_for(7, 2), BACKLOG_LEVEL);
        assert_eq!(level_for(19, 5), BACKLOG_LEVEL);
        // A configured level already faster than the fallback is kept.
        assert_eq!(level_for(1, 5), 1);
    }
}
