//! The event pipeline: decoders, then the ledger writer.
//!
//! ```text
//! listeners ──RawMessage batches──> decoder threads ──Event batches──> writer thread ──> ledger
//! HTTP ingest ──Event batch + ack──────────────────────────────────────┘        └──> tail subscribers
//! ```
//!
//! Each listener connection is pinned to one decoder thread so its messages
//! keep their order. The writer takes whatever batches are waiting, appends
//! them, and commits (fsync) once for all of them: that group commit is what
//! makes durable ingest cheap. HTTP requests are acknowledged only after the
//! commit that holds their events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use vigil_event::{fields, format_time, Event, SeqTemplate};
use vigil_ingest::{InputKind, MessageSink, RawMessage, SinkClosed};
use vigil_ledger::{Ledger, LedgerError};
use vigil_parse::redact::{Redactor, Tally};
use vigil_parse::ParseOptions;

/// Events a batch may hold before the writer commits regardless of the queue.
const MAX_EVENTS_PER_COMMIT: usize = 16_384;

/// How often the writer thread runs the retention policy.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// How often the ledger's segment and compression figures are published
/// (each look lists the ledger directory).
const LEDGER_STATS_INTERVAL: Duration = Duration::from_secs(5);

/// Turns a received message into a stored-ready event: decode, then stamp
/// Vigil's own fields.
pub fn decode_message(msg: &RawMessage, source: Option<&str>, opts: &ParseOptions) -> Event {
    decode_at(msg, source, opts, &Arrival::new(msg.received_at))
}

/// [`decode_message`] with the message's arrival time already formatted.
fn decode_at(
    msg: &RawMessage,
    source: Option<&str>,
    opts: &ParseOptions,
    arrival: &Arrival,
) -> Event {
    let mut ev = vigil_parse::parse_line(&msg.bytes, opts);
    if msg.truncated {
        ev.set(fields::VIGIL_TRUNCATED, true);
    }
    let peer;
    let src = match (source, msg.peer) {
        (Some(s), _) => Some(s),
        (None, Some(p)) => {
            peer = p.ip().to_string();
            Some(peer.as_str())
        }
        _ => None,
    };
    stamp_at(&mut ev, msg.input, src, arrival);
    ev
}

/// `ip` as text, formatted only when it differs from the cached one: a
/// batch comes from one connection, so one peer.
fn peer_text(cache: &mut Option<(std::net::IpAddr, String)>, ip: std::net::IpAddr) -> &str {
    if cache.as_ref().is_none_or(|(cached, _)| *cached != ip) {
        *cache = Some((ip, ip.to_string()));
    }
    cache.as_ref().map_or("", |(_, text)| text.as_str())
}

/// Sets `vigil.input`, `vigil.received_at`, `vigil.source`, and `@timestamp`
/// when the message carried none.
///
/// The arrival time is kept to the millisecond: `vigil.seq` already orders
/// events, and finer digits are noise that costs about a tenth of every
/// compressed segment (they are the least compressible bytes of an event).
pub fn stamp(ev: &mut Event, input: InputKind, source: Option<&str>, received_at: SystemTime) {
    stamp_at(ev, input, source, &Arrival::new(received_at));
}

/// An arrival time as [`stamp`] writes it: to the millisecond, as text.
struct Arrival {
    millis: DateTime<Utc>,
    text: String,
}

impl Arrival {
    fn new(received_at: SystemTime) -> Arrival {
        Arrival::at(Arrival::millis(received_at))
    }

    fn at(millis: DateTime<Utc>) -> Arrival {
        Arrival {
            millis,
            text: format_time(millis),
        }
    }

    fn millis(received_at: SystemTime) -> DateTime<Utc> {
        DateTime::<Utc>::from(received_at).trunc_subsecs(3)
    }

    /// The arrival of `received_at`, formatted only when its millisecond
    /// differs from the cached one: at high rates many messages share one.
    fn cached(cache: &mut Option<Arrival>, received_at: SystemTime) -> &Arrival {
        let millis = Arrival::millis(received_at);
        if cache.as_ref().is_none_or(|a| a.millis != millis) {
            *cache = Some(Arrival::at(millis));
        }
        cache.get_or_insert_with(|| Arrival::at(millis))
    }
}

/// [`stamp`] with the arrival time already formatted.
fn stamp_at(ev: &mut Event, input: InputKind, source: Option<&str>, arrival: &Arrival) {
    ev.set(fields::VIGIL_INPUT, input.as_str());
    ev.set(fields::VIGIL_RECEIVED_AT, arrival.text.as_str());
    if let Some(s) = source {
        ev.set(fields::VIGIL_SOURCE, s);
    }
    if ev.timestamp().is_none() {
        // What `set_timestamp` writes for the same instant.
        ev.set(fields::TIMESTAMP, arrival.text.as_str());
    }
}

