//! Real receivers on 127.0.0.1 for the delivery tests: a tiny HTTP server
//! and a minimal SMTP server, both on `std::net`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_alert::config::{AlertsConfig, ChannelConfig, ChannelKind, RetryConfig, RouteConfig};
use vigil_alert::model::{AlertInput, Level};

/// How long a receiver thread lives at most.
const LIFETIME: Duration = Duration::from_secs(120);

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver answering every request with `status`.
pub struct Receiver {
    pub addr: SocketAddr,
    pub status: Arc<AtomicU16>,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Receiver {
    pub fn start(status: u16) -> Receiver {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), status)
    }

    /// A receiver on `addr` (to bring a "down" receiver back up).
    pub fn start_on(addr: SocketAddr, status: u16) -> Receiver {
        Self::on(TcpListener::bind(addr).unwrap(), status)
    }

    fn on(l: TcpListener, status: u16) -> Receiver {
        l.set_nonblocking(true).unwrap();
        let r = Receiver {
            addr: l.local_addr().unwrap(),
            status: Arc::new(AtomicU16::new(status)),
            requests: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (st, reqs, stop) = (r.status.clone(), r.requests.clone(), r.stop.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + LIFETIME;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = serve(s, &st, &reqs);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        r
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

fn serve(s: TcpStream, status: &AtomicU16, reqs: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    for _ in 0..100 {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0; len.min(1 << 20)];
    r.read_exact(&mut body)?;
    let code = status.load(Ordering::Relaxed);
    reqs.lock().unwrap().push(Request {
        path,
        headers,
        body,
        status: code,
    });
    let mut w = s;
    write!(
        w,
        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    )?;
    w.flush()
}

/// A minimal SMTP server (no TLS): records each message's DATA.
pub struct Smtp {
    pub addr: SocketAddr,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl Smtp {
    pub fn start() -> Smtp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m = messages.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + LIFETIME;
            while Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = smtp_session(s, &m);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Smtp { addr, messages }
    }
}

fn smtp_session(s: TcpStream, messages: &Mutex<Vec<String>>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    w.write_all(b"220 test ESMTP\r\n")?;
    for _ in 0..1000 {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            w.write_all(b"250-test\r\n250 8BITMIME\r\n")?;
        } else if cmd.starts_with("MAIL") || cmd.starts_with("RCPT") || cmd.starts_with("RSET") {
            w.write_all(b"250 ok\r\n")?;
        } else if cmd.starts_with("DATA") {
            w.write_all(b"354 go\r\n")?;
            let mut data = String::new();
            for _ in 0..100_000 {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            messages.lock().unwrap().push(data);
            w.write_all(b"250 queued\r\n")?;
        } else if cmd.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"502 no\r\n")?;
        }
    }
    Ok(())
}

/// One line from a stream, read byte by byte so nothing is buffered past
/// it (the stream may turn into TLS after the line).
fn read_line(s: &mut impl Read) -> std::io::Result<Option<String>> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.len() < 100_000 {
        if s.read(&mut b)? == 0 {
            return Ok(None);
        }
        out.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

/// What a TLS SMTP server received: each message and whether it came over
/// TLS, and each AUTH line.
#[derive(Default)]
pub struct TlsLog {
    pub messages: Vec<(String, bool)>,
    pub auth: Vec<String>,
}

/// A minimal SMTP server with STARTTLS (or implicit TLS) under a fresh
/// self-signed certificate for `localhost`; AUTH and mail are refused
/// before TLS.
pub struct TlsSmtp {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<TlsLog>>,
    pub ca_pem: String,
}

impl TlsSmtp {
    pub fn start(implicit: bool) -> TlsSmtp {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca_pem = cert.cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
            )
            .unwrap();
        let cfg = Arc::new(cfg);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let log = Arc::new(Mutex::new(TlsLog::default()));
        let lg = log.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + LIFETIME;
            while Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = tls_session(s, &cfg, implicit, &lg);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TlsSmtp { addr, log, ca_pem }
    }
}

fn tls_session(
    s: TcpStream,
    cfg: &Arc<rustls::ServerConfig>,
    implicit: bool,
    log: &Mutex<TlsLog>,
) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let wrap = |s: TcpStream| {
        let conn = rustls::ServerConnection::new(cfg.clone()).map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(rustls::StreamOwned::new(conn, s))
    };
    if implicit {
        let mut t = wrap(s)?;
        t.write_all(b"220 test ESMTP\r\n")?;
        dialog(&mut t, true, log)?;
        return Ok(());
    }
    let mut plain = s;
    plain.write_all(b"220 test ESMTP\r\n")?;
    if dialog(&mut plain, false, log)? {
        let mut t = wrap(plain)?;
        dialog(&mut t, true, log)?;
    }
    Ok(())
}

