//! Server configuration: embedded defaults, `vigil.toml`, `VIGIL_*`, flags.
//!
//! Precedence, highest first: command-line flags, `VIGIL_*` environment
//! variables, the config file (`--config`, `VIGIL_CONFIG`, or `./vigil.toml`
//! when present), then the defaults below. Flags and environment variables
//! are merged by the CLI before [`Config::apply_overrides`] is called.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything `vigil serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the ledger, metadata database and keys live.
    pub data_dir: PathBuf,
    /// HTTP API settings.
    pub http: HttpConfig,
    /// Syslog input settings.
    pub syslog: SyslogConfig,
    /// Limits applied to every input.
    pub limits: LimitsConfig,
    /// Ledger segment settings.
    pub ledger: LedgerConfig,
    /// Search settings.
    pub search: SearchConfig,
    /// Sigma detection on ingested events.
    pub detection: DetectionConfig,
    /// The built-in behavioural detectors (docs/DETECTIONS.md).
    pub detectors: vigil_detect::Config,
    /// Alert tracking and notification (docs/ALERTS.md).
    pub alerts: vigil_alert::AlertsConfig,
    /// Incident grouping (docs/INCIDENTS.md).
    pub incidents: vigil_incident::IncidentsConfig,
    /// Secrets and personal data removed before storage.
    pub redaction: RedactionConfig,
    /// Sessions, login throttling and self-audit (docs/SECURITY.md).
    pub auth: AuthConfig,
    /// Playbooks and the IP blocklist (docs/PLAYBOOKS.md).
    pub response: vigil_respond::ResponseConfig,
}

/// `[auth]`: browser sessions, login throttling and the self-audit queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Mark the session cookie `Secure` (set when the API is served over TLS).
    pub cookie_secure: bool,
    /// A session unused this long ends.
    pub session_idle_secs: u64,
    /// A session ends this long after login, used or not.
    pub session_absolute_secs: u64,
    /// Most live sessions; the least recently used gives way beyond it.
    pub max_sessions: usize,
    /// Failed logins of one account from one address before that pair is locked.
    pub lock_after_failures: u32,
    /// Failed logins from one address (any accounts) before the address is locked.
    pub source_lock_after_failures: u32,
    /// First lock time in seconds; doubles with each further failure.
    pub lock_base_secs: u64,
    /// Longest lock time in seconds.
    pub lock_max_secs: u64,
    /// Failed logins of one account (all addresses) before its logins are slowed.
    pub account_delay_after_failures: u32,
    /// Longest per-account delay in milliseconds.
    pub account_delay_max_ms: u64,
    /// Failure counts are forgotten after this many seconds without a failure.
    pub failure_memory_secs: u64,
    /// Audit events waiting for the ledger; more are dropped and counted.
    pub audit_queue: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cookie_secure: false,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            max_sessions: 10_000,
            lock_after_failures: 5,
            source_lock_after_failures: 50,
            lock_base_secs: 30,
            lock_max_secs: 15 * 60,
            account_delay_after_failures: 10,
            account_delay_max_ms: 2_000,
            failure_memory_secs: 3600,
            audit_queue: 4096,
        }
    }
}

impl AuthConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&'static str, u64, u64, u64); 11] = [
            (
                "auth.session_idle_secs",
                self.session_idle_secs,
                1,
                7 * 86_400,
            ),
            (
                "auth.session_absolute_secs",
                self.session_absolute_secs,
                1,
                30 * 86_400,
            ),
            ("auth.max_sessions", self.max_sessions as u64, 1, 1_000_000),
            (
                "auth.lock_after_failures",
                self.lock_after_failures.into(),
                1,
                1000,
            ),
            (
                "auth.source_lock_after_failures",
                self.source_lock_after_failures.into(),
                1,
                100_000,
            ),
            ("auth.lock_base_secs", self.lock_base_secs, 1, 86_400),
            ("auth.lock_max_secs", self.lock_max_secs, 1, 86_400),
            (
                "auth.account_delay_after_failures",
                self.account_delay_after_failures.into(),
                1,
                100_000,
            ),
            (
                "auth.account_delay_max_ms",
                self.account_delay_max_ms,
                0,
                10_000,
            ),
            (
                "auth.failure_memory_secs",
                self.failure_memory_secs,
                1,
                7 * 86_400,
            ),
            ("auth.audit_queue", self.audit_queue as u64, 1, 1_000_000),
        ];
        for (key, v, lo, hi) in checks {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("must be {lo}..={hi}"),
                });
            }
        }
        Ok(())
    }

    /// The login throttling policy.
    pub fn lockout_policy(&self) -> crate::lockout::Policy {
        use std::time::Duration;
        crate::lockout::Policy {
            lock_after: self.lock_after_failures,
            source_lock_after: self.source_lock_after_failures,
            lock_base: Duration::from_secs(self.lock_base_secs),
            lock_max: Duration::from_secs(self.lock_max_secs.max(self.lock_base_secs)),
            account_delay_after: self.account_delay_after_failures,
            account_delay_max: Duration::from_millis(self.account_delay_max_ms),
            forget_after: Duration::from_secs(self.failure_memory_secs),
            max_keys: 100_000,
        }
    }
}

