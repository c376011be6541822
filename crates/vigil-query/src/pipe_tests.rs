//! Pipes: parsing every pipe, every error message, and the executor's
//! answers on a small fixed dataset computed by hand.

use serde_json::{json, Value};
use vigil_event::Event;

use crate::*;

fn pipes(s: &str) -> Vec<Pipe> {
    match parse_search(s) {
        Ok(x) => x.pipeline.pipes.into_iter().map(|p| p.node).collect(),
        Err(e) => panic!("{s:?} failed to parse:\n{}", e.render(s)),
    }
}

fn one(s: &str) -> Pipe {
    let mut p = pipes(s);
    assert_eq!(p.len(), 1, "{s}");
    p.remove(0)
}

fn err(s: &str) -> String {
    match parse_search(s) {
        Ok(x) => panic!("{s:?} parsed to {x:?}"),
        Err(e) => e.render(s),
    }
}

fn agg(func: AggFn, field: Option<&str>, name: &str) -> Agg {
    Agg {
        func,
        field: field.map(str::to_string),
        name: name.into(),
    }
}

fn cmp(field: &str, op: CmpOp, value: Scalar) -> Cond {
    Cond::Cmp {
        field: field.into(),
        op,
        value,
    }
}

// ---- parsing ----------------------------------------------------------------

