//! Case-insensitive wildcard matching (`*`, `?`) in O(text × pattern) time.
//!
//! A greedy two-pointer matcher that remembers only the most recent `*`: when
//! a later literal fails it retries from one character further after that star.
//! Earlier stars never need revisiting (the last star can absorb anything they
//! could), so there is no exponential backtracking even for `*a*a*a*a*b`.
//! A regex would also be linear, but compiling one per query value costs more
//! than these patterns need and would hide the structure a planner reads.

/// One piece of a wildcard pattern, as written in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobToken {
    /// Literal text, already lowercased.
    Literal(String),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, including none.
    AnySeq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(char),
    One,
    Star,
}

/// A compiled wildcard pattern, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<GlobToken>,
    /// The pattern as matched against a whole value.
    anchored: Vec<Unit>,
    /// The pattern wrapped in `*…*`, for free text that may match anywhere.
    floating: Vec<Unit>,
}

impl Glob {
    /// Builds a pattern from tokens; literal text is lowercased, adjacent
    /// literals are joined and runs of `*` collapse into one.
    pub fn new(tokens: impl IntoIterator<Item = GlobToken>) -> Self {
        let mut norm: Vec<GlobToken> = Vec::new();
        for t in tokens {
            match (norm.last_mut(), t) {
                (Some(GlobToken::AnySeq), GlobToken::AnySeq) => {}
                (_, GlobToken::Literal(s)) if s.is_empty() => {}
                (Some(GlobToken::Literal(prev)), GlobToken::Literal(s)) => {
                    prev.push_str(&crate::ast::fold_case(&s))
                }
                (_, GlobToken::Literal(s)) => {
                    norm.push(GlobToken::Literal(crate::ast::fold_case(&s)))
                }
                (_, t) => norm.push(t),
            }
        }
        let mut anchored = Vec::new();
        for t in &norm {
            match t {
                GlobToken::Literal(s) => anchored.extend(s.chars().map(Unit::Char)),
                GlobToken::AnyChar => anchored.push(Unit::One),
                GlobToken::AnySeq => anchored.push(Unit::Star),
            }
        }
        let mut floating = Vec::with_capacity(anchored.len() + 2);
        if anchored.first() != Some(&Unit::Star) {
            floating.push(Unit::Star);
        }
        floating.extend_from_slice(&anchored);
        if floating.last() != Some(&Unit::Star) {
            floating.push(Unit::Star);
        }
        Glob {
            tokens: norm,
            anchored,
            floating,
        }
    }

    /// The normalized tokens (lowercased, merged).
    pub fn tokens(&self) -> &[GlobToken] {
        &self.tokens
    }

    /// The literal text every match must start with (`"fail"` for `fail*`),
    /// which an index can use as a prefix scan.
    pub fn literal_prefix(&self) -> &str {
        match self.tokens.first() {
            Some(GlobToken::Literal(s)) => s,
            _ => "",
        }
    }

    /// Whether the pattern matches the whole of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        match_units(&self.anchored, text)
    }

    /// Whether the pattern matches anywhere inside `text`.
    pub fn is_match_within(&self, text: &str) -> bool {
        match_units(&self.floating, text)
    }
}

impl std::fmt::Display for Glob {
    /// Writes the pattern back in query syntax, escaping literal wildcards.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, t) in self.tokens.iter().enumerate() {
            match t {
                GlobToken::Literal(s) => {
                    for (j, c) in s.chars().enumerate() {
                        // A leading `-` would read back as a negation, a `|`
                        // as the start of a pipe.
                        let first = i == 0 && j == 0;
                        if matches!(
                            c,
                            '*' | '?' | '\\' | '"' | '(' | ')' | ':' | '<' | '>' | '|'
                        ) || (first && c == '-')
                            || c.is_whitespace()
                        {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                }
                GlobToken::AnyChar => f.write_str("?")?,
                GlobToken::AnySeq => f.write_str("*")?,
            }
        }
        Ok(())
    }
}

fn match_units(pat: &[Unit], text: &str) -> bool {
    if text.is_ascii() {
        // ASCII text: one byte is one character, so `?` can step by bytes and
        // no lowercase copy is needed. A non-ASCII pattern character can never
        // equal an ASCII byte, because lowercasing keeps ASCII in ASCII.
        two_pointer(pat, text.as_bytes(), |c, b| {
            c.is_ascii() && c as u8 == b.to_ascii_lowercase()
        })
    } else {
        let lowered: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        two_pointer(pat, &lowered, |c, h| c == h)
    }
}

fn two_pointer<T: Copy>(pat: &[Unit], text: &[T], eq: impl Fn(char, T) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // (pattern index just after the last `*`, text index that star resumes from)
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(&u) = pat.get(p) {
            match u {
                Unit::Star => {
                    resume = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Unit::One => {
                    p += 1;
                    t += 1;
                    continue;
                }
                Unit::Char(c) if eq(c, text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                Unit::Char(_) => {}
            }
        }
        match resume {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                resume = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|u| *u == Unit::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Glob {
        Glob::new(s.chars().map(|c| match c {
            '*' => GlobToken::AnySeq,
            '?' => GlobToken::AnyChar,
            c => GlobToken::Literal(c.to_string()),
        }))
    }

    #[test]
    fn anchored_matching() {
        assert!(g("fail*").is_match("Failure"));
        assert!(g("*ure").is_match("failure"));
        assert!(!g("*ure").is_match("failures"));
        assert!(g("f?il").is_match("fail"));
        assert!(!g("f?il").is_match("fil"));
        assert!(g("*").is_match(""));
        assert!(!g("?").is_match(""));
        assert!(g("a*b*c").is_match("aXXbYYc"));
        assert!(!g("a*b*c").is_match("aXXbYY"));
        assert!(g("ÉTÉ*").is_match("étéx"));
        assert!(g("?x").is_match("éx"), "? is one character, not one byte");
        assert!(!g("é").is_match("e"));
    }

    #[test]
    fn floating_matching() {
        assert!(g("ail*r").is_match_within("a failure here"));
        assert!(!g("ail*r").is_match_within("a fail"));
        assert!(g("x").is_match_within("x"));
    }

    #[test]
    fn normalizes_tokens() {
        let p = g("AB**c?");
        assert_eq!(
            p.tokens(),
            &[
                GlobToken::Literal("ab".into()),
                GlobToken::AnySeq,
                GlobToken::Literal("c".into()),
                GlobToken::AnyChar
            ]
        );
        assert_eq!(p.literal_prefix(), "ab");
        assert_eq!(p.to_string(), "ab*c?");
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(200_000);
        let pat = g("*a*a*a*a*a*a*a*a*a*a*b");
        let start = std::time::Instant::now();
        assert!(!pat.is_match(&text));
        assert!(!pat.is_match_within(&text));
        let non_ascii = "é".repeat(100_000);
        assert!(!g("*é*é*é*é*é*é*b").is_match(&non_ascii));
        // Exponential backtracking would never finish; quadratic would take minutes.
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
