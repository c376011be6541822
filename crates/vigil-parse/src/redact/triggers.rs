//! The trigger scan: which credential detectors can match a text at all.
//!
//! Every string in scope is scanned, `event.original` and the fields parsed
//! out of it alike, so this scan is the redactor's fixed cost per byte. The
//! words are short and case-insensitive, which leaves a general automaton
//! no byte to skip ahead to and costs it a table walk per byte. Instead a
//! long text is folded to lower case (a loop the compiler vectorizes) and
//! searched with the SIMD "Teddy" searcher of `aho_corasick::packed`, which
//! stops only where a word starts. Short texts, where the searcher's setup would
//! cost more than it saves, are scanned with a table of the two-byte pairs
//! that start a word in any letter case.

use std::cell::RefCell;
use std::sync::LazyLock;

use aho_corasick::packed;
use aho_corasick::Span;

use super::{Kind, SECRET_SUFFIXES};

/// Each trigger word, lower case, and the detector it wakes: `://` (URL
/// passwords), the secret key words, `bearer`, `eyj` (JWT) and the API key
/// prefixes. Any ASCII letter case of a word counts.
pub(super) fn words() -> Vec<(&'static str, Kind)> {
    let mut words = vec![
        ("://", Kind::UrlPassword),
        ("bearer", Kind::Bearer),
        ("eyj", Kind::Jwt),
    ];
    words.extend(
        SECRET_SUFFIXES
            .iter()
            .copied()
            .chain(["pwd"])
            .map(|w| (w, Kind::SecretPair)),
    );
    words.extend(
        [
            "akia",
            "asia",
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "xox",
            "sk_live_",
            "rk_live_",
            "glpat-",
            "aiza",
            "vgl_",
        ]
        .map(|w| (w, Kind::ApiKey)),
    );
    words
}

/// Shortest trigger word: positions closer than this to the end start none.
const MIN_WORD: usize = 3;

/// Texts at least this long are folded and searched with [`Table::packed`];
/// shorter ones take the pair table, whose cost has no setup.
const PACKED_FROM: usize = 48;

