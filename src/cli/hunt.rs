//! `vigil hunt`: run Sigma rules over files, offline.

//!
//! Correlation rules: base-rule matches that a correlation listens to are
//! collected from every input thread into one buffer (the event kept as
//! compact JSON), sorted by event time and fed to one correlator, so that
//! correlations work across files in event-time order. The buffer holds at
//! most `--correlation-buffer` matches; when full it is sorted and fed, and
//! collecting goes on (a later batch older than a group's window is then
//! counted as late). Correlation matches are printed after the base
//! matches of the batch they complete.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use vigil_event::sanitize::display;
use vigil_sigma::compile::CompiledRule;
use vigil_sigma::correlation::{
    event_time, format_ms, CorrelationLimits, CorrelationMatch, CorrelationSet, CorrelationType,
    Correlator, Observation,
};
use vigil_sigma::flat::FlatEvent;
use vigil_sigma::logsource::LogsourceMapping;
use vigil_sigma::ruleset::{is_windows, RuleSet};
use vigil_sigma::value::Placeholders;
use vigil_sigma::views::{FlatWindowsView, JsonView};

use super::hunt_input::{detect, for_each_event, InputFormat, SkipLine};

#[path = "hunt_score.rs"]
pub(super) mod score;

/// Flags of `vigil hunt`.
#[derive(Debug, Args)]
pub struct HuntArgs {
    /// A Sigma rule file or a directory of rules (recursive). Repeatable.
    #[arg(
        long = "rules",
        required_unless_present = "builtin",
        value_name = "PATH"
    )]
    rules: Vec<PathBuf>,
    /// Also run Vigil's built-in detectors (authentication bursts, web
    /// scans and attacks, log tampering, privilege changes, new accounts,
    /// silent sources, first-seen baselines; docs/DETECTIONS.md) over the
    /// inputs in event-time order. Source silence is judged at the end of
    /// input against the newest event.
    #[arg(long)]
    builtin: bool,
    /// Score the built-in detectors' alerts against a labels file of
    /// `vigil simulate --labels` (per-detector true and false positives,
    /// recall and delay per attack type; docs/DETECTIONS.md "Accuracy").
    #[arg(long, requires = "builtin", value_name = "LABELS")]
    score: Option<PathBuf>,
    /// A value for an `|expand` placeholder: NAME=VALUE (repeatable).
    #[arg(long = "placeholder", value_name = "NAME=VALUE")]
    placeholders: Vec<String>,
    /// A logsource mapping file (YAML, the format of docs/RULES.md "Field
    /// mappings") applied on top of the built-in mappings (repeatable).
    #[arg(long = "mapping", value_name = "FILE")]
    mappings: Vec<PathBuf>,
    /// What to hunt in: .evtx, JSON/NDJSON or text log files, or a Vigil
    /// data directory (its stored events: a retro-hunt over history).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// For data-directory inputs: only events at or after this time
    /// (15m, 2h, 7d, or RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// For data-directory inputs: only events before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Correlation groups kept per correlation rule (oldest evicted beyond).
    #[arg(long, default_value_t = CorrelationLimits::default().max_groups, value_name = "N")]
    correlation_max_groups: usize,
    /// Events kept per correlation group (oldest evicted beyond).
    #[arg(long, default_value_t = CorrelationLimits::default().max_entries, value_name = "N")]
    correlation_max_entries: usize,
    /// Contributing events printed with one correlation match.
    #[arg(long, default_value_t = CorrelationLimits::default().max_evidence, value_name = "N")]
    correlation_max_events: usize,
    /// Base-rule matches buffered for event-time sorting before they are
    /// fed to the correlations.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    correlation_buffer: usize,
}

/// A rule with its position in the load, which correlations refer to.
#[derive(Debug)]
struct HuntRule {
    rule: CompiledRule,
    index: usize,
}

impl AsRef<CompiledRule> for HuntRule {
    fn as_ref(&self) -> &CompiledRule {
        &self.rule
    }
}

impl AsMut<CompiledRule> for HuntRule {
    fn as_mut(&mut self) -> &mut CompiledRule {
        &mut self.rule
    }
}

/// A base-rule match waiting for the correlator.
struct Pending {
    /// Event time, or the time of the previous event of its file.
    time: Option<i64>,
    /// (input index, event number) keeps the order of equal times stable.
    order: (usize, u64),
    obs: Observation,
    event: Arc<str>,
}

