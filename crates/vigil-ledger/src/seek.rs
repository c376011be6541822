//! Seekable compressed segments.
//!
//! A sealed segment is compressed as a run of independent zstd frames, each
//! starting at a record boundary (see [`Frames`] for where), followed by a
//! seek table in a zstd *skippable* frame. Any zstd
//! decoder reads the whole file as the original segment bytes (skippable
//! frames are defined to be ignored), so full scans and `vigil verify` see
//! no difference; a reader that wants records from the middle looks up the
//! frame holding them and starts decompressing there instead of at the top.
//!
//! Seek table (little-endian), the payload of the skippable frame:
//!
//! ```text
//! entries × (first_seq u64 | raw_offset u64 | zst_offset u64)
//! count u32 | crc32c u32 (of the entries and count) | "VGLSEEK1" or "VGLSEEKP"
//! ```
//!
//! `VGLSEEKP` marks a *provisional* file: compressed at a fast level because
//! ingest outran the idle compressor, and due to be compressed again at the
//! configured level once a core is idle (see [`crate::compress`]). The mark
//! lives in the file so a restart still finds what is left to do.
//!
//! The table is only a shortcut: one that is missing or fails its checksum
//! makes readers fall back to decompressing from the start, and every record
//! read through it is still checked (its own crc and the seq it must carry).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Seqs per search index block by default (`vigil_index::IndexOptions`
/// takes its default block size from here). Frames start at the first seq
/// of such a block, so a search that reads one block decompresses the frame
/// that begins with it, not the blocks before it. A configured block size
/// that is a multiple of this keeps that property; a smaller one shares
/// frames between blocks.
pub const FRAME_ALIGN_SEQS: u64 = 4096;

/// Where frames are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frames {
    /// A frame is closed at the first aligned seq after it holds this many
    /// bytes: zstd loses ratio on small frames (on simulated telemetry at
    /// level 7, 8 MiB frames are 3.7 % smaller than 2 MiB ones), so short
    /// events get several blocks per frame.
    pub min_bytes: usize,
    /// Seqs `1 + k × align` start frames.
    pub align: u64,
    /// A frame is closed at any record once it holds this many bytes, so
    /// huge events cannot make one frame of a whole segment.
    pub max_bytes: usize,
}

/// The frames of sealed segments: one block of simulated events (4,096 of
/// about 1,150 bytes stored, 4.7 MiB) per frame, several blocks of short
/// syslog lines.
pub(crate) const FRAMES: Frames = Frames {
    min_bytes: 2 << 20,
    align: FRAME_ALIGN_SEQS,
    max_bytes: 16 << 20,
};

impl Frames {
    /// Whether the record carrying `seq` starts a new frame after
    /// `in_frame` bytes.
    pub(crate) fn cut_before(&self, seq: u64, in_frame: usize) -> bool {
        in_frame >= self.max_bytes
            || (in_frame >= self.min_bytes && seq.wrapping_sub(1).is_multiple_of(self.align.max(1)))
    }
}

/// Magic of the skippable frame holding the table (zstd reserves
/// 0x184D2A50..=0x184D2A5F for skippable frames).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
const TABLE_MAGIC: &[u8; 8] = b"VGLSEEK1";
/// The same table in a provisional file.
const PROVISIONAL_MAGIC: &[u8; 8] = b"VGLSEEKP";
const ENTRY_LEN: usize = 24;
const TRAILER_LEN: usize = 16;
/// More frames than any segment within the size limits can have.
const MAX_ENTRIES: usize = 1 << 20;

/// Where one frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeekEntry {
    /// Seq of the first record in the frame.
    pub first_seq: u64,
    /// Offset of the frame's first byte in the uncompressed segment.
    pub raw_offset: u64,
    /// Offset of the frame in the compressed file.
    pub zst_offset: u64,
}

/// The skippable frame holding `entries`, marked provisional or final.
pub(crate) fn encode(entries: &[SeekEntry], provisional: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() * ENTRY_LEN + TRAILER_LEN);
    for e in entries {
        body.extend_from_slice(&e.first_seq.to_le_bytes());
        body.extend_from_slice(&e.raw_offset.to_le_bytes());
        body.extend_from_slice(&e.zst_offset.to_le_bytes());
    }
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body.extend_from_slice(if provisional {
        PROVISIONAL_MAGIC
    } else {
        TABLE_MAGIC
    });
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads the table at the end of `file`; `None` when there is none or it
/// does not check out (the caller then reads from the start).
pub(crate) fn read_table(file: &mut File) -> Option<Vec<SeekEntry>> {
    read_marked(file).map(|(entries, _)| entries)
}

/// Whether `file` carries a valid table marked provisional. A file whose
/// table is missing or damaged is never recompressed: its bytes are
/// left as they are for `vigil verify` to judge.
pub(crate) fn is_provisional(file: &mut File) -> bool {
    read_marked(file).is_some_and(|(_, provisional)| provisional)
}

/// The table and whether it is marked provisional.
fn read_marked(file: &mut File) -> Option<(Vec<SeekEntry>, bool)> {
    let len = file.metadata().ok()?.len();
    if len < (TRAILER_LEN + 8) as u64 {
        return None;
    }
    let mut trailer = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64)).ok()?;
    file.read_exact(&mut trailer).ok()?;
    let provisional = match &trailer[8..] {
        m if m == TABLE_MAGIC => false,
        m if m == PROVISIONAL_MAGIC => true,
        _ => return None,
    };
    let count = u32::from_le_bytes(trailer[0..4].try_into().ok()?) as usize;
    if count == 0 || count > MAX_ENTRIES {
        return None;
    }
    let body_len = count * ENTRY_LEN + TRAILER_LEN;
    let frame_start = len.checked_sub((body_len + 8) as u64)?;
    let mut frame = vec![0u8; body_len + 8];
    file.seek(SeekFrom::Start(frame_start)).ok()?;
    file.read_exact(&mut frame).ok()?;
    if frame[0..4] != SKIPPABLE_MAGIC.to_le_bytes()
        || frame[4..8] != (body_len as u32).to_le_bytes()
    {
        return None;
    }
    let body = &frame[8..];
    let crc = u32::from_le_bytes(body[body_len - 12..body_len - 8].try_into().ok()?);
    if crc32c::crc32c(&body[..body_len - 12]) != crc {
        return None;
    }
    let entries: Vec<SeekEntry> = body[..count * ENTRY_LEN]
        .chunks_exact(ENTRY_LEN)
        .map(|c| SeekEntry {
            first_seq: u64::from_le_bytes(c[0..8].try_into().unwrap_or_default()),
            raw_offset: u64::from_le_bytes(c[8..16].try_into().unwrap_or_default()),
            zst_offset: u64::from_le_bytes(c[16..24].try_into().unwrap_or_default()),
        })
        .collect();
    let ordered = entries.windows(2).all(|w| {
        w[0].first_seq < w[1].first_seq
            && w[0].raw_offset < w[1].raw_offset
            && w[0].zst_offset < w[1].zst_offset
    });
    (ordered && entries.last()?.zst_offset < frame_start).then_some((entries, provisional))
}

/// Counts bytes written through it, so frame offsets are known.
pub(crate) struct Counting<W> {
    pub inner: W,
    pub written: u64,
}

impl<W: io::Write> io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
