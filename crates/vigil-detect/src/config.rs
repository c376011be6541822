//! `[detectors]` settings: per-detector switches, thresholds and windows.

use serde::Deserialize;

/// A setting that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("detectors.{key}: {message}")]
pub struct ConfigError {
    /// The setting, relative to `[detectors]` (e.g. `brute_force.threshold`).
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Every built-in detector's settings. All detectors are on by default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Master switch: `false` turns every detector off.
    pub enabled: bool,
    /// Keys (accounts, sources) tracked per detector; beyond it the least
    /// recently seen are evicted (`vigil_detector_evictions_total`).
    pub max_keys: usize,
    /// Evidence events named by one alert; more are dropped and the alert
    /// says `evidence_truncated`.
    pub max_evidence: usize,
    /// How far apart event clocks may be before idle state is expired: a
    /// key is dropped once the newest event time seen by the detector is
    /// more than its window plus this tolerance past the key's last event.
    pub skew_tolerance_secs: u64,
    /// `vigil.brute_force`.
    pub brute_force: BruteForce,
    /// `vigil.password_spray`.
    pub password_spray: PasswordSpray,
    /// `vigil.credential_stuffing`.
    pub credential_stuffing: CredentialStuffing,
    /// `vigil.success_after_failures`.
    pub success_after_failures: SuccessAfterFailures,
    /// `vigil.web_scan`.
    pub web_scan: WebScan,
    /// `vigil.web_attack`.
    pub web_attack: WebAttack,
    /// `vigil.log_tampering`.
    pub log_tampering: LogTampering,
    /// `vigil.privilege_change`.
    pub privilege_change: PrivilegeChange,
    /// `vigil.new_account_used`.
    pub new_account_used: NewAccountUsed,
    /// `vigil.source_silent` and `vigil.source_recovered`.
    pub source_silent: SourceSilent,
    /// `vigil.first_sudo`.
    pub first_sudo: FirstSudo,
    /// `vigil.new_source_network`: a user's successful login from a /24
    /// (IPv4) or /48 (IPv6) new for that user.
    pub new_source_network: FirstSeen,
    /// `vigil.new_user_agent`: a user agent new for a user.
    pub new_user_agent: FirstSeen,
    /// `vigil.new_process_pair`: a parent→child process pair new on a host.
    pub new_process_pair: FirstSeen,
    /// `vigil.rate_spike` and `vigil.rate_drop`: event rates per entity
    /// against a learnt weekly profile.
    pub rate: Rate,
}

/// `[detectors.rate]`: per-entity event rates with seasonality.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Rate {
    /// On or off (both `vigil.rate_spike` and `vigil.rate_drop`).
    pub enabled: bool,
    /// Count per sending source (`vigil.source`, else `observer.name`).
    pub by_source: bool,
    /// Count per host (`host.name`, Windows `Computer`).
    pub by_host: bool,
    /// Count per user (`user.name`, Windows `TargetUserName`).
    pub by_user: bool,
    /// Count per event category (`event.category`).
    pub by_category: bool,
    /// Length of one counting bucket in seconds; divides an hour.
    pub bucket_secs: u64,
    /// Seconds an entity is watched before it can alert.
    pub learning_secs: u64,
    /// Observations a profile slot needs before it is trusted; until then
    /// the next coarser slot is used.
    pub min_slot_observations: u32,
    /// Smallest score (deviation in spreads) that alerts.
    pub min_score: f64,
    /// A spike is at least this many times the expected count …
    pub spike_factor: f64,
    /// … a drop at most this fraction of it …
    pub drop_factor: f64,
    /// … and either differs from the expected count by at least this many
    /// events per bucket, so that tiny counts never alert.
    pub min_change: f64,
    /// Entities tracked per kind; beyond it the least recently seen are
    /// evicted (counted).
    pub max_entities: usize,
    /// Which time places an event in a bucket in `vigil serve`.
    pub clock: RateClock,
}

