//! Per-block columns: a dictionary of each column field's values and one
//! code per seq, so that an aggregation can be answered without reading
//! the events.
//!
//! For every block and every field of [`COLUMN_FIELDS`] the block keeps
//! the distinct values the field takes in its events, each as the exact
//! JSON text of what [`Event::get`] returns for it (a string, number,
//! boolean, `null`, or a whole array or object), and for each seq the
//! code of its event's value:
//!
//! - code 0: the event has no such field (or there is no event at the seq);
//! - code `i + 1`: the value is dictionary entry `i`.
//!
//! An array is one dictionary entry, the whole array: the executor fans it
//! out into its elements ([`vigil_query`]'s `by` rules) exactly as it does
//! for a scanned event, because it sees the same value. The time column
//! holds, per seq, 0 when no event is stored there, 1 when the event has no
//! valid `@timestamp`, and `2 + s` for a time `s` whole seconds after the
//! block's earliest second.
//!
//! A field gets no column in a block (its bit in [`BlockDir::mask`] is
//! clear; searches then read that block) when the block holds more than
//! [`MAX_DISTINCT`] distinct values of it, a value longer than
//! [`MAX_VALUE_BYTES`] bytes of JSON, or an event where the filter's
//! lookup of the field (which also follows arrays of objects and dotted
//! keys) reaches something other than the one value `Event::get` returns,
//! so a filter on the column could differ from the scan.
//!
//! File layout (`<first seq>.vcol`, beside the chunk's `.vidx`;
//! little-endian):
//!
//! ```text
//! magic "VIGILCOL" | version u32 | block_size u32 | first_seq u64 | blocks u32
//! fields u32 | per field: len u16 | name bytes
//! per block: offset u64 | len u32 | crc32c u32 | mask u32 | events u32
//!            | min_s i64 | min_ns u32 | max_s i64 | max_ns u32
//! crc32c u32 (of everything above)
//! per block payload: first seq u64 | sections u8 | sections × len u32
//!            | sections, each zstd-compressed: the time column, then one
//!              per field whose mask bit is set
//! time section:  base_s i64 | width u8 | block_size codes of `width` bits
//! field section: entries u32 | per entry: len u16 | JSON | width u8 | codes
//! ```
//!
//! The header and directory are read when the index opens (a few dozen
//! bytes per block stay in memory); a block's payload is read from disk
//! only when a search answers from it, and checked against its own crc32c.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vigil_event::Event;
use vigil_query::extract::Fields;

use crate::cursor::Cursor;
use crate::scan::WalkFacts;
use crate::walked::Walked;
use crate::IndexError;

/// The fields that get columns, in file order.
///
/// A constant: the server config has no `[index]` section. A file built
/// with another list is discarded and rebuilt. No field is a prefix of
/// another, so one event can carry any combination of their values.
pub const COLUMN_FIELDS: &[&str] = &[
    "event.outcome",
    "event.action",
    "event.category",
    "event.type",
    "event.dataset",
    "event.code",
    "event.kind",
    "host.name",
    "source.ip",
    "destination.ip",
    "user.name",
    "log.format",
    "vigil.source",
    "http.response.status_code",
    "http.request.method",
];

// A block's column mask and the walk's scratch array hold at most 32 fields.
const _: () = assert!(COLUMN_FIELDS.len() <= 32);

/// Most distinct values of one field in one block before the field gets no
/// column there.
pub const MAX_DISTINCT: usize = 4096;
/// Longest value (as JSON text) a column holds; a longer one drops the
/// field's column for the block.
pub const MAX_VALUE_BYTES: usize = 256;

const MAGIC: &[u8; 8] = b"VIGILCOL";
const VERSION: u32 = 1;
/// Bytes of one directory entry.
const DIR_ENTRY: usize = 8 + 4 + 4 + 4 + 4 + 8 + 4 + 8 + 4;
/// zstd level: decoding speed matters more than the last few bytes.
const ZSTD_LEVEL: i32 = 3;
/// Largest payload section accepted when decompressing: a corrupt size
/// must not make a reader allocate gigabytes.
const MAX_SECTION: usize = 64 << 20;

