//! `vigil simulate`: realistic, labelled security telemetry for demos,
//! benchmarks and detection tests.
//!
//! A seeded world (hosts, users, address pools) produces benign activity at a
//! diurnal rate ([`background`]) with attacks injected at seeded times
//! ([`attacks`]); a time-ordered merge ([`timeline`]) renders each record in
//! its source's native format ([`record`]) to a file, stdout or a running
//! Vigil ([`send`]), and writes a labels file naming every attack line.
//! See `docs/SIMULATE.md`.

mod attacks;
mod background;
mod labels;
mod record;
mod rng;
mod send;
mod sources;
mod timeline;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use attacks::{Instance, Kind};
use record::Format;
use rng::Rng;
use send::{HttpSink, Pacer, Sink, Target, TcpSink, UdpSink, WriterSink};
use timeline::Timeline;

/// Default first event time: a Monday midnight, so runs start quiet and
/// ramp up like a real week. Fixed so that output depends only on the flags.
const DEFAULT_START: &str = "2025-01-06T00:00:00Z";
/// Default background rate in records per simulated second (weekly mean).
const DEFAULT_SIM_RATE: f64 = 20.0;
/// Default sending rate in lines per second.
const DEFAULT_SEND_RATE: f64 = 1000.0;
/// Attacks may take at most this share of an `--events` budget.
const ATTACK_SHARE: f64 = 0.25;

/// Flags of `vigil simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Seed: the same seed and flags give byte-identical output and labels.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of lines to generate (default 10000 when no --duration is given).
    #[arg(long)]
    events: Option<u64>,
    /// Simulated time span, e.g. 90s, 10m, 2h, 7d.
    #[arg(long, value_parser = parse_duration_ms)]
    duration: Option<i64>,
    /// Time of the first event: RFC 3339, or `now` [default: 2025-01-06T00:00:00Z].
    #[arg(long)]
    start: Option<String>,
    /// Background records per simulated second, averaged over a week; the
    /// hour of day and weekday modulate it [default: 20, or --rate when sending].
    #[arg(long)]
    sim_rate: Option<f64>,
    /// Attacks to inject: `all`, `none`, or a comma list of brute_force,
    /// password_spray, credential_stuffing, sudo_abuse, web_scan, new_admin, log_clearing,
    /// network_scan.
    #[arg(long, default_value = "all")]
    attacks: String,
    /// Output file, or `-` for stdout (ignored with --send).
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Labels file (NDJSON): one line per attack line and one per attack instance.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// `native` (each source's own format) or `ndjson` (flat ECS-style JSON).
    #[arg(long, value_enum, default_value = "native")]
    format: Format,
    /// Send to a running Vigil: syslog-tcp://HOST:PORT, syslog-udp://HOST:PORT or http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    send: Option<String>,
    /// API token for --send http://… .
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Lines per second when sending [default: 1000].
    #[arg(long)]
    rate: Option<f64>,
    /// Pace sending by event time instead: X simulated seconds per real second.
    #[arg(long, conflicts_with = "rate")]
    speed: Option<f64>,
    /// Allow --send to a non-loopback address.
    #[arg(long)]
    allow_remote: bool,
}

/// Parses `90s`, `10m`, `2h`, `7d` (or plain seconds) into milliseconds.
fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let ms = match unit {
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m, h or d)")),
    };
    match n.checked_mul(ms) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("duration {s:?} must be positive")),
    }
}

fn parse_attacks(s: &str) -> anyhow::Result<Vec<Kind>> {
    match s.trim() {
        "all" => Ok(attacks::ALL.to_vec()),
        "none" | "" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|n| {
                Kind::parse(n.trim()).with_context(|| {
                    let names: Vec<_> = attacks::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "unknown attack {n:?}; known: all, none, {}",
                        names.join(", ")
                    )
                })
            })
            .collect(),
    }
}

/// The attack plan for a run: instances in a timeline, before any background.
struct Plan {
    instances: Vec<Instance>,
    timeline: Timeline,
    events: usize,
}

