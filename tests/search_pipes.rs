//! End to end: a known set of events ingested over HTTP into the real
//! server, then piped searches (stats, top, timechart, …) over the API and
//! the CLI, checked against answers computed by hand.

mod common;

use common::{ndjson, run_ok, vigil, Server, TOKEN};
use serde_json::{json, Value};

/// Eight events, oldest first. `bytes` where present: 100, 300, "200", 50,
/// 400, 150, 550 (sum 1750, avg 250, median 200, max 550). Users: root ×4,
/// alice ×2, bob ×1, one event without a user. Per minute from 10:00:
/// 2, 2, 1, 2, 0, 1.
const EVENTS: &str = r#"{"@timestamp":"2026-03-01T10:00:05Z","user":{"name":"root"},"source":{"ip":"10.0.0.1"},"bytes":100,"event":{"outcome":"failure"},"host":{"name":"a"}}
{"@timestamp":"2026-03-01T10:00:40Z","user":{"name":"root"},"source":{"ip":"10.0.0.2"},"bytes":300,"event":{"outcome":"failure"},"host":{"name":"a"}}
{"@timestamp":"2026-03-01T10:01:10Z","user":{"name":"alice"},"source":{"ip":"10.0.0.1"},"bytes":"200","event":{"outcome":"success"},"host":{"name":"b"}}
{"@timestamp":"2026-03-01T10:01:20Z","user":{"name":"root"},"source":{"ip":"10.0.0.3"},"bytes":50,"event":{"outcome":"failure"},"host":{"name":"b"}}
{"@timestamp":"2026-03-01T10:02:00Z","user":{"name":"bob"},"source":{"ip":"10.0.0.1"},"bytes":400,"event":{"outcome":"success"},"host":{"name":"a"}}
{"@timestamp":"2026-03-01T10:03:30Z","user":{"name":"alice"},"source":{"ip":"10.0.0.4"},"event":{"outcome":"failure"},"host":{"name":"c"}}
{"@timestamp":"2026-03-01T10:03:59Z","user":{"name":"root"},"source":{"ip":"10.0.0.1"},"bytes":150,"event":{"outcome":"success"},"host":{"name":"a"}}
{"@timestamp":"2026-03-01T10:05:00Z","source":{"ip":"10.0.0.2"},"bytes":550,"host":{"name":"=cmd|' /C calc'!A0"}}
"#;

fn started() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let resp = server.post_ndjson("/api/v1/events?source=pipes", EVENTS);
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["accepted"], 8, "{body:#}");
    let all = server.wait_for("vigil.source:pipes", 8);
    assert_eq!(all["total"], 8, "{all:#}");
    (dir, server)
}

