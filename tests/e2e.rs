//! End to end: the real binary on loopback ports, fed over UDP, TCP (both
//! framings) and HTTP, then searched back through the API and the CLI.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::Value;

fn hits_field<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| path.iter().fold(h, |acc, k| &acc[*k]))
        .collect()
}

#[test]
fn syslog_and_http_ingest_then_search() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);

    // UDP, RFC 3164 with an sshd failure.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 bastion sshd[4721]: Failed password for invalid user oracle from 203.0.113.9 port 52144 ssh2",
        server.udp,
    )
    .unwrap();

    // TCP, octet counting, RFC 5424 with structured data.
    let m1 = "<165>1 2026-03-01T10:00:01.000Z web01 app 77 ID47 [origin ip=\"192.0.2.7\"] udp-free octet message";
    let m2 = "<86>1 2026-03-01T10:00:02Z web01 sudo - - - alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/cat /etc/shadow";
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    write!(tcp, "{} {}{} {}", m1.len(), m1, m2.len(), m2).unwrap();
    drop(tcp);

    // TCP, newline framing, with a final line that has no newline.
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    tcp.write_all(b"<38>Mar  1 10:00:03 bastion sshd[99]: Accepted publickey for deploy from 198.51.100.4 port 40000 ssh2: ED25519 SHA256:abc\nplain newline-framed text\r\nlast line without newline").unwrap();
    drop(tcp);

    // HTTP NDJSON with one bad line.
    let resp = server.post_ndjson(
        "/api/v1/events?source=app-json",
        "{\"message\":\"json one\",\"user\":{\"name\":\"carol\"}}\nnot json\n{\"message\":\"json two\",\"source.ip\":\"10.1.2.3\"}\n",
    );
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"][0]["line"], 2);
    assert!(body["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));

    let all = server.wait_for("NOT vigil.input:audit", 8);
    assert_eq!(all["total"], 8, "{all:#}");

    let v = server.search("user.name:oracle AND event.outcome:failure", 10);
    assert_eq!(v["total"], 1, "{v:#}");
    let hit = &v["hits"][0];
    assert_eq!(hit["source"]["ip"], "203.0.113.9");
    assert_eq!(hit["host"]["name"], "bastion");
    assert_eq!(hit["vigil"]["input"], "syslog-udp");
    assert!(hit["vigil"]["seq"].as_u64().unwrap() >= 1);
    assert!(hit["event"]["original"]
        .as_str()
        .unwrap()
        .contains("Failed password"));

    let v = server.search("log.syslog.structured_data.origin.ip:192.0.2.7", 10);
    assert_eq!(v["total"], 1, "{v:#}");
    assert_eq!(v["hits"][0]["vigil"]["input"], "syslog-tcp");

    // Time bounds apply to @timestamp (event time), `until` exclusive.
    let v = server.get_json(
        "/api/v1/search",
        &[
            ("q", "*"),
            ("since", "2026-03-01T10:00:01Z"),
            ("until", "2026-03-01T10:00:02Z"),
        ],
    );
    assert_eq!(v["total"], 1, "{v:#}");
    assert_eq!(v["hits"][0]["host"]["name"], "web01");
    let lines = common::ndjson(
        common::vigil()
            .args([
                "search",
                "host.name:web01",
                "--json",
                "--since",
                "2026-03-01T10:00:02Z",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["host"]["name"], "web01");

    let v = server.search("process.name:sudo user.target.name:root", 10);
    assert_eq!(v["total"], 1, "{v:#}");

    let v = server.search("source.ip:198.51.100.0/24", 10);
    assert_eq!(v["total"], 1, "{v:#}");
    assert_eq!(v["hits"][0]["user"]["name"], "deploy");

    let v = server.search(
        "\"last line without newline\" OR \"plain newline-framed\"",
        10,
    );
    assert_eq!(v["total"], 2, "{v:#}");

    let v = server.search("vigil.source:app-json", 10);
    assert_eq!(v["total"], 2);
    assert!(hits_field(&v, &["vigil", "input"])
        .iter()
        .all(|i| *i == "http"));
    let v = server.search("source.ip:10.0.0.0/8", 10);
    assert_eq!(v["total"], 1);

    // Newest first, gap-free sequence numbers.
    let seqs: Vec<u64> = hits_field(&all, &["vigil", "seq"])
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).rev().collect::<Vec<_>>());

    // The CLI against the server, NDJSON output.
    let lines = common::ndjson(common::vigil().args([
        "search",
        "event.outcome:failure",
        "--json",
        "--server",
        &server.url(""),
        "--token",
        TOKEN,
    ]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["user"]["name"], "oracle");

    // The CLI offline on the same data dir (readers need no lock), table output.
    let table = common::run_ok(
        common::vigil()
            .args(["search", "user.name:deploy", "--data-dir"])
            .arg(&data),
    );
    assert!(table.starts_with("TIME"), "{table}");
    assert!(
        table.contains("deploy") && table.contains("198.51.100.4"),
        "{table}"
    );
}

#[test]
fn auth_is_required_everywhere_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = Server::client();
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            c.get(server.url(path)).send().unwrap().status(),
            200,
            "{path}"
        );
    }
    for (method, path) in [
        ("GET", "/api/v1/search?q=*"),
        ("POST", "/api/v1/search"),
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/tail"),
        ("GET", "/api/v1/sources"),
        ("POST", "/api/v1/verify"),
        ("GET", "/api/v1/proof/1"),
        ("GET", "/api/v1/proof/consistency?old=1"),
        ("GET", "/metrics"),
    ] {
        let req = c.request(method.parse().unwrap(), server.url(path));
        let r = req.try_clone().unwrap().send().unwrap();
        assert_eq!(r.status(), 401, "{method} {path} without token");
        assert!(r.headers().get("www-authenticate").is_some());
        let r = req
            .try_clone()
            .unwrap()
            .bearer_auth("vgl_wrong")
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with a wrong token");
        let r = req
            .header("authorization", "Basic YWRtaW46YWRtaW4=")
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with basic auth");
    }
    // Unknown routes do not reveal themselves to anonymous callers either.
    assert_eq!(
        c.get(server.url("/api/v1/nope")).send().unwrap().status(),
        401
    );
    let r = server.get("/api/v1/nope", &[]);
    assert_eq!(r.status(), 404);
}

