//! Sigma detection on the ingest stream.
//!
//! The rules of `[detection] rules_dirs` are compiled with `vigil-sigma`
//! into a [`RuleSet`]. Decoder threads evaluate the current set on every
//! event they decode (see [`crate::pipeline::decode_batch`]); each match
//! becomes an alert event that the writer stores in the same commit as the
//! matched event. A reload thread polls the rule files' modification times
//! and swaps in a new set when they change.
//!
//! Rules are scoped by the built-in logsource mappings
//! (`LogsourceMapping::builtin()`): Windows rules are routed to their
//! channels and event IDs and only see Windows-shaped events (evtx_dump,
//! flat winlogbeat/OTRF or `winlog.*` JSON); rules of other products see
//! the non-Windows events their logsource selects (auditd, sshd, web
//! access logs, …), read as nested ECS JSON; rules without a logsource
//! product, category or service see every non-Windows event.
//!
//! Correlation rules are loaded from the same paths. A decoder that sees a
//! match of a rule a correlation listens to reads what the correlation
//! needs (event time, group-by values) into an observation, which travels
//! to the writer as a marker among the event's alerts. The writer, which
//! assigns seqs, feeds the markers in seq order to the set's correlator
//! ([`RuleSet::correlate`]) and stores the matches as alerts naming every
//! contributing event's seq. Only such matches reach the correlator's
//! mutex, and only the writer takes it on the hot path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vigil_event::{fields, Event};
use vigil_sigma::compile::CompiledRule;
use vigil_sigma::correlation::{
    event_time_map, format_ms, Correlation, CorrelationLimits, CorrelationMatch, CorrelationSet,
    CorrelationStats, CorrelationType, Correlator, Observation,
};
use vigil_sigma::error::RuleError;
use vigil_sigma::logsource::Scope;
use vigil_sigma::ruleset::is_windows_map;
use vigil_sigma::value::Placeholders;
use vigil_sigma::views::{FlatWindowsView, JsonMapView};

use crate::config::DetectionConfig;

/// Field of an alert naming the seq of the event that matched (for a
/// correlation: the event that completed it).
pub const EVIDENCE_SEQ: &str = "vigil.alert.evidence_seq";

/// Field of a correlation alert listing the seqs of every contributing
/// event (capped by `correlation_max_evidence`), oldest first.
pub const EVIDENCE_SEQS: &str = "vigil.alert.evidence_seqs";

/// Field of a correlation marker: an [`Observation`] on its way from a
/// decoder to the writer among an event's alerts. Never stored.
pub const CORRELATION_MARKER: &str = "vigil_correlation_observation";

/// Source of [`RuleSet`] generations, so that a marker made with one set
/// is never fed to another's correlator (indices differ).
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// One loaded rule with its match counter.
#[derive(Debug)]
pub struct LoadedRule {
    /// Position in the load, by which correlations refer to the rule.
    pub index: usize,
    /// The compiled rule.
    pub rule: CompiledRule,
    /// Events matched since the rule was (re)loaded, carried over reloads
    /// while the rule keeps its file, id and title.
    pub matches: AtomicU64,
}

impl LoadedRule {
    /// `active`, or `unroutable` for a rule whose logsource is
    /// unknown to the mapping (it is not applied).
    pub fn status(&self) -> &'static str {
        if matches!(self.rule.scope, Scope::Unroutable(_)) {
            "unroutable"
        } else {
            "active"
        }
    }

    fn key(&self) -> (String, Option<String>, String) {
        (
            self.rule.meta.file.clone(),
            self.rule.meta.id.clone(),
            self.rule.meta.title.clone(),
        )
    }
}

impl AsRef<CompiledRule> for LoadedRule {
    fn as_ref(&self) -> &CompiledRule {
        &self.rule
    }
}

impl AsMut<CompiledRule> for LoadedRule {
    fn as_mut(&mut self) -> &mut CompiledRule {
        &mut self.rule
    }
}