/// An event ready for the ledger: decoded, stamped and serialized with a
/// hole for its sequence number (see [`SeqTemplate`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Canonical bytes awaiting `vigil.seq`.
    pub template: SeqTemplate,
    /// Whether the decoder stored it raw with `vigil.parse_error`.
    pub parse_failed: bool,
    /// The sender's own message number, for gap detection.
    pub source_seq: Option<crate::sequence::SourceSeq>,
    /// Sigma alerts raised by this event, not yet stamped or serialized:
    /// the writer sets `vigil.alert.evidence_seq` to this event's seq and
    /// stores them in the same commit, after the batches.
    pub alerts: Vec<Event>,
    /// What the built-in detectors read from this event (auth and web
    /// events only); fed by the writer once the event's seq is known.
    pub observation: Option<Box<vigil_detect::Observation>>,
}

impl Prepared {
    /// Serializes a stamped event.
    pub fn new(ev: &Event) -> Prepared {
        Prepared {
            template: SeqTemplate::new(ev),
            parse_failed: ev.contains(fields::VIGIL_PARSE_ERROR),
            source_seq: crate::sequence::source_seq(ev),
            alerts: Vec::new(),
            observation: None,
        }
    }
}

/// What the built-in detectors (`[detectors]`, when given and on) read
/// from `ev`; set as [`Prepared::observation`] by the ingest paths that
/// decode events (syslog decoders, HTTP).
pub fn observe(
    ev: &Event,
    detectors: Option<&vigil_detect::Config>,
) -> Option<Box<vigil_detect::Observation>> {
    let cfg = detectors.filter(|c| c.enabled)?;
    let map = ev.as_map();
    vigil_sigma::correlation::event_time_map(map)
        .and_then(|t| vigil_detect::observe(map, t, cfg))
        .map(Box::new)
}

/// Assigns sequence numbers and appends events to the ledger.
///
/// Shared by the server's writer thread and the offline `vigil ingest`.
pub struct EventWriter {
    ledger: Ledger,
    buf: Vec<u8>,
}

impl EventWriter {
    /// Wraps an open ledger.
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger,
            buf: Vec::with_capacity(4096),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Appends events without committing; `each` sees every stored payload.
    pub fn append(
        &mut self,
        events: &[Prepared],
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), LedgerError> {
        for ev in events {
            let seq = self.ledger.next_seq();
            ev.template.fill(seq, &mut self.buf);
            self.ledger.append(&self.buf)?;
            each(&self.buf);
        }
        Ok(())
    }

    /// Makes everything appended durable; returns the highest durable seq.
    pub fn commit(&mut self) -> Result<u64, LedgerError> {
        let t = Instant::now();
        let r = self.ledger.commit();
        metrics::histogram!("vigil_ledger_fsync_seconds").record(t.elapsed().as_secs_f64());
        r
    }

    /// Seals the open segment if it is old enough.
    pub fn maybe_roll(&mut self) -> Result<(), LedgerError> {
        self.ledger.maybe_roll()
    }

    /// Runs retention (`policy`, or the ledger options' policy when `None`)
    /// and, when it deleted something, appends and commits a
    /// `retention_deleted` event naming what, why and who (`user`), so the
    /// deletion is covered by the next signed checkpoint. Returns the run
    /// and the seq of that event.
    pub fn retain(
        &mut self,
        policy: Option<&vigil_ledger::RetentionPolicy>,
        actor: &str,
        user: &str,
    ) -> Result<Option<(vigil_ledger::RetentionRun, u64)>, LedgerError> {
        let now = SystemTime::now();
        let run = match policy {
            Some(p) => self.ledger.retain(p, actor, now)?,
            None => self.ledger.retain_by_options(actor, now)?,
        };
        let Some(run) = run else {
            return Ok(None);
        };
        let mut ev = retention_event(&run, user);
        stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
        let seq = self.ledger.next_seq();
        self.append(&[Prepared::new(&ev)], |_| {})?;
        self.commit()?;
        Ok(Some((run, seq)))
    }
}

/// The ledger event recording a retention run (`event.action:
/// retention_deleted`).
pub fn retention_event(run: &vigil_ledger::RetentionRun, user: &str) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, "vigil.integrity");
    ev.push(fields::EVENT_CATEGORY, "configuration");
    ev.push(fields::EVENT_TYPE, "deletion");
    ev.set(fields::EVENT_ACTION, "retention_deleted");
    ev.set(fields::EVENT_OUTCOME, "success");
    ev.set(fields::EVENT_REASON, run.reason.clone());
    ev.set(fields::USER_NAME, user);
    ev.set("vigil.retention.first_seq", run.first_seq);
    ev.set("vigil.retention.last_seq", run.last_seq);
    ev.set("vigil.retention.segments", run.segments.len() as u64);
    ev.set("vigil.retention.bytes", run.bytes);
    ev.set("vigil.retention.reason", run.reason.clone());
    ev.set("vigil.retention.time", run.time.clone());
    ev.set(
        fields::MESSAGE,
        format!(
            "retention deleted ledger records {}..={} ({} segments, {} bytes; {}) by {}",
            run.first_seq,
            run.last_seq,
            run.segments.len(),
            run.bytes,
            run.reason,
            user
        ),
    );
    ev
}

