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
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use vigil_event::{fields, format_time, Event};
use vigil_ingest::{InputKind, MessageSink, RawMessage, SinkClosed};
use vigil_ledger::{Ledger, LedgerError};
use vigil_parse::ParseOptions;

/// Events a batch may hold before the writer commits regardless of the queue.
const MAX_EVENTS_PER_COMMIT: usize = 16_384;

/// Turns a received message into a stored-ready event: decode, then stamp
/// Vigil's own fields.
pub fn decode_message(msg: &RawMessage, source: Option<&str>, opts: &ParseOptions) -> Event {
    let mut ev = vigil_parse::parse_line(&msg.bytes, opts);
    if msg.truncated {
        ev.set(fields::VIGIL_TRUNCATED, true);
    }
    let src = match (source, msg.peer) {
        (Some(s), _) => Some(s.to_string()),
        (None, Some(p)) => Some(p.ip().to_string()),
        _ => None,
    };
    stamp(&mut ev, msg.input, src.as_deref(), msg.received_at);
    ev
}

/// Sets `vigil.input`, `vigil.received_at`, `vigil.source`, and `@timestamp`
/// when the message carried none.
pub fn stamp(ev: &mut Event, input: InputKind, source: Option<&str>, received_at: SystemTime) {
    let t: DateTime<Utc> = received_at.into();
    ev.set(fields::VIGIL_INPUT, input.as_str());
    ev.set(fields::VIGIL_RECEIVED_AT, format_time(t));
    if let Some(s) = source {
        ev.set(fields::VIGIL_SOURCE, s);
    }
    if ev.timestamp().is_none() {
        ev.set_timestamp(t);
    }
}

/// Assigns sequence numbers and appends events to the ledger.
///
/// Shared by the server's writer thread and the offline `vigil ingest`.
pub struct EventWriter {
    ledger: Ledger,
}

