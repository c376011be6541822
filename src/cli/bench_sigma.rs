//! `vigil bench sigma`: Sigma evaluation speed on one thread.
//!
//! Loads a rule set (by default the SigmaHQ Windows rules of the shared
//! corpus) and evaluates it over NDJSON events (by default the OTRF
//! Windows datasets), cycling through them until the requested count, on
//! one thread, as `vigil hunt` does: each line is read by the flat reader
//! (`vigil_sigma::flat`) and evaluated, and only lines that match (or are
//! not flat) are parsed into a `serde_json::Value` and evaluated again. In
//! the same run, a pass that only parses every line into a
//! `serde_json::Value` gives the reference: the ratio compares a full
//! evaluation with merely reading the events the usual way.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use vigil_sigma::flat::FlatEvent;
use vigil_sigma::ruleset::RuleSet;
use vigil_sigma::value::Placeholders;

use super::bench::{median, peak_rss_kib};
use super::hunt_input::parse_json_event;

/// Flags of `vigil bench sigma`.
#[derive(Debug, Args)]
pub struct SigmaBench {
    /// Rule file or directory (repeatable); default: the SigmaHQ Windows
    /// rules, `../shared/corpus/sigma/rules/rules/windows`.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// NDJSON input file (repeatable); default: the OTRF Windows datasets,
    /// `../shared/corpus/windows/datasets/*.ndjson`.
    #[arg(long = "input", value_name = "FILE")]
    inputs: Vec<PathBuf>,
    /// Events evaluated per run (the inputs are cycled).
    #[arg(long, default_value_t = 650_000)]
    events: u64,
    /// Runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also run this `rsigma` binary (`rsigma engine eval`) over the same
    /// rules and events, fed on stdin, as the reference.
    #[arg(long, value_name = "PATH")]
    rsigma: Option<PathBuf>,
}

fn corpus() -> Option<PathBuf> {
    ["../shared/corpus", "shared/corpus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
}

fn default_inputs() -> anyhow::Result<Vec<PathBuf>> {
    let Some(c) = corpus() else {
        bail!("no --input given and ../shared/corpus not found");
    };
    let dir = c.join("windows/datasets");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    v.sort();
    Ok(v)
}

/// Lines kept in one buffer: the buffer and each line's (start, length).
type Lines = (Vec<u8>, Vec<(usize, usize)>);

/// The non-empty lines of the inputs, in one buffer.
fn read_lines(paths: &[PathBuf]) -> anyhow::Result<Lines> {
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    for p in paths {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        for line in data.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            spans.push((buf.len(), line.len()));
            buf.extend_from_slice(line);
        }
    }
    if spans.is_empty() {
        bail!("the inputs hold no events");
    }
    Ok((buf, spans))
}

fn load(paths: &[PathBuf]) -> anyhow::Result<(RuleSet, usize, f64)> {
    let t = Instant::now();
    let report = vigil_sigma::loader::load_paths(paths, &Placeholders::default());
    let refused = report.refused.len();
    let set = RuleSet::new(report.rules);
    Ok((set, refused, t.elapsed().as_secs_f64()))
}