/// The correlator and its sort buffer, shared by the input threads.
struct CorrelationStage {
    set: Arc<CorrelationSet>,
    correlator: Correlator<Arc<str>>,
    buffer: Vec<Pending>,
    cap: usize,
    matches: BTreeMap<String, u64>,
    flushes: u64,
}

impl CorrelationStage {
    /// Sorts the buffer by event time, feeds it and prints the matches.
    fn flush(&mut self, out: &mut dyn Write) {
        self.flushes += 1;
        let mut buf = std::mem::take(&mut self.buffer);
        buf.sort_by_key(|p| (p.time.unwrap_or(i64::MIN), p.order));
        for p in buf {
            for m in self.correlator.feed(&p.obs, p.event) {
                if !self.set.correlation_reports(m.correlation) {
                    continue;
                }
                let c = &self.set.rules[m.correlation];
                *self.matches.entry(c.doc.meta.title.clone()).or_default() += 1;
                let _ = serde_json::to_writer(&mut *out, &correlation_line(&self.set, &m));
                let _ = out.write_all(b"\n");
            }
        }
    }
}

/// An event waiting for the built-in detectors.
struct BuiltinPending {
    time: i64,
    order: (usize, u64),
    obs: vigil_detect::Observation,
    event: Arc<str>,
}

/// The built-in detectors and their sort buffer, shared by the input
/// threads like [`CorrelationStage`].
struct BuiltinStage {
    detectors: vigil_detect::Detectors<Arc<str>>,
    buffer: Vec<BuiltinPending>,
    cap: usize,
    alerts: BTreeMap<&'static str, u64>,
    /// Set with `--score`.
    scorer: Option<score::Scorer>,
}

impl BuiltinStage {
    /// Sorts the buffer by event time, feeds it and prints the alerts.
    fn flush(&mut self, out: &mut dyn Write) {
        let mut buf = std::mem::take(&mut self.buffer);
        buf.sort_by_key(|p| (p.time, p.order));
        for p in buf {
            for a in self.detectors.feed(&p.obs, p.event) {
                *self.alerts.entry(a.detector.id()).or_default() += 1;
                if let Some(s) = &mut self.scorer {
                    s.record(&a);
                }
                let _ = serde_json::to_writer(&mut *out, &builtin_line(&a));
                let _ = out.write_all(b"\n");
            }
        }
    }
}

impl BuiltinStage {
    /// At the end of input, judges source silence against the newest
    /// event time: offline there is no clock but the events'.
    fn finish(&mut self, out: &mut dyn Write) {
        let Some(now) = self.detectors.newest() else {
            return;
        };
        for a in self.detectors.tick(now) {
            *self.alerts.entry(a.detector.id()).or_default() += 1;
            if let Some(s) = &mut self.scorer {
                s.record(&a);
            }
            let _ = serde_json::to_writer(&mut *out, &builtin_line(&a));
            let _ = out.write_all(b"\n");
        }
    }
}

/// The NDJSON line of a built-in detector's alert: the shape of a
/// correlation match, with `detector` in place of `correlation`.
fn builtin_line(a: &vigil_detect::Alert<Arc<str>>) -> Value {
    let d = a.detector;
    let events: Vec<Value> = a
        .evidence
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or(Value::Null))
        .collect();
    json!({
        "rule_id": d.id(),
        "rule_title": d.title(),
        "level": d.level(),
        "tags": d.tags(),
        "rule_file": Value::Null,
        "message": a.summary,
        "detector": a.detail(),
        "events": events,
        "events_truncated": a.evidence_truncated,
    })
}

/// The NDJSON line of a correlation match.
fn correlation_line(set: &CorrelationSet, m: &CorrelationMatch<Arc<str>>) -> Value {
    let c = &set.rules[m.correlation];
    let meta = &c.doc.meta;
    let group: serde_json::Map<String, Value> = m
        .group
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut corr = json!({
        "type": c.doc.kind.as_str(),
        "group": group,
        "timespan": c.doc.timespan.text,
        "first": format_ms(m.first),
        "last": format_ms(m.last),
    });
    let counted = matches!(
        c.doc.kind,
        CorrelationType::EventCount
            | CorrelationType::ValueCount
            | CorrelationType::Temporal
            | CorrelationType::TemporalOrdered
    );
    if counted {
        corr["count"] = json!(m.value as u64);
    } else {
        corr["value"] = json!(m.value);
    }
    let events: Vec<Value> = m
        .evidence
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or(Value::Null))
        .collect();
    json!({
        "rule_id": meta.id,
        "rule_title": meta.title,
        "level": meta.level,
        "tags": meta.tags,
        "rule_file": meta.file,
        "correlation": corr,
        "events": events,
        "events_truncated": m.truncated,
    })
}

