//! Redaction of personal data and secrets before an event is stored.
//!
//! The ledger is append-only and tamper-evident: whatever reaches it stays
//! until retention deletes its whole segment. A password that a client
//! logged by mistake cannot be edited out later without breaking the hash
//! chain, so it has to be removed on the way in. A [`Redactor`] is built
//! once from a [`RedactConfig`] and applied to every decoded, stamped event
//! (`vigil.*` already set) just before it is serialized for the ledger.
//!
//! Detectors ([`Kind`]) find e-mail addresses, payment card numbers (Luhn
//! checked), IBANs (mod-97 checked), international phone numbers, JWTs,
//! bearer tokens, well-known API key formats, passwords in URLs and
//! `key=value` / `"key":"value"` pairs whose key names a secret; custom
//! regexes add more. Each detector first runs a cheap test for its trigger
//! bytes (`@`, a run of digits, `eyJ`, `=`, a key prefix) and only then a
//! regex, so events without candidates cost a few `memchr` scans.
//!
//! What is found is masked (`[REDACTED:email]`), replaced by a keyed hash
//! (`hmac:3f1c…`, 16 hex digits, equal inputs give equal outputs so they
//! still correlate) or the whole field is dropped ([`Mode`]).
//! `event.original` is always in scope: it repeats the whole message.
//!
//! ```
//! use vigil_parse::redact::{Kind, RedactConfig, Redactor};
//! use vigil_parse::{parse_line, ParseOptions};
//! let r = Redactor::new(RedactConfig {
//!     kinds: vec![Kind::Email, Kind::SecretPair],
//!     ..RedactConfig::default()
//! })
//! .unwrap();
//! let mut ev = parse_line(b"login alice@example.com password=hunter2", &ParseOptions::default());
//! let mut tally = r.tally();
//! r.redact(&mut ev, &mut tally);
//! assert_eq!(
//!     ev.get_str("message"),
//!     Some("login [REDACTED:email] password=[REDACTED:secret_pair]")
//! );
//! // Counted per field: `message` and `event.original` held both.
//! assert_eq!(r.counts(&tally), vec![("secret_pair", 2), ("email", 2)]);
//! ```

use std::str::FromStr;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use hmac::{Hmac, Mac};
use regex::Regex;
use serde_json::Value;
use sha2::Sha256;
use vigil_event::Event;

mod triggers;

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// E-mail addresses (`alice@example.com`).
    Email,
    /// Payment card numbers: 13–19 digits, optionally grouped by spaces or
    /// dashes, with a card-network prefix and a valid Luhn check digit.
    CreditCard,
    /// International bank account numbers with a valid mod-97 checksum.
    Iban,
    /// Phone numbers in international form (`+49 30 1234567`). Numbers
    /// without `+` are left alone: they are indistinguishable from ports,
    /// counters and timestamps.
    Phone,
    /// JSON Web Tokens (`eyJ….eyJ….…`).
    Jwt,
    /// The credential after `Bearer` (as in `Authorization: Bearer …`).
    Bearer,
    /// API keys with a recognisable prefix: AWS (`AKIA…`), GitHub (`ghp_…`),
    /// Slack (`xoxb-…`), Stripe (`sk_live_…`), GitLab (`glpat-…`), Google
    /// (`AIza…`) and Vigil's own tokens (`vgl_…`).
    ApiKey,
    /// The password in `scheme://user:password@host`.
    UrlPassword,
    /// The value of `key=value` or `"key":"value"` when the key names a
    /// secret (`password`, `passwd`, `pwd`, `secret`, `token`, `api_key`,
    /// `access_key`, `private_key`, `credentials`, also as a suffix as in
    /// `db_password`), and any event field with such a name.
    SecretPair,
}

impl Kind {
    /// Every built-in detector, in the order they run (secrets first, so a
    /// JWT inside a bearer header is reported once, as `bearer`).
    pub const ALL: [Kind; 9] = [
        Kind::UrlPassword,
        Kind::SecretPair,
        Kind::Bearer,
        Kind::Jwt,
        Kind::ApiKey,
        Kind::Email,
        Kind::CreditCard,
        Kind::Iban,
        Kind::Phone,
    ];

    /// The detectors on by default: credentials, which nobody needs to keep
    /// in a log. Personal data (e-mail, cards, IBANs, phones) is opt-in,
    /// because it is often what an investigation searches for.
    pub const DEFAULT: [Kind; 5] = [
        Kind::UrlPassword,
        Kind::SecretPair,
        Kind::Bearer,
        Kind::Jwt,
        Kind::ApiKey,
    ];

    /// The name used in config, masks and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::ApiKey => "api_key",
            Kind::UrlPassword => "url_password",
            Kind::SecretPair => "secret_pair",
        }
    }
}

impl Kind {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Whether [`triggers::scan`] decides if this detector runs.
    fn has_trigger(self) -> bool {
        matches!(
            self,
            Kind::UrlPassword | Kind::SecretPair | Kind::Bearer | Kind::Jwt | Kind::ApiKey
        )
    }
}

impl FromStr for Kind {
    type Err = RedactError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| RedactError::UnknownKind(s.to_string()))
    }
}

/// What happens to a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Replace the match with `[REDACTED:<kind>]`.
    #[default]
    Mask,
    /// Replace the match with `hmac:<16 hex digits>`, a keyed HMAC-SHA256
    /// of it: the same value gives the same output, so events still
    /// correlate, but without the key the value cannot be confirmed.
    Hash,
    /// Remove the whole field that holds a match.
    Drop,
}

impl FromStr for Mode {
    type Err = RedactError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mask" => Ok(Mode::Mask),
            "hash" => Ok(Mode::Hash),
            "drop" => Ok(Mode::Drop),
            other => Err(RedactError::UnknownMode(other.to_string())),
        }
    }
}

