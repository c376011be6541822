//! The Vigil server: wiring, configuration, HTTP API, authentication, metrics.
//!
//! [`start`] opens the data directory (ledger and metadata database), starts
//! the [`pipeline`] (decoder threads and the ledger writer), binds the syslog
//! inputs from `vigil-ingest` and the HTTP API in [`http`], and returns a
//! [`Running`] server with its bound addresses. Business logic lives in the
//! crates below; this crate only connects them.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let mut config = vigil_server::config::Config::default();
//! config.data_dir = "/tmp/vigil-example".into();
//! let server = vigil_server::start(config, vigil_server::StartOptions::default()).await?;
//! println!("HTTP on {}", server.http_addr);
//! server.wait().await?;
//! # Ok(()) }
//! ```

pub mod alerting;
pub mod audit;
pub mod audit_spool;
pub mod auth;
pub mod authz;
pub mod checkpoints;
pub mod config;
pub mod detection;
pub mod http;
pub mod incidents;
pub mod indexer;
pub mod limits;
pub mod lockout;
pub mod meta;
pub use vigil_alert::netguard;
pub mod pipeline;
pub mod playbooks;
pub mod ratelimit;
pub mod sequence;
pub mod sessions;
pub mod tls;
pub mod users;
pub mod witness;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Config;
use crate::pipeline::PipelineHandle;

/// How the server announces itself and bootstraps its admin token.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// `VIGIL_ADMIN_TOKEN`: registered as the admin token when set.
    pub admin_token: Option<String>,
}

/// A started server.
pub struct Running {
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound syslog UDP address.
    pub syslog_udp_addr: Option<SocketAddr>,
    /// Bound syslog TCP address.
    pub syslog_tcp_addr: Option<SocketAddr>,
    /// Bound syslog-over-TLS address.
    pub syslog_tls_addr: Option<SocketAddr>,
    /// Whether the HTTP API is served over TLS.
    pub http_tls: bool,
    /// SHA-256 fingerprints of the TLS certificates in use at start
    /// (`(what, fingerprint)`), and whether this start generated them.
    pub tls_fingerprints: Vec<(&'static str, String, bool)>,
    /// A freshly generated admin token, when this start created one.
    pub new_admin_token: Option<String>,
    /// The checkpoint verifier key (`name+hash+base64`).
    pub verifier_key: String,
    /// Created on this start: the verifier key and the initial seal key, to show once.
    pub new_integrity_secrets: Option<vigil_ledger::integrity::InitSecrets>,
    /// Highest durable sequence number at start.
    pub recovered_seq: u64,
    /// Bytes cut from a torn ledger tail during recovery.
    pub recovered_truncated_bytes: u64,
    /// The pipeline.
    pub pipeline: Arc<PipelineHandle>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    syslog_task: tokio::task::JoinHandle<()>,
    syslog_tls_task: Option<tokio::task::JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    writer: std::thread::JoinHandle<()>,
}

impl Running {
    /// Runs until SIGINT/SIGTERM, then shuts down cleanly.
    pub async fn wait(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }

