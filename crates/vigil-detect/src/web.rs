//! Attack patterns in request URLs (`vigil.web_attack`).
//!
//! The URL is cut to a byte budget, percent-decoded (twice, for doubly
//! encoded probes; `+` as a space in the query) and searched ASCII
//! case-insensitively for short, specific patterns. Work per URL is
//! bounded by the budget times the pattern count; a URL without `%` or
//! `+` is searched in place, without allocating.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::LazyLock;

use aho_corasick::{packed, AhoCorasick};

/// The kind of attack a URL pattern points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttackClass {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal / local file inclusion.
    Traversal,
    /// Server-side request forgery: a URL to an internal or metadata address.
    Ssrf,
    /// Log4Shell-style JNDI lookups.
    Jndi,
}

impl AttackClass {
    /// `sqli`, `xss`, `path_traversal`, `ssrf`, `jndi`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackClass::Sqli => "sqli",
            AttackClass::Xss => "xss",
            AttackClass::Traversal => "path_traversal",
            AttackClass::Ssrf => "ssrf",
            AttackClass::Jndi => "jndi",
        }
    }
}

const SQLI: &[&str] = &[
    "union select",
    "union all select",
    "union/**/select",
    "' or '1'='1",
    "' or 1=1",
    "\" or 1=1",
    " or 1=1--",
    "' or ''='",
    "sleep(",
    "benchmark(",
    "waitfor delay",
    "information_schema",
    "xp_cmdshell",
    "extractvalue(",
    "updatexml(",
    "pg_sleep",
    "';--",
    "' --",
    "'--",
];

const XSS: &[&str] = &[
    "<script",
    "</script",
    "javascript:",
    "onerror=",
    "onload=",
    "onmouseover=",
    "<svg",
    "<iframe",
    "<img src",
    "document.cookie",
    "alert(",
];

const TRAVERSAL: &[&str] = &[
    "../",
    "..\\",
    "/etc/passwd",
    "/etc/shadow",
    "c:\\windows",
    "win.ini",
    "boot.ini",
    "/proc/self/",
    "php://",
    "file://",
];

const JNDI: &[&str] = &["${jndi:"];

/// Host names and URL schemes that only make sense as SSRF targets.
const SSRF: &[&str] = &[
    "169.254.169.254",
    "metadata.google.internal",
    "100.100.100.200",
    "gopher://",
    "dict://",
];

/// `s` cut to at most `max` bytes at a character boundary.
pub fn floor_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// Whether `hay` contains `needle` (given in lowercase), ASCII
/// case-insensitively.
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.len() < needle.len() {
        return false;
    }
    let first = needle[0];
    if first.is_ascii_uppercase() {
        // No byte lowercases to it.
        return false;
    }
    // Candidates are found with memchr (both cases of the first byte):
    // far fewer compares than trying every offset.
    let rest = &needle[1..];
    let starts = &hay[..=hay.len() - needle.len()];
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), starts).any(|i| {
        hay[i + 1..i + needle.len()]
            .iter()
            .zip(rest)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` (and `+` to a space); borrows when there is
/// nothing to decode. Invalid escapes stay as written.
pub fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Whether a host (from `scheme://HOST…` inside a query) is internal:
/// loopback, private, link-local, unspecified, `localhost`.
fn internal_host(h: &[u8]) -> bool {
    let end = h
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'&' | b'#' | b'\\' | b' ' | b'@'))
        .unwrap_or(h.len());
    let h = &h[..end];
    let Ok(h) = std::str::from_utf8(h) else {
        return false;
    };
    let host = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        h.rsplit_once(':').map_or(h, |(a, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                a
            } else {
                h
            }
        })
    };
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.is_unspecified(),
        Err(_) => false,
    }
}

fn first_hit(hay: &[u8], list: &[&'static str]) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|n| contains_ci(hay, n.as_bytes()))
}

/// Every pattern list in the order [`classify`] tries them.
const ALL: [&[&str]; 5] = [JNDI, SQLI, XSS, TRAVERSAL, SSRF];

/// All patterns in one case-insensitive automaton: one pass tells whether
/// any occurs, so a benign URL (nearly all of them) costs one scan rather
/// than one per pattern.
static ANY_PATTERN: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(ALL.iter().flat_map(|l| l.iter()))
        .expect("fixed URL pattern list builds")
});

/// The same patterns for the SIMD "Teddy" searcher, which skips ahead to
/// where a pattern may start instead of walking the automaton byte by byte
/// (a URL is searched folded to lower case); `None` where the CPU has none.
static ANY_PACKED: LazyLock<Option<packed::Searcher>> = LazyLock::new(|| {
    packed::Config::new()
        .only_teddy(true)
        .builder()
        .extend(
            ALL.iter()
                .flat_map(|l| l.iter())
                .map(|p| p.to_ascii_lowercase()),
        )
        .build()
});

