//! `vigil hunt --builtin --score LABELS`: scores the built-in detectors'
//! alerts against the labels file of `vigil simulate`.
//!
//! An alert is a **true positive** when one of its evidence events is a
//! labelled attack line: same event time (to the second: access logs have
//! no milliseconds) and the line's host, source address or account appears
//! in the event. It is then credited to that
//! line's attack instance. Other alerts are **false positives**. An
//! instance is **detected** when at least one alert is credited to it;
//! recall is per attack type. The delay of an instance is the time of its
//! first credited alert's completing event minus the instance's start.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::Value;

/// Labels files larger than this are refused.
const MAX_LABELS_BYTES: u64 = 1 << 30;
/// Lines of a labels file read at most.
const MAX_LABEL_LINES: usize = 20_000_000;

/// One labelled attack line.
#[derive(Debug)]
struct Line {
    instance: usize,
    needles: Vec<String>,
}

/// One attack instance.
#[derive(Debug)]
struct Instance {
    id: String,
    attack: String,
    start: i64,
    /// Credited alerts per detector id.
    alerts: BTreeMap<&'static str, u64>,
    /// Completing time of the first credited alert.
    first_alert: Option<i64>,
}

/// Per-detector tallies.
#[derive(Debug, Default)]
struct Tally {
    alerts: u64,
    tp: u64,
    fp: u64,
}

