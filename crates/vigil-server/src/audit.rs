//! Self-audit: Vigil records its own security events (logins, token and user
//! changes, refusals, searches) in its own ledger.
//!
//! Audit events take the same road as HTTP ingest: they are stamped, run
//! through the Sigma rules and the built-in detectors, and handed to the
//! ledger writer, so they get sequence numbers, Merkle proofs and alerts
//! like any other event. A request never waits for its audit write: records
//! go into a bounded queue that one task drains in batches. When the queue
//! is full the record is dropped, counted in `vigil_audit_dropped_total`
//! and logged, never silently lost.
//!
//! Names follow the OWASP Logging Vocabulary (`authn_login_fail`, …) in
//! `event.action`; `vigil.input` is `audit`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use vigil_event::{fields, Event};
use vigil_ingest::InputKind;

use crate::auth::Principal;
use crate::pipeline::{PipelineHandle, Prepared};

/// `event.action` of a search's audit event.
pub const SEARCH_ACTION: &str = "data_search";

/// Events one ledger write takes from the queue at most.
const BATCH: usize = 256;

/// `event.category` of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Logins, logouts, sessions, tokens used.
    Authentication,
    /// Users, roles and tokens managed; authorization refusals.
    Iam,
    /// Searches (data access).
    Database,
}

impl Category {
    fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Iam => "iam",
            Category::Database => "database",
        }
    }
}

/// One audit record, before it becomes an event.
#[derive(Debug, Clone)]
pub struct Record {
    /// OWASP vocabulary name, e.g. `authn_login_fail`.
    pub action: &'static str,
    /// ECS category.
    pub category: Category,
    /// `success` or `failure`.
    pub success: bool,
    /// The acting (or attempted) user.
    pub user: Option<String>,
    /// The client address.
    pub source: Option<IpAddr>,
    /// Why (for failures), without secrets.
    pub reason: Option<String>,
    /// The account acted on (user and role changes).
    pub target: Option<String>,
    /// Further fields (`vigil.token.id`, `vigil.search.query`, …).
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl Record {
    /// A record with the required parts; the rest is filled with the builders.
    pub fn new(action: &'static str, category: Category, success: bool) -> Record {
        Record {
            action,
            category,
            success,
            user: None,
            source: None,
            reason: None,
            target: None,
            extra: Vec::new(),
        }
    }

    /// Sets the acting user.
    pub fn user(mut self, u: impl Into<String>) -> Self {
        self.user = Some(u.into());
        self
    }

    /// Sets the client address.
    pub fn source(mut self, s: Option<IpAddr>) -> Self {
        self.source = s;
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }

    /// Sets the account acted on.
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }

    /// Adds a field.
    pub fn with(mut self, key: &'static str, v: impl Into<serde_json::Value>) -> Self {
        self.extra.push((key, v.into()));
        self
    }

    /// Sets user and source from the request context, when there is one.
    pub fn from_context(mut self, ctx: Option<&RequestContext>) -> Self {
        if let Some(c) = ctx {
            self.user = Some(c.principal.user.clone());
            self.source = c.source;
        }
        self
    }

    /// The ledger event.
    pub fn to_event(&self) -> Event {
        let mut ev = Event::new();
        ev.set(fields::EVENT_KIND, "event");
        ev.set(fields::EVENT_DATASET, "vigil.audit");
        ev.set("event.module", "vigil");
        ev.push(fields::EVENT_CATEGORY, self.category.as_str());
        ev.set(fields::EVENT_ACTION, self.action);
        ev.set(
            fields::EVENT_OUTCOME,
            if self.success { "success" } else { "failure" },
        );
        if let Some(r) = &self.reason {
            ev.set(fields::EVENT_REASON, r.clone());
        }
        if let Some(u) = &self.user {
            ev.set(fields::USER_NAME, u.clone());
        }
        if let Some(t) = &self.target {
            ev.set("user.target.name", t.clone());
        }
        if let Some(s) = self.source {
            ev.set("source.ip", s.to_string());
        }
        for (k, v) in &self.extra {
            ev.set(k, v.clone());
        }
        let mut msg = format!(
            "{} ({}) by {}",
            self.action,
            if self.success { "success" } else { "failure" },
            self.user.as_deref().unwrap_or("-")
        );
        if let Some(s) = self.source {
            msg.push_str(&format!(" from {s}"));
        }
        if let Some(t) = &self.target {
            msg.push_str(&format!(" on {t}"));
        }
        if let Some(r) = &self.reason {
            msg.push_str(&format!(": {r}"));
        }
        ev.set(fields::MESSAGE, msg);
        ev
    }
}

