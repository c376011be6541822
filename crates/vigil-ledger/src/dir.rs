//! The ledger directory: listing segments, directory fsync, the writer lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::format::{SEG_SUFFIX, TMP_SUFFIX, ZST_SUFFIX};
use crate::merkle::CompactTree;
use crate::LedgerError;

/// How a segment is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegKind {
    /// `X.seg`: the open segment, or a sealed one awaiting compression.
    Plain,
    /// `X.seg.zst`: sealed and compressed.
    Compressed,
}

/// One segment as found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegEntry {
    pub first_seq: u64,
    pub kind: SegKind,
    pub path: PathBuf,
}

/// What a directory listing found.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segments in seq order; where both forms exist, only the `.seg.zst`.
    pub segs: Vec<SegEntry>,
    /// Plain segments shadowed by a `.seg.zst` of the same first seq.
    pub shadowed: Vec<SegEntry>,
    /// Leftover `*.tmp` files.
    pub tmps: Vec<PathBuf>,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses `00000000000000000001.seg` / `.seg.zst` into (seq, kind).
fn parse_name(name: &str) -> Option<(u64, SegKind)> {
    let (stem, kind) = if let Some(s) = name.strip_suffix(ZST_SUFFIX) {
        (s, SegKind::Compressed)
    } else if let Some(s) = name.strip_suffix(SEG_SUFFIX) {
        (s, SegKind::Plain)
    } else {
        return None;
    };
    if stem.len() != 20 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(|seq| (seq, kind))
}

/// Lists the segments of `dir`.
pub(crate) fn list(dir: &Path) -> Result<Listing, LedgerError> {
    let mut out = Listing::default();
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) {
            out.tmps.push(entry.path());
        } else if let Some((first_seq, kind)) = parse_name(name) {
            all.push(SegEntry {
                first_seq,
                kind,
                path: entry.path(),
            });
        }
    }
    // Compressed sorts after plain for the same seq, so it wins the dedup below.
    all.sort_by_key(|e| (e.first_seq, e.kind == SegKind::Compressed));
    for e in all {
        match out.segs.last_mut() {
            Some(last) if last.first_seq == e.first_seq => {
                out.shadowed.push(std::mem::replace(last, e));
            }
            _ => out.segs.push(e),
        }
    }
    Ok(out)
}

/// `X.frontier`: the Merkle tree state before segment `X`'s first record.
///
/// Written before the segment exists, so every segment has one; on open only
/// the newest segment is replayed on top of it instead of the whole ledger.
pub(crate) fn frontier_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.frontier"))
}

/// Largest valid frontier file: the size and one peak per bit of a `u64`.
const MAX_FRONTIER_LEN: u64 = 8 + 64 * 32;

/// Reads a frontier file; `None` if it is missing, unreadable, larger than
/// any valid frontier, or not a valid tree state.
pub(crate) fn read_frontier(path: &Path) -> Option<CompactTree> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(MAX_FRONTIER_LEN + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_FRONTIER_LEN {
        return None;
    }
    CompactTree::from_bytes(&bytes).ok()
}

/// Makes directory entries (created, renamed files) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Exclusive advisory lock on `ledger/LOCK`, held for the writer's lifetime.
///
/// `flock` locks belong to the open file description, so the lock also
/// excludes a second writer inside the same process, and the kernel drops it
/// when the process dies, so a `kill -9` leaves no stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LedgerError> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // SAFETY: flock on a valid, owned fd; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(LedgerError::Locked { path });
            }
            return Err(LedgerError::Io { path, source: err });
        }
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            parse_name("00000000000000000001.seg"),
            Some((1, SegKind::Plain))
        );
        assert_eq!(
            parse_name("00000000000000000100.seg.zst"),
            Some((100, SegKind::Compressed))
        );
        assert_eq!(parse_name("00000000000000000100.seg.zst.tmp"), None);
        assert_eq!(parse_name("1.seg"), None);
        assert_eq!(parse_name("LOCK"), None);
    }

    #[test]
    fn listing_prefers_compressed() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "00000000000000000001.seg",
            "00000000000000000001.seg.zst",
            "00000000000000000005.seg",
            "00000000000000000005.seg.zst.tmp",
            "LOCK",
        ] {
            File::create(dir.path().join(n)).unwrap();
        }
        let l = list(dir.path()).unwrap();
        let kinds: Vec<_> = l.segs.iter().map(|e| (e.first_seq, e.kind)).collect();
        assert_eq!(kinds, vec![(1, SegKind::Compressed), (5, SegKind::Plain)]);
        assert_eq!(l.shadowed.len(), 1);
        assert_eq!(l.tmps.len(), 1);
    }
}