/// The labels and what the alerts matched so far.
#[derive(Debug)]
pub struct Scorer {
    by_time: HashMap<i64, Vec<Line>>,
    instances: Vec<Instance>,
    attack_lines: u64,
    tally: BTreeMap<&'static str, Tally>,
    /// A few false positives per detector, for the report.
    fp_examples: BTreeMap<&'static str, Vec<String>>,
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl Scorer {
    /// Reads a labels file of `vigil simulate --labels`.
    pub fn load(path: &Path) -> anyhow::Result<Scorer> {
        let f = std::fs::File::open(path)
            .with_context(|| format!("opening the labels file {}", path.display()))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > MAX_LABELS_BYTES {
            bail!(
                "labels file {} is {len} bytes, more than the {MAX_LABELS_BYTES} accepted",
                path.display()
            );
        }
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut instances: Vec<Instance> = Vec::new();
        let mut by_time: HashMap<i64, Vec<Line>> = HashMap::new();
        let mut attack_lines = 0u64;
        let mut index = |id: &str, attack: &str, instances: &mut Vec<Instance>| -> usize {
            *ids.entry(id.to_string()).or_insert_with(|| {
                instances.push(Instance {
                    id: id.to_string(),
                    attack: attack.to_string(),
                    start: i64::MAX,
                    alerts: BTreeMap::new(),
                    first_alert: None,
                });
                instances.len() - 1
            })
        };
        for (n, line) in BufReader::new(f).lines().enumerate() {
            if n >= MAX_LABEL_LINES {
                bail!(
                    "labels file {} has more than {MAX_LABEL_LINES} lines",
                    path.display()
                );
            }
            let line = line.with_context(|| format!("{}:{}", path.display(), n + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
            let (id, attack) = (s("attack_id"), s("attack"));
            if id.is_empty() {
                bail!("{}:{}: no attack_id", path.display(), n + 1);
            }
            let i = index(id, attack, &mut instances);
            match s("type") {
                "event" => {
                    let Some(t) = rfc3339_ms(s("time")) else {
                        bail!("{}:{}: bad or missing time", path.display(), n + 1);
                    };
                    attack_lines += 1;
                    instances[i].start = instances[i].start.min(t);
                    let needles = ["host.name", "source.ip", "user.name"]
                        .iter()
                        .map(|k| s(k))
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect();
                    // Keyed by second: access logs carry no milliseconds.
                    by_time.entry(t.div_euclid(1000)).or_default().push(Line {
                        instance: i,
                        needles,
                    });
                }
                "attack" => {
                    if let Some(t) = rfc3339_ms(s("start")) {
                        instances[i].start = instances[i].start.min(t);
                    }
                }
                other => bail!("{}:{}: unknown label type {other:?}", path.display(), n + 1),
            }
        }
        Ok(Scorer {
            by_time,
            instances,
            attack_lines,
            tally: BTreeMap::new(),
            fp_examples: BTreeMap::new(),
        })
    }

    /// The instance a piece of evidence belongs to, if it is a labelled line.
    fn instance_of(&self, ev: &str) -> Option<usize> {
        let v: Value = serde_json::from_str(ev).ok()?;
        let t = vigil_sigma::correlation::event_time(&v)?;
        let lines = self.by_time.get(&t.div_euclid(1000))?;
        lines
            .iter()
            .find(|l| l.needles.iter().any(|n| ev.contains(n.as_str())))
            .map(|l| l.instance)
    }

    /// Scores one alert.
    pub fn record(&mut self, a: &vigil_detect::Alert<Arc<str>>) {
        let id = a.detector.id();
        let hit = a.evidence.iter().find_map(|e| self.instance_of(e));
        let t = self.tally.entry(id).or_default();
        t.alerts += 1;
        match hit {
            Some(i) => {
                t.tp += 1;
                let inst = &mut self.instances[i];
                *inst.alerts.entry(id).or_default() += 1;
                if inst.first_alert.is_none_or(|f| a.last < f) {
                    inst.first_alert = Some(a.last);
                }
            }
            None => {
                t.fp += 1;
                let ex = self.fp_examples.entry(id).or_default();
                if ex.len() < 5 {
                    ex.push(vigil_event::sanitize::display(&a.summary).to_string());
                }
            }
        }
    }

    /// Each detected instance's delay: (instance id, attack type, seconds
    /// from its first line to its first credited alert's `last` time).
    pub fn delays(&self) -> Vec<(String, String, f64)> {
        self.instances
            .iter()
            .filter_map(|i| {
                let f = i.first_alert?;
                Some((
                    i.id.clone(),
                    i.attack.clone(),
                    (f - i.start).max(0) as f64 / 1000.0,
                ))
            })
            .collect()
    }

    /// Writes the score report for `events` events read.
    pub fn report(&self, events: u64, out: &mut dyn Write) -> std::io::Result<()> {
        let background = events.saturating_sub(self.attack_lines).max(1);
        writeln!(
            out,
            "score: {} attack instances, {} attack lines, {background} background events",
            self.instances.len(),
            self.attack_lines
        )?;
        writeln!(
            out,
            "  {:<30} {:>7} {:>6} {:>6} {:>14}",
            "detector", "alerts", "tp", "fp", "fp/100k bg"
        )?;
        let mut fp_total = 0;
        for (id, t) in &self.tally {
            fp_total += t.fp;
            writeln!(
                out,
                "  {id:<30} {:>7} {:>6} {:>6} {:>14.2}",
                t.alerts,
                t.tp,
                t.fp,
                t.fp as f64 * 100_000.0 / background as f64
            )?;
        }
        writeln!(
            out,
            "  {:<30} {:>7} {:>6} {fp_total:>6} {:>14.2}",
            "all",
            self.tally.values().map(|t| t.alerts).sum::<u64>(),
            self.tally.values().map(|t| t.tp).sum::<u64>(),
            fp_total as f64 * 100_000.0 / background as f64
        )?;
        let mut by_type: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
        for i in &self.instances {
            by_type.entry(&i.attack).or_default().push(i);
        }
        writeln!(
            out,
            "  {:<22} {:>9} {:>8} {:>7} {:>14}  detectors",
            "attack", "instances", "detected", "recall", "median delay"
        )?;
        for (attack, list) in &by_type {
            let detected: Vec<&&Instance> =
                list.iter().filter(|i| i.first_alert.is_some()).collect();
            let mut delays: Vec<i64> = detected
                .iter()
                .filter_map(|i| i.first_alert.map(|f| (f - i.start).max(0)))
                .collect();
            delays.sort_unstable();
            let median = delays
                .get(delays.len() / 2)
                .map_or("-".to_string(), |d| format!("{:.1}s", *d as f64 / 1000.0));
            let mut which: BTreeMap<&str, u64> = BTreeMap::new();
            for i in list {
                for (d, n) in &i.alerts {
                    *which.entry(d).or_default() += n;
                }
            }
            let which: Vec<String> = which.iter().map(|(d, n)| format!("{d}×{n}")).collect();
            writeln!(
                out,
                "  {attack:<22} {:>9} {:>8} {:>7.2} {median:>14}  {}",
                list.len(),
                detected.len(),
                detected.len() as f64 / list.len() as f64,
                which.join(" ")
            )?;
        }
        let missed: Vec<&str> = self
            .instances
            .iter()
            .filter(|i| i.first_alert.is_none())
            .map(|i| i.id.as_str())
            .collect();
        if !missed.is_empty() {
            writeln!(out, "  missed: {}", missed.join(", "))?;
        }
        for (id, ex) in &self.fp_examples {
            for e in ex {
                writeln!(out, "  fp {id}: {e}")?;
            }
        }
        Ok(())
    }
}
