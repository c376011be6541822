//! The index directory: chunk files built from the ledger, and the seq
//! ranges a search must read.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vigil_ledger::LedgerReader;
use vigil_query::exec::{Answerer, SearchError, SearchParams, SearchResult};
use vigil_query::Search;

use crate::chunk::{Block, Chunk, ChunkBuilder};
use crate::columns::{read_dir, ColumnBuilder, ColumnDir};
use crate::plan::Need;
use crate::pushdown::{ColumnAnswerer, ColumnPlan, SnapBlock};
use crate::walked::Walked;
use crate::IndexError;

const SUFFIX: &str = ".vidx";
const TMP_SUFFIX: &str = ".vidx.tmp";
const COL_SUFFIX: &str = ".vcol";
const COL_TMP_SUFFIX: &str = ".vcol.tmp";

/// A chunk made by [`build_chunk`], ready for [`Index::install`]: its
/// filters and its column file.
#[derive(Debug, Clone)]
pub struct Built {
    /// The block filters.
    pub chunk: Chunk,
    columns: Vec<u8>,
    dir: ColumnDir,
}

impl Built {
    /// Bytes of the column file.
    pub fn column_bytes(&self) -> usize {
        self.columns.len()
    }

    /// The column file as it will be written.
    pub fn column_file(&self) -> &[u8] {
        &self.columns
    }
}

/// What a search takes from the index, in one go, so that no lock is held
/// while it runs: the seqs to read and, for an aggregation the columns can
/// answer, what answers it. Run it with [`run_prepared`].
#[derive(Debug)]
pub struct Prepared {
    /// The seq ranges that may hold a match.
    pub candidates: Candidates,
    /// Answers whole blocks from their columns, when the search qualifies
    /// ([`ColumnPlan::of`]).
    pub answerer: Option<ColumnAnswerer>,
}

/// Runs `s` over the ledger in `ledger_dir`, reading only the candidate
/// seqs of `prepared` and answering from columns what they can answer.
/// The result equals a full scan's; `from_columns` counts the events that
/// were not read.
pub fn run_prepared(
    ledger_dir: &Path,
    s: &Search,
    params: &SearchParams,
    prepared: Prepared,
) -> Result<SearchResult, SearchError> {
    let params = SearchParams {
        ranges: Some(prepared.candidates.ranges),
        ..params.clone()
    };
    let mut answerer = prepared.answerer;
    let a = answerer.as_mut().map(|a| a as &mut dyn Answerer);
    vigil_query::exec::run_with(ledger_dir, s, &params, a)
}

/// How seqs are grouped into blocks and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOptions {
    /// Seqs per block: the unit a search skips or reads.
    pub block_size: u32,
    /// Blocks per file: a file is written once all its seqs are durable.
    pub blocks_per_chunk: u32,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            // The ledger starts its compressed frames at these block
            // starts, so reading a block decompresses only its own frame.
            block_size: vigil_ledger::FRAME_ALIGN_SEQS as u32,
            blocks_per_chunk: 64,
        }
    }
}

impl IndexOptions {
    /// Events per index file: `block_size × blocks_per_chunk`.
    pub fn chunk_len(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.blocks_per_chunk)
    }
}

/// What [`Index::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Files read.
    pub loaded: usize,
    /// Damaged or foreign files removed, each with the reason; their seqs
    /// are rebuilt from the ledger by the next [`Index::build`].
    pub discarded: Vec<(PathBuf, String)>,
}

/// What [`Index::build`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// Files written.
    pub chunks: usize,
    /// Events indexed.
    pub events: u64,
    /// Events that could not be decoded (indexed as text-less; the search
    /// skips them too).
    pub undecodable: u64,
}

/// The seq ranges a search has to read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// Inclusive seq ranges in increasing order, adjacent ones merged.
    pub ranges: Vec<(u64, u64)>,
    /// Indexed blocks considered.
    pub blocks: u64,
    /// Of those, blocks skipped because they cannot hold a match.
    pub skipped: u64,
}

impl Candidates {
    fn add(&mut self, lo: u64, hi: u64) {
        if lo > hi {
            return;
        }
        match self.ranges.last_mut() {
            Some(last) if last.1.saturating_add(1) >= lo => last.1 = last.1.max(hi),
            _ => self.ranges.push((lo, hi)),
        }
    }