/// Plans every attack instance inside `[start, start + window)`.
fn plan_attacks(
    kinds: &[Kind],
    seed: u64,
    start_ms: i64,
    window_ms: i64,
    scale: f64,
    w: &world::World,
) -> Plan {
    let mut tl = Timeline::default();
    let mut instances = Vec::new();
    let days = (window_ms / 86_400_000).max(1) as usize;
    for &kind in kinds {
        // Platform-specific attacks run once per platform at least.
        let two_platforms = matches!(kind, Kind::NewAdmin | Kind::LogClearing);
        let count = if two_platforms { days.max(2) } else { days };
        for j in 0..count {
            let idx = instances.len();
            let mut r = Rng::fork(seed, 1000 + idx as u64);
            let windows = match kind {
                Kind::PasswordSpray => true,
                _ if two_platforms => (j + (seed as usize & 1)) % 2 == 1,
                _ => false,
            };
            let at = start_ms + (window_ms as f64 * (0.05 + 0.7 * r.f64())) as i64;
            let inst = attacks::plan(
                kind,
                idx,
                windows,
                at,
                scale,
                window_ms / 5,
                w,
                &mut r,
                &mut tl,
            );
            instances.push(inst);
        }
    }
    let events = instances.iter().map(|i| i.events).sum();
    Plan {
        instances,
        timeline: tl,
        events,
    }
}

