//! The leaves a block has already been given keys for.
//!
//! A leaf's keys are a pure function of its path and value
//! ([`crate::grams::leaf_keys`]), and a block's filter records the set of
//! its events' keys, so a `(path, value)` pair seen earlier in the same
//! block adds nothing. On simulated telemetry about four in five leaves of
//! a block repeat one seen before (channel names, hosts, users, images,
//! categories), and recognising them by one hash and one comparison is far
//! cheaper than folding, gramming and hashing them again. The comparison is
//! of the bytes themselves, so the set of keys, and the filter, stay exact.

use std::hash::{BuildHasher, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::scan::Leaf;

/// Longest value remembered: longer ones (raw lines, command lines) rarely
/// repeat, and keeping them would only grow the memo.
const MAX_VALUE: usize = 256;

/// Most bytes of paths and values remembered per block; past it leaves are
/// simply keyed again, which is always correct.
const MAX_BYTES: usize = 4 << 20;

/// One remembered leaf: `arena[at..at + path_len]` is its path, the next
/// byte its kind and the rest, up to `at + len`, its text.
struct Entry {
    hash: u64,
    at: u32,
    path_len: u32,
    len: u32,
}

/// The `(path, value)` pairs seen in the current block.
pub(crate) struct LeafMemo {
    table: HashTable<Entry>,
    arena: Vec<u8>,
    state: DefaultHashBuilder,
}

impl Default for LeafMemo {
    fn default() -> Self {
        LeafMemo {
            table: HashTable::new(),
            arena: Vec::new(),
            state: DefaultHashBuilder::default(),
        }
    }
}

impl LeafMemo {
    /// Whether the leaf still needs its keys: `false` when the same path
    /// held the same value earlier in the block (or the leaf has no keys),
    /// `true` otherwise, remembering it while there is room.
    pub(crate) fn is_new(&mut self, path: &str, leaf: Leaf<'_>) -> bool {
        let (kind, text): (u8, &str) = match leaf {
            Leaf::Str(s) => (b's', s),
            Leaf::Num(t) => (b'n', t),
            Leaf::Bool(true) => (b'b', "true"),
            Leaf::Bool(false) => (b'b', "false"),
            Leaf::Null => return false,
        };
        let (path, text) = (path.as_bytes(), text.as_bytes());
        let len = path.len() + 1 + text.len();
        if text.len() > MAX_VALUE {
            return true;
        }
        let mut h = self.state.build_hasher();
        h.write(path);
        h.write_u8(kind);
        h.write(text);
        let hash = h.finish();
        let arena = &self.arena;
        let same = |e: &Entry| {
            let at = e.at as usize;
            let p = e.path_len as usize;
            e.hash == hash
                && e.len as usize == len
                && &arena[at..at + p] == path
                && arena[at + p] == kind
                && &arena[at + p + 1..at + len] == text
        };
        if self.table.find(hash, same).is_some() {
            return false;
        }
        if self.arena.len() + len > MAX_BYTES {
            return true;
        }
        // Both fit in u32: the arena never exceeds MAX_BYTES.
        let entry = Entry {
            hash,
            at: self.arena.len() as u32,
            path_len: path.len() as u32,
            len: len as u32,
        };
        self.arena.extend_from_slice(path);
        self.arena.push(kind);
        self.arena.extend_from_slice(text);
        self.table.insert_unique(hash, entry, |e| e.hash);
        true
    }

    /// Forgets every leaf, for the next block.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.arena.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_new_once_per_block() {
        let mut m = LeafMemo::default();
        assert!(m.is_new("a", Leaf::Str("x")));
        assert!(!m.is_new("a", Leaf::Str("x")));
        // Another path, kind or value is another leaf.
        assert!(m.is_new("b", Leaf::Str("x")));
        assert!(m.is_new("a", Leaf::Num("1")));
        assert!(m.is_new("a", Leaf::Str("1")));
        assert!(!m.is_new("a", Leaf::Num("1")));
        assert!(m.is_new("a", Leaf::Bool(true)));
        assert!(m.is_new("a", Leaf::Str("true")));
        // Where the path ends is part of the pair.
        assert!(m.is_new("ab", Leaf::Str("c")));
        assert!(m.is_new("a", Leaf::Str("bc")));
        // Null has no keys at all.
        assert!(!m.is_new("a", Leaf::Null));
        m.clear();
        assert!(m.is_new("a", Leaf::Str("x")));
    }

    #[test]
    fn long_values_and_a_full_memo_are_always_new() {
        let mut m = LeafMemo::default();
        let long = "x".repeat(MAX_VALUE + 1);
        assert!(m.is_new("a", Leaf::Str(&long)));
        assert!(m.is_new("a", Leaf::Str(&long)));
        let v = "y".repeat(MAX_VALUE);
        let mut stored = 0;
        for i in 0..MAX_BYTES / MAX_VALUE {
            let before = m.arena.len();
            assert!(m.is_new(&format!("p{i}"), Leaf::Str(&v)));
            if m.arena.len() == before {
                break;
            }
            stored += 1;
        }
        assert!(stored > 1000 && m.arena.len() <= MAX_BYTES, "{stored}");
        // Once full, a pair is keyed every time it comes.
        assert!(m.is_new("q", Leaf::Str(&v)));
        assert!(m.is_new("q", Leaf::Str(&v)));
        // What was remembered before still is.
        assert!(!m.is_new("p0", Leaf::Str(&v)));
    }
}
