//! Where generated lines go: a file or stdout, or a running Vigil over
//! syslog (TCP or UDP) or HTTP, paced to a target rate.

use std::io::{BufWriter, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where `--send` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `syslog-tcp://host:port`: RFC 6587 framing.
    SyslogTcp(String),
    /// `syslog-udp://host:port`: one datagram per line.
    SyslogUdp(String),
    /// `http://host:port`: `POST /api/v1/events` in batches.
    Http(String),
}

impl Target {
    /// Parses `--send`, refusing non-loopback hosts unless `allow_remote`.
    pub fn parse(s: &str, allow_remote: bool) -> anyhow::Result<Target> {
        let (t, hostport) = if let Some(a) = s.strip_prefix("syslog-tcp://") {
            (Target::SyslogTcp(a.trim_end_matches('/').into()), a)
        } else if let Some(a) = s.strip_prefix("syslog-udp://") {
            (Target::SyslogUdp(a.trim_end_matches('/').into()), a)
        } else if let Some(a) = s.strip_prefix("http://") {
            (Target::Http(s.trim_end_matches('/').into()), a)
        } else {
            bail!("--send must be syslog-tcp://HOST:PORT, syslog-udp://HOST:PORT or http://HOST:PORT, got {s:?}");
        };
        let hostport = hostport.split('/').next().unwrap_or_default();
        let addrs: Vec<_> = hostport
            .to_socket_addrs()
            .with_context(|| format!("resolving {hostport:?} (give HOST:PORT)"))?
            .collect();
        if addrs.is_empty() {
            bail!("{hostport:?} resolves to no address");
        }
        // Generated attack traffic must not reach a machine by accident.
        if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
            bail!("{hostport} is not a loopback address; pass --allow-remote to send simulated attacks to another machine");
        }
        Ok(t)
    }
}

/// Consumes rendered lines in order.
pub trait Sink {
    /// Takes one line (without newline) whose event time is `time_ms`.
    fn line(&mut self, line: &str, time_ms: i64) -> anyhow::Result<()>;
    /// Flushes what is buffered; returns how many lines were delivered.
    fn finish(&mut self) -> anyhow::Result<u64>;
}

/// Newline-terminated lines to a writer.
pub struct WriterSink {
    out: BufWriter<Box<dyn Write>>,
    n: u64,
}

impl WriterSink {
    /// Buffers lines to `w` (a file or stdout).
    pub fn new(w: Box<dyn Write>) -> WriterSink {
        WriterSink {
            out: BufWriter::with_capacity(1 << 20, w),
            n: 0,
        }
    }
}

impl Sink for WriterSink {
    fn line(&mut self, line: &str, _: i64) -> anyhow::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.n += 1;
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<u64> {
        self.out.flush().context("writing the output")?;
        Ok(self.n)
    }
}

/// Paces delivery: a token bucket at `rate` lines/s, or event time scaled by `speed`.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    rate: Option<f64>,
    speed: Option<f64>,
    first_ms: Option<i64>,
    n: u64,
}

impl Pacer {
    /// A pacer by `rate` lines/s, or by event time at `speed`; neither means no pacing.
    pub fn new(rate: Option<f64>, speed: Option<f64>) -> Pacer {
        Pacer {
            start: Instant::now(),
            rate,
            speed,
            first_ms: None,
            n: 0,
        }
    }

    /// How long to wait before the next line may go.
    fn delay(&mut self, time_ms: i64) -> Duration {
        let first = *self.first_ms.get_or_insert(time_ms);
        let due = if let Some(s) = self.speed {
            (time_ms - first).max(0) as f64 / 1000.0 / s
        } else if let Some(r) = self.rate {
            self.n as f64 / r
        } else {
            0.0
        };
        self.n += 1;
        let due = Duration::from_secs_f64(due);
        due.saturating_sub(self.start.elapsed())
    }
}

/// Syslog over TCP.
pub struct TcpSink {
    out: BufWriter<TcpStream>,
    pacer: Pacer,
    /// Octet counting (RFC 6587 §3.4.1) once known; `None` before the first line.
    octets: Option<bool>,
    n: u64,
}

impl TcpSink {
    /// Connects to the syslog TCP listener at `addr`.
    pub fn connect(addr: &str, pacer: Pacer) -> anyhow::Result<TcpSink> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true).ok();
        Ok(TcpSink {
            out: BufWriter::with_capacity(64 * 1024, s),
            pacer,
            octets: None,
            n: 0,
        })
    }
}