impl EventWriter {
    /// Wraps an open ledger.
    pub fn new(ledger: Ledger) -> Self {
        Self { ledger }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Appends events (setting `vigil.seq` on each) without committing.
    pub fn append(&mut self, events: &mut [Event]) -> Result<(), LedgerError> {
        for ev in events.iter_mut() {
            let seq = self.ledger.next_seq();
            ev.set(fields::VIGIL_SEQ, seq);
            let bytes = ev.canonical_bytes();
            self.ledger.append(&bytes)?;
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
    pub events: Vec<Event>,
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

/// What a decoder thread receives.
enum DecoderMsg {
    Batch(Vec<RawMessage>),
    /// Forward what is queued ahead of this message, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Committed events, fanned out to live tail subscribers.
pub type Committed = Arc<Vec<Event>>;

/// Shared pipeline state visible to the HTTP layer.
pub struct PipelineHandle {
    writer_tx: mpsc::Sender<WriterMsg>,
    decoders: Vec<mpsc::Sender<DecoderMsg>>,
    tail: broadcast::Sender<Committed>,
    durable: Arc<AtomicU64>,
    queue_depth: Arc<AtomicI64>,
}

impl PipelineHandle {
    /// Sends decoded events to the writer and waits until they are durable.
    pub async fn write_durable(&self, events: Vec<Event>, input: InputKind) -> Ack {
        if events.is_empty() {
            return Ok(SeqRange { first: 0, last: 0 });
        }
        let (tx, rx) = oneshot::channel();
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        let msg = WriterMsg::Batch(WriteBatch {
            events,
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

    /// Whether the writer thread is still running.
    pub fn is_alive(&self) -> bool {
        !self.writer_tx.is_closed()
    }
}

impl MessageSink for PipelineHandle {
    async fn deliver(&self, connection: u64, batch: Vec<RawMessage>) -> Result<(), SinkClosed> {
        let i = (connection as usize) % self.decoders.len();
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
        self.decoders[i]
            .send(DecoderMsg::Batch(batch))
            .await
            .map_err(|_| SinkClosed)
    }
}

/// Starts decoder threads and the writer thread over an open ledger.
pub fn start(
    ledger: Ledger,
    data_dir: &Path,
    opts: ParseOptions,
    decoder_threads: usize,
) -> std::io::Result<(Arc<PipelineHandle>, std::thread::JoinHandle<()>)> {
    let (writer_tx, writer_rx) = mpsc::channel::<WriterMsg>(256);
    let (tail, _) = broadcast::channel::<Committed>(1024);
    let durable = Arc::new(AtomicU64::new(ledger.durable_seq()));
    let queue_depth = Arc::new(AtomicI64::new(0));
    let meta = crate::meta::open(data_dir).map_err(std::io::Error::other)?;

    let mut decoders = Vec::new();
    for i in 0..decoder_threads.max(1) {
        let (tx, mut rx) = mpsc::channel::<DecoderMsg>(64);
        decoders.push(tx);
        let wtx = writer_tx.clone();
        let opts = opts.clone();
        let depth = queue_depth.clone();
        std::thread::Builder::new()
            .name(format!("vigil-decoder-{i}"))
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    let batch = match msg {
                        DecoderMsg::Batch(b) => b,
                        DecoderMsg::Shutdown(done) => {
                            let _ = done.send(());
                            return;
                        }
                    };
                    depth.fetch_sub(1, Ordering::Relaxed);
                    let Some(input) = batch.first().map(|m| m.input) else {
                        continue;
                    };
                    let events: Vec<Event> = batch
                        .iter()
                        .map(|m| decode_message(m, None, &opts))
                        .collect();
                    count_decoded(input, &events);
                    depth.fetch_add(1, Ordering::Relaxed);
                    if wtx
                        .blocking_send(WriterMsg::Batch(WriteBatch {
                            events,
                            input,
                            ack: None,
                        }))
                        .is_err()
                    {
                        return;
                    }
                }
            })?;
    }

    let handle = Arc::new(PipelineHandle {
        writer_tx,
        decoders,
        tail: tail.clone(),
        durable: durable.clone(),
        queue_depth: queue_depth.clone(),
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
                meta,
            )
        })?;
    Ok((handle, writer))
}

/// Counts decoded events and parse failures for `/metrics`.
pub fn count_decoded(input: InputKind, events: &[Event]) {
    let failed = events
        .iter()
        .filter(|e| e.contains(fields::VIGIL_PARSE_ERROR))
        .count() as u64;
    metrics::counter!("vigil_decoder_parsed_total", "input" => input.as_str())
        .increment(events.len() as u64 - failed);
    metrics::counter!("vigil_decoder_failed_total", "input" => input.as_str()).increment(failed);
}

fn writer_loop(
    mut writer: EventWriter,
    mut rx: mpsc::Receiver<WriterMsg>,
    tail: broadcast::Sender<Committed>,
    durable: Arc<AtomicU64>,
    depth: Arc<AtomicI64>,
    meta: rusqlite::Connection,
) {
    let mut sources: HashMap<(String, &'static str), u64> = HashMap::new();
    let mut last_flush = Instant::now();
    let mut last_roll = Instant::now();
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

        let mut ranges = Vec::with_capacity(batches.len());
        let mut result: Result<(), LedgerError> = Ok(());
        for b in batches.iter_mut() {
            let first_seq = writer.ledger().next_seq();
            if let Err(e) = writer.append(&mut b.events) {
                result = Err(e);
                break;
            }
            ranges.push(SeqRange {
                first: first_seq,
                last: writer.ledger().next_seq() - 1,
            });
        }
        let result = if batches.is_empty() {
            Ok(writer.ledger().durable_seq())
        } else {
            result.and_then(|_| writer.commit())
        };
        match result {
            Ok(seq) => {
                durable.store(seq, Ordering::Release);
                metrics::gauge!("vigil_ledger_durable_seq").set(seq as f64);
                let has_tail = tail.receiver_count() > 0;
                let mut committed = Vec::new();
                for (b, range) in batches.into_iter().zip(ranges) {
                    metrics::counter!("vigil_ledger_stored_total", "input" => b.input.as_str())
                        .increment(b.events.len() as u64);
                    for ev in &b.events {
                        let src = ev.get_str(fields::VIGIL_SOURCE).unwrap_or("-");
                        match sources.get_mut(&(src.to_string(), b.input.as_str())) {
                            Some(c) => *c += 1,
                            None => {
                                sources.insert((src.to_string(), b.input.as_str()), 1);
                            }
                        }
                    }
                    if let Some(ack) = b.ack {
                        let _ = ack.send(Ok(range));
                    }
                    if has_tail {
                        committed.extend(b.events);
                    }
                }
                if has_tail && !committed.is_empty() {
                    let _ = tail.send(Arc::new(committed));
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
        if last_roll.elapsed() > Duration::from_secs(1) {
            if let Err(e) = writer.maybe_roll() {
                tracing::error!(error = %e, "sealing the ledger segment failed");
            }
            last_roll = Instant::now();
        }
    }
    flush_sources(&meta, &mut sources);
    if let Err(e) = writer.commit() {
        tracing::error!(error = %e, "final ledger commit failed");
    }
    drop(writer);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

fn flush_sources(meta: &rusqlite::Connection, sources: &mut HashMap<(String, &'static str), u64>) {
    for ((name, input), n) in sources.drain() {
        if let Err(e) = crate::meta::record_source(meta, &name, input, n) {
            tracing::warn!(error = %e, "recording source statistics failed");
        }
    }
}

/// Peer address helper for callers that only know a socket address.
pub fn peer_name(addr: Option<SocketAddr>) -> Option<String> {
    addr.map(|a| a.ip().to_string())
}