    /// Stops accepting input, commits everything received, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.syslog_task.abort();
        let _ = self.syslog_task.await;
        if let Some(t) = self.syslog_tls_task {
            t.abort();
            let _ = t.await;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.http_task).await;
        self.pipeline.shutdown().await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.join())
            .await?
            .ok();
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Installs the Prometheus recorder once per process.
pub fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &buckets,
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe_metrics();
            Some(handle)
        })
        .clone()
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("vigil_input_received_total", "Messages received, by input");
    describe_counter!(
        "vigil_input_rejected_total",
        "Messages refused at input (bad JSON, over limits), by input"
    );
    describe_counter!(
        "vigil_input_framing_errors_total",
        "TCP streams closed for a framing error"
    );
    describe_counter!(
        "vigil_input_connections_refused_total",
        "TCP connections refused over the limit"
    );
    describe_gauge!("vigil_input_connections", "Open TCP connections");
    describe_counter!(
        "vigil_decoder_parsed_total",
        "Messages decoded into events, by input"
    );
    describe_counter!(
        "vigil_decoder_failed_total",
        "Messages stored raw with vigil.parse_error, by input"
    );
    describe_counter!(
        "vigil_ledger_stored_total",
        "Events durably stored, by input"
    );
    describe_counter!(
        "vigil_ledger_write_errors_total",
        "Events lost to ledger write errors, by input"
    );
    describe_gauge!(
        "vigil_ledger_durable_seq",
        "Highest durable sequence number"
    );
    describe_gauge!(
        "vigil_ledger_segments",
        "Ledger segment files, the open one included"
    );
    describe_gauge!(
        "vigil_ledger_segments_compressed",
        "Sealed, compressed ledger segments"
    );
    describe_gauge!("vigil_ledger_bytes", "Bytes of all ledger segment files");
    describe_gauge!(
        "vigil_ledger_compression_pending",
        "Sealed plain segments waiting for or under compression"
    );
    describe_gauge!(
        "vigil_ledger_segments_provisional",
        "Segments compressed fast under load, waiting to be compressed again at the configured level"
    );
    describe_counter!(
        "vigil_ledger_compressions_total",
        "Sealed segments compressed since start"
    );
    describe_counter!(
        "vigil_ledger_compressions_fast_total",
        "Of those, compressed at a faster level than configured because others were waiting"
    );
    describe_counter!(
        "vigil_ledger_refinements_total",
        "Provisional segments compressed again at the configured level since start"
    );
    describe_counter!(
        "vigil_ledger_compression_errors_total",
        "Failed compressions since start (the plain segment is kept)"
    );
    describe_gauge!(
        "vigil_pipeline_queue_depth",
        "Batches waiting for the decoders and the writer"
    );
    describe_histogram!(
        "vigil_ledger_fsync_seconds",
        "Time to write and fsync one group commit"
    );
    describe_counter!("vigil_http_requests_total", "HTTP API requests, by route");
    describe_counter!(
        "vigil_witness_pushes_total",
        "Checkpoints pushed to a witness, by witness kind and target"
    );
    describe_counter!(
        "vigil_witness_push_failures_total",
        "Failed checkpoint pushes (each retry counts), by witness kind and target"
    );
    describe_gauge!(
        "vigil_witness_last_success_seq",
        "Size of the newest checkpoint a witness received, by witness kind and target"
    );
    describe_gauge!(
        "vigil_witness_pending",
        "Witnesses that have not yet received the newest checkpoint"
    );
    describe_gauge!(
        "vigil_detection_rules_loaded",
        "Sigma rules currently loaded (including unroutable Windows rules)"
    );
    describe_counter!(
        "vigil_detection_matches_total",
        "Sigma rule matches (alert events raised)"
    );
    describe_counter!(
        "vigil_detection_reloads_total",
        "Sigma rule (re)loads, by result: ok, partial (a path unreadable), kept (old rules kept)"
    );
    describe_counter!(
        "vigil_detector_alerts_total",
        "Alerts raised by the built-in detectors, by detector"
    );
    describe_counter!(
        "vigil_detector_evictions_total",
        "Keys a built-in detector dropped because it tracked max_keys keys, by detector"
    );
    describe_counter!(
        "vigil_detector_late_total",
        "Events a built-in detector ignored as older than their key's window, by detector"
    );
    describe_counter!("vigil_alerts_total", "Alerts opened (repeats are grouped)");
    describe_counter!(
        "vigil_alerts_suppressed_total",
        "Alert sightings a suppression rule matched (still recorded)"
    );
    describe_counter!(
        "vigil_alerts_throttled_total",
        "Alert notifications a route's throttle held back, by route"
    );
    describe_counter!(
        "vigil_alerts_dropped_total",
        "Committed alert events not handed to the alert engine (its queue was full; read back from the ledger)"
    );
    describe_counter!(
        "vigil_deliveries_total",
        "Alert delivery attempts, by channel and state (delivered, failed, dead)"
    );
    describe_gauge!(
        "vigil_deliveries_dead",
        "Alert deliveries that gave up after their last attempt"
    );
    describe_gauge!("vigil_incidents", "Incidents, by status");
    describe_counter!(
        "vigil_incident_alerts_observed_total",
        "Grouping policy runs on created, raised or swept alerts, by result: grouped (into an incident) or ignored"
    );
    describe_counter!(
        "vigil_incident_handovers_dropped_total",
        "Created or raised alerts not handed to incident grouping (its queue was full)"
    );
    describe_counter!(
        "vigil_playbook_actions_total",
        "Playbook actions run, by action and outcome (ok, skipped, failed)"
    );
    describe_counter!(
        "vigil_playbook_alerts_dropped_total",
        "Newly opened alerts not responded to because the playbook queue was full"
    );
    describe_counter!(
        "vigil_tls_reloads_total",
        "TLS certificate reloads after the PEM files changed, by result"
    );
    describe_counter!(
        "vigil_input_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out, by input"
    );
    describe_counter!(
        "vigil_redactions_total",
        "Secrets and personal data redacted before storage, by kind"
    );
    describe_counter!(
        "vigil_http_unauthorized_total",
        "HTTP requests refused for a missing or bad token or session"
    );
    describe_counter!(
        "vigil_http_forbidden_total",
        "HTTP requests refused by the authorization table or the CSRF check"
    );
    describe_counter!(
        "vigil_audit_dropped_total",
        "Self-audit events not stored (queue full or ledger write failed), by reason"
    );
}

