//! Keys: what a block's filter records of its events, and what a query
//! needs from a block.
//!
//! The query language matches text case-insensitively, as a substring (free
//! text) or as a whole value (`field:value`), and both sides fold case
//! character by character. Two kinds of key follow from that:
//!
//! * **Trigrams** of every folded value, whatever its field. A value can
//!   only contain a literal if it contains every three-byte window of it,
//!   so a block lacking one of them holds no match. This serves free text,
//!   wildcards and long values.
//! * **Field values**: a hash of the field path and the whole folded value
//!   (for values up to [`MAX_VALUE_KEY`] bytes). `source.ip:192.0.2.138`
//!   then needs that one key, which prunes far better than the trigrams of
//!   a dotted number, which every block of addresses has.
//!
//! * **Address five-grams**: every five-byte window of each run of digits
//!   and dots with at least three dots (an IPv4 address, a dotted version)
//!   inside any string value. The trigrams of a dotted number are in every
//!   block of addresses, so free text such as `192.0.2.181` could not prune
//!   by them; its five-grams (`2.181`, `.2.18`, …) can. Any occurrence of
//!   such a needle lies inside a run of the value with at least as many
//!   dots, so the keys it needs are always recorded. Runs with fewer dots
//!   (times, ports, counters) get none: they would fill the filter.
//!
//! A value is recorded in every spelling the matcher treats as equal: an IP
//! address also in its canonical form (so `2001:DB8::1` finds
//! `2001:db8:0:0::1`) and an integral number also as an integer (so `22.0`
//! finds `22`).

use std::net::IpAddr;

use crate::scan::{self, Leaf};

/// A trigram: three bytes of folded UTF-8, packed big-endian.
pub type Gram = u32;

/// Filter keys below this are trigrams; field-value keys have the top bit set.
pub const VALUE_KEY_BIT: u64 = 1 << 63;

/// Address five-gram keys have this bit (and not [`VALUE_KEY_BIT`]).
pub const FIVE_GRAM_BIT: u64 = 1 << 62;

/// Dots a run of digits and dots needs to get five-gram keys.
const MIN_RUN_DOTS: usize = 3;

/// Calls `f` with the five-gram key of every five-byte window of each run
/// of ASCII digits and dots in `text` that holds at least three dots.
pub fn each_address_gram(text: &[u8], mut f: impl FnMut(u64)) {
    // Only runs around dots can qualify, and most values hold fewer than
    // three dots in all: find the dots, not every run of digits.
    if memchr::memchr_iter(b'.', text)
        .nth(MIN_RUN_DOTS - 1)
        .is_none()
    {
        return;
    }
    let mut from = 0;
    while let Some(dot) = memchr::memchr(b'.', &text[from..]).map(|i| from + i) {
        // Between `from` and the dot lie no dots, and `from` is where the
        // previous run ended: the run starts at the digits before the dot.
        let start = from
            + text[from..dot]
                .iter()
                .rposition(|b| !b.is_ascii_digit())
                .map_or(0, |i| i + 1);
        let mut end = dot;
        let mut dots = 0;
        while end < text.len() && is_run_byte(text[end]) {
            dots += usize::from(text[end] == b'.');
            end += 1;
        }
        if dots >= MIN_RUN_DOTS {
            for w in text[start..end].windows(5) {
                let packed = w.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
                f(FIVE_GRAM_BIT | packed);
            }
        }
        from = end;
    }
}

fn is_run_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

/// Longest folded value that gets a field-value key; longer values (raw
/// lines, command lines) are found by their trigrams.
pub const MAX_VALUE_KEY: usize = 128;

/// Fields whose exact values get no field-value key. Their values are
/// nearly unique per event (times, sequence numbers, raw lines), so a key
/// per value was about a third of every filter on simulated telemetry, for
/// searches that ask for one exact time or line. Such a search is pruned by
/// the value's trigrams instead, and times by each block's time span.
pub const UNKEYED_FIELDS: &[&str] = &[
    "@timestamp",
    "event.created",
    "event.ingested",
    "event.original",
    "vigil.received_at",
    "vigil.seq",
];

/// Whether a value of `path` gets a field-value key (see [`UNKEYED_FIELDS`]).
pub fn has_value_key(path: &str) -> bool {
    // Asked of every leaf: the first byte settles most paths.
    !matches!(path.as_bytes().first(), Some(b'@' | b'e' | b'v')) || !UNKEYED_FIELDS.contains(&path)
}