/// The time a rate counts by.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RateClock {
    /// When Vigil received the event (`vigil.received_at`): what a live
    /// feed's rate is, whatever the senders' clocks say. The default.
    #[default]
    Arrival,
    /// The event's own `@timestamp`: for a server that is fed a replay or a
    /// backfill of old logs, whose arrival rate says nothing. Offline hunts
    /// always count by event time.
    Event,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            enabled: true,
            by_source: true,
            by_host: true,
            by_user: true,
            by_category: true,
            bucket_secs: 300,
            learning_secs: 7200,
            min_slot_observations: 6,
            min_score: 6.0,
            spike_factor: 4.0,
            drop_factor: 0.1,
            min_change: 50.0,
            max_entities: 5000,
            clock: RateClock::Arrival,
        }
    }
}

/// `[detectors.brute_force]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForce {
    /// On or off.
    pub enabled: bool,
    /// Failures for one account, or from one source, that raise an alert.
    pub threshold: usize,
    /// Window in seconds: first and last failure at most this far apart.
    pub window_secs: u64,
}

/// `[detectors.password_spray]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSpray {
    /// On or off.
    pub enabled: bool,
    /// Distinct accounts failed from one source that raise an alert.
    pub min_accounts: usize,
    /// An account tried more often than this from the source is not
    /// counted (that is brute force, not spraying).
    pub max_attempts_per_account: u32,
    /// Window in seconds.
    pub window_secs: u64,
}

/// `[detectors.credential_stuffing]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialStuffing {
    /// On or off.
    pub enabled: bool,
    /// Distinct accounts failed, on one login target (host and service),
    /// by the sources that fail there more than they succeed.
    pub min_accounts: usize,
    /// Such failing sources on the target.
    pub min_sources: usize,
    /// failures / (failures + successes) of those sources in the window,
    /// 0.0–1.0.
    pub min_failure_ratio: f64,
    /// Window in seconds.
    pub window_secs: u64,
    /// Authentication events kept per target in the window (oldest
    /// evicted beyond).
    pub max_events: usize,
}

/// `[detectors.success_after_failures]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SuccessAfterFailures {
    /// On or off.
    pub enabled: bool,
    /// Failures for the account (or from the source) within the window
    /// before the success.
    pub min_failures: usize,
    /// Window in seconds, ending at the success.
    pub window_secs: u64,
}

/// `[detectors.web_scan]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebScan {
    /// On or off.
    pub enabled: bool,
    /// 404 responses to one source that raise an alert.
    pub threshold: usize,
    /// Window in seconds.
    pub window_secs: u64,
}

/// `[detectors.web_attack]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebAttack {
    /// On or off.
    pub enabled: bool,
    /// Bytes of a URL inspected (the rest is ignored): bounds the work.
    pub max_url_bytes: usize,
    /// After an alert for a source and attack class, further hits of the
    /// same class from the source are not alerted for this many seconds.
    pub suppress_secs: u64,
}

/// `[detectors.log_tampering]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogTampering {
    /// On or off.
    pub enabled: bool,
    /// After an alert for a host and class of tampering, further signs of
    /// the same class on the host are not alerted for this many seconds.
    pub suppress_secs: u64,
}

/// `[detectors.privilege_change]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PrivilegeChange {
    /// On or off.
    pub enabled: bool,
    /// Group names that grant administrative rights (case-insensitive);
    /// Windows groups are also recognised by their well-known SIDs.
    pub groups: Vec<String>,
    /// The same account added to the same group on the same host again
    /// within this many seconds is one alert (usermod writes the group
    /// and the shadow group).
    pub suppress_secs: u64,
}

/// `[detectors.new_account_used]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NewAccountUsed {
    /// On or off.
    pub enabled: bool,
    /// A successful login of a new account at most this many seconds
    /// after its creation raises an alert.
    pub window_secs: u64,
}