/// `[detection]`: Sigma rules evaluated on every event the decoders produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    /// Sigma rule files or directories (searched recursively for
    /// `.yml`/`.yaml`). Empty: detection is off.
    pub rules_dirs: Vec<PathBuf>,
    /// Values for `|expand` placeholders: name (without `%`) → values.
    pub placeholders: std::collections::HashMap<String, Vec<String>>,
    /// How often the rule files are checked for changes (seconds).
    pub reload_secs: u64,
    /// Groups kept per correlation rule; the least recently updated are
    /// evicted beyond it (`vigil_correlation_evictions_total`).
    pub correlation_max_groups: usize,
    /// Events kept per correlation group; the oldest are evicted beyond it.
    pub correlation_max_entries: usize,
    /// Evidence seqs stored with one correlation alert; more are dropped and
    /// the alert is flagged `vigil.alert.evidence_truncated`.
    pub correlation_max_evidence: usize,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address of the API.
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most lines (events) in one ingest request.
    pub max_batch_lines: usize,
    /// Most `GET /api/v1/tail` streams open at once; more get 503.
    pub max_tail_streams: usize,
    /// PEM certificate: when set, the API is served over TLS only (a
    /// self-signed pair is generated here on first start if missing).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA: when set, clients must present a certificate it signed (mTLS).
    pub tls_client_ca: Option<PathBuf>,
}

/// `[syslog]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// Listen address for both UDP and TCP.
    pub listen: SocketAddr,
    /// Listen on UDP.
    pub udp: bool,
    /// Listen on TCP.
    pub tcp: bool,
    /// Most concurrent TCP connections.
    pub max_connections: usize,
    /// Zone for RFC 3164 timestamps without one (IANA name, e.g. `Europe/Berlin`).
    pub timezone: String,
    /// Idle TCP connections are closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// Listen address for syslog over TLS (RFC 5425; usually port 6514).
    /// Unset: no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate for `tls_listen`; default `[http] tls_cert`, else
    /// `DATA_DIR/tls/cert.pem` (generated self-signed when missing).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA: when set, senders must present a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longer messages are cut and flagged `vigil.truncated`.
    pub max_message_bytes: usize,
    /// Deeper JSON is refused.
    pub max_json_depth: usize,
    /// Most fields taken from one structured message.
    pub max_fields: usize,
    /// API requests per second per client address and per credential
    /// (ingest has its own budget; fractions allowed, `0.5` is one request
    /// every two seconds); 0 turns API rate limiting off.
    pub api_requests_per_sec: f64,
    /// API requests one client may make back to back after a pause.
    pub api_burst: u32,
    /// Events per second sent over HTTP per client address and per
    /// credential (fractions allowed); 0 turns ingest rate limiting off.
    pub ingest_events_per_sec: f64,
    /// Events one sender may send back to back after a pause (at least
    /// `http.max_batch_lines`, so a full batch can pass).
    pub ingest_burst_events: u32,
    /// Most addresses and credentials tracked by each rate limiter.
    pub rate_limit_max_keys: usize,
}

