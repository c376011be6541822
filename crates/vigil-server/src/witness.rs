//! Witnesses: copies of every checkpoint kept outside the data directory.
//!
//! A witness that the host cannot rewrite (another disk, a log server, an
//! HTTP service run by someone else) is what makes a rollback of the whole
//! data dir detectable. Witnesses are configured as `[[ledger.witness]]`
//! tables (or `[ledger] witness_files`):
//!
//! - `kind = "file"`: the checkpoint record is appended as one JSON line,
//!   then fsynced.
//! - `kind = "syslog"`: one RFC 5424 message per checkpoint over TCP with
//!   octet-counted framing (RFC 6587), APP-NAME `vigil`, MSGID `checkpoint`,
//!   the record's JSON as the message.
//! - `kind = "http"`: `POST` of the record's JSON (`Content-Type:
//!   application/json`, optional bearer token); any 2xx is success.
//!
//! Pushes run on their own thread (`vigil-witness`, a small tokio runtime with
//! one task per witness), fed through a `watch` channel by the
//! [`Checkpointer`](crate::checkpoints::Checkpointer) on the ledger writer
//! thread, so a slow or dead witness never stalls the writer. Only the newest
//! checkpoint matters: it replaces one still waiting to be pushed. A failed
//! push is retried with exponential backoff and jitter (1 s, 2 s, 4 s, … up to
//! 60 s) until it succeeds or a newer checkpoint supersedes it. Network
//! witnesses connect only to addresses the
//! [`OutboundPolicy`](crate::netguard::OutboundPolicy) allows. When the
//! [`WitnessSet`] is dropped (at shutdown, after the final checkpoint) it waits
//! up to [`SHUTDOWN_WAIT`] for the last pushes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use vigil_ledger::integrity::CheckpointRecord;

use crate::config::{ConfigError, WitnessConfig};
use crate::netguard::{OutboundPolicy, SafeClient, CONNECT_TIMEOUT, TOTAL_TIMEOUT};

/// How long shutdown waits for the final checkpoint to reach the witnesses.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A checkpoint waiting to be pushed.
#[derive(Debug)]
struct Item {
    size: u64,
    time: String,
    json: String,
}

/// Where one witness is.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Syslog {
        host: String,
        port: u16,
    },
    Http {
        url: reqwest::Url,
        token: Option<String>,
    },
}

/// One configured witness.
#[derive(Debug, Clone)]
pub struct Witness {
    target: Target,
    label: String,
}