/// Who is making the current request, for audit calls deep in handlers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The authenticated principal.
    pub principal: Principal,
    /// The client address.
    pub source: Option<IpAddr>,
}

tokio::task_local! {
    /// Set by the authorization middleware around every authenticated request.
    pub static CONTEXT: RequestContext;
}

/// The current request's context, if the call runs inside one.
pub fn context() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// Records audit events into the ledger without blocking callers.
pub struct Auditor {
    tx: mpsc::Sender<Event>,
    name_key: [u8; 32],
    dropped: std::sync::atomic::AtomicU64,
}

impl Auditor {
    /// Starts the audit writer task over the pipeline. `capacity` bounds the
    /// queue; `name_key` keys the hash of unknown login names.
    pub fn start(
        pipeline: Arc<PipelineHandle>,
        detection: Option<Arc<crate::detection::Detection>>,
        detectors: Option<vigil_detect::Config>,
        capacity: usize,
        name_key: [u8; 32],
    ) -> Arc<Auditor> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(drain(rx, pipeline, detection, detectors));
        Arc::new(Auditor {
            tx,
            name_key,
            dropped: Default::default(),
        })
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: Record) {
        let ev = r.to_event();
        if let Err(e) = self.tx.try_send(ev) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            metrics::counter!("vigil_audit_dropped_total", "reason" => why).increment(1);
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(action = r.action, user = ?r.user, reason = why, "audit event dropped");
        }
    }

    /// Records refused at the queue since start (also in `vigil_audit_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The name to store for a failed login: the name itself when it names
    /// an existing user, otherwise a keyed hash (`unknown:` + 16 hex digits),
    /// because people type passwords into the user field and an unknown
    /// name is often one.
    pub fn login_name(&self, typed: &str, exists: bool) -> String {
        if exists {
            return typed.to_owned();
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.name_key)
            .expect("HMAC accepts any key length");
        mac.update(typed.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("unknown:{}", hex::encode(&tag[..8]))
    }
}

/// Records that a search ran, on behalf of `ctx` (captured when the
/// request started: the search ends on another thread, maybe after its
/// client went away); `ended` says why it stopped early, if it did.
pub fn searched_in(
    auditor: &Auditor,
    ctx: Option<&RequestContext>,
    query: &str,
    results: u64,
    ended: Option<&str>,
) {
    auditor.record(search_record(ctx, query, results, ended));
}

/// Records that an export ended, like [`searched_in`], with its format;
/// `rows` were sent.
pub fn exported(
    auditor: &Auditor,
    ctx: Option<&RequestContext>,
    query: &str,
    format: &str,
    rows: u64,
    ended: Option<&str>,
) {
    auditor.record(search_record(ctx, query, rows, ended).with("vigil.search.export", format));
}

/// The audit record of a search or export.
fn search_record(
    ctx: Option<&RequestContext>,
    query: &str,
    results: u64,
    ended: Option<&str>,
) -> Record {
    let cut: String = query.chars().take(1024).collect();
    let r = Record::new(SEARCH_ACTION, Category::Database, true)
        .from_context(ctx)
        .with("vigil.search.query", cut)
        .with("vigil.search.results", results);
    match ended {
        Some(why) => r.reason(why),
        None => r,
    }
}

async fn drain(
    mut rx: mpsc::Receiver<Event>,
    pipeline: Arc<PipelineHandle>,
    detection: Option<Arc<crate::detection::Detection>>,
    detectors: Option<vigil_detect::Config>,
) {
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        let rules = detection
            .as_ref()
            .map(|d| d.current())
            .filter(|r| !r.is_empty());
        let now = SystemTime::now();
        let events: Vec<Prepared> = buf
            .drain(..)
            .map(|mut ev| {
                crate::pipeline::stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
                ev.set(fields::VIGIL_INPUT, "audit");
                let mut p = Prepared::new(&ev);
                // A search event carries the analyst's query text: a keyword
                // rule for "mimikatz" must not fire because someone searched
                // for mimikatz.
                let is_search = ev.get_str(fields::EVENT_ACTION) == Some(SEARCH_ACTION);
                if let (Some(r), false) = (&rules, is_search) {
                    p.alerts = r.evaluate(&ev);
                }
                p.observation = crate::pipeline::observe(&ev, detectors.as_ref());
                p
            })
            .collect();
        let n = events.len() as u64;
        if let Err(e) = pipeline
            .write_durable(events, vec![("vigil".into(), n)], InputKind::Internal)
            .await
        {
            metrics::counter!("vigil_audit_dropped_total", "reason" => "write failed").increment(n);
            tracing::error!(error = %e, events = n, "audit events were not stored");
        }
    }
}