/// `[ledger]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Segment size before it is sealed.
    pub segment_max_bytes: u64,
    /// Segment age before it is sealed.
    pub segment_max_age_secs: u64,
    /// zstd level for sealed segments (default 9; level 3 while others wait).
    pub zstd_level: i32,
    /// Bytes of sealed segments left uncompressed until a core is idle
    /// (default 1 GiB; 0 compresses each one as soon as it is sealed).
    pub max_uncompressed_bytes: u64,
    /// When a stored event keeps the received message in `event.original`:
    /// `always` (default) or `unparsed` (not for JSON objects parsed whole).
    pub keep_original: vigil_parse::KeepOriginal,
    /// Compress sealed segments with zstd (default true).
    pub compress_sealed: bool,
    /// A signed checkpoint is made at least this often while events arrive.
    pub checkpoint_interval_secs: u64,
    /// … and after this many events, whichever comes first.
    pub checkpoint_every_events: u64,
    /// Files (on another disk or mount) that every checkpoint is appended to:
    /// shorthand for `[[ledger.witness]]` tables of `kind = "file"`.
    pub witness_files: Vec<PathBuf>,
    /// `[[ledger.witness]]`: where every checkpoint is pushed (see [`crate::witness`]).
    #[serde(rename = "witness")]
    pub witnesses: Vec<WitnessConfig>,
    /// Networks that witnesses may be reached in although they are loopback,
    /// private, link-local or otherwise refused (see [`crate::netguard`]).
    pub witness_allow: Vec<crate::netguard::Cidr>,
    /// Sealed segments whose newest record is older than this many days are
    /// deleted (0: keep forever). See docs/INTEGRITY.md, "Retention".
    pub retention_max_age_days: u64,
    /// The oldest sealed segments are deleted while all segments take more
    /// bytes than this (0: unlimited).
    pub retention_max_bytes: u64,
}

/// One `[[ledger.witness]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum WitnessConfig {
    /// `kind = "file"`: append each checkpoint as a JSON line and fsync.
    File {
        /// The file, e.g. on another disk or mount.
        path: PathBuf,
    },
    /// `kind = "syslog"`: one RFC 5424 message per checkpoint over TCP
    /// (octet-counted framing).
    Syslog {
        /// `host:port` of the receiver.
        address: String,
    },
    /// `kind = "http"`: POST each checkpoint as JSON.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// Sent as `Authorization: Bearer …` when set.
        #[serde(default)]
        token: Option<WitnessToken>,
    },
}

/// A witness's bearer token; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WitnessToken(pub String);

impl std::fmt::Debug for WitnessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WitnessToken(<redacted>)")
    }
}

impl LedgerConfig {
    /// Every configured witness: `witness_files` first, then `[[ledger.witness]]`.
    pub fn all_witnesses(&self) -> Vec<WitnessConfig> {
        self.witness_files
            .iter()
            .map(|p| WitnessConfig::File { path: p.clone() })
            .chain(self.witnesses.iter().cloned())
            .collect()
    }
}

/// `[search]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Largest `limit` a search may ask for.
    pub max_limit: usize,
    /// A search stops after scanning this many events and says it is partial.
    pub max_scan_events: u64,
    /// A search stops after this many seconds and says it is partial.
    pub timeout_secs: u64,
    /// Most events one export (`/api/v1/export`) streams; beyond it the
    /// export ends with a marker saying it was cut.
    pub export_max_events: u64,
    /// Searches and exports running at once; more are answered 429.
    pub max_concurrent: usize,
    /// Keep the search index (`DATA_DIR/index`) up to date and use it to
    /// skip blocks of events that cannot match.
    pub index: bool,
    /// Events per index block: the unit a search skips or reads.
    pub index_block_events: u32,
    /// Blocks per index file; a file is built once all its events are stored.
    pub index_blocks_per_file: u32,
    /// How often the indexer looks again for missing files (and retries a
    /// failed build) when no new file's worth of events has arrived, in
    /// seconds; a newly complete file is built within
    /// [`crate::indexer::WATCH`] either way.
    pub index_interval_secs: u64,
}

impl SearchConfig {
    /// The index layout these settings describe.
    pub fn index_options(&self) -> vigil_index::IndexOptions {
        vigil_index::IndexOptions {
            block_size: self.index_block_events,
            blocks_per_chunk: self.index_blocks_per_file,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./vigil-data"),
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            limits: LimitsConfig::default(),
            ledger: LedgerConfig::default(),
            search: SearchConfig::default(),
            detection: DetectionConfig::default(),
            detectors: vigil_detect::Config::default(),
            alerts: vigil_alert::AlertsConfig::default(),
            incidents: vigil_incident::IncidentsConfig::default(),
            redaction: RedactionConfig::default(),
            auth: AuthConfig::default(),
            response: vigil_respond::ResponseConfig::default(),
        }
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            rules_dirs: Vec::new(),
            placeholders: Default::default(),
            reload_secs: 5,
            correlation_max_groups: 10_000,
            correlation_max_entries: 1_000,
            correlation_max_evidence: 100,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8514".parse().expect("valid default"),
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_lines: 100_000,
            max_tail_streams: 64,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5514".parse().expect("valid default"),
            udp: true,
            tcp: true,
            max_connections: 1024,
            timezone: "UTC".into(),
            idle_timeout_secs: 600,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_json_depth: 32,
            max_fields: 1024,
            api_requests_per_sec: 100.0,
            api_burst: 1000,
            ingest_events_per_sec: 200_000.0,
            ingest_burst_events: 400_000,
            rate_limit_max_keys: 100_000,
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            segment_max_bytes: 64 * 1024 * 1024,
            segment_max_age_secs: 3600,
            zstd_level: 9,
            max_uncompressed_bytes: 1 << 30,
            keep_original: vigil_parse::KeepOriginal::Always,
            compress_sealed: true,
            checkpoint_interval_secs: 60,
            checkpoint_every_events: 1_000_000,
            witness_files: Vec::new(),
            witnesses: Vec::new(),
            witness_allow: Vec::new(),
            retention_max_age_days: 0,
            retention_max_bytes: 0,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            max_limit: 10_000,
            max_scan_events: 50_000_000,
            timeout_secs: 30,
            export_max_events: 1_000_000,
            max_concurrent: 4,
            index: true,
            index_block_events: 4096,
            index_blocks_per_file: 16,
            index_interval_secs: 2,
        }
    }
}