/// Largest integer every f64 represents exactly; beyond it numeric equality
/// is not a question of text.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Calls `f` for every trigram of `folded`.
pub fn each_gram(folded: &[u8], mut f: impl FnMut(Gram)) {
    for w in folded.windows(3) {
        f(u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2]));
    }
}

/// The distinct trigrams of already-folded text, as filter keys.
pub fn gram_keys(folded: &str) -> Vec<u64> {
    let mut out = Vec::new();
    each_gram(folded.as_bytes(), |g| {
        if !out.contains(&u64::from(g)) {
            out.push(u64::from(g));
        }
    });
    out
}

/// The filter key of `field` holding exactly `folded`.
pub fn value_key(field: &str, folded: &str) -> u64 {
    value_key_of(field, folded.bytes())
}

/// [`value_key`] of folded text given byte by byte.
fn value_key_of(field: &str, folded: impl Iterator<Item = u8>) -> u64 {
    // FNV-1a: fixed by definition, so keys written today read the same later.
    fn step(h: u64, b: u8) -> u64 {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }
    let h = field.bytes().fold(0xcbf2_9ce4_8422_2325, step);
    folded.fold(step(h, 0xff), step) | VALUE_KEY_BIT
}

/// Folds case the way the query language does (character by character).
pub fn fold(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(s.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    } else {
        std::borrow::Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    }
}

/// The integer spelling of a number that equals an integer exactly.
pub fn integral_text(x: f64) -> Option<String> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT_INT).then(|| format!("{}", x as i64))
}

/// What one stored event contributes to its block.
#[derive(Debug, Default)]
pub struct EventKeys {
    /// Its `@timestamp` in milliseconds, when it has one.
    pub time_ms: Option<i64>,
    /// Whether the bytes could not be read as an event (the search skips
    /// such records, so they need no keys).
    pub undecodable: bool,
}

/// Calls `f` for every filter key of the event stored as `json`.
pub fn event_keys(json: &[u8], f: &mut impl FnMut(u64)) -> EventKeys {
    event_keys_spans(json, f, &mut |_| {}).0
}