/// A compiled, indexed set of rules; replaced as a whole on reload.
#[derive(Debug)]
pub struct RuleSet {
    /// Loaded rules, in path order, scoped and indexed.
    set: vigil_sigma::ruleset::RuleSet<LoadedRule>,
    /// Rules (or files) that were refused, with file, line and reason.
    pub refused: Vec<RuleError>,
    /// Load warnings (e.g. a filter naming a rule that is not loaded).
    pub warnings: Vec<RuleError>,
    /// When this set was loaded.
    pub loaded_at: DateTime<Utc>,
    /// The correlation rules.
    correlations: Arc<CorrelationSet>,
    /// Matches per correlation, carried over reloads like rule counts.
    correlation_matches: Vec<AtomicU64>,
    /// The correlation windows (new, empty ones on each reload).
    correlator: Mutex<Correlator<u64>>,
    /// Evictions and late entries already added to the metrics.
    reported: Mutex<(u64, u64)>,
    generation: u64,
}

impl RuleSet {
    /// A set without rules (detection off).
    pub fn empty() -> RuleSet {
        Self::build(
            Default::default(),
            Vec::new(),
            Vec::new(),
            Default::default(),
            CorrelationLimits::default(),
        )
    }

    fn build(
        set: vigil_sigma::ruleset::RuleSet<LoadedRule>,
        refused: Vec<RuleError>,
        warnings: Vec<RuleError>,
        correlations: CorrelationSet,
        limits: CorrelationLimits,
    ) -> RuleSet {
        let correlations = Arc::new(correlations);
        RuleSet {
            set,
            refused,
            warnings,
            loaded_at: Utc::now(),
            correlation_matches: (0..correlations.rules.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            correlator: Mutex::new(Correlator::new(correlations.clone(), limits)),
            correlations,
            reported: Mutex::new((0, 0)),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The correlation rules.
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations.rules
    }

    /// Matches of correlation `i` since it was (re)loaded.
    pub fn correlation_matches(&self, i: usize) -> u64 {
        self.correlation_matches[i].load(Ordering::Relaxed)
    }

    /// Counters of correlation `i` in the current windows.
    pub fn correlation_stats(&self, i: usize) -> CorrelationStats {
        self.correlator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats(i)
    }

    /// Loaded rules, in path order.
    pub fn rules(&self) -> &[LoadedRule] {
        self.set.rules()
    }

    /// Loads every rule under `paths` (files or directories).
    /// Returns the set and whether some path could not be read at all.
    pub fn load(
        paths: &[PathBuf],
        placeholders: &Placeholders,
        limits: CorrelationLimits,
    ) -> (RuleSet, bool) {
        let report = vigil_sigma::loader::load_paths(paths, placeholders);
        let rules: Vec<LoadedRule> = report
            .rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| LoadedRule {
                index,
                rule,
                matches: AtomicU64::new(0),
            })
            .collect();
        (
            Self::build(
                vigil_sigma::ruleset::RuleSet::new(rules),
                report.refused,
                report.warnings,
                report.correlations,
                limits,
            ),
            report.io_error,
        )
    }

    /// Copies match counts of rules that are still present from `old`.
    fn carry_counts(&self, old: &RuleSet) {
        let counts: HashMap<_, u64> = old
            .rules()
            .iter()
            .map(|r| (r.key(), r.matches.load(Ordering::Relaxed)))
            .collect();
        for r in self.rules() {
            if let Some(n) = counts.get(&r.key()) {
                r.matches.store(*n, Ordering::Relaxed);
            }
        }
        let key = |c: &Correlation| {
            let m = c.meta();
            (m.file.clone(), m.id.clone(), m.title.clone())
        };
        let counts: HashMap<_, u64> = old
            .correlations()
            .iter()
            .enumerate()
            .map(|(i, c)| (key(c), old.correlation_matches(i)))
            .collect();
        for (i, c) in self.correlations().iter().enumerate() {
            if let Some(n) = counts.get(&key(c)) {
                self.correlation_matches[i].store(*n, Ordering::Relaxed);
            }
        }
    }

    /// Rules that are applied (not unroutable).
    pub fn active(&self) -> usize {
        self.set.rules().len() - self.set.unroutable()
    }

    /// Whether no rule is loaded (evaluation is skipped).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Evaluates every applicable rule on `ev` and returns one alert per
    /// match, without `vigil.alert.evidence_seq` (set by the writer) and
    /// without Vigil's stamp. A match of a rule that a correlation listens
    /// to adds a correlation marker (see [`is_correlation_marker`]) for the
    /// writer; the rule's own alert is left out when a correlation refers
    /// to it without `generate: true`.
    pub fn evaluate(&self, ev: &Event) -> Vec<Event> {
        let mut alerts = Vec::new();
        if self.set.is_empty() {
            return alerts;
        }
        let mut raised = 0u64;
        let map = ev.as_map();
        // The rules read the event's own map: no JSON copy of the event.
        self.set.matching_map(map, |r| {
            r.matches.fetch_add(1, Ordering::Relaxed);
            if self.correlations.references(r.index) {
                // Group-by fields are read as the rule reads the event.
                let time = event_time_map(map);
                let obs = if is_windows_map(map) {
                    self.correlations
                        .observe(r.index, &FlatWindowsView::from_map(map), time)
                } else {
                    self.correlations.observe(r.index, &JsonMapView(map), time)
                };
                if let Some(obs) = obs {
                    alerts.push(self.marker(&obs));
                }
            }
            if self.correlations.base_reports(r.index) {
                raised += 1;
                alerts.push(alert_event(&r.rule, ev));
            }
        });
        if raised > 0 {
            metrics::counter!("vigil_detection_matches_total").increment(raised);
        }
        alerts
    }

    fn marker(&self, obs: &Observation) -> Event {
        let mut m = Event::new();
        m.set(
            CORRELATION_MARKER,
            json!({"generation": self.generation, "observation": obs}),
        );
        m
    }

    /// Feeds a correlation marker made by [`RuleSet::evaluate`] for the
    /// event stored at `seq`; returns the alerts of the correlations it
    /// completes (without Vigil's stamp). A marker of another rule set (made
    /// before a reload) is dropped.
    pub fn correlate(&self, marker: &Event, seq: u64) -> Vec<Event> {
        let Some(m) = marker.as_map().get(CORRELATION_MARKER) else {
            return Vec::new();
        };
        if m.get("generation").and_then(Value::as_u64) != Some(self.generation) {
            return Vec::new();
        }
        let Some(obs) = m
            .get("observation")
            .and_then(|o| serde_json::from_value::<Observation>(o.clone()).ok())
        else {
            return Vec::new();
        };
        let (matches, evictions, late) = {
            let mut c = self.correlator.lock().unwrap_or_else(|e| e.into_inner());
            let matches = c.feed(&obs, seq);
            let (mut ev, mut late) = (0, 0);
            for i in 0..self.correlations.rules.len() {
                let s = c.stats(i);
                ev += s.evictions;
                late += s.late;
            }
            (matches, ev, late)
        };
        {
            let mut r = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            metrics::counter!("vigil_correlation_evictions_total")
                .increment(evictions.saturating_sub(r.0));
            metrics::counter!("vigil_correlation_late_total").increment(late.saturating_sub(r.1));
            *r = (evictions, late);
        }
        let mut alerts = Vec::new();
        for m in matches {
            self.correlation_matches[m.correlation].fetch_add(1, Ordering::Relaxed);
            if !self.correlations.correlation_reports(m.correlation) {
                continue;
            }
            metrics::counter!("vigil_correlation_matches_total").increment(1);
            alerts.push(correlation_alert(
                &self.correlations.rules[m.correlation],
                &m,
            ));
        }
        alerts
    }
}

/// Whether an entry of `Prepared::alerts` is a correlation marker (to be
/// given to [`RuleSet::correlate`], not stored).
pub fn is_correlation_marker(alert: &Event) -> bool {
    alert.as_map().contains_key(CORRELATION_MARKER)
}

/// The alert of a correlation match: the rule's metadata, the correlation's
/// type, group and value, and the seqs of the contributing events.
pub fn correlation_alert(c: &Correlation, m: &CorrelationMatch<u64>) -> Event {
    let meta = c.meta();
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "alert");
    ev.set(fields::EVENT_DATASET, "vigil.alert");
    if let Some(id) = &meta.id {
        ev.set("rule.id", id.as_str());
    }
    ev.set("rule.name", meta.title.as_str());
    ev.set("rule.ruleset", "sigma");
    ev.set("rule.reference", meta.file.as_str());
    if let Some(level) = &meta.level {
        ev.set("vigil.alert.level", level.as_str());
    }
    if let Some(s) = severity(meta.level.as_deref()) {
        ev.set(fields::EVENT_SEVERITY, s);
    }
    for t in &meta.tags {
        ev.push("tags", t);
        if let Some(tech) = technique(t) {
            ev.push("threat.technique.id", &tech);
        }
    }
    ev.set(
        fields::MESSAGE,
        format!("Sigma correlation: {}", meta.title),
    );
    let group: serde_json::Map<String, Value> = m
        .group
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // Group values that are the alert fields of base alerts are copied too.
    for f in [fields::HOST_NAME, fields::SOURCE_IP, fields::USER_NAME] {
        if let Some(v) = group.get(f) {
            ev.set(f, v.clone());
        }
    }
    let counted = matches!(
        c.doc.kind,
        CorrelationType::EventCount
            | CorrelationType::ValueCount
            | CorrelationType::Temporal
            | CorrelationType::TemporalOrdered
    );
    let value = if counted {
        json!(m.value as u64)
    } else {
        json!(m.value)
    };
    let mut corr = json!({
        "type": c.doc.kind.as_str(),
        "timespan": c.doc.timespan.text,
        "group": group,
        "first": format_ms(m.first),
        "last": format_ms(m.last),
    });
    corr[if counted { "count" } else { "value" }] = value;
    ev.set("vigil.alert.correlation", corr);
    ev.set(EVIDENCE_SEQS, m.evidence.clone());
    ev.set("vigil.alert.evidence_truncated", m.truncated);
    ev
}

