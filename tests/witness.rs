//! Checkpoint witnesses end to end: `vigil serve` pushes signed checkpoints
//! to an HTTP service, a syslog receiver and a file, and refuses loopback
//! witnesses unless `[ledger] witness_allow` lets them in.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use vigil_ledger::checkpoint::Checkpoint;
use vigil_ledger::integrity::CheckpointRecord;
use vigil_ledger::note::VerifierKey;

/// One request the fake HTTP witness received.
#[derive(Debug, Clone)]
struct Request {
    head: String,
    body: Vec<u8>,
}

/// A tiny HTTP/1.1 server answering 200 to everything, recording requests.
struct HttpWitness {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl HttpWitness {
    fn start() -> HttpWitness {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let reqs = reqs.clone();
                std::thread::spawn(move || serve_http(s, &reqs));
            }
        });
        HttpWitness {
            port,
            requests,
            connections,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_http(s: TcpStream, reqs: &Mutex<Vec<Request>>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut s = s;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse::<usize>().unwrap());
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        reqs.lock().unwrap().push(Request { head, body });
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// A TCP syslog receiver for octet-counted frames, recording messages.
fn syslog_witness() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let m = msgs.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let m = m.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut len = Vec::new();
                    match r.read_until(b' ', &mut len) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
                    let mut msg = vec![0; n];
                    if r.read_exact(&mut msg).is_err() {
                        return;
                    }
                    m.lock().unwrap().push(String::from_utf8(msg).unwrap());
                }
            });
        }
    });
    (port, msgs)
}

fn ingest(server: &Server, n: usize, tag: &str) {
    let body: String = (0..n)
        .map(|i| format!("{{\"message\":\"witness test {tag} {i}\"}}\n"))
        .collect();
    let resp = server.post_ndjson("/api/v1/events?source=witness-test", body);
    assert_eq!(resp.status(), 200);
}

fn verifier_key(data: &Path) -> VerifierKey {
    let out = common::vigil()
        .args(["key", "--data-dir"])
        .arg(data)
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The size of a record's checkpoint, after verifying its signature.
fn verified_size(rec: &CheckpointRecord, key: &VerifierKey) -> u64 {
    let (cp, _) = Checkpoint::open(rec.note.as_bytes(), std::slice::from_ref(key))
        .unwrap_or_else(|e| panic!("checkpoint does not verify: {e}: {rec:?}"));
    cp.size
}

fn http_records(w: &HttpWitness) -> Vec<CheckpointRecord> {
    w.requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn syslog_records(msgs: &Mutex<Vec<String>>) -> Vec<CheckpointRecord> {
    msgs.lock()
        .unwrap()
        .iter()
        .map(|m| {
            let (header, json) = m.split_once(" - ").expect("RFC 5424 with no SD");
            let fields: Vec<&str> = header.split(' ').collect();
            assert_eq!(fields[0], "<109>1", "{m}");
            assert_eq!(fields[3], "vigil", "APP-NAME: {m}");
            assert_eq!(fields[5], "checkpoint", "MSGID: {m}");
            serde_json::from_str(json).unwrap()
        })
        .collect()
}

fn file_records(path: &Path) -> Vec<CheckpointRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits up to `secs` for `f` to hold.
fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn checkpoints_reach_http_syslog_and_file_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("witness.checkpoints");
    let http = HttpWitness::start();
    let (syslog_port, syslog) = syslog_witness();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[ledger]
checkpoint_interval_secs = 1
witness_allow = ["127.0.0.1/32"]

[[ledger.witness]]
kind = "http"
url = "http://127.0.0.1:{}/add-checkpoint"
token = "witness-secret"

[[ledger.witness]]
kind = "syslog"
address = "127.0.0.1:{syslog_port}"

[[ledger.witness]]
kind = "file"
path = '{}'
"#,
            http.port,
            file.display()
        ),
    )
    .unwrap();
    let mut server =
        Server::start_with(&data, Some(TOKEN), &["--config", config.to_str().unwrap()]);
    let key = verifier_key(&data);

    ingest(&server, 5, "a");
    let has =
        |recs: Vec<CheckpointRecord>, n: u64| recs.iter().any(|r| verified_size(r, &key) == n);
    let ok = wait_until(10, || {
        has(http_records(&http), 5)
            && has(syslog_records(&syslog), 5)
            && has(file_records(&file), 5)
    });
    assert!(
        ok,
        "not every witness got the checkpoint of 5 events: http {:?}, syslog {:?}, file {:?}",
        http.requests(),
        syslog.lock().unwrap(),
        std::fs::read_to_string(&file).ok()
    );
    for r in http.requests() {
        let head = r.head.to_ascii_lowercase();
        assert!(
            head.starts_with("post /add-checkpoint http/1.1"),
            "{}",
            r.head
        );
        assert!(
            head.contains("content-type: application/json"),
            "{}",
            r.head
        );
        assert!(
            head.contains("authorization: bearer witness-secret"),
            "{}",
            r.head
        );
    }
    // Every checkpoint any witness saw verifies and never exceeds what was stored.
    for rec in http_records(&http)
        .into_iter()
        .chain(syslog_records(&syslog))
        .chain(file_records(&file))
    {
        assert!(verified_size(&rec, &key) <= 5);
    }

    // The final checkpoint, made on shutdown, reaches the witnesses before exit.
    ingest(&server, 2, "b");
    let t = Instant::now();
    server.terminate();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(has(file_records(&file), 7), "{:?}", file_records(&file));
    assert!(
        wait_until(2, || has(http_records(&http), 7)),
        "{:?}",
        http.requests()
    );
    assert!(
        wait_until(2, || has(syslog_records(&syslog), 7)),
        "{:?}",
        syslog.lock().unwrap()
    );
}

fn metric_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
}

#[test]
fn loopback_http_witness_is_refused_without_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = HttpWitness::start();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[ledger]
checkpoint_interval_secs = 1

[[ledger.witness]]
kind = "http"
url = "http://127.0.0.1:{port}/add-checkpoint"

[[ledger.witness]]
kind = "http"
url = "http://localhost:{port}/add-checkpoint"
"#,
            port = http.port
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", config.to_str().unwrap()]);
    ingest(&server, 3, "c");
    let failures = |target: &str| {
        let text = server.metrics();
        metric_value(
            &text,
            "vigil_witness_push_failures_total",
            &["witness=\"http\"", target],
        )
        .unwrap_or(0.0)
    };
    let ok = wait_until(10, || {
        failures("127.0.0.1") > 0.0 && failures("localhost") > 0.0
    });
    assert!(ok, "no refused pushes counted");
    let text = server.metrics();
    assert_eq!(
        metric_value(&text, "vigil_witness_pushes_total", &["witness=\"http\""]).unwrap_or(0.0),
        0.0,
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "vigil_witness_pending", &[]).or_else(|| text
            .lines()
            .find(|l| l.starts_with("vigil_witness_pending "))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())),
        Some(2.0),
        "{text}"
    );
    assert_eq!(http.connections.load(Ordering::SeqCst), 0);
    assert!(http.requests().is_empty());
}