/// A detector given as a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPattern {
    /// Its kind name, shown in masks and metrics (`[a-z0-9_]{1,32}`).
    pub name: String,
    /// The regex; the whole match is redacted.
    pub pattern: String,
    /// Its mode; `None` uses [`RedactConfig::mode`].
    pub mode: Option<Mode>,
}

/// Which fields are searched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldScope {
    /// Every string field except Vigil's own `vigil.*`.
    #[default]
    All,
    /// These dotted paths and everything below them, plus `event.original`.
    Paths(Vec<String>),
}

/// How to redact; turned into a [`Redactor`] by [`Redactor::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactConfig {
    /// Built-in detectors to run.
    pub kinds: Vec<Kind>,
    /// Mode for every detector without an entry in `kind_modes`.
    pub mode: Mode,
    /// Per-detector modes.
    pub kind_modes: Vec<(Kind, Mode)>,
    /// Additional regex detectors, run after the built-in ones.
    pub custom: Vec<CustomPattern>,
    /// Fields searched.
    pub fields: FieldScope,
    /// Only events whose `vigil.source` or `vigil.input` is listed are
    /// redacted; empty means every event.
    pub sources: Vec<String>,
    /// The HMAC key for [`Mode::Hash`] (at least 16 bytes).
    pub hash_key: Option<Vec<u8>>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            kinds: Kind::DEFAULT.to_vec(),
            mode: Mode::Mask,
            kind_modes: Vec::new(),
            custom: Vec::new(),
            fields: FieldScope::All,
            sources: Vec::new(),
            hash_key: None,
        }
    }
}

/// A redaction setting that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedactError {
    /// Not a detector name.
    #[error("unknown redaction kind {0:?} (known: email, credit_card, iban, phone, jwt, bearer, api_key, url_password, secret_pair)")]
    UnknownKind(String),
    /// Not a mode name.
    #[error("unknown redaction mode {0:?} (use mask, hash or drop)")]
    UnknownMode(String),
    /// A custom detector's name is malformed or taken.
    #[error("custom redaction name {0:?} must be 1-32 of a-z, 0-9, _ and differ from the built-in kinds")]
    BadName(String),
    /// A custom detector's regex does not compile.
    #[error("custom redaction {name:?}: invalid pattern: {message}")]
    BadPattern {
        /// The custom detector.
        name: String,
        /// What the regex compiler said.
        message: String,
    },
    /// `hash` mode is used but no key was given, or it is too short.
    #[error("redaction mode \"hash\" needs a key of at least 16 bytes")]
    MissingKey,
}

/// Counts of redacted matches per kind, filled by [`Redactor::redact`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: Vec<u64>,
}

impl Tally {
    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }
}

enum Detector {
    Builtin(Kind),
    Custom(Regex),
}

struct Rule {
    label: String,
    mode: Mode,
    detector: Detector,
}

/// Applies a [`RedactConfig`] to events. Cheap to share between threads.
pub struct Redactor {
    rules: Vec<Rule>,
    /// Index of the `secret_pair` rule: also applied to fields named like secrets.
    secret_rule: Option<usize>,
    fields: FieldScope,
    sources: Vec<String>,
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.label).collect::<Vec<_>>(),
            )
            .field("fields", &self.fields)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// What became of one string.
enum Outcome {
    Keep,
    Replace(String),
    Drop,
}

impl Redactor {
    /// Compiles the detectors; fails on a bad custom regex or name, or a
    /// `hash` mode without a key.
    pub fn new(cfg: RedactConfig) -> Result<Redactor, RedactError> {
        let mode_of = |k: Kind| {
            cfg.kind_modes
                .iter()
                .rev()
                .find(|(kk, _)| *kk == k)
                .map_or(cfg.mode, |(_, m)| *m)
        };
        let mut rules: Vec<Rule> = Kind::ALL
            .into_iter()
            .filter(|k| cfg.kinds.contains(k))
            .map(|k| Rule {
                label: k.name().to_string(),
                mode: mode_of(k),
                detector: Detector::Builtin(k),
            })
            .collect();
        for c in &cfg.custom {
            let valid = !c.name.is_empty()
                && c.name.len() <= 32
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && c.name.parse::<Kind>().is_err()
                && !rules.iter().any(|r| r.label == c.name);
            if !valid {
                return Err(RedactError::BadName(c.name.clone()));
            }
            let re = regex::RegexBuilder::new(&c.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| RedactError::BadPattern {
                    name: c.name.clone(),
                    message: e.to_string(),
                })?;
            rules.push(Rule {
                label: c.name.clone(),
                mode: c.mode.unwrap_or(cfg.mode),
                detector: Detector::Custom(re),
            });
        }
        if rules.iter().any(|r| r.mode == Mode::Hash)
            && cfg.hash_key.as_ref().is_none_or(|k| k.len() < 16)
        {
            return Err(RedactError::MissingKey);
        }
        let secret_rule = rules
            .iter()
            .position(|r| matches!(r.detector, Detector::Builtin(Kind::SecretPair)));
        Ok(Redactor {
            rules,
            secret_rule,
            fields: cfg.fields,
            sources: cfg.sources,
            key: cfg.hash_key,
        })
    }

    /// A zeroed tally for [`Redactor::redact`].
    pub fn tally(&self) -> Tally {
        Tally {
            counts: vec![0; self.rules.len()],
        }
    }