#[test]
fn piped_searches_over_the_api() {
    let (_dir, server) = started();

    let v = server.search(
        "vigil.source:pipes | stats count(), sum(bytes), avg(bytes), max(bytes), p50(bytes), dc(source.ip)",
        10,
    );
    assert_eq!(
        v["columns"],
        json!([
            "count",
            "sum(bytes)",
            "avg(bytes)",
            "max(bytes)",
            "p50(bytes)",
            "dc(source.ip)"
        ])
    );
    assert_eq!(v["rows"], json!([[8, 1750, 250, 550, 200, 4]]));
    assert_eq!(v["total"], 8);
    assert_eq!(v["partial"], false);
    assert_eq!(v["partial_reason"], Value::Null);
    assert_eq!(v["hits"], json!([]));
    assert!(v["took_ms"].is_u64());

    let v = server.search(
        "vigil.source:pipes event.outcome:* | stats count() by user.name | where count > 1 | sort -count",
        10,
    );
    assert_eq!(v["columns"], json!(["user.name", "count"]));
    assert_eq!(v["rows"], json!([["root", 4], ["alice", 2]]));
    assert_eq!(v["total"], 7, "the filter matched 7 events");

    let v = server.search("vigil.source:pipes | top 2 user.name", 10);
    assert_eq!(v["columns"], json!(["user.name", "count", "percent"]));
    assert_eq!(v["rows"], json!([["root", 4, 50], ["alice", 2, 25]]));

    let v = server.search("vigil.source:pipes | rare 1 user.name", 10);
    assert_eq!(v["rows"], json!([["bob", 1, 12.5]]));

    let v = server.search("vigil.source:pipes | timechart span=1m count()", 10);
    assert_eq!(v["columns"], json!(["_time", "count"]));
    let counts: Vec<(String, u64)> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["time"].as_str().unwrap().to_string(),
                b["values"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [2, 2, 1, 2, 0, 1]
        .iter()
        .enumerate()
        .map(|(m, n)| (format!("2026-03-01T10:0{m}:00Z"), *n))
        .collect();
    assert_eq!(counts, want);

    let v = server.search(
        "vigil.source:pipes | timechart span=5m limit=1 count() by host.name",
        10,
    );
    assert_eq!(v["columns"], json!(["_time", "a", "other"]));
    assert_eq!(
        v["rows"],
        json!([
            ["2026-03-01T10:00:00Z", 4, 3],
            ["2026-03-01T10:05:00Z", 0, 1]
        ])
    );

    // Event pipes answer hits, in ledger order.
    let v = server.search(
        "vigil.source:pipes | where bytes >= 300 | fields user.name, bytes",
        10,
    );
    assert!(v.get("columns").is_none());
    assert_eq!(
        v["hits"],
        json!([
            {"user": {"name": "root"}, "bytes": 300},
            {"user": {"name": "bob"}, "bytes": 400},
            {"bytes": 550}
        ])
    );
    let v = server.search(
        "vigil.source:pipes | dedup user.name | head 2 | fields user.name",
        10,
    );
    assert_eq!(
        v["hits"],
        json!([{"user": {"name": "root"}}, {"user": {"name": "alice"}}])
    );

    // POST bodies take the same searches.
    let r = Server::client()
        .post(server.url("/api/v1/search"))
        .bearer_auth(TOKEN)
        .json(&json!({"q": "vigil.source:pipes | stats count() by event.outcome"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["rows"], json!([["failure", 4], ["success", 3]]));
}

#[test]
fn pipe_errors_are_400_with_a_caret() {
    let (_dir, server) = started();
    let r = server.get("/api/v1/search", &[("q", "* | stats count() by")]);
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("expected a field name after 'by', found the end of the query"),
        "{msg}"
    );
    assert!(msg.contains('^'), "{msg}");
    let r = server.get("/api/v1/search", &[("q", "* | top user.name | sort -nope")]);
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("sort: no column 'nope' in the table before it"),
        "{v}"
    );
}

#[test]
fn piped_searches_from_the_cli() {
    let (_dir, server) = started();
    let url = server.url("");
    let remote = |q: &str, fmt: &str| {
        let mut cmd = vigil();
        cmd.args(["search", q, "--server", &url, "--token", TOKEN]);
        if !fmt.is_empty() {
            cmd.arg(fmt);
        }
        cmd
    };

    // NDJSON: one object per row.
    let rows = ndjson(&mut remote(
        "vigil.source:pipes | stats count() by user.name",
        "--json",
    ));
    assert_eq!(
        rows,
        [
            json!({"user.name": "alice", "count": 2}),
            json!({"user.name": "bob", "count": 1}),
            json!({"user.name": "root", "count": 4}),
        ]
    );

    // CSV, with the formula-looking host name neutralised; ties in count
    // keep value order ('=' sorts before 'c').
    let csv = run_ok(&mut remote("vigil.source:pipes | top 3 host.name", "--csv"));
    assert_eq!(
        csv,
        "host.name,count,percent\r\na,4,50\r\nb,2,25\r\n'=cmd|' /C calc'!A0,1,12.5\r\n"
    );

    // The aligned table on a terminal (here a pipe, same layout).
    let table = run_ok(&mut remote(
        "vigil.source:pipes | stats sum(bytes) as total by host.name",
        "",
    ));
    assert_eq!(
        table,
        "host.name           total\n=cmd|' /C calc'!A0    550\na                     950\nb                     250\nc\n"
    );

    // Events cut down by `fields` are shown in those columns, in CSV too.
    let table = run_ok(&mut remote(
        "vigil.source:pipes | where bytes >= 300 | fields user.name, bytes",
        "",
    ));
    assert_eq!(
        table,
        "user.name  bytes\nroot         300\nbob          400\n             550\n"
    );
    // The chosen columns stay in their order even when the first event lacks one.
    let csv = run_ok(&mut remote(
        "vigil.source:pipes | where bytes >= 400 | sort -bytes | fields user.name, bytes",
        "--csv",
    ));
    assert_eq!(csv, "user.name,bytes\r\n,550\r\nbob,400\r\n");

    // The local ledger answers the same as the server.
    let data = server.data_dir.clone();
    let rows = ndjson(
        vigil()
            .args([
                "search",
                "vigil.source:pipes | top 2 user.name",
                "--json",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert_eq!(
        rows,
        [
            json!({"user.name": "root", "count": 4, "percent": 50}),
            json!({"user.name": "alice", "count": 2, "percent": 25}),
        ]
    );
    // The 10:05 event has no event.outcome, so it is in no series and no bucket.
    let csv = run_ok(
        vigil()
            .args([
                "search",
                "vigil.source:pipes | timechart span=2m count() by event.outcome",
                "--csv",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert_eq!(
        csv,
        "_time,failure,success\r\n2026-03-01T10:00:00Z,3,1\r\n2026-03-01T10:02:00Z,1,2\r\n"
    );

    // A bad pipe fails with the caret on stderr.
    let out = remote("* | stats avg()", "").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "* | stats avg()\n          ^\navg() needs a field, like avg(http.response.bytes)\n"
        ),
        "{err}"
    );
    let out = vigil()
        .args([
            "search",
            "* | stats count() by user.name | sort -bytes",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("                               ^\nsort: no column 'bytes'"),
        "{err}"
    );
}
