//! Vigil's query language: the text an analyst types into `vigil search`,
//! `vigil tail` and `GET /api/v1/search?q=`.
//!
//! [`parse`] turns the text into a [`Query`], whose [`Expr`] tree has
//! [`Term`]s at its leaves; [`Query::matches`] then decides, event by event,
//! whether an [`Event`](vigil_event::Event) read back from the ledger belongs in
//! the result. In the data flow this is the *query engine* box: CLI/API/UI →
//! query engine → ledger. Today the executor scans events; a planner will later
//! read field/value terms straight from the public AST to drive an index, so
//! the tree is kept plain and inspectable. [`parse_time`] reads the
//! `--since`/`--until` forms (`15m`, `2024-03-01`).
//!
//! ```
//! use serde_json::json;
//! use vigil_event::Event;
//!
//! let q = vigil_query::parse(r#"event.outcome:failure AND source.ip:203.0.113.0/24 -user.name:svc_*"#)?;
//! let ev = Event::from_json(json!({
//!     "event": {"outcome": "FAILURE", "category": ["authentication"]},
//!     "source": {"ip": "203.0.113.9", "port": 22},
//!     "user": {"name": "root"},
//! }), 32).unwrap();
//! assert!(q.matches(&ev));
//! assert!(vigil_query::parse("source.port:>=1024")?.matches(&ev) == false);
//!
//! let err = vigil_query::parse("source.ip:").unwrap_err();
//! assert_eq!(err.render("source.ip:"), "source.ip:\n          ^\nexpected a value after ':' \
//!     (a word, a \"quoted phrase\", *, a comparison like >10, or a group like (a OR b))");
//! # Ok::<(), vigil_query::QueryError>(())
//! ```
//!
//! # Syntax
//!
//! | form | example | matches events where |
//! |---|---|---|
//! | `field:value` | `user.name:root` | the field's whole value equals `root`, ignoring case |
//! | `field:"phrase"` | `user.full_name:"Jane Doe"` | the whole value equals the phrase; `\"` and `\\` are escapes |
//! | `field:*` | `user.name:*` | the field is present and not null |
//! | wildcards | `user.name:adm?n*` | `*` = any run of characters, `?` = one character; `\*` is a literal star |
//! | field group | `user.name:(root OR admin OR "svc backup")` | the field satisfies the group (may use AND, OR, NOT, parentheses, ranges) |
//! | range | `source.port:>=1024`, `http.response.bytes:<500` | `>`, `>=`, `<`, `<=` with a number … |
//! | time range | `@timestamp:>=2024-03-01T00:00:00Z`, `@timestamp:<2024-03-02` | … or with a date / RFC 3339 time |
//! | network | `source.ip:10.0.0.0/8`, `source.ip:2001:db8::/32` | the field holds an IP address inside the network |
//! | free text | `sshd`, `"Failed password"` | the text occurs inside any string value (also numbers), ignoring case |
//! | free-text wildcard | `fail*ssword` | the pattern occurs inside any string value |
//! | `AND` | `a AND b`, or just `a b` | both match (adjacent terms are ANDed) |
//! | `OR` | `a OR b` | either matches |
//! | `NOT`, `-` | `NOT user.name:root`, `-user.name:root` | the term does not match |
//! | parentheses | `(a OR b) AND c` | grouping |
//! | match all | `*`, or the empty query | every event |
//!
//! Precedence is `NOT` > `AND` > `OR`: `a OR b c` means `a OR (b AND c)`.
//! Keywords are case-sensitive: `AND`, `OR` and `NOT` only in capitals;
//! lowercase `and`, `or` and `not` are ordinary free-text words.
//!
//! Details an analyst may trip over:
//!
//! - Field names are `[A-Za-z0-9_@.-]+` and use ECS dotted paths (`source.ip`).
//!   Nested objects, dotted keys and arrays of objects are all followed.
//! - The value must follow the `:` directly: `user.name: root` is an error.
//! - Comparison is case-insensitive for text; `field:value` compares the whole
//!   value, not a substring (use `*value*` for that).
//! - Numbers match across storage types: `source.port:22` matches `22` and `"22"`.
//!   `true`/`false` match booleans. IP addresses compare as addresses, so
//!   `2001:DB8::1` matches `2001:db8:0:0::1`.
//! - A field holding an array matches when any element matches.
//! - Quoted values are literal: no wildcards, no network (`"10.0.0.0/8"` is text).
//! - In a bare word, `\` before one of `* ? \ " ( ) : < > - |` or a space makes it
//!   literal; before anything else it is kept, so `C:\Windows` needs no doubling
//!   (but `C:\\Windows\\*.exe` for a backslash followed by a wildcard).
//!   A colon in free text needs quoting or escaping: `"10:32:01"`, `a\:b`.
//!   After `field:` colons are part of the value: `source.ip:fe80::1`.
//! - `-` starts a negation only where a term starts; `field:-5` is the value `-5`.
//! - Limits: [`MAX_QUERY_LEN`] bytes, [`MAX_DEPTH`] levels of nesting
//!   (parentheses and negations), [`MAX_TERMS`] terms.
//!
//! # Pipes
//!
//! [`parse_search`] reads a filter followed by pipes into a [`Search`]:
//! `event.outcome:failure | stats count() by user.name | sort -count | head 10`.
//! The first unquoted, unescaped `|` ends the filter ([`parse`] refuses it).
//! The pipes are `stats`, `timechart`, `top`, `rare`, `sort`, `head`,
//! `fields`, `dedup` and `where` ([`Pipe`]); an [`Executor`] runs them over
//! events pushed one at a time, with memory bounded by [`MAX_GROUPS`],
//! [`MAX_STORED_VALUES`], [`MAX_SORT`] and [`MAX_DEDUP`], and
//! [`exec::run`] drives it from a ledger scan. `docs/QUERY.md` describes
//! every pipe with examples.
//!
//! # Scans, exports and partial decoding
//!
//! [`exec`] reads the ledger: bounded by a deadline, an event budget and a
//! [`exec::Cancel`] flag, each of which ends the scan early with a
//! `partial_reason`. A search ending in an aggregation decodes only the
//! fields it reads ([`extract::Fields`]), skipping the rest of each stored
//! event's bytes. [`exec::stream`] hands matches one by one to an export,
//! which [`export::ExportWriter`] formats as NDJSON or CSV.