    /// The kinds with a non-zero count in `tally`, with their counts, in
    /// detector order (the server adds them to `vigil_redactions_total`).
    pub fn counts<'a>(&'a self, tally: &Tally) -> Vec<(&'a str, u64)> {
        self.rules
            .iter()
            .zip(&tally.counts)
            .filter(|(_, &n)| n > 0)
            .map(|(r, &n)| (r.label.as_str(), n))
            .collect()
    }

    /// Every kind this redactor runs, for metrics that should show zeros.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.label.as_str())
    }

    /// Redacts `ev` in place when its source is in scope; adds what was
    /// found to `tally`. Vigil's own fields (`vigil.*`) are never touched.
    pub fn redact(&self, ev: &mut Event, tally: &mut Tally) {
        if tally.counts.len() != self.rules.len() {
            *tally = self.tally();
        }
        if !self.source_in_scope(ev) {
            return;
        }
        let mut path = String::new();
        if ev.as_map().keys().any(|k| k.contains('.')) {
            // A top-level key holding a dot cannot be addressed by path;
            // work on the whole map instead (rare: clients' odd keys).
            let keys: Vec<String> = ev
                .as_map()
                .keys()
                .filter(|k| k.as_str() != "vigil")
                .cloned()
                .collect();
            let Value::Object(mut root) = std::mem::take(ev).into_json() else {
                return;
            };
            for k in keys {
                if let Some(v) = root.get_mut(&k) {
                    path.clear();
                    path.push_str(&k);
                    if self.walk(&mut path, &k, v, &mut tally.counts) {
                        root.remove(&k);
                    }
                }
            }
            *ev = Event::from_json(Value::Object(root), usize::MAX).unwrap_or_default();
            return;
        }
        // Walked in place: cloning every top-level key and looking each up
        // again cost more than the walk itself on typical events.
        let root = ev.as_map_mut();
        let mut dropped: Vec<String> = Vec::new();
        for (k, v) in root.iter_mut() {
            if k == "vigil" {
                continue;
            }
            path.clear();
            path.push_str(k);
            if self.walk(&mut path, k, v, &mut tally.counts) {
                dropped.push(k.clone());
            }
        }
        // Removed in walk order, as one by one during the walk would: the
        // map's remaining order (a swap-remove each) comes out the same.
        for k in dropped {
            root.remove(&k);
        }
    }

    /// Redacts one text as if it were an in-scope field; `None` when the
    /// field would be dropped.
    pub fn redact_text(&self, text: &str, tally: &mut Tally) -> Option<String> {
        if tally.counts.len() != self.rules.len() {
            *tally = self.tally();
        }
        match self.text(text, &mut tally.counts) {
            Outcome::Keep => Some(text.to_string()),
            Outcome::Replace(s) => Some(s),
            Outcome::Drop => None,
        }
    }

    fn source_in_scope(&self, ev: &Event) -> bool {
        if self.sources.is_empty() {
            return true;
        }
        let src = ev.get_str(vigil_event::fields::VIGIL_SOURCE);
        let input = ev.get_str(vigil_event::fields::VIGIL_INPUT);
        self.sources
            .iter()
            .any(|s| Some(s.as_str()) == src || Some(s.as_str()) == input)
    }

    fn field_in_scope(&self, path: &str) -> bool {
        match &self.fields {
            FieldScope::All => true,
            FieldScope::Paths(paths) => {
                path == vigil_event::fields::EVENT_ORIGINAL
                    || paths.iter().any(|p| {
                        path == p
                            || (path.len() > p.len()
                                && path.starts_with(p.as_str())
                                && path.as_bytes()[p.len()] == b'.')
                    })
            }
        }
    }

    /// Redacts a value in place; true when the caller must remove it.
    fn walk(&self, path: &mut String, key: &str, v: &mut Value, counts: &mut [u64]) -> bool {
        match v {
            Value::String(s) => {
                if !self.field_in_scope(path) {
                    return false;
                }
                if let Some(i) = self.secret_rule.filter(|_| is_secret_key(key)) {
                    if s.is_empty() {
                        return false;
                    }
                    counts[i] += 1;
                    return match self.replacement(i, s) {
                        Some(r) => {
                            *s = r;
                            false
                        }
                        None => true,
                    };
                }
                match self.text(s, counts) {
                    Outcome::Keep => false,
                    Outcome::Replace(r) => {
                        *s = r;
                        false
                    }
                    Outcome::Drop => true,
                }
            }
            Value::Number(n) => {
                let Some(i) = self.secret_rule.filter(|_| is_secret_key(key)) else {
                    return false;
                };
                if !self.field_in_scope(path) {
                    return false;
                }
                counts[i] += 1;
                match self.replacement(i, &n.to_string()) {
                    Some(r) => {
                        *v = Value::String(r);
                        false
                    }
                    None => true,
                }
            }
            Value::Object(map) => {
                let mut dropped = Vec::new();
                for (k, child) in map.iter_mut() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    if self.walk(path, k, child, counts) {
                        dropped.push(k.clone());
                    }
                    path.truncate(len);
                }
                for k in dropped {
                    map.remove(&k);
                }
                false
            }
            Value::Array(items) => {
                let mut keep = Vec::with_capacity(items.len());
                for item in items.iter_mut() {
                    keep.push(!self.walk(path, key, item, counts));
                }
                let mut it = keep.into_iter();
                items.retain(|_| it.next().unwrap_or(true));
                false
            }
            Value::Bool(_) | Value::Null => false,
        }
    }

    /// The text that replaces `found` under rule `i`; `None` for drop.
    fn replacement(&self, i: usize, found: &str) -> Option<String> {
        let rule = &self.rules[i];
        match rule.mode {
            Mode::Mask => Some(format!("[REDACTED:{}]", rule.label)),
            Mode::Hash => {
                let key = self.key.as_deref().unwrap_or_default();
                // new_from_slice accepts any key length for HMAC.
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
                mac.update(found.as_bytes());
                let tag = mac.finalize().into_bytes();
                Some(format!("hmac:{}", hex::encode(&tag[..8])))
            }
            Mode::Drop => None,
        }
    }

    fn text(&self, text: &str, counts: &mut [u64]) -> Outcome {
        let mut cur: Option<String> = None;
        let mut spans = Vec::new();
        // One scan tells which credential detectors can match at all;
        // replacements never add a trigger, so it holds for the whole loop.
        let mut triggered: Option<u16> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let s = cur.as_deref().unwrap_or(text);
            spans.clear();
            match &rule.detector {
                Detector::Builtin(k) if k.has_trigger() => {
                    let mask = *triggered.get_or_insert_with(|| triggers::scan(text.as_bytes()));
                    if mask & k.bit() != 0 {
                        find(*k, s, &mut spans);
                    }
                }
                Detector::Builtin(k) => find(*k, s, &mut spans),
                Detector::Custom(re) => spans.extend(
                    re.find_iter(s)
                        .filter(|m| !m.is_empty())
                        .map(|m| (m.start(), m.end())),
                ),
            }
            if spans.is_empty() {
                continue;
            }
            counts[i] += spans.len() as u64;
            if rule.mode == Mode::Drop {
                return Outcome::Drop;
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for &(a, b) in spans.iter() {
                out.push_str(&s[last..a]);
                out.push_str(&self.replacement(i, &s[a..b]).unwrap_or_default());
                last = b;
            }
            out.push_str(&s[last..]);
            cur = Some(out);
        }
        match cur {
            Some(s) => Outcome::Replace(s),
            None => Outcome::Keep,
        }
    }
}