    /// Seqs to read in all.
    pub fn seqs(&self) -> u64 {
        self.ranges.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }
}

/// Reads the records of the chunk starting at `first` from the ledger and
/// indexes them. Takes no lock on an [`Index`], so a server can build while
/// searches read the index, then [`Index::install`] the result.
pub fn build_chunk(
    ledger_dir: &Path,
    opts: IndexOptions,
    first: u64,
) -> Result<(Built, BuildReport), IndexError> {
    build_chunk_with_cap(ledger_dir, opts, first, crate::columns::MAX_DISTINCT)
}

/// Builds the chunks starting at `firsts`, up to `threads` at once (each
/// chunk is independent: its own ledger reader and builders), and hands
/// each to `done` in the order of `firsts`, a group at a time, so at most
/// `threads` built chunks are held in memory. Stops at the first error of
/// a build or of `done`.
pub fn build_chunks(
    ledger_dir: &Path,
    opts: IndexOptions,
    firsts: &[u64],
    threads: usize,
    mut done: impl FnMut(u64, Built, BuildReport) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    for group in firsts.chunks(threads.max(1)) {
        let results: Vec<Result<(Built, BuildReport), IndexError>> = if group.len() == 1 {
            vec![build_chunk(ledger_dir, opts, group[0])]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|&first| s.spawn(move || build_chunk(ledger_dir, opts, first)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(IndexError::Corrupt("an index build thread panicked".into()))
                        })
                    })
                    .collect()
            })
        };
        for (&first, r) in group.iter().zip(results) {
            let (built, report) = r?;
            done(first, built, report)?;
        }
    }
    Ok(())
}

