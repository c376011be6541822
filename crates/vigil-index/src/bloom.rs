//! A fixed-layout Bloom filter over 64-bit keys.
//!
//! The bit positions are a pure function of the key and the filter size
//! (double hashing of one 64-bit mix), so a filter written by one build of
//! Vigil reads the same in any other: nothing depends on a hasher whose
//! output may change between Rust versions.

/// Probes per key: with about ten bits per key this gives a false-positive
/// rate near 1%.
pub(crate) const PROBES: u32 = 7;
/// Bits reserved per distinct key.
const BITS_PER_KEY: usize = 10;
/// Smallest filter, in 64-bit words.
const MIN_WORDS: usize = 8;

/// A Bloom filter whose size is a power of two bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    /// An empty filter sized for `keys` distinct keys.
    pub fn with_keys(keys: usize) -> Bloom {
        let bits = keys.saturating_mul(BITS_PER_KEY).max(MIN_WORDS * 64);
        let words = bits.next_power_of_two() / 64;
        Bloom {
            words: vec![0; words],
        }
    }

    /// A filter from stored words; `None` unless the length is a power of two.
    pub fn from_words(words: Vec<u64>) -> Option<Bloom> {
        (words.len().is_power_of_two()).then_some(Bloom { words })
    }

    /// The stored words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Adds a key.
    pub fn insert(&mut self, key: u64) {
        let mask = (self.words.len() * 64 - 1) as u64;
        let (mut h, step) = split(key);
        for _ in 0..PROBES {
            let bit = h & mask;
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
            h = h.wrapping_add(step);
        }
    }

    /// Whether the key may have been added (false means certainly not).
    pub fn may_contain(&self, key: u64) -> bool {
        let mask = (self.words.len() * 64 - 1) as u64;
        let (mut h, step) = split(key);
        for _ in 0..PROBES {
            let bit = h & mask;
            if self.words[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
                return false;
            }
            h = h.wrapping_add(step);
        }
        true
    }
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
        // About 1% is expected; a broken mix gives far more.
        assert!(fp < 3_000, "false positives: {fp} of 100000");
    }

    #[test]
    fn sizes_are_powers_of_two_and_round_trip() {
        let b = Bloom::with_keys(1000);
        assert!(b.words().len().is_power_of_two());
        assert!(Bloom::from_words(vec![0; 3]).is_none());
        let mut b = Bloom::with_keys(0);
        b.insert(42);
        let c = Bloom::from_words(b.words().to_vec()).expect("power of two");
        assert!(c.may_contain(42));
        assert_eq!(b, c);
    }
}