/// `event.severity` of a Sigma level: informational 1, low 2, medium 3,
/// high 4, critical 5; `None` for a missing or unknown level.
pub fn severity(level: Option<&str>) -> Option<u64> {
    match level?.to_ascii_lowercase().as_str() {
        "informational" => Some(1),
        "low" => Some(2),
        "medium" => Some(3),
        "high" => Some(4),
        "critical" => Some(5),
        _ => None,
    }
}

/// The alert for a match of `rule` on `evidence`.
pub fn alert_event(rule: &CompiledRule, evidence: &Event) -> Event {
    let m = &rule.meta;
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "alert");
    ev.set(fields::EVENT_DATASET, "vigil.alert");
    if let Some(id) = &m.id {
        ev.set("rule.id", id.as_str());
    }
    ev.set("rule.name", m.title.as_str());
    ev.set("rule.ruleset", "sigma");
    ev.set("rule.reference", m.file.as_str());
    if let Some(level) = &m.level {
        ev.set("vigil.alert.level", level.as_str());
    }
    if let Some(s) = severity(m.level.as_deref()) {
        ev.set(fields::EVENT_SEVERITY, s);
    }
    for t in &m.tags {
        ev.push("tags", t);
        if let Some(tech) = technique(t) {
            ev.push("threat.technique.id", &tech);
        }
    }
    ev.set(fields::MESSAGE, format!("Sigma: {}", m.title));
    for f in [fields::HOST_NAME, fields::SOURCE_IP, fields::USER_NAME] {
        if let Some(v) = evidence.get(f) {
            ev.set(f, v.clone());
        }
    }
    ev
}

