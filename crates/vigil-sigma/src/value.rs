//! Value matching: one Sigma detection item (`field|mod1|mod2: values`)
//! compiled once into a [`FieldMatcher`] and evaluated against an
//! [`EventView`].
//!
//! Semantics follow the Sigma specification v2.1 and pySigma conventions:
//!
//! * Strings match case-insensitively (unless `cased`) and as whole values;
//!   `*` matches any run of characters, `?` exactly one; `\*`, `\?` and `\\`
//!   are escapes, a backslash before anything else is a literal backslash.
//! * A list of values is OR-ed; `all` makes it AND. A value expanded into
//!   several variants (`windash`, `base64offset`, `expand`) is OR-ed within
//!   that value even under `all`.
//! * `contains` / `startswith` / `endswith` add implicit wildcards; keyword
//!   searches (no field) are substring searches over every text in the event.
//! * Numbers and booleans in the rule match the same number or boolean held
//!   as a string in the event, and vice versa (`4624` matches `"4624"`).
//! * `null` matches a missing field or a null value.
//! * Modifiers are applied in the order written. Unknown modifiers and
//!   impossible combinations are refused with a [`ValueError`].
//!
//! Matching does not allocate for ASCII event values: patterns are
//! lower-cased at compile time, literal substring lists run through one
//! ASCII-case-insensitive Aho-Corasick automaton, and wildcard patterns use
//! a segment matcher (no regex per value).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use chrono::{Datelike, Timelike};
use regex::{Regex, RegexBuilder};
use serde_yaml::Value as Yaml;

use crate::event::{EventView, FieldValue};

/// Placeholder values for the `expand` modifier (`%name%` → list of
/// values), from config. Each value may itself use Sigma wildcards.
#[derive(Debug, Clone, Default)]
pub struct Placeholders(pub HashMap<String, Vec<String>>);

/// Why a detection item could not be compiled, e.g.
/// `unknown modifier 'contians'` or `modifier 're' needs a string value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn verr<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

/// Upper bound on the variants one value may expand into.
const MAX_VARIANTS: usize = 4096;

// ---------------------------------------------------------------------------
// Modifiers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Cased,
    Exists,
    Neq,
    Windash,
    Re,
    ReI,
    ReM,
    ReS,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Cidr,
    Expand,
    FieldRef,
    Cmp(CmpOp),
    Time(TimePart),
}

fn parse_modifier(name: &str) -> Result<Modifier, ValueError> {
    use Modifier::*;
    Ok(match name {
        "contains" => Contains,
        "startswith" => StartsWith,
        "endswith" => EndsWith,
        "all" => All,
        "cased" => Cased,
        "exists" => Exists,
        "neq" => Neq,
        "windash" => Windash,
        "re" => Re,
        "i" | "ignorecase" => ReI,
        "m" | "multiline" => ReM,
        "s" | "dotall" => ReS,
        "base64" => Base64,
        "base64offset" => Base64Offset,
        "utf16le" | "wide" => Utf16Le,
        "utf16be" => Utf16Be,
        "utf16" => Utf16,
        "cidr" => Cidr,
        "expand" => Expand,
        "fieldref" => FieldRef,
        "lt" => Cmp(CmpOp::Lt),
        "lte" => Cmp(CmpOp::Lte),
        "gt" => Cmp(CmpOp::Gt),
        "gte" => Cmp(CmpOp::Gte),
        "minute" => Time(TimePart::Minute),
        "hour" => Time(TimePart::Hour),
        "day" => Time(TimePart::Day),
        "week" => Time(TimePart::Week),
        "month" => Time(TimePart::Month),
        "year" => Time(TimePart::Year),
        "" => return verr("empty modifier"),
        other => return verr(format!("unknown modifier '{other}'")),
    })
}

fn modifier_name(m: Modifier) -> &'static str {
    use Modifier::*;
    match m {
        Contains => "contains",
        StartsWith => "startswith",
        EndsWith => "endswith",
        All => "all",
        Cased => "cased",
        Exists => "exists",
        Neq => "neq",
        Windash => "windash",
        Re => "re",
        ReI => "i",
        ReM => "m",
        ReS => "s",
        Base64 => "base64",
        Base64Offset => "base64offset",
        Utf16Le => "utf16le",
        Utf16Be => "utf16be",
        Utf16 => "utf16",
        Cidr => "cidr",
        Expand => "expand",
        FieldRef => "fieldref",
        Cmp(CmpOp::Lt) => "lt",
        Cmp(CmpOp::Lte) => "lte",
        Cmp(CmpOp::Gt) => "gt",
        Cmp(CmpOp::Gte) => "gte",
        Time(TimePart::Minute) => "minute",
        Time(TimePart::Hour) => "hour",
        Time(TimePart::Day) => "day",
        Time(TimePart::Week) => "week",
        Time(TimePart::Month) => "month",
        Time(TimePart::Year) => "year",
    }
}