/// [`event_keys`], also lending `g` every keyed value's span (see
/// [`scan::walk_spans`]); the facts are `None` when the walker could not
/// read the bytes (the spans then must be disregarded).
pub fn event_keys_spans(
    json: &[u8],
    f: &mut impl FnMut(u64),
    g: &mut impl FnMut(scan::Span<'_>),
) -> (EventKeys, Option<scan::WalkFacts>) {
    event_leaves_spans(json, &mut |path, leaf| leaf_keys(path, leaf, f), g)
}

/// [`event_keys_spans`] one step earlier: lends `f` every leaf whose keys
/// the event has (see [`leaf_keys`]), so a caller that already holds the
/// keys of some leaves can skip them.
pub fn event_leaves_spans(
    json: &[u8],
    f: &mut impl FnMut(&str, Leaf<'_>),
    g: &mut impl FnMut(scan::Span<'_>),
) -> (EventKeys, Option<scan::WalkFacts>) {
    let mut out = EventKeys::default();
    let mut on_leaf = |path: &str, leaf: Leaf<'_>| {
        if path == "@timestamp" {
            if let Leaf::Str(s) = leaf {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    out.time_ms = Some(t.timestamp_millis());
                }
            }
        }
        f(path, leaf);
    };
    let facts = scan::walk_spans(json, &mut on_leaf, g).ok();
    if facts.is_none() {
        // Not the canonical form the walker expects: let the full decoder
        // decide, exactly as the search will.
        out = EventKeys::default();
        match vigil_event::Event::from_canonical(json) {
            Ok(ev) => {
                out.time_ms = ev.timestamp().map(|t| t.timestamp_millis());
                decoded_leaves(&ev, f);
            }
            Err(_) => out.undecodable = true,
        }
    }
    (out, facts)
}

/// The keys of a decoded event: what [`event_keys`] gives for its stored
/// bytes, computed from the JSON tree instead (the path for bytes the
/// walker does not take, and a reference for testing the walker).
pub fn decoded_event_keys(ev: &vigil_event::Event, f: &mut impl FnMut(u64)) {
    decoded_leaves(ev, &mut |path, leaf| leaf_keys(path, leaf, f));
}

/// Lends `f` the leaves of a decoded event as the walker would.
fn decoded_leaves(ev: &vigil_event::Event, f: &mut impl FnMut(&str, Leaf<'_>)) {
    ev.for_each_leaf(|path, v| value_leaf(path, v, f));
}

fn value_leaf(path: &str, v: &serde_json::Value, f: &mut impl FnMut(&str, Leaf<'_>)) {
    use serde_json::Value;
    match v {
        Value::String(s) => f(path, Leaf::Str(s)),
        Value::Number(n) => f(path, Leaf::Num(&n.to_string())),
        Value::Bool(b) => f(path, Leaf::Bool(*b)),
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|v| value_leaf(path, v, f)),
        Value::Object(m) => {
            for (k, v) in m {
                value_leaf(&format!("{path}.{k}"), v, f);
            }
        }
    }
}

/// The keys of one leaf value at `path`.
pub fn leaf_keys(path: &str, leaf: Leaf<'_>, f: &mut impl FnMut(u64)) {
    leaf_keys_keyed(path, has_value_key(path), leaf, f)
}

/// [`leaf_keys`] for a caller that already asked [`has_value_key`]: with
/// `keyed` false the leaf gets its trigrams and five-grams only.
pub(crate) fn leaf_keys_keyed(path: &str, keyed: bool, leaf: Leaf<'_>, f: &mut impl FnMut(u64)) {
    match leaf {
        Leaf::Str(s) if s.is_ascii() => {
            // ASCII folds byte by byte, so the folded text need not be made:
            // the trigrams and the value key fold as they read, and the
            // five-grams hold only digits and dots, which folding keeps.
            let b = s.as_bytes();
            let mut g: Gram = 0;
            for (i, c) in b.iter().enumerate() {
                g = (g << 8 | u32::from(c.to_ascii_lowercase())) & 0x00ff_ffff;
                if i >= 2 {
                    f(u64::from(g));
                }
            }
            each_address_gram(b, &mut *f);
            if keyed && b.len() <= MAX_VALUE_KEY {
                f(value_key_of(path, b.iter().map(u8::to_ascii_lowercase)));
            }
            ip_keys(path, keyed, s, f);
        }
        Leaf::Str(s) => {
            let folded = fold(s);
            text_keys(path, keyed, &folded, f, folded.len() <= MAX_VALUE_KEY);
            ip_keys(path, keyed, s, f);
        }
        Leaf::Num(text) if is_plain_int(text) => {
            // Its own canonical spelling and an exact f64: what the general
            // case below finds, without parsing and printing it twice.
            each_gram(text.as_bytes(), |g| f(u64::from(g)));
            if keyed {
                f(value_key(path, text));
            }
        }
        Leaf::Num(text) => {
            let is_int = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
            // The matcher sees numbers through serde_json's formatting of the
            // parsed value; integers it prints as written.
            let shown = if is_int {
                text.to_string()
            } else {
                serde_json::from_str::<serde_json::Number>(text)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| text.to_string())
            };
            each_gram(shown.as_bytes(), |g| f(u64::from(g)));
            let x: Option<f64> = shown.parse().ok();
            let int = x.and_then(integral_text);
            if let Some(int) = &int {
                if *int != shown {
                    each_gram(int.as_bytes(), |g| f(u64::from(g)));
                }
            }
            if keyed {
                f(value_key(path, int.as_deref().unwrap_or(&shown)));
            }
        }
        Leaf::Bool(b) => {
            let t = if b { "true" } else { "false" };
            each_gram(t.as_bytes(), |g| f(u64::from(g)));
            if keyed {
                f(value_key(path, t));
            }
        }
        Leaf::Null => {}
    }
}

/// The trigrams and five-grams of a folded string, and its field-value key
/// when the field is keyed and `value_key` asks for it.
fn text_keys(path: &str, keyed: bool, folded: &str, f: &mut impl FnMut(u64), with_value: bool) {
    each_gram(folded.as_bytes(), |g| f(u64::from(g)));
    each_address_gram(folded.as_bytes(), &mut *f);
    if keyed && with_value {
        f(value_key(path, folded));
    }
}

/// The keys of the canonical spelling of an IP address `s`, when it has
/// another one than its folded self.
fn ip_keys(path: &str, keyed: bool, s: &str, f: &mut impl FnMut(u64)) {
    if !may_be_ip(s) {
        return;
    }
    if let Ok(IpAddr::V6(ip)) = s.parse::<IpAddr>() {
        // Only IPv6 has other spellings: the parser takes no IPv4 address
        // but in the very form it prints.
        let canon = ip.to_canonical().to_string();
        if canon != fold(s) {
            text_keys(path, keyed, &canon, f, true);
        }
    }
}

/// Whether `s` could parse as an IP address: nothing but hex digits,
/// colons and dots (the parser accepts no other byte), so the parse is
/// tried only on the few strings that look like one.
fn may_be_ip(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// An integer of at most 15 digits in its canonical spelling (no leading
/// zero, no `-0`): every f64 holds it exactly and prints it back the same.
fn is_plain_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    match digits {
        [b'0'] => digits.len() == text.len(),
        [b'1'..=b'9', rest @ ..] => rest.len() < 15 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod fast_path_tests {
    //! The key generation takes shortcuts (dots found by search, no IPv4
    //! reprinting, plain integers unparsed, no value key computed for
    //! unkeyed fields); these tests hold it to the straightforward version
    //! it replaced, key for key.

    use super::*;
    use proptest::prelude::*;

    fn reference_address_grams(text: &[u8], f: &mut impl FnMut(u64)) {
        let mut i = 0;
        while i < text.len() {
            if !is_run_byte(text[i]) {
                i += 1;
                continue;
            }
            let start = i;
            let mut dots = 0;
            while i < text.len() && is_run_byte(text[i]) {
                dots += usize::from(text[i] == b'.');
                i += 1;
            }
            if dots >= MIN_RUN_DOTS {
                for w in text[start..i].windows(5) {
                    f(FIVE_GRAM_BIT | w.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)));
                }
            }
        }
    }

    fn reference_value_key(field: &str, folded: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in field.bytes().chain([0xff]).chain(folded.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h | VALUE_KEY_BIT
    }

    fn reference_leaf_keys(path: &str, leaf: Leaf<'_>) -> Vec<u64> {
        let mut out = Vec::new();
        let f = &mut |k: u64| out.push(k);
        match leaf {
            Leaf::Str(s) => {
                let folded = fold(s);
                each_gram(folded.as_bytes(), |g| f(u64::from(g)));
                reference_address_grams(folded.as_bytes(), f);
                if folded.len() <= MAX_VALUE_KEY {
                    f(reference_value_key(path, &folded));
                }
                if let Ok(ip) = s.parse::<IpAddr>() {
                    let canon = ip.to_canonical().to_string();
                    if canon != *folded {
                        each_gram(canon.as_bytes(), |g| f(u64::from(g)));
                        reference_address_grams(canon.as_bytes(), f);
                        f(reference_value_key(path, &canon));
                    }
                }
            }
            Leaf::Num(text) => {
                let is_int = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
                let shown = if is_int {
                    text.to_string()
                } else {
                    serde_json::from_str::<serde_json::Number>(text)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|_| text.to_string())
                };
                each_gram(shown.as_bytes(), |g| f(u64::from(g)));
                let x: Option<f64> = shown.parse().ok();
                match x.and_then(integral_text) {
                    Some(int) => {
                        if int != shown {
                            each_gram(int.as_bytes(), |g| f(u64::from(g)));
                        }
                        f(reference_value_key(path, &int));
                    }
                    None => f(reference_value_key(path, &shown)),
                }
            }
            Leaf::Bool(b) => {
                let t = if b { "true" } else { "false" };
                each_gram(t.as_bytes(), |g| f(u64::from(g)));
                f(reference_value_key(path, t));
            }
            Leaf::Null => {}
        }
        if !has_value_key(path) {
            out.retain(|k| k & VALUE_KEY_BIT == 0);
        }
        out.sort_unstable();
        out
    }

    fn keys(path: &str, leaf: Leaf<'_>) -> Vec<u64> {
        let mut out = Vec::new();
        leaf_keys(path, leaf, &mut |k| out.push(k));
        out.sort_unstable();
        out
    }

    fn address_grams(text: &str) -> (Vec<u64>, Vec<u64>) {
        let (mut got, mut want) = (Vec::new(), Vec::new());
        each_address_gram(text.as_bytes(), |k| got.push(k));
        reference_address_grams(text.as_bytes(), &mut |k| want.push(k));
        (got, want)
    }

    const PATHS: [&str; 4] = ["source.ip", "message", "@timestamp", "event.original"];

    #[test]
    fn edge_cases_give_the_same_keys() {
        let strings = [
            "",
            "a",
            "ab",
            "abc",
            "ABC",
            "ÉTÉ",
            "İstanbul",
            "ß",
            "Σ",
            "日本語テキスト",
            "1.2.3.4",
            "1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4.5",
            "..1...",
            "....",
            "a1.2.3.4b",
            "1.2.3.4:80",
            "v1.2.3.4 and 10.0.0.1.",
            "::",
            "::1",
            "2001:DB8::1",
            "2001:db8:0:0::1",
            "::ffff:192.0.2.1",
            "::FFFF:c000:0201",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "::ffff:1.2.3",
            "abcdef",
            "ABCDEF:",
            "deadbeef.",
            "12345678901234567890.1.2.3",
            &"9.".repeat(100),
            &"x".repeat(200),
        ];
        for path in PATHS {
            for s in strings {
                assert_eq!(
                    keys(path, Leaf::Str(s)),
                    reference_leaf_keys(path, Leaf::Str(s)),
                    "{path} {s:?}"
                );
                let (got, want) = address_grams(s);
                assert_eq!(got, want, "{s:?}");
            }
            for n in [
                "0",
                "-0",
                "7",
                "-7",
                "443",
                "007",
                "-007",
                "1e3",
                "1E3",
                "22.0",
                "-1.5e3",
                "999999999999999",
                "-999999999999999",
                "9999999999999999",
                "9007199254740993",
                "12345678901234567890",
                "1-2",
                "-",
                "",
                "1.",
                "0.5",
                "1e400",
            ] {
                assert_eq!(
                    keys(path, Leaf::Num(n)),
                    reference_leaf_keys(path, Leaf::Num(n)),
                    "{path} {n:?}"
                );
            }
            for b in [true, false] {
                assert_eq!(
                    keys(path, Leaf::Bool(b)),
                    reference_leaf_keys(path, Leaf::Bool(b))
                );
            }
        }
    }

    #[test]
    fn a_parsed_ipv4_address_prints_as_it_was_written() {
        // What lets the string keys skip reprinting IPv4 addresses.
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let ip = std::net::Ipv4Addr::from(x);
            let s = ip.to_string();
            assert_eq!(
                s.parse::<IpAddr>().map(|p| p.to_string()).as_deref(),
                Ok(s.as_str())
            );
        }
        for s in [
            "01.2.3.4",
            "1.02.3.4",
            "1.2.3.00",
            "001.2.3.4",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.0x4",
        ] {
            assert!(s.parse::<std::net::Ipv4Addr>().is_err(), "{s}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn string_keys_match_the_reference(
            s in "[0-9.:a-fA-FxX É€ß-]{0,40}",
            path in prop::sample::select(&PATHS[..]),
        ) {
            prop_assert_eq!(keys(path, Leaf::Str(&s)), reference_leaf_keys(path, Leaf::Str(&s)));
            let (got, want) = address_grams(&s);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn address_like_strings_match_the_reference(
            parts in prop::collection::vec((0u16..300, prop::sample::select(&[".", ":", "::", " ", "x", "0"][..])), 0..10),
        ) {
            let s: String = parts.iter().map(|(n, sep)| format!("{n}{sep}")).collect();
            prop_assert_eq!(keys("ip", Leaf::Str(&s)), reference_leaf_keys("ip", Leaf::Str(&s)));
            let (got, want) = address_grams(&s);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn number_keys_match_the_reference(n in "-?[0-9]{0,20}(\\.[0-9]{0,3})?([eE]-?[0-9]{1,3})?") {
            for path in PATHS {
                prop_assert_eq!(keys(path, Leaf::Num(&n)), reference_leaf_keys(path, Leaf::Num(&n)));
            }
        }

        #[test]
        fn whole_ipv6_addresses_match_the_reference(groups in prop::collection::vec(0u16..=0xffff, 8), zeros in 0usize..8, upper: bool) {
            let mut s = groups.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
            if zeros > 0 {
                s = format!("::{}", groups[zeros..].iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":"));
            }
            if upper {
                s = s.to_uppercase();
            }
            prop_assert_eq!(keys("ip", Leaf::Str(&s)), reference_leaf_keys("ip", Leaf::Str(&s)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(json: &str) -> Vec<u64> {
        let mut out = Vec::new();
        event_keys(json.as_bytes(), &mut |k| out.push(k));
        out
    }

    #[test]
    fn values_are_folded_and_respelled() {
        let g = all(r#"{"a":"ABc","ip":"2001:DB8:0:0::1","n":22.0,"b":true,"@timestamp":"x"}"#);
        for needle in ["abc", "2001:db8::1", "22", "true"] {
            assert!(
                gram_keys(needle).iter().all(|x| g.contains(x)),
                "{needle} missing"
            );
        }
        assert!(g.contains(&value_key("a", "abc")));
        assert!(g.contains(&value_key("ip", "2001:db8::1")));
        assert!(g.contains(&value_key("n", "22")));
        assert!(g.contains(&value_key("b", "true")));
        assert!(!g.contains(&value_key("a", "ab")));
    }

    #[test]
    fn unique_fields_get_trigrams_but_no_value_key() {
        let g = all(
            r#"{"@timestamp":"2025-01-06T02:11:52Z","vigil":{"seq":12345,"received_at":"2026-11-22T20:42:04.857Z"},"user":{"name":"bob"}}"#,
        );
        assert!(!g.contains(&value_key("@timestamp", "2025-01-06t02:11:52z")));
        assert!(!g.contains(&value_key("vigil.seq", "12345")));
        assert!(!g.contains(&value_key("vigil.received_at", "2026-11-22t20:42:04.857z")));
        assert!(g.contains(&value_key("user.name", "bob")));
        for needle in ["2025-01-06t02:11:52z", "12345", "2026-11-22t20:42:04.857z"] {
            assert!(
                gram_keys(needle).iter().all(|x| g.contains(x)),
                "{needle} missing"
            );
        }
    }

    #[test]
    fn time_and_undecodable() {
        let mut n = 0;
        let k = event_keys(br#"{"@timestamp":"2024-03-01T00:00:01.5Z"}"#, &mut |_| {
            n += 1
        });
        assert_eq!(k.time_ms, Some(1_709_251_201_500));
        assert!(event_keys(b"not json", &mut |_| {}).undecodable);
    }

    #[test]
    fn dotted_runs_with_three_dots_get_five_grams() {
        let grams = |t: &str| {
            let mut v = Vec::new();
            each_address_gram(t.as_bytes(), |k| v.push(k & !FIVE_GRAM_BIT));
            v
        };
        let pack = |w: &str| w.bytes().fold(0u64, |a, b| a << 8 | u64::from(b));
        // Inside a message, the address's own run only.
        assert_eq!(
            grams("from 10.0.2.181 port 22"),
            ["10.0.", "0.0.2", ".0.2.", "0.2.1", ".2.18", "2.181"].map(pack)
        );
        // Times, ports and two-dot versions: none.
        assert!(grams("2025-01-06T00:00:00.056Z 59283 1.2.3").is_empty());
        assert_eq!(grams("v1.2.3.4").len(), 3);
        assert!(all(r#"{"m":"at 192.0.2.181:22"}"#).contains(&(FIVE_GRAM_BIT | pack("2.181"))));
    }

    #[test]
    fn unkeyed_fields_are_told_by_their_first_byte() {
        for f in UNKEYED_FIELDS {
            assert!(matches!(f.as_bytes()[0], b'@' | b'e' | b'v'), "{f}");
            assert!(!has_value_key(f), "{f}");
        }
        for f in ["event.action", "vigil.source", "@version", "user.name", ""] {
            assert!(has_value_key(f), "{f}");
        }
    }

    #[test]
    fn folding_matches_the_query_language() {
        assert_eq!(fold("ÉTÉ Σ"), "été σ");
        assert_eq!(fold("abc"), "abc");
        assert_eq!(integral_text(1e3).as_deref(), Some("1000"));
        assert_eq!(integral_text(1.5), None);
        assert_eq!(integral_text(1e300), None);
    }
}