/// Threads for building a backlog of chunks: the machine's cores, at most 4.
pub fn build_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// [`build_chunk`] with at most `cap` distinct values per field and block
/// in the columns (a field with more gets no column in that block).
pub fn build_chunk_with_cap(
    ledger_dir: &Path,
    opts: IndexOptions,
    first: u64,
    cap: usize,
) -> Result<(Built, BuildReport), IndexError> {
    let len = opts.chunk_len();
    let mut report = BuildReport::default();
    let reader = LedgerReader::open(ledger_dir)?;
    let mut b = ChunkBuilder::new(first, opts.block_size);
    let mut cols = ColumnBuilder::with_cap(first, opts.block_size, cap);
    let mut failed = None;
    let mut walked = Walked::default();
    let _flow = reader.for_each_range(first, first + len - 1, |seq, payload| {
        walked.clear();
        match b.push_spans(seq, payload, &mut |s| walked.see(s)) {
            Ok((readable, facts)) => {
                cols.push_walked(seq, payload, &walked, facts);
                report.events += 1;
                report.undecodable += u64::from(!readable);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    report.chunks = 1;
    let blocks = opts.blocks_per_chunk as usize;
    let (columns, dir) = cols.finish(blocks);
    let built = Built {
        chunk: b.finish(blocks),
        columns,
        dir,
    };
    Ok((built, report))
}

/// The derived index of one ledger: chunk files under one directory.
///
/// It is never the source of truth: a missing or damaged file only means
/// its seqs are read in full until it is rebuilt.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    opts: IndexOptions,
    /// Chunks by position (`first_seq = k × chunk_len + 1`); `None` where
    /// no file exists yet.
    chunks: Vec<Option<Chunk>>,
    /// Column directories (and file), by the same positions.
    columns: Vec<Option<(Arc<PathBuf>, ColumnDir)>>,
}

impl Index {
    /// Opens (creating) the directory and reads every chunk file. Files that
    /// fail their checksum, do not parse, or were built with other options
    /// are deleted and reported, never trusted.
    pub fn open(dir: &Path, opts: IndexOptions) -> Result<(Index, OpenReport), IndexError> {
        if opts.block_size == 0 || opts.blocks_per_chunk == 0 {
            return Err(IndexError::Options(
                "block_size and blocks_per_chunk must be at least 1".to_string(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let mut index = Index {
            dir: dir.to_path_buf(),
            opts,
            chunks: Vec::new(),
            columns: Vec::new(),
        };
        let mut report = OpenReport::default();
        let entries = fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IndexError::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_SUFFIX) || name.ends_with(COL_TMP_SUFFIX) {
                // A write that died before its rename.
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(SUFFIX) {
                continue;
            }
            // A chunk is used only with its columns: a filter file without
            // them (an index from before columns, or a damaged column file)
            // is discarded, so that the chunk is built again whole.
            let col_path = path.with_extension(&COL_SUFFIX[1..]);
            let verdict = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| Chunk::decode(&b).map_err(|e| e.to_string()))
                .and_then(|c| {
                    let cols = read_dir(&col_path).map_err(|e| format!("columns: {e}"))?;
                    if cols.first_seq != c.first_seq
                        || cols.block_size != c.block_size
                        || cols.blocks.len() != c.blocks.len()
                    {
                        return Err("columns: built with another block layout".to_string());
                    }
                    index.place(c, Some((Arc::new(col_path.clone()), cols)))
                });
            match verdict {
                Ok(()) => report.loaded += 1,
                Err(why) => {
                    let _ = fs::remove_file(&path);
                    let _ = fs::remove_file(&col_path);
                    report.discarded.push((path, why));
                }
            }
        }
        Ok((index, report))
    }

    /// Puts a read chunk in its slot, refusing one that does not fit the layout.
    fn place(&mut self, c: Chunk, cols: Option<(Arc<PathBuf>, ColumnDir)>) -> Result<(), String> {
        let len = self.opts.chunk_len();
        if c.block_size != self.opts.block_size
            || c.blocks.len() != self.opts.blocks_per_chunk as usize
            || !(c.first_seq - 1).is_multiple_of(len)
        {
            return Err("built with another block layout".to_string());
        }
        let k = ((c.first_seq - 1) / len) as usize;
        if self.chunks.len() <= k {
            self.chunks.resize(k + 1, None);
            self.columns.resize(k + 1, None);
        }
        self.chunks[k] = Some(c);
        self.columns[k] = cols;
        Ok(())
    }

    /// The options the index was opened with.
    pub fn options(&self) -> IndexOptions {
        self.opts
    }

    /// Highest seq such that every chunk up to it is indexed.
    pub fn covered(&self) -> u64 {
        let n = self.chunks.iter().take_while(|c| c.is_some()).count() as u64;
        n * self.opts.chunk_len()
    }

    /// Chunk files present.
    pub fn chunk_count(&self) -> usize {
        self.chunks.iter().flatten().count()
    }

    /// Bytes of the filters and column directories held in memory (the
    /// columns themselves stay on disk).
    pub fn memory_bytes(&self) -> usize {
        let filters: usize = self
            .chunks
            .iter()
            .flatten()
            .flat_map(|c| &c.blocks)
            .map(|b| b.bloom.words().len() * 8 + 24)
            .sum();
        let dirs: usize = self
            .columns
            .iter()
            .flatten()
            .map(|(_, d)| d.blocks.len() * std::mem::size_of::<crate::columns::BlockDir>())
            .sum();
        filters + dirs
    }

    /// Indexes every chunk whose seqs are all at or below `durable` and that
    /// has no file yet, reading the records from the ledger.
    pub fn build(&mut self, ledger_dir: &Path, durable: u64) -> Result<BuildReport, IndexError> {
        let mut report = BuildReport::default();
        let missing = self.missing(durable);
        let opts = self.opts;
        build_chunks(
            ledger_dir,
            opts,
            &missing,
            build_threads(),
            |_, built, r| {
                self.install(built)?;
                report.chunks += 1;
                report.events += r.events;
                report.undecodable += r.undecodable;
                Ok(())
            },
        )?;
        Ok(report)
    }

    /// First seqs of the chunks that could be built (all their seqs are at
    /// or below `durable`) but have no file, oldest first.
    pub fn missing(&self, durable: u64) -> Vec<u64> {
        let len = self.opts.chunk_len();
        (0..durable / len)
            .filter(|k| self.chunks.get(*k as usize).is_none_or(|c| c.is_none()))
            .map(|k| k * len + 1)
            .collect()
    }

    /// Writes a chunk made by [`build_chunk`] and starts using it.
    pub fn install(&mut self, built: Built) -> Result<(), IndexError> {
        // Columns first: a filter file is only trusted with its columns.
        let col_path = self.write_columns(built.chunk.first_seq, &built.columns)?;
        self.write(&built.chunk)?;
        self.place(built.chunk, Some((Arc::new(col_path), built.dir)))
            .map_err(IndexError::Corrupt)
    }

    fn write(&self, c: &Chunk) -> Result<(), IndexError> {
        let path = self.dir.join(format!("{:020}{SUFFIX}", c.first_seq));
        let tmp = self.dir.join(format!("{:020}{TMP_SUFFIX}", c.first_seq));
        fs::write(&tmp, c.encode()).map_err(|e| IndexError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        Ok(())
    }

    fn write_columns(&self, first_seq: u64, bytes: &[u8]) -> Result<PathBuf, IndexError> {
        let path = self.dir.join(format!("{first_seq:020}{COL_SUFFIX}"));
        let tmp = self.dir.join(format!("{first_seq:020}{COL_TMP_SUFFIX}"));
        fs::write(&tmp, bytes).map_err(|e| IndexError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        Ok(path)
    }

    /// Empties the chunks whose seqs all lie below `first_kept` (their
    /// segments were removed by retention), so their filters stop taking
    /// memory and disk; returns how many were emptied.
    pub fn forget_below(&mut self, first_kept: u64) -> Result<usize, IndexError> {
        let mut emptied = Vec::new();
        for c in self.chunks.iter_mut().flatten() {
            if c.last_seq() < first_kept && c.blocks.iter().any(|b| b.events > 0) {
                for b in &mut c.blocks {
                    *b = Block::empty();
                }
                emptied.push(c.clone());
            }
        }
        let len = self.opts.chunk_len();
        for c in &emptied {
            let (bytes, dir) = ColumnBuilder::empty(c.first_seq, c.block_size, c.blocks.len());
            let col_path = self.write_columns(c.first_seq, &bytes)?;
            self.write(c)?;
            let k = ((c.first_seq - 1) / len) as usize;
            if let Some(slot) = self.columns.get_mut(k) {
                *slot = Some((Arc::new(col_path), dir));
            }
        }
        Ok(emptied.len())
    }

    /// What a search of `s` over seqs `from..=to` with times in
    /// `[since, until)` takes from the index (see [`Prepared`]).
    pub fn prepare(
        &self,
        s: &Search,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        from: u64,
        to: u64,
    ) -> Prepared {
        let need = Need::of(&s.query.root);
        let candidates = self.candidates(
            &need,
            since.map(|t| t.timestamp_millis()),
            until.map(|t| t.timestamp_millis()),
            from,
            to,
        );
        let answerer = ColumnPlan::of(s, since, until).map(|plan| {
            let mut blocks = Vec::new();
            for (path, dir) in self.columns.iter().flatten() {
                for (i, d) in dir.blocks.iter().enumerate() {
                    let lo = dir.first_seq + i as u64 * u64::from(dir.block_size);
                    let hi = lo + u64::from(dir.block_size) - 1;
                    if d.events > 0 && hi >= from && lo <= to {
                        blocks.push(SnapBlock {
                            lo,
                            hi,
                            file: path.clone(),
                            dir: d.clone(),
                        });
                    }
                }
            }
            ColumnAnswerer::new(plan, self.opts.block_size, blocks)
        });
        Prepared {
            candidates,
            answerer,
        }
    }

    /// The seq ranges within `from..=to` that may hold events matching
    /// `need` with a time in `[since_ms, until_ms)`; seqs the index does not
    /// cover are always included.
    pub fn candidates(
        &self,
        need: &Need,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        from: u64,
        to: u64,
    ) -> Candidates {
        let mut out = Candidates::default();
        if from > to {
            return out;
        }
        let len = self.opts.chunk_len();
        let mut at = from;
        while at <= to {
            let k = ((at - 1) / len) as usize;
            let chunk_end = (k as u64 + 1) * len;
            let end = chunk_end.min(to);
            match self.chunks.get(k).and_then(Option::as_ref) {
                None => out.add(at, end),
                Some(c) => {
                    let bs = u64::from(c.block_size);
                    let first_block = ((at - c.first_seq) / bs) as usize;
                    let last_block = ((end - c.first_seq) / bs) as usize;
                    for i in first_block..=last_block {
                        let b = &c.blocks[i];
                        out.blocks += 1;
                        let keep = b.events > 0
                            && b.may_overlap(since_ms, until_ms)
                            && need.admits(&|g| b.may_have(g));
                        if keep {
                            let (lo, hi) = c.block_range(i);
                            out.add(lo.max(at), hi.min(end));
                        } else {
                            out.skipped += 1;
                        }
                    }
                }
            }
            at = end + 1;
        }
        out
    }
}