// ---------------------------------------------------------------------------
// Raw rule values

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    fn cmp(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::I(a), Num::I(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    /// Parses event text as a number: decimal integer, float, or `0x` hex.
    fn parse(s: &str) -> Option<Num> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        if let Ok(i) = t.parse::<i64>() {
            return Some(Num::I(i));
        }
        if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u64::from_str_radix(h, 16)
                .ok()
                .map(|u| i64::try_from(u).map(Num::I).unwrap_or(Num::F(u as f64)));
        }
        // Only plain decimal floats; refuse "inf", "nan" and the like.
        if t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        {
            return t.parse::<f64>().ok().map(Num::F);
        }
        None
    }

    fn of_field(v: &FieldValue<'_>) -> Option<Num> {
        match v {
            FieldValue::Int(i) => Some(Num::I(*i)),
            FieldValue::Float(f) => Some(Num::F(*f)),
            FieldValue::Str(s) => Num::parse(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Raw {
    Str(String),
    Num(Num, String),
    Bool(bool),
    Null,
}

fn yaml_scalar(v: &Yaml) -> Result<Raw, ValueError> {
    Ok(match v {
        Yaml::Null => Raw::Null,
        Yaml::Bool(b) => Raw::Bool(*b),
        Yaml::String(s) => Raw::Str(s.clone()),
        Yaml::Number(n) => {
            let text = n.to_string();
            if let Some(i) = n.as_i64() {
                Raw::Num(Num::I(i), text)
            } else if let Some(f) = n.as_f64() {
                Raw::Num(Num::F(f), text)
            } else {
                return verr(format!("unsupported number {text}"));
            }
        }
        Yaml::Sequence(_) => return verr("nested lists are not allowed as values"),
        Yaml::Mapping(_) => return verr("a map is not allowed as a value"),
        Yaml::Tagged(t) => return verr(format!("tagged value !{} is not supported", t.tag)),
    })
}

fn yaml_values(v: &Yaml) -> Result<Vec<Raw>, ValueError> {
    match v {
        Yaml::Sequence(items) => {
            if items.is_empty() {
                return verr("empty value list");
            }
            items.iter().map(yaml_scalar).collect()
        }
        other => Ok(vec![yaml_scalar(other)?]),
    }
}

// ---------------------------------------------------------------------------
// Sigma strings (tokens) and value transformations

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Star,
    One,
    Ph(String),
}

/// Parses Sigma string syntax: wildcards, escapes and (with `expand`)
/// `%placeholders%` (`\%` is then a literal percent sign).
fn parse_sigma_str(s: &str, placeholders: bool) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => match chars.get(i + 1) {
                Some(&n @ ('*' | '?' | '\\')) => {
                    out.push(Tok::Lit(n));
                    i += 2;
                }
                Some('%') if placeholders => {
                    out.push(Tok::Lit('%'));
                    i += 2;
                }
                _ => {
                    out.push(Tok::Lit('\\'));
                    i += 1;
                }
            },
            '*' => {
                out.push(Tok::Star);
                i += 1;
            }
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '%' if placeholders => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '%' || c.is_whitespace())
                    .map(|p| i + 1 + p);
                match end {
                    Some(j) if j > i + 1 && chars[j] == '%' => {
                        out.push(Tok::Ph(chars[i + 1..j].iter().collect()));
                        i = j + 1;
                    }
                    _ => {
                        out.push(Tok::Lit('%'));
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

fn literal_toks(s: &str) -> Vec<Tok> {
    s.chars().map(Tok::Lit).collect()
}

/// One value while modifiers are applied.
#[derive(Debug, Clone)]
enum Val {
    S(Vec<Tok>),
    B(Vec<u8>),
    Num(Num, String),
    Bool(bool),
}

impl Val {
    /// The value as a Sigma string (numbers and booleans as their text).
    fn into_toks(self) -> Vec<Tok> {
        match self {
            Val::S(t) => t,
            Val::B(b) => literal_toks(&bytes_to_string(&b)),
            Val::Num(_, text) => literal_toks(&text),
            Val::Bool(b) => literal_toks(if b { "true" } else { "false" }),
        }
    }

    /// The value as plain bytes, for encoding modifiers.
    fn into_bytes(self, m: Modifier) -> Result<Vec<u8>, ValueError> {
        match self {
            Val::B(b) => Ok(b),
            other => {
                let toks = other.into_toks();
                let mut s = String::with_capacity(toks.len());
                for t in toks {
                    match t {
                        Tok::Lit(c) => s.push(c),
                        _ => {
                            return verr(format!(
                            "modifier '{}' cannot encode a value with wildcards or placeholders \
                                 (put it before 'contains'/'startswith'/'endswith')",
                            modifier_name(m)
                        ))
                        }
                    }
                }
                Ok(s.into_bytes())
            }
        }
    }
}

/// Bytes produced by an encoding modifier as text: UTF-8 when valid,
/// otherwise one char per byte (as pySigma does for `wide` alone).
fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

fn add_star_front(t: &mut Vec<Tok>) {
    if t.first() != Some(&Tok::Star) {
        t.insert(0, Tok::Star);
    }
}

fn add_star_back(t: &mut Vec<Tok>) {
    if t.last() != Some(&Tok::Star) {
        t.push(Tok::Star);
    }
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn is_word_char(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Lit(c)) if c.is_alphanumeric() || *c == '_')
}

/// `windash`: every dash-like character that starts a command line flag
/// (not preceded by a word character, followed by one: pySigma's
/// `\B[-/]\b`) is replaced by each of `-`, `/`, `–`, `—`, `―`.
fn windash(t: &[Tok]) -> Result<Vec<Vec<Tok>>, ValueError> {
    let positions: Vec<usize> = (0..t.len())
        .filter(|&i| {
            matches!(&t[i], Tok::Lit(c) if DASHES.contains(c))
                && !is_word_char(if i == 0 { None } else { t.get(i - 1) })
                && is_word_char(t.get(i + 1))
        })
        .collect();
    let mut out = vec![t.to_vec()];
    for &p in &positions {
        if out.len() * DASHES.len() > MAX_VARIANTS {
            return verr("modifier 'windash' expands to too many variants");
        }
        out = out
            .into_iter()
            .flat_map(|v| {
                DASHES.iter().map(move |&d| {
                    let mut w = v.clone();
                    w[p] = Tok::Lit(d);
                    w
                })
            })
            .collect();
    }
    Ok(out)
}

/// `expand`: each `%name%` is replaced by each configured value.
fn expand(t: &[Tok], ph: &Placeholders) -> Result<Vec<Vec<Tok>>, ValueError> {
    let mut out: Vec<Vec<Tok>> = vec![Vec::new()];
    for tok in t {
        match tok {
            Tok::Ph(name) => {
                let values = ph.0.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                    ValueError(format!("placeholder %{name}% has no value configured"))
                })?;
                if out.len() * values.len() > MAX_VARIANTS {
                    return verr(format!("placeholder %{name}% expands to too many variants"));
                }
                let parsed: Vec<Vec<Tok>> =
                    values.iter().map(|v| parse_sigma_str(v, false)).collect();
                out = out
                    .into_iter()
                    .flat_map(|prefix| {
                        parsed.iter().map(move |p| {
                            let mut w = prefix.clone();
                            w.extend(p.iter().cloned());
                            w
                        })
                    })
                    .collect();
            }
            other => out.iter_mut().for_each(|v| v.push(other.clone())),
        }
    }
    Ok(out)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `base64offset`: the three encodings of the value at byte offsets 0, 1
/// and 2 inside a longer base64 string, trimmed to the characters that do
/// not depend on the surrounding bytes (pySigma's algorithm).
fn base64_offsets(b: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut input = vec![b' '; i];
            input.extend_from_slice(b);
            let enc = b64(&input);
            let end = enc.len() - END_TRIM[(b.len() + i) % 3];
            enc.get(START[i]..end).unwrap_or("").to_string()
        })
        .collect()
}

