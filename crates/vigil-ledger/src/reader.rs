//! Reading records: [`LedgerReader`], [`RecordIter`] and the segment scanner
//! shared with the writer's recovery.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};

use crate::dir::{self, io_err, SegEntry, SegKind};
use crate::format::{self, Decoded, SegmentHeader, HEADER_LEN};
use crate::{seek, LedgerError};

/// Read buffer size; large enough that per-`read` overhead vanishes.
const READ_BUF: usize = 256 * 1024;

/// How a segment scan treats a bad or incomplete record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Sealed segment: anything but a clean end after a whole record is corruption.
    Strict,
    /// Open segment: the writer may be mid-write (or died mid-write), so the
    /// segment ends at the last complete valid record.
    Lenient,
}

/// Streams the records of one segment file, lending payloads from a reused buffer.
pub(crate) struct SegReader {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    kind: SegKind,
    tail: Tail,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Offset of `buf[pos]` in the (decompressed) segment.
    offset: u64,
    /// Seq the next record must carry.
    expect: u64,
    header: SegmentHeader,
    /// Why a lenient scan stopped early, if it did.
    stopped: Option<String>,
}

impl SegReader {
    /// Opens `entry` and validates its header. `NotFound` is passed through
    /// as the raw `io::Error` so callers can re-list.
    pub(crate) fn open(entry: &SegEntry, tail: Tail) -> Result<SegReader, OpenError> {
        let file = File::open(&entry.path).map_err(OpenError::Io)?;
        Self::from_file(file, entry, tail).map_err(OpenError::Ledger)
    }

    /// Like [`Self::open`], but a compressed segment with a seek table starts
    /// at the frame holding `seq` rather than at the top (see
    /// [`crate::seek`]); the records before `seq` in that frame are still
    /// returned. The header is then not read, so [`Self::header`] only
    /// knows the first seq.
    pub(crate) fn open_near(
        entry: &SegEntry,
        tail: Tail,
        seq: u64,
    ) -> Result<SegReader, OpenError> {
        let mut file = File::open(&entry.path).map_err(OpenError::Io)?;
        if entry.kind == SegKind::Compressed && seq > entry.first_seq {
            if let Some(frame) = seek::read_table(&mut file)
                .and_then(|t| t.into_iter().rev().find(|e| e.first_seq <= seq))
                .filter(|e| e.raw_offset > 0)
            {
                return Self::from_frame(file, entry, tail, frame).map_err(OpenError::Ledger);
            }
            file.seek(SeekFrom::Start(0)).map_err(OpenError::Io)?;
        }
        Self::from_file(file, entry, tail).map_err(OpenError::Ledger)
    }

    fn from_frame(
        mut file: File,
        entry: &SegEntry,
        tail: Tail,
        frame: seek::SeekEntry,
    ) -> Result<SegReader, LedgerError> {
        file.seek(SeekFrom::Start(frame.zst_offset))
            .map_err(io_err(&entry.path))?;
        let inner = Box::new(zstd::stream::read::Decoder::new(file).map_err(io_err(&entry.path))?);
        Ok(SegReader {
            inner,
            path: entry.path.clone(),
            kind: entry.kind,
            tail,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            eof: false,
            offset: frame.raw_offset,
            expect: frame.first_seq,
            header: SegmentHeader {
                first_seq: entry.first_seq,
                created_unix: 0,
                crc_elided: true,
            },
            stopped: None,
        })
    }

    pub(crate) fn from_file(
        file: File,
        entry: &SegEntry,
        tail: Tail,
    ) -> Result<SegReader, LedgerError> {
        let inner: Box<dyn Read + Send> = match entry.kind {
            SegKind::Plain => Box::new(file),
            SegKind::Compressed => {
                Box::new(zstd::stream::read::Decoder::new(file).map_err(io_err(&entry.path))?)
            }
        };
        let mut r = SegReader {
            inner,
            path: entry.path.clone(),
            kind: entry.kind,
            tail,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            expect: 0,
            header: SegmentHeader {
                first_seq: 0,
                created_unix: 0,
                crc_elided: false,
            },
            stopped: None,
        };
        r.fill(HEADER_LEN)?;
        let header =
            SegmentHeader::decode(&r.buf[r.pos..r.end]).map_err(|reason| r.corrupt(0, reason))?;
        if header.first_seq != entry.first_seq {
            return Err(r.corrupt(
                16,
                format!(
                    "header says first seq {} but the file name says {}",
                    header.first_seq, entry.first_seq
                ),
            ));
        }
        r.header = header;
        r.expect = header.first_seq;
        r.pos += HEADER_LEN;
        r.offset = HEADER_LEN as u64;
        Ok(r)
    }

