//! Every input limit at its edge, against the running server: one unit
//! under, exactly at, and one over (`vigil_server::limits::table`).

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{Server, TOKEN};
use serde_json::{json, Value};

const MSG: usize = 512;
const BODY: usize = 8192;
const LINES: usize = 10;

const CONFIG: &str = r#"
[http]
max_body_bytes = 8192
max_batch_lines = 10

[limits]
max_message_bytes = 512
max_json_depth = 4
max_fields = 8

[search]
max_limit = 1000
"#;

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        Some(TOKEN),
        &["--config", cfg.to_str().unwrap()],
    );
    (dir, server)
}

/// `head` padded with `x` and ended by `END` to exactly `len` bytes.
fn padded(head: &str, len: usize) -> String {
    let fill = len - head.len() - 3;
    format!("{head}{}END", "x".repeat(fill))
}

fn one(server: &Server, marker: &str) -> Value {
    let v = server.wait_for(&format!("{marker} AND NOT vigil.input:audit"), 1);
    assert_eq!(v["total"], 1, "{marker}: {v:#}");
    v["hits"][0].clone()
}

fn truncated(hit: &Value) -> bool {
    hit["vigil"]["truncated"] == json!(true)
}

fn post(
    server: &Server,
    ct: &str,
    body: impl Into<reqwest::blocking::Body>,
) -> reqwest::blocking::Response {
    server.post("/api/v1/events", ct, body)
}

#[test]
fn message_bytes_on_syslog_tcp_and_http() {
    let (_d, server) = start();
    // Syslog over TCP, octet-counted frames of 511, 512 and 513 bytes.
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    for n in [MSG - 1, MSG, MSG + 1] {
        let m = padded(
            &format!("<13>1 2026-03-01T10:00:00Z web01 app - - - tcpedge{n} "),
            n,
        );
        assert_eq!(m.len(), n);
        write!(tcp, "{} {}", m.len(), m).unwrap();
    }
    drop(tcp);
    for n in [MSG - 1, MSG] {
        let hit = one(&server, &format!("tcpedge{n}"));
        assert!(!truncated(&hit), "{n}: {hit:#}");
        assert!(hit.to_string().contains("xEND"), "{n}: {hit:#}");
    }
    let hit = one(&server, &format!("tcpedge{}", MSG + 1));
    assert!(truncated(&hit), "{hit:#}");
    assert!(!hit.to_string().contains("xEND"), "{hit:#}");

    // NDJSON lines: the line over the limit is rejected by number.
    let lines: Vec<String> = [MSG - 1, MSG, MSG + 1]
        .iter()
        .map(|&n| {
            let head = format!("{{\"message\":\"ndjedge{n} ");
            let body = padded(&head, n - 2);
            format!("{body}\"}}")
        })
        .collect();
    for (l, n) in lines.iter().zip([MSG - 1, MSG, MSG + 1]) {
        assert_eq!(l.len(), n);
    }
    let r = post(&server, "application/x-ndjson", lines.join("\n"));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["accepted"], 2, "{v:#}");
    assert_eq!(v["rejected"][0]["line"], 3, "{v:#}");
    assert_eq!(
        v["rejected"][0]["error"],
        format!("line is {} bytes, the limit is {MSG}", MSG + 1)
    );

    // Text lines: cut and flagged like syslog.
    let text: Vec<String> = [MSG, MSG + 1]
        .iter()
        .map(|&n| padded(&format!("textedge{n} "), n))
        .collect();
    let r = post(&server, "text/plain", text.join("\n"));
    assert_eq!(r.status(), 200);
    assert!(!truncated(&one(&server, &format!("textedge{MSG}"))));
    assert!(truncated(&one(&server, &format!("textedge{}", MSG + 1))));
}

#[test]
fn body_bytes_and_batch_lines() {
    let (_d, server) = start();
    // Bodies of BODY-1, BODY and BODY+1 bytes: ten short lines, padded in
    // the last one (its message is cut at 512 bytes; that is not the point).
    for (n, want) in [(BODY - 1, 200), (BODY, 200), (BODY + 1, 413)] {
        let mut body = String::new();
        for i in 0..LINES - 1 {
            body.push_str(&format!("bodyedge{n} line {i}\n"));
        }
        let last = padded(&format!("bodyedge{n} last "), n - body.len());
        body.push_str(&last);
        assert_eq!(body.len(), n);
        let r = post(&server, "text/plain", body);
        assert_eq!(r.status(), want, "body of {n} bytes");
    }
    for (n, want) in [(LINES - 1, 200), (LINES, 200), (LINES + 1, 413)] {
        let body: String = (0..n).map(|i| format!("batchedge{n} {i}\n")).collect();
        let r = post(&server, "text/plain", body);
        assert_eq!(r.status(), want, "{n} lines");
        if want == 413 {
            let msg = r.text().unwrap();
            assert!(msg.contains("more than 10 events"), "{msg}");
            // Nothing of a refused batch is stored.
            let v = server.search("batchedge11", 10);
            assert_eq!(v["total"], 0, "{v:#}");
        }
    }
}

