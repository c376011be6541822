//! `vigil bench flood`: what a flood far above capacity does to the
//! server's memory.
//!
//! Starts a real `vigil serve` (default config) on loopback, measures its
//! capacity (events/s made durable from one TCP connection), then floods it
//! for a bounded time from every input at once: many syslog TCP
//! connections writing as fast as the kernel lets them, UDP datagrams as
//! fast as one thread can send, and HTTP batches in a loop. Reports the
//! offered load as a multiple of capacity, what was stored, how HTTP
//! senders were answered (200 / 429), and the server's resident memory
//! sampled every 100 ms (peak and after the flood).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::bench::{durable_seq, make_stream, serve_command, start_server};

/// Flags of `vigil bench flood`.
#[derive(Debug, Args)]
pub struct FloodBench {
    /// Seconds of flood (at most 300).
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Seconds of the capacity measurement before it (at most 120).
    #[arg(long, default_value_t = 8)]
    capacity_secs: u64,
    /// Syslog TCP connections during the flood.
    #[arg(long, default_value_t = 32)]
    tcp_connections: usize,
    /// Threads posting HTTP batches during the flood.
    #[arg(long, default_value_t = 4)]
    http_senders: usize,
    /// Events per HTTP batch.
    #[arg(long, default_value_t = 2000)]
    http_batch: usize,
}

const TOKEN: &str = "vgl_bench_token_0123456789abcdef0123456789abcdef";

/// Resident memory of `pid` now (`VmRSS`), KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Counters shared by the sender threads.
#[derive(Default)]
struct Offered {
    tcp: AtomicU64,
    udp: AtomicU64,
    http: AtomicU64,
    http_ok: AtomicU64,
    http_429: AtomicU64,
    http_other: AtomicU64,
}

/// Runs `vigil bench flood`.
pub fn run(b: FloodBench) -> anyhow::Result<ExitCode> {
    if b.secs == 0 || b.secs > 300 || b.capacity_secs == 0 || b.capacity_secs > 120 {
        bail!("--secs must be 1..=300 and --capacity-secs 1..=120");
    }
    if b.tcp_connections > 512 || b.http_senders > 64 || b.http_batch == 0 || b.http_batch > 100_000
    {
        bail!("--tcp-connections at most 512, --http-senders at most 64, --http-batch 1..=100000");
    }
    let dir = tempfile::tempdir()?;
    let mut cmd = serve_command(dir.path(), TOKEN, "error")?;
    cmd.env_remove("VIGIL_CONFIG");
    let (child, (http, tcp, udp)) = start_server(cmd)?;
    let pid = child.0.id();
    let idle_rss = rss_kib(pid);

    // Capacity: one connection, as fast as the server stores.
    let chunk = make_stream(20_000, 200);
    let start = Instant::now();
    let cap_deadline = start + Duration::from_secs(b.capacity_secs);
    let mut s = TcpStream::connect(tcp)?;
    s.set_write_timeout(Some(Duration::from_millis(200)))?;
    let first = durable_seq(http)?;
    while Instant::now() < cap_deadline {
        let _ = s.write_all(&chunk);
    }
    drop(s);
    let stored = durable_seq(http)?.saturating_sub(first);
    let capacity = stored as f64 / start.elapsed().as_secs_f64();
    eprintln!("capacity: {capacity:.0} events/s durable from one TCP connection");

    // The flood.
    let stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(Offered::default());
    let peak = Arc::new(AtomicU64::new(0));
    let before = durable_seq(http)?;
    let flood_start = Instant::now();
    let mut threads = Vec::new();
    {
        let (stop, peak) = (stop.clone(), peak.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    let chunk = Arc::new(make_stream(2_000, 200));
    for _ in 0..b.tcp_connections {
        let (stop, offered, chunk) = (stop.clone(), offered.clone(), chunk.clone());
        threads.push(std::thread::spawn(move || {
            let Ok(mut s) = TcpStream::connect(tcp) else {
                return;
            };
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&chunk).is_ok() {
                    offered.tcp.fetch_add(2_000, Ordering::Relaxed);
                }
            }
        }));
    }
    {
        let (stop, offered) = (stop.clone(), offered.clone());
        threads.push(std::thread::spawn(move || {
            let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
                return;
            };
            let msg = b"<38>1 2026-11-22T10:00:00Z web-01.example.net sshd 4242 - - Failed password for invalid user admin from 203.0.113.7 port 4022 ssh2";
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    if sock.send_to(msg, udp).is_ok() {
                        offered.udp.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let body: Arc<String> = Arc::new(
        (0..b.http_batch)
            .map(|i| {
                format!(
                    "{{\"message\":\"flood {i}\",\"source.ip\":\"198.51.100.{}\"}}\n",
                    i % 250
                )
            })
            .collect(),
    );
    for _ in 0..b.http_senders {
        let (stop, offered, body) = (stop.clone(), offered.clone(), body.clone());
        let n = b.http_batch as u64;
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                offered.http.fetch_add(n, Ordering::Relaxed);
                match post(http, &body) {
                    Ok(200) => offered.http_ok.fetch_add(1, Ordering::Relaxed),
                    Ok(429) => {
                        // A well-behaved sender would wait Retry-After; a
                        // flood does not, but the loop stays bounded by time.
                        offered.http_429.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => offered.http_other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(b.secs));
    stop.store(true, Ordering::Relaxed);
    let secs = flood_start.elapsed().as_secs_f64();
    for t in threads {
        let _ = t.join();
    }
    let during = durable_seq(http)?.saturating_sub(before);
    // Let queued work drain, then read memory at rest.
    std::thread::sleep(Duration::from_secs(5));
    let after_rss = rss_kib(pid);
    let alive = durable_seq(http).is_ok();
    let o = &offered;
    let (t, u, h) = (
        o.tcp.load(Ordering::Relaxed),
        o.udp.load(Ordering::Relaxed),
        o.http.load(Ordering::Relaxed),
    );
    let offered_rate = (t + u + h) as f64 / secs;
    println!("| measure | value |");
    println!("|---|---|");
    println!("| capacity (durable, one TCP connection) | {capacity:.0} events/s |");
    println!(
        "| offered during the flood ({secs:.0} s) | {offered_rate:.0} events/s = **{:.1}× capacity** (TCP {:.0}/s accepted by the kernel over {} connections, UDP {:.0}/s sent, HTTP {:.0}/s posted by {} senders) |",
        offered_rate / capacity.max(1.0),
        t as f64 / secs,
        b.tcp_connections,
        u as f64 / secs,
        h as f64 / secs,
        b.http_senders
    );
    println!(
        "| stored during the flood | {:.0} events/s |",
        during as f64 / secs
    );
    println!(
        "| HTTP answers | {} × 200, {} × 429, {} other |",
        o.http_ok.load(Ordering::Relaxed),
        o.http_429.load(Ordering::Relaxed),
        o.http_other.load(Ordering::Relaxed)
    );
    println!(
        "| server RSS idle / peak during flood / 5 s after | {} / **{}** / {} MiB |",
        idle_rss / 1024,
        peak.load(Ordering::Relaxed)
            .max(super::bench::peak_rss_kib(pid))
            / 1024,
        after_rss / 1024
    );
    println!(
        "| server answering after the flood | {} |",
        if alive { "yes" } else { "NO" }
    );
    Ok(if alive {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One NDJSON batch over a fresh connection; the HTTP status.
fn post(http: SocketAddr, body: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect(http)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST /api/v1/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body.as_bytes())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let code = std::str::from_utf8(&head[9..12])?.parse()?;
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    Ok(code)
}