    pub(crate) fn header(&self) -> SegmentHeader {
        self.header
    }

    /// Offset just past the last record returned (or the header).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Seq the next record would carry.
    pub(crate) fn expect(&self) -> u64 {
        self.expect
    }

    /// Why a lenient scan stopped before the end of the file, if it did.
    pub(crate) fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    fn corrupt(&self, offset: u64, reason: String) -> LedgerError {
        let reason = match self.kind {
            SegKind::Plain => reason,
            SegKind::Compressed => format!("{reason} (offset in the decompressed stream)"),
        };
        LedgerError::Corrupt {
            segment: self.path.clone(),
            offset,
            reason,
        }
    }

    /// Makes at least `n` bytes available from `pos` unless the input ends first.
    fn fill(&mut self, n: usize) -> Result<usize, LedgerError> {
        while self.end - self.pos < n && !self.eof {
            if self.buf.len() - self.pos < n {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
                if self.buf.len() < n {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(match self.kind {
                        // zstd reports damaged frames as I/O errors.
                        SegKind::Compressed => self.corrupt(
                            self.offset + (self.end - self.pos) as u64,
                            format!("zstd decompression failed: {e}"),
                        ),
                        SegKind::Plain => LedgerError::Io {
                            path: self.path.clone(),
                            source: e,
                        },
                    });
                }
            }
        }
        Ok(self.end - self.pos)
    }

    /// Ends the scan because of `reason`: an error for sealed segments, a
    /// quiet stop for the open one.
    fn bad(&mut self, reason: String) -> Result<Option<(u64, Range<usize>)>, LedgerError> {
        match self.tail {
            Tail::Strict => Err(self.corrupt(self.offset, reason)),
            Tail::Lenient => {
                self.stopped = Some(reason);
                Ok(None)
            }
        }
    }

    /// The next record: its seq and the payload's range in [`Self::buf`].
    /// `None` at the end of the segment.
    #[inline]
    pub(crate) fn next_record(&mut self) -> Result<Option<(u64, Range<usize>)>, LedgerError> {
        if self.stopped.is_some() {
            return Ok(None);
        }
        loop {
            // A compressed stream may have zeroed checksums even without the
            // header saying so when it is read from a frame, past the header.
            let zero_ok = self.kind == SegKind::Compressed || self.header.crc_elided;
            match format::decode_record(&self.buf[self.pos..self.end], self.expect, zero_ok) {
                Decoded::Record { seq, payload, len } => {
                    let range = self.pos + payload.start..self.pos + payload.end;
                    self.pos += len;
                    self.offset += len as u64;
                    self.expect = seq + 1;
                    return Ok(Some((seq, range)));
                }
                Decoded::Short { need } => {
                    if self.fill(need)? >= need {
                        continue;
                    }
                    let have = self.end - self.pos;
                    if have == 0 {
                        return Ok(None);
                    }
                    return self.bad(format!(
                        "truncated record: {have} bytes left, record needs {need}"
                    ));
                }
                Decoded::Invalid(reason) => return self.bad(reason),
            }
        }
    }

    #[inline]
    pub(crate) fn payload(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }

    /// Reads to the end, returning the last seq seen (`first_seq - 1` if none).
    pub(crate) fn scan_to_end(&mut self) -> Result<u64, LedgerError> {
        while self.next_record()?.is_some() {}
        Ok(self.expect - 1)
    }
}

/// Error from [`SegReader::open`]: the open itself, or a bad header.
pub(crate) enum OpenError {
    Io(io::Error),
    Ledger(LedgerError),
}

/// A record read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number (gap-free, from 1).
    pub seq: u64,
    /// The payload bytes exactly as appended.
    pub payload: Vec<u8>,
}

