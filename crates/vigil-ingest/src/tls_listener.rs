//! Syslog over TLS (RFC 5425): a TCP listener whose connections complete a
//! TLS handshake and then carry the same framing as plain TCP
//! (octet-counting, or newline-separated from senders that ignore RFC 6587).
//!
//! The TLS configuration (certificates, client-certificate verification,
//! protocol versions) comes from the caller as a [`TlsAcceptor`]; this
//! module only accepts, bounds and reads connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
pub use tokio_rustls::TlsAcceptor;

use crate::syslog_listener::handle_tcp;
use crate::{InputKind, InputLimits, MessageSink};

/// A handshake that has not completed in this time is abandoned, so a peer
/// that connects and sends nothing cannot hold a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound syslog-over-TLS socket, ready to serve.
pub struct SyslogTlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

/// Binds the syslog-over-TLS socket (RFC 5425's port is 6514).
pub async fn bind_syslog_tls(
    addr: SocketAddr,
    acceptor: TlsAcceptor,
) -> std::io::Result<SyslogTlsListener> {
    Ok(SyslogTlsListener {
        listener: TcpListener::bind(addr).await?,
        acceptor,
    })
}

impl SyslogTlsListener {
    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the sink closes; each one is handshaken
    /// and then read like a TCP syslog stream, its messages marked
    /// `vigil.input: syslog-tls`. At most `limits.max_tcp_connections`
    /// connections are open at once (handshakes included).
    pub async fn serve<S: MessageSink>(self, sink: Arc<S>, limits: InputLimits) {
        let input = InputKind::SyslogTls;
        let permits = Arc::new(Semaphore::new(limits.max_tcp_connections));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                metrics::counter!("vigil_input_connections_refused_total", "input" => input.as_str())
                    .increment(1);
                tracing::warn!(%peer, limit = limits.max_tcp_connections, "syslog TLS connection refused: too many open connections");
                continue;
            };
            let acceptor = self.acceptor.clone();
            let sink = sink.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        metrics::counter!("vigil_input_tls_handshake_failures_total", "input" => input.as_str())
                            .increment(1);
                        tracing::warn!(%peer, error = %e, "syslog TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics::counter!("vigil_input_tls_handshake_failures_total", "input" => input.as_str())
                            .increment(1);
                        tracing::warn!(%peer, "syslog TLS handshake timed out");
                        return;
                    }
                };
                metrics::gauge!("vigil_input_connections", "input" => input.as_str())
                    .increment(1.0);
                handle_tcp(tls, peer, sink, limits, input).await;
                metrics::gauge!("vigil_input_connections", "input" => input.as_str())
                    .decrement(1.0);
            });
        }
    }
}
