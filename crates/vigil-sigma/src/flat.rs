//! A fast path for flat Windows events (OTRF / Windows Event Forwarding
//! style NDJSON: one JSON object of scalars per line).
//!
//! Building a `serde_json::Value` costs about as much as evaluating the
//! whole SigmaHQ Windows rule set on it, and most events match nothing.
//! [`FlatEvent::parse`] reads such a line into borrowed (name, scalar)
//! pairs (strings are copied only when they hold escapes), and
//! [`FlatEvent`] is an [`EventView`] with exactly the semantics
//! [`crate::views::FlatWindowsView`] has for the same object. Anything else
//! — nested objects, arrays, duplicate names, invalid JSON, or an object
//! that is not Windows-shaped — is refused with `None`, and the caller
//! falls back to `serde_json`.

use std::borrow::Cow;

use crate::event::{EventView, FieldValue};
use crate::views::strip_spaces;

/// Most names a flat event may have; larger objects take the general path.
const MAX_FIELDS: usize = 512;

/// A flat JSON object read without building a `serde_json::Value`.
#[derive(Debug, Clone)]
pub struct FlatEvent<'a> {
    /// (name without spaces, value), in the order of the object.
    entries: Vec<(Cow<'a, str>, Slot<'a>)>,
    /// The line, when it can stand for its values' text (see
    /// [`EventView::raw_text`]).
    raw: Option<&'a str>,
}

/// A field's value: a scalar, or an array of scalars.
#[derive(Debug, Clone)]
enum Slot<'a> {
    One(FieldValue<'a>),
    Many(Vec<FieldValue<'a>>),
}

impl<'a> Slot<'a> {
    fn values(&self) -> &[FieldValue<'a>] {
        match self {
            Slot::One(v) => std::slice::from_ref(v),
            Slot::Many(vs) => vs,
        }
    }
}

/// Most elements of an array value read on the fast path.
const MAX_ARRAY: usize = 256;

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    /// Whether the text has control characters: only then are strings
    /// checked for them one by one (JSON forbids them raw in strings).
    controls: bool,
    /// Whether the line's text differs from its values' JSON escaping by
    /// more than `\\`, `\"` and the short escapes: a `\u` or `\/` escape,
    /// or a float (whose text is re-formatted).
    irregular: bool,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// A string; the opening quote is at `pos`.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.s.as_bytes();
        let start = self.pos + 1;
        let end = start + find_quote_or_escape(&bytes[start..])?;
        if bytes[end] == b'"' {
            let s = &self.s[start..end];
            if self.controls && s.bytes().any(|b| b < 0x20) {
                return None;
            }
            self.pos = end + 1;
            return Some(Cow::Borrowed(s));
        }
        let mut out = String::with_capacity(end - start + 64);
        let mut i = start;
        loop {
            let j = i + find_quote_or_escape(&bytes[i..])?;
            let run = &self.s[i..j];
            if self.controls && run.bytes().any(|b| b < 0x20) {
                return None;
            }
            out.push_str(run);
            if bytes[j] == b'"' {
                self.pos = j + 1;
                return Some(Cow::Owned(out));
            }
            // `\\` (Windows paths) is by far the most common escape.
            if bytes.get(j + 1) == Some(&b'\\') {
                out.push('\\');
                i = j + 2;
                continue;
            }
            let (c, used) = unescape(&bytes[j + 1..])?;
            self.irregular |= matches!(bytes[j + 1], b'u' | b'/');
            out.push(c);
            i = j + 1 + used;
        }
    }

    fn number(&mut self) -> Option<FieldValue<'a>> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut end = start;
        let mut float = false;
        while let Some(&b) = bytes.get(end) {
            match b {
                b'0'..=b'9' | b'-' => {}
                b'.' | b'e' | b'E' | b'+' => float = true,
                _ => break,
            }
            end += 1;
        }
        let t = &self.s[start..end];
        self.pos = end;
        if !valid_json_number(t) {
            return None;
        }
        if !float {
            // Integers beyond i64 read as u64 or f64 with serde_json, whose
            // text differs from ours: the general path takes them.
            return t.parse::<i64>().ok().map(FieldValue::Int);
        }
        self.irregular = true;
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(FieldValue::Float)
    }

    /// A scalar value at `pos`; `None` for anything else.
    fn scalar(&mut self) -> Option<FieldValue<'a>> {
        match self.peek()? {
            b'"' => Some(FieldValue::Str(self.string()?)),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", FieldValue::Bool(true)),
            b'f' => self.literal("false", FieldValue::Bool(false)),
            b'n' => self.literal("null", FieldValue::Null),
            _ => None,
        }
    }

    /// An array of scalars; the `[` is at `pos`.
    fn array(&mut self) -> Option<Vec<FieldValue<'a>>> {
        self.pos += 1;
        let mut out = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(out);
        }
        loop {
            self.skip_ws();
            if out.len() >= MAX_ARRAY {
                return None;
            }
            out.push(self.scalar()?);
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &str, v: FieldValue<'a>) -> Option<FieldValue<'a>> {
        self.s[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
            v
        })
    }
}