impl Witness {
    /// Checks one `[[ledger.witness]]` table.
    pub fn from_config(c: &WitnessConfig) -> Result<Witness, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: "ledger.witness",
            message,
        };
        let target = match c {
            WitnessConfig::File { path } => {
                if path.as_os_str().is_empty() {
                    return Err(invalid("a file witness needs a path".into()));
                }
                Target::File(path.clone())
            }
            WitnessConfig::Syslog { address } => {
                let (host, port) = split_host_port(address).ok_or_else(|| {
                    invalid(format!(
                        "syslog witness address {address:?} must be host:port"
                    ))
                })?;
                Target::Syslog { host, port }
            }
            WitnessConfig::Http { url, token } => {
                let u = reqwest::Url::parse(url)
                    .map_err(|e| invalid(format!("http witness url {url:?}: {e}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(invalid(format!(
                        "http witness url {url:?} must be an http:// or https:// URL with a host"
                    )));
                }
                Target::Http {
                    url: u,
                    token: token.as_ref().map(|t| t.0.clone()),
                }
            }
        };
        let label = match &target {
            Target::File(p) => p.display().to_string(),
            Target::Syslog { host, port } => format!("{}:{port}", bracket(host)),
            Target::Http { url, .. } => {
                // No credentials or query string in labels and logs.
                let mut u = url.clone();
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
        };
        Ok(Witness { target, label })
    }

    /// `file`, `syslog` or `http`: the `witness` label of the metrics.
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::File(_) => "file",
            Target::Syslog { .. } => "syslog",
            Target::Http { .. } => "http",
        }
    }

    /// Where it is, without credentials: the `target` label of the metrics.
    pub fn label(&self) -> &str {
        &self.label
    }

    async fn push(&self, item: &Item, client: Option<&SafeClient>) -> anyhow::Result<()> {
        match &self.target {
            Target::File(path) => {
                let path = path.clone();
                let mut line = item.json.clone();
                line.push('\n');
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    f.write_all(line.as_bytes())?;
                    f.sync_data()
                })
                .await
                .context("file witness task")??;
                Ok(())
            }
            Target::Syslog { host, port } => {
                let client = client.context("no outbound policy")?;
                let frame = syslog_frame(item, &hostname(), std::process::id());
                tokio::time::timeout(TOTAL_TIMEOUT, async {
                    let addrs = client.policy().resolve(host, *port).await?;
                    let mut last = None;
                    let mut stream = None;
                    for a in addrs {
                        match tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            tokio::net::TcpStream::connect(a),
                        )
                        .await
                        {
                            Ok(Ok(s)) => {
                                stream = Some(s);
                                break;
                            }
                            Ok(Err(e)) => last = Some(anyhow::anyhow!("connecting to {a}: {e}")),
                            Err(_) => last = Some(anyhow::anyhow!("connecting to {a} timed out")),
                        }
                    }
                    let mut s = match stream {
                        Some(s) => s,
                        None => return Err(last.unwrap_or_else(|| anyhow::anyhow!("no address"))),
                    };
                    s.write_all(frame.as_bytes()).await?;
                    s.flush().await?;
                    s.shutdown().await?;
                    Ok(())
                })
                .await
                .map_err(|_| anyhow::anyhow!("timed out after {TOTAL_TIMEOUT:?}"))?
            }
            Target::Http { url, token } => {
                let client = client.context("no HTTP client")?;
                let mut req = client
                    .post(url)?
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(item.json.clone());
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.map_err(|e| e.without_url())?;
                let status = resp.status();
                if !status.is_success() {
                    anyhow::bail!("the witness answered HTTP {status}");
                }
                Ok(())
            }
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `host:port` or `[v6]:port` → (host, port).
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    Some((host.to_owned(), port))
}

/// This host's name for the syslog HOSTNAME field (printable ASCII, else `-`).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // on success when the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "-".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name: String = buf[..end]
        .iter()
        .filter(|b| (33..=126).contains(*b))
        .map(|b| *b as char)
        .take(255)
        .collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

/// One octet-counted RFC 5424 message: facility log audit (13), severity
/// notice (5), the checkpoint's time, APP-NAME `vigil`, MSGID `checkpoint`.
fn syslog_frame(item: &Item, hostname: &str, pid: u32) -> String {
    let ts = chrono::DateTime::parse_from_rfc3339(&item.time)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let msg = format!(
        "<109>1 {} {hostname} vigil {pid} checkpoint - {}",
        ts.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        item.json
    );
    format!("{} {msg}", msg.len())
}

/// The pause before attempt `attempt + 1` (0-based): 1 s doubling to
/// [`MAX_BACKOFF`], each scaled by a random 0.75–1.25.
pub fn backoff(attempt: u32) -> Duration {
    let base = MAX_BACKOFF.min(Duration::from_secs(1u64 << attempt.min(6)));
    let jitter: f64 = rand::thread_rng().gen_range(0.75..1.25);
    MAX_BACKOFF.min(base.mul_f64(jitter))
}

struct Shared {
    pending: AtomicI64,
}

impl Shared {
    fn set_pending(&self, flag: &mut bool, value: bool) {
        if *flag == value {
            return;
        }
        *flag = value;
        let n = if value {
            self.pending.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.pending.fetch_sub(1, Ordering::Relaxed) - 1
        };
        metrics::gauge!("vigil_witness_pending").set(n.max(0) as f64);
    }
}

/// The witnesses and their push thread. Held by the checkpointer.
pub struct WitnessSet {
    tx: Option<watch::Sender<Option<Arc<Item>>>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
    count: usize,
}

impl std::fmt::Debug for WitnessSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessSet")
            .field("witnesses", &self.count)
            .finish_non_exhaustive()
    }
}