pub fn run(a: HuntArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut ph = Placeholders::default();
    for p in &a.placeholders {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--placeholder takes NAME=VALUE, got {:?}", p);
        };
        ph.0.entry(k.trim_matches('%').to_string())
            .or_default()
            .push(v.to_string());
    }
    if let Some(missing) = a.rules.iter().find(|p| !p.exists()) {
        bail!("rules path {} does not exist", missing.display());
    }
    let report = vigil_sigma::loader::load_paths(&a.rules, &ph);
    let detect_cfg = vigil_detect::Config::default();
    let scorer = match &a.score {
        Some(p) => Some(score::Scorer::load(p)?),
        None => None,
    };
    let builtin: Option<Mutex<BuiltinStage>> = a.builtin.then(|| {
        Mutex::new(BuiltinStage {
            detectors: vigil_detect::Detectors::new(detect_cfg.clone()),
            buffer: Vec::new(),
            cap: a.correlation_buffer.max(1),
            alerts: BTreeMap::new(),
            scorer,
        })
    });
    let refused = report.refused;
    let load_warnings = report.warnings;
    let corr_set = Arc::new(report.correlations);
    // Windows rules are routed to their channels and event IDs, other
    // products' rules to the events their logsource mapping selects.
    let mut mapping = LogsourceMapping::builtin();
    for m in &a.mappings {
        mapping.extend(
            LogsourceMapping::load(m)
                .with_context(|| format!("loading the mapping {}", m.display()))?,
        );
    }
    let rules = RuleSet::with_mapping(
        report
            .rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| HuntRule { rule, index })
            .collect(),
        &mapping,
    );
    let unroutable = rules.unroutable();
    let stage: Option<Mutex<CorrelationStage>> = (!corr_set.is_empty()).then(|| {
        let limits = CorrelationLimits {
            max_groups: a.correlation_max_groups,
            max_entries: a.correlation_max_entries,
            max_evidence: a.correlation_max_events,
        };
        Mutex::new(CorrelationStage {
            set: corr_set.clone(),
            correlator: Correlator::new(corr_set.clone(), limits),
            buffer: Vec::new(),
            cap: a.correlation_buffer.max(1),
            matches: BTreeMap::new(),
            flushes: 0,
        })
    });
    let now = chrono::Utc::now();
    let bound = |t: &Option<String>, what: &str| -> anyhow::Result<_> {
        t.as_deref()
            .map(|t| vigil_query::parse_time(t, now))
            .transpose()
            .with_context(|| format!("--{what}"))
    };
    let window = (bound(&a.since, "since")?, bound(&a.until, "until")?);
    if let (Some(s), Some(u)) = window {
        if s >= u {
            bail!("--since must be before --until");
        }
    }
    let opts = vigil_parse::ParseOptions::default();
    let events = AtomicU64::new(0);
    let unreadable = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let counts: Mutex<BTreeMap<String, u64>> = Mutex::default();
    let warnings: Mutex<Vec<String>> = Mutex::default();
    let failed_files: Mutex<Vec<String>> = Mutex::default();
    let stdout = Mutex::new(std::io::stdout());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(a.inputs.len().max(1));
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message("hunting");
        b
    });
    // Without correlations, a flat Windows JSON line that matches no rule
    // (most of them) needs no `serde_json::Value`: see vigil_sigma::flat.
    let fast = |line: &[u8]| {
        FlatEvent::parse(line).is_some_and(|fe| {
            let mut any = false;
            rules.matching_flat(&fe, |_| any = true);
            !any
        })
    };
    // The built-in detectors read Windows logons, which the fast path skips.
    let needs_time = !corr_set.is_empty() || a.builtin;
    let skip: Option<SkipLine<'_>> = (!needs_time).then_some(&fast);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = a.inputs.get(i) else { return };
                let mut out = Vec::with_capacity(1 << 16);
                let mut local: BTreeMap<String, u64> = BTreeMap::new();
                let format = match detect(path) {
                    Ok(InputFormat::Ledger { .. }) => InputFormat::Ledger {
                        since: window.0,
                        until: window.1,
                    },
                    Ok(f) => f,
                    Err(e) => {
                        failed_files
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e:#}", path.display()));
                        continue;
                    }
                };
                let mut warn = |w: String| warnings.lock().unwrap().push(w);
                let mut n = 0u64;
                let mut pending: Vec<Pending> = Vec::new();
                let mut detect_pending: Vec<BuiltinPending> = Vec::new();
                let give_builtin = |p: &mut Vec<BuiltinPending>| {
                    let Some(stage) = &builtin else { return };
                    let mut st = stage.lock().unwrap();
                    st.buffer.append(p);
                    if st.buffer.len() >= st.cap {
                        let mut lines = Vec::new();
                        st.flush(&mut lines);
                        let _ = stdout.lock().unwrap().write_all(&lines);
                    }
                };
                let mut last_time: Option<i64> = None;
                let give = |pending: &mut Vec<Pending>, out: &mut Vec<u8>| {
                    let Some(stage) = &stage else { return };
                    let mut st = stage.lock().unwrap();
                    st.buffer.append(pending);
                    if st.buffer.len() >= st.cap {
                        // Base matches go out first: a correlation line follows its events.
                        let _ = stdout.lock().unwrap().write_all(out);
                        out.clear();
                        let mut lines = Vec::new();
                        st.flush(&mut lines);
                        let _ = stdout.lock().unwrap().write_all(&lines);
                    }
                };
                let result = for_each_event(
                    path,
                    format,
                    &opts,
                    &mut warn,
                    &mut |ev| {
                        n += 1;
                        // Only correlations and the built-in detectors read event time.
                        let t = if needs_time {
                            event_time(&ev).or(last_time)
                        } else {
                            None
                        };
                        last_time = t;
                        let ctx = CorrCtx {
                            set: &corr_set,
                            time: t,
                            order: (i, n),
                        };
                        evaluate(&rules, &ev, &mut out, &mut local, &ctx, &mut pending);
                        if let (Some(_), Some(t), Some(map)) = (&builtin, t, ev.as_object()) {
                            if let Some(obs) = vigil_detect::observe(map, t, &detect_cfg) {
                                detect_pending.push(BuiltinPending {
                                    time: t,
                                    order: (i, n),
                                    obs,
                                    event: Arc::from(ev.to_string()),
                                });
                                if detect_pending.len() >= 4096 {
                                    give_builtin(&mut detect_pending);
                                }
                            }
                        }
                        if pending.len() >= 4096 {
                            give(&mut pending, &mut out);
                        }
                        if out.len() > 1 << 16 {
                            let _ = stdout.lock().unwrap().write_all(&out);
                            out.clear();
                        }
                        if n.is_multiple_of(4096) {
                            if let Some(b) = &bar {
                                b.set_message(format!(
                                    "{} events",
                                    events.load(Ordering::Relaxed) + n
                                ));
                                b.tick();
                            }
                        }
                    },
                    skip,
                );
                give(&mut pending, &mut out);
                give_builtin(&mut detect_pending);
                match result {
                    Ok((total, bad)) => {
                        events.fetch_add(total, Ordering::Relaxed);
                        unreadable.fetch_add(bad, Ordering::Relaxed);
                    }
                    Err(e) => {
                        events.fetch_add(n, Ordering::Relaxed);
                        failed_files
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e:#}", path.display()))
                    }
                }
                let _ = stdout.lock().unwrap().write_all(&out);
                let mut c = counts.lock().unwrap();
                for (k, v) in local {
                    *c.entry(k).or_default() += v;
                }
            });
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut stage = stage.map(|s| s.into_inner().unwrap());
    if let Some(st) = &mut stage {
        let mut lines = Vec::new();
        st.flush(&mut lines);
        let _ = stdout.lock().unwrap().write_all(&lines);
    }
    let mut builtin = builtin.map(|s| s.into_inner().unwrap());
    if let Some(st) = &mut builtin {
        let mut lines = Vec::new();
        st.flush(&mut lines);
        st.finish(&mut lines);
        let _ = stdout.lock().unwrap().write_all(&lines);
    }
    let _ = stdout.lock().unwrap().flush();

    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    let counts = counts.into_inner().unwrap();
    let total: u64 = counts.values().sum();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "hunt: {} files, {events} events in {secs:.2} s ({:.0} events/s), {total} matches",
        a.inputs.len(),
        events as f64 / secs.max(1e-9)
    )?;
    writeln!(
        err,
        "rules: {} loaded, {} refused, {unroutable} with a logsource no mapping knows (not applied)",
        rules.rules().len(),
        refused.len()
    )?;
    for r in refused.iter().take(20) {
        writeln!(err, "  refused: {}", display(&r.to_string()))?;
    }
    if refused.len() > 20 {
        writeln!(err, "  … and {} more refused", refused.len() - 20)?;
    }
    for w in load_warnings.iter().take(20) {
        writeln!(err, "  warning: {}", display(&w.to_string()))?;
    }
    if let Some(st) = &stage {
        let (mut evictions, mut late) = (0u64, 0u64);
        for i in 0..st.set.rules.len() {
            let s = st.correlator.stats(i);
            evictions += s.evictions;
            late += s.late;
        }
        let total: u64 = st.matches.values().sum();
        writeln!(
            err,
            "correlations: {} loaded, {total} matches, {evictions} evictions, {late} late events, {} sort batches",
            st.set.rules.len(),
            st.flushes
        )?;
        for (i, c) in st.set.rules.iter().enumerate() {
            let s = st.correlator.stats(i);
            writeln!(
                err,
                "  {:>8}  {} ({}; {} evictions)",
                s.matches,
                display(&c.doc.meta.title),
                c.doc.kind.as_str(),
                s.evictions
            )?;
        }
    }
    if let Some(st) = &builtin {
        let total: u64 = st.alerts.values().sum();
        writeln!(err, "builtin detectors: {total} alerts")?;
        for d in vigil_detect::Detector::ALL {
            let s = st.detectors.stats(d);
            writeln!(
                err,
                "  {:>8}  {} ({} evictions, {} late, {} suppressed)",
                s.alerts,
                d.id(),
                s.evictions,
                s.late,
                s.suppressed
            )?;
        }
        if let Some(sc) = &st.scorer {
            sc.report(events, &mut err)?;
        }
    }
    let mut by_count: Vec<(&String, &u64)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (title, n) in by_count.iter().take(20) {
        writeln!(err, "  {n:>8}  {}", display(title))?;
    }
    let unreadable = unreadable.load(Ordering::Relaxed);
    if unreadable > 0 {
        writeln!(err, "{unreadable} records could not be read:")?;
        for w in warnings.lock().unwrap().iter().take(10) {
            writeln!(err, "  {}", display(w))?;
        }
    }
    let failed = failed_files.into_inner().unwrap();
    for f in &failed {
        writeln!(err, "failed: {}", display(f))?;
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// What [`evaluate`] needs to hand matches to the correlations.
struct CorrCtx<'a> {
    set: &'a CorrelationSet,
    time: Option<i64>,
    order: (usize, u64),
}

