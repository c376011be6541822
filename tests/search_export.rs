//! End to end: streaming export, timeouts, cancellation and the limit on
//! concurrent searches, against a real server holding 20,000 events.
//!
//! The events are padded to about 1 KiB so that an export (20 MiB) cannot
//! fit in the socket buffers: a client that stops reading really does hold
//! the server-side scan, which is how the tests see a scan running. Storing
//! them takes a while, so one test starts the server and runs the checks
//! in turn (the concurrency check needs every permit free).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{run_ok, vigil, Server, TOKEN};
use serde_json::{json, Value};

const EVENTS: u64 = 20_000;
const CAP: u64 = 20_000;

struct Shared {
    _dir: tempfile::TempDir,
    server: Server,
}

fn start() -> Shared {
    {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("vigil.toml");
        std::fs::write(
            &cfg,
            format!("[search]\nmax_limit = 50000\nexport_max_events = {CAP}\nmax_concurrent = 2\n"),
        )
        .unwrap();
        let server = Server::start_with(
            &dir.path().join("data"),
            Some(TOKEN),
            &["--config", cfg.to_str().unwrap()],
        );
        let pad = "x".repeat(900);
        let names = ["root", "alice", "bob", "carol", "=cmd|' /C calc'!A0"];
        let mut lines = Vec::new();
        for i in 0..EVENTS {
            lines.push(
                json!({
                    "@timestamp": format!("2026-03-01T{:02}:{:02}:{:02}Z", i / 3600 % 24, i / 60 % 60, i % 60),
                    "user": {"name": names[(i % 5) as usize]},
                    "source": {"ip": format!("10.0.{}.{}", i / 256 % 256, i % 256)},
                    "n": i,
                    "message": format!("event {i} {pad}"),
                })
                .to_string(),
            );
        }
        for batch in lines.chunks(2_000) {
            let resp = server.post_ndjson("/api/v1/events?source=exp", batch.join("\n"));
            assert_eq!(resp.status(), 200);
        }
        let v = server.wait_for("vigil.source:exp", EVENTS);
        assert_eq!(v["total"], EVENTS, "all events stored");
        Shared { _dir: dir, server }
    }
}

#[test]
fn export_timeouts_cancellation_and_limits_on_a_real_server() {
    let s = start();
    ndjson_export_streams_what_search_finds_and_is_audited(&s);
    csv_export_has_the_chosen_columns_and_neutralises_formulas(&s);
    the_row_cap_ends_the_export_with_a_marker(&s);
    a_client_that_disconnects_stops_the_server_side_scan(&s);
    a_plain_search_whose_client_goes_away_stops_and_is_audited(&s);
    a_running_export_is_cancelled_through_the_api(&s);
    a_timeout_returns_a_partial_result_naming_it(&s);
    searches_beyond_the_concurrency_limit_get_429_with_retry_after(&s);
}

fn export(server: &Server, query: &[(&str, &str)]) -> (u16, String) {
    let r = server.get("/api/v1/export", query);
    let status = r.status().as_u16();
    (status, r.text().unwrap())
}

