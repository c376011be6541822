//! Built-in behavioural detectors for Vigil.
//!
//! Streaming, event-time detectors over authentication and web events:
//! `vigil.brute_force`, `vigil.password_spray`, `vigil.credential_stuffing`,
//! `vigil.success_after_failures`, `vigil.web_scan` and `vigil.web_attack`;
//! and over host activity: `vigil.log_tampering`, `vigil.privilege_change`,
//! `vigil.new_account_used`, and `vigil.source_silent` /
//! `vigil.source_recovered`; first-seen baselines (`vigil.first_sudo`,
//! `vigil.new_source_network`, `vigil.new_user_agent`,
//! `vigil.new_process_pair`); and per-entity event rates against a weekly
//! profile, `vigil.rate_spike` / `vigil.rate_drop` ([`rate`]). See
//! docs/DETECTIONS.md for thresholds, windows and ATT&CK mapping.
//!
//! What is learnt (baselines, source gaps, rate profiles) is persisted by
//! the caller through [`Detectors::snapshot`] and [`Detectors::restore`].
//!
//! Silence is judged by [`Detectors::tick`], which the caller invokes
//! periodically with the current time (the server) or once at the end of
//! input with the newest event time (`vigil hunt`).
//!
//! Use: [`extract::observe`] reads an [`Observation`] from an event (cheap,
//! stateless, `None` for events no detector cares about); [`Detectors::feed`]
//! feeds it, with a piece of evidence `E` (a seq in the server, the event
//! text in `vigil hunt`), and returns the [`Alert`]s it completes.
//!
//! State is bounded: every window expires, each detector tracks at most
//! `max_keys` keys (the least recently seen are evicted, counted in
//! [`Stats::evictions`]), and per-key buffers are capped by thresholds.
//! Out-of-order events are placed by their time inside a key's window; an
//! event older than a key's newest event minus the window is late and
//! ignored for that key ([`Stats::late`]). After an alert the entity is
//! suppressed for one window (see [`Detectors::feed`]).

pub mod activity;
mod baseline;
pub mod config;
pub mod extract;
mod host;
pub mod rate;
mod rate_alert;
mod silence;
mod state;
pub mod web;

/// Maps keyed by what events carry (addresses, user and host names):
/// foldhash, randomly seeded per map, is several times cheaper than
/// SipHash on these short keys, and each map is capped in size.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

pub use activity::{AccountChange, Tamper};
pub use baseline::SnapshotError;
pub use config::{Config, ConfigError, RateClock};
pub use extract::{observe, Observation, Outcome};
use state::{Burst, Keyed, Spray, Stuffing};

/// The built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Many failures for one account or from one source.
    BruteForce,
    /// Few failures each against many accounts from one source.
    PasswordSpray,
    /// Failures for many accounts from many failing sources against one
    /// login target.
    CredentialStuffing,
    /// A success right after a burst of failures.
    SuccessAfterFailures,
    /// Many 404s to one source.
    WebScan,
    /// Attack patterns in a request URL.
    WebAttack,
    /// Logs cleared, audit configuration removed, history wiped.
    LogTampering,
    /// An account added to an administrative group.
    PrivilegeChange,
    /// A newly created account logged in soon after.
    NewAccountUsed,
    /// A source stopped sending for much longer than usual.
    SourceSilent,
    /// A source reported silent sends again.
    SourceRecovered,
    /// sudo used (or tried) by a user never seen using it.
    FirstSudo,
    /// A successful login from a network new for the user.
    NewSourceNetwork,
    /// A user agent new for the user.
    NewUserAgent,
    /// A parent→child process pair new on the host and rare in the fleet.
    NewProcessPair,
    /// An entity sent far more events than its profile expects.
    RateSpike,
    /// An entity sent far fewer events than its profile expects.
    RateDrop,
}

impl Detector {
    /// Every detector.
    pub const ALL: [Detector; COUNT] = [
        Detector::BruteForce,
        Detector::PasswordSpray,
        Detector::CredentialStuffing,
        Detector::SuccessAfterFailures,
        Detector::WebScan,
        Detector::WebAttack,
        Detector::LogTampering,
        Detector::PrivilegeChange,
        Detector::NewAccountUsed,
        Detector::SourceSilent,
        Detector::SourceRecovered,
        Detector::FirstSudo,
        Detector::NewSourceNetwork,
        Detector::NewUserAgent,
        Detector::NewProcessPair,
        Detector::RateSpike,
        Detector::RateDrop,
    ];

