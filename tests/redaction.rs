//! Redaction at ingest, end to end: the real server with a `[redaction]`
//! config, events over syslog and HTTP, read back through the search API.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::Server;
use serde_json::Value;

const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

fn start(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, config).unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        Some(common::TOKEN),
        &["--config", cfg.to_str().unwrap()],
    );
    (dir, server)
}

/// The one stored event whose `q` matches; panics unless exactly one does.
fn one(server: &Server, q: &str) -> Value {
    let v = server.wait_for(q, 1);
    assert_eq!(v["total"], 1, "{q}: {v:#}");
    v["hits"][0].clone()
}

fn metric(text: &str, kind: &str) -> u64 {
    common::metric_value(text, &format!("vigil_redactions_total{{kind=\"{kind}\"}}"))
        .map_or(0, |v| v as u64)
}

#[test]
fn secrets_and_pii_are_redacted_before_storage() {
    let (_dir, server) = start(
        r#"
[redaction]
kinds = ["email", "credit_card", "jwt", "secret_pair", "bearer", "url_password"]
[redaction.modes]
email = "hash"
"#,
    );
    let line = format!(
        "<38>1 2026-03-01T10:00:00Z web01 app 12 - - login bob@example.com card 4111 1111 1111 1111 jwt {JWT} password=hunter2 marker=syslog1"
    );
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    write!(tcp, "{} {}", line.len(), line).unwrap();
    drop(tcp);

    let resp = server.post_ndjson(
        "/api/v1/events?source=crm",
        format!(
            "{{\"message\":\"marker=http1 mail bob@example.com\",\"user\":{{\"email\":\"bob@example.com\",\"password\":\"hunter2\"}},\"payment\":{{\"card\":\"5500-0000-0000-0004\"}},\"http\":{{\"request\":{{\"headers\":\"Authorization: Bearer {JWT}\"}}}},\"url\":{{\"full\":\"postgres://app:s3cret@db/prod?password=hunter2\"}}}}\n"
        ),
    );
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());

    let ev = one(&server, "syslog1");
    let msg = ev["message"].as_str().unwrap();
    let original = ev["event"]["original"].as_str().unwrap();
    for text in [msg, original] {
        for secret in ["bob@example.com", "4111", "hunter2", "eyJ"] {
            assert!(!text.contains(secret), "{secret} stored in {text:?}");
        }
        assert!(
            text.contains(
                "card [REDACTED:credit_card] jwt [REDACTED:jwt] password=[REDACTED:secret_pair]"
            ),
            "{text}"
        );
    }
    // Hashed: the same address gives the same token in both events.
    let hashed = msg
        .split_whitespace()
        .find(|w| w.starts_with("hmac:"))
        .unwrap_or_else(|| panic!("no hmac in {msg}"));
    assert_eq!(hashed.len(), 21, "{hashed}");
    // Vigil's own fields are untouched; the decoders still ran first.
    assert_eq!(ev["host"]["name"], "web01");
    assert_eq!(ev["vigil"]["input"], "syslog-tcp");

    let ev = one(&server, "http1");
    let text = ev.to_string();
    for secret in ["bob@example.com", "hunter2", "5500-0000", "s3cret", "eyJ"] {
        assert!(!text.contains(secret), "{secret} stored in {ev:#}");
    }
    assert_eq!(ev["user"]["email"], hashed, "{ev:#}");
    assert_eq!(ev["user"]["password"], "[REDACTED:secret_pair]");
    assert_eq!(ev["payment"]["card"], "[REDACTED:credit_card]");
    assert_eq!(
        ev["http"]["request"]["headers"],
        "Authorization: Bearer [REDACTED:bearer]"
    );
    assert_eq!(
        ev["url"]["full"],
        "postgres://app:[REDACTED:url_password]@db/prod?password=[REDACTED:secret_pair]"
    );
    assert_eq!(ev["vigil"]["source"], "crm");
    // The hashed value is still searchable, so it still correlates.
    let v = server.search(&format!("user.email:\"{hashed}\""), 10);
    assert_eq!(v["total"], 1, "{v:#}");

    let m = server.metrics();
    assert!(metric(&m, "email") >= 4, "{m}");
    assert!(metric(&m, "credit_card") >= 3, "{m}");
    assert!(metric(&m, "jwt") >= 2, "{m}");
    assert!(metric(&m, "secret_pair") >= 4, "{m}");
    assert!(metric(&m, "bearer") >= 1, "{m}");
    assert!(metric(&m, "url_password") >= 1, "{m}");
    let key = server.data_dir.join("keys/redaction.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn defaults_mask_credentials_but_keep_personal_data() {
    let (_dir, server) = start("");
    let resp = server.post(
        "/api/v1/events",
        "text/plain",
        format!(
            "marker=dflt1 user bob@example.com card 4111111111111111 password=hunter2 jwt {JWT}\n"
        ),
    );
    assert_eq!(resp.status(), 200);
    let ev = one(&server, "dflt1");
    assert_eq!(
        ev["event"]["original"],
        "marker=dflt1 user bob@example.com card 4111111111111111 password=[REDACTED:secret_pair] jwt [REDACTED:jwt]"
    );
    let text = ev.to_string();
    assert!(!text.contains("hunter2") && !text.contains("eyJ"), "{ev:#}");
    let m = server.metrics();
    assert_eq!(metric(&m, "email"), 0, "{m}");
    // Counted per field: the logfmt field `password` and event.original.
    assert_eq!(metric(&m, "secret_pair"), 2, "{m}");
}

#[test]
fn disabled_and_per_source_scope() {
    let (_dir, server) =
        start("[redaction]\nkinds = [\"email\"]\nsources = [\"crm\"]\nfields = [\"user\"]\n");
    let body =
        "{\"message\":\"marker=%M bob@example.com\",\"user\":{\"email\":\"bob@example.com\"}}\n";
    for (src, m) in [("crm", "scope1"), ("web", "scope2")] {
        let resp = server.post_ndjson(
            &format!("/api/v1/events?source={src}"),
            body.replace("%M", m),
        );
        assert_eq!(resp.status(), 200);
    }
    let crm = one(&server, "scope1");
    assert_eq!(crm["user"]["email"], "[REDACTED:email]");
    // Out of the field scope: kept; but event.original is always redacted.
    assert_eq!(crm["message"], "marker=scope1 bob@example.com");
    assert!(!crm["event"]["original"]
        .as_str()
        .unwrap()
        .contains("bob@example.com"));
    let web = one(&server, "scope2");
    assert_eq!(web["user"]["email"], "bob@example.com");

    let (_dir2, off) = start("[redaction]\nenabled = false\n");
    let resp = off.post(
        "/api/v1/events",
        "text/plain",
        "marker=off1 password=hunter2\n",
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(
        one(&off, "off1")["event"]["original"],
        "marker=off1 password=hunter2"
    );
}

#[test]
fn a_bad_redaction_config_is_refused_at_start() {
    let err = common::refused_config("[[redaction.custom]]\nname = \"emp\"\npattern = \"EMP-(\"\n");
    assert!(err.contains("redaction") && err.contains("emp"), "{err}");
}