fn running_ids(server: &Server) -> Vec<String> {
    let v = server.get_json("/api/v1/search/running", &[]);
    v["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (at most 30 s) until `id` is or is not running.
fn wait_running(server: &Server, id: &str, want: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let is = running_ids(server).iter().any(|i| i == id);
        if is == want || Instant::now() > deadline {
            return is;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An export whose client reads the first bytes, then stops reading.
fn stalled_export(server: &Server, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.http).unwrap();
    write!(
        s,
        "GET /api/v1/export?q=vigil.source:exp&id={id} HTTP/1.1\r\nHost: vigil\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    s
}

fn search_hits(server: &Server) -> Vec<Value> {
    let v = server.search("vigil.source:exp", EVENTS as usize);
    assert_eq!(v["total"], EVENTS);
    assert_eq!(v["partial"], false);
    let mut hits = v["hits"].as_array().unwrap().clone();
    hits.reverse(); // search answers newest first, export oldest first
    hits
}

fn ndjson_export_streams_what_search_finds_and_is_audited(s: &Shared) {
    let (status, body) = export(&s.server, &[("q", "vigil.source:exp"), ("id", "nd-1")]);
    assert_eq!(status, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, EVENTS, "exactly the cap: no end marker");
    assert!(lines.iter().all(|l| l.get("vigil_export").is_none()));
    assert_eq!(lines, search_hits(&s.server));

    let audit = s.server.wait_for(
        "vigil.input:audit AND vigil.search.export:ndjson AND vigil.search.query:\"vigil.source:exp\"",
        1,
    );
    let ev = &audit["hits"][0];
    assert_eq!(ev["vigil"]["search"]["results"], EVENTS, "{ev:#}");
    assert_eq!(ev["event"]["action"], "data_search");
}

fn csv_export_has_the_chosen_columns_and_neutralises_formulas(s: &Shared) {
    let (status, body) = export(
        &s.server,
        &[
            ("q", "vigil.source:exp"),
            ("format", "csv"),
            ("fields", "vigil.seq,user.name,n,missing"),
        ],
    );
    assert_eq!(status, 200);
    let rows: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows[0], "vigil.seq,user.name,n,missing");
    assert_eq!(rows.len() as u64, EVENTS + 1);
    let hits = search_hits(&s.server);
    for (row, hit) in rows[1..].iter().zip(&hits) {
        let name = hit["user"]["name"].as_str().unwrap();
        let shown = if name.starts_with('=') {
            format!("'{name}")
        } else {
            name.to_string()
        };
        assert_eq!(
            *row,
            format!("{},{shown},{},", hit["vigil"]["seq"], hit["n"]),
        );
    }
    assert!(rows.contains(&format!("{},'=cmd|' /C calc'!A0,4,", hits[4]["vigil"]["seq"]).as_str()));
}

fn the_row_cap_ends_the_export_with_a_marker(s: &Shared) {
    // Everything: the 20,000 events plus the audit events of searches.
    let (_, body) = export(&s.server, &[("q", "*"), ("fields", "vigil.seq")]);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, CAP + 1);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"vigil_export": {"complete": false, "rows": CAP, "reason": format!("search.export_max_events ({CAP}) reached")}})
    );

    let (_, body) = export(
        &s.server,
        &[
            ("q", "vigil.source:exp"),
            ("format", "csv"),
            ("limit", "100"),
        ],
    );
    let rows: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 102, "header, 100 rows, marker");
    assert_eq!(
        rows[101],
        "# export cut: limit (100) reached after 100 rows"
    );

    let (status, body) = export(&s.server, &[("q", "* | stats count()")]);
    assert_eq!(status, 400);
    assert!(body.contains("without pipes"), "{body}");
    let (status, body) = export(&s.server, &[("q", "*"), ("format", "xml")]);
    assert_eq!(status, 400);
    assert!(body.contains("ndjson or csv"), "{body}");
}

fn a_client_that_disconnects_stops_the_server_side_scan(s: &Shared) {
    let stream = stalled_export(&s.server, "gone-1");
    assert!(
        wait_running(&s.server, "gone-1", true),
        "the stalled export is listed as running"
    );
    drop(stream);
    assert!(
        !wait_running(&s.server, "gone-1", false),
        "the scan ended once its client went away"
    );
    let m = s.server.metrics();
    assert!(
        m.lines()
            .any(|l| l.starts_with("vigil_search_cancelled_total{by=\"disconnect\"}")),
        "{m}"
    );
    let audit = s.server.wait_for(
        "vigil.input:audit AND vigil.search.export:* AND event.reason:\"the client disconnected\"",
        1,
    );
    let rows = audit["hits"][0]["vigil"]["search"]["results"]
        .as_u64()
        .unwrap();
    assert!(rows < EVENTS, "only part was sent: {rows}");
}

fn a_plain_search_whose_client_goes_away_stops_and_is_audited(s: &Shared) {
    // A search that reads and matches every event against sixty wildcards:
    // many seconds in a debug build, so it is still running when its
    // client hangs up (every event matches, so a finished scan would
    // report all of them).
    let terms: Vec<String> = (0..60).map(|i| format!("message:*q{i}z*")).collect();
    let q = format!("vigil.source:exp NOT ({})", terms.join(" OR "));
    let mut conn = TcpStream::connect(s.server.http).unwrap();
    let target = format!("/api/v1/search?q={}&id=plain-gone&limit=1", url_encode(&q));
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: vigil\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    assert!(
        wait_running(&s.server, "plain-gone", true),
        "the slow search is listed as running"
    );
    drop(conn);
    assert!(
        !wait_running(&s.server, "plain-gone", false),
        "the scan ended once its client went away"
    );
    let audit = s.server.wait_for(
        "vigil.input:audit AND vigil.search.query:*q10z* AND event.reason:\"the client disconnected\"",
        1,
    );
    let all = s
        .server
        .search("vigil.input:audit AND vigil.search.query:*q10z*", 5);
    let results = audit["hits"][0]["vigil"]["search"]["results"]
        .as_u64()
        .unwrap_or_else(|| panic!("no audit of the abandoned search: {all}"));
    assert!(results < EVENTS, "the scan stopped early: {results}");
}

