//! `vigil bench ingest`: sustained syslog ingest, measured end to end
//! (`vigil bench sigma` is in `bench_sigma`).
//!
//! Starts a real `vigil serve` child process on loopback ports with a fresh
//! data dir, streams N octet-counted RFC 5424 messages over one TCP
//! connection, and stops the clock when the server reports all N durable
//! (fsync'd). With `--rsyslog`, the same stream goes to rsyslogd (imtcp to
//! omfile) in the same run, so the result is a ratio on the same machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

/// `vigil bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Syslog TCP ingest until durable.
    Ingest(IngestBench),
    /// Sigma rule evaluation over Windows events, one thread.
    Sigma(super::bench_sigma::SigmaBench),
    /// Needle and aggregation searches: index, full scan and grep -F.
    Search(super::bench_search::SearchBench),
    /// A flood far above capacity from every input: memory and answers.
    Flood(super::bench_flood::FloodBench),
    /// Delay from an attack's first event to its built-in detector alert
    /// in a running server.
    Detect(super::bench_detect::DetectBench),
}

#[derive(Debug, Args)]
struct IngestBench {
    /// Messages per run.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Approximate message size in bytes.
    #[arg(long, default_value_t = 200)]
    message_bytes: usize,
    /// Runs per target; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also measure rsyslogd receiving the same stream into a file.
    #[arg(long)]
    rsyslog: bool,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Send the lines of this file (e.g. `vigil simulate` output, up to
    /// `--events` of them) instead of generated syslog messages.
    #[arg(long, value_name = "FILE")]
    from: Option<std::path::PathBuf>,
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        BenchWhat::Ingest(b) => ingest(b),
        BenchWhat::Sigma(b) => super::bench_sigma::run(b),
        BenchWhat::Search(b) => super::bench_search::run(b),
        BenchWhat::Flood(b) => super::bench_flood::run(b),
        BenchWhat::Detect(b) => super::bench_detect::run(b),
    }
}

struct RunResult {
    secs: f64,
    /// Until the search index also covered every complete run of index
    /// blocks (`None` for targets without an index).
    indexed_secs: Option<f64>,
    peak_rss_kib: u64,
}

/// The first `n` non-empty lines of `path`, newline-framed (the framing a
/// sender of mixed JSON and syslog lines uses: octet counting is only
/// recognised in front of a syslog `<PRI>`); returns them and how many
/// there were.
fn file_stream(path: &std::path::Path, n: u64) -> anyhow::Result<(Vec<u8>, u64)> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    let mut count = 0;
    for line in BufReader::new(f).lines().take(n as usize) {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.is_empty() {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        count += 1;
    }
    Ok((out, count))
}

