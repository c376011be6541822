//! Parses the pipes after a filter (`| stats count() by user.name | head 5`).
//!
//! Grammar (pipe and keyword names are case-insensitive):
//!
//! ```text
//! pipes     = { "|" pipe }
//! pipe      = "stats" aggs [ "by" fields ]
//!           | "timechart" { "span=" DURATION | "limit=" N } [ aggs ] [ "by" FIELD ]
//!           | ( "top" | "rare" ) [ N ] fields
//!           | "sort" [ "-" ] FIELD { "," [ "-" ] FIELD }
//!           | "head" [ N ] | "fields" fields | "dedup" fields | "where" or
//! aggs      = agg { "," agg }
//! agg       = FUNC "(" [ FIELD ] ")" [ "as" NAME ]
//! fields    = FIELD { "," FIELD }
//! or        = and { "OR" and };  and = unary { "AND" unary }
//! unary     = "NOT" unary | "(" or ")" | FIELD ( "=" | "!=" | "<" | "<=" | ">" | ">=" ) VALUE
//! ```
//!
//! Tokens carry absolute byte offsets into the whole query, so errors point
//! at the same text the analyst typed.

use crate::error::QueryError;
use crate::lexer::is_field_char;
use crate::parser::parse_filter;
use crate::pipeline::{
    Agg, AggFn, CmpOp, Cond, Pipe, Pipeline, Scalar, Search, SortKey, Spanned, Stats, Timechart,
    Top,
};
use crate::{MAX_AGGS, MAX_BY_FIELDS, MAX_DEPTH, MAX_HEAD, MAX_PIPES, MAX_SERIES, MAX_TOP};

/// Parses a search: a filter, then any number of pipes.
///
/// ```
/// let s = vigil_query::parse_search("event.outcome:failure | stats count() by user.name | head 5")?;
/// assert_eq!(s.pipeline.pipes.len(), 2);
/// let e = vigil_query::parse_search("* | stats count() by").unwrap_err();
/// assert_eq!(e.render("* | stats count() by"),
///     "* | stats count() by\n                    ^\nexpected a field name after 'by', found the end of the query");
/// # Ok::<(), vigil_query::QueryError>(())
/// ```
pub fn parse_search(input: &str) -> Result<Search, QueryError> {
    let (query, pipe) = parse_filter(input)?;
    let pipeline = match pipe {
        None => Pipeline::default(),
        Some(at) => {
            let tokens = tokenize(input, at)?;
            let mut p = PipeParser {
                tokens,
                i: 0,
                end: input.len(),
            };
            let pipeline = p.pipeline()?;
            // Column names after a table pipe are known now; checking them
            // here gives a caret error instead of a failure mid-scan.
            crate::executor::Executor::new(&pipeline, 0)?;
            pipeline
        }
    };
    Ok(Search { query, pipeline })
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    Pipe,
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
}