/// Runs the SMTP dialog; returns `true` when the client asked for STARTTLS.
fn dialog(s: &mut (impl Read + Write), tls: bool, log: &Mutex<TlsLog>) -> std::io::Result<bool> {
    let mut authed = false;
    for _ in 0..1000 {
        let Some(line) = read_line(s)? else {
            return Ok(false);
        };
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            if tls {
                s.write_all(b"250-test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")?;
            } else {
                s.write_all(b"250-test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")?;
            }
        } else if cmd == "STARTTLS" && !tls {
            s.write_all(b"220 go ahead\r\n")?;
            s.flush()?;
            return Ok(true);
        } else if cmd.starts_with("AUTH") {
            if !tls {
                s.write_all(b"538 encryption required\r\n")?;
                continue;
            }
            log.lock().unwrap().auth.push(line.trim_end().to_string());
            authed = true;
            s.write_all(b"235 ok\r\n")?;
        } else if cmd.starts_with("MAIL") && !(tls && authed) {
            s.write_all(b"530 authentication required\r\n")?;
        } else if cmd.starts_with("MAIL") || cmd.starts_with("RCPT") || cmd.starts_with("RSET") {
            s.write_all(b"250 ok\r\n")?;
        } else if cmd.starts_with("DATA") {
            s.write_all(b"354 go\r\n")?;
            let mut data = String::new();
            for _ in 0..100_000 {
                match read_line(s)? {
                    Some(l) if l != ".\r\n" => data.push_str(&l),
                    _ => break,
                }
            }
            log.lock().unwrap().messages.push((data, tls));
            s.write_all(b"250 queued\r\n")?;
        } else if cmd.starts_with("QUIT") {
            s.write_all(b"221 bye\r\n")?;
            s.flush()?;
            return Ok(false);
        } else {
            s.write_all(b"502 no\r\n")?;
        }
        s.flush()?;
    }
    Ok(false)
}

/// A config with one channel routed for every alert, fast retries, and
/// loopback allowed.
pub fn config(kind: ChannelKind, max_attempts: u32) -> AlertsConfig {
    AlertsConfig {
        enabled: Some(true),
        outbound_allow: vec!["127.0.0.1/32".parse().unwrap()],
        retry: RetryConfig {
            initial_ms: 20,
            max_ms: 100,
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts,
        },
        channels: vec![ChannelConfig {
            name: "out".into(),
            kind,
        }],
        routes: vec![RouteConfig {
            name: "all".into(),
            channels: vec!["out".into()],
            ..Default::default()
        }],
        ..AlertsConfig::default()
    }
}

pub fn webhook(url: &str) -> ChannelKind {
    ChannelKind::Webhook {
        url: url.into(),
        secret: Some("test-secret".into()),
        secret_file: None,
    }
}

pub fn input(rule: &str, user: &str) -> AlertInput {
    AlertInput {
        rule_id: rule.into(),
        rule_name: format!("Rule {rule}"),
        level: Level::High,
        tags: vec!["attack.credential_access".into()],
        entity: [("user.name".to_string(), user.to_string())].into(),
        message: format!("Sigma: Rule {rule}"),
        seqs: vec![1],
        evidence_truncated: false,
        seq: None,
    }
}

/// Polls `check` every 20 ms for up to 30 s.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