/// `attack.t1110.001` → `T1110.001`.
fn technique(tag: &str) -> Option<String> {
    let t = tag.strip_prefix("attack.")?;
    let rest = t.strip_prefix('t').or_else(|| t.strip_prefix('T'))?;
    let digits = rest.split('.').next()?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("T{}", rest.to_ascii_uppercase()))
}

/// The detection state shared by decoders, the HTTP API and the reloader.
#[derive(Debug)]
pub struct Detection {
    config: DetectionConfig,
    placeholders: Placeholders,
    current: RwLock<Arc<RuleSet>>,
    fingerprint: RwLock<Vec<(PathBuf, Option<SystemTime>, u64)>>,
}

impl Detection {
    /// Loads the configured rules (none when `rules_dirs` is empty).
    pub fn new(config: &DetectionConfig) -> Arc<Detection> {
        let placeholders = Placeholders(config.placeholders.clone());
        let d = Detection {
            config: config.clone(),
            placeholders,
            current: RwLock::new(Arc::new(RuleSet::empty())),
            fingerprint: RwLock::new(Vec::new()),
        };
        if d.enabled() {
            d.reload("initial");
        }
        metrics::gauge!("vigil_detection_rules_loaded").set(d.current().rules().len() as f64);
        Arc::new(d)
    }