    /// The stable id, e.g. `vigil.brute_force`.
    pub fn id(self) -> &'static str {
        match self {
            Detector::BruteForce => "vigil.brute_force",
            Detector::PasswordSpray => "vigil.password_spray",
            Detector::CredentialStuffing => "vigil.credential_stuffing",
            Detector::SuccessAfterFailures => "vigil.success_after_failures",
            Detector::WebScan => "vigil.web_scan",
            Detector::WebAttack => "vigil.web_attack",
            Detector::LogTampering => "vigil.log_tampering",
            Detector::PrivilegeChange => "vigil.privilege_change",
            Detector::NewAccountUsed => "vigil.new_account_used",
            Detector::SourceSilent => "vigil.source_silent",
            Detector::SourceRecovered => "vigil.source_recovered",
            Detector::FirstSudo => "vigil.first_sudo",
            Detector::NewSourceNetwork => "vigil.new_source_network",
            Detector::NewUserAgent => "vigil.new_user_agent",
            Detector::NewProcessPair => "vigil.new_process_pair",
            Detector::RateSpike => "vigil.rate_spike",
            Detector::RateDrop => "vigil.rate_drop",
        }
    }

    /// The alert title.
    pub fn title(self) -> &'static str {
        match self {
            Detector::BruteForce => "Brute force: repeated authentication failures",
            Detector::PasswordSpray => {
                "Password spraying: failures against many accounts from one source"
            }
            Detector::CredentialStuffing => {
                "Credential stuffing: failures for many accounts from many sources"
            }
            Detector::SuccessAfterFailures => "Successful login after a burst of failures",
            Detector::WebScan => "Web scan: burst of 404 responses to one source",
            Detector::WebAttack => "Web attack pattern in a request URL",
            Detector::LogTampering => {
                "Log tampering: logs cleared, auditing changed or history wiped"
            }
            Detector::PrivilegeChange => "Account added to an administrative group",
            Detector::NewAccountUsed => "Newly created account used to log in",
            Detector::SourceSilent => "Log source silent for much longer than usual",
            Detector::SourceRecovered => "Log source sends again after a silence",
            Detector::FirstSudo => "sudo by a user never seen using it",
            Detector::NewSourceNetwork => "Login from a network new for the account",
            Detector::NewUserAgent => "User agent new for the account",
            Detector::NewProcessPair => "Process pair new on the host and rare in the fleet",
            Detector::RateSpike => "Event rate far above the entity's usual for this time",
            Detector::RateDrop => "Event rate far below the entity's usual for this time",
        }
    }

    /// The Sigma-style level.
    pub fn level(self) -> &'static str {
        match self {
            Detector::BruteForce
            | Detector::WebAttack
            | Detector::NewAccountUsed
            | Detector::SourceSilent
            | Detector::FirstSudo
            | Detector::RateSpike
            | Detector::RateDrop => "medium",
            Detector::WebScan
            | Detector::NewSourceNetwork
            | Detector::NewUserAgent
            | Detector::NewProcessPair => "low",
            Detector::SourceRecovered => "informational",
            _ => "high",
        }
    }

    /// ATT&CK tags in Sigma form.
    pub fn tags(self) -> &'static [&'static str] {
        match self {
            Detector::BruteForce => &["attack.credential_access", "attack.t1110.001"],
            Detector::PasswordSpray => &["attack.credential_access", "attack.t1110.003"],
            Detector::CredentialStuffing => &["attack.credential_access", "attack.t1110.004"],
            Detector::SuccessAfterFailures => &[
                "attack.credential_access",
                "attack.t1110",
                "attack.initial_access",
                "attack.t1078",
            ],
            Detector::WebScan => &["attack.reconnaissance", "attack.t1595.003"],
            Detector::WebAttack => &["attack.initial_access", "attack.t1190"],
            Detector::LogTampering => &["attack.defense_evasion", "attack.t1070"],
            Detector::PrivilegeChange => &[
                "attack.persistence",
                "attack.privilege_escalation",
                "attack.t1098.007",
            ],
            Detector::NewAccountUsed => &[
                "attack.persistence",
                "attack.t1136",
                "attack.initial_access",
                "attack.t1078",
            ],
            Detector::SourceSilent => &["attack.defense_evasion", "attack.t1562.006"],
            Detector::SourceRecovered => &[],
            Detector::FirstSudo => &["attack.privilege_escalation", "attack.t1548.003"],
            Detector::NewSourceNetwork => &["attack.initial_access", "attack.t1078"],
            Detector::NewUserAgent => &["attack.initial_access", "attack.t1078"],
            Detector::NewProcessPair => &["attack.execution", "attack.t1059"],
            // A spike is a symptom (a scan, a flood, a runaway process),
            // not one technique.
            Detector::RateSpike => &[],
            Detector::RateDrop => &["attack.defense_evasion", "attack.t1562.006"],
        }
    }
}

/// One alert of a built-in detector.
#[derive(Debug, Clone)]
pub struct Alert<E> {
    /// Which detector.
    pub detector: Detector,
    /// Entity fields the alert is about (`source.ip`, `user.name`,
    /// `host.name`), in that order when present.
    pub entity: Vec<(&'static str, String)>,
    /// The counts behind the alert (`failures`, `distinct_accounts`, …).
    pub counts: Map<String, Value>,
    /// The detector's window in seconds.
    pub window_secs: u64,
    /// Time of the first and last evidence event (ms since the epoch).
    pub first: i64,
    /// See `first`.
    pub last: i64,
    /// Evidence, oldest first, at most `max_evidence`.
    pub evidence: Vec<E>,
    /// Whether evidence was dropped for the cap.
    pub evidence_truncated: bool,
    /// One-line summary for `message`.
    pub summary: String,
}

impl<E> Alert<E> {
    /// An alert of `d` saying `summary`, about nothing yet: no entity,
    /// counts or evidence, a zero window and time span. The setters below
    /// fill in the rest, so every detector builds its alert the same way.
    pub fn new(d: Detector, summary: impl Into<String>) -> Alert<E> {
        Alert {
            detector: d,
            entity: Vec::new(),
            counts: Map::new(),
            window_secs: 0,
            first: 0,
            last: 0,
            evidence: Vec::new(),
            evidence_truncated: false,
            summary: summary.into(),
        }
    }