/// `[redaction]`: secrets and personal data removed from events before
/// they are stored (docs/OPERATIONS.md, "Redaction"). On by default for
/// credentials only; personal data is opt-in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Run redaction at all (default true).
    pub enabled: bool,
    /// Built-in detectors (`vigil_parse::redact::Kind` names). Default:
    /// `url_password`, `secret_pair`, `bearer`, `jwt`, `api_key`.
    pub kinds: Vec<String>,
    /// `mask`, `hash` or `drop` for every kind not in `modes`.
    pub mode: String,
    /// Per-kind modes, e.g. `email = "hash"`.
    pub modes: std::collections::BTreeMap<String, String>,
    /// Dotted field paths searched (and everything below them); `["*"]`
    /// means every field. `event.original` is always searched.
    pub fields: Vec<String>,
    /// Only events whose `vigil.source` or `vigil.input` is listed; empty: all.
    pub sources: Vec<String>,
    /// HMAC key for `hash` mode; default `DATA_DIR/keys/redaction.key`,
    /// created (32 random bytes, mode 0600) when missing.
    pub hash_key_file: Option<PathBuf>,
    /// `[[redaction.custom]]`: extra detectors given as regexes.
    pub custom: Vec<CustomRedaction>,
}

/// One `[[redaction.custom]]` detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRedaction {
    /// Kind name in masks and metrics (`[a-z0-9_]{1,32}`).
    pub name: String,
    /// Regex; the whole match is redacted.
    pub pattern: String,
    /// `mask`, `hash` or `drop`; default: `[redaction] mode`.
    pub mode: Option<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            kinds: vigil_parse::redact::Kind::DEFAULT
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            mode: "mask".into(),
            modes: Default::default(),
            fields: vec!["*".into()],
            sources: Vec::new(),
            hash_key_file: None,
            custom: Vec::new(),
        }
    }
}