/// Reads the ledger; needs no lock and may run beside the writer, in this
/// process or another.
///
/// A reader sees every record the writer has *written*, which may be more
/// than it has made durable; bound reads by [`crate::Ledger::durable_seq`]
/// when only acknowledged records may be shown.
#[derive(Debug, Clone)]
pub struct LedgerReader {
    dir: PathBuf,
}

impl LedgerReader {
    /// Opens a reader on the ledger directory (`DATA_DIR/ledger`).
    pub fn open(dir: &Path) -> Result<LedgerReader, LedgerError> {
        let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
        if !meta.is_dir() {
            return Err(LedgerError::Io {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(LedgerReader {
            dir: dir.to_path_buf(),
        })
    }

    /// The seq of the last complete, valid record (0 if the ledger is empty).
    ///
    /// Scans the newest segment, so it costs up to one segment read.
    pub fn last_seq(&self) -> Result<u64, LedgerError> {
        for _ in 0..RELIST_ATTEMPTS {
            let listing = dir::list(&self.dir)?;
            let Some(last) = listing.segs.last() else {
                return Ok(0);
            };
            match SegReader::open(last, tail_for(last, true)) {
                Ok(mut r) => return r.scan_to_end(),
                Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(OpenError::Io(e)) => return Err(io_err(&last.path)(e)),
                Err(OpenError::Ledger(e)) => return Err(e),
            }
        }
        Err(vanished(&self.dir))
    }

    /// Iterates over records `from..=to` in seq order, allocating one `Vec`
    /// per record; see [`Self::for_each_range`] for the allocation-free form.
    ///
    /// Stops early, without error, where the ledger ends.
    pub fn iter_range(&self, from: u64, to: u64) -> RecordIter {
        RecordIter {
            cursor: Cursor::new(self.dir.clone(), from, to),
        }
    }

    /// Calls `f(seq, payload)` for records `from..=to`, lending the payload
    /// from a reused buffer; `f` stops the scan by returning `Break`.
    ///
    /// Returns `Break(b)` if `f` stopped, `Continue(())` otherwise.
    pub fn for_each_range<B, F>(
        &self,
        from: u64,
        to: u64,
        mut f: F,
    ) -> Result<ControlFlow<B>, LedgerError>
    where
        F: FnMut(u64, &[u8]) -> ControlFlow<B>,
    {
        let mut c = Cursor::new(self.dir.clone(), from, to);
        while let Some((seq, range)) = c.advance()? {
            let payload = c.payload(range);
            if let ControlFlow::Break(b) = f(seq, payload) {
                return Ok(ControlFlow::Break(b));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// A `.seg` can vanish between listing and open when compression finishes; a
/// few re-lists always find its `.seg.zst`.
const RELIST_ATTEMPTS: usize = 8;

fn vanished(dir: &Path) -> LedgerError {
    LedgerError::Io {
        path: dir.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "segment files kept vanishing while listing the ledger directory",
        ),
    }
}

/// Only the newest segment, if still plain, may legitimately end in a partial record.
fn tail_for(entry: &SegEntry, newest: bool) -> Tail {
    if newest && entry.kind == SegKind::Plain {
        Tail::Lenient
    } else {
        Tail::Strict
    }
}

/// Iterator over a range of records; created by [`LedgerReader::iter_range`].
///
/// After an error it yields `None`.
pub struct RecordIter {
    cursor: Cursor,
}

impl Iterator for RecordIter {
    type Item = Result<Record, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.cursor.advance() {
            Ok(Some((seq, range))) => Some(Ok(Record {
                seq,
                payload: self.cursor.payload(range).to_vec(),
            })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Walks segments in order, following the writer across rolls and
/// compressions.
struct Cursor {
    dir: PathBuf,
    from: u64,
    to: u64,
    segs: Vec<SegEntry>,
    idx: usize,
    seg: Option<SegReader>,
    started: bool,
    done: bool,
}

impl Cursor {
    fn new(dir: PathBuf, from: u64, to: u64) -> Cursor {
        Cursor {
            dir,
            from: from.max(1),
            to,
            segs: Vec::new(),
            idx: 0,
            seg: None,
            started: false,
            done: false,
        }
    }

    fn payload(&self, r: Range<usize>) -> &[u8] {
        match &self.seg {
            Some(s) => s.payload(r),
            None => &[],
        }
    }

    fn advance(&mut self) -> Result<Option<(u64, Range<usize>)>, LedgerError> {
        if self.done {
            return Ok(None);
        }
        let r = self.advance_inner();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
            self.seg = None;
        }
        r
    }

    fn advance_inner(&mut self) -> Result<Option<(u64, Range<usize>)>, LedgerError> {
        if !self.started {
            self.started = true;
            if self.from > self.to {
                return Ok(None);
            }
            self.segs = dir::list(&self.dir)?.segs;
            // The segment holding `from` is the last one starting at or before it.
            let idx = self.segs.partition_point(|e| e.first_seq <= self.from);
            if self.segs.is_empty() {
                return Ok(None);
            }
            self.open_at(idx.saturating_sub(1), None, Some(self.from))?;
        }
        loop {
            let Some(seg) = self.seg.as_mut() else {
                return Ok(None);
            };
            if seg.expect() > self.to {
                return Ok(None);
            }
            if let Some((seq, range)) = seg.next_record()? {
                if seq < self.from {
                    continue;
                }
                return Ok(Some((seq, range)));
            }
            // End of this segment: the next one must start right after it.
            let expect = seg.expect();
            if seg.stopped().is_some() {
                // Partial record in the open segment: the writer's frontier.
                return Ok(None);
            }
            if self.idx + 1 < self.segs.len() {
                self.open_at(self.idx + 1, Some(expect), None)?;
                continue;
            }
            // Our listing's newest segment is exhausted; the writer may have
            // rolled since, so look again.
            // A segment starting at `expect` other than this one (which, if
            // empty, starts there itself).
            let current = self.segs[self.idx].first_seq;
            let segs = dir::list(&self.dir)?.segs;
            match segs
                .iter()
                .position(|e| e.first_seq == expect && e.first_seq != current)
            {
                Some(i) => {
                    self.segs = segs;
                    self.open_at(i, Some(expect), None)?;
                }
                None => return Ok(None),
            }
        }
    }

    /// Opens `segs[idx]`, re-listing if it vanished (compressed meanwhile);
    /// `near` starts it close to that seq when the segment allows.
    fn open_at(
        &mut self,
        idx: usize,
        expect: Option<u64>,
        near: Option<u64>,
    ) -> Result<(), LedgerError> {
        self.seg = None;
        let mut idx = idx;
        for _ in 0..RELIST_ATTEMPTS {
            let entry = &self.segs[idx];
            if let Some(expect) = expect {
                if entry.first_seq != expect {
                    let prev = self.segs[..idx]
                        .last()
                        .map(|p| p.path.display().to_string());
                    return Err(LedgerError::Corrupt {
                        segment: entry.path.clone(),
                        offset: 0,
                        reason: format!(
                            "segment starts at seq {} but the previous segment{} ended before seq {expect}",
                            entry.first_seq,
                            prev.map(|p| format!(" ({p})")).unwrap_or_default()
                        ),
                    });
                }
            }
            let tail = tail_for(entry, idx + 1 == self.segs.len());
            let opened = match near {
                Some(seq) => SegReader::open_near(entry, tail, seq),
                None => SegReader::open(entry, tail),
            };
            match opened {
                Ok(r) => {
                    self.idx = idx;
                    self.seg = Some(r);
                    return Ok(());
                }
                Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                    let first_seq = entry.first_seq;
                    self.segs = dir::list(&self.dir)?.segs;
                    match self.segs.iter().position(|e| e.first_seq == first_seq) {
                        Some(i) => idx = i,
                        None => {
                            return Err(LedgerError::Io {
                                path: self.dir.join(format::seg_name(first_seq)),
                                source: e,
                            })
                        }
                    }
                }
                Err(OpenError::Io(e)) => return Err(io_err(&entry.path)(e)),
                Err(OpenError::Ledger(e)) => return Err(e),
            }
        }
        Err(vanished(&self.dir))
    }
}