    /// The entity fields.
    pub fn entity(mut self, entity: Vec<(&'static str, String)>) -> Self {
        self.entity = entity;
        self
    }

    /// The counts behind the alert.
    pub fn counts(mut self, counts: Map<String, Value>) -> Self {
        self.counts = counts;
        self
    }

    /// The detector's window in seconds.
    pub fn window(mut self, secs: u64) -> Self {
        self.window_secs = secs;
        self
    }

    /// Times of the first and last evidence event (ms).
    pub fn span(mut self, first: i64, last: i64) -> Self {
        self.first = first;
        self.last = last;
        self
    }

    /// One event that is both the first and the last evidence, at `t`.
    pub fn single(self, t: i64, ev: E) -> Self {
        self.span(t, t).evidence(vec![ev], false)
    }

    /// The evidence, oldest first, and whether some was dropped.
    pub fn evidence(mut self, evidence: Vec<E>, truncated: bool) -> Self {
        self.evidence = evidence;
        self.evidence_truncated = truncated;
        self
    }
}

/// The counts map of an alert.
pub(crate) fn counts(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Formats milliseconds since the epoch as RFC 3339 with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl<E> Alert<E> {
    /// The detector-specific part of the alert: id, window, first/last,
    /// entity and counts (stored as `vigil.alert.detector`, printed by
    /// hunt as `detector`).
    pub fn detail(&self) -> Value {
        let entity: Map<String, Value> = self
            .entity
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        json!({
            "id": self.detector.id(),
            "entity": entity,
            "counts": self.counts,
            "window": format!("{}s", self.window_secs),
            "first": format_ms(self.first),
            "last": format_ms(self.last),
        })
    }

    /// The alert event's fields as (dotted ECS path, value), the same
    /// shape as Sigma alerts: `event.kind: alert`, `rule.*`,
    /// `vigil.alert.level`, `event.severity`, `tags`,
    /// `threat.technique.id`, `message`, the entity fields and
    /// `vigil.alert.detector`. Evidence is left to the caller.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let d = self.detector;
        let mut f: Vec<(String, Value)> = vec![
            ("event.kind".into(), json!("alert")),
            ("event.dataset".into(), json!("vigil.alert")),
            ("rule.id".into(), json!(d.id())),
            ("rule.name".into(), json!(d.title())),
            ("rule.ruleset".into(), json!("vigil")),
            ("vigil.alert.level".into(), json!(d.level())),
            ("event.severity".into(), json!(severity(d.level()))),
            ("tags".into(), json!(d.tags())),
        ];
        let techniques: Vec<String> = d.tags().iter().filter_map(|t| technique(t)).collect();
        f.push(("threat.technique.id".into(), json!(techniques)));
        f.push((
            "message".into(),
            json!(format!("{}: {}", d.id(), self.summary)),
        ));
        for (k, v) in &self.entity {
            f.push((k.to_string(), json!(v)));
        }
        f.push(("vigil.alert.detector".into(), self.detail()));
        f
    }
}

fn severity(level: &str) -> u64 {
    match level {
        "informational" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        _ => 5,
    }
}

/// `attack.t1110.001` → `T1110.001`.
fn technique(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.t")?;
    rest.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit())
        .then(|| format!("T{}", rest.to_ascii_uppercase()))
}

/// Counters of one detector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Alerts raised.
    pub alerts: u64,
    /// Keys evicted because the detector tracked `max_keys` keys.
    pub evictions: u64,
    /// Events ignored because they were older than their key's window.
    pub late: u64,
    /// Alerts not raised because the entity was suppressed.
    pub suppressed: u64,
}

/// Successful logins kept per source to compare with its failures.
const OK_CAP: usize = 1024;

/// Number of detectors (the length of [`Detector::ALL`]).
pub const COUNT: usize = 17;

/// The state of every detector. Not thread-safe by design: it is owned by
/// the one thread that sees events in order (the server's writer, hunt's
/// sorted feeder).
#[derive(Debug)]
pub struct Detectors<E> {
    cfg: Config,
    /// Newest event time fed, for expiring idle keys.
    newest: i64,
    /// Newest `vigil.received_at` fed.
    newest_received: i64,
    fed: u64,
    bf_user: Keyed<Burst<E>>,
    bf_source: Keyed<Burst<E>>,
    spray: Keyed<Spray<E>>,
    /// Credential stuffing per login target (`host|service`).
    stuffing: Keyed<Stuffing<E>>,
    saf_user: Keyed<Burst<E>>,
    saf_source: Keyed<Burst<E>>,
    /// Recent successful logins per source (times only), to tell a shared
    /// address whose logins mostly succeed from an attacker's.
    ok_source: Keyed<Burst<()>>,
    scan: Keyed<Burst<E>>,
    attack: Keyed<Burst<E>>,
    /// Suppression of `log_tampering` per host and class.
    tamper: Keyed<Burst<E>>,
    /// Suppression of `privilege_change` per host, account and group.
    privilege: Keyed<Burst<E>>,
    /// Accounts created lately, by lower-case name.
    created: Keyed<Burst<E>>,
    /// The newest successful login per lower-case account, for creations
    /// that arrive after the login they explain.
    logins: Keyed<Burst<E>>,
    silence: silence::Silence<E>,
    /// First-seen baselines (persisted by the caller through
    /// [`Detectors::snapshot`] and [`Detectors::restore`]).
    baselines: baseline::Baselines,
    /// Per-entity rate profiles (persisted with the baselines).
    rates: rate::Rates<E>,
    /// Privileged group names, lower-case.
    privileged: std::collections::HashSet<String>,
    stats: [Stats; COUNT],
    /// Attempts dropped from a stuffing window for `max_events`.
    stuffing_dropped: u64,
}