/// Percent-encodes everything but unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn a_running_export_is_cancelled_through_the_api(s: &Shared) {
    let mut resp = Server::client()
        .get(s.server.url("/api/v1/export"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "cancel-me")
        .query(&[("q", "vigil.source:exp")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "cancel-me");
    let mut first = vec![0u8; 64 * 1024];
    resp.read_exact(&mut first).unwrap();
    assert!(wait_running(&s.server, "cancel-me", true));

    let r = s
        .server
        .post("/api/v1/search/cancel-me/cancel", "application/json", "");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"cancelled": "cancel-me"})
    );

    let mut rest = Vec::new();
    resp.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    let text = String::from_utf8(first).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let reason = last["vigil_export"]["reason"].as_str().unwrap();
    assert!(reason.contains("cancelled"), "{last}");
    let rows = last["vigil_export"]["rows"].as_u64().unwrap();
    assert!(rows < EVENTS);
    assert_eq!(text.lines().count() as u64, rows + 1);
    assert!(!wait_running(&s.server, "cancel-me", false));

    let r = Server::client()
        .delete(s.server.url("/api/v1/search/cancel-me"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "no longer running");
}

fn a_timeout_returns_a_partial_result_naming_it(s: &Shared) {
    let v = s.server.get_json(
        "/api/v1/search",
        &[("q", "vigil.source:exp | stats count()"), ("timeout", "0")],
    );
    assert_eq!(v["partial"], true, "{v:#}");
    let reason = v["partial_reason"].as_str().unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(v["rows"], json!([[0]]));

    let (_, body) = export(&s.server, &[("q", "vigil.source:exp"), ("timeout", "0ms")]);
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert!(
        last["vigil_export"]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{last}"
    );

    // A generous timeout is capped by search.timeout_secs, not refused.
    let v = s.server.get_json(
        "/api/v1/search",
        &[
            ("q", "vigil.source:exp | stats count()"),
            ("timeout", "10m"),
        ],
    );
    assert_eq!(v["rows"], json!([[EVENTS]]));
    assert_eq!(v["partial"], false);
    let r = s
        .server
        .get("/api/v1/search", &[("q", "*"), ("timeout", "soon")]);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("timeout"));
}

fn searches_beyond_the_concurrency_limit_get_429_with_retry_after(s: &Shared) {
    let a = stalled_export(&s.server, "hold-1");
    let b = stalled_export(&s.server, "hold-2");
    assert!(wait_running(&s.server, "hold-1", true));
    assert!(wait_running(&s.server, "hold-2", true));
    let r = s.server.get("/api/v1/search", &[("q", "user.name:root")]);
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().unwrap().contains("search.max_concurrent"));

    // A viewer neither sees nor cancels the admin's searches.
    let t: Value = Server::client()
        .post(s.server.url("/api/v1/tokens"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "watcher", "role": "viewer"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let viewer = t["token"].as_str().unwrap();
    let v: Value = Server::client()
        .get(s.server.url("/api/v1/search/running"))
        .bearer_auth(viewer)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v, json!({"searches": []}));
    let r = Server::client()
        .delete(s.server.url("/api/v1/search/hold-1"))
        .bearer_auth(viewer)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(wait_running(&s.server, "hold-1", true), "still running");
    drop((a, b));
    assert!(!wait_running(&s.server, "hold-1", false));
    assert!(!wait_running(&s.server, "hold-2", false));
    let r = s.server.get("/api/v1/search", &[("q", "user.name:root")]);
    assert_eq!(r.status(), 200);
}

/// `max_scan_events` reached exactly is complete; one fewer is partial,
/// and names the setting. Offline, on a data dir of 50 events.
#[test]
fn max_scan_events_edge() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("in.ndjson");
    let lines: Vec<String> = (0..50)
        .map(|i| json!({"@timestamp": "2026-03-01T10:00:00Z", "n": i}).to_string())
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let data = dir.path().join("data");
    run_ok(vigil().arg("ingest").arg("--data-dir").arg(&data).arg(&log));
    let search = |max: u64| {
        let cfg = dir.path().join(format!("max{max}.toml"));
        std::fs::write(&cfg, format!("[search]\nmax_scan_events = {max}\n")).unwrap();
        let out = vigil()
            .args(["search", "* | stats count()", "--json", "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(&cfg)
            .env_remove("VIGIL_SERVER")
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (out, err) = search(50);
    assert_eq!(out.trim(), r#"{"count":50}"#);
    assert!(!err.contains("partial"), "{err}");
    let (out, err) = search(49);
    assert_eq!(out.trim(), r#"{"count":49}"#);
    assert!(
        err.contains(
            "only the newest 49 of 50 events to read were examined (search.max_scan_events)"
        ),
        "{err}"
    );

    let out = dir.path().join("out.csv");
    run_ok(
        vigil()
            .args([
                "export", "n:>=10", "--format", "csv", "--fields", "n", "--limit", "3", "-o",
            ])
            .arg(&out)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("VIGIL_SERVER"),
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "n\r\n10\r\n11\r\n12\r\n# export cut: the limit of 3 events was reached after 3 rows\r\n"
    );
}
