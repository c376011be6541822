//! Delivery through the outbox to real receivers on 127.0.0.1: outages,
//! restarts, dead letters, bursts, SMTP, syslog, and SSRF refusals.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use vigil_alert::config::ChannelKind;
use vigil_alert::model::{now_ms, Change};
use vigil_alert::Engine;

fn open(dir: &std::path::Path, cfg: &vigil_alert::AlertsConfig) -> Engine {
    Engine::open(&dir.join("alerts.db"), cfg).unwrap()
}

fn worker(
    engine: &Engine,
) -> (
    tokio::sync::watch::Sender<bool>,
    Arc<Mutex<Vec<Change>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let c = changes.clone();
    let h = engine.spawn_worker(move |ch| c.lock().unwrap().push(ch), rx);
    (tx, changes, h)
}

fn state_count(engine: &Engine, state: &str) -> usize {
    engine.with_store(|s| s.deliveries(Some(state), 1000).unwrap().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = config(webhook(&format!("http://{addr}/hook")), 100);
    let engine = open(dir.path(), &cfg);
    let (stop, _, h) = worker(&engine);
    let mut queued = HashSet::new();
    for i in 0..5 {
        let r = engine
            .record(&input(&format!("r{i}"), "root"), now_ms())
            .unwrap();
        queued.extend(r.queued);
    }
    assert_eq!(queued.len(), 5);
    // Every delivery has failed at least once while the receiver is down.
    assert!(
        eventually(|| engine
            .with_store(|s| s.deliveries(Some("pending"), 100).unwrap())
            .iter()
            .all(|d| d.attempts >= 2))
        .await
    );
    let rx = Receiver::start_on(addr, 200);
    assert!(eventually(|| state_count(&engine, "delivered") == 5).await);
    // Give a wrongly repeated send the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.received();
    assert_eq!(got.len(), 5, "{got:?}");
    let ids: HashSet<String> = got
        .iter()
        .map(|r| r.header("X-Vigil-Delivery").unwrap().to_string())
        .collect();
    assert_eq!(ids, queued);
    for r in &got {
        assert_eq!(r.path, "/hook");
        let sig = r.header("X-Vigil-Signature").unwrap();
        assert!(
            vigil_alert::sign::verify(b"test-secret", &r.body, sig),
            "{sig}"
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["sent_at"], r.header("X-Vigil-Timestamp").unwrap());
        assert_eq!(body["delivery_id"], r.header("X-Vigil-Delivery").unwrap());
        assert_eq!(body["alert"]["level"], "high");
    }
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(503);
    let cfg = config(webhook(&rx.url("/h")), 100);
    let queued: HashSet<String> = {
        let engine = open(dir.path(), &cfg);
        let (stop, _, h) = worker(&engine);
        let mut queued = HashSet::new();
        for i in 0..3 {
            queued.extend(
                engine
                    .record(&input(&format!("r{i}"), "u"), now_ms())
                    .unwrap()
                    .queued,
            );
        }
        assert!(eventually(|| rx.received().len() >= 6).await);
        stop.send(true).unwrap();
        h.await.unwrap();
        assert_eq!(state_count(&engine, "delivered"), 0);
        queued
    };
    // The receiver recovers; a new engine on the same file picks up the rows.
    rx.status.store(200, std::sync::atomic::Ordering::Relaxed);
    let engine = open(dir.path(), &cfg);
    let (stop, _, h) = worker(&engine);
    assert!(eventually(|| state_count(&engine, "delivered") == 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted: Vec<String> = rx
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("X-Vigil-Delivery").unwrap().to_string())
        .collect();
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    assert_eq!(accepted.into_iter().collect::<HashSet<_>>(), queued);
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_die_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(500);
    let engine = open(dir.path(), &config(webhook(&rx.url("/h")), 3));
    let (stop, changes, h) = worker(&engine);
    let r = engine.record(&input("r", "u"), now_ms()).unwrap();
    assert!(eventually(|| state_count(&engine, "dead") == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 3, "exactly max_attempts attempts");
    let dead = engine.with_store(|s| s.deliveries(Some("dead"), 10).unwrap());
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("500"),
        "{dead:?}"
    );
    let changes = changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, "delivery_dead");
    assert_eq!(changes[0].alert_id, r.alert_id);
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_identical_matches_is_one_alert_and_one_notification() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(200);
    let engine = open(dir.path(), &config(webhook(&rx.url("/h")), 5));
    let (stop, _, h) = worker(&engine);
    let mut ids = HashSet::new();
    let mut queued = 0;
    for _ in 0..1000 {
        let r = engine.record(&input("brute", "root"), now_ms()).unwrap();
        ids.insert(r.alert_id);
        queued += r.queued.len();
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(queued, 1);
    let id = ids.into_iter().next().unwrap();
    let (alert, history, _) = engine.with_store(|s| s.get(&id).unwrap());
    assert_eq!(alert.count, 1000);
    // History grows with the log of the count, not the count.
    assert!(history.len() < 20, "{}", history.len());
    assert!(eventually(|| state_count(&engine, "delivered") == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 1);
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_is_sent_over_smtp_with_sanitised_text() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    let kind = ChannelKind::Email {
        host: "127.0.0.1".into(),
        port: Some(smtp.addr.port()),
        tls: Some("none".into()),
        username: None,
        password: None,
        password_file: None,
        from: "vigil@example.com".into(),
        to: vec!["soc@example.com".into()],
        ca_file: None,
    };
    let engine = open(dir.path(), &config(kind, 3));
    let (stop, _, h) = worker(&engine);
    engine
        .record(&input("mail", "root\r\nBcc: evil@example.com"), now_ms())
        .unwrap();
    assert!(eventually(|| state_count(&engine, "delivered") == 1).await);
    let msgs = smtp.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(m.contains("Rule mail"), "{m}");
    assert!(m.contains("root\\r\\nBcc"), "{m}");
    assert!(!m.lines().any(|l| l.starts_with("Bcc:")), "{m}");
    stop.send(true).unwrap();
    h.await.unwrap();
}

/// STARTTLS and implicit TLS with authentication, against a test server
/// whose certificate is trusted through `ca_file` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_and_implicit_tls_with_auth() {
    for (mode, implicit) in [("starttls", false), ("tls", true)] {
        let dir = tempfile::tempdir().unwrap();
        let smtp = common::TlsSmtp::start(implicit);
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &smtp.ca_pem).unwrap();
        let pw = dir.path().join("smtp.pw");
        std::fs::write(&pw, "s3cret-relay-pass\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let kind = ChannelKind::Email {
            host: "localhost".into(),
            port: Some(smtp.addr.port()),
            tls: Some(mode.into()),
            username: Some("vigil".into()),
            password: None,
            password_file: Some(pw),
            from: "vigil@example.com".into(),
            to: vec!["soc@example.com".into()],
            ca_file: Some(ca),
        };
        let mut cfg = config(kind, 3);
        cfg.outbound_allow.push("::1/128".parse().unwrap());
        let engine = open(dir.path(), &cfg);
        let (stop, _, h) = worker(&engine);
        engine
            .record(&input(&format!("mail-{mode}"), "alice"), now_ms())
            .unwrap();
        assert!(
            eventually(|| state_count(&engine, "delivered") == 1).await,
            "{mode}: not delivered"
        );
        {
            let log = smtp.log.lock().unwrap();
            assert_eq!(log.messages.len(), 1, "{mode}");
            let (body, over_tls) = &log.messages[0];
            assert!(over_tls, "{mode}: the message was sent in the clear");
            assert!(body.contains(&format!("Rule mail-{mode}")), "{body}");
            // AUTH PLAIN carries "\0vigil\0s3cret-relay-pass" in base64.
            assert_eq!(
                log.auth,
                vec!["AUTH PLAIN AHZpZ2lsAHMzY3JldC1yZWxheS1wYXNz".to_string()],
                "{mode}"
            );
        }
        stop.send(true).unwrap();
        h.await.unwrap();
    }

    // Without the CA the server's certificate is refused: nothing is sent.
    let dir = tempfile::tempdir().unwrap();
    let smtp = common::TlsSmtp::start(false);
    let kind = ChannelKind::Email {
        host: "localhost".into(),
        port: Some(smtp.addr.port()),
        tls: Some("starttls".into()),
        username: None,
        password: None,
        password_file: None,
        from: "vigil@example.com".into(),
        to: vec!["soc@example.com".into()],
        ca_file: None,
    };
    let mut cfg = config(kind, 1);
    cfg.outbound_allow.push("::1/128".parse().unwrap());
    let engine = open(dir.path(), &cfg);
    let (stop, _, h) = worker(&engine);
    engine
        .record(&input("mail-untrusted", "bob"), now_ms())
        .unwrap();
    assert!(eventually(|| state_count(&engine, "dead") == 1).await);
    assert!(smtp.log.lock().unwrap().messages.is_empty());
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_forwarding_sends_cef_over_tcp() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    });
    let kind = ChannelKind::Syslog {
        address: addr.to_string(),
        protocol: None,
    };
    let engine = open(dir.path(), &config(kind, 3));
    let (stop, _, h) = worker(&engine);
    engine.record(&input("cef", "alice"), now_ms()).unwrap();
    let msg = got.join().unwrap();
    let (len, rest) = msg.split_once(' ').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), rest.len());
    assert!(rest.contains("CEF:0|Vigil|Vigil|"), "{rest}");
    assert!(rest.contains("|cef|Rule cef|8|"), "{rest}");
    assert!(rest.contains("suser=alice"), "{rest}");
    assert!(eventually(|| state_count(&engine, "delivered") == 1).await);
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_webhooks_are_refused_unless_allowlisted() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(200);
    for (i, url) in [
        rx.url("/h"),
        format!("http://localhost:{}/h", rx.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/h", rx.addr.port()),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = config(webhook(&url), 2);
        cfg.outbound_allow.clear();
        let sub = dir.path().join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let engine = open(&sub, &cfg);
        let (stop, _, h) = worker(&engine);
        engine.record(&input("r", "u"), now_ms()).unwrap();
        assert!(
            eventually(|| state_count(&engine, "dead") == 1).await,
            "{url}"
        );
        let dead = engine.with_store(|s| s.deliveries(Some("dead"), 10).unwrap());
        let err = dead[0].last_error.clone().unwrap();
        assert!(
            err.contains("loopback") || err.contains("no allowed address"),
            "{url}: {err}"
        );
        stop.send(true).unwrap();
        h.await.unwrap();
    }
    assert!(rx.received().is_empty(), "nothing reached the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_pagerduty_bodies_reach_their_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(202);
    let mut cfg = config(
        ChannelKind::Pagerduty {
            routing_key: Some("pd-key".into()),
            routing_key_file: None,
            url: Some(rx.url("/v2/enqueue")),
        },
        3,
    );
    for (name, kind) in [
        (
            "slack",
            ChannelKind::Slack {
                url: rx.url("/slack"),
            },
        ),
        (
            "teams",
            ChannelKind::Teams {
                url: rx.url("/teams"),
            },
        ),
        ("mm", ChannelKind::Mattermost { url: rx.url("/mm") }),
    ] {
        cfg.channels.push(vigil_alert::config::ChannelConfig {
            name: name.into(),
            kind,
        });
        cfg.routes[0].channels.push(name.into());
    }
    let engine = open(dir.path(), &cfg);
    let (stop, _, h) = worker(&engine);
    let r = engine
        .record(&input("chat", "eve\n[fake] line"), now_ms())
        .unwrap();
    assert_eq!(r.queued.len(), 4);
    assert!(eventually(|| state_count(&engine, "delivered") == 4).await);
    let got = rx.received();
    let body = |path: &str| -> serde_json::Value {
        let req = got.iter().find(|q| q.path == path).unwrap();
        serde_json::from_slice(&req.body).unwrap()
    };
    let pd = body("/v2/enqueue");
    assert_eq!(pd["dedup_key"], r.alert_id.as_str());
    assert_eq!(pd["routing_key"], "pd-key");
    assert_eq!(pd["event_action"], "trigger");
    let slack = body("/slack");
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("Rule chat") && text.contains("eve\\n[fake] line"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(body("/teams")["@type"], "MessageCard");
    assert!(body("/mm")["text"]
        .as_str()
        .unwrap()
        .starts_with("Vigil alert:"));
    stop.send(true).unwrap();
    h.await.unwrap();
}