/// Secret-like key names: the key is one of these or ends with one
/// (`db_password`, `access_token`). Checked without allocating.
const SECRET_SUFFIXES: [&str; 11] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "credential",
    "credentials",
];

/// Whether a field or parameter name names a secret.
pub fn is_secret_key(key: &str) -> bool {
    // `pwd` only in lower case: `PWD=/home/alice` is sudo's and the
    // shell's working directory.
    if key == "pwd" || key.ends_with("_pwd") {
        return true;
    }
    let k = key.as_bytes();
    // Most keys (`name`, `ip`, `outcome`) end unlike every secret word:
    // their last three bytes say so before eleven comparisons would.
    let Some(tail) = k.len().checked_sub(3).map(|i| &k[i..]) else {
        return false;
    };
    let tail = [
        tail[0].to_ascii_lowercase(),
        tail[1].to_ascii_lowercase(),
        tail[2].to_ascii_lowercase(),
    ];
    if !SECRET_TAILS.contains(&tail) {
        return false;
    }
    SECRET_SUFFIXES
        .iter()
        .any(|s| k.len() >= s.len() && k[k.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes()))
}

/// The last three bytes of each of [`SECRET_SUFFIXES`], lower case.
const SECRET_TAILS: [[u8; 3]; 7] = [
    *b"ord", *b"swd", *b"ret", *b"ken", *b"key", *b"ial", *b"als",
];

/// Appends the byte ranges of `kind`'s matches in `s` (ascending, disjoint).
fn find(kind: Kind, s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    match kind {
        Kind::Email => {
            if memchr::memchr(b'@', b).is_some() {
                out.extend(EMAIL.find_iter(s).map(|m| (m.start(), m.end())));
            }
        }
        Kind::CreditCard => {
            if b.iter().filter(|c| c.is_ascii_digit()).count() >= 13 {
                find_cards(b, out);
            }
        }
        Kind::Iban => {
            if b.len() >= 15
                && b.windows(4).any(|w| {
                    w[0].is_ascii_uppercase()
                        && w[1].is_ascii_uppercase()
                        && w[2].is_ascii_digit()
                        && w[3].is_ascii_digit()
                })
            {
                out.extend(
                    IBAN.find_iter(s)
                        .filter(|m| iban_valid(m.as_str()))
                        .map(|m| (m.start(), m.end())),
                );
            }
        }
        Kind::Phone => {
            if memchr::memchr(b'+', b).is_some() {
                out.extend(
                    PHONE
                        .find_iter(s)
                        .filter(|m| {
                            let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                            (8..=15).contains(&digits)
                                && !b[..m.start()].last().is_some_and(|c| is_word(*c))
                                && !b[m.end()..].first().is_some_and(|c| is_word(*c))
                        })
                        .map(|m| (m.start(), m.end())),
                );
            }
        }
        Kind::Jwt => {
            out.extend(
                JWT.find_iter(s)
                    .filter(|m| !b[..m.start()].last().is_some_and(|c| is_b64url(*c)))
                    .map(|m| (m.start(), m.end())),
            );
        }
        Kind::Bearer => {
            out.extend(
                BEARER
                    .captures_iter(s)
                    .filter_map(|c| c.get(1))
                    .map(|m| (m.start(), m.end())),
            );
        }
        Kind::ApiKey => {
            out.extend(API_KEY.find_iter(s).map(|m| (m.start(), m.end())));
        }
        Kind::UrlPassword => {
            if memchr::memchr(b'@', b).is_some() {
                out.extend(
                    URL_PASSWORD
                        .captures_iter(s)
                        .filter_map(|c| c.get(1))
                        .map(|m| (m.start(), m.end())),
                );
            }
        }
        Kind::SecretPair => {
            if memchr::memchr2(b'=', b':', b).is_some() {
                find_secret_pairs(s, out);
            }
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in redaction pattern compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*\.[a-z]{2,24}\b",
    )
});

static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)\b")
});

static PHONE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\+[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,5}\)?){1,6}"));

static JWT: LazyLock<Regex> =
    LazyLock::new(|| re(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"));

static BEARER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)"));

static API_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"|gh[pousr]_[A-Za-z0-9]{36,251}",
        r"|github_pat_[A-Za-z0-9_]{22,244}",
        r"|xox[abposr]-[A-Za-z0-9-]{10,250}",
        r"|[sr]k_live_[A-Za-z0-9]{16,247}",
        r"|glpat-[A-Za-z0-9_-]{20,}",
        r"|AIza[0-9A-Za-z_-]{35}",
        r"|vgl_[A-Za-z0-9]{16,256})\b",
    ))
});