/// Runs the benchmark and prints its table.
pub fn run(b: SigmaBench) -> anyhow::Result<ExitCode> {
    let rules = if b.rules.is_empty() {
        let Some(c) = corpus() else {
            bail!("no --rules given and ../shared/corpus not found");
        };
        vec![c.join("sigma/rules/rules/windows")]
    } else {
        b.rules.clone()
    };
    if let Some(missing) = rules.iter().find(|p| !p.exists()) {
        bail!("rules path {} does not exist", missing.display());
    }
    let inputs = if b.inputs.is_empty() {
        default_inputs()?
    } else {
        b.inputs.clone()
    };
    let (buf, spans) = read_lines(&inputs)?;
    let runs = b.runs.max(1);
    let n = b.events.max(1);
    let line = |i: u64| {
        let (s, l) = spans[(i % spans.len() as u64) as usize];
        &buf[s..s + l]
    };
    let bytes: u64 = (0..n).map(|i| line(i).len() as u64).sum();

    let mut load_secs = Vec::new();
    let mut parse_secs = Vec::new();
    let mut full_secs = Vec::new();
    let mut flat_secs = Vec::new();
    let mut flat_events = 0u64;
    let mut matches = 0u64;
    let mut set_info = None;
    for _ in 0..runs {
        let (set, refused, secs) = load(&rules)?;
        load_secs.push(secs);

        let t = Instant::now();
        let mut objects = 0u64;
        for i in 0..n {
            if let Ok(v) = parse_json_event(line(i)) {
                objects += u64::from(v.is_object());
            }
        }
        parse_secs.push(t.elapsed().as_secs_f64());
        if objects != n {
            bail!("{} of {n} input lines are not JSON objects", n - objects);
        }

        let t = Instant::now();
        let mut flat_n = 0u64;
        for i in 0..n {
            flat_n += u64::from(FlatEvent::parse(line(i)).is_some());
        }
        flat_secs.push(t.elapsed().as_secs_f64());
        flat_events = flat_n;

        // As `vigil hunt` does: flat lines take the fast path, and the few
        // that match (or are not flat) are parsed in full and evaluated.
        let t = Instant::now();
        let mut m = 0u64;
        for i in 0..n {
            let l = line(i);
            let mut hit = false;
            match FlatEvent::parse(l) {
                Some(fe) => set.matching_flat(&fe, |_| hit = true),
                None => hit = true,
            }
            if hit {
                if let Ok(v) = parse_json_event(l) {
                    set.matching(&v, |_| m += 1);
                }
            }
        }
        full_secs.push(t.elapsed().as_secs_f64());
        matches = m;
        set_info = Some((
            set.rules().len(),
            refused,
            set.unroutable(),
            set.prefilter_stats(),
        ));
    }
    let (loaded, refused, unroutable, pf) = set_info.expect("at least one run");
    let (load_s, parse_s, full_s) = (median(load_secs), median(parse_secs), median(full_secs));
    let flat_s = median(flat_secs);
    let mb = bytes as f64 / 1e6;
    println!(
        "sigma: {loaded} rules ({refused} refused, {unroutable} with a logsource no mapping knows), loaded in {load_s:.2} s (median of {runs})"
    );
    println!(
        "prefilter: {} literals; {} rule slots evaluated on every event of their channel/ID",
        pf.literals, pf.always
    );
    println!(
        "input: {} distinct events, {n} per run ({mb:.1} MB), one thread",
        spans.len()
    );
    println!(
        "{:<24} {:>12} {:>10} {:>10}",
        "pass (median)", "events/s", "MB/s", "seconds"
    );
    for (name, s) in [
        ("serde_json Value only", parse_s),
        ("flat reader only", flat_s),
        ("read + evaluate", full_s),
    ] {
        println!(
            "{name:<24} {:>12.0} {:>10.1} {:>10.3}",
            n as f64 / s,
            mb / s,
            s
        );
    }
    println!("{flat_events} of {n} events read by the flat reader; matches per run: {matches}");
    println!(
        "read + evaluate ÷ serde_json Value only: {:.2} (time ratio)",
        full_s / parse_s
    );
    let vigil_rss = peak_rss_kib(std::process::id()) as f64 / 1024.0;
    println!("peak RSS (whole process): {vigil_rss:.0} MiB");
    if let Some(bin) = &b.rsigma {
        let events = |count: u64| (0..count).map(line);
        let mut walls = Vec::new();
        let mut rss = 0.0f64;
        let mut out_lines = 0u64;
        for _ in 0..runs {
            let (secs, kib, lines) = run_rsigma(bin, &rules, events(n))?;
            walls.push(secs);
            rss = rss.max(kib / 1024.0);
            out_lines = lines;
        }
        let (load, _, _) = run_rsigma(bin, &rules, events(1))?;
        let wall = median(walls);
        let eval = (wall - load).max(1e-9);
        println!(
            "rsigma engine eval (same rules, same {n} events on stdin, one process): {:.1} s whole process, of which {load:.2} s loading (one-event run); {:.0} events/s evaluating, {:.0} events/s whole process; {out_lines} output lines; peak RSS {rss:.0} MiB",
            wall,
            n as f64 / eval,
            n as f64 / wall
        );
        println!(
            "vigil ÷ rsigma: {:.2} (evaluating, events/s), {:.2} (whole run incl. loading)",
            (n as f64 / full_s) / (n as f64 / eval),
            wall / (full_s + load_s)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `rsigma engine eval -r RULES...` with `events` on stdin; returns
/// (wall seconds, peak RSS in KiB from `/usr/bin/time`, stdout lines).
fn run_rsigma<'l>(
    bin: &std::path::Path,
    rules: &[PathBuf],
    events: impl Iterator<Item = &'l [u8]>,
) -> anyhow::Result<(f64, f64, u64)> {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let time = std::path::Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "vigil-bench-maxrss=%M"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(["engine", "eval", "--output-format", "ndjson"]);
    for r in rules {
        cmd.arg("-r").arg(r);
    }
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let counter = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .split(b'\n')
            .map_while(Result::ok)
            .count() as u64
    });
    let stderr = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    {
        let mut stdin =
            std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
        for e in events {
            stdin.write_all(e)?;
            stdin.write_all(b"\n")?;
        }
        stdin.flush()?;
    }
    let status = child.wait()?;
    let secs = t.elapsed().as_secs_f64();
    let lines = counter.join().unwrap_or(0);
    let err = errs.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{} exited with {status}: {}",
            bin.display(),
            err.lines().last().unwrap_or("")
        );
    }
    let kib = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("vigil-bench-maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    Ok((secs, kib, lines))
}
