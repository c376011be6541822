//! Background compression of sealed segments.
//!
//! Crash safety comes from ordering: the `.seg.zst` only appears (by rename)
//! once its bytes are fsync'd, and the `.seg` is deleted only after that rename
//! is durable. Dying anywhere leaves either a `.tmp` (removed at open) or both
//! files (the `.seg` is removed at open once the `.seg.zst` checks out).

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::dir::{fsync_dir, io_err};
use crate::format::{TMP_SUFFIX, ZST_SUFFIX};
use crate::LedgerError;

/// Counters shared with the compression thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub pending: AtomicUsize,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
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
                    if let Err(e) = compress_segment(&dir, &seg, level) {
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
    let zst = with_suffix(seg, &ZST_SUFFIX[".seg".len()..]);
    let tmp = with_suffix(&zst, TMP_SUFFIX);
    let src = File::open(seg).map_err(io_err(seg))?;
    let src_len = src.metadata().map_err(io_err(seg))?.len();
    let out = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut enc = zstd::stream::write::Encoder::new(out, level).map_err(io_err(&tmp))?;
    // Frame checksum lets readers tell a damaged file from a short one.
    enc.include_checksum(true).map_err(io_err(&tmp))?;
    enc.set_pledged_src_size(Some(src_len))
        .map_err(io_err(&tmp))?;
    let mut reader = BufReader::with_capacity(1 << 20, src);
    let copied = io::copy(&mut reader, &mut enc).map_err(io_err(seg))?;
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
    let out = enc.finish().map_err(io_err(&tmp))?;
    out.sync_all().map_err(io_err(&tmp))?;
    drop(out);
    fs::rename(&tmp, &zst).map_err(io_err(&zst))?;
    fsync_dir(dir)?;
    fs::remove_file(seg).map_err(io_err(seg))?;
    tracing::debug!(segment = %zst.display(), "ledger segment compressed");
    Ok(())
}