/// Outcome of a durable write, sent to whoever waits for the acknowledgement.
pub type Ack = Result<SeqRange, String>;

/// First and last sequence number of a stored batch.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SeqRange {
    /// First seq.
    pub first: u64,
    /// Last seq.
    pub last: u64,
}

/// Events for the writer, with an optional acknowledgement channel.
pub struct WriteBatch {
    /// The events.
    pub events: Vec<Prepared>,
    /// Events per `vigil.source`, for the sources table.
    pub sources: Vec<(String, u64)>,
    /// Input they came from (for metrics).
    pub input: InputKind,
    /// Notified after the commit that holds the events.
    pub ack: Option<oneshot::Sender<Ack>>,
}

/// What the writer thread receives.
enum WriterMsg {
    Batch(WriteBatch),
    /// Wake up to seal an old segment even when no events arrive.
    Tick,
    /// Commit what is queued ahead of this message, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// What a decoder thread receives: a batch and where to send the result.
enum DecoderMsg {
    Batch(Vec<RawMessage>, oneshot::Sender<WriteBatch>),
    /// Forward what is queued ahead of this message, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Canonical bytes of committed events, fanned out to live tail subscribers.
pub type Committed = Arc<Vec<Vec<u8>>>;

/// Where the writer hands the alert events it committed (canonical bytes,
/// seq included), for the alert engine. The writer never waits on it: a
/// full queue drops the hand-over (counted in `vigil_alerts_dropped_total`)
/// and raises `lost`, so that the engine reads what it missed back from the
/// ledger, where the alert events already are.
#[derive(Debug, Clone)]
pub struct AlertSink {
    /// The queue to the engine.
    pub tx: std::sync::mpsc::SyncSender<Vec<Vec<u8>>>,
    /// Set when a hand-over was dropped.
    pub lost: Arc<std::sync::atomic::AtomicBool>,
}

/// Shared pipeline state visible to the HTTP layer.
pub struct PipelineHandle {
    writer_tx: mpsc::Sender<WriterMsg>,
    decoders: Vec<mpsc::Sender<DecoderMsg>>,
    next_decoder: AtomicU64,
    tail: broadcast::Sender<Committed>,
    durable: Arc<AtomicU64>,
    queue_depth: Arc<AtomicI64>,
    redactor: Option<Arc<Redactor>>,
}

impl PipelineHandle {
    /// Sends decoded events to the writer and waits until they are durable.
    pub async fn write_durable(
        &self,
        events: Vec<Prepared>,
        sources: Vec<(String, u64)>,
        input: InputKind,
    ) -> Ack {
        if events.is_empty() {
            return Ok(SeqRange { first: 0, last: 0 });
        }
        let (tx, rx) = oneshot::channel();
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        let msg = WriterMsg::Batch(WriteBatch {
            events,
            sources,
            input,
            ack: Some(tx),
        });
        if self.writer_tx.send(msg).await.is_err() {
            return Err("the ledger writer has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the ledger writer has stopped".into()))
    }

    /// Subscribes to committed events.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.tail.subscribe()
    }