pub(crate) fn ms(secs: u64) -> i64 {
    (secs as i64).saturating_mul(1000)
}

impl<E: Clone> Detectors<E> {
    /// Empty state for a validated configuration.
    pub fn new(cfg: Config) -> Detectors<E> {
        let n = cfg.max_keys;
        let cfg_groups = cfg
            .privilege_change
            .groups
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        Detectors {
            cfg,
            newest: i64::MIN,
            newest_received: i64::MIN,
            fed: 0,
            stuffing: Keyed::new(n),
            bf_user: Keyed::new(n),
            bf_source: Keyed::new(n),
            spray: Keyed::new(n),
            saf_user: Keyed::new(n),
            saf_source: Keyed::new(n),
            ok_source: Keyed::new(n),
            scan: Keyed::new(n),
            attack: Keyed::new(n),
            tamper: Keyed::new(n),
            privilege: Keyed::new(n),
            created: Keyed::new(n),
            logins: Keyed::new(n),
            silence: silence::Silence::new(),
            baselines: baseline::Baselines {
                version: baseline::SNAPSHOT_VERSION,
                ..Default::default()
            },
            rates: rate::Rates::new(),
            privileged: cfg_groups,
            stats: [Stats::default(); COUNT],
            stuffing_dropped: 0,
        }
    }

    /// The newest arrival fed (ms): the newest `vigil.received_at` when
    /// events carried one, else the newest event time; `None` before the
    /// first event. What offline silence is judged against.
    pub fn newest(&self) -> Option<i64> {
        [self.newest_received, self.newest]
            .into_iter()
            .find(|t| *t != i64::MIN)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Counters of one detector (evictions include those of its key maps).
    pub fn stats(&self, d: Detector) -> Stats {
        let mut s = self.stats[d as usize];
        s.evictions += match d {
            Detector::BruteForce => self.bf_user.evictions + self.bf_source.evictions,
            Detector::PasswordSpray => self.spray.evictions,
            Detector::CredentialStuffing => self.stuffing.evictions + self.stuffing_dropped,
            Detector::SuccessAfterFailures => self.saf_user.evictions + self.saf_source.evictions,
            Detector::WebScan => self.scan.evictions,
            Detector::WebAttack => self.attack.evictions,
            Detector::LogTampering => self.tamper.evictions,
            Detector::PrivilegeChange => self.privilege.evictions,
            Detector::NewAccountUsed => self.created.evictions + self.logins.evictions,
            Detector::SourceSilent => self.silence.evictions,
            Detector::SourceRecovered => 0,
            Detector::FirstSudo => self.baselines.sudo.full,
            Detector::NewSourceNetwork => self.baselines.networks.full,
            Detector::NewUserAgent => self.baselines.agents.full,
            Detector::NewProcessPair => self.baselines.pairs.full,
            Detector::RateSpike => self.rates.evictions,
            Detector::RateDrop => 0,
        };
        if d == Detector::SourceSilent {
            s.late += self.silence.late;
        }
        if d == Detector::RateSpike {
            s.late += self.rates.late;
        }
        s
    }

    /// Keys currently tracked, over every detector (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.bf_user.len()
            + self.bf_source.len()
            + self.spray.len()
            + self.saf_user.len()
            + self.saf_source.len()
            + self.scan.len()
            + self.attack.len()
            + self.tamper.len()
            + self.privilege.len()
            + self.created.len()
            + self.logins.len()
            + self.silence.map.len()
            + self.baselines.sudo.len()
            + self.baselines.networks.len()
            + self.baselines.agents.len()
            + self.baselines.pairs.len()
            + self.rates.len()
    }

    /// What is learnt, as JSON, to persist across restarts: the
    /// first-seen baselines, the source-silence gap statistics and the
    /// rate profiles.
    pub fn snapshot(&self) -> Result<Vec<u8>, serde_json::Error> {
        let b = &self.baselines;
        serde_json::to_vec(&baseline::SnapshotOut {
            version: baseline::SNAPSHOT_VERSION,
            sudo: &b.sudo,
            networks: &b.networks,
            agents: &b.agents,
            pairs: &b.pairs,
            silence: self.silence.saved(),
            rates: self.rates.saved(&self.cfg.rate),
        })
    }

