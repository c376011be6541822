//! A walker over stored event bytes that lends each leaf with its dotted
//! path, without building a JSON tree.
//!
//! Indexing reads every stored event; decoding each into a `serde_json`
//! tree costs several times more than finding its values in place. The
//! ledger holds the canonical bytes `serde_json` wrote, so the walker only
//! needs to understand well-formed JSON; anything else is reported as an
//! error and the caller falls back to the full decoder.

/// One leaf value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    /// A string, unescaped.
    Str(&'a str),
    /// A number, as written.
    Num(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Why the bytes could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset of the problem.
    pub at: usize,
}

/// Deepest nesting walked; canonical events are limited far below this.
const MAX_DEPTH: usize = 128;

/// A value reached through an object key, as it lies in the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'p> {
    /// Its dotted path.
    pub path: &'p str,
    /// Where its bytes start in the walked input.
    pub start: usize,
    /// Where they end (exclusive).
    pub end: usize,
    /// Whether every key on the way is free of dots and no array lies on
    /// the way: then the path names this value in exactly one way.
    pub plain: bool,
}

/// What a walk saw besides the leaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkFacts {
    /// Whether some key holds a dot (such events can be read in more than
    /// one way, so shortcuts taken for plain events do not apply).
    pub dotted_key: bool,
}