/// Writes one NDJSON line per rule that matches `ev` (unless a correlation
/// silences it with `generate: false`) and counts it by title; matches of
/// rules a correlation listens to are queued in `pending`.
fn evaluate(
    rules: &RuleSet<HuntRule>,
    ev: &Value,
    out: &mut Vec<u8>,
    counts: &mut BTreeMap<String, u64>,
    ctx: &CorrCtx<'_>,
    pending: &mut Vec<Pending>,
) {
    let mut event_text: Option<Arc<str>> = None;
    rules.matching(ev, |hr| {
        let r = &hr.rule;
        *counts.entry(r.meta.title.clone()).or_default() += 1;
        if ctx.set.references(hr.index) {
            // Group-by fields are read as the rule reads the event.
            let obs = if is_windows(ev) {
                ctx.set
                    .observe(hr.index, &FlatWindowsView::new(ev), ctx.time)
            } else {
                ctx.set.observe(hr.index, &JsonView(ev), ctx.time)
            };
            if let Some(obs) = obs {
                let text = event_text
                    .get_or_insert_with(|| Arc::from(ev.to_string()))
                    .clone();
                pending.push(Pending {
                    time: ctx.time,
                    order: ctx.order,
                    obs,
                    event: text,
                });
            }
        }
        if !ctx.set.base_reports(hr.index) {
            return;
        }
        let line = json!({
            "rule_id": r.meta.id,
            "rule_title": r.meta.title,
            "level": r.meta.level,
            "tags": r.meta.tags,
            "rule_file": r.meta.file,
            "event": ev,
        });
        let _ = serde_json::to_writer(&mut *out, &line);
        out.push(b'\n');
    });
}