/// Where one block's columns are, and what they cover (held in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDir {
    /// Offset of the payload in the file.
    pub offset: u64,
    /// Payload bytes.
    pub len: u32,
    /// crc32c of the payload.
    pub crc: u32,
    /// Bit `i` set: [`COLUMN_FIELDS`]`[i]` has a column in this block.
    pub mask: u32,
    /// Events stored (decodable) in the block.
    pub events: u32,
    /// Earliest and latest `@timestamp` of its events, exactly (seconds,
    /// nanoseconds); `None` when no event has one.
    pub span: Option<((i64, u32), (i64, u32))>,
}

impl BlockDir {
    fn empty() -> BlockDir {
        BlockDir {
            offset: 0,
            len: 0,
            crc: 0,
            mask: 0,
            events: 0,
            span: None,
        }
    }

    /// Whether every event with a time lies in `[since, until)`.
    pub fn within(&self, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
        let Some((lo, hi)) = self.span else {
            return true;
        };
        let at = |(s, ns): (i64, u32)| DateTime::<Utc>::from_timestamp(s, ns);
        let (Some(lo), Some(hi)) = (at(lo), at(hi)) else {
            return false;
        };
        since.is_none_or(|s| lo >= s) && until.is_none_or(|u| hi < u)
    }
}

/// The column directory of one chunk file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDir {
    /// First seq covered.
    pub first_seq: u64,
    /// Seqs per block.
    pub block_size: u32,
    /// One entry per block, in seq order.
    pub blocks: Vec<BlockDir>,
}

/// The columns of one block, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockColumns {
    /// Per seq: 0 no event, 1 no time, `2 + s` seconds after `base_secs`
    /// (all 2 when the time column was not asked for and every seq holds
    /// an event).
    pub times: Vec<u64>,
    /// The block's earliest whole second.
    pub base_secs: i64,
    /// Per requested field (`None` when the block has no column for it):
    /// the dictionary (JSON texts) and one code per seq.
    pub fields: Vec<Option<Column>>,
}

/// One field's column in one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Distinct values as JSON text; code `i + 1` is entry `i`.
    pub dict: Vec<Vec<u8>>,
    /// One code per seq; 0 is "no such field".
    pub codes: Vec<u32>,
}

/// Builds the columns of one chunk from events pushed in seq order.
pub struct ColumnBuilder {
    first_seq: u64,
    block_size: u32,
    cap: usize,
    fields: Fields,
    /// Finished blocks: directory entry (offset relative to the payloads)
    /// and payload bytes.
    done: Vec<(BlockDir, Vec<u8>)>,
    cur: BlockState,
    /// Scratch for a value's JSON text.
    text: Vec<u8>,
    /// One compression context for all sections: making one per section
    /// cost more than compressing the small ones. `None` if zstd could not
    /// make one; each section then gets its own, with the same output.
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

struct BlockState {
    times: Vec<Option<Option<(i64, u32)>>>,
    cols: Vec<FieldState>,
}

/// FNV-1a: dictionary keys are short JSON texts, hashed once per event
/// and field while indexing, where SipHash showed up.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

struct FieldState {
    dead: bool,
    dict: FnvMap<Vec<u8>, u32>,
    order: Vec<Vec<u8>>,
    codes: Vec<u32>,
}

impl FieldState {
    fn new(slots: usize) -> FieldState {
        FieldState {
            dead: false,
            dict: FnvMap::default(),
            order: Vec::new(),
            codes: vec![0; slots],
        }
    }