thread_local! {
    /// The lower-case copy of the URL being searched, reused.
    static FOLDED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether any pattern occurs in `u`, ASCII case-insensitively.
fn any_pattern(u: &[u8]) -> bool {
    if let Some(searcher) = ANY_PACKED.as_ref().filter(|s| u.len() >= s.minimum_len()) {
        let found = FOLDED.with(|f| {
            f.try_borrow_mut().map(|mut folded| {
                folded.clear();
                folded.extend(u.iter().map(u8::to_ascii_lowercase));
                searcher.find(&folded[..]).is_some()
            })
        });
        if let Ok(found) = found {
            return found;
        }
    }
    ANY_PATTERN.is_match(u)
}

fn classify(u: &[u8]) -> Option<(AttackClass, &'static str)> {
    if any_pattern(u) {
        if let Some(hit) = classify_patterns(u) {
            return Some(hit);
        }
    }
    internal_url_in_query(u)
}

/// The first pattern list with a pattern in `u`, and that pattern.
fn classify_patterns(u: &[u8]) -> Option<(AttackClass, &'static str)> {
    if let Some(p) = first_hit(u, JNDI) {
        return Some((AttackClass::Jndi, p));
    }
    if let Some(p) = first_hit(u, SQLI) {
        return Some((AttackClass::Sqli, p));
    }
    if let Some(p) = first_hit(u, XSS) {
        return Some((AttackClass::Xss, p));
    }
    if let Some(p) = first_hit(u, TRAVERSAL) {
        return Some((AttackClass::Traversal, p));
    }
    // SSRF: metadata addresses anywhere; internal hosts only as a URL
    // inside the query (a parameter the server may fetch).
    if let Some(p) = first_hit(u, SSRF) {
        return Some((AttackClass::Ssrf, p));
    }
    None
}

/// SSRF by a URL to an internal host inside the query.
fn internal_url_in_query(u: &[u8]) -> Option<(AttackClass, &'static str)> {
    let q = u.iter().position(|b| *b == b'?')?;
    let query = &u[q..];
    let mut i = 0;
    while let Some(off) = query[i..].windows(3).position(|w| w == b"://") {
        let at = i + off + 3;
        if internal_host(&query[at..]) {
            return Some((AttackClass::Ssrf, "internal URL in query"));
        }
        i = at;
    }
    None
}

/// The attack class and pattern found in a request URL (path and query),
/// looking at its first `max_bytes` bytes.
pub fn inspect(url: &str, max_bytes: usize) -> Option<(AttackClass, &'static str)> {
    let u = floor_char(url, max_bytes).as_bytes();
    let once = percent_decode(u);
    if let Some(hit) = classify(&once) {
        return Some(hit);
    }
    if once.contains(&b'%') {
        // Doubly encoded (`%252e%252e%252f`).
        let twice = percent_decode(&once);
        if matches!(twice, Cow::Owned(_)) {
            return classify(&twice);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(&*percent_decode(b"/a%2e%2E%2fb+c"), b"/a../b c");
        assert_eq!(&*percent_decode(b"100%"), b"100%");
        assert_eq!(&*percent_decode(b"%4"), b"%4");
        assert_eq!(&*percent_decode(b"%41"), b"A");
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
    }

    /// `contains_ci` as first written: every offset tried.
    fn contains_ci_naive(hay: &[u8], needle: &[u8]) -> bool {
        if needle.is_empty() {
            return true;
        }
        if hay.len() < needle.len() {
            return false;
        }
        let first = needle[0];
        (0..=hay.len() - needle.len()).any(|i| {
            hay[i].to_ascii_lowercase() == first
                && hay[i..i + needle.len()]
                    .iter()
                    .zip(needle)
                    .all(|(a, b)| a.to_ascii_lowercase() == *b)
        })
    }

    #[test]
    fn contains_ci_agrees_with_every_offset_search() {
        // A small alphabet makes near misses, repeats and overlaps common.
        const ALPHABET: &[u8] = b"aAbB./:'1 \\xX\xc3";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let hay: Vec<u8> = (0..next() % 24)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let needle: Vec<u8> = (0..next() % 5)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            assert_eq!(
                contains_ci(&hay, &needle),
                contains_ci_naive(&hay, &needle),
                "{hay:?} / {needle:?}"
            );
        }
        for (hay, needle) in [
            (&b"xUNION SELECT"[..], &b"union select"[..]),
            (b"../", b"../"),
            (b"..", b"../"),
            (b"abc", b""),
            (b"ABC", b"ABC"),
            (b"aab", b"ab"),
        ] {
            assert_eq!(contains_ci(hay, needle), contains_ci_naive(hay, needle));
        }
    }

    /// `classify` without the one-pass prefilter, as it was.
    fn classify_unfiltered(u: &[u8]) -> Option<(AttackClass, &'static str)> {
        classify_patterns(u).or_else(|| internal_url_in_query(u))
    }

    #[test]
    fn patterns_are_lowercase_for_contains_ci() {
        for p in ALL.iter().flat_map(|l| l.iter()) {
            assert_eq!(*p, p.to_ascii_lowercase(), "{p}");
        }
    }

    #[test]
    fn prefilter_changes_no_verdict() {
        let mut urls: Vec<String> = vec![
            "/".into(),
            "".into(),
            "/products/17".into(),
            "/api/v1/session?next=/home".into(),
            "/x?u=http://10.0.0.1/".into(),
            "/x?u=HTTP://LOCALHOST:8080/a".into(),
            "/A?B=${JNDI:ldap://x}".into(),
            "/q?a=1' OR '1'='1".into(),
            "/q?x=<SVG/onload=alert(1)>".into(),
            "/..%2F..%2Fetc/passwd".into(),
            "/f?u=GOPHER://x".into(),
            "/ünïcode/ä?q=Select".into(),
            "/sleep(/".into(),
            "/a/../b".into(),
            "/a/.%2e/b".into(),
        ];
        // Every pattern alone, in upper case, cut short and with neighbours.
        for p in ALL.iter().flat_map(|l| l.iter()) {
            urls.push(format!("/x?q={p}"));
            urls.push(format!("/x?q={}", p.to_ascii_uppercase()));
            urls.push(format!("/x?q={}", &p[..p.len() - 1]));
            urls.push(format!("{p}{p}"));
            urls.push(format!("/a{}b", p.replace('/', "%2f")));
        }
        for u in &urls {
            let b = u.as_bytes();
            assert_eq!(classify(b), classify_unfiltered(b), "{u}");
            let once = percent_decode(b);
            assert_eq!(classify(&once), classify_unfiltered(&once), "{u}");
        }
    }

    #[test]
    fn the_simd_search_finds_what_the_automaton_finds() {
        let pad = "/static/assets/app.bundle.min.js?v=20250106&lang=en-US&x=";
        let mut urls: Vec<String> = vec![pad.into(), pad.repeat(4), String::new(), "/a".into()];
        for p in ALL.iter().flat_map(|l| l.iter()) {
            let upper = p.to_ascii_uppercase();
            for q in [p.to_string(), upper.clone(), p[..p.len() - 1].to_string()] {
                urls.push(format!("{pad}{q}"));
                urls.push(format!("{q}{pad}"));
                urls.push(format!("{pad}{q}{pad}"));
                urls.push(q);
            }
        }
        let mut packed_used = 0;
        for u in &urls {
            let b = u.as_bytes();
            assert_eq!(any_pattern(b), ANY_PATTERN.is_match(b), "{u}");
            if ANY_PACKED
                .as_ref()
                .is_some_and(|s| b.len() >= s.minimum_len())
            {
                packed_used += 1;
            }
        }
        if ANY_PACKED.is_some() {
            assert!(packed_used > 100, "{packed_used}");
        }
    }

    #[test]
    fn classes() {
        let c = |u| inspect(u, 4096).map(|h| h.0);
        assert_eq!(
            c("/item?id=1%20UNION%20SELECT%20password"),
            Some(AttackClass::Sqli)
        );
        assert_eq!(c("/q?s=%3Cscript%3Ealert(1)"), Some(AttackClass::Xss));
        assert_eq!(
            c("/static/..%2f..%2fetc/passwd"),
            Some(AttackClass::Traversal)
        );
        assert_eq!(c("/x?f=%252e%252e%252fetc"), Some(AttackClass::Traversal));
        assert_eq!(
            c("/fetch?url=http://169.254.169.254/latest/meta-data/"),
            Some(AttackClass::Ssrf)
        );
        assert_eq!(
            c("/fetch?url=http%3A%2F%2F10.0.0.5%3A8080%2Fadmin"),
            Some(AttackClass::Ssrf)
        );
        assert_eq!(c("/fetch?url=http://localhost/"), Some(AttackClass::Ssrf));
        assert_eq!(c("/fetch?url=http://[::1]:80/"), Some(AttackClass::Ssrf));
        assert_eq!(c("/a?x=${jndi:ldap://e.com/a}"), Some(AttackClass::Jndi));
        // Benign.
        assert_eq!(c("/fetch?url=https://example.com/x"), None);
        assert_eq!(c("/index.html?q=select+a+union+member"), None);
        assert_eq!(c("/localhost/page"), None);
        assert_eq!(c("/search?q=100%25+off"), None);
        // Past the budget: not inspected.
        let long = format!("/{}?id=1 union select 1", "a".repeat(200));
        assert_eq!(inspect(&long, 100), None);
    }
}