/// Opens the search index and starts keeping it up to date, unless
/// `search.index` is off.
fn start_indexer(
    config: &Config,
    pipeline: &Arc<PipelineHandle>,
) -> anyhow::Result<Option<Arc<indexer::Indexer>>> {
    if !config.search.index {
        return Ok(None);
    }
    let ix = Arc::new(indexer::Indexer::open(
        &config.data_dir,
        &config.ledger_dir(),
        config.search.index_options(),
    )?);
    let weak = Arc::downgrade(pipeline);
    indexer::Indexer::spawn(
        &ix,
        move || weak.upgrade().map_or(0, |p| p.durable_seq()),
        std::time::Duration::from_secs(config.search.index_interval_secs),
    )
    .context("starting the search indexer")?;
    Ok(Some(ix))
}

/// Creates the data directory (owner-only) if needed.
pub fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Opens the ledger's notary (keys under `DATA_DIR/keys`), creating keys on first use.
pub fn open_notary(
    config: &Config,
) -> anyhow::Result<(
    vigil_ledger::integrity::Notary,
    Option<vigil_ledger::integrity::InitSecrets>,
)> {
    vigil_ledger::integrity::Notary::open_or_init(
        &config.data_dir.join("keys"),
        &config.ledger_dir(),
    )
    .context("opening the ledger signing keys")
}

