//! The parsed form of the pipes after a filter: `| stats count() by user.name`.
//!
//! Like the filter's [`Expr`](crate::Expr) tree, these are plain public
//! types, so a planner can see, for instance, that a search ends in
//! `head 10` or only needs the fields named in a `stats`.

use std::fmt;

use crate::Query;

/// A whole search: the filter and the pipes after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The filter before the first `|` (match-all when empty).
    pub query: Query,
    /// The pipes, in order; empty for a plain filter.
    pub pipeline: Pipeline,
}

/// The pipes of a search, applied left to right.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    /// Each pipe with the byte offset of its `|`.
    pub pipes: Vec<Spanned<Pipe>>,
}

impl Pipeline {
    /// Whether there are no pipes (a plain filter search).
    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }
}

/// A value with the byte offset in the query where it was written, so
/// errors found after parsing can still point at the right place.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// Byte offset of the first character.
    pub at: usize,
    /// The value.
    pub node: T,
}

/// One pipe.
#[derive(Debug, Clone, PartialEq)]
pub enum Pipe {
    /// `stats count(), avg(f) as a by g1, g2`: one row per group.
    Stats(Stats),
    /// `timechart span=1m count() by f`: one row per time bucket.
    Timechart(Timechart),
    /// `top N f` / `rare N f`: the most / least frequent values with count and percent.
    Top(Top),
    /// `sort -f1, f2`: orders results; `-` means descending.
    Sort(Vec<SortKey>),
    /// `head N`: keeps the first N results.
    Head(u64),
    /// `fields f1, f2`: keeps only these fields (or columns).
    Fields(Vec<String>),
    /// `dedup f1, f2`: keeps the first result for each combination of values.
    Dedup(Vec<String>),
    /// `where count > 5 AND user.name != "root"`: keeps results satisfying the condition.
    Where(Cond),
}

impl Pipe {
    /// The pipe's command word, as written in a query.
    pub fn name(&self) -> &'static str {
        match self {
            Pipe::Stats(_) => "stats",
            Pipe::Timechart(_) => "timechart",
            Pipe::Top(t) if t.rare => "rare",
            Pipe::Top(_) => "top",
            Pipe::Sort(_) => "sort",
            Pipe::Head(_) => "head",
            Pipe::Fields(_) => "fields",
            Pipe::Dedup(_) => "dedup",
            Pipe::Where(_) => "where",
        }
    }
}

/// `stats AGG, AGG … [by FIELD, …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The aggregations, one output column each.
    pub aggs: Vec<Agg>,
    /// The grouping fields, one output column each (before the aggregations).
    pub by: Vec<String>,
}

/// `timechart span=D [limit=N] AGG … [by FIELD]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timechart {
    /// Bucket width in seconds; buckets are aligned to multiples of it since the Unix epoch (UTC).
    pub span_secs: i64,
    /// Most series shown; the rest are merged into `other`.
    pub limit: usize,
    /// The aggregations (one when `by` is given).
    pub aggs: Vec<Agg>,
    /// The field whose values become series.
    pub by: Option<String>,
}

/// `top N f1, f2` or `rare N f1, f2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    /// How many values to keep.
    pub limit: u64,
    /// The fields whose value combinations are counted.
    pub fields: Vec<String>,
    /// `rare`: the least frequent first.
    pub rare: bool,
}

/// An aggregation: `avg(http.response.bytes) as avg_bytes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    /// What is computed.
    pub func: AggFn,
    /// The field it reads; `None` only for `count()`.
    pub field: Option<String>,
    /// The output column: the `as` alias, else `count` for `count()` and the
    /// aggregation as written without spaces for the others (`avg(bytes)`).
    pub name: String,
}

/// An aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// `count()`: events; `count(f)`: events where `f` is present and not null.
    Count,
    /// `dc(f)`: distinct values.
    DistinctCount,
    /// `sum(f)`.
    Sum,
    /// `avg(f)`.
    Avg,
    /// `min(f)`: smallest number, or smallest text when no value is a number.
    Min,
    /// `max(f)`: largest number, or largest text when no value is a number.
    Max,
    /// `pNN(f)`: exact percentile, nearest rank (`p50`, `p95`, `p99`).
    Percentile(u8),
}

impl AggFn {
    /// The function's name as written (`count`, `p95`).
    pub fn name(self) -> String {
        match self {
            AggFn::Count => "count".into(),
            AggFn::DistinctCount => "dc".into(),
            AggFn::Sum => "sum".into(),
            AggFn::Avg => "avg".into(),
            AggFn::Min => "min".into(),
            AggFn::Max => "max".into(),
            AggFn::Percentile(p) => format!("p{p}"),
        }
    }
}

/// One key of a `sort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field or column.
    pub field: String,
    /// `-field`: largest first.
    pub descending: bool,
}

/// The condition of a `where`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Every child holds.
    And(Vec<Cond>),
    /// At least one child holds.
    Or(Vec<Cond>),
    /// The child does not hold.
    Not(Box<Cond>),
    /// `field OP value`.
    Cmp {
        /// The field or column on the left.
        field: String,
        /// The comparison.
        op: CmpOp,
        /// The literal on the right.
        value: Scalar,
    },
}

/// A comparison operator of a `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A literal on the right of a `where` comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A number (`5`, `-1.5`).
    Number(f64),
    /// Text (`"root"`, or a bare word that is not a number).
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(t) => write!(f, "{t:?}"),
        }
    }
}
