//! A small seeded PRNG (xoshiro256**, seeded through SplitMix64).
//!
//! Written here rather than taken from `rand` so that the byte stream for a
//! given `--seed` never changes with a dependency upgrade: the simulator's
//! output is meant to be reproducible across Vigil versions and machines.

/// xoshiro256** with helpers for the distributions the simulator needs.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// One SplitMix64 step; also used to derive independent sub-seeds.
pub fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    /// An independent generator for one purpose (world, background, one
    /// attack), so that adding draws in one place does not shift the others.
    pub fn fork(seed: u64, stream: u64) -> Rng {
        let mut x = seed ^ stream.wrapping_mul(0xD605_BBB5_8C8A_BE25);
        Rng::new(splitmix64(&mut x))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        // Multiply-shift: unbiased enough for simulation, and branch-free.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below((hi - lo + 1) as usize) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An exponential variate with the given mean (Poisson inter-arrivals).
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// An index drawn from cumulative weights (see [`cumulative`]).
    pub fn weighted(&mut self, cum: &[f64]) -> usize {
        let total = *cum.last().expect("non-empty weights");
        let x = self.f64() * total;
        cum.partition_point(|&c| c <= x).min(cum.len() - 1)
    }
}

/// Running sums of `weights`, for [`Rng::weighted`].
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .into_iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect()
}

/// Zipf-like weights 1/(i+1)^s: a few users and hosts do most of the work.
pub fn zipf(n: usize, s: f64) -> Vec<f64> {
    cumulative((0..n).map(|i| 1.0 / ((i + 1) as f64).powf(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn ranges_and_weights_stay_in_bounds() {
        let mut r = Rng::new(1);
        let cum = zipf(10, 1.1);
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            assert!(r.range(3, 5) >= 3 && r.range(3, 5) <= 5);
            assert!(r.f64() < 1.0);
            counts[r.weighted(&cum)] += 1;
        }
        // Zipf: the first item is drawn far more often than the last.
        assert!(counts[0] > counts[9] * 4, "{counts:?}");
    }
}