/// `[detectors.source_silent]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSilent {
    /// On or off.
    pub enabled: bool,
    /// Gaps observed before a source's silence is judged at all.
    pub min_observations: u32,
    /// Silence beyond `factor` × the typical gap (an exponentially
    /// weighted mean) …
    pub factor: f64,
    /// … and beyond `max_gap_factor` × the longest gap seen lately …
    pub max_gap_factor: f64,
    /// … and beyond this many seconds raises an alert.
    pub floor_secs: u64,
    /// Weight of a new gap in the moving mean, 0.0–1.0.
    pub alpha: f64,
    /// Sources tracked; beyond it the least recently heard are evicted.
    pub max_sources: usize,
}

/// `[detectors.first_sudo]`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FirstSudo {
    /// On or off.
    pub enabled: bool,
    /// Seconds of event time, from the first sudo seen, during which sudo
    /// users are learnt without alerts.
    pub learning_secs: u64,
    /// Users remembered; once full, further new users are neither learnt
    /// nor alerted (counted as evictions).
    pub max_users: usize,
}

/// `[detectors.new_source_network]`, `[detectors.new_user_agent]`,
/// `[detectors.new_process_pair]`: a first-seen baseline.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FirstSeen {
    /// On or off.
    pub enabled: bool,
    /// Seconds of event time, from the first value seen, during which
    /// values are learnt without alerts.
    pub learning_secs: u64,
    /// Entities (users, hosts) remembered; beyond, new ones are ignored.
    pub max_entities: usize,
    /// Values remembered per entity; an entity with more has no baseline
    /// worth alerting on, and its new values are ignored.
    pub max_values: usize,
    /// Alert only when fewer than this many other entities know the value
    /// (an office network or a common browser is not news); 0 alerts on
    /// every new value.
    pub max_spread: u32,
}

impl FirstSeen {
    fn with_spread(max_spread: u32) -> Self {
        FirstSeen {
            enabled: true,
            learning_secs: 7200,
            max_entities: 100_000,
            max_values: 64,
            max_spread,
        }
    }
}

impl Default for FirstSeen {
    fn default() -> Self {
        FirstSeen::with_spread(3)
    }
}

impl Default for FirstSudo {
    fn default() -> Self {
        FirstSudo {
            enabled: true,
            learning_secs: 7200,
            max_users: 100_000,
        }
    }
}

impl Default for LogTampering {
    fn default() -> Self {
        LogTampering {
            enabled: true,
            suppress_secs: 600,
        }
    }
}

impl Default for PrivilegeChange {
    fn default() -> Self {
        PrivilegeChange {
            enabled: true,
            groups: crate::activity::default_privileged_groups(),
            suppress_secs: 300,
        }
    }
}

impl Default for NewAccountUsed {
    fn default() -> Self {
        NewAccountUsed {
            enabled: true,
            window_secs: 600,
        }
    }
}

impl Default for SourceSilent {
    fn default() -> Self {
        SourceSilent {
            enabled: true,
            min_observations: 50,
            factor: 10.0,
            max_gap_factor: 2.0,
            floor_secs: 900,
            alpha: 0.05,
            max_sources: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            max_keys: 10_000,
            max_evidence: 20,
            skew_tolerance_secs: 120,
            brute_force: BruteForce::default(),
            password_spray: PasswordSpray::default(),
            credential_stuffing: CredentialStuffing::default(),
            success_after_failures: SuccessAfterFailures::default(),
            web_scan: WebScan::default(),
            web_attack: WebAttack::default(),
            log_tampering: LogTampering::default(),
            privilege_change: PrivilegeChange::default(),
            new_account_used: NewAccountUsed::default(),
            source_silent: SourceSilent::default(),
            first_sudo: FirstSudo::default(),
            new_source_network: FirstSeen::with_spread(3),
            new_user_agent: FirstSeen::with_spread(3),
            new_process_pair: FirstSeen::with_spread(2),
            rate: Rate::default(),
        }
    }
}

impl Default for BruteForce {
    fn default() -> Self {
        BruteForce {
            enabled: true,
            threshold: 10,
            window_secs: 300,
        }
    }
}