    fn kill(&mut self) {
        self.dead = true;
        self.dict = FnvMap::default();
        self.order = Vec::new();
    }
}

impl BlockState {
    fn new(slots: usize) -> BlockState {
        BlockState {
            times: vec![None; slots],
            cols: COLUMN_FIELDS
                .iter()
                .map(|_| FieldState::new(slots))
                .collect(),
        }
    }
}

impl ColumnBuilder {
    /// A builder for the chunk starting at `first_seq`.
    pub fn new(first_seq: u64, block_size: u32) -> ColumnBuilder {
        ColumnBuilder::with_cap(first_seq, block_size, MAX_DISTINCT)
    }

    /// A builder that drops a field's column in a block once it has more
    /// than `cap` (at most [`MAX_DISTINCT`]) distinct values there.
    pub fn with_cap(first_seq: u64, block_size: u32, cap: usize) -> ColumnBuilder {
        let block_size = block_size.max(1);
        let mut paths: Vec<&str> = COLUMN_FIELDS.to_vec();
        paths.push(vigil_event::fields::TIMESTAMP);
        ColumnBuilder {
            first_seq,
            block_size,
            cap: cap.min(MAX_DISTINCT),
            fields: Fields::new(paths),
            done: Vec::new(),
            cur: BlockState::new(block_size as usize),
            text: Vec::with_capacity(MAX_VALUE_BYTES),
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
        }
    }

    /// Adds the stored bytes of the event at `seq` (seqs increasing, as
    /// [`crate::ChunkBuilder::push_bytes`] checks). Bytes that are not an
    /// event leave the seq empty, as the search skips them too.
    pub fn push_bytes(&mut self, seq: u64, payload: &[u8]) {
        if let Some(slot) = self.slot(seq) {
            self.push_decoded(slot, payload);
        }
    }

    /// [`Self::push_bytes`] for an event whose walk `walked` recorded (see
    /// [`crate::walked`]): its values are taken from there when the event
    /// is plain, and decoded as by `push_bytes` otherwise.
    pub(crate) fn push_walked(
        &mut self,
        seq: u64,
        payload: &[u8],
        walked: &Walked,
        facts: Option<WalkFacts>,
    ) {
        let Some(slot) = self.slot(seq) else {
            return;
        };
        let mut ends = [0usize; 32];
        let ends = &mut ends[..COLUMN_FIELDS.len()];
        let mut text = std::mem::take(&mut self.text);
        match walked.read(payload, facts, &mut text, ends) {
            Some(time) => {
                self.cur.times[slot] = Some(time);
                let mut start = 0;
                for (i, &end) in ends.iter().enumerate() {
                    if end > start {
                        self.record(i, slot, &text[start..end]);
                    }
                    start = end;
                }
                self.text = text;
            }
            None => {
                self.text = text;
                self.push_decoded(slot, payload);
            }
        }
    }

    /// The slot of `seq` in the current block, finishing the blocks before
    /// it; `None` for a seq before the chunk or in a finished block.
    fn slot(&mut self, seq: u64) -> Option<usize> {
        let bs = u64::from(self.block_size);
        let pos = seq.checked_sub(self.first_seq)?;
        let block = (pos / bs) as usize;
        if block < self.done.len() {
            return None;
        }
        while self.done.len() < block {
            self.finish_block();
        }
        Some((pos % bs) as usize)
    }

