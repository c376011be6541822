//! Deterministic mutation of sample lines for the parsers' no-panic tests
//! (between fuzzing runs, these run on every `cargo test`).

/// xorshift: deterministic garbage without a `rand` dependency.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Calls `f` `rounds` times with one of `samples`, cut, grown by random
/// bytes or shortened at up to `max_edits - 1` random places.
pub(crate) fn for_each_mutation(
    samples: &[&str],
    rounds: usize,
    max_edits: u64,
    mut seed: u64,
    mut f: impl FnMut(&[u8]),
) {
    for _ in 0..rounds {
        let base = samples[(rng(&mut seed) % samples.len() as u64) as usize].as_bytes();
        let mut line = base.to_vec();
        for _ in 0..(rng(&mut seed) % max_edits) {
            let i = (rng(&mut seed) as usize) % (line.len() + 1);
            match rng(&mut seed) % 3 {
                0 => line.truncate(i),
                1 => line.insert(i, (rng(&mut seed) & 0xff) as u8),
                _ => {
                    if i < line.len() {
                        line.remove(i);
                    }
                }
            }
        }
        f(&line);
    }
}