/// Runs `vigil simulate`.
pub fn run(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let kinds = parse_attacks(&a.attacks)?;
    let target = a
        .send
        .as_deref()
        .map(|s| Target::parse(s, a.allow_remote))
        .transpose()?;
    if target.is_some() && a.events.is_none() && a.duration.is_none() {
        bail!("sending needs a bound: give --events N and/or --duration D");
    }
    let events = match (a.events, a.duration) {
        (None, None) => Some(10_000),
        (e, _) => e,
    };
    if events == Some(0) {
        bail!("--events must be positive");
    }
    let start_ms = match a.start.as_deref().unwrap_or(DEFAULT_START) {
        "now" => chrono::Utc::now().timestamp_millis(),
        s => chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--start {s:?} is not RFC 3339 (or `now`)"))?
            .timestamp_millis(),
    };
    let send_rate = if target.is_some() && a.speed.is_none() {
        Some(a.rate.unwrap_or(DEFAULT_SEND_RATE))
    } else {
        a.rate
    };
    // When sending at a rate, simulated time then runs about as fast as real time.
    let sim_rate = a
        .sim_rate
        .or(target.as_ref().and(send_rate))
        .unwrap_or(DEFAULT_SIM_RATE);
    if !(sim_rate.is_finite() && sim_rate > 0.0) {
        bail!("--sim-rate must be positive");
    }

    let w = world::World::new(&mut Rng::fork(a.seed, 1));

    // Size the attacks: natural sizes, shrunk to a share of an --events budget.
    let est_window = |n: u64, attack: usize| -> i64 {
        let bg = n.saturating_sub(attack as u64).max(1);
        world::expected_span_ms(start_ms, sim_rate, bg as f64).max(1000)
    };
    let mut window = match (events, a.duration) {
        (Some(n), Some(d)) => est_window(n, 0).min(d),
        (Some(n), None) => est_window(n, 0),
        (None, Some(d)) => d,
        (None, None) => unreachable!("a bound is always set"),
    };
    let mut plan = plan_attacks(&kinds, a.seed, start_ms, window, 1.0, &w);
    if let Some(n) = events {
        let budget = n as f64 * ATTACK_SHARE;
        let scale = (budget / plan.events.max(1) as f64).min(1.0);
        let approx = (plan.events as f64 * scale) as usize;
        window = est_window(n, approx);
        if let Some(d) = a.duration {
            window = window.min(d);
        }
        plan = plan_attacks(&kinds, a.seed, start_ms, window, scale, &w);
        if plan.events as u64 > n {
            bail!(
                "--events {n} is too small for the {} attack lines requested; raise --events or narrow --attacks",
                plan.events
            );
        }
    } else if let Some(d) = a.duration {
        // Duration only: keep attacks to the same share of the expected lines,
        // so that a short run is not mostly attack.
        let expected = world::expected_records(start_ms, sim_rate, d);
        let scale = expected * ATTACK_SHARE / plan.events.max(1) as f64;
        if scale < 1.0 {
            plan = plan_attacks(&kinds, a.seed, start_ms, window, scale, &w);
        }
    }

    let out_sink: Box<dyn Sink> = match &target {
        None => {
            let w: Box<dyn std::io::Write> = if a.out.as_os_str() == "-" {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(
                    std::fs::File::create(&a.out)
                        .with_context(|| format!("creating {}", a.out.display()))?,
                )
            };
            Box::new(WriterSink::new(w))
        }
        Some(t) => {
            let pacer = Pacer::new(send_rate, a.speed);
            match t {
                Target::SyslogTcp(addr) => Box::new(TcpSink::connect(addr, pacer)?),
                Target::SyslogUdp(addr) => Box::new(UdpSink::connect(addr, pacer)?),
                Target::Http(base) => {
                    let Some(token) = a.token.clone() else {
                        bail!("--send http://… needs --token (or VIGIL_TOKEN)");
                    };
                    Box::new(HttpSink::new(
                        base,
                        token,
                        a.format == Format::Ndjson,
                        pacer,
                        send_rate,
                    )?)
                }
            }
        }
    };
    let labels = match &a.labels {
        Some(p) => Some(labels::Labels::create(p)?),
        None => None,
    };
    let bg = background::Background::new(Rng::fork(a.seed, 2), sim_rate, start_ms);
    let started = std::time::Instant::now();
    let stats = generate(
        &w,
        bg,
        plan,
        Bounds {
            events,
            end_ms: a.duration.map(|d| start_ms + d),
        },
        a.format,
        out_sink,
        labels,
    )?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulate: {} lines ({} in {} attacks) from {} to {}",
        stats.lines,
        stats.attack_lines,
        stats.attacks,
        record::rfc3339(stats.first_ms),
        record::rfc3339(stats.last_ms),
    );
    let what = if target.is_some() { "sent" } else { "wrote" };
    eprintln!(
        "simulate: {what} {} lines in {secs:.2} s ({:.0} lines/s)",
        stats.delivered,
        stats.delivered as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// When generation stops.
struct Bounds {
    /// Exact number of lines.
    events: Option<u64>,
    /// No line at or after this time.
    end_ms: Option<i64>,
}

/// What a run produced.
#[derive(Debug, Default)]
struct Stats {
    lines: u64,
    attack_lines: u64,
    attacks: usize,
    delivered: u64,
    first_ms: i64,
    last_ms: i64,
}

/// Merges background and attacks in time order and writes every line.
fn generate(
    w: &world::World,
    mut bg: background::Background,
    plan: Plan,
    bounds: Bounds,
    format: Format,
    mut sink: Box<dyn Sink>,
    mut labels: Option<labels::Labels>,
) -> anyhow::Result<Stats> {
    let Plan {
        instances,
        timeline: mut tl,
        events: attack_events,
    } = plan;
    // Background gets what the attacks leave of the budget, so the total is exact.
    let mut bg_budget = bounds.events.map(|n| n - attack_events as u64);
    let mut stats = Stats {
        attacks: instances.len(),
        first_ms: i64::MAX,
        ..Default::default()
    };
    let mut tracker = labels::Tracker::new(instances.len());
    let mut line = String::with_capacity(1024);
    loop {
        let bg_active = bg_budget != Some(0) && bounds.end_ms.is_none_or(|e| bg.next_ms < e);
        if bg_active && tl.peek_time().is_none_or(|t| t > bg.next_ms) {
            bg.step(w, &mut tl);
            continue;
        }
        if !bg_active && tl.labelled == 0 {
            break;
        }
        let Some(e) = tl.pop() else { break };
        let t = e.record.time_ms;
        if bounds.end_ms.is_some_and(|end| t >= end) {
            // Only follow-ups past the end (session closes) get here.
            continue;
        }
        if e.label.is_none() {
            match &mut bg_budget {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        line.clear();
        e.record.render(format, &mut line);
        stats.lines += 1;
        stats.first_ms = stats.first_ms.min(t);
        stats.last_ms = stats.last_ms.max(t);
        if let Some(l) = &e.label {
            stats.attack_lines += 1;
            tracker.saw(l.attack, stats.lines);
            if let Some(out) = &mut labels {
                out.event(&instances[l.attack], l, &e.record, stats.lines)?;
            }
        }
        sink.line(&line, t)?;
    }
    stats.delivered = sink.finish()?;
    if let Some(mut out) = labels {
        out.finish(&instances, &tracker)?;
    }
    if stats.first_ms == i64::MAX {
        stats.first_ms = 0;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("5"), Ok(5_000));
        assert!(parse_duration_ms("0m").is_err());
        assert!(parse_duration_ms("3w").is_err());
    }

    #[test]
    fn attack_lists_parse() {
        assert_eq!(parse_attacks("all").unwrap().len(), 8);
        assert!(parse_attacks("none").unwrap().is_empty());
        assert_eq!(
            parse_attacks("web_scan, brute_force").unwrap(),
            vec![Kind::WebScan, Kind::BruteForce]
        );
        assert!(parse_attacks("ddos").is_err());
    }
}
