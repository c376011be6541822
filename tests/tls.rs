//! TLS end to end against the real binary: HTTPS API, syslog over TLS,
//! mutual TLS, refused old/plain protocols, and certificate reload.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::Digest;

const TOKEN: &str = common::TOKEN;

/// `vigil serve` with a config file; killed on drop.
struct TlsServer {
    child: Child,
    https: SocketAddr,
    syslog_tls: Option<SocketAddr>,
    banner: Vec<String>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, config: &str) -> TlsServer {
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = common::serve_cmd(&dir.join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("VIGIL_ADMIN_TOKEN", TOKEN)
        .spawn()
        .unwrap();
    let banner = common::read_banner(&mut child);
    let addr = |scheme: &str| -> Option<SocketAddr> {
        banner
            .iter()
            .find_map(|l| l.split(scheme).nth(1)?.parse().ok())
    };
    TlsServer {
        https: addr("https://").unwrap_or_else(|| panic!("no https:// in {banner:?}")),
        syslog_tls: addr("tls://"),
        child,
        banner,
    }
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting the certificates in `trusted`, optionally presenting
/// a client certificate, limited to `versions`.
fn client(
    trusted: &[&Path],
    client_cert: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for p in trusted {
        for c in certs(p) {
            roots.add(c).unwrap();
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client_cert {
        None => b.with_no_client_auth(),
        Some((c, k)) => b
            .with_client_auth_cert(certs(c), PrivateKeyDer::from_pem_file(k).unwrap())
            .unwrap(),
    })
}

fn connect(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn =
        rustls::ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap())
            .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// One HTTP/1.1 request over TLS: the status and body, or the error.
fn https(
    addr: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String, String), String> {
    let mut s = connect(addr, cfg);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let peer = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| fingerprint(c))
        .unwrap_or_default();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // A peer closing without close_notify after the answer is fine.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body, peer))
}

/// Raw bytes a server answers to `hello` (until it closes or 5 s pass).
fn raw_answer(addr: SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(hello).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// A TLS 1.1 ClientHello without extensions (so no TLS 1.2+ offer).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x14, 0x00, 0x2f]); // two CBC suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn search(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>, q: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body, _) = https(
            addr,
            cfg,
            "GET",
            &format!("/api/v1/search?q={}", q.replace(' ', "%20")),
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["total"].as_u64().unwrap_or(0) > 0 || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("certs/cert.pem"), dir.join("certs/key.pem"))
}

#[test]
fn https_api_and_syslog_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = paths(dir.path());
    let server = start(
        dir.path(),
        &format!(
            "[http]\ntls_cert = {cert:?}\ntls_key = {key:?}\n[syslog]\ntls_listen = \"127.0.0.1:0\"\n"
        ),
    );
    // Generated on first start: key 0600, fingerprint in the banner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let fp = fingerprint(&certs(&cert)[0]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&fp) && l.contains("generated")),
        "{:?}",
        server.banner
    );
    let cfg = client(&[&cert], None, &[&rustls::version::TLS13]);

    let (status, body, peer) = https(server.https, &cfg, "GET", "/healthz", "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer, fp);

    let (status, body, _) = https(
        server.https,
        &cfg,
        "POST",
        "/api/v1/events?source=tls-client",
        "{\"message\":\"over https zqhttps1\"}\n",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":1"), "{body}");
    // TLS 1.2 is the minimum and still works.
    let tls12 = client(&[&cert], None, &[&rustls::version::TLS12]);
    assert_eq!(
        https(server.https, &tls12, "GET", "/healthz", "")
            .unwrap()
            .0,
        200
    );

    // Without the token: still refused over TLS.
    let (status, _, _) = {
        let mut s = connect(server.https, &cfg);
        s.write_all(b"GET /api/v1/search?q=* HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let t = String::from_utf8_lossy(&out).into_owned();
        (
            t.split_whitespace().nth(1).unwrap_or("").to_string(),
            (),
            (),
        )
    };
    assert_eq!(status, "401");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = raw_answer(
        server.https,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !plain.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&plain)
    );
    // TLS 1.1 gets an alert (record type 21) or a closed connection, never a ServerHello.
    let old = raw_answer(server.https, &tls11_client_hello());
    assert!(old.is_empty() || old[0] == 0x15, "{old:?}");

    // Syslog over TLS, octet-counted, then searchable.
    let syslog = server.syslog_tls.expect("syslog TLS address in the banner");
    let mut s = connect(syslog, &client(&[&cert], None, &[&rustls::version::TLS13]));
    let msg = "<38>1 2026-03-01T10:00:00Z web01 app 12 - - delivered over tls zqsyslogtls1";
    write!(s, "{} {}", msg.len(), msg).unwrap();
    s.flush().unwrap();
    s.conn.send_close_notify();
    let _ = s.flush();
    // Closing with unread bytes (the server's session tickets) would make
    // the kernel reset the connection, and a reset may discard what the
    // server has not read yet: half-close, then drain until the server closes.
    let _ = s.sock.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = s.sock.read_to_end(&mut rest);
    drop(s);
    // Each search is audited with its text: leave those events out.
    let v = search(server.https, &cfg, "zqsyslogtls1 NOT vigil.input:audit");
    assert_eq!(v["total"], 1, "{v:#}");
    assert_eq!(v["hits"][0]["vigil"]["input"], "syslog-tls");
    assert_eq!(v["hits"][0]["host"]["name"], "web01");
    let v = search(server.https, &cfg, "zqhttps1 NOT vigil.input:audit");
    assert_eq!(v["total"], 1, "{v:#}");
}