    /// Highest seq known durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Drains decoders, then the writer, committing everything received.
    pub async fn shutdown(&self) {
        for d in &self.decoders {
            let (tx, rx) = oneshot::channel();
            if d.send(DecoderMsg::Shutdown(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
        let (tx, rx) = oneshot::channel();
        if self.writer_tx.send(WriterMsg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The `[redaction]` applied to decoded events before they are stored;
    /// the HTTP ingest path applies the same one.
    pub fn redactor(&self) -> Option<Arc<Redactor>> {
        self.redactor.clone()
    }

    /// Whether the writer thread is still running.
    pub fn is_alive(&self) -> bool {
        !self.writer_tx.is_closed()
    }
}

impl MessageSink for PipelineHandle {
    type Ticket = oneshot::Receiver<WriteBatch>;

    async fn submit(&self, batch: Vec<RawMessage>) -> Result<Self::Ticket, SinkClosed> {
        let i = (self.next_decoder.fetch_add(1, Ordering::Relaxed) as usize) % self.decoders.len();
        let (tx, rx) = oneshot::channel();
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        self.decoders[i]
            .send(DecoderMsg::Batch(batch, tx))
            .await
            .map_err(|_| SinkClosed)?;
        Ok(rx)
    }

    async fn complete(&self, ticket: Self::Ticket) -> Result<(), SinkClosed> {
        let batch = ticket.await.map_err(|_| SinkClosed)?;
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        self.writer_tx
            .send(WriterMsg::Batch(batch))
            .await
            .map_err(|_| SinkClosed)
    }
}

/// Starts a task that writes what is queued on the returned sender to the
/// ledger as internal events, up to 1024 per durable write; `what` names
/// them in the error log. The queue holds `capacity` items; callers decide
/// what to do when it is full (`try_send`) so that they never wait on it.
pub fn spawn_recorder<T: Send + 'static>(
    pipeline: Arc<PipelineHandle>,
    capacity: usize,
    to_event: fn(&T) -> Event,
    what: &'static str,
) -> tokio::sync::mpsc::Sender<T> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<T>(capacity.max(1));
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(1024);
        while rx.recv_many(&mut batch, 1024).await > 0 {
            let events = batch
                .drain(..)
                .map(|c| Prepared::new(&to_event(&c)))
                .collect();
            if let Err(e) = pipeline
                .write_durable(events, Vec::new(), InputKind::Internal)
                .await
            {
                tracing::error!(error = %e, "recording {what} in the ledger failed");
            }
        }
    });
    tx
}

/// Adds what a redactor found to `vigil_redactions_total{kind}`.
pub fn count_redactions(redactor: &Redactor, tally: &Tally) {
    for (kind, n) in redactor.counts(tally) {
        metrics::counter!("vigil_redactions_total", "kind" => kind.to_string()).increment(n);
    }
}

/// Decodes a batch of received messages into a write batch, redacting each
/// event (when `redactor` is given) and then evaluating the Sigma rules of
/// `detection` (when any are loaded) on it: rules and alerts only ever see
/// the redacted form.
pub fn decode_batch(
    batch: &[RawMessage],
    opts: &ParseOptions,
    detection: Option<&crate::detection::Detection>,
    detectors: Option<&vigil_detect::Config>,
    redactor: Option<&Redactor>,
) -> WriteBatch {
    let input = batch.first().map_or(InputKind::File, |m| m.input);
    let mut sources: Vec<(String, u64)> = Vec::new();
    let rules = detection.map(|d| d.current()).filter(|r| !r.is_empty());
    let mut tally = redactor.map(Redactor::tally).unwrap_or_default();
    let mut peer = None;
    let mut arrival = None;
    let events: Vec<Prepared> = batch
        .iter()
        .map(|m| {
            let source = m.peer.map(|p| peer_text(&mut peer, p.ip()));
            let at = Arrival::cached(&mut arrival, m.received_at);
            let mut ev = decode_at(m, source, opts, at);
            if let Some(r) = redactor {
                r.redact(&mut ev, &mut tally);
            }
            let src = ev.get_str(fields::VIGIL_SOURCE).unwrap_or("-");
            match sources.iter_mut().find(|(s, _)| s == src) {
                Some((_, n)) => *n += 1,
                None => sources.push((src.to_string(), 1)),
            }
            let alerts = rules.as_ref().map(|r| r.evaluate(&ev)).unwrap_or_default();
            let mut p = Prepared::new(&ev);
            p.alerts = alerts;
            p.observation = observe(&ev, detectors);
            p
        })
        .collect();
    count_decoded(input, &events);
    if let Some(r) = redactor.filter(|_| !tally.is_empty()) {
        count_redactions(r, &tally);
    }
    WriteBatch {
        events,
        sources,
        input,
        ack: None,
    }
}

/// Starts decoder threads and the writer thread over an open ledger.
// Each argument is a separate concern of the writer; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn start(
    ledger: Ledger,
    checkpointer: crate::checkpoints::Checkpointer,
    data_dir: &Path,
    opts: ParseOptions,
    decoder_threads: usize,
    detection: Option<Arc<crate::detection::Detection>>,
    detectors: Option<vigil_detect::Config>,
    alert_sink: Option<AlertSink>,
    redactor: Option<Arc<Redactor>>,
) -> std::io::Result<(Arc<PipelineHandle>, std::thread::JoinHandle<()>)> {
    let detectors = detectors.filter(|c| c.enabled).map(Arc::new);
    // Small queues: memory stays bounded and a slow disk pushes back on the sockets.
    let (writer_tx, writer_rx) = mpsc::channel::<WriterMsg>(16);
    let (tail, _) = broadcast::channel::<Committed>(1024);
    let durable = Arc::new(AtomicU64::new(ledger.durable_seq()));
    let queue_depth = Arc::new(AtomicI64::new(0));
    let meta = crate::meta::open(data_dir).map_err(std::io::Error::other)?;
    let data_dir = data_dir.to_path_buf();

    let mut decoders = Vec::new();
    for i in 0..decoder_threads.max(1) {
        let (tx, mut rx) = mpsc::channel::<DecoderMsg>(4);
        decoders.push(tx);
        let opts = opts.clone();
        let depth = queue_depth.clone();
        let detection = detection.clone();
        let detectors = detectors.clone();
        let redactor = redactor.clone();
        std::thread::Builder::new()
            .name(format!("vigil-decoder-{i}"))
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        DecoderMsg::Batch(batch, reply) => {
                            depth.fetch_sub(1, Ordering::Relaxed);
                            let _ = reply.send(decode_batch(
                                &batch,
                                &opts,
                                detection.as_deref(),
                                detectors.as_deref(),
                                redactor.as_deref(),
                            ));
                        }
                        DecoderMsg::Shutdown(done) => {
                            let _ = done.send(());
                            return;
                        }
                    }
                }
            })?;
    }

    let handle = Arc::new(PipelineHandle {
        writer_tx,
        decoders,
        next_decoder: AtomicU64::new(0),
        tail: tail.clone(),
        durable: durable.clone(),
        queue_depth: queue_depth.clone(),
        redactor,
    });
    let weak = handle.writer_tx.downgrade();
    std::thread::Builder::new()
        .name("vigil-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            match weak.upgrade() {
                Some(tx) => {
                    let _ = tx.try_send(WriterMsg::Tick);
                }
                None => return,
            }
        })?;
    let writer = std::thread::Builder::new()
        .name("vigil-writer".into())
        .spawn(move || {
            writer_loop(
                EventWriter::new(ledger),
                writer_rx,
                tail,
                durable,
                queue_depth,
                WriterStores {
                    meta,
                    detection,
                    detectors: detectors.map(|c| {
                        BuiltinDetectors::new(vigil_detect::Detectors::new((*c).clone()), &data_dir)
                    }),
                    alert_sink,
                },
                checkpointer,
            )
        })?;
    Ok((handle, writer))
}