static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/@?#]{0,256}:([^\s/@?#]{1,256})@"));

/// The words a secret key ends with (see [`SECRET_SUFFIXES`]), found in
/// one pass; the key around each hit is then checked by hand, which is
/// far cheaper than a case-insensitive regex with a free-form key prefix.
static SECRET_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(SECRET_SUFFIXES.iter().copied().chain(["pwd"]))
        .expect("fixed word list builds")
});

/// Longest key prefix and value looked at, in bytes.
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 1024;

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// `key=value`, `key = "value"`, `key='value'` and `"key": "value"` where
/// the key ends in a secret word; appends the value's span (inside quotes).
fn find_secret_pairs(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let skip_blanks = |mut p: usize| {
        while p < b.len() && matches!(b[p], b' ' | b'\t') {
            p += 1;
        }
        p
    };
    let mut last_end = 0;
    for m in SECRET_WORDS.find_iter(b) {
        let end = m.end();
        if m.start() < last_end || b.get(end).is_some_and(|&c| is_key_byte(c)) {
            continue;
        }
        let mut start = m.start();
        while start > 0 && is_key_byte(b[start - 1]) && m.start() - start < MAX_KEY {
            start -= 1;
        }
        if start > 0 && is_key_byte(b[start - 1]) {
            continue;
        }
        if !is_secret_key(&s[start..end]) {
            continue;
        }
        let quoted_key = start > 0 && b[start - 1] == b'"' && b.get(end) == Some(&b'"');
        let mut p = skip_blanks(if quoted_key { end + 1 } else { end });
        match b.get(p) {
            Some(b'=') => {}
            // `"key": …` only for a quoted key: `Password: changed` is prose.
            Some(b':') if quoted_key => {}
            _ => continue,
        }
        p = skip_blanks(p + 1);
        let span = match b.get(p) {
            Some(&q @ (b'"' | b'\'')) => {
                let mut z = p + 1;
                while z < b.len() && b[z] != q && z - p <= MAX_VALUE {
                    z += if b[z] == b'\\' && q == b'"' { 2 } else { 1 };
                }
                (z < b.len() && b[z] == q).then_some((p + 1, z))
            }
            Some(_) if !quoted_key => {
                let mut z = p;
                while z < b.len()
                    && !b[z].is_ascii_whitespace()
                    && !matches!(b[z], b'&' | b',' | b';' | b'"' | b'\'')
                    && z - p < MAX_VALUE
                {
                    z += 1;
                }
                Some((p, z))
            }
            _ => None,
        };
        if let Some((a, z)) = span.filter(|(a, z)| z > a) {
            // A value cut at the length limit ends at a char boundary.
            let z = (z..=b.len())
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(b.len());
            out.push((a, z));
            last_end = z;
        }
    }
}

/// Card-number candidates: digit groups joined by one consistent
/// separator (space or dash), not glued to letters, dots or more digits.
fn find_cards(b: &[u8], out: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (is_word(b[i - 1]) || b[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        let start = i;
        groups.clear();
        let mut sep: Option<u8> = None;
        let mut j = i;
        loop {
            let g = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((g, j));
            let joins = j + 1 < b.len()
                && matches!(b[j], b' ' | b'-')
                && b[j + 1].is_ascii_digit()
                && sep.is_none_or(|c| c == b[j]);
            if !joins || groups.len() >= 19 {
                break;
            }
            sep = Some(b[j]);
            j += 1;
        }
        // The longest prefix of whole groups that is a card number wins:
        // "4111 1111 1111 1111 2024" still finds the card.
        let mut digits = [0u8; 19];
        for k in (1..=groups.len()).rev() {
            let end = groups[k - 1].1;
            let n: usize = groups[..k].iter().map(|(a, z)| z - a).sum();
            if n > 19 {
                continue;
            }
            if n < 13 {
                break;
            }
            let glued = k == groups.len()
                && b.get(end).is_some_and(|&c| {
                    is_word(c) || (c == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit))
                });
            if glued {
                continue;
            }
            let mut m = 0;
            for &(a, z) in &groups[..k] {
                digits[m..m + (z - a)].copy_from_slice(&b[a..z]);
                m += z - a;
            }
            if card_prefix(&digits[..n]) && luhn(&digits[..n]) {
                out.push((start, end));
                break;
            }
        }
        i = j.max(i + 1);
    }
}