impl Sink for TcpSink {
    fn line(&mut self, line: &str, time_ms: i64) -> anyhow::Result<()> {
        let d = self.pacer.delay(time_ms);
        if d > Duration::from_millis(1) {
            self.out.flush()?;
            std::thread::sleep(d);
        }
        // Vigil (like rsyslog) tells the framing from a connection's first
        // bytes: octet counting when they read `LEN <`. A stream that starts
        // with a JSON or access-log line therefore uses LF framing, which is
        // just as exact here because no generated line contains a newline.
        let octets = *self.octets.get_or_insert(line.starts_with('<'));
        if octets {
            write!(self.out, "{} {line}", line.len())?;
        } else {
            writeln!(self.out, "{line}")?;
        }
        self.n += 1;
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<u64> {
        self.out.flush().context("sending to the syslog listener")?;
        let _ = self.out.get_ref().shutdown(std::net::Shutdown::Write);
        Ok(self.n)
    }
}

/// Syslog over UDP: one line per datagram; the network may drop some.
pub struct UdpSink {
    sock: UdpSocket,
    pacer: Pacer,
    n: u64,
}

impl UdpSink {
    /// A socket aimed at the syslog UDP listener at `addr`.
    pub fn connect(addr: &str, pacer: Pacer) -> anyhow::Result<UdpSink> {
        let target = addr
            .to_socket_addrs()?
            .next()
            .with_context(|| format!("resolving {addr}"))?;
        let bind = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(bind).context("binding a UDP socket")?;
        sock.connect(target)
            .with_context(|| format!("connecting to {addr}"))?;
        Ok(UdpSink { sock, pacer, n: 0 })
    }
}

impl Sink for UdpSink {
    fn line(&mut self, line: &str, time_ms: i64) -> anyhow::Result<()> {
        let d = self.pacer.delay(time_ms);
        if d > Duration::from_millis(1) {
            std::thread::sleep(d);
        }
        self.sock
            .send(line.as_bytes())
            .context("sending a syslog datagram")?;
        self.n += 1;
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<u64> {
        Ok(self.n)
    }
}

/// `POST /api/v1/events` in batches: `text/plain` for native lines (Vigil
/// detects each line's format), `application/x-ndjson` for `--format ndjson`.
pub struct HttpSink {
    url: String,
    token: String,
    content_type: &'static str,
    http: reqwest::blocking::Client,
    pacer: Pacer,
    batch: String,
    batch_lines: usize,
    batch_max: usize,
    batch_started: Instant,
    n: u64,
}

impl HttpSink {
    /// A client posting to `base` (`http://HOST:PORT`) with `token`.
    pub fn new(
        base: &str,
        token: String,
        ndjson: bool,
        pacer: Pacer,
        rate: Option<f64>,
    ) -> anyhow::Result<HttpSink> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        // About ten requests a second at the target rate, at most 1000 lines each.
        let batch_max = rate.map_or(1000, |r| ((r / 10.0) as usize).clamp(1, 1000));
        Ok(HttpSink {
            url: format!("{base}/api/v1/events?source=simulate"),
            token,
            content_type: if ndjson {
                "application/x-ndjson"
            } else {
                "text/plain"
            },
            http,
            pacer,
            batch: String::new(),
            batch_lines: 0,
            batch_max,
            batch_started: Instant::now(),
            n: 0,
        })
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch_lines == 0 {
            return Ok(());
        }
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", self.content_type)
            .body(std::mem::take(&mut self.batch))
            .send()
            .with_context(|| format!("posting to {}", self.url))?;
        if !resp.status().is_success() {
            let status = resp.status();
            bail!(
                "{} answered {status}: {}",
                self.url,
                resp.text().unwrap_or_default()
            );
        }
        self.n += self.batch_lines as u64;
        self.batch_lines = 0;
        Ok(())
    }
}

impl Sink for HttpSink {
    fn line(&mut self, line: &str, time_ms: i64) -> anyhow::Result<()> {
        let d = self.pacer.delay(time_ms);
        if d > Duration::from_millis(50) {
            self.flush()?;
        }
        if d > Duration::from_millis(1) {
            std::thread::sleep(d);
        }
        if self.batch_lines == 0 {
            self.batch_started = Instant::now();
        }
        self.batch.push_str(line);
        self.batch.push('\n');
        self.batch_lines += 1;
        if self.batch_lines >= self.batch_max
            || self.batch_started.elapsed() > Duration::from_millis(200)
        {
            self.flush()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> anyhow::Result<u64> {
        self.flush()?;
        Ok(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_remote_is_refused() {
        assert_eq!(
            Target::parse("syslog-tcp://127.0.0.1:5514", false).unwrap(),
            Target::SyslogTcp("127.0.0.1:5514".into())
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:8514/", false).unwrap(),
            Target::Http("http://127.0.0.1:8514".into())
        );
        assert!(Target::parse("syslog-udp://[::1]:514", false).is_ok());
        let e = Target::parse("syslog-udp://192.0.2.1:514", false).unwrap_err();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        assert!(Target::parse("syslog-udp://192.0.2.1:514", true).is_ok());
        assert!(Target::parse("ftp://127.0.0.1:1", false).is_err());
    }

    #[test]
    fn pacer_spaces_lines_at_the_rate() {
        let mut p = Pacer::new(Some(100.0), None);
        assert_eq!(p.delay(0), Duration::ZERO);
        // The 11th line is due 100 ms in.
        for _ in 0..9 {
            p.delay(0);
        }
        assert!(p.delay(0) > Duration::from_millis(50));
    }

    #[test]
    fn pacer_follows_event_time_at_speed() {
        // 60 simulated seconds per real second: an event a minute in is due after 1 s.
        let mut p = Pacer::new(None, Some(60.0));
        assert_eq!(p.delay(1_000_000), Duration::ZERO);
        let d = p.delay(1_060_000);
        assert!(
            d > Duration::from_millis(900) && d <= Duration::from_secs(1),
            "{d:?}"
        );
    }
}