/// Counts decoded events and parse failures for `/metrics`.
pub fn count_decoded(input: InputKind, events: &[Prepared]) {
    let failed = events.iter().filter(|e| e.parse_failed).count() as u64;
    metrics::counter!("vigil_decoder_parsed_total", "input" => input.as_str())
        .increment(events.len() as u64 - failed);
    metrics::counter!("vigil_decoder_failed_total", "input" => input.as_str()).increment(failed);
}

/// What the writer consults besides the ledger: the source statistics
/// database, and the detection whose correlator it feeds.
struct WriterStores {
    meta: rusqlite::Connection,
    detection: Option<Arc<crate::detection::Detection>>,
    detectors: Option<BuiltinDetectors>,
    alert_sink: Option<AlertSink>,
}

/// The built-in detectors, owned by the writer (which feeds them in seq
/// order), with the counters already added to the metrics.
struct BuiltinDetectors {
    state: vigil_detect::Detectors<u64>,
    reported: [(u64, u64); vigil_detect::COUNT],
    /// When source silence was last judged.
    last_tick: Option<Instant>,
    /// Where the first-seen baselines are persisted
    /// (`DATA_DIR/detectors/baselines.json`).
    snapshot: std::path::PathBuf,
    /// When they were last written.
    last_save: Instant,
}

/// How often the first-seen baselines are written to the data dir (and
/// once more at shutdown).
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(300);

/// Baseline snapshots larger than this are not read.
const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;

/// How often the writer judges source silence (`vigil.source_silent`).
const SILENCE_TICK: Duration = Duration::from_secs(10);