mod aggregate;
mod ast;
mod error;
pub mod exec;
mod executor;
pub mod export;
pub mod extract;
mod glob;
mod lexer;
mod matcher;
mod parser;
mod pipe_parser;
mod pipeline;
pub mod rawfilter;
mod time;
mod values;

pub use ast::{Cidr, Expr, Literal, Predicate, Query, RangeOp, RangeValue, Term, TextPattern};
pub use error::QueryError;
pub use executor::{Bucket, Executor, PipeOutput, Table};
pub use glob::{Glob, GlobToken};
pub use parser::parse;
pub use pipe_parser::parse_search;
pub use pipeline::{
    Agg, AggFn, CmpOp, Cond, Pipe, Pipeline, Scalar, Search, SortKey, Spanned, Stats, Timechart,
    Top,
};
pub use time::{parse_absolute, parse_time, TimeError};

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// Deepest nesting of parentheses, field groups and negations accepted.
pub const MAX_DEPTH: usize = 64;
/// Most terms (field conditions and free-text words) in one query.
pub const MAX_TERMS: usize = 256;
/// Most pipes after the filter.
pub const MAX_PIPES: usize = 16;
/// Most fields after `by`, `top`, `rare`, `dedup` or in a `sort`.
pub const MAX_BY_FIELDS: usize = 8;
/// Most aggregations in one `stats` or `timechart`.
pub const MAX_AGGS: usize = 16;
/// Most groups a `stats` or `top` keeps, and most (bucket, series) cells a
/// `timechart` keeps; further groups are left out and the result is
/// flagged partial.
pub const MAX_GROUPS: usize = 100_000;
/// Most values kept, over all groups, by `dc()` and percentile aggregations.
pub const MAX_STORED_VALUES: usize = 1_000_000;
/// Most results a `sort` holds (a `sort` directly followed by `head N`
/// holds only about 2·N, so it has no such limit).
pub const MAX_SORT: usize = 10_000;
/// Most distinct keys a `dedup` remembers.
pub const MAX_DEDUP: usize = 100_000;
/// Largest `head N`.
pub const MAX_HEAD: u64 = 1_000_000;
/// Largest `top N` / `rare N`.
pub const MAX_TOP: u64 = 10_000;
/// Most series a `timechart limit=N` shows before the rest go to `other`.
pub const MAX_SERIES: usize = 100;
/// Most time buckets a `timechart` fills in between its first and last
/// bucket; beyond that only buckets holding events are returned.
pub const MAX_BUCKETS: usize = 10_000;

#[cfg(test)]
mod pipe_tests;
#[cfg(test)]
mod tests;