impl RedactionConfig {
    fn invalid(e: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            key: "redaction",
            message: e.to_string(),
        }
    }

    /// The redaction settings, with `hash_key` as the HMAC key.
    pub fn redact_config(
        &self,
        hash_key: Option<Vec<u8>>,
    ) -> Result<vigil_parse::redact::RedactConfig, ConfigError> {
        use vigil_parse::redact::{CustomPattern, FieldScope, Kind, Mode, RedactConfig};
        let kinds = self
            .kinds
            .iter()
            .map(|k| k.parse::<Kind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(Self::invalid)?;
        let kind_modes = self
            .modes
            .iter()
            .map(|(k, m)| Ok((k.parse::<Kind>()?, m.parse::<Mode>()?)))
            .collect::<Result<Vec<_>, vigil_parse::redact::RedactError>>()
            .map_err(Self::invalid)?;
        let custom = self
            .custom
            .iter()
            .map(|c| {
                Ok(CustomPattern {
                    name: c.name.clone(),
                    pattern: c.pattern.clone(),
                    mode: c.mode.as_deref().map(str::parse).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, vigil_parse::redact::RedactError>>()
            .map_err(Self::invalid)?;
        if self.fields.is_empty() || self.fields.iter().any(|f| f.is_empty()) {
            return Err(ConfigError::Invalid {
                key: "redaction.fields",
                message: "list dotted field paths, or [\"*\"] for every field".into(),
            });
        }
        Ok(RedactConfig {
            kinds,
            mode: self.mode.parse().map_err(Self::invalid)?,
            kind_modes,
            custom,
            fields: if self.fields.iter().any(|f| f == "*") {
                FieldScope::All
            } else {
                FieldScope::Paths(self.fields.clone())
            },
            sources: self.sources.clone(),
            hash_key,
        })
    }

    /// Whether any detector hashes (and so a key file is needed).
    pub fn uses_hash(&self) -> bool {
        self.mode == "hash"
            || self.modes.values().any(|m| m == "hash")
            || self
                .custom
                .iter()
                .any(|c| c.mode.as_deref().unwrap_or(&self.mode) == "hash")
    }

    /// Checks kinds, modes and custom patterns without reading the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        vigil_parse::redact::Redactor::new(self.redact_config(Some(vec![0; 32]))?)
            .map(|_| ())
            .map_err(Self::invalid)
    }

    /// The redactor to run on ingest, `None` when disabled or empty.
    /// Reads (or creates) the HMAC key file when a detector hashes.
    pub fn redactor(
        &self,
        data_dir: &Path,
    ) -> anyhow::Result<Option<vigil_parse::redact::Redactor>> {
        use anyhow::Context;
        if !self.enabled || (self.kinds.is_empty() && self.custom.is_empty()) {
            return Ok(None);
        }
        let key = if self.uses_hash() {
            let path = self
                .hash_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join("keys").join("redaction.key"));
            Some(
                load_or_create_key(&path)
                    .with_context(|| format!("redaction hash key {}", path.display()))?,
            )
        } else {
            None
        };
        Ok(Some(vigil_parse::redact::Redactor::new(
            self.redact_config(key)?,
        )?))
    }
}

/// Reads a secret key file, refusing one that others may read; creates
/// it (32 random bytes, mode 0600) when missing.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(key) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "the file is readable by others (mode {:o}); run chmod 600 on it",
                        mode & 0o777
                    );
                }
            }
            if key.len() < 16 {
                anyhow::bail!("the key must be at least 16 bytes, found {}", key.len());
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path)?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// Values given on the command line or in `VIGIL_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir` / `VIGIL_DATA_DIR`
    pub data_dir: Option<PathBuf>,
    /// `--http` / `VIGIL_HTTP`
    pub http: Option<SocketAddr>,
    /// `--syslog` / `VIGIL_SYSLOG`
    pub syslog: Option<SocketAddr>,
    /// `--timezone` / `VIGIL_TIMEZONE`
    pub timezone: Option<String>,
}

/// A configuration problem, naming the file and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// Dotted key.
        key: &'static str,
        /// Why.
        message: String,
    },
}

