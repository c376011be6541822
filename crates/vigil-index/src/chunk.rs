//! One index file: the blocks of a run of consecutive seqs.
//!
//! A chunk covers `block_size × blocks` seqs starting at `first_seq`; block
//! `b` covers `first_seq + b·block_size ..` the next `block_size` seqs, so a
//! block's range follows from its position and gaps (seqs removed by
//! retention) need no bookkeeping. Each block records how many events it
//! saw, the span of their `@timestamp`s, and a Bloom filter of their
//! trigrams.
//!
//! File layout (little-endian), checked by a trailing crc32c:
//!
//! ```text
//! magic "VIGILIDX" | version u32 | block_size u32 | first_seq u64 | blocks u32
//! per block: events u32 | min_ms i64 | max_ms i64 | words u32 | words × u64
//! crc32c u32 (of everything before it)
//! ```

use vigil_event::Event;

use crate::bloom::{mix, Bloom};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::cursor::Cursor;
use crate::grams::{
    event_leaves_spans, has_value_key, leaf_keys_keyed, Gram, FIVE_GRAM_BIT, VALUE_KEY_BIT,
};
use crate::leaf_memo::LeafMemo;
use crate::scan::{Span, WalkFacts};
use crate::IndexError;

const MAGIC: &[u8; 8] = b"VIGILIDX";
/// 2: address five-grams in the filters; a version 1 file lacks them, so
/// a search needing them would skip its blocks wrongly: it is rebuilt.
/// 3: filters of any whole number of words with multiply-shift bit
/// positions (a version 2 filter read so would answer wrongly), and no value
/// keys for [`crate::grams::UNKEYED_FIELDS`].
const VERSION: u32 = 3;
/// Most words one block's filter may have when read back: a corrupt length
/// must not make a reader allocate gigabytes.
const MAX_WORDS: usize = 1 << 22;

/// What one block knows about its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Events indexed in the block (fewer than the block size at gaps).
    pub events: u32,
    /// Earliest `@timestamp` in milliseconds; `i64::MAX` when none had one.
    pub min_ms: i64,
    /// Latest `@timestamp` in milliseconds; `i64::MIN` when none had one.
    pub max_ms: i64,
    /// The block's trigrams.
    pub bloom: Bloom,
}

impl Block {
    /// A block without events.
    pub fn empty() -> Block {
        Block {
            events: 0,
            min_ms: i64::MAX,
            max_ms: i64::MIN,
            bloom: Bloom::with_keys(0),
        }
    }

    /// Whether the block has an event whose time may lie in `[since, until)`
    /// (milliseconds, floored). Events without a time never match a time
    /// filter, so a block without any is skipped when one is given.
    pub fn may_overlap(&self, since_ms: Option<i64>, until_ms: Option<i64>) -> bool {
        if since_ms.is_none() && until_ms.is_none() {
            return true;
        }
        since_ms.is_none_or(|s| self.max_ms >= s) && until_ms.is_none_or(|u| self.min_ms <= u)
    }

    /// Whether the block's filter may hold the key.
    pub fn may_have(&self, key: u64) -> bool {
        self.bloom.may_contain(mix(key))
    }
}

/// The index of a run of consecutive seqs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// First seq covered.
    pub first_seq: u64,
    /// Seqs per block.
    pub block_size: u32,
    /// The blocks, in seq order.
    pub blocks: Vec<Block>,
}