    fn push_decoded(&mut self, slot: usize, payload: &[u8]) {
        let decoded = self
            .fields
            .decode(payload)
            .or_else(|_| Event::from_canonical(payload));
        let Ok(ev) = decoded else {
            return;
        };
        let time = ev
            .timestamp()
            .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()));
        self.cur.times[slot] = Some(time);
        let mut seen = Vec::new();
        let mut text = std::mem::take(&mut self.text);
        for (i, f) in COLUMN_FIELDS.iter().enumerate() {
            if self.cur.cols[i].dead {
                continue;
            }
            let got = ev.get(f);
            seen.clear();
            visits(ev.as_map(), f, &mut seen);
            let same = match (got, seen.as_slice()) {
                (None, []) => true,
                (Some(g), [v]) => std::ptr::eq(g, *v),
                _ => false,
            };
            if !same {
                self.cur.cols[i].kill();
                continue;
            }
            let Some(v) = got else { continue };
            text.clear();
            if serde_json::to_writer(&mut text, v).is_err() {
                self.cur.cols[i].kill();
                continue;
            }
            self.record(i, slot, &text);
        }
        self.text = text;
    }

    /// Gives field `i` of `slot` the value whose JSON text is `text`.
    fn record(&mut self, i: usize, slot: usize, text: &[u8]) {
        let col = &mut self.cur.cols[i];
        if col.dead {
            return;
        }
        if text.len() > MAX_VALUE_BYTES {
            col.kill();
            return;
        }
        let code = match col.dict.get(text) {
            Some(c) => *c,
            None => {
                if col.order.len() >= self.cap {
                    col.kill();
                    return;
                }
                let next = col.order.len() as u32 + 1;
                col.order.push(text.to_vec());
                col.dict.insert(text.to_vec(), next);
                next
            }
        };
        col.codes[slot] = code;
    }

    fn finish_block(&mut self) {
        let slots = self.block_size as usize;
        let state = std::mem::replace(&mut self.cur, BlockState::new(slots));
        let first = self.first_seq + self.done.len() as u64 * u64::from(self.block_size);
        let entry = encode_block(first, state, &mut self.zstd);
        self.done.push(entry);
    }

    /// The file bytes and directory of a chunk of `blocks` blocks (blocks
    /// never pushed to are empty).
    pub fn finish(mut self, blocks: usize) -> (Vec<u8>, ColumnDir) {
        while self.done.len() < blocks {
            self.finish_block();
        }
        encode_file(self.first_seq, self.block_size, self.done)
    }

    /// The file of a chunk whose blocks are all empty.
    pub fn empty(first_seq: u64, block_size: u32, blocks: usize) -> (Vec<u8>, ColumnDir) {
        let done = (0..blocks)
            .map(|_| (BlockDir::empty(), Vec::new()))
            .collect();
        encode_file(first_seq, block_size.max(1), done)
    }
}

/// Every value the query language's filter reaches at `path`, the way it
/// looks a field up: the key itself, and through any prefix that is a key,
/// fanning out over arrays of objects. Stops after two: the builder only
/// asks whether there is exactly one.
fn visits<'a>(map: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a Value>) {
    if out.len() > 1 {
        return;
    }
    if let Some(v) = map.get(path) {
        out.push(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(v) = map.get(&path[..i]) {
            descend(v, &path[i + 1..], out);
        }
    }
}

fn descend<'a>(v: &'a Value, rest: &str, out: &mut Vec<&'a Value>) {
    if out.len() > 1 {
        return;
    }
    match v {
        Value::Object(m) => visits(m, rest, out),
        Value::Array(items) => items.iter().for_each(|i| descend(i, rest, out)),
        _ => {}
    }
}

fn encode_block(
    first_seq: u64,
    state: BlockState,
    zstd: &mut Option<zstd::bulk::Compressor<'static>>,
) -> (BlockDir, Vec<u8>) {
    let events = state.times.iter().filter(|t| t.is_some()).count() as u32;
    if events == 0 {
        return (BlockDir::empty(), Vec::new());
    }
    let timed = state.times.iter().filter_map(|t| t.flatten());
    let span = timed.clone().min().zip(timed.max());
    let base = span.map_or(0, |(lo, _)| lo.0);
    let time_codes: Vec<u64> = state
        .times
        .iter()
        .map(|t| match t {
            None => 0,
            Some(None) => 1,
            Some(Some((s, _))) => 2 + s.wrapping_sub(base) as u64,
        })
        .collect();
    let mut sections = Vec::new();
    let mut raw = base.to_le_bytes().to_vec();
    pack(&time_codes, &mut raw);
    sections.push(raw);
    let mut mask = 0u32;
    for (i, col) in state.cols.iter().enumerate() {
        if col.dead {
            continue;
        }
        mask |= 1 << i;
        let mut raw = (col.order.len() as u32).to_le_bytes().to_vec();
        for e in &col.order {
            raw.extend_from_slice(&(e.len() as u16).to_le_bytes());
            raw.extend_from_slice(e);
        }
        let codes: Vec<u64> = col.codes.iter().map(|c| u64::from(*c)).collect();
        pack(&codes, &mut raw);
        sections.push(raw);
    }
    let compressed: Vec<Vec<u8>> = sections
        .iter()
        .map(|s| {
            match zstd {
                Some(z) => z.compress(s),
                None => zstd::bulk::compress(s, ZSTD_LEVEL),
            }
            .unwrap_or_default()
        })
        .collect();
    let mut out = first_seq.to_le_bytes().to_vec();
    out.push(compressed.len() as u8);
    for c in &compressed {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
    }
    for c in &compressed {
        out.extend_from_slice(c);
    }
    let dir = BlockDir {
        offset: 0,
        len: out.len() as u32,
        crc: crc32c::crc32c(&out),
        mask,
        events,
        span,
    };
    (dir, out)
}