impl WitnessSet {
    /// No witnesses.
    pub fn none() -> WitnessSet {
        WitnessSet {
            tx: None,
            done: None,
            count: 0,
        }
    }

    /// Checks the configured witnesses and starts the push thread (none when
    /// nothing is configured).
    pub fn start(configs: &[WitnessConfig], policy: OutboundPolicy) -> anyhow::Result<WitnessSet> {
        let witnesses = configs
            .iter()
            .map(Witness::from_config)
            .collect::<Result<Vec<_>, _>>()?;
        if witnesses.is_empty() {
            return Ok(WitnessSet::none());
        }
        let client = if witnesses.iter().any(|w| w.kind() != "file") {
            Some(SafeClient::new(policy).context("building the witness HTTP client")?)
        } else {
            None
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("vigil-witness-io")
            .build()
            .context("starting the witness runtime")?;
        let (tx, rx) = watch::channel::<Option<Arc<Item>>>(None);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let count = witnesses.len();
        metrics::gauge!("vigil_witness_pending").set(0.0);
        std::thread::Builder::new()
            .name("vigil-witness".into())
            .spawn(move || {
                let shared = Arc::new(Shared {
                    pending: AtomicI64::new(0),
                });
                rt.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for w in witnesses {
                        tasks.spawn(run(w, rx.clone(), client.clone(), shared.clone()));
                    }
                    drop(rx);
                    while tasks.join_next().await.is_some() {}
                });
                let _ = done_tx.send(());
                // A file witness stuck in the kernel must not hold the process.
                rt.shutdown_background();
            })
            .context("starting the witness thread")?;
        Ok(WitnessSet {
            tx: Some(tx),
            done: Some(done_rx),
            count,
        })
    }

    /// How many witnesses there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Hands `rec` (for a tree of `size` leaves) to the push thread,
    /// replacing any checkpoint not yet pushed. Never blocks.
    pub fn publish(&self, rec: &CheckpointRecord, size: u64) {
        let Some(tx) = &self.tx else { return };
        let json = match serde_json::to_string(rec) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "serializing a checkpoint for the witnesses failed");
                return;
            }
        };
        tx.send_replace(Some(Arc::new(Item {
            size,
            time: rec.time.clone(),
            json,
        })));
    }

    /// Stops taking checkpoints and waits up to `wait` for the witnesses to
    /// receive the last one (each gets one more attempt if it was failing).
    pub fn finish(&mut self, wait: Duration) {
        drop(self.tx.take());
        if let Some(done) = self.done.take() {
            if done.recv_timeout(wait).is_err() {
                tracing::warn!(
                    "not every witness received the final checkpoint within {wait:?}; it stays in ledger/checkpoints.log"
                );
            }
        }
    }
}

impl Drop for WitnessSet {
    fn drop(&mut self) {
        self.finish(SHUTDOWN_WAIT);
    }
}