#[test]
fn first_start_prints_a_token_once_and_stores_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, None, &[]);
    let token = server
        .stdout_lines
        .iter()
        .find(|l| l.starts_with("vgl_"))
        .cloned()
        .unwrap_or_else(|| panic!("no token printed: {:?}", server.stdout_lines));
    let search_with_token = |server: &Server| {
        Server::client()
            .get(server.url("/api/v1/search?q=*"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(search_with_token(&server), 200);
    server.terminate();
    let db = std::fs::read(data.join("meta.db")).unwrap();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "token stored in clear"
    );
    // Second start: no new token printed.
    let server = Server::start_with(&data, None, &[]);
    assert!(
        !server.stdout_lines.iter().any(|l| l.starts_with("vgl_")),
        "{:?}",
        server.stdout_lines
    );
    assert_eq!(search_with_token(&server), 200);
}

#[test]
fn bad_requests_get_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let post = |ct: &str, body: &'static str| server.post("/api/v1/events", ct, body);
    let r = post("application/json", "[{\"a\":1},");
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("invalid JSON array"));
    let r = post("application/xml", "<a/>");
    assert_eq!(r.status(), 415);
    let r = post("application/x-ndjson", "nope\n");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert_eq!(v["accepted"], 0);

    let r = server.get("/api/v1/search", &[("q", "source.ip:")]);
    assert_eq!(r.status(), 400);
    let e: Value = r.json().unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains('^') && msg.contains("expected"), "{msg}");
    let r = server.get("/api/v1/search", &[("q", "*"), ("since", "yesterday-ish")]);
    assert_eq!(r.status(), 400);

    // Control characters never come back raw in an error message.
    let r = server.get("/api/v1/search", &[("q", "a:(\u{1b}[31m")]);
    assert_eq!(r.status(), 400);
    assert!(!r.text().unwrap().contains('\u{1b}'));
}

#[test]
fn oversized_body_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, "[http]\nmax_body_bytes = 1024\nmax_batch_lines = 3\n").unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    let r = server.post("/api/v1/events", "text/plain", "x".repeat(4096));
    assert_eq!(r.status(), 413);
    let r = server.post("/api/v1/events", "text/plain", "a\nb\nc\nd\n");
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains("more than 3 events"));
}

#[test]
fn long_syslog_messages_are_truncated_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    let long = format!("<13>Mar  1 10:00:00 host app: {}\n", "A".repeat(70_000));
    tcp.write_all(long.as_bytes()).unwrap();
    tcp.write_all(b"<13>Mar  1 10:00:01 host app: after the long one\n")
        .unwrap();
    drop(tcp);
    let v = server.wait_for("NOT vigil.input:audit", 2);
    assert_eq!(v["total"], 2, "{v:#}");
    let long_hit = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["vigil"]["truncated"] == true)
        .expect("flagged");
    assert!(long_hit["event"]["original"].as_str().unwrap().len() <= 65_536);
}

#[test]
fn tail_streams_new_matching_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let resp = server.get("/api/v1/tail", &[("q", "user.name:mallory")]);
    assert_eq!(resp.status(), 200);
    let mut reader = BufReader::new(resp);
    std::thread::sleep(Duration::from_millis(200));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 h sshd[1]: Failed password for bob from 192.0.2.1 port 1 ssh2",
        server.udp,
    )
    .unwrap();
    udp.send_to(
        b"<38>Mar  1 10:00:00 h sshd[1]: Failed password for mallory from 192.0.2.1 port 1 ssh2",
        server.udp,
    )
    .unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["user"]["name"], "mallory");
}