    /// Whether rules are configured.
    pub fn enabled(&self) -> bool {
        !self.config.rules_dirs.is_empty()
    }

    /// The configured rule paths.
    pub fn rules_dirs(&self) -> &[PathBuf] {
        &self.config.rules_dirs
    }

    /// The current rule set.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads the rules now; keeps the old set when the new one has no
    /// rules because a path could not be read. Returns the result label.
    pub fn reload(&self, why: &str) -> &'static str {
        let fp = fingerprint(&self.config.rules_dirs);
        let limits = CorrelationLimits {
            max_groups: self.config.correlation_max_groups,
            max_entries: self.config.correlation_max_entries,
            max_evidence: self.config.correlation_max_evidence,
        };
        let (set, io_error) = RuleSet::load(&self.config.rules_dirs, &self.placeholders, limits);
        let old = self.current();
        let result = if set.rules().is_empty() && io_error && !old.rules().is_empty() {
            tracing::warn!(
                reason = why,
                refused = set.refused.len(),
                "rules could not be read; keeping the {} rules loaded before",
                old.rules().len()
            );
            "kept"
        } else {
            set.carry_counts(&old);
            let level_warn = !set.refused.is_empty() || !set.warnings.is_empty() || io_error;
            if level_warn {
                tracing::warn!(
                    reason = why,
                    loaded = set.rules().len(),
                    active = set.active(),
                    refused = set.refused.len(),
                    "Sigma rules loaded, some refused"
                );
                for r in set.refused.iter().take(20) {
                    tracing::warn!(file = %r.file, line = r.line, reason = %r.reason, "rule refused");
                }
                for r in set.warnings.iter().take(20) {
                    tracing::warn!(file = %r.file, line = r.line, reason = %r.reason, "rule warning");
                }
            } else {
                tracing::info!(
                    reason = why,
                    loaded = set.rules().len(),
                    active = set.active(),
                    correlations = set.correlations().len(),
                    refused = 0,
                    "Sigma rules loaded"
                );
            }
            metrics::gauge!("vigil_detection_rules_loaded").set(set.rules().len() as f64);
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
            if io_error {
                "partial"
            } else {
                "ok"
            }
        };
        *self.fingerprint.write().unwrap_or_else(|e| e.into_inner()) = fp;
        metrics::counter!("vigil_detection_reloads_total", "result" => result).increment(1);
        result
    }

    /// Reloads when a rule file was added, removed or modified.
    pub fn reload_if_changed(&self) -> Option<&'static str> {
        let fp = fingerprint(&self.config.rules_dirs);
        let same = *self.fingerprint.read().unwrap_or_else(|e| e.into_inner()) == fp;
        (!same).then(|| self.reload("changed"))
    }

    /// Starts the thread that polls the rule files every `reload_secs`;
    /// it ends when the last other reference to `this` is dropped.
    pub fn spawn_reloader(this: &Arc<Detection>) -> std::io::Result<()> {
        if !this.enabled() {
            return Ok(());
        }
        let weak: Weak<Detection> = Arc::downgrade(this);
        let every = Duration::from_secs(this.config.reload_secs.max(1));
        std::thread::Builder::new()
            .name("vigil-rules".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match weak.upgrade() {
                    Some(d) => {
                        d.reload_if_changed();
                    }
                    None => return,
                }
            })?;
        Ok(())
    }
}