/// Reads (creating on first use, mode 0600) the key for hashing unknown login names.
pub fn load_name_key(data_dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = data_dir.join("audit-name.key");
    match std::fs::read(&path) {
        Ok(b) if b.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&b);
            Ok(k)
        }
        Ok(b) => Err(std::io::Error::other(format!(
            "{} holds {} bytes, expected 32",
            path.display(),
            b.len()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut k = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut k);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write;
            let mut f = opts.open(&path)?;
            f.write_all(&k)?;
            f.sync_all()?;
            Ok(k)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let ev = Record::new("authn_login_fail", Category::Authentication, false)
            .user("admin")
            .source(Some("10.0.0.5".parse().unwrap()))
            .reason("bad password")
            .to_event();
        assert_eq!(ev.get_str("event.action"), Some("authn_login_fail"));
        assert_eq!(ev.get_str("event.outcome"), Some("failure"));
        assert_eq!(ev.get_str("user.name"), Some("admin"));
        assert_eq!(ev.get_str("source.ip"), Some("10.0.0.5"));
        assert_eq!(
            ev.get("event.category"),
            Some(&serde_json::json!(["authentication"]))
        );
        // The detectors see it as a failed login of admin from 10.0.0.5.
        let cfg = vigil_detect::Config::default();
        let obs = crate::pipeline::observe(&ev, Some(&cfg));
        // No @timestamp yet: stamped by the writer task; stamp here.
        assert!(obs.is_none());
        let mut ev = ev;
        crate::pipeline::stamp(
            &mut ev,
            InputKind::Internal,
            Some("vigil"),
            SystemTime::now(),
        );
        let obs = crate::pipeline::observe(&ev, Some(&cfg)).expect("an authentication observation");
        assert_eq!(obs.user.as_deref(), Some("admin"));
        assert_eq!(obs.source.as_deref(), Some("10.0.0.5"));
    }

    #[test]
    fn ten_failed_logins_make_a_brute_force_alert() {
        let cfg = vigil_detect::Config::default();
        let mut det = vigil_detect::Detectors::new(cfg.clone());
        let mut alerts = Vec::new();
        for seq in 0..10u64 {
            let mut ev = Record::new("authn_login_fail", Category::Authentication, false)
                .user("alice")
                .source(Some("127.0.0.1".parse().unwrap()))
                .to_event();
            crate::pipeline::stamp(
                &mut ev,
                InputKind::Internal,
                Some("vigil"),
                SystemTime::now(),
            );
            let obs = crate::pipeline::observe(&ev, Some(&cfg)).expect("observed");
            alerts.extend(det.feed(&obs, seq));
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].detector.id(), "vigil.brute_force");
    }

    #[test]
    fn unknown_names_are_hashed_with_a_stable_key() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_name_key(dir.path()).unwrap();
        let k2 = load_name_key(dir.path()).unwrap();
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("audit-name.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (tx, _rx) = mpsc::channel(1);
        let a = Auditor {
            tx,
            name_key: k1,
            dropped: Default::default(),
        };
        assert_eq!(a.login_name("admin", true), "admin");
        let h = a.login_name("hunter2hunter2", false);
        assert!(h.starts_with("unknown:") && !h.contains("hunter2"), "{h}");
        assert_eq!(h, a.login_name("hunter2hunter2", false));
        // A full queue drops and counts instead of blocking.
        a.record(Record::new("x", Category::Iam, true));
        assert_eq!(a.dropped(), 0);
        a.record(Record::new("y", Category::Iam, true));
        a.record(Record::new("z", Category::Iam, true));
        assert_eq!(a.dropped(), 2);
    }
}