fn ingest(mut b: IngestBench) -> anyhow::Result<ExitCode> {
    let stream = match &b.from {
        Some(path) => {
            let (stream, n) = file_stream(path, b.events)?;
            b.events = n;
            stream
        }
        None => make_stream(b.events, b.message_bytes),
    };
    eprintln!(
        "bench ingest: {} messages of ~{} bytes ({:.1} MiB octet-counted), {} runs each",
        b.events,
        b.message_bytes,
        stream.len() as f64 / 1048576.0,
        b.runs
    );
    let timeout = Duration::from_secs(b.timeout_secs);
    let mut vigil = Vec::new();
    let modes: &[RsyslogMode] = if b.rsyslog { &RsyslogMode::ALL } else { &[] };
    let mut rsys: Vec<Vec<RunResult>> = modes.iter().map(|_| Vec::new()).collect();
    // Interleaved runs: machine noise hits every target alike.
    for i in 0..b.runs {
        let r = run_vigil(&stream, b.events, timeout)?;
        eprintln!(
            "  run {}: vigil                {:>9.0} events/s  ({:>9.0} stored and indexed)  peak RSS {:>5} MiB",
            i + 1,
            b.events as f64 / r.secs,
            b.events as f64 / r.indexed_secs.unwrap_or(f64::INFINITY),
            r.peak_rss_kib / 1024
        );
        vigil.push(r);
        for (m, out) in modes.iter().zip(rsys.iter_mut()) {
            let r = run_rsyslog(&stream, b.events, timeout, *m)?;
            eprintln!(
                "  run {}: rsyslog {:<12} {:>9.0} events/s  peak RSS {:>5} MiB",
                i + 1,
                m.name(),
                b.events as f64 / r.secs,
                r.peak_rss_kib / 1024
            );
            out.push(r);
        }
    }
    let rate = |rs: &[RunResult]| median(rs.iter().map(|r| b.events as f64 / r.secs).collect());
    let rss =
        |rs: &[RunResult]| median(rs.iter().map(|r| r.peak_rss_kib as f64).collect()) / 1024.0;
    let v = rate(&vigil);
    let indexed = median(
        vigil
            .iter()
            .filter_map(|r| r.indexed_secs.map(|s| b.events as f64 / s))
            .collect(),
    );
    println!("| target | median events/s | median peak RSS MiB | vigil / target |");
    println!("|---|---|---|---|");
    println!(
        "| vigil (decode, ECS, fsync before counted) | {v:.0} | {:.0} | 1.00 |",
        rss(&vigil)
    );
    println!(
        "| vigil, until also indexed (complete index chunks) | {indexed:.0} | {:.0} | {:.2} |",
        rss(&vigil),
        v / indexed
    );
    for (m, rs) in modes.iter().zip(&rsys) {
        let r = rate(rs);
        println!(
            "| rsyslog {} | {r:.0} | {:.0} | {:.2} |",
            m.describe(),
            rss(rs),
            v / r
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The median of `v` (0 when empty).
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

/// Realistic sshd/sudo/nginx-like RFC 5424 messages, octet-counted.
pub(super) fn make_stream(n: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * (size + 8));
    let apps = ["sshd", "sudo", "nginx", "cron", "kernel"];
    for i in 0..n {
        let app = apps[(i % 5) as usize];
        let mut msg = format!(
            "<38>1 2026-11-22T10:{:02}:{:02}.{:06}Z web-{:02}.example.net {app} {} - [meta seq=\"{i}\"] ",
            (i / 60) % 60,
            i % 60,
            i % 1_000_000,
            i % 17,
            1000 + i % 30000
        );
        let body = match app {
            "sshd" => format!("Failed password for invalid user admin{} from 203.0.113.{} port {} ssh2", i % 100, i % 250, 1024 + i % 60000),
            "sudo" => format!("alice : TTY=pts/{} ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart app{}", i % 8, i % 9),
            "nginx" => format!("198.51.100.{} - - \"GET /api/items/{} HTTP/1.1\" 200 {}", i % 250, i, 100 + i % 9000),
            _ => format!("job {} finished with status 0 after {} ms", i, i % 5000),
        };
        msg.push_str(&body);
        while msg.len() < size {
            msg.push('.');
        }
        out.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        out.extend_from_slice(msg.as_bytes());
    }
    out
}

fn send(addr: SocketAddr, data: &[u8]) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.write_all(data)?;
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

/// Peak resident set size (`VmHWM`) of process `pid`, KiB; 0 when unknown.
pub(super) fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A child process killed when dropped.
pub(super) struct KillOnDrop(pub(super) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_vigil(stream: &[u8], n: u64, timeout: Duration) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let token = "vgl_bench_token_0123456789abcdef0123456789abcdef";
    let (child, (http, tcp, _)) = start_server(serve_command(dir.path(), token, "warn")?)?;
    let pid = child.0.id();
    let start = Instant::now();
    send(tcp, stream)?;
    loop {
        let seq = durable_seq(http)?;
        if seq >= n {
            break;
        }
        if start.elapsed() > timeout {
            bail!("vigil stored only {seq} of {n} events within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    // The index is built from complete runs of durable seqs; the rest stays
    // searchable by a scan of the newest events. The run's length is that of
    // the config the server read (`./vigil.toml` when present).
    let chunk = vigil_server::config::Config::load(None)?
        .search
        .index_options()
        .chunk_len();
    let want = n / chunk * chunk;
    let indexed_secs = loop {
        let seq = indexed_seq(http)?;
        if seq.is_none_or(|s| s >= want) {
            break seq.map(|_| start.elapsed().as_secs_f64());
        }
        if start.elapsed() > timeout {
            bail!("vigil indexed only up to seq {seq:?} of {want} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(RunResult {
        secs,
        indexed_secs,
        peak_rss_kib: peak_rss_kib(pid),
    })
}

/// `vigil serve` on loopback ephemeral ports over `data_dir`, with `token`
/// as the admin token: callers may add to it before [`start_server`].
pub(super) fn serve_command(data_dir: &Path, token: &str, log: &str) -> anyhow::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--syslog",
        "127.0.0.1:0",
        "--log",
        log,
        "--data-dir",
    ])
    .arg(data_dir)
    .env("VIGIL_ADMIN_TOKEN", token)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    Ok(cmd)
}

/// Starts `cmd` (from [`serve_command`]) and waits for its banner; returns
/// the child (killed when dropped) and its HTTP, TCP and UDP addresses.
pub(super) fn start_server(
    mut cmd: Command,
) -> anyhow::Result<(KillOnDrop, (SocketAddr, SocketAddr, SocketAddr))> {
    let mut child = KillOnDrop(cmd.spawn().context("starting vigil serve")?);
    let stdout = child.0.stdout.take().context("vigil serve's stdout")?;
    let addrs = read_addresses(stdout)?;
    Ok((child, addrs))
}

/// The HTTP, syslog TCP and syslog UDP addresses from `vigil serve`'s banner.
pub(super) fn read_addresses(
    stdout: impl Read + Send + 'static,
) -> anyhow::Result<(SocketAddr, SocketAddr, SocketAddr)> {
    let (mut http, mut tcp, mut udp) = (None, None, None);
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = line?;
        for (scheme, slot) in [
            ("http://", &mut http),
            ("tcp://", &mut tcp),
            ("udp://", &mut udp),
        ] {
            if let Some(a) = line.split(scheme).nth(1) {
                *slot = Some(a.trim().parse()?);
            }
        }
        if line.starts_with("ready") {
            if let (Some(h), Some(t), Some(u)) = (http, tcp, udp) {
                // Keep reading so the server never writes into a closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok((h, t, u));
            }
            break;
        }
    }
    bail!("vigil serve exited before printing its HTTP, TCP and UDP addresses")
}

/// Reads `indexed_seq` from `/readyz` (`None` when the index is off).
fn indexed_seq(http: SocketAddr) -> anyhow::Result<Option<u64>> {
    Ok(readyz(http)?["indexed_seq"].as_u64())
}

/// Reads `durable_seq` from `/readyz` with a bare HTTP/1.1 request.
pub(super) fn durable_seq(http: SocketAddr) -> anyhow::Result<u64> {
    Ok(readyz(http)?["durable_seq"].as_u64().unwrap_or(0))
}

/// `/readyz`'s JSON, read with a bare HTTP/1.1 request.
fn readyz(http: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let mut s = TcpStream::connect(http)?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    Ok(serde_json::from_str(body).unwrap_or_default())
}

/// What rsyslog is asked to do with each message.
#[derive(Debug, Clone, Copy)]
enum RsyslogMode {
    /// Write the raw message: the least work a receiver can do.
    Raw,
    /// Parse and write every field as JSON (`%jsonmesg%`), closer to Vigil's work.
    Json,
    /// As `Json`, and fsync the file after each batch, as Vigil does before acknowledging.
    JsonSync,
}

impl RsyslogMode {
    const ALL: [RsyslogMode; 3] = [RsyslogMode::Raw, RsyslogMode::Json, RsyslogMode::JsonSync];

    fn name(self) -> &'static str {
        match self {
            RsyslogMode::Raw => "raw",
            RsyslogMode::Json => "json",
            RsyslogMode::JsonSync => "json+sync",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            RsyslogMode::Raw => "raw message to file, no fsync",
            RsyslogMode::Json => "%jsonmesg% to file, no fsync",
            RsyslogMode::JsonSync => "%jsonmesg% to file, sync=on",
        }
    }

    fn action(self, out: &Path) -> String {
        let (template, sync) = match self {
            RsyslogMode::Raw => ("%rawmsg%\\n", "off"),
            RsyslogMode::Json => ("%jsonmesg%\\n", "off"),
            RsyslogMode::JsonSync => ("%jsonmesg%\\n", "on"),
        };
        format!(
            "template(name=\"out\" type=\"string\" string=\"{template}\")\n\
             action(type=\"omfile\" file=\"{}\" template=\"out\" sync=\"{sync}\" flushOnTXEnd=\"on\")\n",
            out.display()
        )
    }
}

fn run_rsyslog(
    stream: &[u8],
    n: u64,
    timeout: Duration,
    mode: RsyslogMode,
) -> anyhow::Result<RunResult> {
    let bin =
        which("rsyslogd").context("--rsyslog needs rsyslogd on PATH (apt-get install rsyslog)")?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let out = dir.path().join("out.log");
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n{a}",
            d = dir.path().display(),
            a = mode.action(&out)
        ),
    )?;
    let mut child = KillOnDrop(
        Command::new(bin)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting rsyslogd")?,
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("rsyslogd did not open port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    send(addr, stream)?;
    loop {
        if count_lines(&out) >= n {
            break;
        }
        if start.elapsed() > timeout {
            bail!(
                "rsyslog wrote only {} of {n} lines within {timeout:?}",
                count_lines(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    let rss = peak_rss_kib(child.0.id());
    let _ = child.0.kill();
    Ok(RunResult {
        secs,
        indexed_secs: None,
        peak_rss_kib: rss,
    })
}

fn count_lines(p: &Path) -> u64 {
    let Ok(mut f) = std::fs::File::open(p) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    while let Ok(k) = f.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    n
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