impl Default for PasswordSpray {
    fn default() -> Self {
        PasswordSpray {
            enabled: true,
            min_accounts: 10,
            max_attempts_per_account: 3,
            window_secs: 600,
        }
    }
}

impl Default for CredentialStuffing {
    fn default() -> Self {
        CredentialStuffing {
            enabled: true,
            min_accounts: 20,
            min_sources: 5,
            min_failure_ratio: 0.9,
            window_secs: 600,
            max_events: 100_000,
        }
    }
}

impl Default for SuccessAfterFailures {
    fn default() -> Self {
        SuccessAfterFailures {
            enabled: true,
            min_failures: 5,
            window_secs: 600,
        }
    }
}

impl Default for WebScan {
    fn default() -> Self {
        WebScan {
            enabled: true,
            threshold: 50,
            window_secs: 60,
        }
    }
}

impl Default for WebAttack {
    fn default() -> Self {
        WebAttack {
            enabled: true,
            max_url_bytes: 4096,
            suppress_secs: 300,
        }
    }
}

/// Upper bound of every window: a day.
const MAX_WINDOW: u64 = 86_400;

fn check(ok: bool, key: &'static str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key,
            message: message.into(),
        })
    }
}

fn window(w: u64, key: &'static str) -> Result<(), ConfigError> {
    check(
        (1..=MAX_WINDOW).contains(&w),
        key,
        "must be 1..=86400 seconds",
    )
}