fn header(first_seq: u64, block_size: u32, blocks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&block_size.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(blocks as u32).to_le_bytes());
    out.extend_from_slice(&(COLUMN_FIELDS.len() as u32).to_le_bytes());
    for f in COLUMN_FIELDS {
        out.extend_from_slice(&(f.len() as u16).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

fn encode_file(
    first_seq: u64,
    block_size: u32,
    done: Vec<(BlockDir, Vec<u8>)>,
) -> (Vec<u8>, ColumnDir) {
    let mut out = header(first_seq, block_size, done.len());
    let mut offset = (out.len() + done.len() * DIR_ENTRY + 4) as u64;
    let mut blocks = Vec::with_capacity(done.len());
    for (d, payload) in &done {
        let mut d = d.clone();
        d.offset = if payload.is_empty() { 0 } else { offset };
        offset += payload.len() as u64;
        blocks.push(d);
    }
    for d in &blocks {
        out.extend_from_slice(&d.offset.to_le_bytes());
        out.extend_from_slice(&d.len.to_le_bytes());
        out.extend_from_slice(&d.crc.to_le_bytes());
        out.extend_from_slice(&d.mask.to_le_bytes());
        out.extend_from_slice(&d.events.to_le_bytes());
        let ((lo_s, lo_n), (hi_s, hi_n)) = d.span.unwrap_or(((i64::MAX, 0), (i64::MIN, 0)));
        out.extend_from_slice(&lo_s.to_le_bytes());
        out.extend_from_slice(&lo_n.to_le_bytes());
        out.extend_from_slice(&hi_s.to_le_bytes());
        out.extend_from_slice(&hi_n.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (_, payload) in &done {
        out.extend_from_slice(payload);
    }
    let dir = ColumnDir {
        first_seq,
        block_size,
        blocks,
    };
    (out, dir)
}

/// Reads the header and directory of a column file; any damage, another
/// version or another field list is an error, never a partial directory.
pub fn read_dir(path: &Path) -> Result<ColumnDir, IndexError> {
    let corrupt = |why: &str| IndexError::Corrupt(format!("{}: {why}", path.display()));
    let mut f = std::fs::File::open(path).map_err(|e| IndexError::io(path, e))?;
    let size = f.metadata().map_err(|e| IndexError::io(path, e))?.len();
    let fixed = header(0, 0, 0).len() as u64;
    if size < fixed + 4 {
        return Err(corrupt("shorter than a header"));
    }
    let mut head = vec![0u8; fixed as usize];
    f.read_exact(&mut head)
        .map_err(|e| IndexError::io(path, e))?;
    if &head[..8] != MAGIC {
        return Err(corrupt("bad magic: not a Vigil column file"));
    }
    let u32_at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
    let version = u32_at(&head, 8);
    if version != VERSION {
        return Err(corrupt(&format!(
            "format version {version}, expected {VERSION}"
        )));
    }
    let block_size = u32_at(&head, 12);
    let first_seq = u64::from_le_bytes(head[16..24].try_into().unwrap_or([0; 8]));
    let n = u32_at(&head, 24) as usize;
    if head[28..] != header(0, 0, 0)[28..] {
        return Err(corrupt("built with another list of column fields"));
    }
    let dir_len = n
        .checked_mul(DIR_ENTRY)
        .filter(|l| (*l as u64) + fixed + 4 <= size)
        .ok_or_else(|| corrupt("directory longer than the file"))?;
    let mut rest = vec![0u8; dir_len + 4];
    f.read_exact(&mut rest)
        .map_err(|e| IndexError::io(path, e))?;
    let (dir_bytes, crc) = rest.split_at(dir_len);
    let mut body = head.clone();
    body.extend_from_slice(dir_bytes);
    if crc32c::crc32c(&body) != u32_at(crc, 0) {
        return Err(corrupt("checksum mismatch"));
    }
    if block_size == 0 || first_seq == 0 {
        return Err(corrupt("zero block size or first seq"));
    }
    let mut blocks = Vec::with_capacity(n);
    for e in dir_bytes.chunks_exact(DIR_ENTRY) {
        let i64_at = |at: usize| i64::from_le_bytes(e[at..at + 8].try_into().unwrap_or([0; 8]));
        let d = BlockDir {
            offset: u64::from_le_bytes(e[0..8].try_into().unwrap_or([0; 8])),
            len: u32_at(e, 8),
            crc: u32_at(e, 12),
            mask: u32_at(e, 16),
            events: u32_at(e, 20),
            span: {
                let (lo, hi) = ((i64_at(24), u32_at(e, 32)), (i64_at(36), u32_at(e, 44)));
                (lo.0 <= hi.0).then_some((lo, hi))
            },
        };
        if d.offset + u64::from(d.len) > size {
            return Err(corrupt("a block's columns lie past the end of the file"));
        }
        blocks.push(d);
    }
    Ok(ColumnDir {
        first_seq,
        block_size,
        blocks,
    })
}

/// Reusable state for [`read_block`].
pub struct BlockReader {
    zstd: zstd::bulk::Decompressor<'static>,
    payload: Vec<u8>,
}

impl BlockReader {
    /// A reader with a fresh decompression context.
    pub fn new() -> Result<BlockReader, IndexError> {
        let zstd = zstd::bulk::Decompressor::new()
            .map_err(|e| IndexError::Corrupt(format!("zstd: {e}")))?;
        Ok(BlockReader {
            zstd,
            payload: Vec::new(),
        })
    }
}

/// [`read_block_with`] with a fresh [`BlockReader`], reading the time column.
pub fn read_block(
    file: &mut std::fs::File,
    block_first_seq: u64,
    block_size: u32,
    d: &BlockDir,
    want: &[usize],
) -> Result<BlockColumns, IndexError> {
    read_block_with(
        &mut BlockReader::new()?,
        file,
        block_first_seq,
        block_size,
        d,
        want,
        true,
    )
}

/// Reads and decodes the columns of one block: the columns of `want`
/// (indexes into [`COLUMN_FIELDS`]) and, when `times` is set or some seq
/// of the block holds no event, the time column. Without it every seq
/// reads as an event at the block's first second (code 2). Anything that
/// does not check out is an error: the caller then reads the block's
/// events.
pub fn read_block_with(
    rd: &mut BlockReader,
    file: &mut std::fs::File,
    block_first_seq: u64,
    block_size: u32,
    d: &BlockDir,
    want: &[usize],
    times: bool,
) -> Result<BlockColumns, IndexError> {
    let corrupt =
        |why: &str| IndexError::Corrupt(format!("columns of seq {block_first_seq}: {why}"));
    let slots = block_size as usize;
    if d.events == 0 {
        return Ok(BlockColumns {
            times: vec![0; slots],
            base_secs: 0,
            fields: want.iter().map(|_| None).collect(),
        });
    }
    let payload = &mut rd.payload;
    payload.resize(d.len as usize, 0);
    file.seek(SeekFrom::Start(d.offset))
        .and_then(|_| file.read_exact(payload))
        .map_err(|e| corrupt(&e.to_string()))?;
    if crc32c::crc32c(payload) != d.crc {
        return Err(corrupt("checksum mismatch"));
    }
    let zstd = &mut rd.zstd;
    let mut r = Cursor::new(payload, "columns");
    if r.u64()? != block_first_seq {
        return Err(corrupt("the columns belong to another block"));
    }
    let n = r.take(1)?[0] as usize;
    let present: Vec<usize> = (0..COLUMN_FIELDS.len())
        .filter(|i| d.mask & (1 << i) != 0)
        .collect();
    if n != 1 + present.len() {
        return Err(corrupt("section count does not match the directory"));
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(r.u32()? as usize);
    }
    let mut sections = Vec::with_capacity(n);
    for l in lens {
        sections.push(r.take(l)?);
    }
    let mut unzip = |s: &[u8]| {
        zstd.decompress(s, MAX_SECTION)
            .map_err(|e| corrupt(&format!("zstd: {e}")))
    };
    let (times, base_secs) = if times || d.events as usize != slots {
        let time_raw = unzip(sections[0])?;
        let mut t = Cursor::new(&time_raw, "columns");
        let base_secs = t.i64()?;
        (unpack(&mut t, slots)?, base_secs)
    } else {
        (vec![2; slots], 0)
    };
    let mut fields = Vec::with_capacity(want.len());
    for &w in want {
        let Some(k) = present.iter().position(|p| *p == w) else {
            fields.push(None);
            continue;
        };
        let raw = unzip(sections[1 + k])?;
        let mut c = Cursor::new(&raw, "columns");
        let entries = c.u32()? as usize;
        if entries > MAX_DISTINCT {
            return Err(corrupt("dictionary too large"));
        }
        let mut dict = Vec::with_capacity(entries);
        for _ in 0..entries {
            let l = c.u16()? as usize;
            dict.push(c.take(l)?.to_vec());
        }
        let codes = unpack(&mut c, slots)?;
        if codes.iter().any(|x| *x > entries as u64) {
            return Err(corrupt("code outside the dictionary"));
        }
        fields.push(Some(Column {
            dict,
            codes: codes.into_iter().map(|x| x as u32).collect(),
        }));
    }
    Ok(BlockColumns {
        times,
        base_secs,
        fields,
    })
}

/// Appends `width u8` and the values packed at that many bits each, the
/// fewest that hold the largest.
fn pack(values: &[u64], out: &mut Vec<u8>) {
    let max = values.iter().copied().max().unwrap_or(0);
    let width = 64 - max.leading_zeros();
    out.push(width as u8);
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in values {
        acc |= u128::from(v) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

fn unpack(r: &mut Cursor<'_>, n: usize) -> Result<Vec<u64>, IndexError> {
    let width = u32::from(r.take(1)?[0]);
    if width > 64 {
        return Err(IndexError::Corrupt("code width over 64 bits".into()));
    }
    let bytes = (n * width as usize).div_ceil(8);
    let b = r.take(bytes)?;
    let mut out = Vec::with_capacity(n);
    if width == 0 {
        out.resize(n, 0);
        return Ok(out);
    }
    let mask: u128 = (1u128 << width) - 1;
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    let mut it = b.iter();
    for _ in 0..n {
        while bits < width {
            acc |= u128::from(*it.next().unwrap_or(&0)) << bits;
            bits += 8;
        }
        out.push((acc & mask) as u64);
        acc >>= width;
        bits -= width;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_at_every_width() {
        for max in [0u64, 1, 2, 7, 4097, 1 << 33, u64::MAX] {
            let vals: Vec<u64> = (0..37u64)
                .map(|i| if i % 5 == 0 { max } else { i.min(max) })
                .collect();
            let mut out = Vec::new();
            pack(&vals, &mut out);
            let mut r = Cursor::new(&out, "columns");
            assert_eq!(unpack(&mut r, vals.len()).unwrap(), vals, "max {max}");
            assert_eq!(r.at, out.len());
        }
    }

    #[test]
    fn no_column_field_is_a_prefix_of_another() {
        for a in COLUMN_FIELDS {
            for b in COLUMN_FIELDS {
                assert!(a == b || !b.starts_with(&format!("{a}.")), "{a} / {b}");
            }
        }
        assert!(COLUMN_FIELDS.len() <= 32, "the mask has 32 bits");
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use proptest::prelude::*;

    /// JSON texts for a value: plain and escaped strings, integers that do
    /// and do not keep their spelling, floats, literals, arrays, objects.
    fn value() -> impl Strategy<Value = String> {
        prop::sample::select(
            &[
                r#""success""#,
                r#""fail\u0075re""#,
                r#""a\"b""#,
                r#""été""#,
                r#""192.0.2.1""#,
                "200",
                "200.0",
                "-0",
                "007",
                "1e3",
                "123456789012345678901",
                "true",
                "null",
                r#"["web"]"#,
                r#"["web","auth"]"#,
                r#"["web",1]"#,
                "[]",
                r#"{"x":1}"#,
                "{}",
                r#""2024-03-01T00:00:01Z""#,
                r#""2024-03-01T00:00:01.25+02:00""#,
                r#""not a time""#,
                r#""2024-03-01T00:00:0\u0031Z""#,
            ][..],
        )
        .prop_map(str::to_string)
    }

    /// Members of an event: column fields nested or dotted, inside arrays,
    /// repeated, and others.
    fn member() -> impl Strategy<Value = String> {
        (
            prop::sample::select(&["nested", "dotted", "in_array", "time", "other"][..]),
            0..COLUMN_FIELDS.len(),
            value(),
        )
            .prop_map(|(how, f, v)| {
                let (head, tail) = COLUMN_FIELDS[f]
                    .split_once('.')
                    .unwrap_or((COLUMN_FIELDS[f], ""));
                let nest = |path: &str, v: &str| {
                    path.rsplit('.')
                        .fold(v.to_string(), |acc, k| format!(r#"{{"{k}":{acc}}}"#))
                };
                match how {
                    "nested" => format!(r#""{head}":{}"#, nest(tail, &v)),
                    "dotted" => format!(r#""{head}":{{"{tail}":{v}}}"#),
                    "in_array" => format!(r#""{head}":[{}]"#, nest(tail, &v)),
                    "time" => format!(r#""@timestamp":{v}"#),
                    _ => format!(r#""other":{{"{head}":{v}}}"#),
                }
            })
    }

    fn build(events: &[String], walked_path: bool) -> (Vec<u8>, ColumnDir) {
        let mut cols = ColumnBuilder::with_cap(1, 4, 3);
        let mut chunk = crate::ChunkBuilder::new(1, 4);
        let mut walked = Walked::default();
        for (i, e) in events.iter().enumerate() {
            let seq = i as u64 + 1;
            if walked_path {
                walked.clear();
                let (_, facts) = chunk
                    .push_spans(seq, e.as_bytes(), &mut |s| walked.see(s))
                    .expect("in order");
                cols.push_walked(seq, e.as_bytes(), &walked, facts);
            } else {
                cols.push_bytes(seq, e.as_bytes());
            }
        }
        cols.finish(events.len().div_ceil(4))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The shortcut through the walk writes the same column file as
        /// decoding every event.
        #[test]
        fn walked_columns_equal_decoded_columns(
            events in prop::collection::vec(prop::collection::vec(member(), 0..5), 1..14),
        ) {
            let events: Vec<String> = events
                .iter()
                .map(|members| format!("{{{}}}", members.join(",")))
                .collect();
            let (a, da) = build(&events, false);
            let (b, db) = build(&events, true);
            prop_assert_eq!(a, b, "{:?}", events);
            prop_assert_eq!(format!("{da:?}"), format!("{db:?}"));
        }
    }
}