#[test]
fn tail_streams_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, "[http]\nmax_tail_streams = 1\n").unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    let first = server.get("/api/v1/tail", &[]);
    assert_eq!(first.status(), 200);
    let r = server.get("/api/v1/tail", &[]);
    assert_eq!(r.status(), 503);
    assert!(r.text().unwrap().contains("max_tail_streams"));
    // Closing the open stream frees its slot, even with no events flowing.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.get("/api/v1/tail", &[]);
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_count_by_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>Mar  1 10:00:00 host app: hello", server.udp)
        .unwrap();
    server.wait_for("*", 1);
    let text = server.metrics();
    for needle in [
        "vigil_input_received_total{input=\"syslog-udp\"} 1",
        "vigil_decoder_parsed_total{input=\"syslog-udp\"} 1",
        "vigil_ledger_stored_total{input=\"syslog-udp\"} 1",
        "vigil_ledger_fsync_seconds_bucket",
        "vigil_pipeline_queue_depth",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // The writer flushes source statistics every couple of seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = server.get_json("/api/v1/sources", &[]);
        let found =
            v["sources"].as_array().unwrap().iter().any(|s| {
                s["name"] == "127.0.0.1" && s["input"] == "syslog-udp" && s["events"] == 1
            });
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "UDP sender never listed: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sender_sequence_gaps_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    for n in [1, 2, 5, 6, 1] {
        let m = format!(
            "<14>1 2026-03-01T10:00:00Z app01 billing - - [meta sequenceId=\"{n}\"] message {n}"
        );
        write!(tcp, "{} {}", m.len(), m).unwrap();
    }
    drop(tcp);
    let v = server.wait_for("event.dataset:vigil.integrity", 2);
    assert_eq!(v["total"], 2, "{v:#}");
    let hits = v["hits"].as_array().unwrap();
    let gap = hits
        .iter()
        .find(|h| h["event"]["action"] == "source_sequence_gap")
        .expect("gap");
    assert_eq!(gap["vigil"]["integrity"]["missing"], 2);
    assert_eq!(gap["vigil"]["integrity"]["expected"], 3);
    assert_eq!(gap["vigil"]["input"], "internal");
    assert!(hits
        .iter()
        .any(|h| h["event"]["action"] == "source_sequence_restart"));
}

#[test]
fn verify_and_prove_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let body: String = (0..20)
        .map(|i| format!("{{\"message\":\"event {i}\"}}\n"))
        .collect();
    let r = server.post_ndjson("/api/v1/events", body);
    assert_eq!(r.status(), 200);
    // Shutdown signs a checkpoint over everything stored.
    server.terminate();
    let server = Server::start(&data);
    let c = Server::client();
    let v: Value = c
        .post(server.url("/api/v1/verify"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["records"], 20);
    assert!(v["checkpoints_checked"].as_u64().unwrap() >= 1, "{v:#}");

    let r = server.get("/api/v1/proof/7", &[]);
    assert_eq!(r.status(), 200);
    let proof: Value = r.json().unwrap();
    assert_eq!(proof["leaf_index"], 6);
    let file = dir.path().join("proof.json");
    std::fs::write(&file, proof.to_string()).unwrap();
    let key = common::run_ok(common::vigil().args(["key", "--data-dir"]).arg(&data));
    let out = common::vigil()
        .arg("verify-proof")
        .arg(&file)
        .args(["--key", key.trim()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let r = server.get("/api/v1/proof/999", &[]);
    assert_eq!(r.status(), 404);
    let r = c
        .post(server.url("/api/v1/verify"))
        .bearer_auth(TOKEN)
        .body("{\"bogus\":1}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn keep_original_unparsed_stores_json_objects_without_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, "[ledger]\nkeep_original = \"unparsed\"\n").unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        Some(TOKEN),
        &["--config", cfg.to_str().unwrap()],
    );
    // A JSON line and a syslog line as text, and a JSON object over NDJSON.
    let body = "{\"EventID\":4625,\"TargetUserName\":\"bob\",\"tag\":\"ko1\"}\n\
                <38>1 2025-01-06T10:00:00Z host sshd 1 - - Failed password for root from 203.0.113.9 port 1 ssh2 ko2\n";
    assert!(server
        .post("/api/v1/events", "text/plain", body.to_string())
        .status()
        .is_success());
    assert_eq!(
        server
            .post_ndjson(
                "/api/v1/events",
                r#"{"message":"from the api","tag":"ko3"}"#.to_string()
            )
            .status(),
        200
    );
    let v = server.wait_for("ko1 OR ko2 OR ko3", 3);
    let mut by_tag = std::collections::HashMap::new();
    for h in v["hits"].as_array().unwrap() {
        let original = h["event"]["original"].as_str().map(str::to_owned);
        let tag = h["tag"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "syslog".into());
        by_tag.insert(tag, original);
    }
    assert_eq!(by_tag["ko1"], None, "{v}");
    assert_eq!(by_tag["ko3"], None, "{v}");
    assert!(
        by_tag["syslog"]
            .as_deref()
            .unwrap()
            .contains("Failed password"),
        "{v}"
    );
    // The parsed fields are all there.
    let e = server.search("TargetUserName:bob", 1);
    assert_eq!(e["hits"][0]["EventID"], 4625);
}