/// A card network's issuer prefix (Visa, Mastercard, Amex, Diners, JCB,
/// Discover, UnionPay): excludes epoch milliseconds and most counters.
fn card_prefix(d: &[u8]) -> bool {
    let num = |n: usize| {
        d[..n]
            .iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    match d[0] {
        b'4' => true,
        b'5' => (51..=55).contains(&num(2)),
        b'2' => (2221..=2720).contains(&num(4)),
        b'3' => matches!(num(2), 30 | 34..=38),
        b'6' => num(4) == 6011 || matches!(num(2), 62 | 65) || (644..=649).contains(&num(3)),
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let v = u32::from(c - b'0');
            if i % 2 == 1 {
                let x = v * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_valid(s: &str) -> bool {
    let chars: Vec<u8> = s.bytes().filter(|c| *c != b' ').collect();
    if !(15..=34).contains(&chars.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, ParseOptions};

    fn only(kind: Kind) -> Redactor {
        Redactor::new(RedactConfig {
            kinds: vec![kind],
            ..RedactConfig::default()
        })
        .unwrap()
    }

    fn all() -> Redactor {
        Redactor::new(RedactConfig {
            kinds: Kind::ALL.to_vec(),
            ..RedactConfig::default()
        })
        .unwrap()
    }

    fn red(r: &Redactor, s: &str) -> String {
        let mut t = r.tally();
        r.redact_text(s, &mut t).unwrap()
    }

    /// Each positive is fully replaced by the mask; each negative is untouched.
    fn check(kind: Kind, positives: &[&str], negatives: &[&str]) {
        let r = only(kind);
        let mask = format!("[REDACTED:{}]", kind.name());
        for p in positives {
            let line = format!("x {p} y");
            assert_eq!(
                red(&r, &line),
                format!("x {mask} y"),
                "{kind:?} missed {p:?}"
            );
        }
        for n in negatives {
            assert_eq!(red(&r, n), *n, "{kind:?} ate {n:?}");
        }
    }

    /// Text that no detector may touch: IPs, timestamps, UUIDs, versions, ports.
    pub(super) const HARMLESS: &[&str] = &[
        "Failed password for root from 203.0.113.9 port 52144 ssh2",
        "2024-01-12T06:30:00.123+01:00 host app[123]: started",
        "Jan 12 06:30:00 bastion sshd[4721]: Accepted publickey for alice",
        "request 123e4567-e89b-12d3-a456-426614174000 done in 1700000000000 ms",
        "nginx/1.25.3 openssl 3.0.13+quic kernel 6.8.0-45-generic",
        "listening on [::1]:8514 and 10.0.0.1:6514, ::ffff:192.0.2.1",
        "sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
        "max_tokens=4096 keys=12 tokenizer=bpe",
        "epoch 1705041000 seq 18446744073709551615 offset +0100",
        "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904 tag v2.4.1",
        "git clone https://github.com/org/repo.git",
        "root@bastion:~# ls",
    ];

    /// `is_secret_key` as first written: every suffix compared.
    fn is_secret_key_reference(key: &str) -> bool {
        if key == "pwd" || key.ends_with("_pwd") {
            return true;
        }
        let k = key.as_bytes();
        SECRET_SUFFIXES.iter().any(|s| {
            k.len() >= s.len() && k[k.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        })
    }

    #[test]
    fn secret_key_tails_cover_every_suffix() {
        for s in SECRET_SUFFIXES {
            let tail = s.as_bytes()[s.len() - 3..].to_ascii_lowercase();
            assert!(SECRET_TAILS.iter().any(|t| t[..] == tail[..]), "{s}");
        }
        let mut keys: Vec<String> = [
            "",
            "p",
            "pw",
            "pwd",
            "PWD",
            "x_pwd",
            "x_PWD",
            "Pwd",
            "ord",
            "key",
            "ken",
            "name",
            "source.ip",
            "outcome",
            "monkey",
            "turkey",
            "db_password",
            "DB_PASSWORD",
            "PassWd",
            "secrets",
            "tokens",
            "access_token",
            "credential",
            "Credentials",
            "api-key",
            "API_KEY",
            "apiKey",
            "private_key",
            "\u{e9}token",
            "tok\u{e9}n",
            "x\u{1}ret",
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        for s in SECRET_SUFFIXES.iter().chain(&["pwd"]) {
            for cut in 0..s.len() {
                keys.push(s[cut..].to_string());
                keys.push(s[..cut].to_string());
                keys.push(format!("x{}", s[cut..].to_uppercase()));
                keys.push(format!("{}y", s));
            }
        }
        for k in &keys {
            assert_eq!(is_secret_key(k), is_secret_key_reference(k), "{k:?}");
        }
    }

    #[test]
    fn nothing_harmless_is_eaten() {
        let r = all();
        for h in HARMLESS {
            assert_eq!(red(&r, h), *h);
        }
    }

    #[test]
    fn email() {
        check(
            Kind::Email,
            &["alice@example.com", "first.last+tag@mail.example.co.uk"],
            &["root@bastion", "user@10.0.0.1", "@example.com", "a@b.c"],
        );
        assert_eq!(
            red(&only(Kind::Email), "to=<bob@example.org>, status=sent"),
            "to=<[REDACTED:email]>, status=sent"
        );
    }

    #[test]
    fn credit_card() {
        check(
            Kind::CreditCard,
            &[
                "4111111111111111",
                "4111 1111 1111 1111",
                "5500-0000-0000-0004",
                "378282246310005",
                "6011111111111117",
            ],
            &[
                "4111111111111112",
                "1234567812345670",
                "4111 1111-1111 1111",
                "id 41111111111111111111111",
                "v4111111111111111",
                "2024-01-12 06:30:00 1700000000000",
                "+4111111111111111x",
            ],
        );
        // A trailing number after the card is not part of it.
        assert_eq!(
            red(&only(Kind::CreditCard), "card 4111 1111 1111 1111 2024"),
            "card [REDACTED:credit_card] 2024"
        );
    }

    #[test]
    fn iban() {
        check(
            Kind::Iban,
            &[
                "DE89370400440532013000",
                "GB82 WEST 1234 5698 7654 32",
                "FR1420041010050500013M02606",
            ],
            &[
                "DE89370400440532013001",
                "AB12 CDEF GHIJ",
                "HTTP2024ABCDEFGHIJKLMN",
            ],
        );
    }

    #[test]
    fn phone() {
        check(
            Kind::Phone,
            &[
                "+49 30 1234567",
                "+1-202-555-0143",
                "+442071838750",
                "+33 (1) 42 68 53 00",
            ],
            &[
                "+1 5",
                "2024-01-12T06:30:00+01:00",
                "build 1.2.3+20240112",
                "tz +0100 offset",
                "+0123456789",
                "port 5514 pid 12345678",
            ],
        );
    }

    #[test]
    fn jwt() {
        let t =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        check(
            Kind::Jwt,
            &[t, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
            &["eyJ alone", "xeyJhb.eyJz.abc"],
        );
    }

    #[test]
    fn bearer() {
        let r = only(Kind::Bearer);
        assert_eq!(
            red(&r, "Authorization: Bearer abcdef0123456789.xyz"),
            "Authorization: Bearer [REDACTED:bearer]"
        );
        assert_eq!(
            red(&r, "authorization: bearer dGVzdDp0ZXN0=="),
            "authorization: bearer [REDACTED:bearer]"
        );
        for n in [
            "the bearer of bad news",
            "Bearer short",
            "bearers 12345678901",
        ] {
            assert_eq!(red(&r, n), n);
        }
    }

    #[test]
    fn api_keys() {
        check(
            Kind::ApiKey,
            &[
                "AKIAIOSFODNN7EXAMPLE",
                "ghp_0123456789abcdefghijABCDEFGHIJ012345",
                "xoxb-123456789012-abcdefghij",
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "vgl_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "glpat-xxxxxxxxxxxxxxxxxxxx",
            ],
            &[
                "AKIA123",
                "ghp_short",
                "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
                "xoxo hugs",
                "vgl_tokens",
            ],
        );
    }

    #[test]
    fn url_password() {
        let r = only(Kind::UrlPassword);
        assert_eq!(
            red(&r, "connecting to postgres://app:s3cr3t@db:5432/prod"),
            "connecting to postgres://app:[REDACTED:url_password]@db:5432/prod"
        );
        for n in [
            "https://example.com:8443/path@x",
            "https://user@example.com/",
            "ssh://git@github.com:org/repo",
            "http://[::1]:8514/healthz",
        ] {
            assert_eq!(red(&r, n), n);
        }
    }

    #[test]
    fn secret_pairs() {
        let r = only(Kind::SecretPair);
        for (input, want) in [
            (
                "password=hunter2 user=bob",
                "password=[REDACTED:secret_pair] user=bob",
            ),
            (
                "GET /login?user=a&passwd=x1&next=/ ",
                "GET /login?user=a&passwd=[REDACTED:secret_pair]&next=/ ",
            ),
            (
                r#"{"user":"a","db_password":"p\"w"}"#,
                r#"{"user":"a","db_password":"[REDACTED:secret_pair]"}"#,
            ),
            (
                "api_key='abc def' ok",
                "api_key='[REDACTED:secret_pair]' ok",
            ),
            (
                "ACCESS_TOKEN = tok123",
                "ACCESS_TOKEN = [REDACTED:secret_pair]",
            ),
            ("pwd=abc", "pwd=[REDACTED:secret_pair]"),
            ("client-secret=zzz", "client-secret=[REDACTED:secret_pair]"),
        ] {
            assert_eq!(red(&r, input), want, "{input}");
        }
        for n in [
            "PWD=/home/alice",
            "max_tokens=100",
            "tokens=5",
            "token_count=5",
            "keyboard=us",
            "password: changed",
            "\"password_changed\":\"yes\"",
        ] {
            assert_eq!(red(&r, n), n);
        }
    }

    #[test]
    fn secret_named_fields_and_scope() {
        let r = Redactor::new(RedactConfig {
            kinds: vec![Kind::SecretPair, Kind::Email],
            fields: FieldScope::Paths(vec!["user".into(), "message".into()]),
            ..RedactConfig::default()
        })
        .unwrap();
        let mut ev = Event::from_json(
            serde_json::json!({
                "user": {"name": "bob@example.com", "password": "x", "pin_token": 1234},
                "message": "mail alice@example.com",
                "host": {"name": "carol@example.com"},
                "event": {"original": "raw carol@example.com"},
                "vigil": {"source": "dave@example.com"}
            }),
            32,
        )
        .unwrap();
        let mut t = r.tally();
        r.redact(&mut ev, &mut t);
        assert_eq!(ev.get_str("user.name"), Some("[REDACTED:email]"));
        assert_eq!(ev.get_str("user.password"), Some("[REDACTED:secret_pair]"));
        assert_eq!(ev.get_str("user.pin_token"), Some("[REDACTED:secret_pair]"));
        assert_eq!(ev.get_str("message"), Some("mail [REDACTED:email]"));
        // Out of scope: kept. Vigil's own fields are never touched.
        assert_eq!(ev.get_str("host.name"), Some("carol@example.com"));
        assert_eq!(ev.get_str("vigil.source"), Some("dave@example.com"));
        // event.original repeats everything, so it is always in scope.
        assert_eq!(ev.get_str("event.original"), Some("raw [REDACTED:email]"));
        assert_eq!(r.counts(&t), vec![("secret_pair", 2), ("email", 3)]);
    }

    #[test]
    fn source_scope() {
        let r = Redactor::new(RedactConfig {
            kinds: vec![Kind::Email],
            sources: vec!["crm".into(), "syslog-udp".into()],
            ..RedactConfig::default()
        })
        .unwrap();
        let mk = |src: &str, input: &str| {
            Event::from_json(
                serde_json::json!({"message": "a@example.com", "vigil": {"source": src, "input": input}}),
                8,
            )
            .unwrap()
        };
        let mut t = r.tally();
        for (src, input, redacted) in [
            ("crm", "http", true),
            ("10.0.0.1", "syslog-udp", true),
            ("web", "http", false),
        ] {
            let mut ev = mk(src, input);
            r.redact(&mut ev, &mut t);
            assert_eq!(
                ev.get_str("message") != Some("a@example.com"),
                redacted,
                "{src}"
            );
        }
    }

    #[test]
    fn dropped_top_level_fields_leave_the_same_key_order() {
        let r = Redactor::new(RedactConfig {
            kinds: vec![Kind::Email],
            mode: Mode::Drop,
            ..RedactConfig::default()
        })
        .unwrap();
        let mut ev = Event::from_json(
            serde_json::json!({
                "a": "alice@example.com",
                "b": "kept",
                "c": "bob@example.com",
                "d": {"e": "carol@example.com", "f": 1},
                "g": "kept too",
            }),
            8,
        )
        .unwrap();
        ev.set("vigil.input", "http");
        let mut t = r.tally();
        r.redact(&mut ev, &mut t);
        // What removing each dropped key during the walk leaves (a
        // swap-remove each): `a` takes `vigil`, then `c` takes `g`.
        let keys: Vec<&str> = ev.as_map().keys().map(String::as_str).collect();
        assert_eq!(keys, ["vigil", "b", "g", "d"]);
        assert_eq!(ev.get("d").unwrap(), &serde_json::json!({"f": 1}));
        assert_eq!(r.counts(&t), [("email", 3)]);
    }

    #[test]
    fn modes() {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let r = Redactor::new(RedactConfig {
            kinds: vec![Kind::Email, Kind::CreditCard, Kind::SecretPair],
            mode: Mode::Hash,
            kind_modes: vec![(Kind::CreditCard, Mode::Drop)],
            custom: vec![CustomPattern {
                name: "employee_id".into(),
                pattern: r"EMP-[0-9]{6}".into(),
                mode: Some(Mode::Mask),
            }],
            hash_key: Some(key.clone()),
            ..RedactConfig::default()
        })
        .unwrap();
        let mut ev = Event::from_json(
            serde_json::json!({
                "message": "alice@example.com EMP-123456",
                "other": "alice@example.com",
                "payment": {"card": "4111111111111111", "amount": 5},
                "tags": ["ok", "card 4111 1111 1111 1111"]
            }),
            8,
        )
        .unwrap();
        let mut t = r.tally();
        r.redact(&mut ev, &mut t);
        let h = ev.get_str("other").unwrap().to_string();
        assert!(h.starts_with("hmac:") && h.len() == 21, "{h}");
        // The same value hashes the same: it still correlates.
        assert_eq!(
            ev.get_str("message").unwrap(),
            format!("{h} [REDACTED:employee_id]")
        );
        assert!(ev.get("payment.card").is_none());
        assert_eq!(ev.get_i64("payment.amount"), Some(5));
        assert_eq!(ev.get("tags").unwrap(), &serde_json::json!(["ok"]));
        // Another key gives another hash.
        let r2 = Redactor::new(RedactConfig {
            kinds: vec![Kind::Email],
            mode: Mode::Hash,
            hash_key: Some(b"another key, 16+ bytes".to_vec()),
            ..RedactConfig::default()
        })
        .unwrap();
        assert_ne!(red(&r2, "alice@example.com"), h);
        // Drop of a top-level field.
        let r3 = Redactor::new(RedactConfig {
            kinds: vec![Kind::Email],
            mode: Mode::Drop,
            ..RedactConfig::default()
        })
        .unwrap();
        let mut ev = parse_line(b"mail from alice@example.com", &ParseOptions::default());
        r3.redact(&mut ev, &mut r3.tally());
        assert!(ev.get("message").is_none() && ev.get("event.original").is_none());
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            Redactor::new(RedactConfig {
                mode: Mode::Hash,
                ..RedactConfig::default()
            })
            .unwrap_err(),
            RedactError::MissingKey
        );
        let bad = |name: &str, pattern: &str| {
            Redactor::new(RedactConfig {
                custom: vec![CustomPattern {
                    name: name.into(),
                    pattern: pattern.into(),
                    mode: None,
                }],
                ..RedactConfig::default()
            })
            .unwrap_err()
        };
        assert!(matches!(bad("x", "("), RedactError::BadPattern { .. }));
        assert_eq!(bad("email", "x"), RedactError::BadName("email".into()));
        assert_eq!(
            bad("Bad Name", "x"),
            RedactError::BadName("Bad Name".into())
        );
        assert!("nope"
            .parse::<Kind>()
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert!("wipe".parse::<Mode>().is_err());
    }

    #[test]
    fn dotted_top_level_keys_are_redacted() {
        let r = only(Kind::SecretPair);
        let mut ev = Event::new();
        ev.set("message", "ok");
        let Value::Object(mut root) = ev.into_json() else {
            unreachable!()
        };
        root.insert(".odd".into(), Value::String("password=x".into()));
        let mut ev = Event::from_json(Value::Object(root), 8).unwrap();
        r.redact(&mut ev, &mut r.tally());
        assert_eq!(
            ev.as_map().get(".odd").and_then(Value::as_str),
            Some("password=[REDACTED:secret_pair]")
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let samples = [
            "user alice@example.com paid with 4111 1111 1111 1111 from +49 30 1234567",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_sig-sig",
            r#"{"password":"a\"b","api_key":"AKIAIOSFODNN7EXAMPLE","iban":"DE89 3704 0044 0532 0130 00"}"#,
            "postgres://u:p@h/db?token=abc&x=ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "é@ü.de 4١١١ ＋49 30 1234567 password=€€",
        ];
        let r = Redactor::new(RedactConfig {
            kinds: Kind::ALL.to_vec(),
            custom: vec![CustomPattern {
                name: "emp".into(),
                pattern: "EMP-[0-9]+".into(),
                mode: None,
            }],
            ..RedactConfig::default()
        })
        .unwrap();
        let mut t = r.tally();
        crate::mutate::for_each_mutation(&samples, 3000, 12, 0x5eed_1234, |line| {
            let s = String::from_utf8_lossy(line);
            let _ = r.redact_text(&s, &mut t);
            let mut ev = parse_line(line, &ParseOptions::default());
            r.redact(&mut ev, &mut t);
        });
    }
}
