//! Rate limits end to end: the real server with tight `[limits]`, clients
//! connecting from different loopback addresses (all of 127.0.0.0/8 is
//! local on Linux), real 429 answers with `Retry-After`.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::{vigil, Server, TOKEN};
use reqwest::blocking::{Client, Response};

const CONFIG: &str = r#"
[http]
max_batch_lines = 100

[limits]
api_requests_per_sec = 0.2
api_burst = 5
ingest_events_per_sec = 10
ingest_burst_events = 100
"#;

/// A client whose connections come from `from`.
fn client_from(from: &str) -> Client {
    Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn start(dir: &Path) -> Server {
    start_with(dir, CONFIG)
}

fn start_with(dir: &Path, config: &str) -> Server {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, config).unwrap();
    Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()])
}

/// A viewer token created offline on the data dir.
fn viewer_token(data: &Path) -> String {
    let out = common::run_ok(
        vigil()
            .args([
                "token",
                "create",
                "second",
                "--role",
                "viewer",
                "--data-dir",
            ])
            .arg(data)
            .env_remove("VIGIL_CONFIG"),
    );
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("vgl_"))
        .expect("a token in the output")
        .to_string()
}

fn get(c: &Client, server: &Server, path: &str, token: Option<&str>) -> Response {
    let mut r = c.get(server.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

/// Asserts a 429 whose message names `scope` and whose Retry-After is a
/// whole number of seconds, at least 1.
fn assert_limited(r: Response, scope: &str) {
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=100).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = r.json().unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains(scope), "{msg}");
}

#[test]
fn api_requests_are_limited_per_address_and_per_credential() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let second = viewer_token(&data);
    let server = start(dir.path());

    // The burst (5) passes from one address, the sixth request does not.
    let a = client_from("127.0.0.2");
    for i in 0..5 {
        let r = get(&a, &server, "/api/v1/sources", Some(TOKEN));
        assert_eq!(r.status(), 200, "request {i}");
    }
    assert_limited(get(&a, &server, "/api/v1/sources", Some(TOKEN)), "address");
    // The address budget applies before authentication: no credentials,
    // bad credentials and unknown routes are refused the same way.
    assert_limited(get(&a, &server, "/api/v1/sources", None), "address");
    assert_limited(
        get(&a, &server, "/api/v1/nosuchroute", Some("vgl_bad")),
        "address",
    );
    // Health probes are never limited.
    for _ in 0..10 {
        assert_eq!(get(&a, &server, "/healthz", None).status(), 200);
    }

    // The admin token spent its own budget too: from a fresh address it
    // is refused as a credential.
    let b = client_from("127.0.0.3");
    assert_limited(
        get(&b, &server, "/api/v1/sources", Some(TOKEN)),
        "token or session",
    );
    // Another token from that address still has its whole budget.
    for i in 0..4 {
        let r = get(&b, &server, "/api/v1/sources", Some(&second));
        assert_eq!(r.status(), 200, "second token, request {i}");
    }

    // After the Retry-After time (one request every 5 s refills; slow
    // enough that the burst above is spent well within it even on a busy
    // machine) one more request passes.
    std::thread::sleep(Duration::from_millis(5100));
    assert_eq!(
        get(&a, &server, "/api/v1/sources", Some(&second)).status(),
        200
    );

    let metrics = client_from("127.0.0.4")
        .get(server.url("/metrics"))
        .bearer_auth(&second)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "vigil_rate_limited_total{scope=\"source\",class=\"requests\"}",
        "vigil_rate_limited_total{scope=\"credential\",class=\"requests\"}",
    ] {
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("{line} missing from metrics"))
            .trim()
            .parse()
            .unwrap();
        assert!(n >= 1, "{line} = {n}");
    }
}

fn batch(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"message\":\"rate {tag} {i}\",\"marker\":\"{tag}\"}}\n"))
        .collect()
}

fn ingest(c: &Client, server: &Server, body: String) -> Response {
    c.post(server.url("/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap()
}

#[test]
fn ingest_is_limited_per_event_and_a_refused_batch_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let c = client_from("127.0.0.5");

    // 60 of the 100-event burst, then 40: both pass, at the edge.
    assert_eq!(ingest(&c, &server, batch(60, "first")).status(), 200);
    assert_eq!(ingest(&c, &server, batch(40, "second")).status(), 200);
    // The budget refills at 10 events/s: 50 more cannot pass now.
    let r = ingest(&c, &server, batch(50, "refused"));
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_limited(r, "address");

    // Searching is a different budget (and address): the two accepted
    // batches are stored, the refused one is not.
    let reader = Server::client();
    let count = |q: &str| -> u64 {
        let v: serde_json::Value = reader
            .get(server.url("/api/v1/search"))
            .bearer_auth(TOKEN)
            .query(&[("q", q), ("limit", "1")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["total"].as_u64().unwrap()
    };
    assert_eq!(count("marker:first OR marker:second"), 100);
    assert_eq!(count("marker:refused"), 0);
}

#[test]
fn a_sender_whose_budget_is_spent_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // One event a second refills: the budget stays spent for the test.
    let server = start_with(
        dir.path(),
        "[http]\nmax_batch_lines = 100\n[limits]\ningest_events_per_sec = 1\ningest_burst_events = 100\n",
    );
    let c = client_from("127.0.0.6");
    let post = |body: &str| {
        c.post(server.url("/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    // A malformed body is a 400 while there is budget (and spends none).
    assert_eq!(post("[1,").status(), 400);
    assert_eq!(ingest(&c, &server, batch(100, "spend")).status(), 200);
    // Spent: the same malformed body is now refused without being parsed.
    assert_limited(post("[1,"), "address");
}

#[test]
fn rates_must_be_zero_or_a_finite_positive_number() {
    for bad in ["-1", "nan", "inf", "2e9"] {
        let err = common::refused_config(&format!("[limits]\napi_requests_per_sec = {bad}\n"));
        assert!(err.contains("limits.api_requests_per_sec"), "{bad}: {err}");
        let err = common::refused_config(&format!("[limits]\ningest_events_per_sec = {bad}\n"));
        assert!(err.contains("limits.ingest_events_per_sec"), "{bad}: {err}");
    }
}

#[test]
fn a_burst_below_a_full_batch_is_refused_at_start() {
    let err = common::refused_config(
        "[http]\nmax_batch_lines = 1000\n[limits]\ningest_burst_events = 999\n",
    );
    assert!(err.contains("limits.ingest_burst_events"), "{err}");
    assert!(err.contains("1000"), "{err}");
}