impl BuiltinDetectors {
    /// The detectors, with the baselines of the last snapshot in
    /// `data_dir` when there is a usable one. A snapshot that cannot be
    /// read or is refused is logged and ignored: the baselines start
    /// empty rather than partly trusted.
    fn new(mut state: vigil_detect::Detectors<u64>, data_dir: &Path) -> Self {
        let snapshot = data_dir.join("detectors").join("baselines.json");
        let read = std::fs::File::open(&snapshot).and_then(|f| {
            use std::io::Read;
            let mut buf = Vec::new();
            f.take(MAX_SNAPSHOT_BYTES + 1).read_to_end(&mut buf)?;
            if buf.len() as u64 > MAX_SNAPSHOT_BYTES {
                return Err(std::io::Error::other(format!(
                    "larger than {MAX_SNAPSHOT_BYTES} bytes"
                )));
            }
            Ok(buf)
        });
        match read {
            Ok(bytes) => match state.restore(&bytes) {
                Ok(()) => tracing::info!(path = %snapshot.display(), "detector baselines loaded"),
                Err(e) => tracing::warn!(path = %snapshot.display(), error = %e,
                    "detector baselines snapshot ignored; baselines start empty"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %snapshot.display(), error = %e,
                "detector baselines snapshot unreadable; baselines start empty"),
        }
        BuiltinDetectors {
            state,
            reported: [(0, 0); vigil_detect::COUNT],
            last_tick: None,
            snapshot,
            last_save: Instant::now(),
        }
    }

    /// Writes the baselines atomically (a 0600 temporary file, synced,
    /// renamed over the previous snapshot).
    fn save(&mut self) {
        self.last_save = Instant::now();
        let result = (|| -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let bytes = self.state.snapshot().map_err(std::io::Error::other)?;
            let dir = self.snapshot.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let tmp = self.snapshot.with_extension("json.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.snapshot)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = result {
            tracing::error!(path = %self.snapshot.display(), error = %e,
                "writing the detector baselines failed");
        }
    }

    /// Judges source silence against the wall clock, at most every
    /// [`SILENCE_TICK`]; returns the alert events (evidence: the source's
    /// last event).
    fn tick(&mut self, now: SystemTime) -> Vec<Event> {
        if self.last_tick.is_some_and(|t| t.elapsed() < SILENCE_TICK) {
            return Vec::new();
        }
        self.last_tick = Some(Instant::now());
        if self.last_save.elapsed() >= SNAPSHOT_INTERVAL {
            self.save();
        }
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.state
            .tick(now_ms)
            .into_iter()
            .map(|a| {
                metrics::counter!("vigil_detector_alerts_total", "detector" => a.detector.id())
                    .increment(1);
                let mut ev = Event::new();
                for (k, v) in a.fields() {
                    ev.set(&k, v);
                }
                ev.set(crate::detection::EVIDENCE_SEQS, a.evidence.clone());
                ev.set("vigil.alert.evidence_truncated", a.evidence_truncated);
                ev
            })
            .collect()
    }

    /// Feeds an event's observation; returns the alert events (evidence
    /// seqs set, not yet stamped).
    fn feed(&mut self, obs: &vigil_detect::Observation, seq: u64) -> Vec<Event> {
        self.state
            .feed(obs, seq)
            .into_iter()
            .map(|a| {
                metrics::counter!("vigil_detector_alerts_total", "detector" => a.detector.id())
                    .increment(1);
                let mut ev = Event::new();
                for (k, v) in a.fields() {
                    ev.set(&k, v);
                }
                ev.set(crate::detection::EVIDENCE_SEQS, a.evidence.clone());
                ev.set("vigil.alert.evidence_truncated", a.evidence_truncated);
                // The event that completed the alert, like a correlation's.
                ev.set(crate::detection::EVIDENCE_SEQ, seq);
                ev
            })
            .collect()
    }

    /// Adds new evictions and late events to the metrics.
    fn report(&mut self) {
        for (i, d) in vigil_detect::Detector::ALL.into_iter().enumerate() {
            let s = self.state.stats(d);
            let (ev, late) = self.reported[i];
            metrics::counter!("vigil_detector_evictions_total", "detector" => d.id())
                .increment(s.evictions.saturating_sub(ev));
            metrics::counter!("vigil_detector_late_total", "detector" => d.id())
                .increment(s.late.saturating_sub(late));
            self.reported[i] = (s.evictions, s.late);
        }
    }
}

fn writer_loop(
    mut writer: EventWriter,
    mut rx: mpsc::Receiver<WriterMsg>,
    tail: broadcast::Sender<Committed>,
    durable: Arc<AtomicU64>,
    depth: Arc<AtomicI64>,
    stores: WriterStores,
    mut checkpointer: crate::checkpoints::Checkpointer,
) {
    let WriterStores {
        meta,
        detection,
        mut detectors,
        alert_sink,
    } = stores;
    let mut sources: HashMap<(String, &'static str), u64> = HashMap::new();
    let mut gaps = crate::sequence::GapTracker::default();
    let mut last_flush = Instant::now();
    let mut last_roll = Instant::now();
    let mut last_retention = Instant::now();
    let mut last_stats = Instant::now();
    publish_ledger_stats(&writer.ledger().stats());
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let mut batches = Vec::new();
        match rx.blocking_recv() {
            Some(WriterMsg::Batch(b)) => batches.push(b),
            Some(WriterMsg::Tick) => {}
            Some(WriterMsg::Shutdown(done)) => stop = Some(done),
            None => break,
        }
        let mut n = batches.first().map_or(0, |b| b.events.len());
        while n < MAX_EVENTS_PER_COMMIT && stop.is_none() {
            match rx.try_recv() {
                Ok(WriterMsg::Batch(b)) => {
                    n += b.events.len();
                    batches.push(b);
                }
                Ok(WriterMsg::Tick) => {}
                Ok(WriterMsg::Shutdown(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        depth.fetch_sub(batches.len() as i64, Ordering::Relaxed);
        metrics::gauge!("vigil_pipeline_queue_depth")
            .set(depth.load(Ordering::Relaxed).max(0) as f64);

        let has_tail = tail.receiver_count() > 0;
        let mut committed: Vec<Vec<u8>> = Vec::new();
        // Copies each appended record for live tail subscribers, if any.
        let mut keep_for_tail = |bytes: &[u8]| {
            if has_tail {
                committed.push(bytes.to_vec());
            }
        };
        let mut ranges = Vec::with_capacity(batches.len());
        let mut result: Result<(), LedgerError> = Ok(());
        for b in batches.iter() {
            let first_seq = writer.ledger().next_seq();
            let appended = writer.append(&b.events, &mut keep_for_tail);
            if let Err(e) = appended {
                result = Err(e);
                break;
            }
            ranges.push(SeqRange {
                first: first_seq,
                last: writer.ledger().next_seq() - 1,
            });
        }
        // Sigma alerts follow in the same commit, after every batch, so an
        // acknowledged range holds only the client's events. Each names its
        // evidence event's seq: its batch's first seq plus its index.
        // Correlation markers are fed here, in seq order, now that the seqs
        // are known; their matches become alerts naming every contributing
        // seq (and the completing event's as evidence_seq).
        let alerts: Vec<Prepared> = if result.is_ok() {
            let now = SystemTime::now();
            let rules = detection.as_ref().map(|d| d.current());
            batches
                .iter()
                .zip(&ranges)
                .flat_map(|(b, r)| {
                    b.events.iter().enumerate().flat_map(move |(i, p)| {
                        p.alerts.iter().map(move |a| (r.first + i as u64, a))
                    })
                })
                .flat_map(|(seq, a)| {
                    if crate::detection::is_correlation_marker(a) {
                        let raised = rules.as_ref().map(|r| r.correlate(a, seq));
                        raised
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |ev| (seq, ev))
                            .collect()
                    } else {
                        vec![(seq, a.clone())]
                    }
                })
                .map(|(seq, mut ev)| {
                    ev.set(crate::detection::EVIDENCE_SEQ, seq);
                    stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
                    Prepared::new(&ev)
                })
                .collect()
        } else {
            Vec::new()
        };
        // Built-in detector alerts, fed in seq order like correlations.
        let mut alerts = alerts;
        if let (true, Some(det)) = (result.is_ok(), detectors.as_mut()) {
            let now = SystemTime::now();
            let before = alerts.len();
            for (b, r) in batches.iter().zip(&ranges) {
                for (i, p) in b.events.iter().enumerate() {
                    let Some(obs) = &p.observation else { continue };
                    for mut ev in det.feed(obs, r.first + i as u64) {
                        stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
                        alerts.push(Prepared::new(&ev));
                    }
                }
            }
            // Silence is judged on the writer's one-second wake-ups too,
            // when no events arrive at all.
            for mut ev in det.tick(now) {
                stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
                alerts.push(Prepared::new(&ev));
            }
            if alerts.len() > before || !batches.is_empty() {
                det.report();
            }
        }
        let alerts_first = writer.ledger().next_seq();
        if !alerts.is_empty() {
            result = writer.append(&alerts, &mut keep_for_tail);
        }
        // Sender-side sequence gaps become integrity events in the same commit.
        let notices: Vec<Prepared> = batches
            .iter()
            .flat_map(|b| b.events.iter())
            .filter_map(|p| p.source_seq.as_ref())
            .filter_map(|s| gaps.observe(s))
            .map(|mut ev| {
                stamp(
                    &mut ev,
                    InputKind::Internal,
                    Some("vigil"),
                    SystemTime::now(),
                );
                Prepared::new(&ev)
            })
            .collect();
        if result.is_ok() && !notices.is_empty() {
            metrics::counter!("vigil_integrity_sequence_notices_total")
                .increment(notices.len() as u64);
            result = writer.append(&notices, &mut keep_for_tail);
        }
        let result = if batches.is_empty() && alerts.is_empty() {
            Ok(writer.ledger().durable_seq())
        } else {
            result.and_then(|_| writer.commit())
        };
        match result {
            Ok(seq) => {
                durable.store(seq, Ordering::Release);
                metrics::gauge!("vigil_ledger_durable_seq").set(seq as f64);
                for (b, range) in batches.into_iter().zip(ranges) {
                    metrics::counter!("vigil_ledger_stored_total", "input" => b.input.as_str())
                        .increment(b.events.len() as u64);
                    for (src, n) in b.sources {
                        *sources.entry((src, b.input.as_str())).or_insert(0) += n;
                    }
                    if let Some(ack) = b.ack {
                        let _ = ack.send(Ok(range));
                    }
                }
                if has_tail && !committed.is_empty() {
                    let _ = tail.send(Arc::new(committed));
                }
                if let (Some(sink), false) = (&alert_sink, alerts.is_empty()) {
                    hand_over_alerts(sink, &alerts, alerts_first);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger write failed; the batch was not stored");
                for b in batches {
                    metrics::counter!("vigil_ledger_write_errors_total", "input" => b.input.as_str()).increment(b.events.len() as u64);
                    if let Some(ack) = b.ack {
                        let _ = ack.send(Err(format!("storage error: {e}")));
                    }
                }
            }
        }
        if last_flush.elapsed() > Duration::from_secs(2) && !sources.is_empty() {
            flush_sources(&meta, &mut sources);
            last_flush = Instant::now();
        }
        checkpointer.after_commit(writer.ledger(), false);
        if last_roll.elapsed() > Duration::from_secs(1) {
            if let Err(e) = writer.maybe_roll() {
                tracing::error!(error = %e, "sealing the ledger segment failed");
            }
            last_roll = Instant::now();
        }
        if last_stats.elapsed() >= LEDGER_STATS_INTERVAL {
            last_stats = Instant::now();
            publish_ledger_stats(&writer.ledger().stats());
        }
        if last_retention.elapsed() >= RETENTION_INTERVAL {
            last_retention = Instant::now();
            match writer.retain(None, "retention", "vigil-retention") {
                Ok(Some((_, seq))) => {
                    durable.store(seq, Ordering::Release);
                    metrics::counter!("vigil_ledger_retention_runs_total").increment(1);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "ledger retention failed"),
            }
        }
    }
    flush_sources(&meta, &mut sources);
    if let Err(e) = writer.commit() {
        tracing::error!(error = %e, "final ledger commit failed");
    }
    checkpointer.after_commit(writer.ledger(), true);
    drop(writer);
    if let Some(det) = detectors.as_mut() {
        det.save();
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Publishes the ledger's segment and compression figures as metrics.
fn publish_ledger_stats(s: &vigil_ledger::LedgerStats) {
    metrics::gauge!("vigil_ledger_segments").set(s.segments as f64);
    metrics::gauge!("vigil_ledger_segments_compressed").set(s.compressed_segments as f64);
    metrics::gauge!("vigil_ledger_bytes").set(s.bytes_on_disk as f64);
    metrics::gauge!("vigil_ledger_compression_pending").set(s.pending_compressions as f64);
    metrics::gauge!("vigil_ledger_segments_provisional").set(s.provisional_segments as f64);
    metrics::counter!("vigil_ledger_compressions_total").absolute(s.compressed_segments_written);
    metrics::counter!("vigil_ledger_compressions_fast_total").absolute(s.fast_compressions);
    metrics::counter!("vigil_ledger_refinements_total").absolute(s.refined_segments);
    metrics::counter!("vigil_ledger_compression_errors_total").absolute(s.compression_errors);
}

/// Sends committed alert events (seqs from `first`) to the alert engine.
fn hand_over_alerts(sink: &AlertSink, alerts: &[Prepared], first: u64) {
    let stored: Vec<Vec<u8>> = alerts
        .iter()
        .zip(first..)
        .map(|(p, seq)| {
            let mut buf = Vec::new();
            p.template.fill(seq, &mut buf);
            buf
        })
        .collect();
    let n = stored.len() as u64;
    if let Err(e) = sink.tx.try_send(stored) {
        sink.lost.store(true, Ordering::Release);
        metrics::counter!("vigil_alerts_dropped_total").increment(n);
        if matches!(e, std::sync::mpsc::TrySendError::Full(_)) {
            tracing::error!(
                alerts = n,
                "the alert engine is behind; alert events not tracked"
            );
        }
    }
}

fn flush_sources(meta: &rusqlite::Connection, sources: &mut HashMap<(String, &'static str), u64>) {
    for ((name, input), n) in sources.drain() {
        if let Err(e) = crate::meta::record_source(meta, &name, input, n) {
            tracing::warn!(error = %e, "recording source statistics failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch shares the formatted peer and arrival time between its
    /// messages only where they are equal: every event comes out as if
    /// decoded alone.
    #[test]
    fn a_batch_decodes_each_message_as_alone() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_millis(1_736_121_600_123);
        let peers = [
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))),
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40001))),
            Some(std::net::SocketAddr::from(([192, 0, 2, 7], 514))),
            None,
        ];
        let offsets = [0, 1, 999_999, 1_000_000, 1_000_001, 5_000_000_000];
        let lines: [&[u8]; 3] = [
            b"<38>Jan 12 06:30:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2",
            b"no timestamp here",
            br#"{"@timestamp":"not a time","message":"x"}"#,
        ];
        let mut batch = Vec::new();
        for (i, nanos) in offsets.iter().enumerate() {
            for (j, peer) in peers.iter().enumerate() {
                batch.push(RawMessage {
                    bytes: lines[(i + j) % lines.len()].to_vec(),
                    truncated: false,
                    input: InputKind::SyslogTcp,
                    peer: *peer,
                    received_at: base + Duration::from_nanos(*nanos),
                });
            }
        }
        let opts = ParseOptions::default();
        let out = decode_batch(&batch, &opts, None, None, None);
        assert_eq!(out.events.len(), batch.len());
        for (m, p) in batch.iter().zip(&out.events) {
            let alone = Prepared::new(&decode_message(m, None, &opts));
            assert_eq!(p.template, alone.template);
        }
    }
}