/// Calls `f(path, leaf)` for every leaf of the top-level object in `json`.
/// The path joins object keys with `.` and skips array levels, which is how
/// the query language names fields (`process.pid` inside an array of
/// processes).
pub fn walk(json: &[u8], f: &mut impl FnMut(&str, Leaf<'_>)) -> Result<(), ScanError> {
    walk_spans(json, f, &mut |_| {}).map(|_| ())
}

/// [`walk`], also calling `g` with every value reached through an object
/// key (containers included), after its leaves.
pub fn walk_spans(
    json: &[u8],
    f: &mut impl FnMut(&str, Leaf<'_>),
    g: &mut impl FnMut(Span<'_>),
) -> Result<WalkFacts, ScanError> {
    // Stored events are UTF-8 throughout; checking it once here lets each
    // string be sliced out with a boundary check instead of a validation.
    let Ok(text) = std::str::from_utf8(json) else {
        return Err(ScanError { at: 0 });
    };
    let (mut path, mut buf) = SCRATCH.take();
    path.clear();
    buf.clear();
    let mut w = Walker {
        b: json,
        s: text,
        at: 0,
        path,
        buf,
        depth: 0,
        detours: 0,
        facts: WalkFacts::default(),
    };
    let walked = w.event(f, g);
    if w.path.capacity() + w.buf.capacity() <= MAX_SCRATCH {
        SCRATCH.set((w.path, w.buf));
    }
    walked
}

thread_local! {
    /// The path and unescaping buffers of the last walk on this thread:
    /// an index build walks every event, and growing two fresh strings
    /// for each showed up as allocations.
    static SCRATCH: std::cell::Cell<(String, String)> = const {
        std::cell::Cell::new((String::new(), String::new()))
    };
}

/// Largest scratch kept between walks, so one huge event does not pin its
/// buffers for good.
const MAX_SCRATCH: usize = 64 << 10;

struct Walker<'a> {
    b: &'a [u8],
    /// `b` as text.
    s: &'a str,
    at: usize,
    path: String,
    /// Unescaped text of the current string, when it had escapes.
    buf: String,
    depth: usize,
    /// Arrays and dotted keys on the current path.
    detours: usize,
    facts: WalkFacts,
}

impl<'a> Walker<'a> {
    /// Walks the whole input: one object and nothing after it.
    fn event(
        &mut self,
        f: &mut impl FnMut(&str, Leaf<'_>),
        g: &mut impl FnMut(Span<'_>),
    ) -> Result<WalkFacts, ScanError> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(self.err());
        }
        self.value(f, g)?;
        self.ws();
        if self.at != self.b.len() {
            return Err(self.err());
        }
        Ok(self.facts)
    }

    /// The text of `lo..hi` (the whole input is UTF-8, checked in
    /// [`walk_spans`]); a range that splits a character is an error.
    fn text(&self, lo: usize, hi: usize) -> Result<&'a str, ScanError> {
        self.s.get(lo..hi).ok_or(ScanError { at: lo })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn err(&self) -> ScanError {
        ScanError { at: self.at }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ScanError> {
        self.ws();
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn value(
        &mut self,
        f: &mut impl FnMut(&str, Leaf<'_>),
        g: &mut impl FnMut(Span<'_>),
    ) -> Result<(), ScanError> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(f, g),
            Some(b'[') => self.array(f, g),
            Some(b'"') => {
                let range = self.string()?;
                let s = match range {
                    Some((lo, hi)) => self.text(lo, hi)?,
                    None => self.buf.as_str(),
                };
                f(&self.path, Leaf::Str(s));
                Ok(())
            }
            Some(b't') => self.word(b"true", Leaf::Bool(true), f),
            Some(b'f') => self.word(b"false", Leaf::Bool(false), f),
            Some(b'n') => self.word(b"null", Leaf::Null, f),
            Some(b'-' | b'0'..=b'9') => {
                let lo = self.at;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                let s = self.text(lo, self.at)?;
                f(&self.path, Leaf::Num(s));
                Ok(())
            }
            _ => Err(self.err()),
        }
    }

    fn word(
        &mut self,
        w: &[u8],
        leaf: Leaf<'_>,
        f: &mut impl FnMut(&str, Leaf<'_>),
    ) -> Result<(), ScanError> {
        if self.b[self.at..].starts_with(w) {
            self.at += w.len();
            f(&self.path, leaf);
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn nest(&mut self) -> Result<(), ScanError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err());
        }
        Ok(())
    }

    fn object(
        &mut self,
        f: &mut impl FnMut(&str, Leaf<'_>),
        g: &mut impl FnMut(Span<'_>),
    ) -> Result<(), ScanError> {
        self.nest()?;
        self.at += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        let base = self.path.len();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err());
            }
            let key = self.string()?;
            if base > 0 {
                self.path.push('.');
            }
            let key_at = self.path.len();
            match key {
                Some((lo, hi)) => self.path.push_str(self.text(lo, hi)?),
                None => {
                    let k = std::mem::take(&mut self.buf);
                    self.path.push_str(&k);
                    self.buf = k;
                }
            }
            let dotted = self.path.as_bytes()[key_at..].contains(&b'.');
            self.facts.dotted_key |= dotted;
            self.detours += usize::from(dotted);
            self.expect(b':')?;
            self.ws();
            let lo = self.at;
            self.value(f, g)?;
            g(Span {
                path: &self.path,
                start: lo,
                end: self.at,
                plain: self.detours == 0,
            });
            self.detours -= usize::from(dotted);
            self.path.truncate(base);
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(
        &mut self,
        f: &mut impl FnMut(&str, Leaf<'_>),
        g: &mut impl FnMut(Span<'_>),
    ) -> Result<(), ScanError> {
        self.nest()?;
        self.at += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        self.detours += 1;
        loop {
            self.value(f, g)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    self.depth -= 1;
                    self.detours -= 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    /// Reads a string starting at its opening quote. Returns the byte range
    /// when it has no escapes; otherwise the text is left in `self.buf`.
    fn string(&mut self) -> Result<Option<(usize, usize)>, ScanError> {
        self.at += 1;
        let lo = self.at;
        let Some(end) = memchr::memchr2(b'"', b'\\', &self.b[lo..]).map(|i| lo + i) else {
            return Err(self.err());
        };
        if self.b[end] == b'"' {
            self.at = end + 1;
            return Ok(Some((lo, end)));
        }
        // The unescaped text is built in the buffer of the previous one, of
        // slices of the input cut at ASCII bytes (so at character
        // boundaries of text checked once in `walk_spans`) and of decoded
        // characters: it needs no allocation and no second validation.
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        out.push_str(self.text(lo, end)?);
        self.at = end;
        loop {
            match self.peek() {
                None => return Err(self.err()),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self.b.get(self.at + 1).ok_or_else(|| self.err())?;
                    self.at += 2;
                    match c {
                        b'"' | b'\\' | b'/' => out.push(char::from(c)),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode()?),
                        _ => return Err(self.err()),
                    }
                }
                Some(_) => {
                    let rest = &self.b[self.at..];
                    let n = memchr::memchr2(b'"', b'\\', rest).ok_or_else(|| self.err())?;
                    out.push_str(self.text(self.at, self.at + n)?);
                    self.at += n;
                }
            }
        }
        self.buf = out;
        Ok(None)
    }

    fn hex4(&mut self) -> Result<u32, ScanError> {
        let h = self.b.get(self.at..self.at + 4).ok_or_else(|| self.err())?;
        let s = std::str::from_utf8(h).map_err(|_| self.err())?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.err())?;
        self.at += 4;
        Ok(v)
    }

    fn unicode(&mut self) -> Result<char, ScanError> {
        let hi = self.hex4()?;
        if (0xd800..0xdc00).contains(&hi) {
            if self.b.get(self.at..self.at + 2) != Some(b"\\u") {
                return Err(self.err());
            }
            self.at += 2;
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return Err(self.err());
            }
            let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
            return char::from_u32(c).ok_or_else(|| self.err());
        }
        char::from_u32(hi).ok_or_else(|| self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(json: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(json.as_bytes(), &mut |p, l| {
            out.push((p.to_string(), format!("{l:?}")))
        })
        .expect("walks");
        out
    }

    #[test]
    fn paths_join_keys_and_skip_arrays() {
        let got = leaves(
            r#"{"a":{"b":"x","c.d":[1,{"e":true}]},"s":"q\"\u00e9\ud83d\ude00\n","n":null,"z":-1.5e3}"#,
        );
        assert_eq!(
            got,
            vec![
                ("a.b".into(), "Str(\"x\")".into()),
                ("a.c.d".into(), "Num(\"1\")".into()),
                ("a.c.d.e".into(), "Bool(true)".into()),
                ("s".into(), "Str(\"q\\\"é😀\\n\")".into()),
                ("n".into(), "Null".into()),
                ("z".into(), "Num(\"-1.5e3\")".into()),
            ]
        );
    }

    #[test]
    fn spans_cover_each_keyed_value_and_say_whether_its_path_is_plain() {
        let json = r#"{"a":{"b":"x","c.d":[1,{"e":true}]},"f":[{"g":2}],"h":{}}"#;
        let mut spans = Vec::new();
        let facts = walk_spans(json.as_bytes(), &mut |_, _| {}, &mut |s| {
            spans.push((s.path.to_string(), &json[s.start..s.end], s.plain))
        })
        .expect("walks");
        assert!(facts.dotted_key);
        assert_eq!(
            spans,
            vec![
                ("a.b".to_string(), "\"x\"", true),
                ("a.c.d.e".to_string(), "true", false),
                ("a.c.d".to_string(), r#"[1,{"e":true}]"#, false),
                ("a".to_string(), r#"{"b":"x","c.d":[1,{"e":true}]}"#, true),
                ("f.g".to_string(), "2", false),
                ("f".to_string(), r#"[{"g":2}]"#, true),
                ("h".to_string(), "{}", true),
            ]
        );
        let facts = walk_spans(br#"{"a":{"b":1}}"#, &mut |_, _| {}, &mut |_| {}).unwrap();
        assert!(!facts.dotted_key);
        // Invalid UTF-8 anywhere is an error, as inside a string it was.
        assert!(walk(b"{\"a\":\"\xff\"}", &mut |_, _| {}).is_err());
    }

    #[test]
    fn walks_after_others_start_afresh() {
        // The path and unescaping buffers are kept between walks: nothing
        // of one event, finished or failed, may show in the next.
        let deep = r#"{"a":{"b":{"c":"x\ty\u00e9 long enough to grow the buffer"}}}"#;
        let short = r#"{"d":"q\"","e":1}"#;
        let want = leaves(short);
        assert_eq!(
            want,
            vec![
                ("d".to_string(), "Str(\"q\\\"\")".to_string()),
                ("e".to_string(), "Num(\"1\")".to_string()),
            ]
        );
        for _ in 0..3 {
            assert_eq!(leaves(deep).len(), 1);
            assert!(walk(br#"{"a":{"b":"broken\q"}}"#, &mut |_, _| {}).is_err());
            assert_eq!(leaves(short), want);
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "[1]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":tru}",
            "{\"a\":\"x}",
            "{\"a\":1} x",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\q\"}",
            "{\"a\":[1,}",
        ] {
            assert!(walk(bad.as_bytes(), &mut |_, _| {}).is_err(), "{bad:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(walk(deep.as_bytes(), &mut |_, _| {}).is_err());
    }
}
