//! Background compression of sealed segments.
//!
//! Crash safety comes from ordering: the `.seg.zst` only appears (by rename)
//! once its bytes are fsync'd, and the `.seg` is deleted only after that rename
//! is durable. Dying anywhere leaves either a `.tmp` (removed at open) or both
//! files (the `.seg` is removed at open once the `.seg.zst` checks out).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::dir::{fsync_dir, io_err};
use crate::format::{
    le_u32, le_u64, record_crc, SegmentHeader, HEADER_LEN, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN,
    TMP_SUFFIX, ZST_SUFFIX,
};
use crate::seek::{self, Counting, Frames, SeekEntry, FRAMES};
use crate::LedgerError;

/// Counters shared with the compression thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub pending: AtomicUsize,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    /// Segments compressed at [`BACKLOG_LEVEL`] because others were waiting.
    pub fast: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// The level used while more sealed segments wait behind the current one:
/// a sustained ingest rate above what the configured level compresses must
/// not let plain segments pile up (they take about 4× the space), so under
/// backlog the thread trades ratio for speed (about 600 MB/s against about
/// 170 MB/s at level 7 and 15 % less at the default level 9 on this data).
pub(crate) const BACKLOG_LEVEL: i32 = 3;

/// The level for the next segment, given how many are queued (this one included).
pub(crate) fn level_for(configured: i32, queued: usize) -> i32 {
    if queued > 1 {
        configured.min(BACKLOG_LEVEL)
    } else {
        configured
    }
}

/// Handle to the compression thread; dropping it waits for queued work.
pub(crate) struct Compressor {
    tx: Option<Sender<PathBuf>>,
    handle: Option<JoinHandle<()>>,
    pub shared: Arc<Shared>,
}

impl Compressor {
    pub(crate) fn start(dir: PathBuf, level: i32) -> Result<Compressor, LedgerError> {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("vigil-ledger-zstd".into())
            .spawn(move || {
                for seg in rx {
                    let use_level = level_for(level, sh.pending.load(Ordering::Relaxed));
                    if use_level != level {
                        sh.fast.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = compress_segment(&dir, &seg, use_level) {
                        // The plain segment stays in place and readable; the
                        // next open queues it again.
                        tracing::error!(segment = %seg.display(), error = %e, "ledger segment compression failed");
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut last) = sh.last_error.lock() {
                            *last = Some(e.to_string());
                        }
                    } else {
                        sh.done.fetch_add(1, Ordering::Relaxed);
                    }
                    sh.pending.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .map_err(io_err(Path::new("vigil-ledger-zstd thread")))?;
        Ok(Compressor {
            tx: Some(tx),
            handle: Some(handle),
            shared,
        })
    }

    /// Queues a sealed `.seg` for compression.
    pub(crate) fn submit(&self, seg: PathBuf) {
        if let Some(tx) = &self.tx {
            self.shared.pending.fetch_add(1, Ordering::Relaxed);
            if tx.send(seg).is_err() {
                // Thread gone (it panicked); the segment stays plain and is
                // retried at the next open.
                self.shared.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("ledger compression thread panicked");
            }
        }
    }
}

/// Path with `suffix` appended to the file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `X.seg` -> `X.seg.zst.tmp` -> fsync -> `X.seg.zst` -> fsync dir -> delete `X.seg`.
pub(crate) fn compress_segment(dir: &Path, seg: &Path, level: i32) -> Result<(), LedgerError> {
    compress_segment_framed(dir, seg, level, FRAMES)
}

/// [`compress_segment`] with frames cut by `frames` (see [`crate::seek`]).
pub(crate) fn compress_segment_framed(
    dir: &Path,
    seg: &Path,
    level: i32,
    frames: Frames,
) -> Result<(), LedgerError> {
    let zst = with_suffix(seg, &ZST_SUFFIX[".seg".len()..]);
    let tmp = with_suffix(&zst, TMP_SUFFIX);
    let src = File::open(seg).map_err(io_err(seg))?;
    let src_len = src.metadata().map_err(io_err(seg))?.len();
    let out = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = Counting {
        inner: BufWriter::with_capacity(1 << 20, out),
        written: 0,
    };
    let mut reader = BufReader::with_capacity(1 << 20, src);
    let copied = write_frames(&mut reader, &mut w, level, frames).map_err(io_err(seg))?;
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
    let out = w
        .inner
        .into_inner()
        .map_err(|e| io_err(&tmp)(e.into_error()))?;
    out.sync_all().map_err(io_err(&tmp))?;
    drop(out);
    fs::rename(&tmp, &zst).map_err(io_err(&zst))?;
    fsync_dir(dir)?;
    fs::remove_file(seg).map_err(io_err(seg))?;
    tracing::debug!(segment = %zst.display(), "ledger segment compressed");
    Ok(())
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
    let mut enc = frame(w, level)?;
    enc.write_all(&header[..got])?;
    let mut copied = got as u64;
    let mut entries = Vec::new();
    let Some(first_seq) = first_seq else {
        // Not a segment we understand: one frame, no table.
        copied += io::copy(src, &mut enc)?;
        enc.finish()?;
        return Ok(copied);
    };
    entries.push(SeekEntry {
        first_seq,
        raw_offset: 0,
        zst_offset: 0,
    });
    let mut in_frame = got;
    let mut rec = [0u8; RECORD_HEADER_LEN];
    let mut payload = Vec::new();
    loop {
        let n = read_full(src, &mut rec)?;
        if n < RECORD_HEADER_LEN {
            enc.write_all(&rec[..n])?;
            copied += n as u64;
            break;
        }
        let len = le_u32(&rec[0..4]) as usize;
        let seq = le_u64(&rec[8..16]);
        if len > MAX_PAYLOAD_LEN {
            enc.write_all(&rec)?;
            copied += RECORD_HEADER_LEN as u64 + io::copy(src, &mut enc)?;
            break;
        }
        if frames.cut_before(seq, in_frame) {
            enc.finish()?;
            entries.push(SeekEntry {
                first_seq: seq,
                raw_offset: copied,
                zst_offset: w.written,
            });
            enc = frame(w, level)?;
            in_frame = 0;
        }
        payload.clear();
        let got = src.take(len as u64).read_to_end(&mut payload)?;
        if got == len && le_u32(&rec[4..8]) == record_crc(seq, &payload) {
            // Checked here; zstd's frame checksum covers it from now on. A
            // record that fails keeps its checksum, so readers still see the damage.
            rec[4..8].fill(0);
        }
        enc.write_all(&rec)?;
        enc.write_all(&payload)?;
        copied += (RECORD_HEADER_LEN + got) as u64;
        in_frame += RECORD_HEADER_LEN + got;
        if got < len {
            break;
        }
    }
    enc.finish()?;
    w.write_all(&seek::encode(&entries))?;
    w.flush()?;
    Ok(copied)
}

/// A zstd frame with a checksum, so readers tell a damaged file from a short one.
fn frame<W: Write>(
    w: &mut W,
    level: i32,
) -> io::Result<zstd::stream::write::Encoder<'static, &mut W>> {
    let mut enc = zstd::stream::write::Encoder::new(w, level)?;
    enc.include_checksum(true)?;
    Ok(enc)
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