/// A CA, and a client certificate it signed: (ca.pem, client.pem, client.key).
fn make_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Vigil test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut cp = CertificateParams::new(vec!["shipper01".to_string()]).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "shipper01");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = cp.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    let (a, b, c) = (
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    std::fs::write(&a, ca_cert.pem()).unwrap();
    std::fs::write(&b, client_cert.pem()).unwrap();
    std::fs::write(&c, client_key.serialize_pem()).unwrap();
    (a, b, c)
}

#[test]
fn mtls_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = paths(dir.path());
    let (ca, client_cert, client_key) = make_ca(dir.path());
    let server = start(
        dir.path(),
        &format!("[http]\ntls_cert = {cert:?}\ntls_key = {key:?}\ntls_client_ca = {ca:?}\n"),
    );
    for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let anonymous = client(&[&cert], None, &[v]);
        let r = https(server.https, &anonymous, "GET", "/healthz", "");
        assert!(
            r.is_err(),
            "{v:?}: a client without a certificate got {r:?}"
        );
        let with_cert = client(&[&cert], Some((&client_cert, &client_key)), &[v]);
        let (status, body, _) = https(server.https, &with_cert, "GET", "/healthz", "").unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // A certificate from another CA is refused too.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, stranger_cert, stranger_key) = make_ca(&other);
    let stranger = client(
        &[&cert],
        Some((&stranger_cert, &stranger_key)),
        &[&rustls::version::TLS13],
    );
    assert!(https(server.https, &stranger, "GET", "/healthz", "").is_err());
}

#[test]
fn replaced_certificate_is_served_on_the_next_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = paths(dir.path());
    let server = start(
        dir.path(),
        &format!("[http]\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
    );
    let old_fp = fingerprint(&certs(&cert)[0]);
    // The renewed pair, made with `vigil init --self-signed` elsewhere.
    let next = dir.path().join("next");
    let cwd = dir.path().join("empty");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = common::run_ok(
        common::vigil()
            .args(["init", "--self-signed", "--data-dir"])
            .arg(&next)
            .env("VIGIL_ADMIN_TOKEN", TOKEN)
            .env_remove("VIGIL_CONFIG")
            .current_dir(&cwd),
    );
    let (new_cert, new_key) = (next.join("tls/cert.pem"), next.join("tls/key.pem"));
    let new_fp = fingerprint(&certs(&new_cert)[0]);
    assert!(out.contains(&new_fp), "{out}");
    assert_ne!(old_fp, new_fp);

    let cfg = client(&[&cert, &new_cert], None, &[&rustls::version::TLS13]);
    assert_eq!(
        https(server.https, &cfg, "GET", "/healthz", "").unwrap().2,
        old_fp
    );
    // Replace both files atomically (rename), as certbot-style tools do.
    for (from, to) in [(&new_key, &key), (&new_cert, &cert)] {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    }
    // A fresh client: a resumed session would not show the certificate again.
    let cfg = client(&[&cert, &new_cert], None, &[&rustls::version::TLS13]);
    let (status, _, peer) = https(server.https, &cfg, "GET", "/healthz", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(peer, new_fp);
}