async fn run(
    w: Witness,
    mut rx: watch::Receiver<Option<Arc<Item>>>,
    client: Option<SafeClient>,
    shared: Arc<Shared>,
) {
    let kind = w.kind();
    let target = w.label().to_owned();
    let pushes = metrics::counter!("vigil_witness_pushes_total", "witness" => kind, "target" => target.clone());
    let failures = metrics::counter!("vigil_witness_push_failures_total", "witness" => kind, "target" => target.clone());
    let last_ok = metrics::gauge!("vigil_witness_last_success_seq", "witness" => kind, "target" => target.clone());
    let mut pending = false;
    let mut closing = false;
    'next: loop {
        if closing || rx.changed().await.is_err() {
            break;
        }
        let Some(mut item) = rx.borrow_and_update().clone() else {
            continue;
        };
        shared.set_pending(&mut pending, true);
        let mut attempt = 0u32;
        loop {
            match w.push(&item, client.as_ref()).await {
                Ok(()) => {
                    pushes.increment(1);
                    last_ok.set(item.size as f64);
                    shared.set_pending(&mut pending, false);
                    tracing::debug!(witness = kind, target = %target, size = item.size, "checkpoint pushed");
                    continue 'next;
                }
                Err(e) => {
                    failures.increment(1);
                    if closing {
                        tracing::warn!(witness = kind, target = %target, size = item.size, error = format!("{e:#}"), "pushing the final checkpoint failed; giving up at shutdown");
                        break 'next;
                    }
                    let delay = backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(witness = kind, target = %target, size = item.size, error = format!("{e:#}"), retry_in = ?delay, "pushing a checkpoint failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        changed = rx.changed() => match changed {
                            Ok(()) => {
                                if let Some(newer) = rx.borrow_and_update().clone() {
                                    item = newer;
                                    attempt = 0;
                                }
                            }
                            // Shutting down: one last attempt right away.
                            Err(_) => closing = true,
                        },
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, WitnessToken};
    use std::io::{BufRead, BufReader, Read};

    #[test]
    fn parses_every_witness_form() {
        let c = Config::from_toml(
            r#"
[ledger]
witness_files = ["/mnt/a/vigil.checkpoints"]
witness_allow = ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]

[[ledger.witness]]
kind = "file"
path = "/mnt/b/vigil.checkpoints"

[[ledger.witness]]
kind = "syslog"
address = "198.51.100.7:6514"

[[ledger.witness]]
kind = "http"
url = "https://witness.example/add-checkpoint"
token = "s3cret"

[[ledger.witness]]
kind = "http"
url = "https://other.example/add"
"#,
        )
        .unwrap();
        let all = c.ledger.all_witnesses();
        assert_eq!(
            all,
            vec![
                WitnessConfig::File {
                    path: "/mnt/a/vigil.checkpoints".into()
                },
                WitnessConfig::File {
                    path: "/mnt/b/vigil.checkpoints".into()
                },
                WitnessConfig::Syslog {
                    address: "198.51.100.7:6514".into()
                },
                WitnessConfig::Http {
                    url: "https://witness.example/add-checkpoint".into(),
                    token: Some(WitnessToken("s3cret".into())),
                },
                WitnessConfig::Http {
                    url: "https://other.example/add".into(),
                    token: None,
                },
            ]
        );
        assert_eq!(c.ledger.witness_allow.len(), 3);
        assert!(!format!("{c:?}").contains("s3cret"));
        let kinds: Vec<_> = all
            .iter()
            .map(|w| Witness::from_config(w).unwrap().kind())
            .collect();
        assert_eq!(kinds, ["file", "file", "syslog", "http", "http"]);
    }

    #[test]
    fn inline_tables_parse_too() {
        let c = Config::from_toml(
            r#"
[ledger]
witness = [
  { kind = "file", path = "/mnt/b/vigil.checkpoints" },
  { kind = "syslog", address = "[2001:db8::7]:6514" },
]
"#,
        )
        .unwrap();
        assert_eq!(c.ledger.all_witnesses().len(), 2);
        let w = Witness::from_config(&c.ledger.witnesses[1]).unwrap();
        assert_eq!(w.label(), "[2001:db8::7]:6514");
    }

    #[test]
    fn defaults_have_no_witnesses() {
        let c = Config::from_toml("").unwrap();
        assert!(c.ledger.all_witnesses().is_empty());
        assert!(c.ledger.witness_allow.is_empty());
    }

    #[test]
    fn bad_witness_config_is_refused() {
        for (toml, needle) in [
            ("[[ledger.witness]]\nkind = \"ftp\"\npath = \"/x\"\n", "ftp"),
            ("[[ledger.witness]]\nkind = \"file\"\n", "path"),
            (
                "[[ledger.witness]]\nkind = \"file\"\npath = \"/x\"\nurl = \"http://a/\"\n",
                "url",
            ),
            ("[[ledger.witness]]\npath = \"/x\"\n", "kind"),
            ("[ledger]\nwitness_allow = [\"10.0.0.1/8\"]\n", "host bits"),
            ("[ledger]\nwitness_allow = [\"localhost\"]\n", "localhost"),
        ] {
            let e = Config::from_toml(toml).unwrap_err();
            assert!(e.contains(needle), "{toml:?}: {e}");
        }
        for bad in [
            WitnessConfig::Syslog {
                address: "198.51.100.7".into(),
            },
            WitnessConfig::Syslog {
                address: "2001:db8::7:6514".into(),
            },
            WitnessConfig::Syslog {
                address: "host:0".into(),
            },
            WitnessConfig::Http {
                url: "ftp://witness.example/".into(),
                token: None,
            },
            WitnessConfig::Http {
                url: "not a url".into(),
                token: None,
            },
            WitnessConfig::File { path: "".into() },
        ] {
            assert!(Witness::from_config(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http_labels_hide_credentials() {
        let w = Witness::from_config(&WitnessConfig::Http {
            url: "https://user:pw@witness.example/add?key=abc".into(),
            token: Some(WitnessToken("t".into())),
        })
        .unwrap();
        assert_eq!(w.label(), "https://witness.example/add");
    }

    #[test]
    fn syslog_frame_is_octet_counted_rfc5424() {
        let item = Item {
            size: 3,
            time: "2024-05-01T10:00:00.5+02:00".into(),
            json: r#"{"epoch":1,"note":"a\nb\n"}"#.into(),
        };
        let f = syslog_frame(&item, "host1", 42);
        let (len, msg) = f.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert_eq!(
            msg,
            r#"<109>1 2024-05-01T08:00:00.500000Z host1 vigil 42 checkpoint - {"epoch":1,"note":"a\nb\n"}"#
        );
        let h = hostname();
        assert!(!h.is_empty() && !h.contains(' '));
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        for (attempt, secs) in [(0u32, 1.0f64), (1, 2.0), (2, 4.0), (5, 32.0)] {
            let d = backoff(attempt).as_secs_f64();
            assert!(d >= secs * 0.75 && d <= secs * 1.25, "{attempt}: {d}");
        }
        for attempt in [6, 7, 30, u32::MAX] {
            let d = backoff(attempt);
            assert!(d <= MAX_BACKOFF && d >= Duration::from_secs(45), "{d:?}");
        }
    }

    fn record(n: u64) -> CheckpointRecord {
        CheckpointRecord {
            epoch: n,
            note: format!("origin\n{n}\nroot\n\n— sig\n"),
            seal: "00".into(),
            time: "2024-05-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn pushes_to_file_and_syslog_and_flushes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.log");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let receiver = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut len = Vec::new();
            r.read_until(b' ', &mut len).unwrap();
            let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
            let mut msg = vec![0; n];
            r.read_exact(&mut msg).unwrap();
            String::from_utf8(msg).unwrap()
        });
        let mut set = WitnessSet::start(
            &[
                WitnessConfig::File { path: file.clone() },
                WitnessConfig::Syslog {
                    address: addr.to_string(),
                },
            ],
            OutboundPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]),
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        set.publish(&record(7), 7);
        set.finish(Duration::from_secs(10));
        let line = std::fs::read_to_string(&file).unwrap();
        let got: CheckpointRecord = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(got, record(7));
        let msg = receiver.join().unwrap();
        assert!(
            msg.contains(" vigil ") && msg.contains(" checkpoint - {"),
            "{msg}"
        );
        let json = msg.split_once(" checkpoint - ").unwrap().1;
        assert_eq!(
            serde_json::from_str::<CheckpointRecord>(json).unwrap(),
            record(7)
        );
    }

    #[test]
    fn refused_syslog_target_does_not_block_shutdown_long() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut set = WitnessSet::start(
            &[WitnessConfig::Syslog {
                address: addr.to_string(),
            }],
            OutboundPolicy::default(),
        )
        .unwrap();
        set.publish(&record(1), 1);
        let t = std::time::Instant::now();
        set.finish(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_err(), "the refused witness was contacted");
    }

    #[test]
    fn no_witnesses_is_inert() {
        let mut set = WitnessSet::start(&[], OutboundPolicy::default()).unwrap();
        assert!(set.is_empty());
        set.publish(&record(1), 1);
        set.finish(Duration::from_secs(1));
    }
}