fn utf16(b: &[u8], m: Modifier) -> Result<Vec<u8>, ValueError> {
    let s = std::str::from_utf8(b).map_err(|_| {
        ValueError(format!(
            "modifier '{}' needs text, not bytes",
            modifier_name(m)
        ))
    })?;
    let mut out = Vec::with_capacity(s.len() * 2 + 2);
    if m == Modifier::Utf16 {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in s.encode_utf16() {
        if m == Modifier::Utf16Be {
            out.extend_from_slice(&unit.to_be_bytes());
        } else {
            out.extend_from_slice(&unit.to_le_bytes());
        }
    }
    Ok(out)
}

/// Applies one transformation modifier to every variant of a value.
fn transform(vals: Vec<Val>, m: Modifier, ph: &Placeholders) -> Result<Vec<Val>, ValueError> {
    let mut out = Vec::with_capacity(vals.len());
    for v in vals {
        match m {
            Modifier::Contains => {
                let mut t = v.into_toks();
                add_star_front(&mut t);
                add_star_back(&mut t);
                out.push(Val::S(t));
            }
            Modifier::StartsWith => {
                let mut t = v.into_toks();
                add_star_back(&mut t);
                out.push(Val::S(t));
            }
            Modifier::EndsWith => {
                let mut t = v.into_toks();
                add_star_front(&mut t);
                out.push(Val::S(t));
            }
            Modifier::Windash => out.extend(windash(&v.into_toks())?.into_iter().map(Val::S)),
            Modifier::Expand => out.extend(expand(&v.into_toks(), ph)?.into_iter().map(Val::S)),
            Modifier::Base64 => {
                let b = v.into_bytes(m)?;
                out.push(Val::S(literal_toks(&b64(&b))));
            }
            Modifier::Base64Offset => {
                let b = v.into_bytes(m)?;
                out.extend(base64_offsets(&b).iter().map(|s| Val::S(literal_toks(s))));
            }
            Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16 => {
                let b = v.into_bytes(m)?;
                out.push(Val::B(utf16(&b, m)?));
            }
            _ => out.push(v),
        }
        if out.len() > MAX_VARIANTS {
            return verr(format!(
                "modifier '{}' expands to too many variants",
                modifier_name(m)
            ));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Compiled string patterns

/// A wildcard pattern split at `*` into segments of literals and `?`.
#[derive(Debug, Clone)]
struct Glob {
    segs: Vec<Vec<SegTok>>,
    anchored_start: bool,
    anchored_end: bool,
}

#[derive(Debug, Clone)]
enum SegTok {
    Lit(Vec<u8>),
    One,
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[inline]
fn bytes_eq(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

impl Glob {
    fn new(toks: &[Tok], lower: bool) -> Glob {
        let mut segs = Vec::new();
        let mut cur: Vec<SegTok> = Vec::new();
        let mut lit = String::new();
        let flush_lit = |lit: &mut String, cur: &mut Vec<SegTok>| {
            if !lit.is_empty() {
                let s = if lower {
                    lit.to_lowercase()
                } else {
                    lit.clone()
                };
                cur.push(SegTok::Lit(s.into_bytes()));
                lit.clear();
            }
        };
        for t in toks {
            match t {
                Tok::Lit(c) => lit.push(*c),
                Tok::One => {
                    flush_lit(&mut lit, &mut cur);
                    cur.push(SegTok::One);
                }
                Tok::Star | Tok::Ph(_) => {
                    flush_lit(&mut lit, &mut cur);
                    if !cur.is_empty() {
                        segs.push(std::mem::take(&mut cur));
                    }
                }
            }
        }
        flush_lit(&mut lit, &mut cur);
        if !cur.is_empty() {
            segs.push(cur);
        }
        Glob {
            segs,
            anchored_start: toks.first() != Some(&Tok::Star),
            anchored_end: toks.last() != Some(&Tok::Star),
        }
    }

    /// Matches `seg` at `pos`; returns the end position.
    fn match_at(seg: &[SegTok], h: &[u8], mut pos: usize, ci: bool) -> Option<usize> {
        for t in seg {
            match t {
                SegTok::Lit(b) => {
                    if h.len() - pos < b.len() || !bytes_eq(&h[pos..pos + b.len()], b, ci) {
                        return None;
                    }
                    pos += b.len();
                }
                SegTok::One => {
                    if pos >= h.len() {
                        return None;
                    }
                    pos += utf8_len(h[pos]);
                }
            }
        }
        Some(pos)
    }

    /// Leftmost occurrence of `seg` at or after `from`; returns its end.
    fn find(seg: &[SegTok], h: &[u8], from: usize, ci: bool) -> Option<usize> {
        let first = match seg.first() {
            Some(SegTok::Lit(b)) => Some(b[0]),
            _ => None,
        };
        let mut p = from;
        while p <= h.len() {
            if let Some(f) = first {
                let rest = &h[p..];
                let off = if ci && f.is_ascii_alphabetic() {
                    memchr::memchr2(f.to_ascii_lowercase(), f.to_ascii_uppercase(), rest)
                } else {
                    memchr::memchr(f, rest)
                };
                p += off?;
            } else if p < h.len() && (h[p] & 0xC0) == 0x80 {
                p += 1;
                continue;
            }
            if let Some(e) = Self::match_at(seg, h, p, ci) {
                return Some(e);
            }
            p += 1;
        }
        None
    }

    /// Matches `seg` ending exactly at the end of `h`; returns its start.
    fn match_suffix(seg: &[SegTok], h: &[u8], ci: bool) -> Option<usize> {
        let mut end = h.len();
        for t in seg.iter().rev() {
            match t {
                SegTok::Lit(b) => {
                    if end < b.len() || !bytes_eq(&h[end - b.len()..end], b, ci) {
                        return None;
                    }
                    end -= b.len();
                }
                SegTok::One => {
                    if end == 0 {
                        return None;
                    }
                    end -= 1;
                    while end > 0 && (h[end] & 0xC0) == 0x80 {
                        end -= 1;
                    }
                }
            }
        }
        Some(end)
    }

    fn matches(&self, h: &[u8], ci: bool) -> bool {
        let n = self.segs.len();
        if n == 0 {
            return !(self.anchored_start && self.anchored_end) || h.is_empty();
        }
        if self.anchored_start && self.anchored_end && n == 1 {
            return Self::match_at(&self.segs[0], h, 0, ci) == Some(h.len());
        }
        let mut pos = 0;
        let mut first = 0;
        let mut last = n;
        if self.anchored_start {
            match Self::match_at(&self.segs[0], h, 0, ci) {
                Some(e) => pos = e,
                None => return false,
            }
            first = 1;
        }
        if self.anchored_end {
            last = n - 1;
        }
        for seg in &self.segs[first..last] {
            match Self::find(seg, h, pos, ci) {
                Some(e) => pos = e,
                None => return false,
            }
        }
        if self.anchored_end {
            return matches!(Self::match_suffix(&self.segs[n - 1], h, ci), Some(s) if s >= pos);
        }
        true
    }
}

#[derive(Debug, Clone)]
enum StrPat {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(Glob),
}

/// A set of string alternatives (OR-ed), with literal substrings in one
/// automaton.
#[derive(Debug, Clone, Default)]
struct StrSet {
    cased: bool,
    ac: Option<AhoCorasick>,
    pats: Vec<StrPat>,
    /// One lowercase literal per alternative that any matching value
    /// contains (case-insensitively); `None` when some alternative has no
    /// literal (`*`, `?`, the empty string). See [`FieldMatcher::required_literals`].
    lits: Option<Vec<String>>,
}

/// The longest run of literal characters in a pattern, lowercased.
fn longest_literal(toks: &[Tok]) -> Option<String> {
    let mut best = String::new();
    let mut cur = String::new();
    for t in toks.iter().chain(std::iter::once(&Tok::Star)) {
        match t {
            Tok::Lit(c) => cur.push(*c),
            _ => {
                if cur.len() > best.len() {
                    best = std::mem::take(&mut cur);
                }
                cur.clear();
            }
        }
    }
    (!best.is_empty()).then(|| best.to_lowercase())
}

impl StrSet {
    fn new(alts: Vec<Vec<Tok>>, cased: bool) -> Result<StrSet, ValueError> {
        let mut needles: Vec<String> = Vec::new();
        let mut pats = Vec::new();
        let norm = |s: String| if cased { s } else { s.to_lowercase() };
        let lits: Option<Vec<String>> = alts.iter().map(|t| longest_literal(t)).collect();
        for t in alts {
            let stars_front = t.first() == Some(&Tok::Star);
            let stars_back = t.len() > 1 && t.last() == Some(&Tok::Star);
            let inner = &t[usize::from(stars_front)..t.len() - usize::from(stars_back)];
            let plain: Option<String> = inner
                .iter()
                .map(|x| match x {
                    Tok::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect();
            if t.iter().all(|x| *x == Tok::Star) && !t.is_empty() {
                pats.push(StrPat::Any);
                continue;
            }
            match (plain, stars_front, stars_back) {
                (Some(s), false, false) => pats.push(StrPat::Exact(norm(s))),
                (Some(s), false, true) => pats.push(StrPat::Prefix(norm(s))),
                (Some(s), true, false) => pats.push(StrPat::Suffix(norm(s))),
                (Some(s), true, true) if !s.is_empty() => needles.push(norm(s)),
                _ => pats.push(StrPat::Glob(Glob::new(&t, !cased))),
            }
        }
        let ac = if needles.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(!cased)
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(&needles)
                    .map_err(|e| ValueError(format!("cannot build substring matcher: {e}")))?,
            )
        };
        Ok(StrSet {
            cased,
            ac,
            pats,
            lits,
        })
    }

    fn is_empty(&self) -> bool {
        self.ac.is_none() && self.pats.is_empty()
    }

    fn matches(&self, s: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.cased {
            self.matches_norm(s.as_bytes(), false)
        } else if s.is_ascii() {
            self.matches_norm(s.as_bytes(), true)
        } else {
            self.matches_norm(s.to_lowercase().as_bytes(), false)
        }
    }

    fn matches_norm(&self, h: &[u8], ci: bool) -> bool {
        if let Some(ac) = &self.ac {
            if ac.is_match(h) {
                return true;
            }
        }
        self.pats.iter().any(|p| match p {
            StrPat::Any => true,
            StrPat::Exact(e) => bytes_eq(h, e.as_bytes(), ci),
            StrPat::Prefix(e) => h.len() >= e.len() && bytes_eq(&h[..e.len()], e.as_bytes(), ci),
            StrPat::Suffix(e) => {
                h.len() >= e.len() && bytes_eq(&h[h.len() - e.len()..], e.as_bytes(), ci)
            }
            StrPat::Glob(g) => g.matches(h, ci),
        })
    }
}

/// Calls `f` with the text of a scalar field value (numbers formatted
/// without heap allocation when integral); `None` for null.
pub(crate) fn with_text<R>(v: &FieldValue<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    match v {
        FieldValue::Str(s) => Some(f(s)),
        FieldValue::Bool(b) => Some(f(if *b { "true" } else { "false" })),
        FieldValue::Int(i) => {
            let mut buf = [0u8; 24];
            let mut cur = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cur, "{i}");
            let n = cur.position() as usize;
            Some(f(std::str::from_utf8(&buf[..n]).unwrap_or("")))
        }
        FieldValue::Float(x) => Some(f(&x.to_string())),
        FieldValue::Null => None,
    }
}

// ---------------------------------------------------------------------------
// Value groups

/// Alternatives for one value (or for all values when not `all`).
#[derive(Debug, Clone, Default)]
struct Group {
    strs: StrSet,
    nums: Vec<(Num, String)>,
    bools: Vec<bool>,
}

/// The integer a field value equals, as [`Group`] compares numbers.
pub(crate) fn int_of(v: &FieldValue<'_>) -> Option<i64> {
    match Num::of_field(v)? {
        Num::I(i) => Some(i),
        Num::F(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        Num::F(_) => None,
    }
}

/// One thing a value must hold for an item to match it; see
/// [`FieldMatcher::required_needles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Needle<'a> {
    /// The value's text contains this lowercase literal.
    Text(&'a str),
    /// The value is this integer (as a number or as numeric text).
    Int(i64),
}

impl Group {
    /// The needles of which a matching value holds one, or `None`.
    /// Keyword searches compare numbers as text, so an integer is a
    /// needle only for a field.
    fn needles(&self, keyword: bool) -> Option<Vec<Needle<'_>>> {
        if !self.bools.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        if !self.strs.is_empty() {
            out.extend(self.strs.lits.as_ref()?.iter().map(|l| Needle::Text(l)));
        }
        for (n, _) in &self.nums {
            match n {
                Num::I(i) if !keyword => out.push(Needle::Int(*i)),
                _ => return None,
            }
        }
        Some(out)
    }

    fn matches(&self, v: &FieldValue<'_>) -> bool {
        match v {
            FieldValue::Str(s) => {
                self.strs.matches(s)
                    || (!self.nums.is_empty()
                        && Num::parse(s).is_some_and(|n| {
                            self.nums
                                .iter()
                                .any(|(x, _)| x.cmp(n).is_some_and(|o| o.is_eq()))
                        }))
                    || self
                        .bools
                        .iter()
                        .any(|b| s.eq_ignore_ascii_case(if *b { "true" } else { "false" }))
            }
            FieldValue::Int(_) | FieldValue::Float(_) => {
                let n = Num::of_field(v);
                n.is_some_and(|n| {
                    self.nums
                        .iter()
                        .any(|(x, _)| x.cmp(n).is_some_and(|o| o.is_eq()))
                }) || (!self.strs.is_empty()
                    && with_text(v, |t| self.strs.matches(t)).unwrap_or(false))
            }
            FieldValue::Bool(b) => {
                self.bools.contains(b) || self.strs.matches(if *b { "true" } else { "false" })
            }
            FieldValue::Null => false,
        }
    }

    fn matches_text(&self, s: &str) -> bool {
        self.matches(&FieldValue::Str(Cow::Borrowed(s)))
    }
}

#[derive(Debug, Clone)]
enum FieldRefMode {
    Equal,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Only `null` values.
    Nothing,
    Exists(bool),
    Values(Vec<Group>),
    Regex(Vec<Regex>),
    Cidr(Vec<(IpAddr, u8)>),
    Cmp {
        part: Option<TimePart>,
        op: Option<CmpOp>,
        vals: Vec<Num>,
    },
    FieldRef {
        refs: Vec<String>,
        mode: FieldRefMode,
        cased: bool,
    },
}

/// One compiled detection item: a field (or none, for keyword searches),
/// its modifiers and values.
#[derive(Debug, Clone)]
pub struct FieldMatcher {
    field: Option<String>,
    all: bool,
    neq: bool,
    /// The value (list) contained `null`: a missing or null field matches.
    null_alt: bool,
    kind: Kind,
}

fn parse_cidr(s: &str) -> Result<(IpAddr, u8), ValueError> {
    let bad = || ValueError(format!("invalid CIDR network '{s}'"));
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (s.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

fn in_net(ip: IpAddr, net: (IpAddr, u8)) -> bool {
    fn pre(a: u128, b: u128, len: u8, bits: u8) -> bool {
        if len == 0 {
            return true;
        }
        let shift = bits - len;
        (a >> shift) == (b >> shift)
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net.0) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            pre(u32::from(a) as u128, u32::from(b) as u128, net.1, 32)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => pre(u128::from(a), u128::from(b), net.1, 128),
        _ => false,
    }
}

fn parse_event_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim().trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or(t);
    t.parse().ok()
}

/// Extracts a time component from a timestamp field value: ISO 8601 /
/// RFC 3339 text (`2020-10-23T02:36:40.671Z`, `2025-11-27 07:40:10.132`),
/// or epoch seconds / milliseconds. The written components are used as
/// they are, without time zone conversion.
fn time_part(v: &FieldValue<'_>, part: TimePart) -> Option<i64> {
    let dt: chrono::NaiveDateTime = match v {
        FieldValue::Str(s) => {
            let s = s.trim();
            let date = chrono::NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()?;
            let rest = s.get(10..).unwrap_or("");
            let time = match rest.as_bytes().first() {
                Some(b'T' | b't' | b' ') => {
                    let hm = rest.get(1..6)?;
                    let sec = rest
                        .get(7..9)
                        .filter(|_| rest.as_bytes().get(6) == Some(&b':'));
                    let (h, m) = hm.split_once(':')?;
                    chrono::NaiveTime::from_hms_opt(
                        h.parse().ok()?,
                        m.parse().ok()?,
                        sec.and_then(|x| x.parse().ok()).unwrap_or(0),
                    )?
                }
                _ => chrono::NaiveTime::MIN,
            };
            date.and_time(time)
        }
        FieldValue::Int(_) | FieldValue::Float(_) => {
            let n = Num::of_field(v)?.as_f64();
            let secs = if n.abs() >= 1e11 { n / 1000.0 } else { n };
            chrono::DateTime::from_timestamp(secs.floor() as i64, 0)?.naive_utc()
        }
        _ => return None,
    };
    Some(match part {
        TimePart::Minute => dt.minute() as i64,
        TimePart::Hour => dt.hour() as i64,
        TimePart::Day => dt.day() as i64,
        TimePart::Week => dt.iso_week().week() as i64,
        TimePart::Month => dt.month() as i64,
        TimePart::Year => dt.year() as i64,
    })
}

fn cmp_ok(a: Num, op: Option<CmpOp>, b: Num) -> bool {
    use std::cmp::Ordering::*;
    match (a.cmp(b), op) {
        (None, _) => false,
        (Some(o), None) => o == Equal,
        (Some(o), Some(CmpOp::Lt)) => o == Less,
        (Some(o), Some(CmpOp::Lte)) => o != Greater,
        (Some(o), Some(CmpOp::Gt)) => o == Greater,
        (Some(o), Some(CmpOp::Gte)) => o != Less,
    }
}

fn regex_error(pat: &str, e: regex::Error) -> ValueError {
    let looks = ["(?=", "(?!", "(?<=", "(?<!"]
        .iter()
        .any(|x| pat.contains(x));
    let backref = pat
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && w[1].is_ascii_digit() && w[1] != b'0');
    let note = if looks || backref {
        " (lookarounds and backreferences are not supported by this regex engine)"
    } else {
        ""
    };
    let first = e.to_string();
    let first = first.lines().last().unwrap_or("").trim().to_string();
    ValueError(format!("invalid regular expression '{pat}': {first}{note}"))
}

impl FieldMatcher {
    /// Compiles one detection item. `key` is the detection map key: `""`
    /// for keyword lists, `"CommandLine"`, or `"CommandLine|contains|all"`
    /// etc. (`"|all"` for an AND-ed keyword list). `value` is the YAML
    /// value (scalar, null, or a list of scalars). `placeholders` supplies
    /// the values for `expand`.
    pub fn compile(
        key: &str,
        value: &Yaml,
        placeholders: &Placeholders,
    ) -> Result<FieldMatcher, ValueError> {
        let mut parts = key.split('|');
        let fname = parts.next().unwrap_or("").trim();
        let field = (!fname.is_empty()).then(|| fname.to_string());
        let mods: Vec<Modifier> = parts.map(parse_modifier).collect::<Result<_, _>>()?;
        let has = |m: Modifier| mods.contains(&m);
        let all = has(Modifier::All);
        let neq = has(Modifier::Neq);
        let cased = has(Modifier::Cased);

        // Sub-modifiers of `re` only after it.
        let re_pos = mods.iter().position(|m| *m == Modifier::Re);
        for (i, m) in mods.iter().enumerate() {
            if matches!(m, Modifier::ReI | Modifier::ReM | Modifier::ReS)
                && !matches!(re_pos, Some(p) if p < i)
            {
                return verr(format!(
                    "modifier '{}' is only valid after 're'",
                    modifier_name(*m)
                ));
            }
        }

        // Kind-defining modifiers exclude each other and string transforms.
        let time = mods.iter().find_map(|m| match m {
            Modifier::Time(t) => Some(*t),
            _ => None,
        });
        let cmps: Vec<CmpOp> = mods
            .iter()
            .filter_map(|m| match m {
                Modifier::Cmp(c) => Some(*c),
                _ => None,
            })
            .collect();
        let kinds: Vec<&'static str> = mods
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Modifier::Exists
                        | Modifier::Re
                        | Modifier::Cidr
                        | Modifier::FieldRef
                        | Modifier::Cmp(_)
                        | Modifier::Time(_)
                )
            })
            .map(|m| modifier_name(*m))
            .collect();
        let is_string_mod = |m: &Modifier| {
            matches!(
                m,
                Modifier::Contains
                    | Modifier::StartsWith
                    | Modifier::EndsWith
                    | Modifier::Windash
                    | Modifier::Base64
                    | Modifier::Base64Offset
                    | Modifier::Utf16Le
                    | Modifier::Utf16Be
                    | Modifier::Utf16
                    | Modifier::Expand
                    | Modifier::Cased
            )
        };
        let time_cmp_ok = time.is_some() && kinds.len() == 2 && cmps.len() == 1;
        if kinds.len() > 1 && !time_cmp_ok {
            return verr(format!(
                "modifiers '{}' and '{}' cannot be combined",
                kinds[0], kinds[1]
            ));
        }
        if let Some(k) = kinds.first().copied() {
            let allowed_with_fieldref = |m: &Modifier| {
                matches!(
                    m,
                    Modifier::Contains
                        | Modifier::StartsWith
                        | Modifier::EndsWith
                        | Modifier::Cased
                )
            };
            if let Some(m) = mods
                .iter()
                .find(|m| is_string_mod(m) && !(k == "fieldref" && allowed_with_fieldref(m)))
            {
                return verr(format!(
                    "modifiers '{k}' and '{}' cannot be combined",
                    modifier_name(*m)
                ));
            }
            if field.is_none() {
                return verr(format!("modifier '{k}' needs a field name"));
            }
        }

        let raws = yaml_values(value)?;
        let null_alt = raws.iter().any(|r| matches!(r, Raw::Null));
        let raws: Vec<Raw> = raws
            .into_iter()
            .filter(|r| !matches!(r, Raw::Null))
            .collect();
        let need_str = |m: &str, r: &Raw| -> Result<String, ValueError> {
            match r {
                Raw::Str(s) => Ok(s.clone()),
                _ => verr(format!("modifier '{m}' needs a string value")),
            }
        };
        let need_num = |m: &str, r: &Raw| -> Result<Num, ValueError> {
            match r {
                Raw::Num(n, _) => Ok(*n),
                Raw::Str(s) => Num::parse(s)
                    .ok_or_else(|| ValueError(format!("modifier '{m}' needs a numeric value"))),
                _ => verr(format!("modifier '{m}' needs a numeric value")),
            }
        };

        let kind = if raws.is_empty() {
            if !kinds.is_empty() || mods.iter().any(is_string_mod) {
                return verr("null cannot be combined with value modifiers");
            }
            if field.is_none() {
                return verr("a keyword search needs a string value");
            }
            Kind::Nothing
        } else if has(Modifier::Exists) {
            if null_alt || raws.len() != 1 {
                return verr("modifier 'exists' needs a single boolean value");
            }
            match &raws[0] {
                Raw::Bool(b) => Kind::Exists(*b),
                _ => return verr("modifier 'exists' needs a boolean value (true or false)"),
            }
        } else if re_pos.is_some() {
            let mut res = Vec::new();
            for r in &raws {
                let pat = need_str("re", r)?;
                let re = RegexBuilder::new(&pat)
                    .case_insensitive(has(Modifier::ReI))
                    .multi_line(has(Modifier::ReM))
                    .dot_matches_new_line(has(Modifier::ReS))
                    .build()
                    .map_err(|e| regex_error(&pat, e))?;
                res.push(re);
            }
            Kind::Regex(res)
        } else if has(Modifier::Cidr) {
            let nets = raws
                .iter()
                .map(|r| need_str("cidr", r).and_then(|s| parse_cidr(&s)))
                .collect::<Result<Vec<_>, _>>()?;
            Kind::Cidr(nets)
        } else if has(Modifier::FieldRef) {
            let refs = raws
                .iter()
                .map(|r| need_str("fieldref", r))
                .collect::<Result<Vec<_>, _>>()?;
            let (c, s, e) = (
                has(Modifier::Contains),
                has(Modifier::StartsWith),
                has(Modifier::EndsWith),
            );
            let mode = match (c, s, e) {
                (false, false, false) => FieldRefMode::Equal,
                (true, false, false) => FieldRefMode::Contains,
                (false, true, false) => FieldRefMode::StartsWith,
                (false, false, true) => FieldRefMode::EndsWith,
                _ => return verr(
                    "modifier 'fieldref' takes at most one of 'contains', 'startswith', 'endswith'",
                ),
            };
            Kind::FieldRef { refs, mode, cased }
        } else if time.is_some() || !cmps.is_empty() {
            let name = kinds[kinds.len() - 1];
            let vals = raws
                .iter()
                .map(|r| need_num(name, r))
                .collect::<Result<Vec<_>, _>>()?;
            Kind::Cmp {
                part: time,
                op: cmps.first().copied(),
                vals,
            }
        } else {
            // Plain values and string transformations.
            let keyword = field.is_none();
            let has_expand = has(Modifier::Expand);
            let mut groups_vals: Vec<Vec<Val>> = raws
                .iter()
                .map(|r| {
                    vec![match r {
                        Raw::Str(s) => Val::S(parse_sigma_str(s, has_expand)),
                        Raw::Num(n, t) => Val::Num(*n, t.clone()),
                        Raw::Bool(b) => Val::Bool(*b),
                        Raw::Null => unreachable!("nulls filtered"),
                    }]
                })
                .collect();
            for m in &mods {
                for g in groups_vals.iter_mut() {
                    *g = transform(std::mem::take(g), *m, placeholders)?;
                }
            }
            let implicit_contains = keyword
                && !mods.iter().any(|m| {
                    matches!(
                        m,
                        Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
                    )
                });
            if !all {
                groups_vals = vec![groups_vals.into_iter().flatten().collect()];
            }
            let mut groups = Vec::with_capacity(groups_vals.len());
            for vals in groups_vals {
                let mut strs = Vec::new();
                let mut g = Group::default();
                for v in vals {
                    match v {
                        Val::Num(n, t) if !keyword => g.nums.push((n, t)),
                        Val::Bool(b) if !keyword => g.bools.push(b),
                        other => {
                            let mut t = other.into_toks();
                            if implicit_contains {
                                add_star_front(&mut t);
                                add_star_back(&mut t);
                            }
                            strs.push(t);
                        }
                    }
                }
                g.strs = StrSet::new(strs, cased)?;
                groups.push(g);
            }
            Kind::Values(groups)
        };

        Ok(FieldMatcher {
            field,
            all,
            neq,
            null_alt,
            kind,
        })
    }

    /// Field name without modifiers (`None` for keyword searches).
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What every value that satisfies this item holds: one of the
    /// returned [`Needle`]s (a lowercase literal it contains, compared
    /// lowercased or ASCII case-insensitively, or an integer it equals),
    /// with the field it must be found in (`""` for keyword searches,
    /// which look in every value). `None` when there is no such set:
    /// negations (`neq`), `null`, booleans, non-integral numbers, regular
    /// expressions, CIDR, comparisons, field references, `exists`, and
    /// patterns without a literal (`*`). Used to pre-select the rules an
    /// event can match; see [`crate::prefilter`].
    pub fn required_needles(&self) -> Option<(&str, Vec<Needle<'_>>)> {
        let field = self.field.as_deref().unwrap_or("");
        if self.neq || self.null_alt {
            return None;
        }
        let Kind::Values(groups) = &self.kind else {
            return None;
        };
        // Without `all` there is one group of alternatives; with it every
        // group must match, so any one group's needles are required.
        groups
            .iter()
            .filter_map(|g| g.needles(field.is_empty()))
            .filter(|n| !n.is_empty())
            .max_by_key(|n| crate::prefilter::selectivity(n))
            .map(|n| (field, n))
    }

    /// Whether the event matches this detection item.
    pub fn matches(&self, ev: &dyn EventView) -> bool {
        let Some(field) = self.field.as_deref() else {
            let base = match &self.kind {
                Kind::Values(groups) => {
                    self.combine(groups.iter(), |g| ev.any_text(&mut |t| g.matches_text(t)))
                }
                Kind::Regex(res) => {
                    self.combine(res.iter(), |re| ev.any_text(&mut |t| re.is_match(t)))
                }
                _ => false,
            };
            return base != self.neq;
        };
        if matches!(self.kind, Kind::Exists(_)) {
            return self.base(ev, field) != self.neq;
        }
        let base = self.base(ev, field);
        if self.neq {
            ev.has_field(field) && !base
        } else {
            base
        }
    }

    fn combine<T>(&self, mut items: impl Iterator<Item = T>, mut f: impl FnMut(T) -> bool) -> bool {
        if self.all {
            items.all(f)
        } else {
            items.any(&mut f)
        }
    }

    fn base(&self, ev: &dyn EventView, field: &str) -> bool {
        if self.null_alt
            && (!ev.has_field(field) || ev.any_value(field, &mut |v| matches!(v, FieldValue::Null)))
        {
            return true;
        }
        match &self.kind {
            Kind::Nothing => false,
            Kind::Exists(want) => ev.has_field(field) == *want,
            Kind::Values(groups) => self.combine(groups.iter(), |g| {
                ev.any_value(field, &mut |v| g.matches(v))
            }),
            Kind::Regex(res) => self.combine(res.iter(), |re| {
                ev.any_value(field, &mut |v| {
                    with_text(v, |t| re.is_match(t)).unwrap_or(false)
                })
            }),
            Kind::Cidr(nets) => self.combine(nets.iter(), |net| {
                ev.any_value(field, &mut |v| match v {
                    FieldValue::Str(s) => parse_event_ip(s).is_some_and(|ip| in_net(ip, *net)),
                    _ => false,
                })
            }),
            Kind::Cmp { part, op, vals } => self.combine(vals.iter(), |want| {
                ev.any_value(field, &mut |v| {
                    let got = match part {
                        Some(p) => time_part(v, *p).map(Num::I),
                        None => Num::of_field(v),
                    };
                    got.is_some_and(|g| cmp_ok(g, *op, *want))
                })
            }),
            Kind::FieldRef { refs, mode, cased } => self.combine(refs.iter(), |other| {
                ev.any_value(field, &mut |a| {
                    with_text(a, |ta| {
                        ev.any_value(other, &mut |b| {
                            with_text(b, |tb| fieldref_cmp(ta, tb, mode, *cased)).unwrap_or(false)
                        })
                    })
                    .unwrap_or(false)
                })
            }),
        }
    }
}

fn fieldref_cmp(a: &str, b: &str, mode: &FieldRefMode, cased: bool) -> bool {
    let (a, b): (Cow<str>, Cow<str>) = if cased || (a.is_ascii() && b.is_ascii()) {
        (Cow::Borrowed(a), Cow::Borrowed(b))
    } else {
        (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase()))
    };
    let ci = !cased;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    match mode {
        FieldRefMode::Equal => bytes_eq(ab, bb, ci),
        FieldRefMode::StartsWith => ab.len() >= bb.len() && bytes_eq(&ab[..bb.len()], bb, ci),
        FieldRefMode::EndsWith => {
            ab.len() >= bb.len() && bytes_eq(&ab[ab.len() - bb.len()..], bb, ci)
        }
        FieldRefMode::Contains => {
            bb.is_empty()
                || (ab.len() >= bb.len() && ab.windows(bb.len()).any(|w| bytes_eq(w, bb, ci)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::JsonView;
    use serde_json::json;

    fn fm(key: &str, yaml: &str) -> FieldMatcher {
        fm_ph(key, yaml, &Placeholders::default())
    }

    fn fm_ph(key: &str, yaml: &str, ph: &Placeholders) -> FieldMatcher {
        let v: Yaml = serde_yaml::from_str(yaml).unwrap();
        FieldMatcher::compile(key, &v, ph).unwrap_or_else(|e| panic!("{key}: {yaml}: {e}"))
    }

    fn err_of(key: &str, yaml: &str) -> String {
        let v: Yaml = serde_yaml::from_str(yaml).unwrap();
        FieldMatcher::compile(key, &v, &Placeholders::default())
            .unwrap_err()
            .0
    }

    fn m(f: &FieldMatcher, ev: serde_json::Value) -> bool {
        f.matches(&JsonView(&ev))
    }

    fn s(f: &FieldMatcher, field: &str, val: &str) -> bool {
        m(f, json!({ field: val }))
    }

    #[test]
    fn plain_whole_value_case_insensitive() {
        let f = fm("Image", r"'C:\Windows\System32\cmd.exe'");
        assert_eq!(f.field(), Some("Image"));
        assert!(s(&f, "Image", r"c:\windows\system32\CMD.EXE"));
        assert!(!s(&f, "Image", r"c:\windows\system32\cmd.exe2"));
        assert!(!s(&f, "Image", r"x c:\windows\system32\cmd.exe"));
        assert!(!m(&f, json!({"Other": r"C:\Windows\System32\cmd.exe"})));
        // Non-ASCII case folding.
        let f = fm("User", "'ÄRGER'");
        assert!(s(&f, "User", "ärger"));
    }

    #[test]
    fn cased() {
        let f = fm("Name|cased", "'Evil'");
        assert!(s(&f, "Name", "Evil"));
        assert!(!s(&f, "Name", "evil"));
        let f = fm("Name|contains|cased", "'Evil'");
        assert!(s(&f, "Name", "xEvilx"));
        assert!(!s(&f, "Name", "xevilx"));
    }

    #[test]
    fn wildcards() {
        // Spec: prog?.exe and antivirus_V*.exe
        let f = fm("Image", "'prog?.exe'");
        assert!(s(&f, "Image", "progA.exe"));
        assert!(s(&f, "Image", "progé.exe"));
        assert!(!s(&f, "Image", "prog.exe"));
        assert!(!s(&f, "Image", "progAB.exe"));
        let f = fm("Image", "'antivirus_V*.exe'");
        assert!(s(&f, "Image", "antivirus_V1.exe"));
        assert!(s(&f, "Image", "ANTIVIRUS_V21.2.1.exe"));
        assert!(!s(&f, "Image", "antivirus_V1.exe.bak"));
        let f = fm("Cmd", "'*a*b?c*'");
        assert!(s(&f, "Cmd", "xxaYYbZc"));
        assert!(s(&f, "Cmd", "abxc"));
        assert!(!s(&f, "Cmd", "abc"));
        let f = fm("Cmd", "'a*b*a'");
        assert!(s(&f, "Cmd", "aba"));
        assert!(s(&f, "Cmd", "abba"));
        assert!(!s(&f, "Cmd", "ab"));
        assert!(!s(&f, "Cmd", "a"));
        let f = fm("Cmd", "'*'");
        assert!(s(&f, "Cmd", ""));
        assert!(m(&f, json!({"Cmd": 5})));
        assert!(!m(&f, json!({"Other": 5})));
        let f = fm("Cmd", "'?'");
        assert!(s(&f, "Cmd", "ü"));
        assert!(!s(&f, "Cmd", "üü"));
        let f = fm("Cmd", "'*ü?'");
        assert!(s(&f, "Cmd", "aÜx"));
    }

    #[test]
    fn escapes() {
        // \* and \? are literal; \\ is one backslash; \ before others stays.
        let f = fm("F", r"'a\*b'");
        assert!(s(&f, "F", "a*b"));
        assert!(!s(&f, "F", "axb"));
        let f = fm("F", r"'a\?'");
        assert!(s(&f, "F", "a?"));
        assert!(!s(&f, "F", "ab"));
        // Backslash followed by wildcard: \\* → backslash then any run.
        let f = fm("F", r"'C:\\*'");
        assert!(s(&f, "F", r"C:\Windows"));
        assert!(!s(&f, "F", "C:/Windows"));
        // Three backslashes: plain backslash and plain star.
        let f = fm("F", r"'C:\\\*'");
        assert!(s(&f, "F", r"C:\*"));
        assert!(!s(&f, "F", r"C:\x"));
        // Four backslashes: two plain backslashes.
        let f = fm("F", r"'\\\\srv'");
        assert!(s(&f, "F", r"\\srv"));
        // Single backslash before a letter.
        let f = fm("F", r"'C:\Windows'");
        assert!(s(&f, "F", r"C:\Windows"));
    }

    #[test]
    fn lists_or_and_all() {
        let f = fm("EventID", "[517, 1102]");
        assert!(m(&f, json!({"EventID": 517})));
        assert!(m(&f, json!({"EventID": 1102})));
        assert!(!m(&f, json!({"EventID": 4624})));
        let f = fm("CommandLine|contains|all", "['-enc', 'bypass']");
        assert!(s(&f, "CommandLine", "powershell -ENC x -ep Bypass"));
        assert!(!s(&f, "CommandLine", "powershell -enc x"));
        let f = fm("CommandLine|contains", "['-enc', 'bypass']");
        assert!(s(&f, "CommandLine", "powershell -enc x"));
        // Arrays in the event: any element.
        let f = fm("Tags", "'b'");
        assert!(m(&f, json!({"Tags": ["a", "B"]})));
    }

    #[test]
    fn startswith_endswith_contains() {
        let f = fm("Image|endswith", r"'\cmd.exe'");
        assert!(s(&f, "Image", r"C:\Windows\System32\CMD.exe"));
        assert!(!s(&f, "Image", r"C:\Windows\System32\xcmd.exe"));
        let f = fm("Image|startswith", "'adm'");
        assert!(s(&f, "Image", "ADMIN"));
        assert!(!s(&f, "Image", "xadmin"));
        let f = fm("Image|contains", "'ell'");
        assert!(s(&f, "Image", "powershell.exe"));
        assert!(!s(&f, "Image", "cmd.exe"));
        // Wildcards inside contains.
        let f = fm("CommandLine|contains", "'net* user'");
        assert!(s(&f, "CommandLine", "c:\\net1.exe user x"));
        // Non-ASCII haystack goes through lowercasing.
        let f = fm("CommandLine|contains", "['straße', 'foo']");
        assert!(s(&f, "CommandLine", "x STRASSE y foo"));
        assert!(s(&f, "CommandLine", "x STRAßE y"));
        // Empty contains matches any string.
        let f = fm("F|contains", "''");
        assert!(s(&f, "F", "x"));
    }

    #[test]
    fn numbers_and_strings() {
        let f = fm("EventID", "4624");
        assert!(m(&f, json!({"EventID": 4624})));
        assert!(m(&f, json!({"EventID": "4624"})));
        assert!(!m(&f, json!({"EventID": "4625"})));
        let f = fm("EventID", "'4624'");
        assert!(m(&f, json!({"EventID": 4624})));
        assert!(m(&f, json!({"EventID": "4624"})));
        let f = fm("EventID|startswith", "46");
        assert!(m(&f, json!({"EventID": 4624})));
        let f = fm("Ratio", "1.5");
        assert!(m(&f, json!({"Ratio": 1.5})));
        assert!(m(&f, json!({"Ratio": "1.5"})));
        let f = fm("TicketOptions", "'0x40810000'");
        assert!(s(&f, "TicketOptions", "0x40810000"));
    }

    #[test]
    fn booleans() {
        let f = fm("Signed", "true");
        assert!(m(&f, json!({"Signed": true})));
        assert!(m(&f, json!({"Signed": "True"})));
        assert!(!m(&f, json!({"Signed": false})));
        let f = fm("Signed", "'false'");
        assert!(m(&f, json!({"Signed": false})));
    }

    #[test]
    fn null_and_empty() {
        let f = fm("PasswordLastSet", "null");
        assert!(m(&f, json!({"Other": 1})));
        assert!(m(&f, json!({"PasswordLastSet": null})));
        assert!(!m(&f, json!({"PasswordLastSet": ""})));
        assert!(!m(&f, json!({"PasswordLastSet": "x"})));
        let f = fm("FieldB", "''");
        assert!(s(&f, "FieldB", ""));
        assert!(!s(&f, "FieldB", "x"));
        assert!(!m(&f, json!({})));
        // Lenient: null inside a list.
        let f = fm("FieldB", "['', null]");
        assert!(m(&f, json!({})));
        assert!(s(&f, "FieldB", ""));
        assert!(!s(&f, "FieldB", "x"));
        assert!(err_of("F|contains", "null").contains("null"));
    }

    #[test]
    fn exists() {
        let f = fm("PasswordLastSet|exists", "true");
        assert!(m(&f, json!({"PasswordLastSet": null})));
        assert!(m(&f, json!({"PasswordLastSet": ""})));
        assert!(!m(&f, json!({"Other": 1})));
        let f = fm("PasswordLastSet|exists", "false");
        assert!(m(&f, json!({"Other": 1})));
        assert!(!m(&f, json!({"PasswordLastSet": "x"})));
        assert!(err_of("F|exists", "'yes'").contains("boolean"));
    }

    #[test]
    fn neq() {
        let f = fm("User|neq", "'SYSTEM'");
        assert!(s(&f, "User", "bob"));
        assert!(!s(&f, "User", "system"));
        assert!(!m(&f, json!({})));
        let f = fm("LogonType|neq", "[3, 10]");
        assert!(m(&f, json!({"LogonType": 2})));
        assert!(!m(&f, json!({"LogonType": 3})));
        assert!(!m(&f, json!({"LogonType": "10"})));
        let f = fm("CommandLine|contains|neq", "'-enc'");
        assert!(s(&f, "CommandLine", "cmd /c"));
        assert!(!s(&f, "CommandLine", "ps -enc"));
    }

    #[test]
    fn regex_and_flags() {
        let f = fm("CommandLine|re", r"'\s-e(nc)?\s'");
        assert!(s(&f, "CommandLine", "powershell -enc AAA"));
        assert!(s(&f, "CommandLine", "powershell -e AAA"));
        assert!(
            !s(&f, "CommandLine", "powershell -ENC AAA"),
            "re is case-sensitive"
        );
        let f = fm("CommandLine|re|i", r"'\s-e(nc)?\s'");
        assert!(s(&f, "CommandLine", "powershell -ENC AAA"));
        let f = fm("Msg|re", "'^b'");
        assert!(!s(&f, "Msg", "a\nb"));
        let f = fm("Msg|re|m", "'^b'");
        assert!(s(&f, "Msg", "a\nb"));
        let f = fm("Msg|re", "'a.b'");
        assert!(!s(&f, "Msg", "a\nb"));
        let f = fm("Msg|re|s", "'a.b'");
        assert!(s(&f, "Msg", "a\nb"));
        // Unanchored search; numbers as text.
        let f = fm("EventID|re", "'^46'");
        assert!(m(&f, json!({"EventID": 4624})));
        let e = err_of("F|re", "'(?<!x)y'");
        assert!(e.contains("lookaround"), "{e}");
        let e = err_of("F|re", r"'(a)\1'");
        assert!(e.contains("backreference"), "{e}");
        assert!(err_of("F|re", "'('").contains("invalid regular expression"));
        assert_eq!(err_of("F|re", "5"), "modifier 're' needs a string value");
        assert!(err_of("F|i", "'x'").contains("only valid after 're'"));
        assert!(err_of("F|re|contains", "'x'").contains("cannot be combined"));
    }

    #[test]
    fn base64_and_offsets() {
        assert_eq!(
            base64_offsets(b"http://"),
            vec!["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"]
        );
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
        // Every offset variant is found inside a real encoding.
        for prefix in ["", "x", "xy", "xyz"] {
            let enc = b64(format!("{prefix}http://evil").as_bytes());
            let f = fm("CommandLine|base64offset|contains", "'http://'");
            assert!(
                s(&f, "CommandLine", &format!("powershell -e {enc}")),
                "{prefix}"
            );
        }
        let f = fm("CommandLine|base64|contains", "'http://'");
        assert!(s(&f, "CommandLine", &format!("x {} y", b64(b"http://"))));
        let f = fm("Data|base64", "'abc'");
        assert!(s(&f, "Data", "YWJj"));
        assert!(!s(&f, "Data", "xYWJj"));
        assert!(err_of("F|contains|base64", "'a'").contains("wildcards"));
    }

    #[test]
    fn utf16_wide() {
        let f = fm("F|utf16le", "'cmd'");
        assert!(s(&f, "F", "c\0m\0d\0"));
        assert_eq!(
            utf16(b"cmd", Modifier::Utf16Be).unwrap(),
            vec![0, 0x63, 0, 0x6d, 0, 0x64]
        );
        assert_eq!(
            utf16(b"cmd", Modifier::Utf16).unwrap(),
            vec![0xFF, 0xFE, 0x63, 0, 0x6d, 0, 0x64, 0]
        );
        // wide|base64offset|contains: PowerShell -EncodedCommand payloads.
        let f = fm("CommandLine|wide|base64offset|contains", "'Invoke-'");
        for prefix in ["", "I", "IE"] {
            let payload = utf16(
                format!("{prefix}Invoke-Mimikatz").as_bytes(),
                Modifier::Utf16Le,
            )
            .unwrap();
            assert!(
                s(
                    &f,
                    "CommandLine",
                    &format!("powershell -enc {}", b64(&payload))
                ),
                "{prefix}"
            );
        }
        assert!(!s(
            &f,
            "CommandLine",
            &format!("powershell -enc {}", b64(b"Invoke-"))
        ));
        let f = fm("CommandLine|utf16be|base64|contains", "'a'");
        assert!(s(&f, "CommandLine", &b64(&[0, b'a'])));
    }

    #[test]
    fn windash_variants() {
        let f = fm("CommandLine|contains|windash", "' -enc '");
        for d in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
            assert!(
                s(&f, "CommandLine", &format!("powershell {d}enc AAA")),
                "{d}"
            );
        }
        assert!(!s(&f, "CommandLine", "powershell enc AAA"));
        // Dashes inside words are left alone (pySigma `\B[-/]\b`).
        let f = fm(
            "CommandLine|windash|contains",
            "['Set-MpPreference -Disable']",
        );
        assert!(s(&f, "CommandLine", "Set-MpPreference /DisableRealtime"));
        assert!(!s(&f, "CommandLine", "Set/MpPreference -Disable"));
        let v = windash(&parse_sigma_str("-a -b", false)).unwrap();
        assert_eq!(v.len(), 25);
        let f = fm("CommandLine|endswith|windash", "' -x'");
        assert!(s(&f, "CommandLine", "a /x"));
    }

    #[test]
    fn cidr() {
        let f = fm("DestinationIp|cidr", "'10.0.0.0/8'");
        assert!(s(&f, "DestinationIp", "10.1.2.3"));
        assert!(s(&f, "DestinationIp", "::ffff:10.1.2.3"));
        assert!(!s(&f, "DestinationIp", "11.1.2.3"));
        assert!(!s(&f, "DestinationIp", "not an ip"));
        let f = fm(
            "DestinationIp|cidr",
            "['127.0.0.0/8', '::1/128', 'fe80::/10', '192.168.1.1']",
        );
        assert!(s(&f, "DestinationIp", "::1"));
        assert!(s(&f, "DestinationIp", "fe80::1%eth0"));
        assert!(s(&f, "DestinationIp", "192.168.1.1"));
        assert!(!s(&f, "DestinationIp", "192.168.1.2"));
        assert!(!s(&f, "DestinationIp", "2001:db8::1"));
        let f = fm("Ip|cidr", "'0.0.0.0/0'");
        assert!(s(&f, "Ip", "8.8.8.8"));
        assert!(err_of("Ip|cidr", "'10.0.0.0/33'").contains("invalid CIDR"));
    }

    #[test]
    fn numeric_comparisons() {
        let ev = |n: serde_json::Value| json!({ "Size": n });
        let f = fm("Size|lt", "10");
        assert!(m(&f, ev(json!(9))) && !m(&f, ev(json!(10))));
        let f = fm("Size|lte", "10");
        assert!(m(&f, ev(json!(10))) && !m(&f, ev(json!(11))));
        let f = fm("Size|gt", "10");
        assert!(m(&f, ev(json!("11"))) && !m(&f, ev(json!(10))));
        assert!(m(&f, ev(json!("0x20"))), "hex text");
        assert!(!m(&f, ev(json!("abc"))));
        let f = fm("Size|gte", "10.5");
        assert!(m(&f, ev(json!(10.5))) && !m(&f, ev(json!(10))));
        assert_eq!(
            err_of("Size|gt", "'x'"),
            "modifier 'gt' needs a numeric value"
        );
    }

    #[test]
    fn time_modifiers() {
        let ev = json!({"ts": "2020-10-23T02:36:40.671Z", "utc": "2025-11-27 07:40:10.132", "epoch": 1_603_420_600});
        let t = |k: &str, y: &str, field: &str| m(&fm(&format!("{field}|{k}"), y), ev.clone());
        assert!(t("minute", "36", "ts"));
        assert!(t("hour", "2", "ts"));
        assert!(t("day", "23", "ts"));
        assert!(t("week", "43", "ts"));
        assert!(t("month", "10", "ts"));
        assert!(t("year", "2020", "ts"));
        assert!(!t("year", "2021", "ts"));
        assert!(t("hour", "7", "utc"));
        assert!(t("hour|gte", "7", "utc"));
        assert!(!t("hour|lt", "7", "utc"));
        assert!(t("year", "2020", "epoch"));
        assert!(t("hour", "[1, 2, 3]", "ts"));
    }

    #[test]
    fn fieldref() {
        let f = fm("SourceUser|fieldref", "'TargetUser'");
        assert!(m(&f, json!({"SourceUser": "Bob", "TargetUser": "bob"})));
        assert!(!m(&f, json!({"SourceUser": "Bob", "TargetUser": "alice"})));
        assert!(!m(&f, json!({"SourceUser": "Bob"})));
        assert!(m(&f, json!({"SourceUser": 5, "TargetUser": "5"})));
        let f = fm("SourceUser|fieldref|neq", "'TargetUser'");
        assert!(m(&f, json!({"SourceUser": "Bob", "TargetUser": "alice"})));
        assert!(!m(&f, json!({"SourceUser": "Bob", "TargetUser": "BOB"})));
        let f = fm("Image|fieldref|endswith", "'Name'");
        assert!(m(&f, json!({"Image": "C:\\x\\cmd.exe", "Name": "CMD.EXE"})));
        let f = fm("A|fieldref|cased", "'B'");
        assert!(!m(&f, json!({"A": "x", "B": "X"})));
    }

    #[test]
    fn expand_placeholders() {
        let mut ph = Placeholders::default();
        ph.0.insert("Workstations".into(), vec!["ws-*".into(), "laptop?".into()]);
        ph.0.insert("DC-MACHINE-NAME".into(), vec!["DC01$".into()]);
        let f = fm_ph("ComputerName|expand", "'%Workstations%'", &ph);
        assert!(s(&f, "ComputerName", "WS-042"));
        assert!(s(&f, "ComputerName", "laptop7"));
        assert!(!s(&f, "ComputerName", "srv1"));
        let f = fm_ph("TargetUserName|expand", "'%DC-MACHINE-NAME%'", &ph);
        assert!(s(&f, "TargetUserName", "dc01$"));
        let f = fm_ph(
            "CommandLine|contains|expand",
            "'\\%plain%DC-MACHINE-NAME%'",
            &ph,
        );
        assert!(s(&f, "CommandLine", "x %plainDC01$ y"));
        // Without expand, %name% is literal.
        let f = fm("F", "'%Workstations%'");
        assert!(s(&f, "F", "%workstations%"));
        let v: Yaml = serde_yaml::from_str("'%nope%'").unwrap();
        assert_eq!(
            FieldMatcher::compile("F|expand", &v, &ph).unwrap_err().0,
            "placeholder %nope% has no value configured"
        );
    }

    #[test]
    fn keywords() {
        let f = fm("", "['EVILSERVICE', 'svchost.exe -n evil']");
        assert_eq!(f.field(), None);
        assert!(m(&f, json!({"Message": "started evilservice now"})));
        assert!(m(&f, json!({"a": {"b": ["x", "run svchost.exe -n evil"]}})));
        assert!(!m(&f, json!({"Message": "nothing"})));
        let f = fm("|all", "['OabVirtualDirectory', ' -ExternalUrl ']");
        assert!(m(
            &f,
            json!({"a": "Set-OabVirtualDirectory", "b": "x -externalurl y"})
        ));
        assert!(!m(&f, json!({"a": "Set-OabVirtualDirectory"})));
        let f = fm("", "4624");
        assert!(m(&f, json!({"EventID": 4624})));
        assert!(err_of("|cidr", "'10.0.0.0/8'").contains("needs a field name"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err_of("CommandLine|contians", "'x'"),
            "unknown modifier 'contians'"
        );
        assert_eq!(err_of("CommandLine|", "'x'"), "empty modifier");
        assert!(err_of("F", "[]").contains("empty"));
        assert!(err_of("F", "{a: 1}").contains("map"));
        assert!(err_of("F|cidr|re", "'x'").contains("cannot be combined"));
        assert!(err_of("F|lt|gt", "1").contains("cannot be combined"));
    }
}