/// (path, mtime, size) of every rule file under `paths`, sorted.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, Option<SystemTime>, u64)>, depth: usize) {
        let Ok(md) = std::fs::metadata(p) else {
            out.push((p.to_path_buf(), None, u64::MAX));
            return;
        };
        if md.is_dir() {
            out.push((p.to_path_buf(), md.modified().ok(), 0));
            if depth > 32 {
                return;
            }
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let q = e.path();
                    let is_rule = matches!(
                        q.extension().and_then(|e| e.to_str()),
                        Some("yml") | Some("yaml")
                    );
                    if is_rule || q.is_dir() {
                        walk(&q, out, depth + 1);
                    }
                }
            }
        } else {
            out.push((p.to_path_buf(), md.modified().ok(), md.len()));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out, 0);
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Root SSH failure\nid: 5b1f3a9e-0000-4000-8000-000000000001\nlevel: high\ntags:\n    - attack.credential_access\n    - attack.t1110.001\nlogsource:\n    product: linux\n    service: sshd\ndetection:\n    sel:\n        process.name: sshd\n        event.outcome: failure\n        user.name: root\n    condition: sel\n";

    #[test]
    fn severity_levels() {
        assert_eq!(severity(Some("informational")), Some(1));
        assert_eq!(severity(Some("critical")), Some(5));
        assert_eq!(severity(Some("weird")), None);
        assert_eq!(severity(None), None);
    }

    #[test]
    fn technique_tags() {
        assert_eq!(technique("attack.t1110.001").as_deref(), Some("T1110.001"));
        assert_eq!(technique("attack.t1110").as_deref(), Some("T1110"));
        assert_eq!(technique("attack.credential_access"), None);
        assert_eq!(technique("cve.2021-1234"), None);
    }

    #[test]
    fn load_evaluate_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), RULE).unwrap();
        std::fs::write(dir.path().join("bad.yml"), "title: [\n").unwrap();
        let cfg = DetectionConfig {
            rules_dirs: vec![dir.path().to_path_buf()],
            ..Default::default()
        };
        let d = Detection::new(&cfg);
        let set = d.current();
        assert_eq!(set.rules().len(), 1);
        assert_eq!(set.refused.len(), 1);

        let mut ev = Event::new();
        ev.set(fields::PROCESS_NAME, "sshd");
        ev.set(fields::EVENT_OUTCOME, "failure");
        ev.set(fields::USER_NAME, "root");
        ev.set(fields::HOST_NAME, "bastion");
        let alerts = set.evaluate(&ev);
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.get_str("event.kind"), Some("alert"));
        assert_eq!(a.get_str("rule.name"), Some("Root SSH failure"));
        assert_eq!(a.get_i64("event.severity"), Some(4));
        assert_eq!(a.get_str("host.name"), Some("bastion"));
        assert_eq!(a.get("threat.technique.id").unwrap()[0], "T1110.001");
        assert_eq!(set.rules()[0].matches.load(Ordering::Relaxed), 1);
        ev.set(fields::USER_NAME, "alice");
        assert!(set.evaluate(&ev).is_empty());

        assert_eq!(d.reload_if_changed(), None);
        std::fs::remove_file(dir.path().join("bad.yml")).unwrap();
        assert_eq!(d.reload_if_changed(), Some("ok"));
        let set = d.current();
        assert!(set.refused.is_empty());
        assert_eq!(
            set.rules()[0].matches.load(Ordering::Relaxed),
            1,
            "count kept"
        );

        // A vanished directory keeps the old rules.
        drop(set);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
        assert_eq!(d.reload_if_changed(), Some("kept"));
        assert_eq!(d.current().rules().len(), 1);
    }

    const CORRELATED: &str = "title: Brute force\nid: 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f\nlevel: critical\ncorrelation:\n    type: event_count\n    rules: [5b1f3a9e-0000-4000-8000-000000000001]\n    group-by: [source.ip]\n    timespan: 1m\n    condition:\n        gte: 3\n";

    #[test]
    fn correlation_markers_become_alerts_with_every_evidence_seq() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), format!("{RULE}---\n{CORRELATED}")).unwrap();
        let cfg = DetectionConfig {
            rules_dirs: vec![dir.path().to_path_buf()],
            correlation_max_evidence: 2,
            ..Default::default()
        };
        let d = Detection::new(&cfg);
        let set = d.current();
        assert_eq!(set.correlations().len(), 1);
        let ev = |ip: &str, t: &str| {
            let mut ev = Event::new();
            ev.set(fields::PROCESS_NAME, "sshd");
            ev.set(fields::EVENT_OUTCOME, "failure");
            ev.set(fields::USER_NAME, "root");
            ev.set(fields::SOURCE_IP, ip);
            ev.set("@timestamp", t);
            ev
        };
        let mut raised = Vec::new();
        for (seq, (ip, t)) in [
            ("192.0.2.1", "2024-05-01T10:00:00Z"),
            ("192.0.2.2", "2024-05-01T10:00:01Z"),
            ("192.0.2.1", "2024-05-01T10:00:30Z"),
            ("192.0.2.1", "2024-05-01T10:01:00Z"),
        ]
        .into_iter()
        .enumerate()
        {
            let alerts = set.evaluate(&ev(ip, t));
            // generate: false: only the marker, no alert of the base rule.
            assert_eq!(alerts.len(), 1);
            assert!(is_correlation_marker(&alerts[0]));
            raised.extend(set.correlate(&alerts[0], 10 + seq as u64));
        }
        assert_eq!(set.rules()[0].matches.load(Ordering::Relaxed), 4);
        assert_eq!(raised.len(), 1);
        let a = &raised[0];
        assert_eq!(a.get_str("rule.name"), Some("Brute force"));
        assert_eq!(a.get_i64("event.severity"), Some(5));
        assert_eq!(a.get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(a.get(EVIDENCE_SEQS), Some(&serde_json::json!([10, 12])));
        assert_eq!(
            a.get("vigil.alert.evidence_truncated"),
            Some(&Value::Bool(true))
        );
        let c = a.get("vigil.alert.correlation").unwrap();
        assert_eq!(c["type"], "event_count");
        assert_eq!(c["count"], 3);
        assert_eq!(c["group"]["source.ip"], "192.0.2.1");
        assert_eq!(c["first"], "2024-05-01T10:00:00.000Z");
        assert_eq!(set.correlation_matches(0), 1);

        // A marker of an older set is dropped after a reload.
        let marker = set
            .evaluate(&ev("192.0.2.9", "2024-05-01T10:02:00Z"))
            .remove(0);
        std::fs::write(
            dir.path().join("b.yml"),
            RULE.replace("Root SSH failure", "Other"),
        )
        .unwrap();
        assert!(d.reload("test") != "kept");
        let new = d.current();
        assert_eq!(new.correlation_matches(0), 1, "count kept over the reload");
        assert!(new.correlate(&marker, 99).is_empty());
        assert_eq!(new.correlation_stats(0).groups, 0);
    }
}
