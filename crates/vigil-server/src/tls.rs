//! TLS for the HTTP API and syslog (RFC 5425), with rustls.
//!
//! [`server_config`] turns PEM files into a rustls configuration: TLS 1.2
//! and 1.3 only, and, when a client CA is given, clients must present a
//! certificate it signed (mutual TLS). The certificate is served through a
//! [`ReloadingResolver`], which re-reads the PEM files on the next handshake
//! after their modification time changes, so a renewed certificate takes
//! effect without a restart. [`ensure_certificate`] creates a self-signed
//! certificate when TLS is asked for and no files exist yet, and
//! [`TlsListener`] serves axum over TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A handshake that has not completed in this time is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most HTTP handshakes in progress at once; more connections wait.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// Where a listener's certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate
    /// signed by one of them.
    pub client_ca: Option<PathBuf>,
}

/// A TLS file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the expected kind.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The certificate and key do not belong together, or rustls refused them.
    #[error("{cert} with {key}: {message}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        message: String,
    },
    /// Only one of certificate and key exists: Vigil will not overwrite it.
    #[error("{present} exists but {missing} does not; provide both, or remove {present} to have Vigil generate a self-signed pair")]
    HalfPair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The self-signed certificate could not be generated.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(io_err(path))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(io_err(path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })
}

/// Loads a certificate chain and its key, checking that they match.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = read_certs(cert)?;
    let der = read_key(key)?;
    CertifiedKey::from_der(certs, der, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    })
}

/// The SHA-256 fingerprint of a DER certificate, as `AB:CD:…` (the form
/// `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of the first certificate in a PEM file.
pub fn file_fingerprint(cert: &Path) -> Result<String, TlsError> {
    Ok(fingerprint(&read_certs(cert)?[0]))
}

/// What identifies one version of a file: modification time, size, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

struct Loaded {
    stamps: (Stamp, Stamp),
    key: Arc<CertifiedKey>,
}

/// Serves one certificate and re-reads it from its PEM files when they
/// change (checked on each handshake: two `stat` calls). A replacement that
/// does not load (a half-written file, a key that does not match) is logged
/// and the previous certificate stays in use.
pub struct ReloadingResolver {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingResolver {
    /// Loads the files now; fails when they cannot be used.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let stamps = (stamp(cert), stamp(key));
        let loaded = load_certified_key(cert, key)?;
        Ok(ReloadingResolver {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(Loaded {
                stamps,
                key: Arc::new(loaded),
            }),
        })
    }

    /// The certificate in use, reloading it first if its files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = match self.current.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stamps = (stamp(&self.cert), stamp(&self.key));
        if stamps != cur.stamps {
            // Remember the stamps even on failure, so a broken file is
            // reported once, not on every handshake.
            cur.stamps = stamps;
            match load_certified_key(&self.cert, &self.key) {
                Ok(k) => {
                    let fp = k.cert.first().map(|c| fingerprint(c)).unwrap_or_default();
                    tracing::info!(cert = %self.cert.display(), fingerprint = %fp, "TLS certificate reloaded");
                    metrics::counter!("vigil_tls_reloads_total", "result" => "ok").increment(1);
                    cur.key = Arc::new(k);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one");
                    metrics::counter!("vigil_tls_reloads_total", "result" => "failed").increment(1);
                }
            }
        }
        cur.key.clone()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration for `files`: TLS 1.2 and 1.3, the
/// certificate reloaded on change, client certificates required when
/// `client_ca` is set. `alpn` lists the application protocols offered
/// (`http/1.1` for the API; none for syslog).
pub fn server_config(
    files: &TlsFiles,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let resolver = Arc::new(ReloadingResolver::new(&files.cert, &files.key)?);
    let mut cfg = match &files.client_ca {
        None => builder.with_no_client_auth().with_cert_resolver(resolver),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    path: ca.clone(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Pem {
                    path: ca.clone(),
                    message: e.to_string(),
                })?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver)
        }
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Writes a new self-signed certificate (for `localhost`, `127.0.0.1`,
/// `::1` and this host's name) to `cert`, and its key to `key` with mode
/// 0600. Returns the certificate's SHA-256 fingerprint. Refuses to
/// overwrite either file.
pub fn generate_self_signed(cert: &Path, key: &Path) -> Result<String, TlsError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(h) = hostname().filter(|h| h != "localhost") {
        names.push(h);
    }
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    for p in [cert, key] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
    }
    write_new(key, ck.key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, ck.cert.pem().as_bytes(), 0o644)?;
    Ok(fingerprint(ck.cert.der()))
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    let valid = !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| h.to_string())
}

/// Makes sure `files` has a certificate and key: when neither exists,
/// generates a self-signed pair there and returns its fingerprint.
pub fn ensure_certificate(files: &TlsFiles) -> Result<Option<String>, TlsError> {
    match (files.cert.exists(), files.key.exists()) {
        (true, true) => Ok(None),
        (false, false) => generate_self_signed(&files.cert, &files.key).map(Some),
        (true, false) => Err(TlsError::HalfPair {
            present: files.cert.clone(),
            missing: files.key.clone(),
        }),
        (false, true) => Err(TlsError::HalfPair {
            present: files.key.clone(),
            missing: files.cert.clone(),
        }),
    }
}

/// A TCP listener whose connections are TLS-handshaken before axum sees
/// them. Handshakes run in their own tasks (bounded in number and time),
/// so a slow or silent client never delays the others.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` with `config`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = pending.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("vigil_input_tls_handshake_failures_total", "input" => "http").increment(1);
                            tracing::debug!(%peer, error = %e, "HTTPS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("vigil_input_tls_handshake_failures_total", "input" => "http").increment(1);
                            tracing::debug!(%peer, "HTTPS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            addr,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended (runtime shutting down): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_loads_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
            client_ca: None,
        };
        let fp = ensure_certificate(&files).unwrap().unwrap();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(file_fingerprint(&files.cert).unwrap(), fp);
        assert!(ensure_certificate(&files).unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        server_config(&files, &[b"http/1.1"]).unwrap();
        let r = ReloadingResolver::new(&files.cert, &files.key).unwrap();
        let first = r.current();
        assert!(Arc::ptr_eq(&first, &r.current()), "no change, no reload");

        // A broken replacement keeps the old certificate.
        std::fs::write(&files.cert, "not pem").unwrap();
        assert_eq!(fingerprint(&r.current().cert[0]), fp);

        // A new valid pair is picked up.
        std::fs::remove_file(&files.cert).unwrap();
        std::fs::remove_file(&files.key).unwrap();
        let fp2 = generate_self_signed(&files.cert, &files.key).unwrap();
        assert_ne!(fp, fp2);
        assert_eq!(fingerprint(&r.current().cert[0]), fp2);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "hello").unwrap();
        let e = ensure_certificate(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("k.pem"), "{e}");
        std::fs::write(&key, "hello").unwrap();
        let e = load_certified_key(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("c.pem"), "{e}");
        // A key that belongs to another certificate.
        let other = dir.path().join("o");
        generate_self_signed(&other.join("c.pem"), &other.join("k.pem")).unwrap();
        let third = dir.path().join("t");
        generate_self_signed(&third.join("c.pem"), &third.join("k.pem")).unwrap();
        let e = load_certified_key(&other.join("c.pem"), &third.join("k.pem")).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    }
}