/// The scan's tables, built once from [`words`].
struct Table {
    /// One bit per byte pair `(b[i], b[i + 1])` that starts a word in some
    /// letter case: 8 KiB, so the scan's lookups stay in the L1 cache.
    pairs: Box<[u64; 1024]>,
    /// Words sorted by their lower-case first byte, with their kind's bit.
    words: Vec<(&'static [u8], u16)>,
    /// For each byte, the range of `words` starting with it (any case).
    by_first: [(u8, u8); 256],
    /// The words (lower case) for the folded text; `None` where the CPU has
    /// no SIMD searcher.
    packed: Option<packed::Searcher>,
    /// Every bit a word can set: once all are found the scan can stop.
    all: u16,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut words: Vec<(&'static [u8], u16)> = words()
        .into_iter()
        .map(|(w, k)| (w.as_bytes(), k.bit()))
        .collect();
    words.sort_by_key(|(w, _)| w[0]);
    let mut pairs = Box::new([0u64; 1024]);
    let mut by_first = [(0u8, 0u8); 256];
    let mut all = 0;
    for (i, (w, bit)) in words.iter().enumerate() {
        assert!(w.len() >= MIN_WORD, "trigger words are at least 3 bytes");
        all |= bit;
        for a in [w[0].to_ascii_lowercase(), w[0].to_ascii_uppercase()] {
            for b in [w[1].to_ascii_lowercase(), w[1].to_ascii_uppercase()] {
                let p = usize::from(a) << 8 | usize::from(b);
                pairs[p >> 6] |= 1 << (p & 63);
            }
            let i = u8::try_from(i).expect("fewer than 256 trigger words");
            let r = &mut by_first[usize::from(a)];
            *r = if r.1 == 0 { (i, i + 1) } else { (r.0, i + 1) };
        }
    }
    // Only Teddy: its Rabin-Karp fallback is no faster than the pair table.
    let packed = packed::Config::new()
        .only_teddy(true)
        .builder()
        .extend(words.iter().map(|(w, _)| w))
        .build()
        .filter(|s| s.minimum_len() <= PACKED_FROM);
    Table {
        pairs,
        words,
        by_first,
        packed,
        all,
    }
});

thread_local! {
    /// The lower-case copy of the text being searched, reused.
    static FOLDED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Bits ([`Kind::bit`]) of the credential detectors whose trigger words
/// occur anywhere in `b`, in any ASCII letter case, overlapping or not.
pub(super) fn scan(b: &[u8]) -> u16 {
    let t = &*TABLE;
    match &t.packed {
        Some(searcher) if b.len() >= PACKED_FROM => FOLDED.with(|f| match f.try_borrow_mut() {
            Ok(mut folded) => scan_packed(t, searcher, b, &mut folded),
            Err(_) => scan_pairs(t, b),
        }),
        _ => scan_pairs(t, b),
    }
}

/// The words at position `i` of `b`, as bits.
fn words_at(t: &Table, b: &[u8], i: usize) -> u16 {
    let rest = &b[i..];
    let (lo, hi) = t.by_first[usize::from(b[i])];
    let mut mask = 0;
    for &(w, bit) in &t.words[usize::from(lo)..usize::from(hi)] {
        if rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w) {
            mask |= bit;
        }
    }
    mask
}

/// Every position whose byte pair can start a word.
fn scan_pairs(t: &Table, b: &[u8]) -> u16 {
    let mut mask = 0;
    if b.len() < MIN_WORD {
        return 0;
    }
    for i in 0..=b.len() - MIN_WORD {
        let p = usize::from(b[i]) << 8 | usize::from(b[i + 1]);
        if t.pairs[p >> 6] & (1 << (p & 63)) == 0 {
            continue;
        }
        mask |= words_at(t, b, i);
        if mask == t.all {
            break;
        }
    }
    mask
}

/// The positions where a word starts in the folded text: the searcher
/// returns the leftmost from where it is asked to start, so starting again
/// one byte later visits each of them, and [`words_at`] adds every word
/// starting there (the searcher reports one).
fn scan_packed(t: &Table, searcher: &packed::Searcher, b: &[u8], folded: &mut Vec<u8>) -> u16 {
    folded.clear();
    folded.extend(b.iter().map(u8::to_ascii_lowercase));
    let mut mask = 0;
    let mut at = 0;
    while let Some(m) = searcher.find_in(&folded[..], Span::from(at..folded.len())) {
        mask |= words_at(t, b, m.start());
        if mask == t.all {
            break;
        }
        at = m.start() + 1;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

    /// The scan as first written: one case-insensitive Aho-Corasick pass
    /// reporting overlapping matches.
    fn reference(b: &[u8]) -> u16 {
        static AC: LazyLock<(AhoCorasick, Vec<Kind>)> = LazyLock::new(|| {
            let (pats, kinds): (Vec<_>, Vec<_>) = words().into_iter().unzip();
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(pats)
                .expect("fixed trigger list builds");
            (ac, kinds)
        });
        let (ac, kinds) = &*AC;
        ac.find_overlapping_iter(b)
            .fold(0, |m, hit| m | kinds[hit.pattern().as_usize()].bit())
    }

    /// [`scan`], after checking that both of its ways agree on `b`.
    fn both(b: &[u8]) -> u16 {
        let t = &*TABLE;
        let pairs = scan_pairs(t, b);
        let searcher = t.packed.as_ref();
        if let Some(searcher) = searcher {
            let packed = scan_packed(t, searcher, b, &mut Vec::new());
            assert_eq!(pairs, packed, "{:?}", String::from_utf8_lossy(b));
        }
        assert_eq!(scan(b), pairs);
        pairs
    }

    #[test]
    fn the_packed_searcher_is_built_on_x86_64() {
        if cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("ssse3") {
            assert!(TABLE.packed.is_some());
        }
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn table_cases() {
        let k = |ks: &[Kind]| ks.iter().fold(0, |m, k| m | k.bit());
        let cases: &[(&str, u16)] = &[
            ("", 0),
            ("ey", 0),
            ("eyJ", k(&[Kind::Jwt])),
            ("EYJ", k(&[Kind::Jwt])),
            ("Failed password for root", k(&[Kind::SecretPair])),
            ("PaSsWoRd", k(&[Kind::SecretPair])),
            // Overlapping words of different detectors: both count.
            ("bearerk_live_", k(&[Kind::Bearer, Kind::ApiKey])),
            ("xsecretoken", k(&[Kind::SecretPair])),
            ("akiasia", k(&[Kind::ApiKey])),
            ("https://x", k(&[Kind::UrlPassword])),
            (":/", 0),
            ("GITHUB_PAT_", k(&[Kind::ApiKey])),
            ("github_pa", 0),
            (
                "bearer eyJ x://y pwd akia",
                k(&[
                    Kind::Bearer,
                    Kind::Jwt,
                    Kind::UrlPassword,
                    Kind::SecretPair,
                    Kind::ApiKey,
                ]),
            ),
            // A non-ASCII byte is never a letter of a word.
            ("pa\u{df}word", 0),
        ];
        for (text, want) in cases {
            assert_eq!(reference(text.as_bytes()), *want, "{text:?}");
            assert_eq!(both(text.as_bytes()), *want, "{text:?}");
            // The same words deep in a long text, for the packed searcher.
            let long = format!("{}{text}{}", "x".repeat(60), "-".repeat(40));
            assert_eq!(both(long.as_bytes()), *want, "{long:?}");
        }
    }

    /// Texts made of word pieces, whole words in mixed case, glue bytes and
    /// random bytes, so that words overlap, abut, are cut short and sit at
    /// both ends: the table scan and the automaton agree on every one.
    #[test]
    fn agrees_with_the_automaton() {
        let words: Vec<&str> = words().into_iter().map(|(w, _)| w).collect();
        let glue: &[&[u8]] = &[b" ", b"=", b"_", b":", b"/", b"-", b"\xc3\xa9", b"\0", b"k"];
        let mut seed = 0x7a11_9e55_u64;
        let mut hits = 0;
        for _ in 0..40_000 {
            let mut text = Vec::new();
            for _ in 0..rng(&mut seed) % 24 {
                let w = words[(rng(&mut seed) % words.len() as u64) as usize].as_bytes();
                let piece = match rng(&mut seed) % 4 {
                    // A prefix or a suffix: near misses and overlaps.
                    0 => &w[..(rng(&mut seed) as usize % w.len()) + 1],
                    1 => &w[rng(&mut seed) as usize % w.len()..],
                    _ => w,
                };
                for &c in piece {
                    text.push(if rng(&mut seed).is_multiple_of(3) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    });
                }
                match rng(&mut seed) % 3 {
                    0 => text.extend_from_slice(glue[rng(&mut seed) as usize % glue.len()]),
                    1 => text.push((rng(&mut seed) & 0xff) as u8),
                    _ => {}
                }
            }
            let want = reference(&text);
            assert_eq!(both(&text), want, "{:?}", String::from_utf8_lossy(&text));
            hits += usize::from(want != 0);
        }
        // The generator must reach texts with and without triggers.
        assert!(hits > 10_000, "{hits}");
    }

    #[test]
    fn agrees_on_the_corpus_of_the_redaction_tests() {
        for text in super::super::tests::HARMLESS {
            assert_eq!(both(text.as_bytes()), reference(text.as_bytes()), "{text}");
        }
    }
}