/// The rustls configuration for `files`, generating a self-signed pair
/// first when neither file exists; notes the fingerprint for the banner.
fn tls_config(
    files: &tls::TlsFiles,
    alpn: &[&[u8]],
    what: &'static str,
    fingerprints: &mut Vec<(&'static str, String, bool)>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let generated = tls::ensure_certificate(files)
        .with_context(|| format!("preparing the {what} TLS certificate"))?;
    if let Some(fp) = &generated {
        tracing::warn!(cert = %files.cert.display(), fingerprint = %fp, "generated a self-signed TLS certificate for {what}; clients must trust this fingerprint");
    }
    let cfg = tls::server_config(files, alpn)
        .with_context(|| format!("loading the {what} TLS certificate"))?;
    let fp = tls::file_fingerprint(&files.cert)?;
    fingerprints.push((what, fp, generated.is_some()));
    Ok(cfg)
}

/// Starts the server.
pub async fn start(config: Config, opts: StartOptions) -> anyhow::Result<Running> {
    config.validate()?;
    prepare_data_dir(&config)?;
    let metrics = install_metrics();
    let mut tls_fingerprints = Vec::new();
    let http_tls = match config.http_tls() {
        Some(files) => Some(tls_config(
            &files,
            &[b"http/1.1"],
            "HTTP",
            &mut tls_fingerprints,
        )?),
        None => None,
    };
    let syslog_tls = match config.syslog_tls() {
        Some((addr, files)) => Some((
            addr,
            tls_config(&files, &[], "syslog", &mut tls_fingerprints)?,
        )),
        None => None,
    };

    let ledger = vigil_ledger::Ledger::open(&config.ledger_dir(), config.ledger_options())
        .with_context(|| format!("opening the ledger in {}", config.ledger_dir().display()))?;
    let recovered_seq = ledger.durable_seq();
    let recovered_truncated_bytes = ledger.recovery().truncated_bytes;

    let tokens = Arc::new(auth::TokenStore::new(
        meta::open(&config.data_dir).context("opening the metadata database")?,
    ));
    let mut new_admin_token = None;
    if let Some(t) = &opts.admin_token {
        tokens.add(t, "admin (VIGIL_ADMIN_TOKEN)", "admin")?;
    } else if tokens.active()? == 0 {
        let t = auth::generate_token();
        tokens.add(&t, "admin", "admin")?;
        new_admin_token = Some(t);
    }

    let (notary, new_integrity_secrets) = open_notary(&config)?;
    let verifier_key = notary.verifier().to_string();
    let checkpointer = checkpoints::Checkpointer::new(
        notary,
        std::time::Duration::from_secs(config.ledger.checkpoint_interval_secs),
        config.ledger.checkpoint_every_events,
        witness::WitnessSet::start(
            &config.ledger.all_witnesses(),
            netguard::OutboundPolicy::new(config.ledger.witness_allow.clone()),
        )?,
    );

    let detection = detection::Detection::new(&config.detection);
    detection::Detection::spawn_reloader(&detection).context("starting the rules reloader")?;

    let decoders = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (alert_sink, alert_feed) = alerting::channel();
    let (pipeline, writer) = pipeline::start(
        ledger,
        checkpointer,
        &config.data_dir,
        config.parse_options(),
        decoders,
        detection.enabled().then(|| detection.clone()),
        Some(config.detectors.clone()),
        config.alerts.is_enabled().then_some(alert_sink),
        config
            .redaction
            .redactor(&config.data_dir)
            .context("setting up [redaction]")?
            .map(Arc::new),
    )
    .context("starting the event pipeline")?;
    let (shutdown, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let (trigger, playbook_feed) = playbooks::channel();
    let alerts = alerting::start(
        &config,
        pipeline.clone(),
        alert_feed,
        shutdown.subscribe(),
        Some(trigger),
    )?;
    let incidents = incidents::start(&config, pipeline.clone(), alerts.as_ref())?;

    let indexer = start_indexer(&config, &pipeline)?;
    let playbooks = playbooks::start(
        &config,
        pipeline.clone(),
        alerts.clone(),
        indexer.clone(),
        incidents.clone(),
        playbook_feed,
        shutdown.subscribe(),
    )?;

    let limits = vigil_ingest::InputLimits {
        max_message_bytes: config.limits.max_message_bytes,
        max_tcp_connections: config.syslog.max_connections,
        max_batch: 1024,
        tcp_idle_timeout: std::time::Duration::from_secs(config.syslog.idle_timeout_secs),
    };
    let syslog =
        vigil_ingest::bind_syslog(config.syslog.listen, config.syslog.udp, config.syslog.tcp)
            .await
            .with_context(|| format!("binding syslog on {}", config.syslog.listen))?;
    let syslog_udp_addr = syslog.udp_addr();
    let syslog_tcp_addr = syslog.tcp_addr();
    let syslog_task = tokio::spawn(syslog.serve(pipeline.clone(), limits.clone()));
    let (syslog_tls_addr, syslog_tls_task) = match syslog_tls {
        Some((addr, cfg)) => {
            let l = vigil_ingest::bind_syslog_tls(addr, cfg.into())
                .await
                .with_context(|| format!("binding syslog TLS on {addr}"))?;
            (
                Some(l.local_addr()?),
                Some(tokio::spawn(l.serve(pipeline.clone(), limits))),
            )
        }
        None => (None, None),
    };

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let identity = Arc::new(auth::Identity {
        sessions: sessions::SessionStore::new(
            std::time::Duration::from_secs(config.auth.session_idle_secs),
            std::time::Duration::from_secs(config.auth.session_absolute_secs),
            config.auth.max_sessions,
        ),
        lockout: lockout::Lockout::new(config.auth.lockout_policy()),
        audit: audit::Auditor::start(
            pipeline.clone(),
            detection.enabled().then(|| detection.clone()),
            Some(config.detectors.clone()),
            config.auth.audit_queue,
            audit::load_name_key(&config.data_dir).context("reading the audit name key")?,
        ),
        config: config.auth.clone(),
    });
    tokio::spawn(audit_spool::run(config.data_dir.clone(), pipeline.clone()));
    let state = Arc::new(http::AppState {
        identity,
        rate: Arc::new(ratelimit::RateLimits::from_config(&config.limits)),
        tail_streams: Arc::new(tokio::sync::Semaphore::new(config.http.max_tail_streams)),
        searches: Arc::new(http::RunningSearches::new(config.search.max_concurrent)),
        config,
        pipeline: pipeline.clone(),
        tokens,
        metrics,
        detection,
        indexer,
        alerts,
        playbooks,
        incidents,
    });
    let app = http::router(state);
    let serves_tls = http_tls.is_some();
    let http_task = match http_tls {
        None => tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<http::ClientAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.wait_for(|v| *v).await;
            })
            .await
        }),
        Some(cfg) => {
            let listener = tls::TlsListener::new(listener, cfg)?;
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<http::ClientAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = shutdown_rx.wait_for(|v| *v).await;
                })
                .await
            })
        }
    };

    Ok(Running {
        http_addr,
        syslog_udp_addr,
        syslog_tcp_addr,
        syslog_tls_addr,
        http_tls: serves_tls,
        tls_fingerprints,
        new_admin_token,
        verifier_key,
        new_integrity_secrets,
        recovered_seq,
        recovered_truncated_bytes,
        pipeline,
        http_task,
        syslog_task,
        syslog_tls_task,
        shutdown,
        writer,
    })
}