impl Config {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            (1..=1_000_000).contains(&self.max_keys),
            "max_keys",
            "must be 1..=1000000",
        )?;
        check(
            (1..=10_000).contains(&self.max_evidence),
            "max_evidence",
            "must be 1..=10000",
        )?;
        check(
            self.skew_tolerance_secs <= MAX_WINDOW,
            "skew_tolerance_secs",
            "must be at most 86400",
        )?;
        let b = &self.brute_force;
        check(
            (2..=10_000).contains(&b.threshold),
            "brute_force.threshold",
            "must be 2..=10000",
        )?;
        window(b.window_secs, "brute_force.window_secs")?;
        let s = &self.password_spray;
        check(
            (2..=10_000).contains(&s.min_accounts),
            "password_spray.min_accounts",
            "must be 2..=10000",
        )?;
        check(
            (1..=1000).contains(&s.max_attempts_per_account),
            "password_spray.max_attempts_per_account",
            "must be 1..=1000",
        )?;
        window(s.window_secs, "password_spray.window_secs")?;
        let c = &self.credential_stuffing;
        check(
            (2..=100_000).contains(&c.min_accounts),
            "credential_stuffing.min_accounts",
            "must be 2..=100000",
        )?;
        check(
            (2..=100_000).contains(&c.min_sources),
            "credential_stuffing.min_sources",
            "must be 2..=100000",
        )?;
        check(
            (0.0..=1.0).contains(&c.min_failure_ratio),
            "credential_stuffing.min_failure_ratio",
            "must be between 0.0 and 1.0",
        )?;
        window(c.window_secs, "credential_stuffing.window_secs")?;
        check(
            (100..=10_000_000).contains(&c.max_events),
            "credential_stuffing.max_events",
            "must be 100..=10000000",
        )?;
        let a = &self.success_after_failures;
        check(
            (1..=10_000).contains(&a.min_failures),
            "success_after_failures.min_failures",
            "must be 1..=10000",
        )?;
        window(a.window_secs, "success_after_failures.window_secs")?;
        let w = &self.web_scan;
        check(
            (2..=100_000).contains(&w.threshold),
            "web_scan.threshold",
            "must be 2..=100000",
        )?;
        window(w.window_secs, "web_scan.window_secs")?;
        let x = &self.web_attack;
        check(
            (64..=65_536).contains(&x.max_url_bytes),
            "web_attack.max_url_bytes",
            "must be 64..=65536",
        )?;
        window(x.suppress_secs, "web_attack.suppress_secs")?;
        window(
            self.log_tampering.suppress_secs,
            "log_tampering.suppress_secs",
        )?;
        let p = &self.privilege_change;
        check(
            p.groups.len() <= 1000 && p.groups.iter().all(|g| !g.is_empty() && g.len() <= 256),
            "privilege_change.groups",
            "must be at most 1000 non-empty names of at most 256 bytes",
        )?;
        window(p.suppress_secs, "privilege_change.suppress_secs")?;
        window(
            self.new_account_used.window_secs,
            "new_account_used.window_secs",
        )?;
        let q = &self.source_silent;
        check(
            (2..=1_000_000).contains(&q.min_observations),
            "source_silent.min_observations",
            "must be 2..=1000000",
        )?;
        check(
            (1.0..=1000.0).contains(&q.factor),
            "source_silent.factor",
            "must be between 1.0 and 1000.0",
        )?;
        check(
            (0.0..=1000.0).contains(&q.max_gap_factor),
            "source_silent.max_gap_factor",
            "must be between 0.0 and 1000.0",
        )?;
        window(q.floor_secs, "source_silent.floor_secs")?;
        check(
            q.alpha > 0.0 && q.alpha <= 1.0,
            "source_silent.alpha",
            "must be above 0.0 and at most 1.0",
        )?;
        check(
            (1..=1_000_000).contains(&q.max_sources),
            "source_silent.max_sources",
            "must be 1..=1000000",
        )?;
        let f = &self.first_sudo;
        check(
            f.learning_secs <= 90 * MAX_WINDOW,
            "first_sudo.learning_secs",
            "must be at most 7776000 (90 days)",
        )?;
        check(
            (1..=10_000_000).contains(&f.max_users),
            "first_sudo.max_users",
            "must be 1..=10000000",
        )?;
        for (b, key) in [
            (
                &self.new_source_network,
                [
                    "new_source_network.learning_secs",
                    "new_source_network.max_entities",
                    "new_source_network.max_values",
                ],
            ),
            (
                &self.new_user_agent,
                [
                    "new_user_agent.learning_secs",
                    "new_user_agent.max_entities",
                    "new_user_agent.max_values",
                ],
            ),
            (
                &self.new_process_pair,
                [
                    "new_process_pair.learning_secs",
                    "new_process_pair.max_entities",
                    "new_process_pair.max_values",
                ],
            ),
        ] {
            check(
                b.learning_secs <= 90 * MAX_WINDOW,
                key[0],
                "must be at most 7776000 (90 days)",
            )?;
            check(
                (1..=10_000_000).contains(&b.max_entities),
                key[1],
                "must be 1..=10000000",
            )?;
            check(
                (1..=10_000).contains(&b.max_values),
                key[2],
                "must be 1..=10000",
            )?;
        }
        let r = &self.rate;
        check(
            (60..=3600).contains(&r.bucket_secs) && 3600 % r.bucket_secs == 0,
            "rate.bucket_secs",
            "must be 60..=3600 seconds and divide an hour",
        )?;
        check(
            r.learning_secs <= 90 * MAX_WINDOW,
            "rate.learning_secs",
            "must be at most 7776000 (90 days)",
        )?;
        check(
            (1..=10_000).contains(&r.min_slot_observations),
            "rate.min_slot_observations",
            "must be 1..=10000",
        )?;
        check(
            (1.0..=1000.0).contains(&r.min_score),
            "rate.min_score",
            "must be between 1.0 and 1000.0",
        )?;
        check(
            (1.0..=1000.0).contains(&r.spike_factor),
            "rate.spike_factor",
            "must be between 1.0 and 1000.0",
        )?;
        check(
            (0.0..1.0).contains(&r.drop_factor),
            "rate.drop_factor",
            "must be at least 0.0 and below 1.0",
        )?;
        check(
            (1.0..=1e9).contains(&r.min_change),
            "rate.min_change",
            "must be between 1 and 1000000000",
        )?;
        check(
            (1..=1_000_000).contains(&r.max_entities),
            "rate.max_entities",
            "must be 1..=1000000",
        )?;
        Ok(())
    }
}