/// Position of the first `"` or `\\`. Most strings are short: a plain
/// loop over the first bytes beats setting up a vector search.
#[inline]
fn find_quote_or_escape(b: &[u8]) -> Option<usize> {
    let head = b.len().min(32);
    if let Some(i) = b[..head].iter().position(|&c| c == b'"' || c == b'\\') {
        return Some(i);
    }
    memchr::memchr2(b'"', b'\\', &b[head..]).map(|i| head + i)
}

/// The JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn valid_json_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn hex4(b: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// One escape after a backslash: the character and the bytes it used.
fn unescape(b: &[u8]) -> Option<(char, usize)> {
    Some(match *b.first()? {
        b'"' => ('"', 1),
        b'\\' => ('\\', 1),
        b'/' => ('/', 1),
        b'b' => ('\u{8}', 1),
        b'f' => ('\u{c}', 1),
        b'n' => ('\n', 1),
        b'r' => ('\r', 1),
        b't' => ('\t', 1),
        b'u' => {
            let hi = hex4(&b[1..])?;
            if (0xD800..0xDC00).contains(&hi) {
                if b.get(5..7)? != b"\\u" {
                    return None;
                }
                let lo = hex4(&b[7..])?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return None;
                }
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                (char::from_u32(c)?, 11)
            } else {
                (char::from_u32(hi)?, 5)
            }
        }
        _ => return None,
    })
}

/// Whether every non-ASCII character of `s` is its own lowercase.
fn non_ascii_is_lowercase(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Skip ASCII 16 bytes at a time (a branch-free test per block).
        if let Some(block) = b.get(i..i + 16) {
            if block.iter().fold(0u8, |a, c| a | c) < 0x80 {
                i += 16;
                continue;
            }
        }
        if b[i].is_ascii() {
            i += 1;
            continue;
        }
        let Some(c) = s.get(i..).and_then(|t| t.chars().next()) else {
            // Inside a character: move on to its start... never reached
            // from a character boundary, which `i` always is here.
            return false;
        };
        let mut l = c.to_lowercase();
        if l.next() != Some(c) || l.next().is_some() {
            return false;
        }
        i += c.len_utf8();
    }
    true
}

/// FNV-1a over the ASCII-lowercased bytes.
fn ci_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    })
}