/// A JSON event nested `depth` levels deep (an object of scalars is 1).
fn nested(marker: &str, depth: usize) -> Value {
    let mut v = json!({ "leaf": 1 });
    for _ in 1..depth - 1 {
        v = json!({ "n": v });
    }
    json!({ "message": marker, "n": v })
}

#[test]
fn json_depth_and_field_count() {
    let (_d, server) = start();
    let lines: Vec<String> = [3, 4, 5]
        .iter()
        .map(|&d| nested(&format!("depthedge{d}"), d).to_string())
        .collect();
    let v: Value = post(&server, "application/x-ndjson", lines.join("\n"))
        .json()
        .unwrap();
    assert_eq!(v["accepted"], 2, "{v:#}");
    assert_eq!(v["rejected"][0]["line"], 3, "{v:#}");
    assert!(
        v["rejected"][0]["error"].as_str().unwrap().contains('4'),
        "{v:#}"
    );

    // 7, 8 and 9 leaf fields: message plus numbered ones.
    let lines: Vec<String> = [7, 8, 9]
        .iter()
        .map(|&n| {
            let mut m = serde_json::Map::new();
            m.insert("message".into(), json!(format!("fieldedge{n}")));
            for i in 1..n {
                m.insert(format!("f{i}"), json!(i));
            }
            Value::Object(m).to_string()
        })
        .collect();
    let v: Value = post(&server, "application/x-ndjson", lines.join("\n"))
        .json()
        .unwrap();
    assert_eq!(v["accepted"], 2, "{v:#}");
    assert_eq!(v["rejected"][0]["line"], 3, "{v:#}");
    assert!(
        v["rejected"][0]["error"].as_str().unwrap().contains('8'),
        "{v:#}"
    );

    // A logfmt line keeps the first pairs and flags the cut.
    let text: Vec<String> = [8, 9]
        .iter()
        .map(|&n| {
            let pairs: Vec<String> = (1..n).map(|i| format!("k{i}=v{i}")).collect();
            format!("marker=logfmtedge{n} {}", pairs.join(" "))
        })
        .collect();
    assert_eq!(post(&server, "text/plain", text.join("\n")).status(), 200);
    assert!(!truncated(&one(&server, "logfmtedge8")));
    assert!(truncated(&one(&server, "logfmtedge9")));
}

#[test]
fn names_passwords_queries_and_search_limits() {
    let (_d, server) = start();
    let c = Server::client();
    let login = |user: &str, pw: &str| -> u16 {
        c.post(server.url("/api/v1/auth/login"))
            .json(&json!({ "username": user, "password": pw }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Wrong credentials within the limits are 401, over them 400.
    assert_eq!(login(&"u".repeat(255), "a password here"), 401);
    assert_eq!(login(&"u".repeat(256), "a password here"), 401);
    assert_eq!(login(&"u".repeat(257), "a password here"), 400);
    assert_eq!(login("nobody1", &"p".repeat(1023)), 401);
    assert_eq!(login("nobody2", &"p".repeat(1024)), 401);
    assert_eq!(login("nobody3", &"p".repeat(1025)), 400);
    // The auth body itself: 16 KiB passes the reader (then fails on the
    // password length), one byte more is 413.
    for (n, want) in [(16 * 1024 - 1, 400), (16 * 1024, 400), (16 * 1024 + 1, 413)] {
        let head = "{\"username\":\"x\",\"password\":\"";
        let body = format!("{head}{}\"}}", "p".repeat(n - head.len() - 2));
        assert_eq!(body.len(), n);
        let r = c
            .post(server.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "auth body of {n} bytes");
    }

    // The ingest `source` name.
    for (n, want) in [(255, 200), (256, 200), (257, 400)] {
        let r = c
            .post(server.url("/api/v1/events"))
            .bearer_auth(TOKEN)
            .query(&[("source", "s".repeat(n))])
            .header("content-type", "text/plain")
            .body("source edge")
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "source of {n} bytes");
    }

    // New user names.
    for (n, want) in [(63, 201), (64, 201), (65, 400)] {
        let r = c
            .post(server.url("/api/v1/users"))
            .bearer_auth(TOKEN)
            .json(&json!({ "name": "n".repeat(n), "role": "viewer", "password": "a long enough passphrase" }))
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "user name of {n} bytes");
    }

    // Search `limit` and query length.
    for (n, want) in [(999, 200), (1000, 200), (1001, 400)] {
        let r = server.get("/api/v1/search", &[("q", "*"), ("limit", &n.to_string())]);
        assert_eq!(r.status(), want, "limit {n}");
    }
    let max = vigil_query::MAX_QUERY_LEN;
    for (n, want) in [(max - 1, 200), (max, 200), (max + 1, 400)] {
        let q = "q".repeat(n);
        let r = c
            .post(server.url("/api/v1/search"))
            .bearer_auth(TOKEN)
            .json(&json!({ "q": q }))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(status, want, "query of {n} bytes: {text}");
        if want == 400 {
            assert!(text.contains(&max.to_string()), "{text}");
        }
    }
}
