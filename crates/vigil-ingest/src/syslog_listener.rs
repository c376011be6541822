//! Syslog listeners over UDP and TCP (TLS connections share the TCP
//! connection handler, see [`crate::tls_listener`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

use crate::framing::{FrameEvent, Framer};
use crate::{InputKind, InputLimits, MessageSink, OrderedDelivery, RawMessage};

/// Bound syslog sockets, ready to serve.
pub struct SyslogListeners {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
}

/// Binds UDP and/or TCP syslog sockets on `addr` (port 0 picks a free port;
/// the TCP port is then reused for UDP so both share one number).
pub async fn bind_syslog(
    addr: SocketAddr,
    udp: bool,
    tcp: bool,
) -> std::io::Result<SyslogListeners> {
    let tcp_l = if tcp {
        Some(TcpListener::bind(addr).await?)
    } else {
        None
    };
    let udp_addr = match &tcp_l {
        Some(l) if addr.port() == 0 => l.local_addr()?,
        _ => addr,
    };
    let udp_s = if udp {
        Some(UdpSocket::bind(udp_addr).await?)
    } else {
        None
    };
    Ok(SyslogListeners {
        udp: udp_s,
        tcp: tcp_l,
    })
}

impl SyslogListeners {
    /// The bound UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Runs both listeners until the sink closes.
    pub async fn serve<S: MessageSink>(self, sink: Arc<S>, limits: InputLimits) {
        let mut tasks = Vec::new();
        if let Some(udp) = self.udp {
            tasks.push(tokio::spawn(serve_udp(udp, sink.clone(), limits.clone())));
        }
        if let Some(tcp) = self.tcp {
            tasks.push(tokio::spawn(serve_tcp(tcp, sink, limits)));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

fn raw(bytes: &[u8], truncated: bool, input: InputKind, peer: SocketAddr) -> RawMessage {
    RawMessage {
        bytes: bytes.to_vec(),
        truncated,
        input,
        peer: Some(peer),
        received_at: SystemTime::now(),
    }
}

async fn serve_udp<S: MessageSink>(sock: UdpSocket, sink: Arc<S>, limits: InputLimits) {
    let mut out = OrderedDelivery::new(sink);
    // A datagram can be up to 64 KiB; read it whole so truncation is detected.
    let mut buf = vec![0u8; 65_536.max(limits.max_message_bytes + 1)];
    loop {
        let received = match sock.try_recv_from(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Complete the in-flight batch before sleeping on an idle socket.
                if out.flush().await.is_err() {
                    return;
                }
                sock.recv_from(&mut buf).await
            }
            other => other,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "syslog UDP receive failed");
                continue;
            }
        };
        let mut batch = Vec::with_capacity(64);
        push_datagram(&mut batch, &buf[..n], peer, &limits);
        // Drain whatever else is already queued, without waiting.
        while batch.len() < limits.max_batch {
            match sock.try_recv_from(&mut buf) {
                Ok((n, peer)) => push_datagram(&mut batch, &buf[..n], peer, &limits),
                Err(_) => break,
            }
        }
        metrics::counter!("vigil_input_received_total", "input" => "syslog-udp")
            .increment(batch.len() as u64);
        if out.push(batch).await.is_err() {
            return;
        }
    }
}

fn push_datagram(batch: &mut Vec<RawMessage>, data: &[u8], peer: SocketAddr, limits: &InputLimits) {
    let mut data = data;
    while matches!(data.last(), Some(b'\n' | b'\r' | 0)) {
        data = &data[..data.len() - 1];
    }
    if data.is_empty() {
        return;
    }
    let truncated = data.len() > limits.max_message_bytes;
    let data = &data[..data.len().min(limits.max_message_bytes)];
    batch.push(raw(data, truncated, InputKind::SyslogUdp, peer));
}