impl T {
    fn describe(&self) -> String {
        match self {
            T::Pipe => "'|'".into(),
            T::Word(w) => format!("'{w}'"),
            T::Str(s) => format!("\"{s}\""),
            T::LParen => "'('".into(),
            T::RParen => "')'".into(),
            T::Comma => "','".into(),
            T::Op(op) => format!("'{}'", op.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
struct Tok {
    t: T,
    start: usize,
}

fn tokenize(input: &str, from: usize) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let mut it = input[from..].char_indices().peekable();
    while let Some((off, c)) = it.next() {
        let start = from + off;
        let t = match c {
            c if c.is_whitespace() => continue,
            '|' => T::Pipe,
            '(' => T::LParen,
            ')' => T::RParen,
            ',' => T::Comma,
            '=' => T::Op(CmpOp::Eq),
            '!' if it.peek().map(|p| p.1) == Some('=') => {
                it.next();
                T::Op(CmpOp::Ne)
            }
            '<' | '>' => {
                let eq = it.peek().map(|p| p.1) == Some('=');
                if eq {
                    it.next();
                }
                T::Op(match (c, eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    ('>', false) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                })
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match it.next() {
                        None => {
                            return Err(QueryError::new(
                                start,
                                "this quote is never closed: expected a closing '\"'",
                            ))
                        }
                        Some((_, '"')) => break,
                        Some((_, '\\')) if matches!(it.peek(), Some((_, '"' | '\\'))) => {
                            if let Some((_, e)) = it.next() {
                                s.push(e);
                            }
                        }
                        Some((_, ch)) => s.push(ch),
                    }
                }
                T::Str(s)
            }
            // A leading `+` or `-` marks a sort direction: `sort +a, -b`.
            c if is_field_char(c) || c == '+' => {
                let mut w = String::from(c);
                while let Some(&(_, n)) = it.peek() {
                    if !is_field_char(n) {
                        break;
                    }
                    w.push(n);
                    it.next();
                }
                T::Word(w)
            }
            other => {
                let shown: String = if other.is_control() {
                    format!("U+{:04X}", u32::from(other))
                } else {
                    other.to_string()
                };
                return Err(QueryError::new(
                    start,
                    format!(
                        "unexpected character '{shown}' in a pipe: expected a field name, a \
                         number, a \"quoted\" value, ',', '(', ')', '|' or a comparison"
                    ),
                ));
            }
        };
        out.push(Tok { t, start });
    }
    Ok(out)
}

const PIPE_NAMES: &str = "stats, timechart, top, rare, sort, head, fields, dedup or where";

struct PipeParser {
    tokens: Vec<Tok>,
    i: usize,
    end: usize,
}

impl PipeParser {
    fn peek(&self) -> Option<&T> {
        self.tokens.get(self.i).map(|t| &t.t)
    }

    /// The offset of the next token, or the end of the query.
    fn here(&self) -> usize {
        self.tokens.get(self.i).map_or(self.end, |t| t.start)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn expected(&self, what: &str) -> QueryError {
        let found = match self.peek() {
            Some(t) => t.describe(),
            None => "the end of the query".into(),
        };
        QueryError::new(self.here(), format!("expected {what}, found {found}"))
    }

    /// Whether the next token is the word `kw`, ignoring case.
    fn at_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(T::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat(&mut self, t: &T) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, QueryError> {
        let mut pipes = Vec::new();
        while let Some(t) = self.bump() {
            if t.t != T::Pipe {
                self.i -= 1;
                return Err(self.expected("'|' before the next pipe"));
            }
            if pipes.len() == MAX_PIPES {
                return Err(QueryError::new(
                    t.start,
                    format!("a search may have at most {MAX_PIPES} pipes"),
                ));
            }
            let node = self.pipe()?;
            pipes.push(Spanned { at: t.start, node });
        }
        Ok(Pipeline { pipes })
    }

    fn pipe(&mut self) -> Result<Pipe, QueryError> {
        let name = match self.peek() {
            Some(T::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(self.expected(&format!("a pipe after '|' ({PIPE_NAMES})"))),
        };
        let at = self.here();
        self.i += 1;
        let pipe = match name.as_str() {
            "stats" => {
                let aggs = self.aggs("stats", true)?;
                let by = if self.at_word("by") {
                    self.i += 1;
                    self.fields("after 'by'", MAX_BY_FIELDS)?
                } else {
                    Vec::new()
                };
                unique_columns(&by, &aggs, at)?;
                Pipe::Stats(Stats { aggs, by })
            }
            "timechart" => self.timechart(at)?,
            "top" | "rare" => {
                let limit = self.count_opt(&name, 10, MAX_TOP)?;
                let fields = self.fields(&format!("after '{name}'"), MAX_BY_FIELDS)?;
                Pipe::Top(Top {
                    limit,
                    fields,
                    rare: name == "rare",
                })
            }
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let desc = match self.peek() {
                        Some(T::Word(w)) if w == "-" || w == "+" => {
                            let d = w == "-";
                            self.i += 1;
                            Some(d)
                        }
                        _ => None,
                    };
                    let (field, neg) = self.field_name("a field to sort by, like -count")?;
                    let descending = desc.unwrap_or(neg);
                    keys.push(SortKey { field, descending });
                    if keys.len() > MAX_BY_FIELDS {
                        return Err(QueryError::new(
                            at,
                            format!("sort takes at most {MAX_BY_FIELDS} fields"),
                        ));
                    }
                    if !self.eat(&T::Comma) {
                        break;
                    }
                }
                Pipe::Sort(keys)
            }
            "head" => Pipe::Head(self.count_opt("head", 10, MAX_HEAD)?),
            "fields" => Pipe::Fields(self.fields("after 'fields'", MAX_AGGS + MAX_BY_FIELDS)?),
            "dedup" => Pipe::Dedup(self.fields("after 'dedup'", MAX_BY_FIELDS)?),
            "where" => {
                if self.peek().is_none() || self.peek() == Some(&T::Pipe) {
                    return Err(self.expected("a condition after 'where', like count > 5"));
                }
                Pipe::Where(self.or(0)?)
            }
            _ => {
                return Err(QueryError::new(
                    at,
                    format!("unknown pipe '{name}': expected {PIPE_NAMES}"),
                ))
            }
        };
        match self.peek() {
            None | Some(T::Pipe) => Ok(pipe),
            Some(_) => Err(self.expected(&format!(
                "'|' or the end of the query after the {name} pipe"
            ))),
        }
    }

    fn timechart(&mut self, at: usize) -> Result<Pipe, QueryError> {
        let mut span = None;
        let mut limit = 10;
        loop {
            let opt = match self.peek() {
                Some(T::Word(w))
                    if (w.eq_ignore_ascii_case("span") || w.eq_ignore_ascii_case("limit"))
                        && matches!(
                            self.tokens.get(self.i + 1),
                            Some(Tok {
                                t: T::Op(CmpOp::Eq),
                                ..
                            })
                        ) =>
                {
                    w.to_ascii_lowercase()
                }
                _ => break,
            };
            self.i += 2;
            let vat = self.here();
            let Some(T::Word(v)) = self.peek().cloned() else {
                return Err(self.expected(&format!("a value after '{opt}='")));
            };
            self.i += 1;
            if opt == "span" {
                span = Some(parse_span(&v).ok_or_else(|| {
                    QueryError::new(
                        vat,
                        format!(
                            "expected a span like 30s, 5m, 1h or 1d (at most 366d), found '{v}'"
                        ),
                    )
                })?);
            } else {
                limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_SERIES).contains(&n) => n,
                    _ => {
                        return Err(QueryError::new(
                            vat,
                            format!(
                                "expected a number of series from 1 to {MAX_SERIES} after 'limit=', found '{v}'"
                            ),
                        ))
                    }
                };
            }
        }
        let Some(span_secs) = span else {
            return Err(self.expected("'span=' with a bucket width, like span=5m"));
        };
        let aggs = if matches!(self.peek(), Some(T::Word(w)) if !w.eq_ignore_ascii_case("by")) {
            self.aggs("timechart", false)?
        } else {
            vec![Agg {
                func: AggFn::Count,
                field: None,
                name: "count".into(),
            }]
        };
        let by = if self.at_word("by") {
            let by_at = self.here();
            self.i += 1;
            let (f, _) = self.field_name("a field name after 'by'")?;
            if aggs.len() > 1 {
                return Err(QueryError::new(
                    by_at,
                    "timechart with 'by' takes exactly one aggregation (each value of the field is a series)",
                ));
            }
            Some(f)
        } else {
            None
        };
        unique_columns(&[], &aggs, at)?;
        Ok(Pipe::Timechart(Timechart {
            span_secs,
            limit,
            aggs,
            by,
        }))
    }

    /// An optional count after `top`, `rare` or `head`.
    fn count_opt(&mut self, pipe: &str, default: u64, max: u64) -> Result<u64, QueryError> {
        let Some(T::Word(w)) = self.peek().cloned() else {
            return Ok(default);
        };
        if !w.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            return Ok(default);
        }
        let at = self.here();
        self.i += 1;
        match w.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(QueryError::new(
                at,
                format!("expected a count from 1 to {max} after '{pipe}', found '{w}'"),
            )),
        }
    }

    /// A field name; the flag says whether it was written with a leading `-`.
    fn field_name(&mut self, what: &str) -> Result<(String, bool), QueryError> {
        let at = self.here();
        match self.peek().cloned() {
            Some(T::Word(w)) => {
                let (name, neg) = match w.strip_prefix('-') {
                    Some(rest) => (rest.to_string(), true),
                    None => (w.strip_prefix('+').unwrap_or(&w).to_string(), false),
                };
                if name.is_empty() || name.starts_with('-') {
                    return Err(QueryError::new(at, format!("expected {what}, found '{w}'")));
                }
                self.i += 1;
                Ok((self.call_suffix(name), neg))
            }
            _ => Err(self.expected(what)),
        }
    }

    /// Completes a column named like an aggregation, `avg(bytes)`, so that
    /// pipes after a `stats` can refer to columns nobody renamed with `as`.
    fn call_suffix(&mut self, name: String) -> String {
        let next = |k: usize| self.tokens.get(self.i + k).map(|t| &t.t);
        match (next(0), next(1), next(2)) {
            // `count()` is the column `count`.
            (Some(T::LParen), Some(T::RParen), _) => {
                self.i += 2;
                name
            }
            (Some(T::LParen), Some(T::Word(f)), Some(T::RParen)) => {
                let s = format!("{name}({f})");
                self.i += 3;
                s
            }
            _ => name,
        }
    }

    /// `f1, f2, …` (at most `max`), none written with a leading `-`.
    fn fields(&mut self, after: &str, max: usize) -> Result<Vec<String>, QueryError> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let at = self.here();
            let (f, neg) = self.field_name(&format!("a field name {after}"))?;
            if neg {
                return Err(QueryError::new(
                    at,
                    format!("expected a field name {after}, found '-{f}'"),
                ));
            }
            if out.contains(&f) {
                return Err(QueryError::new(at, format!("field '{f}' is named twice")));
            }
            out.push(f);
            if out.len() > max {
                return Err(QueryError::new(
                    at,
                    format!("at most {max} fields may be named here"),
                ));
            }
            if !self.eat(&T::Comma) {
                return Ok(out);
            }
        }
    }

    fn aggs(&mut self, pipe: &str, required: bool) -> Result<Vec<Agg>, QueryError> {
        let mut out = Vec::new();
        if required
            && (self.peek().is_none() || self.at_word("by") || self.peek() == Some(&T::Pipe))
        {
            return Err(self.expected(&format!(
                "an aggregation after '{pipe}' (count(), dc(f), sum(f), avg(f), min(f), max(f), p50(f), p95(f))"
            )));
        }
        loop {
            out.push(self.agg()?);
            if out.len() > MAX_AGGS {
                return Err(QueryError::new(
                    self.here(),
                    format!("{pipe} takes at most {MAX_AGGS} aggregations"),
                ));
            }
            if !self.eat(&T::Comma) {
                return Ok(out);
            }
        }
    }

    fn agg(&mut self) -> Result<Agg, QueryError> {
        let at = self.here();
        let Some(T::Word(fname)) = self.peek().cloned() else {
            return Err(self.expected("an aggregation like count() or avg(field)"));
        };
        let func = agg_fn(&fname).ok_or_else(|| {
            QueryError::new(
                at,
                format!(
                    "unknown aggregation '{fname}': expected count, dc, sum, avg, min, max or a \
                     percentile p1 … p99"
                ),
            )
        })?;
        self.i += 1;
        if !self.eat(&T::LParen) {
            return Err(self.expected(&format!("'(' after '{fname}'")));
        }
        let field = if self.peek() == Some(&T::RParen) {
            None
        } else {
            Some(
                self.field_name(&format!("a field name inside '{fname}( … )'"))?
                    .0,
            )
        };
        if !self.eat(&T::RParen) {
            return Err(self.expected(&format!("')' to close '{fname}('")));
        }
        if field.is_none() && func != AggFn::Count {
            return Err(QueryError::new(
                at,
                format!("{fname}() needs a field, like {fname}(http.response.bytes)"),
            ));
        }
        let mut name = match &field {
            Some(f) => format!("{}({f})", func.name()),
            None => func.name(),
        };
        if self.at_word("as") {
            self.i += 1;
            name = self.field_name("a column name after 'as'")?.0;
        }
        Ok(Agg { func, field, name })
    }

    fn or(&mut self, depth: usize) -> Result<Cond, QueryError> {
        let mut items = vec![self.and(depth)?];
        while self.at_word("or") {
            self.i += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Cond, QueryError> {
        let mut items = vec![self.unary(depth)?];
        while self.at_word("and") {
            self.i += 1;
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Cond, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(QueryError::new(
                self.here(),
                format!("condition nests deeper than the limit of {MAX_DEPTH} levels"),
            ));
        }
        if self.at_word("not") {
            self.i += 1;
            return Ok(Cond::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&T::LParen) {
            let open = self.here();
            self.i += 1;
            let c = self.or(depth + 1)?;
            if !self.eat(&T::RParen) {
                return Err(self.expected(&format!("')' to close the '(' at byte {open}")));
            }
            return Ok(c);
        }
        let (field, _) = self.field_name("a comparison like count > 5")?;
        let Some(T::Op(op)) = self.peek().cloned() else {
            return Err(self.expected(&format!(
                "a comparison operator after '{field}' (=, !=, <, <=, >, >=)"
            )));
        };
        self.i += 1;
        let value = match self.peek().cloned() {
            Some(T::Str(s)) => Scalar::Text(s),
            Some(T::Word(w)) => match crate::ast::parse_number(&w) {
                Some(n) => Scalar::Number(n),
                None => Scalar::Text(w),
            },
            _ => {
                return Err(self.expected(&format!(
                    "a number or a \"quoted\" value after '{}'",
                    op.as_str()
                )))
            }
        };
        self.i += 1;
        Ok(Cond::Cmp { field, op, value })
    }
}

fn agg_fn(name: &str) -> Option<AggFn> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "count" => AggFn::Count,
        "dc" => AggFn::DistinctCount,
        "sum" => AggFn::Sum,
        "avg" => AggFn::Avg,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        p => {
            let digits = p.strip_prefix('p')?;
            if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            match digits.parse::<u8>() {
                Ok(n) if (1..=99).contains(&n) => AggFn::Percentile(n),
                _ => return None,
            }
        }
    })
}

/// `30s`, `5m`, `1h`, `1d` in seconds; at most 366 days.
pub(crate) fn parse_span(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(mult)?;
    (1..=366 * 86_400).contains(&secs).then_some(secs)
}

fn unique_columns(by: &[String], aggs: &[Agg], at: usize) -> Result<(), QueryError> {
    let mut seen: Vec<&str> = by.iter().map(String::as_str).collect();
    for a in aggs {
        if seen.contains(&a.name.as_str()) {
            return Err(QueryError::new(
                at,
                format!(
                    "column '{}' would appear twice; rename one with 'as', like {} as other_name",
                    a.name, a.name
                ),
            ));
        }
        seen.push(&a.name);
    }
    Ok(())
}
