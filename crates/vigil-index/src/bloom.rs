//! A fixed-layout Bloom filter over 64-bit keys.
//!
//! The bit positions are a pure function of the key and the filter size
//! (double hashing of one 64-bit mix, mapped onto the filter by the high
//! bits of a 128-bit product), so a filter written by one build of Vigil
//! reads the same in any other: nothing depends on a hasher whose output
//! may change between Rust versions.

/// Probes per key: the best count for [`BITS_PER_KEY`] (12 · ln 2 ≈ 8.3),
/// for a false-positive rate near 0.3 %.
pub(crate) const PROBES: u32 = 8;
/// Bits reserved per distinct key. The filter is sized to exactly this, not
/// rounded to a power of two: rounding gave blocks anywhere between 10 and
/// 20 bits per key, so both the space and the false-positive rate depended
/// on where a block's key count fell.
const BITS_PER_KEY: usize = 12;
/// Smallest filter, in 64-bit words.
const MIN_WORDS: usize = 8;

/// A Bloom filter of a whole number of 64-bit words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    /// An empty filter sized for `keys` distinct keys.
    pub fn with_keys(keys: usize) -> Bloom {
        let bits = keys.saturating_mul(BITS_PER_KEY).max(MIN_WORDS * 64);
        Bloom {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    /// A filter from stored words; `None` when there are none.
    pub fn from_words(words: Vec<u64>) -> Option<Bloom> {
        (!words.is_empty()).then_some(Bloom { words })
    }

    /// The stored words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Adds a key.
    pub fn insert(&mut self, key: u64) {
        let bits = self.words.len() as u64 * 64;
        let (mut h, step) = split(key);
        for _ in 0..PROBES {
            let bit = reduce(h, bits);
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
            h = h.wrapping_add(step);
        }
    }

    /// Whether the key may have been added (false means certainly not).
    pub fn may_contain(&self, key: u64) -> bool {
        let bits = self.words.len() as u64 * 64;
        let (mut h, step) = split(key);
        for _ in 0..PROBES {
            let bit = reduce(h, bits);
            if self.words[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
                return false;
            }
            h = h.wrapping_add(step);
        }
        true
    }
}

/// Maps a uniform 64-bit hash onto `0..bits` (Lemire's multiply-shift: one
/// multiplication instead of a division, for filters of any size).
fn reduce(h: u64, bits: u64) -> u64 {
    ((u128::from(h) * u128::from(bits)) >> 64) as u64
}

/// The two hashes of double hashing, from one well-mixed key; the step is
/// odd so it visits every bit of a power-of-two table.
fn split(key: u64) -> (u64, u64) {
    let h = mix(key);
    (h, h.rotate_left(32) | 1)
}

/// SplitMix64's finaliser: a fixed, well-distributed 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_found_and_others_mostly_not() {
        let mut b = Bloom::with_keys(10_000);
        for k in 0..10_000u64 {
            b.insert(k * 7919);
        }
        assert!((0..10_000u64).all(|k| b.may_contain(k * 7919)));
        let fp = (0..100_000u64)
            .map(|k| 1_000_000_007 + k)
            .filter(|k| b.may_contain(*k))
            .count();
        // About 0.3 % is expected; a broken mix or reduction gives far more.
        assert!(fp < 800, "false positives: {fp} of 100000");
    }

    #[test]
    fn sizes_follow_the_key_count_and_round_trip() {
        assert_eq!(Bloom::with_keys(1000).words().len(), 188);
        assert_eq!(Bloom::with_keys(0).words().len(), MIN_WORDS);
        assert!(Bloom::from_words(Vec::new()).is_none());
        let mut b = Bloom::with_keys(0);
        b.insert(42);
        let c = Bloom::from_words(b.words().to_vec()).expect("words");
        assert!(c.may_contain(42));
        assert_eq!(b, c);
        // Every bit is reachable, the last word's too.
        assert_eq!(reduce(u64::MAX, 640), 639);
        assert_eq!(reduce(0, 640), 0);
    }

    #[test]
    fn bit_positions_are_fixed() {
        // The layout is part of the file format: a change here must bump
        // the index version.
        let mut b = Bloom::with_keys(10);
        b.insert(0x1234_5678);
        let set: Vec<usize> = (0..b.words().len() * 64)
            .filter(|i| b.words()[i / 64] & (1 << (i % 64)) != 0)
            .collect();
        assert_eq!(set.len(), PROBES as usize);
        assert_eq!(set, FIXED_BITS);
    }

    const FIXED_BITS: [usize; 8] = [21, 68, 113, 161, 254, 347, 440, 487];
}