impl Config {
    /// Loads `path` if given, else `./vigil.toml` if it exists, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("vigil.toml");
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse { path, message })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies flag/environment overrides on top of the file.
    pub fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(d) = &o.data_dir {
            self.data_dir = d.clone();
        }
        if let Some(a) = o.http {
            self.http.listen = a;
        }
        if let Some(a) = o.syslog {
            self.syslog.listen = a;
        }
        if let Some(tz) = &o.timezone {
            self.syslog.timezone = tz.clone();
        }
    }

    /// Checks values that TOML types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.alerts.validate() {
            return Err(ConfigError::Invalid {
                key: "alerts",
                message: format!("{}: {}", e.key, e.message),
            });
        }
        if let Err(message) = self.incidents.validate() {
            return Err(ConfigError::Invalid {
                key: "incidents",
                message,
            });
        }
        self.auth.validate()?;
        if let Err(message) = self.response.validate() {
            return Err(ConfigError::Invalid {
                key: "response",
                message,
            });
        }
        if let Err(e) = self.detectors.validate() {
            return Err(ConfigError::Invalid {
                key: "detectors",
                message: e.to_string(),
            });
        }
        if self.syslog.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid {
                key: "syslog.timezone",
                message: format!(
                    "unknown time zone {:?} (use an IANA name such as UTC or Europe/Berlin)",
                    self.syslog.timezone
                ),
            });
        }
        if !(256..=16 * 1024 * 1024).contains(&self.limits.max_message_bytes) {
            return Err(ConfigError::Invalid {
                key: "limits.max_message_bytes",
                message: "must be between 256 and 16777216".into(),
            });
        }
        for (key, rate) in [
            (
                "limits.api_requests_per_sec",
                self.limits.api_requests_per_sec,
            ),
            (
                "limits.ingest_events_per_sec",
                self.limits.ingest_events_per_sec,
            ),
        ] {
            if !(0.0..=1e9).contains(&rate) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!(
                        "must be 0 (off) or a rate up to 1000000000 per second, not {rate}"
                    ),
                });
            }
        }
        if self.limits.api_requests_per_sec > 0.0
            && !(1..=1_000_000).contains(&self.limits.api_burst)
        {
            return Err(ConfigError::Invalid {
                key: "limits.api_burst",
                message: "must be 1..=1000000".into(),
            });
        }
        if self.limits.ingest_events_per_sec > 0.0
            && !(self.http.max_batch_lines as u64..=100_000_000)
                .contains(&u64::from(self.limits.ingest_burst_events))
        {
            return Err(ConfigError::Invalid {
                key: "limits.ingest_burst_events",
                message: format!(
                    "must be at least http.max_batch_lines ({}) and at most 100000000",
                    self.http.max_batch_lines
                ),
            });
        }
        if !(1..=10_000_000).contains(&self.limits.rate_limit_max_keys) {
            return Err(ConfigError::Invalid {
                key: "limits.rate_limit_max_keys",
                message: "must be 1..=10000000".into(),
            });
        }
        if self.limits.max_json_depth == 0 || self.limits.max_json_depth > 512 {
            return Err(ConfigError::Invalid {
                key: "limits.max_json_depth",
                message: "must be 1..=512".into(),
            });
        }
        if !(64..=1 << 20).contains(&self.search.index_block_events) {
            return Err(ConfigError::Invalid {
                key: "search.index_block_events",
                message: "must be between 64 and 1048576".into(),
            });
        }
        if !(1..=4096).contains(&self.search.index_blocks_per_file) {
            return Err(ConfigError::Invalid {
                key: "search.index_blocks_per_file",
                message: "must be between 1 and 4096".into(),
            });
        }
        if self.search.max_concurrent == 0 || self.search.max_concurrent > 1024 {
            return Err(ConfigError::Invalid {
                key: "search.max_concurrent",
                message: "must be between 1 and 1024".into(),
            });
        }
        if self.search.timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "search.timeout_secs",
                message: "must be at least 1".into(),
            });
        }
        if self.search.index_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "search.index_interval_secs",
                message: "must be at least 1".into(),
            });
        }
        if self.ledger.segment_max_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid {
                key: "ledger.segment_max_bytes",
                message: "must be at least 65536".into(),
            });
        }
        if self.ledger.retention_max_age_days > 365 * 100 {
            return Err(ConfigError::Invalid {
                key: "ledger.retention_max_age_days",
                message: "must be 0 (keep forever) or at most 36500".into(),
            });
        }
        if self.ledger.retention_max_bytes != 0
            && self.ledger.retention_max_bytes < 2 * self.ledger.segment_max_bytes
        {
            return Err(ConfigError::Invalid {
                key: "ledger.retention_max_bytes",
                message: format!(
                    "must be 0 (unlimited) or at least twice ledger.segment_max_bytes ({})",
                    2 * self.ledger.segment_max_bytes
                ),
            });
        }
        if !(1..=86_400).contains(&self.detection.reload_secs) {
            return Err(ConfigError::Invalid {
                key: "detection.reload_secs",
                message: "must be 1..=86400".into(),
            });
        }
        for (key, v, max) in [
            (
                "detection.correlation_max_groups",
                self.detection.correlation_max_groups,
                10_000_000,
            ),
            (
                "detection.correlation_max_entries",
                self.detection.correlation_max_entries,
                1_000_000,
            ),
            (
                "detection.correlation_max_evidence",
                self.detection.correlation_max_evidence,
                100_000,
            ),
        ] {
            if !(1..=max).contains(&v) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("must be 1..={max}"),
                });
            }
        }
        self.redaction.validate()?;
        self.validate_tls()?;
        if self
            .detection
            .rules_dirs
            .iter()
            .any(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "detection.rules_dirs",
                message: "paths must not be empty".into(),
            });
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        for (key, cert, k, ca) in [
            (
                "http.tls_cert",
                &self.http.tls_cert,
                &self.http.tls_key,
                &self.http.tls_client_ca,
            ),
            (
                "syslog.tls_cert",
                &self.syslog.tls_cert,
                &self.syslog.tls_key,
                &self.syslog.tls_client_ca,
            ),
        ] {
            if cert.is_some() != k.is_some() {
                return Err(ConfigError::Invalid {
                    key,
                    message: "tls_cert and tls_key must be set together".into(),
                });
            }
            if key == "http.tls_cert" && ca.is_some() && cert.is_none() {
                return Err(ConfigError::Invalid {
                    key: "http.tls_client_ca",
                    message: "needs tls_cert and tls_key (client certificates are a TLS feature)"
                        .into(),
                });
            }
        }
        if self.syslog.tls_listen.is_none()
            && (self.syslog.tls_cert.is_some() || self.syslog.tls_client_ca.is_some())
        {
            return Err(ConfigError::Invalid {
                key: "syslog.tls_listen",
                message: "syslog TLS files are set but tls_listen is not (e.g. \"0.0.0.0:6514\")"
                    .into(),
            });
        }
        Ok(())
    }

    /// The HTTP API's TLS files, when it is served over TLS.
    pub fn http_tls(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.http.tls_cert.clone()?,
            key: self.http.tls_key.clone()?,
            client_ca: self.http.tls_client_ca.clone(),
        })
    }

    /// The syslog TLS listener's address and files, when it is on.
    pub fn syslog_tls(&self) -> Option<(SocketAddr, crate::tls::TlsFiles)> {
        let addr = self.syslog.tls_listen?;
        let (cert, key) = match (&self.syslog.tls_cert, &self.syslog.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => match (&self.http.tls_cert, &self.http.tls_key) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                _ => (
                    self.data_dir.join("tls").join("cert.pem"),
                    self.data_dir.join("tls").join("key.pem"),
                ),
            },
        };
        Some((
            addr,
            crate::tls::TlsFiles {
                cert,
                key,
                client_ca: self.syslog.tls_client_ca.clone(),
            },
        ))
    }

    /// The retention policy of `[ledger]`.
    pub fn retention_policy(&self) -> vigil_ledger::RetentionPolicy {
        let l = &self.ledger;
        vigil_ledger::RetentionPolicy {
            max_age: (l.retention_max_age_days > 0)
                .then(|| std::time::Duration::from_secs(l.retention_max_age_days * 86_400)),
            max_bytes: (l.retention_max_bytes > 0).then_some(l.retention_max_bytes),
        }
    }

    /// Parse options derived from this configuration.
    pub fn parse_options(&self) -> vigil_parse::ParseOptions {
        vigil_parse::ParseOptions {
            timezone: self.syslog.timezone.parse().unwrap_or(chrono_tz::Tz::UTC),
            now: None,
            max_message_bytes: self.limits.max_message_bytes,
            max_json_depth: self.limits.max_json_depth,
            max_fields: self.limits.max_fields,
            keep_original: self.ledger.keep_original,
        }
    }

    /// `[ledger] max_uncompressed_bytes`, capped at a quarter of
    /// `retention_max_bytes` when that is set: plain segments take about
    /// four times their compressed size, and a size-bound retention would
    /// otherwise delete old events to make room for a burst's waiting ones.
    pub fn max_uncompressed_bytes(&self) -> u64 {
        match self.ledger.retention_max_bytes {
            0 => self.ledger.max_uncompressed_bytes,
            cap => self.ledger.max_uncompressed_bytes.min(cap / 4),
        }
    }

    /// Ledger options derived from this configuration.
    pub fn ledger_options(&self) -> vigil_ledger::LedgerOptions {
        vigil_ledger::LedgerOptions {
            segment_max_bytes: self.ledger.segment_max_bytes,
            segment_max_age: std::time::Duration::from_secs(self.ledger.segment_max_age_secs),
            compress_sealed: self.ledger.compress_sealed,
            zstd_level: self.ledger.zstd_level,
            max_uncompressed_bytes: self.max_uncompressed_bytes(),
            retention: self.retention_policy(),
        }
    }

    /// The ledger directory.
    pub fn ledger_dir(&self) -> PathBuf {
        self.data_dir.join("ledger")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let mut c =
            Config::from_toml("data_dir = \"/x\"\n[http]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        assert_eq!(c.http.listen.port(), 9000);
        assert_eq!(c.syslog.listen.port(), 5514);
        c.apply_overrides(&Overrides {
            http: Some("127.0.0.1:9001".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(c.http.listen.port(), 9001);
        assert_eq!(c.data_dir, PathBuf::from("/x"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[http]\nlisen = \"x\"\n").unwrap_err();
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn retention_settings() {
        let c = Config::from_toml(
            "[ledger]\nretention_max_age_days = 30\nretention_max_bytes = 1073741824\n",
        )
        .unwrap();
        c.validate().unwrap();
        let p = c.ledger_options().retention;
        assert_eq!(p.max_age, Some(std::time::Duration::from_secs(30 * 86_400)));
        assert_eq!(p.max_bytes, Some(1 << 30));
        assert!(Config::default().retention_policy().keeps_everything());
        // A size-bound retention caps how much may wait uncompressed.
        assert_eq!(c.ledger_options().max_uncompressed_bytes, 1 << 28);
        assert_eq!(
            Config::default().ledger_options().max_uncompressed_bytes,
            1 << 30
        );
        let c = Config::from_toml(
            "[ledger]\nmax_uncompressed_bytes = 0\nretention_max_bytes = 1073741824\n",
        )
        .unwrap();
        assert_eq!(c.ledger_options().max_uncompressed_bytes, 0);
        let mut c = Config::default();
        c.ledger.retention_max_bytes = 1000;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("retention_max_bytes"));
    }

    #[test]
    fn detection_settings() {
        let c = Config::from_toml(
            "[detection]\nrules_dirs = [\"/r\"]\nreload_secs = 2\n[detection.placeholders]\nadmins = [\"root\", \"admin\"]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.detection.rules_dirs, vec![PathBuf::from("/r")]);
        assert_eq!(c.detection.placeholders["admins"].len(), 2);
        assert!(Config::default().detection.rules_dirs.is_empty());
        assert_eq!(Config::default().detection.reload_secs, 5);
        let mut c = Config::default();
        assert_eq!(Config::default().detection.correlation_max_groups, 10_000);
        let c2 = Config::from_toml(
            "[detection]\ncorrelation_max_groups = 5\ncorrelation_max_entries = 7\ncorrelation_max_evidence = 3\n",
        )
        .unwrap();
        assert_eq!(c2.detection.correlation_max_groups, 5);
        assert_eq!(c2.detection.correlation_max_entries, 7);
        assert_eq!(c2.detection.correlation_max_evidence, 3);
        let mut c3 = Config::default();
        c3.detection.correlation_max_entries = 0;
        assert!(c3.validate().is_err());
        c.detection.reload_secs = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("reload_secs"));
    }

    #[test]
    fn redaction_settings() {
        let c = Config::default();
        c.validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = c.redaction.redactor(dir.path()).unwrap().unwrap();
        assert!(r.kinds().any(|k| k == "secret_pair"));
        assert!(!r.kinds().any(|k| k == "email"));
        let c = Config::from_toml(
            "[redaction]\nkinds = [\"email\"]\nmode = \"hash\"\n[redaction.modes]\nemail = \"mask\"\n[[redaction.custom]]\nname = \"emp\"\npattern = \"EMP-[0-9]+\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.redaction.uses_hash());
        c.redaction.redactor(dir.path()).unwrap().unwrap();
        let key = dir.path().join("keys/redaction.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = c.redaction.redactor(dir.path()).unwrap_err();
            assert!(format!("{e:#}").contains("chmod 600"), "{e:#}");
        }
        for bad in [
            "[redaction]\nkinds = [\"emails\"]\n",
            "[redaction]\nmode = \"erase\"\n",
            "[redaction]\nfields = []\n",
            "[[redaction.custom]]\nname = \"x\"\npattern = \"(\"\n",
        ] {
            let e = Config::from_toml(bad).unwrap().validate().unwrap_err();
            assert!(e.to_string().contains("redaction"), "{e}");
        }
        let off = Config::from_toml("[redaction]\nenabled = false\n").unwrap();
        assert!(off.redaction.redactor(dir.path()).unwrap().is_none());
    }

    #[test]
    fn tls_settings() {
        let c = Config::from_toml("data_dir = \"/d\"\n[syslog]\ntls_listen = \"127.0.0.1:6514\"\n")
            .unwrap();
        c.validate().unwrap();
        assert!(c.http_tls().is_none());
        let (addr, files) = c.syslog_tls().unwrap();
        assert_eq!(addr.port(), 6514);
        assert_eq!(files.cert, PathBuf::from("/d/tls/cert.pem"));
        let c = Config::from_toml(
            "[http]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\ntls_client_ca = \"/ca.pem\"\n[syslog]\ntls_listen = \"127.0.0.1:6514\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.http_tls().unwrap().client_ca, Some("/ca.pem".into()));
        // syslog reuses the API's certificate, not its client CA.
        let (_, files) = c.syslog_tls().unwrap();
        assert_eq!(files.cert, PathBuf::from("/c.pem"));
        assert_eq!(files.client_ca, None);
        for (bad, key) in [
            ("[http]\ntls_cert = \"/c.pem\"\n", "http.tls_cert"),
            (
                "[http]\ntls_client_ca = \"/ca.pem\"\n",
                "http.tls_client_ca",
            ),
            (
                "[syslog]\ntls_cert = \"/c\"\ntls_key = \"/k\"\n",
                "syslog.tls_listen",
            ),
        ] {
            let e = Config::from_toml(bad).unwrap().validate().unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn bad_timezone() {
        let mut c = Config::default();
        c.syslog.timezone = "Mars/Olympus".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("Mars/Olympus"));
    }
}
