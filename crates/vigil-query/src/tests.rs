//! Whole-language tests: syntax → AST, matching against events, errors.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;
use vigil_event::Event;

use crate::*;

fn q(s: &str) -> Expr {
    match parse(s) {
        Ok(q) => q.root,
        Err(e) => panic!("{s:?} failed to parse:\n{}", e.render(s)),
    }
}

fn field(f: &str, pred: Predicate) -> Expr {
    Expr::Term(Term::Field {
        field: f.into(),
        pred,
    })
}

fn eq(f: &str, v: &str) -> Expr {
    field(f, Predicate::Eq(TextPattern::literal(v)))
}

fn text(v: &str) -> Expr {
    Expr::Term(Term::FreeText(TextPattern::literal(v)))
}

fn glob(tokens: &[&str]) -> TextPattern {
    TextPattern::Wildcard(Glob::new(tokens.iter().map(|t| match *t {
        "*" => GlobToken::AnySeq,
        "?" => GlobToken::AnyChar,
        s => GlobToken::Literal(s.into()),
    })))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn err(s: &str) -> QueryError {
    match parse(s) {
        Ok(q) => panic!("{s:?} parsed to {q:?}"),
        Err(e) => e,
    }
}

// ---- syntax → AST ----------------------------------------------------------

#[test]
fn field_values() {
    assert_eq!(q("user.name:root"), eq("user.name", "root"));
    assert_eq!(
        q("user.name:ROOT"),
        eq("user.name", "root"),
        "values are lowercased"
    );
    assert_eq!(
        q(r#"user.full_name:"Jane Doe""#),
        eq("user.full_name", "Jane Doe")
    );
    assert_eq!(q(r#"m:"say \"hi\" \\ now""#), eq("m", r#"say "hi" \ now"#));
    assert_eq!(q("@timestamp:x"), eq("@timestamp", "x"));
    assert_eq!(q("a_b-c.d@e:1"), eq("a_b-c.d@e", "1"));
    assert_eq!(q(r"p:C:\Windows\cmd.exe"), eq("p", r"C:\Windows\cmd.exe"));
    assert_eq!(q("n:-5"), eq("n", "-5"));
    assert_eq!(q("f:AND"), eq("f", "and"), "keywords are values after ':'");
    assert_eq!(q(r#"f:"""#), eq("f", ""));
}

#[test]
fn exists_and_wildcards() {
    assert_eq!(q("user.name:*"), field("user.name", Predicate::Exists));
    assert_eq!(
        q("user.name:adm?n*"),
        field("user.name", Predicate::Eq(glob(&["adm", "?", "n", "*"])))
    );
    assert_eq!(q(r"f:a\*b"), eq("f", "a*b"), "escaped star is literal");
    assert_eq!(q(r#"f:"a*b""#), eq("f", "a*b"), "quoted star is literal");
    assert_eq!(q(r"f:\*"), eq("f", "*"));
    assert_eq!(q("f:**"), field("f", Predicate::Eq(glob(&["*"]))));
}

#[test]
fn free_text() {
    assert_eq!(q("sshd"), text("sshd"));
    assert_eq!(q(r#""Failed password""#), text("failed password"));
    assert_eq!(
        q("fail*ord"),
        Expr::Term(Term::FreeText(glob(&["fail", "*", "ord"])))
    );
    assert_eq!(q("and"), text("and"), "lowercase keywords are words");
    assert_eq!(
        q("a or b"),
        Expr::And(vec![text("a"), text("or"), text("b")])
    );
    assert_eq!(q(r"10\:32"), text("10:32"));
    assert_eq!(q(r#""10:32""#), text("10:32"));
}

#[test]
fn field_groups() {
    assert_eq!(
        q(r#"user.name:(a OR b OR "c d")"#),
        Expr::Or(vec![
            eq("user.name", "a"),
            eq("user.name", "b"),
            eq("user.name", "c d")
        ])
    );
    assert_eq!(
        q("n:(>1 AND <5)"),
        Expr::And(vec![
            field(
                "n",
                Predicate::Range {
                    op: RangeOp::Gt,
                    value: RangeValue::Number(1.0)
                }
            ),
            field(
                "n",
                Predicate::Range {
                    op: RangeOp::Lt,
                    value: RangeValue::Number(5.0)
                }
            ),
        ])
    );
    assert_eq!(
        q("f:(a (b OR NOT c))"),
        Expr::And(vec![
            eq("f", "a"),
            Expr::Or(vec![eq("f", "b"), not(eq("f", "c"))])
        ])
    );
    assert_eq!(
        q("ip:(::1 OR 10.0.0.0/8) x:y"),
        Expr::And(vec![
            Expr::Or(vec![
                eq("ip", "::1"),
                field(
                    "ip",
                    Predicate::Cidr(Cidr {
                        addr: "10.0.0.0".parse().unwrap(),
                        prefix: 8
                    })
                ),
            ]),
            eq("x", "y"),
        ])
    );
    assert_eq!(q("f:(*)"), field("f", Predicate::Exists));
}

#[test]
fn ranges() {
    let r = |op, value| field("n", Predicate::Range { op, value });
    assert_eq!(q("n:>10"), r(RangeOp::Gt, RangeValue::Number(10.0)));
    assert_eq!(q("n:>=10"), r(RangeOp::Ge, RangeValue::Number(10.0)));
    assert_eq!(q("n:<-1.5"), r(RangeOp::Lt, RangeValue::Number(-1.5)));
    assert_eq!(q("n:<=0"), r(RangeOp::Le, RangeValue::Number(0.0)));
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    assert_eq!(
        q("n:>=2024-03-01T00:00:00Z"),
        r(RangeOp::Ge, RangeValue::Time(t))
    );
    assert_eq!(q("n:>=2024-03-01"), r(RangeOp::Ge, RangeValue::Time(t)));
    assert_eq!(
        q(r#"n:>="2024-03-01 00:00:00""#),
        r(RangeOp::Ge, RangeValue::Time(t))
    );
}

#[test]
fn networks() {
    let net = |a: &str, p| {
        field(
            "source.ip",
            Predicate::Cidr(Cidr {
                addr: a.parse().unwrap(),
                prefix: p,
            }),
        )
    };
    assert_eq!(q("source.ip:10.0.0.0/8"), net("10.0.0.0", 8));
    assert_eq!(q("source.ip:2001:db8::/32"), net("2001:db8::", 32));
    assert_eq!(q("source.ip:::/0"), net("::", 0));
    assert_eq!(q("url.path:/api/v1"), eq("url.path", "/api/v1"));
    assert_eq!(
        q(r#"source.ip:"10.0.0.0/8""#),
        eq("source.ip", "10.0.0.0/8")
    );
    assert_eq!(q("source.ip:10.0.0.1"), eq("source.ip", "10.0.0.1"));
}

#[test]
fn boolean_structure_and_precedence() {
    let (a, b, c) = (text("a"), text("b"), text("c"));
    assert_eq!(q("a AND b"), Expr::And(vec![a.clone(), b.clone()]));
    assert_eq!(q("a b"), Expr::And(vec![a.clone(), b.clone()]));
    assert_eq!(q("a OR b"), Expr::Or(vec![a.clone(), b.clone()]));
    assert_eq!(
        q("a OR b c"),
        Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])])
    );
    assert_eq!(q("a OR b AND c"), q("a OR (b AND c)"));
    assert_eq!(
        q("(a OR b) c"),
        Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(q("NOT a b"), Expr::And(vec![not(a.clone()), b.clone()]));
    assert_eq!(q("-a OR b"), Expr::Or(vec![not(a.clone()), b.clone()]));
    assert_eq!(q("NOT NOT a"), not(not(a.clone())));
    assert_eq!(q("-(a OR b)"), not(Expr::Or(vec![a.clone(), b.clone()])));
    assert_eq!(q("-user.name:root"), not(eq("user.name", "root")));
    assert_eq!(
        q("a AND (b AND c)"),
        Expr::And(vec![a.clone(), b.clone(), c.clone()]),
        "flattened"
    );
    assert_eq!(q("((a))"), a.clone());
    assert_eq!(q("  a\t\nb "), Expr::And(vec![a, b]));
}

#[test]
fn match_all() {
    for s in ["", "   ", "*", "(*)", "* *", "a OR *"] {
        assert!(parse(s).unwrap().is_match_all(), "{s:?}");
    }
    assert_eq!(q("a AND *"), text("a"));
    assert_eq!(q("NOT *"), not(Expr::All));
    assert!(!parse("a").unwrap().is_match_all());
}

#[test]
fn display_round_trips() {
    for s in [
        r#"user.name:(root OR "a \"b\"") -sshd @timestamp:>=2024-03-01T00:00:00Z"#,
        r"f:a\*b* source.ip:10.0.0.0/8 n:<=5.5 x:* NOT (a OR b)",
        r"f:a\ b?\(\)\:",
    ] {
        let first = parse(s).unwrap();
        let shown = first.to_string();
        assert_eq!(parse(&shown).unwrap(), first, "{s:?} → {shown:?}");
    }
}

// ---- matching ---------------------------------------------------------------

fn ssh_event() -> Event {
    Event::from_json(
        json!({
            "@timestamp": "2024-03-01T10:15:00Z",
            "message": "Failed password for invalid user admin from 203.0.113.9 port 52211 ssh2",
            "event": {
                "category": ["authentication", "session"],
                "outcome": "failure",
                "code": 4625,
                "original": "<38>Mar  1 10:15:00 host sshd[1234]: Failed password …",
            },
            "source": {"ip": "203.0.113.9", "port": 52211},
            "destination": {"ip": "2001:db8::10", "port": "22"},
            "user": {"name": "Admin"},
            "host": {"name": "web-01", "hostname": "ÉCOLE-01"},
            "process": [{"pid": 1234, "name": "sshd"}, {"pid": 99, "name": "bash"}],
            "tls": {"established": false},
            "labels": {"note": null},
            "http.response.bytes": "1500",
        }),
        32,
    )
    .unwrap()
}

fn hits(s: &str) -> bool {
    let query = parse(s).unwrap_or_else(|e| panic!("{}", e.render(s)));
    query.matches(&ssh_event())
}

#[test]
fn matches_field_equality() {
    assert!(hits("event.outcome:failure"));
    assert!(hits("event.outcome:FAILURE"));
    assert!(hits("user.name:admin"), "case-insensitive");
    assert!(!hits("user.name:adm"), "whole value, not substring");
    assert!(hits("event.category:session"), "any array element");
    assert!(!hits("event.category:network"));
    assert!(hits("host.hostname:école-01"), "Unicode case folding");
    assert!(hits("host.hostname:ÉCOLE-01"));
    assert!(hits("process.name:bash"), "arrays of objects");
    assert!(hits("process.pid:99"));
    assert!(hits("http.response.bytes:1500"), "dotted top-level key");
    assert!(!hits("nosuch.field:x"));
    assert!(!hits("event:failure"), "objects never equal a value");
}

#[test]
fn matches_numbers_and_booleans_across_types() {
    assert!(hits("source.port:52211"), "number stored as number");
    assert!(hits("destination.port:22"), "number stored as string");
    assert!(
        hits(r#"source.port:"52211""#),
        "quoted number still matches a number"
    );
    assert!(hits("event.code:4625.0"));
    assert!(!hits("source.port:5221"));
    assert!(hits("tls.established:false"));
    assert!(hits("tls.established:FALSE"));
    assert!(!hits("tls.established:true"));
    assert!(hits("event.code:46*"), "wildcards see numbers as text");
}

#[test]
fn matches_exists() {
    assert!(hits("user.name:*"));
    assert!(hits("source:*"), "an object is present");
    assert!(hits("process.pid:*"));
    assert!(!hits("labels.note:*"), "null counts as absent");
    assert!(!hits("user.email:*"));
}

#[test]
fn matches_wildcards() {
    assert!(hits("user.name:adm*"));
    assert!(hits("user.name:*MIN"));
    assert!(hits("user.name:a?m?n"));
    assert!(!hits("user.name:a?m"));
    assert!(hits("host.hostname:éc*01"));
    assert!(hits("event.category:auth*"));
    assert!(!hits(r"user.name:adm\*"));
}

#[test]
fn matches_ranges() {
    assert!(hits("source.port:>1024"));
    assert!(hits("source.port:>=52211"));
    assert!(!hits("source.port:>52211"));
    assert!(hits("source.port:<=52211"));
    assert!(hits("destination.port:<23"), "numeric string");
    assert!(hits("http.response.bytes:>=1000"));
    assert!(!hits("user.name:>1"), "text is not a number");
    assert!(hits("@timestamp:>=2024-03-01T00:00:00Z"));
    assert!(hits("@timestamp:>=2024-03-01"));
    assert!(hits("@timestamp:<2024-03-02"));
    assert!(!hits("@timestamp:>2024-03-01T10:15:00Z"));
    assert!(hits("@timestamp:>=2024-03-01T12:15:00+02:00"));
    assert!(hits("@timestamp:(>=2024-03-01 AND <2024-03-02)"));
    assert!(!hits("source.port:>2024-03-01"), "a number is not a time");
}

#[test]
fn matches_networks() {
    assert!(hits("source.ip:203.0.113.0/24"));
    assert!(!hits("source.ip:10.0.0.0/8"));
    assert!(hits("source.ip:0.0.0.0/0"));
    assert!(hits("destination.ip:2001:db8::/32"));
    assert!(!hits("destination.ip:2001:db9::/32"));
    assert!(
        hits("destination.ip:2001:DB8:0:0::10"),
        "IPv6 compares as an address"
    );
    assert!(
        !hits("user.name:0.0.0.0/0"),
        "non-IP values never match a network"
    );
}

#[test]
fn matches_free_text() {
    assert!(hits("password"));
    assert!(hits("PASSWORD"));
    assert!(hits(r#""Failed password for""#));
    assert!(!hits(r#""password Failed""#), "phrase words in order");
    assert!(
        hits("sshd"),
        "event.original and nested values are searched"
    );
    assert!(hits("bash"), "inside arrays of objects");
    assert!(hits("école"));
    assert!(hits("4625"), "numbers are searched as text");
    assert!(hits("52211"));
    assert!(hits("fail*ssword"));
    assert!(hits("fail?d"));
    assert!(!hits("fail?x"));
    assert!(!hits("kerberos"));
    assert!(!hits("false"), "booleans are not free text");
    assert!(hits("invalid user admin"), "implicit AND of words");
}

#[test]
fn matches_boolean_logic() {
    assert!(hits("event.outcome:failure AND user.name:admin"));
    assert!(!hits("event.outcome:failure AND user.name:root"));
    assert!(hits("user.name:root OR user.name:admin"));
    assert!(hits("NOT user.name:root"));
    assert!(hits("-user.name:root"));
    assert!(!hits("-user.name:admin"));
    assert!(hits("user.name:(root OR admin)"));
    assert!(hits("user.name:(NOT root)"));
    assert!(hits("(kerberos OR sshd) -root"));
    assert!(hits("*"));
    assert!(hits(""));
    assert!(!hits("NOT *"));
    assert!(!hits("user.email:x"));
    assert!(hits("NOT user.email:x"), "NOT of a missing field matches");
}

#[test]
fn empty_event() {
    let ev = Event::new();
    assert!(parse("*").unwrap().matches(&ev));
    assert!(!parse("a").unwrap().matches(&ev));
    assert!(parse("-a").unwrap().matches(&ev));
}

// ---- errors -------------------------------------------------------------------

fn rendered(s: &str) -> String {
    err(s).render(s)
}

#[test]
fn error_missing_value() {
    let e = err("source.ip:");
    assert_eq!(e.position, 10);
    assert!(
        e.message.starts_with("expected a value after ':'"),
        "{}",
        e.message
    );
    assert!(
        rendered("source.ip:").starts_with("source.ip:\n          ^\nexpected a value after ':'")
    );
    assert_eq!(
        err("source.ip: 10.0.0.1").position,
        10,
        "space after the colon"
    );
    assert_eq!(err("a:) b").position, 2);
    assert_eq!(
        q("a:b:"),
        eq("a", "b:"),
        "after ':' colons belong to the value"
    );
}

#[test]
fn error_unclosed_paren() {
    let e = err("(a OR b");
    assert_eq!(e.position, 7);
    assert_eq!(
        e.message,
        "expected ')' to close the '(' at byte 0, found the end of the query"
    );
    assert_eq!(
        rendered("(a OR b"),
        "(a OR b\n       ^\nexpected ')' to close the '(' at byte 0, found the end of the query"
    );
    assert_eq!(err("f:(a").position, 4);
    let e = err("a)");
    assert_eq!(
        (e.position, e.message.as_str()),
        (1, "unexpected ')' without a matching '('")
    );
    assert_eq!(
        err("()").message,
        "expected a term inside '( … )', found ')'"
    );
}

#[test]
fn error_dangling_operator() {
    let e = err("a AND");
    assert_eq!(e.position, 5);
    assert_eq!(
        e.message,
        "expected a term after 'AND', found the end of the query"
    );
    assert_eq!(
        rendered("a AND"),
        "a AND\n     ^\nexpected a term after 'AND', found the end of the query"
    );
    assert_eq!(
        err("a OR OR b").message,
        "expected a term after 'OR', found 'OR'"
    );
    assert_eq!(err("a OR OR b").position, 5);
    assert_eq!(
        err("NOT").message,
        "expected a term after 'NOT', found the end of the query"
    );
    assert_eq!(err("a -").position, 3);
    assert_eq!(err("AND a").position, 0);
    assert_eq!(err("a AND )").position, 6);
}

#[test]
fn error_bad_range() {
    let e = err("field:>abc");
    assert_eq!(e.position, 7);
    assert_eq!(
        e.message,
        "expected a number or a date after '>', found 'abc'"
    );
    assert_eq!(
        rendered("field:>abc"),
        "field:>abc\n       ^\nexpected a number or a date after '>', found 'abc'"
    );
    assert_eq!(err("field:>=").position, 8);
    assert_eq!(err("field:> 5").position, 7);
    assert_eq!(err("field:>inf").position, 7);
    assert_eq!(err("field:>5*").position, 7);
    let e = err(">5");
    assert_eq!(e.position, 0);
    assert!(
        e.message.starts_with("a comparison needs a field"),
        "{}",
        e.message
    );
}

#[test]
fn error_unterminated_quote() {
    let s = r#"user.name:"root"#;
    let e = err(s);
    assert_eq!(e.position, 10);
    assert_eq!(
        e.message,
        "this quote is never closed: expected a closing '\"'"
    );
    assert_eq!(rendered(s), format!("{s}\n          ^\n{}", e.message));
    assert_eq!(err(r#"a "b \" c"#).position, 2);
}

#[test]
fn error_field_names_and_groups() {
    let e = err("foo/bar:baz");
    assert_eq!(e.position, 3);
    assert!(
        e.message.contains("invalid character '/' in field name"),
        "{}",
        e.message
    );
    assert_eq!(err(":x").position, 0);
    let e = err("a:(b OR c:d)");
    assert_eq!(e.position, 8);
    assert!(e.message.contains("found field 'c:'"), "{}", e.message);
    assert_eq!(
        err("t:(10:32)").position,
        3,
        "colons in group values need quotes"
    );
    assert_eq!(q(r#"t:("10:32")"#), eq("t", "10:32"));
    assert_eq!(err(r#""""#).position, 0);
    let e = err("source.ip:10.0.0.0/33");
    assert_eq!(e.position, 19);
    assert!(e.message.contains("at most 32"), "{}", e.message);
    assert_eq!(err("source.ip:::/129").position, 13);
}

#[test]
fn error_limits() {
    let long = "a ".repeat(2100);
    let e = err(&long);
    assert_eq!(e.position, MAX_QUERY_LEN);
    assert!(e.message.contains("4096 bytes"), "{}", e.message);

    let terms = vec!["x"; MAX_TERMS + 1].join(" ");
    let e = err(&terms);
    assert_eq!(e.position, MAX_TERMS * 2);
    assert!(e.message.contains("256 terms"), "{}", e.message);
    assert!(parse(&vec!["x"; MAX_TERMS].join(" ")).is_ok());

    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let e = err(&deep);
    assert_eq!(e.position, MAX_DEPTH);
    assert!(e.message.contains("64 levels"), "{}", e.message);
    let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    assert!(err(&format!("{}a", "NOT ".repeat(MAX_DEPTH + 1)))
        .message
        .contains("64 levels"));
    assert!(err(&format!("{}a", "-".repeat(MAX_DEPTH + 1)))
        .message
        .contains("64 levels"));
}

#[test]
fn error_display() {
    let e = err("a AND");
    assert_eq!(
        e.to_string(),
        "expected a term after 'AND', found the end of the query (at byte 5)"
    );
    let _: &dyn std::error::Error = &e;
}

// ---- performance guards ---------------------------------------------------------

#[test]
fn pathological_wildcard_is_linear() {
    let long = "a".repeat(100_000);
    let ev = Event::from_json(json!({ "message": long, "x": {"y": long} }), 8).unwrap();
    let start = std::time::Instant::now();
    assert!(!parse("message:*a*a*a*a*a*a*a*a*b").unwrap().matches(&ev));
    assert!(!parse("*a*a*a*a*a*a*a*a*b").unwrap().matches(&ev));
    assert!(parse("message:*a*a*a*a*a*a*a*a*").unwrap().matches(&ev));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_query_like_text(
        s in "([a-z.@_]{1,6}:|[()\"*?\\\\<>=: -]|AND |OR |NOT |[a-z0-9/.]{1,5}|é){0,30}"
    ) {
        match parse(&s) {
            Ok(query) => {
                let _ = query.matches(&ssh_event());
                // The canonical form parses back to the same tree.
                let shown = query.to_string();
                prop_assert_eq!(parse(&shown).map_err(|e| e.render(&shown)), Ok(query));
            }
            Err(e) => {
                prop_assert!(e.position <= s.len());
                let _ = e.render(&s);
            }
        }
    }
}

#[test]
fn documented_examples_parse() {
    for s in [
        "event.outcome:failure AND source.ip:203.0.113.0/24 -user.name:svc_*",
        r#"user.full_name:"Jane Doe""#,
        r#"message:"say \"hi\"""#,
        r#"file.name:"*.txt""#,
        "tls.established:false",
        "destination.ip:2001:DB8::10",
        "-user.email:*",
        "process.name:?sh",
        r"file.path:C:\\Windows\\*.exe",
        r#"user.name:(root OR admin OR "svc backup")"#,
        "source.port:(>=1024 AND <49152)",
        "source.ip:(10.0.0.0/8 OR 192.168.0.0/16 OR fe80::/10)",
        r#"event.time:("10:32")"#,
        "temperature:>-5.5",
        "temperature:-5",
        r#"@timestamp:>="2024-03-01 10:00:00""#,
        "url.path:/api/v1",
        "-source.ip:192.168.0.0/16",
        r"10\:32",
        "(sshd OR sudo) AND event.outcome:failure",
        r"file.name:report\*.pdf",
        r"process.executable:C:\Windows\System32\cmd.exe",
        r"message:a\ b",
    ] {
        q(s);
    }
    assert_eq!(
        q(r"file.path:C:\\Windows\\*.exe"),
        field(
            "file.path",
            Predicate::Eq(glob(&[r"c:\windows\", "*", ".exe"]))
        )
    );
    assert_eq!(q(r"message:a\ b"), q(r#"message:"a b""#));
}
