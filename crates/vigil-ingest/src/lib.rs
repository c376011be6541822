//! Vigil inputs: the network listeners that receive raw log messages
//! (syslog over UDP, TCP and TLS).
//!
//! An input accepts bytes from the network, cuts them into messages (a
//! [`framing::Framer`] per TCP connection, one datagram per message for UDP),
//! enforces the limits in [`InputLimits`], and hands batches of
//! [`RawMessage`]s to a [`MessageSink`]. It never interprets a message: the
//! decoders in `vigil-parse` do that downstream, so a listener stays cheap and
//! a slow decoder shows up as backpressure on the socket, not as lost data.
//!
//! ```
//! use vigil_ingest::framing::{Framer, FrameEvent};
//! let mut f = Framer::new(1024);
//! f.push(b"16 <1>1 - - - - - -<13>Jan  1 00:00:00 host app: hi\n");
//! let mut frames = Vec::new();
//! while let Some(FrameEvent::Frame(fr)) = f.next_event() {
//!     frames.push(fr.bytes);
//! }
//! assert_eq!(frames.len(), 1); // the stream is octet-counted, so the second message awaits its length prefix
//! ```

pub mod framing;
mod syslog_listener;
pub mod tls_listener;

use std::net::SocketAddr;
use std::time::SystemTime;

pub use syslog_listener::{bind_syslog, SyslogListeners};
pub use tls_listener::{bind_syslog_tls, SyslogTlsListener};

/// Which input received a message; becomes `vigil.input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Syslog over UDP.
    SyslogUdp,
    /// Syslog over TCP (octet-counting or newline framing).
    SyslogTcp,
    /// Syslog over TLS (RFC 5425), framed like TCP.
    SyslogTls,
    /// The HTTP event API.
    Http,
    /// `vigil ingest` reading a file.
    File,
    /// Events Vigil writes about itself (integrity notices).
    Internal,
}

impl InputKind {
    /// The name used in `vigil.input` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::SyslogUdp => "syslog-udp",
            InputKind::SyslogTcp => "syslog-tcp",
            InputKind::SyslogTls => "syslog-tls",
            InputKind::Http => "http",
            InputKind::File => "file",
            InputKind::Internal => "internal",
        }
    }
}

/// One message as received, before any decoding.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The message bytes (already cut to the size limit).
    pub bytes: Vec<u8>,
    /// Whether the message was longer than the limit and cut.
    pub truncated: bool,
    /// The input that received it.
    pub input: InputKind,
    /// The sending peer.
    pub peer: Option<SocketAddr>,
    /// Arrival time.
    pub received_at: SystemTime,
}

/// Limits every listener enforces.
#[derive(Debug, Clone)]
pub struct InputLimits {
    /// Longer messages are cut and flagged.
    pub max_message_bytes: usize,
    /// Concurrent TCP connections; further connections are refused.
    pub max_tcp_connections: usize,
    /// Messages per batch handed to the sink.
    pub max_batch: usize,
    /// A TCP connection idle this long is closed.
    pub tcp_idle_timeout: std::time::Duration,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_tcp_connections: 1024,
            max_batch: 1024,
            tcp_idle_timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// Where listeners deliver batches. Implemented by the server's pipeline.
///
/// Delivery is split in two so that a single busy connection can keep
/// several decoder threads working while its messages stay in order:
/// [`submit`](MessageSink::submit) hands a batch over for decoding and
/// returns a ticket at once; [`complete`](MessageSink::complete) waits for
/// that batch to be decoded and queues it for storage. A listener completes
/// tickets in the order it submitted them, keeping one batch in flight
/// while it reads the next.
pub trait MessageSink: Send + Sync + 'static {
    /// A batch being decoded.
    type Ticket: Send + 'static;

    /// Starts decoding a batch; waiting here is how backpressure reaches the socket.
    fn submit(
        &self,
        batch: Vec<RawMessage>,
    ) -> impl std::future::Future<Output = Result<Self::Ticket, SinkClosed>> + Send;

    /// Waits for a submitted batch to be decoded and queues it for storage.
    fn complete(
        &self,
        ticket: Self::Ticket,
    ) -> impl std::future::Future<Output = Result<(), SinkClosed>> + Send;
}

/// Keeps at most one submitted batch in flight per connection, completing
/// them in submission order.
pub struct OrderedDelivery<S: MessageSink> {
    sink: std::sync::Arc<S>,
    pending: Option<S::Ticket>,
}

impl<S: MessageSink> OrderedDelivery<S> {
    /// A delivery queue for one connection.
    pub fn new(sink: std::sync::Arc<S>) -> Self {
        Self {
            sink,
            pending: None,
        }
    }

    /// Submits `batch` and completes the batch before it.
    pub async fn push(&mut self, batch: Vec<RawMessage>) -> Result<(), SinkClosed> {
        if batch.is_empty() {
            return Ok(());
        }
        let ticket = self.sink.submit(batch).await?;
        if let Some(prev) = self.pending.replace(ticket) {
            self.sink.complete(prev).await?;
        }
        Ok(())
    }

    /// Completes the last batch; call when the connection goes quiet or ends.
    pub async fn flush(&mut self) -> Result<(), SinkClosed> {
        if let Some(prev) = self.pending.take() {
            self.sink.complete(prev).await?;
        }
        Ok(())
    }
}

/// The pipeline is shutting down and accepts no more messages.
#[derive(Debug, thiserror::Error)]
#[error("the event pipeline is closed")]
pub struct SinkClosed;