    /// Replaces what is learnt with a snapshot. A snapshot that does not
    /// parse, has an unknown version or exceeds the configured caps is
    /// refused whole; the current state then stays as it was. A version 1
    /// snapshot (first-seen baselines only) leaves silence and rates to
    /// learn anew. Restored sources are not judged silent for the time
    /// before the next [`Detectors::tick`]: the time Vigil was down is not
    /// theirs. Rate buckets that were open carry their counts over, marked
    /// interrupted: they can still show a spike, never a drop, and are not
    /// learnt.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let s: baseline::SnapshotIn = serde_json::from_slice(bytes)?;
        let (b, silence, rates) = s.check(&self.cfg)?;
        self.baselines = b;
        self.silence.restore(silence);
        self.rates.restore(rates, &self.cfg.rate);
        Ok(())
    }

    fn late(&mut self, d: Detector) {
        self.stats[d as usize].late += 1;
    }

    /// Feeds one observation with its evidence; returns the alerts it
    /// completes.
    ///
    /// Re-alert policy: when an entity (account, source, source + attack
    /// class, or the login target for stuffing) alerts, its counted events are
    /// cleared and it cannot alert again until one window has passed
    /// after the alert's event time; events keep being counted meanwhile,
    /// so a sustained attack alerts about once per window.
    pub fn feed(&mut self, obs: &Observation, evidence: E) -> Vec<Alert<E>> {
        let mut out = Vec::new();
        let t = obs.time;
        self.newest = self.newest.max(t);
        if let Some(r) = obs.received {
            self.newest_received = self.newest_received.max(r);
        }
        self.fed += 1;
        if self.fed.is_multiple_of(4096) {
            self.expire();
        }
        if let Some(auth) = &obs.auth {
            match auth.outcome {
                Outcome::Failure => {
                    self.brute_force(obs, &evidence, &mut out);
                    self.spray(obs, &evidence, &mut out);
                    self.stuffing(obs, &evidence, true, &mut out);
                    self.saf_failure(obs, &evidence);
                }
                Outcome::Attempt => self.spray(obs, &evidence, &mut out),
                Outcome::Success => {
                    self.stuffing(obs, &evidence, false, &mut out);
                    self.saf_success(obs, &evidence, &mut out);
                    // After: a success is not compared with itself.
                    self.source_success(obs);
                    self.new_account_login(obs, &evidence, &mut out);
                }
            }
        }
        if obs.tamper.is_some() {
            self.log_tampering(obs, &evidence, &mut out);
        }
        match &obs.account {
            Some(AccountChange::AddedToGroup { .. }) => {
                self.privilege_change(obs, &evidence, &mut out)
            }
            Some(AccountChange::Created { .. }) => self.account_created(obs, &evidence, &mut out),
            None => {}
        }
        if obs.sudo.is_some() {
            self.first_sudo(obs, &evidence, &mut out);
        }
        if matches!(&obs.auth, Some(a) if a.outcome == Outcome::Success) {
            self.new_source_network(obs, &evidence, &mut out);
        }
        if obs.agent.is_some() {
            self.new_user_agent(obs, &evidence, &mut out);
        }
        if obs.process.is_some() {
            self.new_process_pair(obs, &evidence, &mut out);
        }
        if obs.origin.is_some() {
            self.heard(obs, &evidence, &mut out);
        }
        if obs.rate.is_some() {
            self.rate(obs, &evidence, &mut out);
        }
        if let Some(w) = &obs.web {
            if w.status == 404 {
                self.web_scan(obs, &evidence, &mut out);
            }
            if w.attack.is_some() {
                self.web_attack(obs, &evidence, &mut out);
            }
        }
        for a in &out {
            self.stats[a.detector as usize].alerts += 1;
        }
        out
    }

    /// Drops keys idle for longer than their window plus the skew tolerance.
    fn expire(&mut self) {
        let skew = ms(self.cfg.skew_tolerance_secs);
        let h = |w: u64| self.newest.saturating_sub(ms(w)).saturating_sub(skew);
        let c = &self.cfg;
        let (bf, sp, saf, sc, at) = (
            h(c.brute_force.window_secs),
            h(c.password_spray.window_secs),
            h(c.success_after_failures.window_secs),
            h(c.web_scan.window_secs),
            h(c.web_attack.suppress_secs),
        );
        self.bf_user.expire(bf);
        self.bf_source.expire(bf);
        self.spray.expire(sp);
        self.stuffing.expire(h(c.credential_stuffing.window_secs));
        self.saf_user.expire(saf);
        self.saf_source.expire(saf);
        self.ok_source.expire(h(self.ok_window_secs()));
        self.scan.expire(sc);
        self.attack.expire(at);
        self.tamper.expire(h(c.log_tampering.suppress_secs));
        self.privilege.expire(h(c.privilege_change.suppress_secs));
        let na = h(c.new_account_used.window_secs);
        self.created.expire(na);
        self.logins.expire(na);
    }

    pub(crate) fn entity(
        obs: &Observation,
        source: bool,
        user: bool,
    ) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if source {
            if let Some(s) = &obs.source {
                e.push(("source.ip", s.to_string()));
            }
        }
        if user {
            if let Some(u) = &obs.user {
                e.push(("user.name", u.to_string()));
            }
        }
        if let Some(h) = &obs.host {
            e.push(("host.name", h.to_string()));
        }
        e
    }

    /// How long successes per source are kept: the longest window that
    /// consults them.
    fn ok_window_secs(&self) -> u64 {
        let c = &self.cfg;
        c.brute_force
            .window_secs
            .max(c.password_spray.window_secs)
            .max(c.success_after_failures.window_secs)
    }

    /// Records a successful login from its source.
    fn source_success(&mut self, obs: &Observation) {
        let Some(s) = &obs.source else { return };
        let w = ms(self.ok_window_secs());
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        let _ = self
            .ok_source
            .get(s, obs.time, horizon)
            .push(obs.time, (), w, OK_CAP);
    }

    /// Successful logins from `source` with `lo <= time <= hi` (at most
    /// [`OK_CAP`] are kept).
    fn successes_from(&mut self, source: &str, lo: i64, hi: i64) -> usize {
        self.ok_source
            .peek_mut(source)
            .map_or(0, |b| b.count_between(lo, hi))
    }

    fn brute_force(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.brute_force;
        if !c.enabled {
            return;
        }
        let (w, n) = (ms(c.window_secs), c.threshold);
        let horizon = self
            .newest
            .saturating_sub(ms(c.window_secs) + ms(self.cfg.skew_tolerance_secs));
        let mut hit_user = None;
        let mut hit_source = None;
        let mut late = 0;
        if let Some(u) = &obs.user {
            let b = self.bf_user.get(u, obs.time, horizon);
            match b.push(obs.time, ev.clone(), w, n) {
                Err(()) => late += 1,
                Ok(()) if b.len() >= n => hit_user = Some(b.ready(obs.time, w)),
                Ok(()) => {}
            }
        }
        if let Some(s) = &obs.source {
            let b = self.bf_source.get(s, obs.time, horizon);
            match b.push(obs.time, ev.clone(), w, n) {
                Err(()) => late += 1,
                Ok(()) if b.len() >= n => hit_source = Some(b.ready(obs.time, w)),
                Ok(()) => {}
            }
        }
        if late > 0 {
            self.late(Detector::BruteForce);
        }
        let max_ev = self.cfg.max_evidence;
        let window_secs = c.window_secs;
        let (user_ok, mut source_ok) = (hit_user == Some(true), hit_source == Some(true));
        if hit_user == Some(false) || hit_source == Some(false) {
            self.stats[Detector::BruteForce as usize].suppressed += 1;
        }
        if source_ok {
            // A shared address whose logins mostly succeed is not an attacker.
            let s = obs.source.as_deref().unwrap_or_default();
            let fails = self.bf_source.peek_mut(s).map_or(0, |b| b.len());
            if self.successes_from(s, obs.time - w, obs.time) >= fails {
                source_ok = false;
            }
        }
        if !user_ok && !source_ok {
            return;
        }
        // One attack that crosses both thresholds at once is one alert
        // naming both the source and the account.
        let burst = if source_ok {
            let s = obs.source.as_deref().unwrap_or_default();
            self.bf_source
                .get(s, obs.time, horizon)
                .take(max_ev, obs.time, w)
        } else {
            let u = obs.user.as_deref().unwrap_or_default();
            self.bf_user
                .get(u, obs.time, horizon)
                .take(max_ev, obs.time, w)
        };
        if user_ok && source_ok {
            let u = obs.user.as_deref().unwrap_or_default();
            self.bf_user
                .get(u, obs.time, horizon)
                .take(max_ev, obs.time, w);
        }
        let (failures, first, last, evidence, truncated) = burst;
        let entity = Self::entity(obs, source_ok, user_ok);
        let counts = counts(&[("failures", json!(failures)), ("threshold", json!(n))]);
        let who = match (source_ok, user_ok) {
            (true, true) => format!(
                "account {} from {}",
                obs.user.as_deref().unwrap_or("-"),
                obs.source.as_deref().unwrap_or("-")
            ),
            (true, false) => format!("source {}", obs.source.as_deref().unwrap_or("-")),
            _ => format!("account {}", obs.user.as_deref().unwrap_or("-")),
        };
        out.push(
            Alert::new(
                Detector::BruteForce,
                format!("{failures} authentication failures for {who} within {window_secs}s"),
            )
            .entity(entity)
            .counts(counts)
            .window(window_secs)
            .span(first, last)
            .evidence(evidence, truncated),
        );
    }

    fn spray(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.password_spray;
        // Explicit-credential attempts (4648) carry no source address: the
        // host that made them is the sprayer.
        let attempt = obs
            .auth
            .as_ref()
            .is_some_and(|a| a.outcome == Outcome::Attempt);
        let src = match (&obs.source, attempt) {
            (Some(s), _) => s,
            (None, true) => match &obs.host {
                Some(h) => h,
                None => return,
            },
            (None, false) => return,
        };
        let Some(user) = &obs.user else {
            return;
        };
        if !c.enabled {
            return;
        }
        let w = ms(c.window_secs);
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        let cap = (c.min_accounts * c.max_attempts_per_account as usize * 4).min(100_000);
        let (k, per, window_secs, max_ev) = (
            c.min_accounts,
            c.max_attempts_per_account,
            c.window_secs,
            self.cfg.max_evidence,
        );
        let s = self.spray.get(src, obs.time, horizon);
        if s.push(obs.time, user, ev.clone(), w, per, cap).is_err() {
            self.late(Detector::PasswordSpray);
            return;
        }
        if s.low < k {
            return;
        }
        // A shared address whose logins mostly succeed is not spraying.
        let attempts = s.entries.len();
        if self.successes_from(src, obs.time - w, obs.time) >= attempts {
            return;
        }
        let s = self.spray.get(src, obs.time, horizon);
        if obs.time <= s.suppress_until {
            self.stats[Detector::PasswordSpray as usize].suppressed += 1;
            return;
        }
        let accounts = s.low;
        let attempts = s.entries.len();
        let (first, last, evidence, truncated) = s.take(max_ev, obs.time, w);
        let counts = counts(&[
            ("distinct_accounts", json!(accounts)),
            ("attempts", json!(attempts)),
            ("max_attempts_per_account", json!(per)),
        ]);
        out.push(Alert::new(Detector::PasswordSpray, format!(
                "{accounts} accounts failed from {src} (at most {per} attempts each) within {window_secs}s"
            )).entity(Self::entity(obs, true, false)).counts(counts).window(window_secs).span(first, last).evidence(evidence, truncated));
    }

    fn stuffing(&mut self, obs: &Observation, ev: &E, failed: bool, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.credential_stuffing;
        let (Some(src), Some(user)) = (&obs.source, &obs.user) else {
            return;
        };
        if !c.enabled {
            return;
        }
        // The login target: the host and the service that logged the
        // attempt (a shop's API on web01 is not web01's sshd).
        let host = obs.host.as_deref().unwrap_or("-");
        let via = obs.auth.as_ref().map_or("-", |a| a.via);
        let mut key = String::with_capacity(host.len() + via.len() + 1);
        key.push_str(host);
        key.push('|');
        key.push_str(via);
        let w = ms(c.window_secs);
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        let st = self.stuffing.get(&key, obs.time, horizon);
        let before = st.evictions;
        let pushed = st.push(obs.time, user, src, failed, ev.clone(), w, c.max_events);
        let dropped = st.evictions - before;
        self.stuffing_dropped += dropped;
        if pushed.is_err() {
            self.stats[Detector::CredentialStuffing as usize].late += 1;
            return;
        }
        if !failed {
            return;
        }
        let st = self.stuffing.get(&key, obs.time, horizon);
        // Cheap first: enough sources in the window at all, then enough
        // of them failing more than they succeed (one pass over sources),
        // and only then the pass over the window's attempts.
        // A suppressed target is not judged at all: the pass over its
        // window is the expensive part.
        if obs.time <= st.suppress_until {
            return;
        }
        if st.sources.len() < c.min_sources
            || !st.pass_due()
            || st.failing_sources() < c.min_sources
        {
            return;
        }
        let f = st.failing();
        let total = f.failures + f.successes;
        let ratio = if total == 0 {
            0.0
        } else {
            f.failures as f64 / total as f64
        };
        if f.accounts < c.min_accounts || ratio < c.min_failure_ratio {
            return;
        }
        let window_secs = c.window_secs;
        let (first, last, evidence, truncated) = st.take(self.cfg.max_evidence, obs.time, w);
        let counts = counts(&[
            ("target", json!(key)),
            ("service", json!(via)),
            ("distinct_accounts", json!(f.accounts)),
            ("distinct_sources", json!(f.sources)),
            ("failures", json!(f.failures)),
            ("successes", json!(f.successes)),
            ("failure_ratio", json!((ratio * 1000.0).round() / 1000.0)),
        ]);
        let mut entity = Vec::new();
        if let Some(h) = &obs.host {
            entity.push(("host.name", h.to_string()));
        }
        out.push(
            Alert::new(
                Detector::CredentialStuffing,
                format!(
                    "{} failures for {} accounts from {} sources against {host} ({via}), {:.0}% of their attempts failed, within {window_secs}s",
                    f.failures,
                    f.accounts,
                    f.sources,
                    ratio * 100.0
                ),
            )
            .entity(entity)
            .counts(counts)
            .window(window_secs)
            .span(first, last)
            .evidence(evidence, truncated),
        );
    }

    fn saf_failure(&mut self, obs: &Observation, ev: &E) {
        let c = self.cfg.success_after_failures;
        if !c.enabled {
            return;
        }
        let w = ms(c.window_secs);
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        // Keep a little more than needed so that out-of-order successes
        // can still count the failures before them.
        let cap = c.min_failures * 2;
        if let Some(u) = &obs.user {
            let _ = self
                .saf_user
                .get(u, obs.time, horizon)
                .push(obs.time, ev.clone(), w, cap);
        }
        if let Some(s) = &obs.source {
            let _ = self
                .saf_source
                .get(s, obs.time, horizon)
                .push(obs.time, ev.clone(), w, cap);
        }
    }

    fn saf_success(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.success_after_failures;
        if !c.enabled {
            return;
        }
        let (w, n, window_secs) = (ms(c.window_secs), c.min_failures, c.window_secs);
        let max_ev = self.cfg.max_evidence;
        let mut best: Option<(bool, usize, i64, Vec<E>, bool)> = None;
        let mut suppressed = false;
        // Failures from a source count only when they outnumber its
        // successes: a shared address (NAT, proxy, a busy internal host)
        // sees other people's typos all day among far more good logins.
        let source_failing = obs.source.as_deref().is_some_and(|s| {
            let fails = self
                .saf_source
                .peek_mut(s)
                .map_or(0, |b| b.count_between(obs.time - w, obs.time));
            fails > self.successes_from(s, obs.time - w, obs.time)
        });
        for by_source in [false, true] {
            if by_source && !source_failing {
                continue;
            }
            let (map, key) = if by_source {
                (&mut self.saf_source, obs.source.as_deref())
            } else {
                (&mut self.saf_user, obs.user.as_deref())
            };
            let Some(b) = key.and_then(|k| map.peek_mut(k)) else {
                continue;
            };
            let count = b.count_between(obs.time - w, obs.time);
            if count < n {
                continue;
            }
            if obs.time <= b.suppress_until {
                suppressed = true;
                continue;
            }
            let (fails, first, _, mut evidence, mut truncated) = b.take_before(max_ev, obs.time, w);
            if evidence.len() >= max_ev {
                evidence.remove(0);
                truncated = true;
            }
            evidence.push(ev.clone());
            if best.as_ref().is_none_or(|b| fails > b.1) {
                best = Some((by_source, fails, first, evidence, truncated));
            }
        }
        if suppressed && best.is_none() {
            self.stats[Detector::SuccessAfterFailures as usize].suppressed += 1;
        }
        let Some((_, fails, first, evidence, truncated)) = best else {
            return;
        };
        let counts = counts(&[("failures", json!(fails)), ("min_failures", json!(n))]);
        out.push(
            Alert::new(
                Detector::SuccessAfterFailures,
                format!(
                    "login of {} from {} succeeded after {fails} failures within {window_secs}s",
                    obs.user.as_deref().unwrap_or("-"),
                    obs.source.as_deref().unwrap_or("-")
                ),
            )
            .entity(Self::entity(obs, true, true))
            .counts(counts)
            .window(window_secs)
            .span(first, obs.time)
            .evidence(evidence, truncated),
        );
    }

    fn web_scan(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.web_scan;
        let Some(src) = &obs.source else { return };
        if !c.enabled {
            return;
        }
        let (w, n, window_secs) = (ms(c.window_secs), c.threshold, c.window_secs);
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        let max_ev = self.cfg.max_evidence;
        let b = self.scan.get(src, obs.time, horizon);
        if b.push(obs.time, ev.clone(), w, n).is_err() {
            self.late(Detector::WebScan);
            return;
        }
        if b.len() < n {
            return;
        }
        if !b.ready(obs.time, w) {
            self.stats[Detector::WebScan as usize].suppressed += 1;
            return;
        }
        let (count, first, last, evidence, truncated) = b.take(max_ev, obs.time, w);
        let counts = counts(&[("not_found", json!(count)), ("threshold", json!(n))]);
        out.push(
            Alert::new(
                Detector::WebScan,
                format!("{count} requests from {src} answered 404 within {window_secs}s"),
            )
            .entity(Self::entity(obs, true, false))
            .counts(counts)
            .window(window_secs)
            .span(first, last)
            .evidence(evidence, truncated),
        );
    }

    fn web_attack(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.web_attack;
        let Some(web) = &obs.web else { return };
        let Some((class, pattern)) = web.attack else {
            return;
        };
        let w = ms(c.suppress_secs);
        let horizon = self
            .newest
            .saturating_sub(w + ms(self.cfg.skew_tolerance_secs));
        // Suppression is per source and class; without a source, per class.
        let mut key = String::with_capacity(48);
        key.push_str(class.as_str());
        key.push('|');
        key.push_str(obs.source.as_deref().unwrap_or("-"));
        let b = self.attack.get(&key, obs.time, horizon);
        if obs.time <= b.suppress_until {
            self.stats[Detector::WebAttack as usize].suppressed += 1;
            return;
        }
        b.suppress_until = obs.time.saturating_add(w);
        let mut counts = counts(&[
            ("class", json!(class.as_str())),
            ("pattern", json!(pattern)),
            ("status", json!(web.status)),
        ]);
        if let Some(u) = &web.url {
            counts.insert("url".into(), json!(u));
        }
        out.push(
            Alert::new(
                Detector::WebAttack,
                format!(
                    "{} probe from {} ({pattern:?}, status {})",
                    class.as_str(),
                    obs.source.as_deref().unwrap_or("-"),
                    web.status
                ),
            )
            .entity(Self::entity(obs, true, false))
            .counts(counts)
            .window(c.suppress_secs)
            .single(obs.time, ev.clone()),
        );
    }
}

/// Evidence of a burst: count, first, last, evidence (capped, newest
/// kept), truncated.
type Taken<E> = (usize, i64, i64, Vec<E>, bool);

fn cap_evidence<E>(mut v: VecDeque<(i64, E)>, max: usize) -> Taken<E> {
    let n = v.len();
    let first = v.front().map_or(0, |x| x.0);
    let last = v.back().map_or(0, |x| x.0);
    let truncated = n > max;
    while v.len() > max {
        v.pop_front();
    }
    (
        n,
        first,
        last,
        v.into_iter().map(|x| x.1).collect(),
        truncated,
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_host;