#[test]
fn filter_then_pipes() {
    let s = parse_search("user.name:root | head 5").unwrap();
    assert_eq!(s.query, parse("user.name:root").unwrap());
    assert_eq!(s.pipeline.pipes[0].at, 15);
    assert_eq!(s.pipeline.pipes[0].node, Pipe::Head(5));
    // An empty filter matches everything.
    let s = parse_search("| head").unwrap();
    assert!(s.query.is_match_all());
    assert_eq!(s.pipeline.pipes[0].node, Pipe::Head(10));
    // No pipes: a plain filter.
    assert!(parse_search("a OR b").unwrap().pipeline.is_empty());
    // A quoted or escaped bar belongs to the filter.
    let s = parse_search(r#"cmd:"a|b" x\|y"#).unwrap();
    assert!(s.pipeline.is_empty());
    assert_eq!(s.query, parse(r#"cmd:"a|b" x\|y"#).unwrap());
}

#[test]
fn plain_parse_refuses_pipes() {
    let e = parse("a | stats count()").unwrap_err();
    assert_eq!(e.position, 2);
    assert!(e.message.contains("only in search"), "{}", e.message);
}

#[test]
fn stats_forms() {
    assert_eq!(
        one("* | stats count()"),
        Pipe::Stats(Stats {
            aggs: vec![agg(AggFn::Count, None, "count")],
            by: vec![],
        })
    );
    assert_eq!(
        one("* | STATS count(user.name), dc(source.ip) AS ips, sum(b), avg(b), min(b), max(b), p50(b), p95(b) by host.name, user.name"),
        Pipe::Stats(Stats {
            aggs: vec![
                agg(AggFn::Count, Some("user.name"), "count(user.name)"),
                agg(AggFn::DistinctCount, Some("source.ip"), "ips"),
                agg(AggFn::Sum, Some("b"), "sum(b)"),
                agg(AggFn::Avg, Some("b"), "avg(b)"),
                agg(AggFn::Min, Some("b"), "min(b)"),
                agg(AggFn::Max, Some("b"), "max(b)"),
                agg(AggFn::Percentile(50), Some("b"), "p50(b)"),
                agg(AggFn::Percentile(95), Some("b"), "p95(b)"),
            ],
            by: vec!["host.name".into(), "user.name".into()],
        })
    );
}

#[test]
fn timechart_forms() {
    assert_eq!(
        one("* | timechart span=5m count() by host.name"),
        Pipe::Timechart(Timechart {
            span_secs: 300,
            limit: 10,
            aggs: vec![agg(AggFn::Count, None, "count")],
            by: Some("host.name".into()),
        })
    );
    assert_eq!(
        one("* | timechart limit=3 span=1d avg(b) as avg_b"),
        Pipe::Timechart(Timechart {
            span_secs: 86_400,
            limit: 3,
            aggs: vec![agg(AggFn::Avg, Some("b"), "avg_b")],
            by: None,
        })
    );
    // count() is the default aggregation.
    let Pipe::Timechart(tc) = one("* | timechart span=30s by user.name") else {
        panic!()
    };
    assert_eq!(tc.aggs, vec![agg(AggFn::Count, None, "count")]);
    assert_eq!(tc.span_secs, 30);
    let Pipe::Timechart(tc) = one("* | timechart span=2h") else {
        panic!()
    };
    assert_eq!((tc.span_secs, tc.by), (7200, None));
}

#[test]
fn other_pipes() {
    assert_eq!(
        one("* | top 3 user.name"),
        Pipe::Top(Top {
            limit: 3,
            fields: vec!["user.name".into()],
            rare: false
        })
    );
    assert_eq!(
        one("* | rare source.ip, user.name"),
        Pipe::Top(Top {
            limit: 10,
            fields: vec!["source.ip".into(), "user.name".into()],
            rare: true
        })
    );
    let key = |f: &str, descending| SortKey {
        field: f.into(),
        descending,
    };
    assert_eq!(
        one("* | sort -count, user.name, - b, +c"),
        Pipe::Sort(vec![
            key("count", true),
            key("user.name", false),
            key("b", true),
            key("c", false)
        ])
    );
    assert_eq!(
        pipes("* | stats avg(b) | sort -avg(b)")[1],
        Pipe::Sort(vec![key("avg(b)", true)])
    );
    assert_eq!(one("* | head 7"), Pipe::Head(7));
    assert_eq!(
        one("* | fields @timestamp, user.name"),
        Pipe::Fields(vec!["@timestamp".into(), "user.name".into()])
    );
    assert_eq!(
        one("* | dedup source.ip"),
        Pipe::Dedup(vec!["source.ip".into()])
    );
}

#[test]
fn where_conditions() {
    assert_eq!(
        one("* | where count > 5"),
        Pipe::Where(cmp("count", CmpOp::Gt, Scalar::Number(5.0)))
    );
    assert_eq!(
        one(r#"* | where a = "x y" OR b != root AND NOT (c <= -1.5 OR d >= 2) AND e < 3"#),
        Pipe::Where(Cond::Or(vec![
            cmp("a", CmpOp::Eq, Scalar::Text("x y".into())),
            Cond::And(vec![
                cmp("b", CmpOp::Ne, Scalar::Text("root".into())),
                Cond::Not(Box::new(Cond::Or(vec![
                    cmp("c", CmpOp::Le, Scalar::Number(-1.5)),
                    cmp("d", CmpOp::Ge, Scalar::Number(2.0)),
                ]))),
                cmp("e", CmpOp::Lt, Scalar::Number(3.0)),
            ]),
        ]))
    );
    // No spaces needed around operators.
    assert_eq!(
        one("* | where count>=2"),
        Pipe::Where(cmp("count", CmpOp::Ge, Scalar::Number(2.0)))
    );
}

#[test]
fn chains() {
    let p = pipes("x | stats count() by user.name | where count > 5 | sort -count | head 10");
    assert_eq!(p.len(), 4);
    assert!(matches!(p[0], Pipe::Stats(_)));
    assert_eq!(p[3], Pipe::Head(10));
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "a |",
            "a |\n   ^\nexpected a pipe after '|' (stats, timechart, top, rare, sort, head, fields, dedup or where), found the end of the query",
        ),
        (
            "a | grep x",
            "a | grep x\n    ^\nunknown pipe 'grep': expected stats, timechart, top, rare, sort, head, fields, dedup or where",
        ),
        (
            "a | stats",
            "a | stats\n         ^\nexpected an aggregation after 'stats' (count(), dc(f), sum(f), avg(f), min(f), max(f), p50(f), p95(f)), found the end of the query",
        ),
        (
            "a | stats count() by",
            "a | stats count() by\n                    ^\nexpected a field name after 'by', found the end of the query",
        ),
        (
            "a | stats median(x)",
            "a | stats median(x)\n          ^\nunknown aggregation 'median': expected count, dc, sum, avg, min, max or a percentile p1 … p99",
        ),
        (
            "a | stats p100(x)",
            "a | stats p100(x)\n          ^\nunknown aggregation 'p100': expected count, dc, sum, avg, min, max or a percentile p1 … p99",
        ),
        (
            "a | stats avg()",
            "a | stats avg()\n          ^\navg() needs a field, like avg(http.response.bytes)",
        ),
        (
            "a | stats count",
            "a | stats count\n               ^\nexpected '(' after 'count', found the end of the query",
        ),
        (
            "a | stats sum(x",
            "a | stats sum(x\n               ^\nexpected ')' to close 'sum(', found the end of the query",
        ),
        (
            "a | stats count() as",
            "a | stats count() as\n                    ^\nexpected a column name after 'as', found the end of the query",
        ),
        (
            "a | stats count(), count()",
            "a | stats count(), count()\n    ^\ncolumn 'count' would appear twice; rename one with 'as', like count as other_name",
        ),
        (
            "a | stats count() by x y",
            "a | stats count() by x y\n                       ^\nexpected '|' or the end of the query after the stats pipe, found 'y'",
        ),
        (
            "a | stats count() by x, x",
            "a | stats count() by x, x\n                        ^\nfield 'x' is named twice",
        ),
        (
            "a | timechart count()",
            "a | timechart count()\n              ^\nexpected 'span=' with a bucket width, like span=5m, found 'count'",
        ),
        (
            "a | timechart span=5w",
            "a | timechart span=5w\n                   ^\nexpected a span like 30s, 5m, 1h or 1d (at most 366d), found '5w'",
        ),
        (
            "a | timechart span=0s",
            "a | timechart span=0s\n                   ^\nexpected a span like 30s, 5m, 1h or 1d (at most 366d), found '0s'",
        ),
        (
            "a | timechart span=1m limit=0",
            "a | timechart span=1m limit=0\n                            ^\nexpected a number of series from 1 to 100 after 'limit=', found '0'",
        ),
        (
            "a | timechart span=1m count(), sum(b) by h",
            "a | timechart span=1m count(), sum(b) by h\n                                      ^\ntimechart with 'by' takes exactly one aggregation (each value of the field is a series)",
        ),
        (
            "a | top 0 x",
            "a | top 0 x\n        ^\nexpected a count from 1 to 10000 after 'top', found '0'",
        ),
        (
            "a | rare",
            "a | rare\n        ^\nexpected a field name after 'rare', found the end of the query",
        ),
        (
            "a | head -3",
            "a | head -3\n         ^\nexpected a count from 1 to 1000000 after 'head', found '-3'",
        ),
        (
            "a | head 5 6",
            "a | head 5 6\n           ^\nexpected '|' or the end of the query after the head pipe, found '6'",
        ),
        (
            "a | sort",
            "a | sort\n        ^\nexpected a field to sort by, like -count, found the end of the query",
        ),
        (
            "a | fields -x",
            "a | fields -x\n           ^\nexpected a field name after 'fields', found '-x'",
        ),
        (
            "a | dedup ,",
            "a | dedup ,\n          ^\nexpected a field name after 'dedup', found ','",
        ),
        (
            "a | where",
            "a | where\n         ^\nexpected a condition after 'where', like count > 5, found the end of the query",
        ),
        (
            "a | where count 5",
            "a | where count 5\n                ^\nexpected a comparison operator after 'count' (=, !=, <, <=, >, >=), found '5'",
        ),
        (
            "a | where count >",
            "a | where count >\n                 ^\nexpected a number or a \"quoted\" value after '>', found the end of the query",
        ),
        (
            "a | where (x = 1",
            "a | where (x = 1\n                ^\nexpected ')' to close the '(' at byte 10, found the end of the query",
        ),
        (
            "a | where x = \"open",
            "a | where x = \"open\n              ^\nthis quote is never closed: expected a closing '\"'",
        ),
        (
            "a | where x = 1;",
            "a | where x = 1;\n               ^\nunexpected character ';' in a pipe: expected a field name, a number, a \"quoted\" value, ',', '(', ')', '|' or a comparison",
        ),
        (
            "user.name: | head",
            "user.name: | head\n          ^\nexpected a value after ':' (a word, a \"quoted phrase\", *, a comparison like >10, or a group like (a OR b))",
        ),
        (
            "a AND | head",
            "a AND | head\n      ^\nexpected a term after 'AND', found '|'",
        ),
        (
            "* | stats count() by user.name | sort -bytes",
            "* | stats count() by user.name | sort -bytes\n                               ^\nsort: no column 'bytes' in the table before it; its columns are user.name, count",
        ),
        (
            "* | top user.name | where n > 1",
            "* | top user.name | where n > 1\n                  ^\nwhere: no column 'n' in the table before it; its columns are user.name, count, percent",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(&err(q), want, "query {q:?}");
    }
}

#[test]
fn limits() {
    let many = format!("*{}", " | head 1".repeat(MAX_PIPES + 1));
    assert!(err(&many).ends_with("a search may have at most 16 pipes"));
    let by: Vec<String> = (0..=MAX_BY_FIELDS).map(|i| format!("f{i}")).collect();
    let q = format!("* | stats count() by {}", by.join(", "));
    assert!(
        err(&q).ends_with("at most 8 fields may be named here"),
        "{}",
        err(&q)
    );
    let aggs: Vec<String> = (0..=MAX_AGGS).map(|i| format!("sum(f{i})")).collect();
    let q = format!("* | stats {}", aggs.join(", "));
    assert!(
        err(&q).ends_with("stats takes at most 16 aggregations"),
        "{}",
        err(&q)
    );
    let deep = format!("* | where {}x = 1", "NOT ".repeat(MAX_DEPTH + 1));
    assert!(err(&deep).contains("nests deeper"), "{}", err(&deep));
    // The whole search, filter and pipes, is held to the length limit.
    let long = format!("* | where x = \"{}\"", "a".repeat(MAX_QUERY_LEN));
    assert!(err(&long).contains("the limit is 4096 bytes"));
}

// ---- execution on a fixed dataset --------------------------------------------

/// Eight events, oldest first. Bytes, where present: 100, 300, "200", 50,
/// 400, 150, 550 (sum 1750, avg 250, sorted 50 100 150 200 300 400 550).
fn dataset() -> Vec<Event> {
    let rows = [
        json!({"@timestamp": "2026-03-01T10:00:05Z", "user": {"name": "root"}, "source": {"ip": "10.0.0.1"}, "bytes": 100, "event": {"outcome": "failure"}, "host": {"name": "a"}}),
        json!({"@timestamp": "2026-03-01T10:00:40Z", "user": {"name": "root"}, "source": {"ip": "10.0.0.2"}, "bytes": 300, "event": {"outcome": "failure"}, "host": {"name": "a"}}),
        json!({"@timestamp": "2026-03-01T10:01:10Z", "user": {"name": "alice"}, "source": {"ip": "10.0.0.1"}, "bytes": "200", "event": {"outcome": "success"}, "host": {"name": "b"}}),
        json!({"@timestamp": "2026-03-01T10:01:20Z", "user": {"name": "root"}, "source": {"ip": "10.0.0.3"}, "bytes": 50, "event": {"outcome": "failure"}, "host": {"name": "b"}}),
        json!({"@timestamp": "2026-03-01T10:02:00Z", "user": {"name": "bob"}, "source": {"ip": "10.0.0.1"}, "bytes": 400, "event": {"outcome": "success"}, "host": {"name": "a"}}),
        json!({"@timestamp": "2026-03-01T10:03:30Z", "user": {"name": "alice"}, "source": {"ip": "10.0.0.4"}, "event": {"outcome": "failure"}, "host": {"name": "c"}}),
        json!({"@timestamp": "2026-03-01T10:03:59Z", "user": {"name": "root"}, "source": {"ip": "10.0.0.1"}, "bytes": 150, "event": {"outcome": "success", "category": ["authentication", "session"]}, "host": {"name": "a"}}),
        json!({"@timestamp": "2026-03-01T10:05:00Z", "source": {"ip": "10.0.0.2"}, "bytes": 550, "host": {"name": "a"}}),
    ];
    rows.into_iter()
        .map(|r| Event::from_json(r, 16).unwrap())
        .collect()
}

fn run(q: &str) -> PipeOutput {
    let s = parse_search(q).unwrap_or_else(|e| panic!("{}", e.render(q)));
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    for ev in dataset() {
        if s.query.matches(&ev) {
            ex.push(&ev);
        }
    }
    ex.finish()
}

fn table(q: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let out = run(q);
    assert!(
        out.partial_reason.is_none(),
        "{q}: {:?}",
        out.partial_reason
    );
    let t = out.table.unwrap_or_else(|| panic!("{q} gave no table"));
    (t.columns, t.rows)
}

fn users(out: &PipeOutput) -> Vec<Value> {
    out.hits
        .iter()
        .map(|e| e.get("user.name").cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn stats_all_aggregations() {
    let (cols, rows) = table(
        "* | stats count(), count(user.name), dc(source.ip), sum(bytes), avg(bytes), min(bytes), max(bytes), p50(bytes), p95(bytes)",
    );
    assert_eq!(
        cols,
        [
            "count",
            "count(user.name)",
            "dc(source.ip)",
            "sum(bytes)",
            "avg(bytes)",
            "min(bytes)",
            "max(bytes)",
            "p50(bytes)",
            "p95(bytes)"
        ]
    );
    assert_eq!(
        rows,
        [[
            json!(8),
            json!(7),
            json!(4),
            json!(1750),
            json!(250),
            json!(50),
            json!(550),
            json!(200),
            json!(550)
        ]]
    );
}

#[test]
fn stats_by_groups_sorted_by_value() {
    let (cols, rows) =
        table("* | stats count() as n, sum(bytes) as total, avg(bytes) by user.name");
    assert_eq!(cols, ["user.name", "n", "total", "avg(bytes)"]);
    assert_eq!(
        rows,
        [
            vec![json!("alice"), json!(2), json!(200), json!(200)],
            vec![json!("bob"), json!(1), json!(400), json!(400)],
            vec![json!("root"), json!(4), json!(600), json!(150)],
        ],
        "the event without user.name is in no group"
    );
    let (_, rows) = table("* | stats count() by host.name, event.outcome");
    assert_eq!(
        rows,
        [
            vec![json!("a"), json!("failure"), json!(2)],
            vec![json!("a"), json!("success"), json!(2)],
            vec![json!("b"), json!("failure"), json!(1)],
            vec![json!("b"), json!("success"), json!(1)],
            vec![json!("c"), json!("failure"), json!(1)],
        ]
    );
    // An array field groups the event under each element.
    let (_, rows) = table("* | stats count() by event.category");
    assert_eq!(
        rows,
        [
            [json!("authentication"), json!(1)],
            [json!("session"), json!(1)]
        ]
    );
    // min/max of text when no value is a number.
    let (_, rows) = table("* | stats min(user.name), max(user.name)");
    assert_eq!(rows, [[json!("alice"), json!("root")]]);
}

#[test]
fn stats_over_nothing() {
    let (_, rows) = table("nosuchword | stats count(), sum(bytes)");
    assert_eq!(rows, [[json!(0), Value::Null]]);
    let (_, rows) = table("nosuchword | stats count() by user.name");
    assert!(rows.is_empty());
}

#[test]
fn stats_where_sort_head() {
    let (_, rows) = table("* | stats count() by user.name | where count > 1 | sort -count");
    assert_eq!(
        rows,
        [[json!("root"), json!(4)], [json!("alice"), json!(2)]]
    );
    let (_, rows) = table("* | stats count() by user.name | sort count, -user.name | head 2");
    assert_eq!(rows, [[json!("bob"), json!(1)], [json!("alice"), json!(2)]]);
    let (_, rows) = table(
        r#"* | stats avg(bytes) by user.name | where avg(bytes) >= 200 AND user.name != "BOB""#,
    );
    assert_eq!(rows, [[json!("alice"), json!(200)]]);
    // Table pipes that usually take events work on rows.
    let (cols, rows) =
        table("* | stats count() by host.name, event.outcome | dedup host.name | fields host.name");
    assert_eq!(cols, ["host.name"]);
    assert_eq!(rows, [[json!("a")], [json!("b")], [json!("c")]]);
}

#[test]
fn top_and_rare() {
    let (cols, rows) = table("* | top 2 user.name");
    assert_eq!(cols, ["user.name", "count", "percent"]);
    // Percent of all 8 events that reached the pipe.
    assert_eq!(
        rows,
        [
            [json!("root"), json!(4), json!(50)],
            [json!("alice"), json!(2), json!(25)]
        ]
    );
    let (_, rows) = table("* | rare 1 user.name");
    assert_eq!(rows, [[json!("bob"), json!(1), json!(12.5)]]);
    let (_, rows) = table("event.outcome:failure | top source.ip");
    assert_eq!(
        rows,
        [
            [json!("10.0.0.1"), json!(1), json!(25)],
            [json!("10.0.0.2"), json!(1), json!(25)],
            [json!("10.0.0.3"), json!(1), json!(25)],
            [json!("10.0.0.4"), json!(1), json!(25)],
        ]
    );
}

#[test]
fn timechart_counts_per_minute() {
    let out = run("* | timechart span=1m count()");
    let t = out.table.unwrap();
    assert_eq!(t.columns, ["_time", "count"]);
    let minute = |m: u32, n: u64| vec![json!(format!("2026-03-01T10:0{m}:00Z")), json!(n)];
    assert_eq!(
        t.rows,
        [
            minute(0, 2),
            minute(1, 2),
            minute(2, 1),
            minute(3, 2),
            minute(4, 0),
            minute(5, 1)
        ],
        "empty minutes between the first and last are filled"
    );
    let b = out.buckets.unwrap();
    assert_eq!(b.len(), 6);
    assert_eq!(b[3].time, "2026-03-01T10:03:00Z");
    assert_eq!(b[3].values["count"], 2);
}

#[test]
fn timechart_series_and_other() {
    let (cols, rows) = table("* | timechart span=1m limit=1 count() by host.name");
    assert_eq!(cols, ["_time", "a", "other"]);
    let row =
        |m: u32, a: u64, o: u64| vec![json!(format!("2026-03-01T10:0{m}:00Z")), json!(a), json!(o)];
    assert_eq!(
        rows,
        [
            row(0, 2, 0),
            row(1, 0, 2),
            row(2, 1, 0),
            row(3, 1, 1),
            row(4, 0, 0),
            row(5, 1, 0)
        ]
    );
    // Other aggregations merge exactly into `other`; empty cells are null.
    let (cols, rows) = table("* | timechart span=5m limit=1 max(bytes) by host.name");
    assert_eq!(cols, ["_time", "a", "other"]);
    assert_eq!(
        rows,
        [
            vec![json!("2026-03-01T10:00:00Z"), json!(400), json!(200)],
            vec![json!("2026-03-01T10:05:00Z"), json!(550), Value::Null],
        ]
    );
    let (_, rows) = table("* | timechart span=1h dc(user.name), sum(bytes)");
    assert_eq!(
        rows,
        [[json!("2026-03-01T10:00:00Z"), json!(3), json!(1750)]]
    );
}

#[test]
fn event_pipes() {
    let out = run("* | where bytes >= 200");
    assert_eq!(out.hits.len(), 4, "300, \"200\", 400 and 550");
    let out = run(r#"* | where user.name = "ROOT""#);
    assert_eq!(out.hits.len(), 4);
    // A missing field fails a comparison; NOT of that holds.
    assert_eq!(run("* | where user.name != root").hits.len(), 3);
    assert_eq!(run("* | where NOT user.name = root").hits.len(), 4);
    let out = run("* | dedup source.ip");
    assert_eq!(
        out.hits
            .iter()
            .map(|e| e.get("source.ip").cloned().unwrap())
            .collect::<Vec<_>>(),
        [
            json!("10.0.0.1"),
            json!("10.0.0.2"),
            json!("10.0.0.3"),
            json!("10.0.0.4")
        ]
    );
    let out = run("* | sort -bytes | head 2 | fields user.name, bytes");
    assert_eq!(out.hits.len(), 2);
    assert_eq!(out.hits[0].to_json(), json!({"bytes": 550}));
    assert_eq!(
        out.hits[1].to_json(),
        json!({"user": {"name": "bob"}, "bytes": 400})
    );
    let out = run("* | sort user.name, -@timestamp");
    assert_eq!(
        users(&out),
        [
            json!("alice"),
            json!("alice"),
            json!("bob"),
            json!("root"),
            json!("root"),
            json!("root"),
            json!("root"),
            Value::Null
        ]
    );
    assert_eq!(
        out.hits[0].get_str("@timestamp"),
        Some("2026-03-01T10:03:30Z")
    );
}

#[test]
fn head_ends_the_scan() {
    let s = parse_search("* | where bytes > 100 | head 2").unwrap();
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    let mut pushed = 0;
    for ev in dataset() {
        if ex.done() {
            break;
        }
        ex.push(&ev);
        pushed += 1;
    }
    assert_eq!(pushed, 3, "300 and \"200\" are the second and third events");
    assert_eq!(ex.finish().hits.len(), 2);
    // After a blocking pipe, head cannot end the scan.
    let s = parse_search("* | sort bytes | head 1").unwrap();
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    for ev in dataset() {
        ex.push(&ev);
        assert!(!ex.done());
    }
    assert_eq!(ex.finish().hits[0].get("bytes"), Some(&json!(50)));
}

#[test]
fn sort_then_head_is_exact_beyond_the_sort_cap() {
    let s = parse_search("* | sort -n | head 3").unwrap();
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    // More records than a plain sort may hold, largest in the middle, with a tie.
    let total = MAX_SORT + 500;
    for i in 0..total {
        let n = if i == total / 2 { 1_000_000 } else { i % 5000 };
        ex.push(&Event::from_json(json!({"n": n, "i": i}), 4).unwrap());
    }
    let out = ex.finish();
    assert!(out.partial_reason.is_none(), "{:?}", out.partial_reason);
    let got: Vec<(Value, Value)> = out
        .hits
        .iter()
        .map(|e| (e.get("n").cloned().unwrap(), e.get("i").cloned().unwrap()))
        .collect();
    // 4999 occurs at i = 4999 and 9999; the earlier comes first.
    assert_eq!(
        got,
        [
            (json!(1_000_000), json!(total / 2)),
            (json!(4999), json!(4999)),
            (json!(4999), json!(9999))
        ]
    );
    // Without the head, the sort cap applies and says so.
    let s = parse_search("* | sort -n").unwrap();
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    for i in 0..total {
        ex.push(&Event::from_json(json!({"n": i}), 4).unwrap());
    }
    let why = ex.finish().partial_reason.unwrap();
    assert!(why.contains("sort holds at most 10000 results"), "{why}");
}

#[test]
fn the_hit_limit_caps_events() {
    let s = parse_search("* | where bytes > 0").unwrap();
    let mut ex = Executor::new(&s.pipeline, 3).unwrap();
    for ev in dataset() {
        ex.push(&ev);
    }
    let out = ex.finish();
    assert_eq!(out.hits.len(), 3);
    assert!(out.partial_reason.is_none());
}

#[test]
fn group_cap_makes_the_result_partial() {
    let s = parse_search("* | stats count() by n").unwrap();
    let mut ex = Executor::new(&s.pipeline, 100).unwrap();
    for n in 0..(MAX_GROUPS + 5) {
        ex.push(&Event::from_json(json!({"n": n}), 4).unwrap());
    }
    let out = ex.finish();
    assert_eq!(out.table.unwrap().rows.len(), MAX_GROUPS);
    let why = out.partial_reason.unwrap();
    assert!(why.contains("more than 100000 groups"), "{why}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    #[test]
    fn pipes_never_panic(
        s in "(\\| |stats |timechart |span=1m |limit=2 |top |rare |sort |head |fields |dedup |where |by |as |count\\(\\)|avg\\(bytes\\)|p95\\(bytes\\)|dc\\(user.name\\)|user.name|bytes|count|-|, |[<>=!]=? |AND |OR |NOT |\\(|\\)|\"x\"|[0-9]{1,3} |é){0,24}"
    ) {
        match parse_search(&s) {
            Ok(search) => {
                let mut ex = Executor::new(&search.pipeline, 5).unwrap();
                for ev in dataset() {
                    if ex.done() {
                        break;
                    }
                    ex.push(&ev);
                }
                let out = ex.finish();
                if let Some(t) = out.table {
                    proptest::prop_assert!(t.rows.iter().all(|r| r.len() == t.columns.len()));
                }
                proptest::prop_assert!(out.hits.len() <= 5);
            }
            Err(e) => {
                proptest::prop_assert!(e.position <= s.len());
                let _ = e.render(&s);
            }
        }
    }
}