impl Chunk {
    /// Last seq covered.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.blocks.len() as u64 * u64::from(self.block_size) - 1
    }

    /// The seqs of block `i`.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let lo = self.first_seq + i as u64 * u64::from(self.block_size);
        (lo, lo + u64::from(self.block_size) - 1)
    }

    /// The file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let words: usize = self.blocks.iter().map(|b| b.bloom.words().len()).sum();
        let mut out = Vec::with_capacity(32 + self.blocks.len() * 24 + words * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.block_size.to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.events.to_le_bytes());
            out.extend_from_slice(&b.min_ms.to_le_bytes());
            out.extend_from_slice(&b.max_ms.to_le_bytes());
            out.extend_from_slice(&(b.bloom.words().len() as u32).to_le_bytes());
            for w in b.bloom.words() {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads file bytes; any damage is an error, never a partial index.
    pub fn decode(bytes: &[u8]) -> Result<Chunk, IndexError> {
        let corrupt = |why: &str| IndexError::Corrupt(why.to_string());
        if bytes.len() < 32 {
            return Err(corrupt("shorter than a header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Cursor::new(body, "index file");
        if r.take(8)? != MAGIC {
            return Err(corrupt("bad magic: not a Vigil index file"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(IndexError::Corrupt(format!(
                "format version {version}, expected {VERSION}"
            )));
        }
        let block_size = r.u32()?;
        let first_seq = r.u64()?;
        let n = r.u32()? as usize;
        if block_size == 0 || first_seq == 0 {
            return Err(corrupt("zero block size or first seq"));
        }
        let mut blocks = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let events = r.u32()?;
            let min_ms = r.i64()?;
            let max_ms = r.i64()?;
            let nw = r.u32()? as usize;
            if nw > MAX_WORDS {
                return Err(corrupt("block filter too large"));
            }
            let mut words = Vec::with_capacity(nw);
            for _ in 0..nw {
                words.push(r.u64()?);
            }
            let bloom =
                Bloom::from_words(words).ok_or_else(|| corrupt("block filter has no words"))?;
            blocks.push(Block {
                events,
                min_ms,
                max_ms,
                bloom,
            });
        }
        if r.at != body.len() {
            return Err(corrupt("trailing bytes after the last block"));
        }
        Ok(Chunk {
            first_seq,
            block_size,
            blocks,
        })
    }
}

/// Builds a chunk from events pushed in seq order.
pub struct ChunkBuilder {
    chunk: Chunk,
    current: BlockBuilder,
}

struct BlockBuilder {
    events: u32,
    min_ms: i64,
    max_ms: i64,
    /// One bit per possible trigram (2 MiB): set-insert is a bit test,
    /// which matters at thousands of trigrams per event.
    seen: Box<[u64; SEEN_WORDS]>,
    /// The trigrams set in `seen`, to size the filter and clear the bits.
    grams: Vec<Gram>,
    /// Field-value and address five-gram keys: far fewer distinct ones
    /// than occurrences.
    values: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    /// The leaves whose keys are already in `grams` and `values`.
    memo: LeafMemo,
}

/// Words of the bitmap of every trigram (2^24 bits).
const SEEN_WORDS: usize = (1 << 24) / 64;

/// The word of trigram `g` in that bitmap. Trigrams are three bytes, so the
/// mask changes nothing but lets the index go unchecked, in a loop run
/// for nearly every byte indexed.
fn seen_word(g: Gram) -> usize {
    (g as usize & 0x00ff_ffff) / 64
}

/// The hasher of the value and five-gram keys: they are already spread
/// (FNV-1a) or short (packed bytes), so one mixing round does what SipHash
/// did at a fraction of its cost on the per-event indexing path.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // hashbrown takes its bucket from the low bits and its tag from the
        // high ones: FNV's low bits are weak and five-gram keys are packed
        // ASCII, so both get one multiply-xorshift round.
        mix(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, k: u64) {
        self.0 = k;
    }
}

impl BlockBuilder {
    fn new() -> Self {
        BlockBuilder {
            events: 0,
            min_ms: i64::MAX,
            max_ms: i64::MIN,
            // Made on the heap: as an array value it would pass the stack.
            seen: vec![0; SEEN_WORDS]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("made with SEEN_WORDS words")),
            grams: Vec::new(),
            values: HashSet::default(),
            memo: LeafMemo::default(),
        }
    }

    fn finish(&mut self) -> Block {
        let mut bloom = Bloom::with_keys(self.grams.len() + self.values.len());
        for g in self.grams.drain(..) {
            bloom.insert(mix(u64::from(g)));
            self.seen[seen_word(g)] &= !(1 << (g % 64));
        }
        for k in self.values.drain() {
            bloom.insert(mix(k));
        }
        self.memo.clear();
        let b = Block {
            events: self.events,
            min_ms: self.min_ms,
            max_ms: self.max_ms,
            bloom,
        };
        self.events = 0;
        self.min_ms = i64::MAX;
        self.max_ms = i64::MIN;
        b
    }
}

impl ChunkBuilder {
    /// A builder for the chunk starting at `first_seq`.
    pub fn new(first_seq: u64, block_size: u32) -> ChunkBuilder {
        ChunkBuilder {
            chunk: Chunk {
                first_seq,
                block_size: block_size.max(1),
                blocks: Vec::new(),
            },
            current: BlockBuilder::new(),
        }
    }

    /// Adds the event stored at `seq`; seqs must increase and not precede
    /// the chunk.
    pub fn push(&mut self, seq: u64, ev: &Event) -> Result<(), IndexError> {
        self.push_bytes(seq, &ev.canonical_bytes()).map(|_| ())
    }

    /// Adds the stored bytes of the event at `seq`; returns `false` when
    /// they are not a readable event (the search skips those too).
    pub fn push_bytes(&mut self, seq: u64, payload: &[u8]) -> Result<bool, IndexError> {
        self.push_spans(seq, payload, &mut |_| {})
            .map(|(readable, _)| readable)
    }

    /// [`Self::push_bytes`], also lending `g` the spans of the walk and
    /// returning its facts (see [`crate::grams::event_keys_spans`]).
    pub fn push_spans(
        &mut self,
        seq: u64,
        payload: &[u8],
        g: &mut impl FnMut(Span<'_>),
    ) -> Result<(bool, Option<WalkFacts>), IndexError> {
        let bs = u64::from(self.chunk.block_size);
        let pos = seq
            .checked_sub(self.chunk.first_seq)
            .ok_or(IndexError::OutOfOrder(seq))?;
        let block = (pos / bs) as usize;
        if block < self.chunk.blocks.len() {
            return Err(IndexError::OutOfOrder(seq));
        }
        while self.chunk.blocks.len() < block {
            let b = self.current.finish();
            self.chunk.blocks.push(b);
        }
        let cur = &mut self.current;
        cur.events += 1;
        let (seen, grams, values) = (&mut cur.seen, &mut cur.grams, &mut cur.values);
        let memo = &mut cur.memo;
        let mut add = |k: u64| {
            if k & (VALUE_KEY_BIT | FIVE_GRAM_BIT) != 0 {
                values.insert(k);
            } else {
                let g = k as Gram;
                let (w, bit) = (seen_word(g), 1u64 << (g % 64));
                if seen[w] & bit == 0 {
                    seen[w] |= bit;
                    grams.push(g);
                }
            }
        };
        let (keys, facts) = event_leaves_spans(
            payload,
            &mut |path, leaf| {
                // Unkeyed fields hold nearly unique values (times, seqs,
                // raw lines): remembering them would only crowd the memo.
                let keyed = has_value_key(path);
                if !keyed || memo.is_new(path, leaf) {
                    leaf_keys_keyed(path, keyed, leaf, &mut add);
                }
            },
            g,
        );
        if let Some(ms) = keys.time_ms {
            cur.min_ms = cur.min_ms.min(ms);
            cur.max_ms = cur.max_ms.max(ms);
        }
        Ok((!keys.undecodable, facts))
    }

    /// The chunk with `blocks` blocks (trailing empty ones for seqs never
    /// pushed, e.g. removed by retention).
    pub fn finish(mut self, blocks: usize) -> Chunk {
        while self.chunk.blocks.len() < blocks {
            let b = self.current.finish();
            self.chunk.blocks.push(b);
        }
        self.chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: serde_json::Value) -> Event {
        Event::from_json(v, 32).expect("event")
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let mut b = ChunkBuilder::new(1, 2);
        b.push(
            1,
            &ev(json!({"@timestamp": "2024-03-01T00:00:00Z", "m": "alpha"})),
        )
        .unwrap();
        b.push(4, &ev(json!({"m": "beta"}))).unwrap();
        assert!(matches!(
            b.push(2, &ev(json!({}))),
            Err(IndexError::OutOfOrder(2))
        ));
        let c = b.finish(3);
        assert_eq!(c.blocks.len(), 3);
        assert_eq!(c.last_seq(), 6);
        assert_eq!(c.block_range(1), (3, 4));
        assert_eq!(c.blocks[0].events, 1);
        assert_eq!(c.blocks[2].events, 0);
        assert_eq!(c.blocks[1].min_ms, i64::MAX);
        let bytes = c.encode();
        assert_eq!(Chunk::decode(&bytes).unwrap(), c);
        for cut in [0, 10, bytes.len() - 1] {
            assert!(Chunk::decode(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(matches!(
            Chunk::decode(&flipped),
            Err(IndexError::Corrupt(_))
        ));
    }

    #[test]
    fn a_repeated_leaf_is_keyed_in_every_block_it_occurs_in() {
        // Repeats within a block are skipped; the next block starts afresh.
        let mut b = ChunkBuilder::new(1, 2);
        let e = ev(json!({"user": {"name": "Mallory"}, "n": 7}));
        for seq in 1..=5 {
            b.push(seq, &e).unwrap();
        }
        let c = b.finish(3);
        let mut want = Vec::new();
        crate::grams::event_keys(&e.canonical_bytes(), &mut |k| want.push(k));
        assert!(want.contains(&crate::grams::value_key("user.name", "mallory")));
        for (i, block) in c.blocks.iter().enumerate() {
            assert!(want.iter().all(|k| block.may_have(*k)), "block {i}");
        }
        // The same keys, so the same filter, whether seen once or twice.
        let mut once = ChunkBuilder::new(1, 2);
        once.push(1, &e).unwrap();
        assert_eq!(once.finish(1).blocks[0].bloom, c.blocks[0].bloom);
    }

    #[test]
    fn time_overlap_is_inclusive_and_needs_a_time() {
        let mut b = ChunkBuilder::new(1, 4);
        b.push(1, &ev(json!({"@timestamp": "2024-03-01T00:00:01Z"})))
            .unwrap();
        b.push(2, &ev(json!({"@timestamp": "2024-03-01T00:00:03Z"})))
            .unwrap();
        b.push(5, &ev(json!({"m": "no time"}))).unwrap();
        let c = b.finish(2);
        let s = 1_709_251_201_000i64;
        assert!(c.blocks[0].may_overlap(Some(s + 2000), None));
        assert!(!c.blocks[0].may_overlap(Some(s + 2001), None));
        assert!(c.blocks[0].may_overlap(None, Some(s)));
        assert!(!c.blocks[0].may_overlap(None, Some(s - 1)));
        assert!(c.blocks[1].may_overlap(None, None));
        assert!(!c.blocks[1].may_overlap(Some(0), None));
    }
}