async fn serve_tcp<S: MessageSink>(listener: TcpListener, sink: Arc<S>, limits: InputLimits) {
    let permits = Arc::new(Semaphore::new(limits.max_tcp_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("vigil_input_connections_refused_total", "input" => "syslog-tcp")
                .increment(1);
            tracing::warn!(%peer, limit = limits.max_tcp_connections, "syslog TCP connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let sink = sink.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            metrics::gauge!("vigil_input_connections", "input" => "syslog-tcp").increment(1.0);
            handle_tcp(stream, peer, sink, limits, InputKind::SyslogTcp).await;
            metrics::gauge!("vigil_input_connections", "input" => "syslog-tcp").decrement(1.0);
        });
    }
}

/// Reads what is already buffered without waiting: `WouldBlock` when a
/// read would have to wait for the peer. Works for plain TCP and TLS alike.
async fn read_ready<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut rb = ReadBuf::new(buf);
    std::future::poll_fn(
        |cx| match std::pin::Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            std::task::Poll::Ready(r) => std::task::Poll::Ready(r.map(|_| ())),
            std::task::Poll::Pending => {
                std::task::Poll::Ready(Err(std::io::ErrorKind::WouldBlock.into()))
            }
        },
    )
    .await?;
    Ok(rb.filled().len())
}

/// Reads one stream connection (TCP or TLS) until it ends, fails framing,
/// or stays idle past the limit.
pub(crate) async fn handle_tcp<S: MessageSink, R: AsyncRead + Unpin>(
    mut stream: R,
    peer: SocketAddr,
    sink: Arc<S>,
    limits: InputLimits,
    input: InputKind,
) {
    let mut out = OrderedDelivery::new(sink);
    let mut framer = Framer::new(limits.max_message_bytes);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let read = match read_ready(&mut stream, &mut buf).await {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Nothing buffered: finish the in-flight batch first so a
                // quiet connection's last messages are not held back.
                if out.flush().await.is_err() {
                    return;
                }
                tokio::time::timeout(limits.tcp_idle_timeout, stream.read(&mut buf)).await
            }
            other => Ok(other),
        };
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, input = input.as_str(), "syslog stream read failed");
                0
            }
            Err(_) => {
                tracing::info!(%peer, input = input.as_str(), "syslog stream connection idle, closing");
                0
            }
        };
        let mut batch = Vec::new();
        let mut failed = false;
        if n == 0 {
            if let Some(ev) = framer.finish() {
                failed |= take(ev, &mut batch, peer, input);
            }
        } else {
            framer.push(&buf[..n]);
            while let Some(ev) = framer.next_event() {
                failed |= take(ev, &mut batch, peer, input);
                if batch.len() >= limits.max_batch {
                    let full = std::mem::take(&mut batch);
                    metrics::counter!("vigil_input_received_total", "input" => input.as_str())
                        .increment(full.len() as u64);
                    if out.push(full).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !batch.is_empty() {
            metrics::counter!("vigil_input_received_total", "input" => input.as_str())
                .increment(batch.len() as u64);
            if out.push(batch).await.is_err() {
                return;
            }
        }
        if n == 0 || failed {
            let _ = out.flush().await;
            return;
        }
    }
}

/// Adds a frame to the batch; returns true when the stream failed.
fn take(ev: FrameEvent, batch: &mut Vec<RawMessage>, peer: SocketAddr, input: InputKind) -> bool {
    match ev {
        FrameEvent::Frame(f) => {
            batch.push(RawMessage {
                bytes: f.bytes,
                truncated: f.truncated,
                input,
                peer: Some(peer),
                received_at: SystemTime::now(),
            });
            false
        }
        FrameEvent::Error { offset, reason } => {
            metrics::counter!("vigil_input_framing_errors_total", "input" => input.as_str())
                .increment(1);
            tracing::warn!(%peer, offset, %reason, input = input.as_str(), "syslog framing error; closing the connection");
            true
        }
    }
}