impl<'a> FlatEvent<'a> {
    /// Reads `line` if it is one JSON object of scalar values with distinct
    /// names that has an `EventID` (a flat Windows event), else `None`.
    pub fn parse(line: &'a [u8]) -> Option<FlatEvent<'a>> {
        let s = std::str::from_utf8(line).ok()?;
        // Without early exit, so that it vectorizes.
        let controls = s.bytes().fold(false, |acc, b| acc | (b < 0x20));
        let mut c = Cursor {
            s,
            pos: 0,
            controls,
            irregular: false,
        };
        c.eat(b'{')?;
        let mut entries: Vec<(Cow<'a, str>, Slot<'a>)> = Vec::with_capacity(48);
        c.skip_ws();
        if c.peek()? == b'}' {
            return None;
        }
        loop {
            c.skip_ws();
            if c.peek()? != b'"' {
                return None;
            }
            let name = c.string()?;
            c.eat(b':')?;
            c.skip_ws();
            // Objects (and arrays of anything but scalars) take the general path.
            let v = match c.peek()? {
                b'[' => Slot::Many(c.array()?),
                _ => Slot::One(c.scalar()?),
            };
            if entries.len() >= MAX_FIELDS {
                return None;
            }
            entries.push((name, v));
            c.skip_ws();
            match c.peek()? {
                b',' => c.pos += 1,
                b'}' => {
                    c.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        c.skip_ws();
        if c.pos != s.len() {
            return None;
        }
        // One name must be `EventID` (and there are no `Event` or `winlog`
        // objects): a Windows event, see `ruleset::is_windows_map`.
        if !entries.iter().any(|(n, _)| n == "EventID") {
            return None;
        }
        for slot in entries.iter_mut() {
            if let Cow::Owned(n) = strip_spaces(&slot.0) {
                slot.0 = Cow::Owned(n);
            }
        }
        // Names must differ even without spaces and ignoring ASCII case:
        // otherwise which value a lookup finds depends on the order of the
        // object's keys (and serde_json keeps only the last of duplicates),
        // so the general path decides.
        // Hash each name ignoring case, sort the hashes; only equal hashes
        // need a real comparison.
        let mut small = [(0u64, 0usize); 64];
        let mut large = Vec::new();
        let hashes: &mut [(u64, usize)] = if entries.len() <= small.len() {
            &mut small[..entries.len()]
        } else {
            large.resize(entries.len(), (0, 0));
            &mut large
        };
        for (slot, (i, (k, _))) in hashes.iter_mut().zip(entries.iter().enumerate()) {
            *slot = (ci_hash(k), i);
        }
        hashes.sort_unstable();
        for w in hashes.windows(2) {
            if w[0].0 == w[1].0 && entries[w[0].1].0.eq_ignore_ascii_case(&entries[w[1].1].0) {
                return None;
            }
        }
        let raw = (!c.irregular && !controls && non_ascii_is_lowercase(s)).then_some(s);
        Some(FlatEvent { entries, raw })
    }

    /// The value under `field` (compared without spaces: exactly, then
    /// ignoring ASCII case), as [`crate::views::FlatWindowsView`] finds it.
    fn find(&self, field: &str) -> Option<&Slot<'a>> {
        let name = strip_spaces(field);
        let name = name.as_ref();
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the event has no field (never true for a parsed event).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl EventView for FlatEvent<'_> {
    fn any_value(&self, field: &str, f: &mut dyn FnMut(&FieldValue<'_>) -> bool) -> bool {
        self.find(field).is_some_and(|v| v.values().iter().any(f))
    }

    fn has_field(&self, field: &str) -> bool {
        self.find(field).is_some()
    }

    fn any_text(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.entries
            .iter()
            .flat_map(|(_, v)| v.values())
            .any(|v| match v {
                FieldValue::Str(s) => f(s),
                FieldValue::Int(i) => {
                    let mut buf = [0u8; 24];
                    let mut w = std::io::Cursor::new(&mut buf[..]);
                    let _ = std::io::Write::write_fmt(&mut w, format_args!("{i}"));
                    let n = w.position() as usize;
                    f(std::str::from_utf8(&buf[..n]).unwrap_or(""))
                }
                // serde_json's own formatting, as the general path uses.
                FieldValue::Float(x) => {
                    serde_json::Number::from_f64(*x).is_some_and(|n| f(&n.to_string()))
                }
                FieldValue::Bool(_) | FieldValue::Null => false,
            })
    }

    fn raw_text(&self) -> Option<&str> {
        self.raw
    }

    fn each_named(&self, f: &mut dyn FnMut(&str, &FieldValue<'_>)) -> bool {
        for (k, v) in &self.entries {
            for x in v.values() {
                f(k, x);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::FlatWindowsView;
    use serde_json::Value;

    fn same_view(line: &str, fields: &[&str]) {
        let flat = FlatEvent::parse(line.as_bytes()).expect("flat");
        let v: Value = serde_json::from_str(line).unwrap();
        let win = FlatWindowsView::new(&v);
        for f in fields {
            let mut a = Vec::new();
            let mut b = Vec::new();
            flat.any_value(f, &mut |x| {
                a.push(format!("{x:?}"));
                false
            });
            win.any_value(f, &mut |x| {
                b.push(format!("{x:?}"));
                false
            });
            assert_eq!(a, b, "{f} in {line}");
            assert_eq!(flat.has_field(f), win.has_field(f), "{f}");
        }
        let mut a = Vec::new();
        let mut b = Vec::new();
        flat.any_text(&mut |t| {
            a.push(t.to_string());
            false
        });
        win.any_text(&mut |t| {
            b.push(t.to_string());
            false
        });
        // The general path's key order depends on serde_json's features.
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn reads_like_the_general_path() {
        same_view(
            r#"{"EventID":4688,"Channel":"Security","NewProcessName":"C:\\Windows\\System32\\cmd.exe","Threat Name":"x\u00e9\ud83d\ude00\n\"q\"","f":-1.5e3,"z":0,"t":true,"n":null,"ProcessId":"0x273c","tags":["a",1,null,true,2.5],"e":[]}"#,
            &[
                "EventID",
                "channel",
                "NewProcessName",
                "ThreatName",
                "Threat Name",
                "f",
                "z",
                "t",
                "n",
                "missing",
                "ProcessId",
                "tags",
                "e",
            ],
        );
    }

    #[test]
    fn refuses_what_it_does_not_read_exactly() {
        for bad in [
            r#"{"EventID":1,"a":{"b":1}}"#,
            r#"{"EventID":1,"a":[[1]]}"#,
            r#"{"EventID":1,"a":[{"b":1}]}"#,
            r#"{"EventID":1,"a":[1,]}"#,
            r#"{"EventID":1,"a":1,"a":2}"#,
            r#"{"EventID":1,"Image":1,"image":2}"#,
            r#"{"EventID":1,"Threat Name":1,"ThreatName":2}"#,
            r#"{"EventID":18446744073709551615}"#,
            r#"{"a":1}"#,
            r#"{"EventID":1,}"#,
            r#"{"EventID":01}"#,
            r#"{"EventID":1.}"#,
            r#"{"EventID":1} x"#,
            r#"{"EventID":"a\x"}"#,
            "{\"EventID\":\"a\u{1}\"}",
            r#"{"EventID":"\ud800"}"#,
            r#"{"EventID":tru}"#,
            r#"{}"#,
            r#"[1]"#,
            "",
        ] {
            assert!(FlatEvent::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(FlatEvent::parse(b"\xff").is_none());
        let raw = |l: &str| FlatEvent::parse(l.as_bytes()).unwrap().raw_text().is_some();
        assert!(raw(r#"{"EventID":1,"x":"a\\b \"q\" \n é ®"}"#));
        assert!(!raw(r#"{"EventID":1,"x":"\u0041"}"#));
        assert!(!raw(r#"{"EventID":1,"x":"a\/b"}"#));
        assert!(!raw(r#"{"EventID":1,"x":1.0}"#));
        assert!(!raw(r#"{"EventID":1,"x":"É"}"#));
        let ok = FlatEvent::parse(b" { \"EventID\" : 7 , \"x\" : \"y\" } \r\n").unwrap();
        assert_eq!(ok.len(), 2);
    }
}
