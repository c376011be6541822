//! The grouping policy: which open incident an alert joins, or whether it
//! opens one. `[incidents]` settings are [`IncidentsConfig`].
//!
//! Two ways to join, tried in this order:
//!
//! * **entity**: the incident's entity and the alert's share at least one
//!   of `source.ip`, `user.name`, `host.name` with the same value, and no
//!   field both have differs (`root@bastion` joins `root@bastion from
//!   203.0.113.10`, not `alice@bastion`);
//! * **chain**: on the same `host.name`, the alert's ATT&CK tactics add a
//!   kill-chain [`STAGES`] step the incident has not seen yet (credential
//!   access on a host, then privilege escalation there, whoever did it).
//!
//! Either only while the alert's time is within the window of the
//! incident's alerts (`[first − window, last + window]`, edges included).
//! An alert below `min_severity` never opens an incident by itself but may
//! join one; a suppressed alert does neither.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_alert::model::{Level, Millis};

/// `[incidents]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Incident tracking (needs alert tracking; default on).
    pub enabled: bool,
    /// Group alerts of the same entity into one incident.
    pub entity_grouping: bool,
    /// How close in time (seconds) an alert must be to an incident's alerts to join by entity.
    pub group_window_secs: u64,
    /// Group alerts on one host whose ATT&CK tactics form a chain.
    pub chain: bool,
    /// How close in time (seconds) an alert must be to join by tactic chain.
    pub chain_window_secs: u64,
    /// Alerts below this level do not open incidents (they may still join one).
    pub min_severity: Level,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            entity_grouping: true,
            group_window_secs: 3600,
            chain: true,
            chain_window_secs: 3600,
            min_severity: Level::Medium,
        }
    }
}

/// Longest grouping window: 30 days.
pub const MAX_WINDOW_SECS: u64 = 30 * 24 * 3600;

impl IncidentsConfig {
    /// Checks the windows; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("incidents.group_window_secs", self.group_window_secs),
            ("incidents.chain_window_secs", self.chain_window_secs),
        ] {
            if v == 0 || v > MAX_WINDOW_SECS {
                return Err(format!(
                    "{key} = {v}: must be between 1 and {MAX_WINDOW_SECS}"
                ));
            }
        }
        Ok(())
    }
}

/// Kill-chain stages: ATT&CK tactics (as Sigma tags name them, without
/// `attack.`) that usually happen together get one stage.
pub const STAGES: [&[&str]; 6] = [
    &["reconnaissance", "resource_development"],
    &["initial_access", "credential_access"],
    &["execution", "privilege_escalation", "persistence"],
    &["defense_evasion", "discovery"],
    &["lateral_movement", "collection"],
    &["command_and_control", "exfiltration", "impact"],
];

/// The tactic a tag names (`attack.credential_access`, `attack.Credential-Access`), if any.
pub fn tactic(tag: &str) -> Option<String> {
    let t = tag.get(..7)?;
    if !t.eq_ignore_ascii_case("attack.") {
        return None;
    }
    let name = tag[7..].to_ascii_lowercase().replace('-', "_");
    STAGES
        .iter()
        .any(|s| s.contains(&name.as_str()))
        .then_some(name)
}

/// The stages of a tactic list, as a bit set (bit `i` = `STAGES[i]`).
pub fn stages(tags: &[String]) -> u32 {
    tags.iter()
        .filter_map(|t| tactic(t))
        .filter_map(|t| STAGES.iter().position(|s| s.contains(&t.as_str())))
        .fold(0, |acc, i| acc | (1 << i))
}

/// Tactics of `tags`, deduplicated, in kill-chain order.
pub fn tactics(tags: &[String]) -> Vec<String> {
    let found: Vec<String> = tags.iter().filter_map(|t| tactic(t)).collect();
    STAGES
        .iter()
        .flat_map(|s| s.iter())
        .filter(|t| found.iter().any(|f| f == *t))
        .map(|t| t.to_string())
        .collect()
}

/// What the policy needs to know about an open incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its id.
    pub id: String,
    /// Its entity.
    pub entity: BTreeMap<String, String>,
    /// Stages of its alerts' tactics.
    pub stages: u32,
    /// Earliest sighting of its alerts.
    pub first_alert_at: Millis,
    /// Latest sighting of its alerts.
    pub last_alert_at: Millis,
}

/// What the policy needs to know about an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFacts {
    /// Level.
    pub level: Level,
    /// Entity.
    pub entity: BTreeMap<String, String>,
    /// Stages of its tactics.
    pub stages: u32,
    /// Its sighting time.
    pub at: Millis,
}

/// How an alert joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Same entity.
    Entity,
    /// A tactic chain on the same host.
    Chain,
}

impl Reason {
    /// `entity` or `chain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Entity => "entity",
            Reason::Chain => "chain",
        }
    }
}

/// What to do with an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Join this incident.
    Join(String, Reason),
    /// Open a new incident.
    Open,
    /// Neither (below `min_severity`, nothing to join).
    Ignore,
}

/// Whether two entities are the same: at least one field in common with
/// equal values, and no field in common with different values.
pub fn same_entity(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    let mut shared = false;
    for (k, v) in a {
        if let Some(w) = b.get(k) {
            if v != w {
                return false;
            }
            shared = true;
        }
    }
    shared
}

fn within(c: &Candidate, at: Millis, window_secs: u64) -> bool {
    let w = (window_secs as Millis).saturating_mul(1000);
    at >= c.first_alert_at.saturating_sub(w) && at <= c.last_alert_at.saturating_add(w)
}

/// The grouping decision for `alert` among the `open` incidents: join by
/// entity, else by chain, else open when the alert is severe enough.
pub fn decide(config: &IncidentsConfig, alert: &AlertFacts, open: &[Candidate]) -> Decision {
    let best = |pick: &dyn Fn(&Candidate) -> bool| {
        open.iter()
            .filter(|c| pick(c))
            .max_by_key(|c| c.last_alert_at)
            .map(|c| c.id.clone())
    };
    if config.entity_grouping {
        if let Some(id) = best(&|c| {
            within(c, alert.at, config.group_window_secs) && same_entity(&c.entity, &alert.entity)
        }) {
            return Decision::Join(id, Reason::Entity);
        }
    }
    if config.chain && alert.stages != 0 {
        if let Some(host) = alert.entity.get("host.name") {
            if let Some(id) = best(&|c| {
                within(c, alert.at, config.chain_window_secs)
                    && c.entity.get("host.name") == Some(host)
                    && c.stages != 0
                    && alert.stages & !c.stages != 0
            }) {
                return Decision::Join(id, Reason::Chain);
            }
        }
    }
    if alert.level >= config.min_severity {
        Decision::Open
    } else {
        Decision::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    const H: Millis = 3_600_000;

    fn cand(id: &str, e: &[(&str, &str)], t: &[&str], first: Millis, last: Millis) -> Candidate {
        Candidate {
            id: id.into(),
            entity: ent(e),
            stages: stages(&tags(t)),
            first_alert_at: first,
            last_alert_at: last,
        }
    }

    fn alert(level: Level, e: &[(&str, &str)], t: &[&str], at: Millis) -> AlertFacts {
        AlertFacts {
            level,
            entity: ent(e),
            stages: stages(&tags(t)),
            at,
        }
    }

    #[test]
    fn tactics_are_read_from_tags_in_chain_order() {
        assert_eq!(
            tactic("attack.Credential-Access").as_deref(),
            Some("credential_access")
        );
        assert_eq!(tactic("attack.t1110.001"), None);
        assert_eq!(tactic("cve.2021-44228"), None);
        assert_eq!(tactic("at"), None);
        let t = tags(&[
            "attack.privilege_escalation",
            "attack.t1548",
            "attack.initial_access",
            "attack.privilege_escalation",
        ]);
        assert_eq!(tactics(&t), ["initial_access", "privilege_escalation"]);
        assert_eq!(stages(&t), 0b110);
    }

    #[test]
    fn same_entity_needs_a_shared_equal_field_and_no_conflict() {
        let root = ent(&[("user.name", "root"), ("host.name", "bastion")]);
        assert!(same_entity(
            &root,
            &ent(&[("user.name", "root"), ("source.ip", "203.0.113.10")])
        ));
        assert!(!same_entity(
            &root,
            &ent(&[("user.name", "alice"), ("host.name", "bastion")])
        ));
        assert!(!same_entity(&root, &ent(&[("source.ip", "203.0.113.10")])));
        assert!(!same_entity(&root, &ent(&[])));
    }

    #[test]
    fn entity_grouping_respects_the_window_edges() {
        let c = IncidentsConfig::default();
        let open = [cand(
            "i1",
            &[("source.ip", "203.0.113.10")],
            &[],
            10 * H,
            11 * H,
        )];
        let e = [("source.ip", "203.0.113.10"), ("user.name", "root")];
        // Exactly one window after the last alert, and before the first: joins.
        for at in [12 * H, 9 * H] {
            assert_eq!(
                decide(&c, &alert(Level::High, &e, &[], at), &open),
                Decision::Join("i1".into(), Reason::Entity),
                "at {at}"
            );
        }
        // One millisecond beyond either edge: a new incident.
        for at in [12 * H + 1, 9 * H - 1] {
            assert_eq!(
                decide(&c, &alert(Level::High, &e, &[], at), &open),
                Decision::Open,
                "at {at}"
            );
        }
        // Another entity does not join.
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &[("source.ip", "198.51.100.7")], &[], 11 * H),
                &open
            ),
            Decision::Open
        );
        // Turned off: never joins by entity.
        let off = IncidentsConfig {
            entity_grouping: false,
            ..c.clone()
        };
        assert_eq!(
            decide(&off, &alert(Level::High, &e, &[], 11 * H), &open),
            Decision::Open
        );
    }

    #[test]
    fn a_tactic_chain_on_one_host_joins_whoever_acted() {
        let c = IncidentsConfig::default();
        let open = [cand(
            "i1",
            &[
                ("host.name", "bastion"),
                ("source.ip", "203.0.113.10"),
                ("user.name", "root"),
            ],
            &["attack.credential_access"],
            10 * H,
            10 * H,
        )];
        let sudo = [("host.name", "bastion"), ("user.name", "deploy")];
        // Privilege escalation after credential access on the same host.
        assert_eq!(
            decide(
                &c,
                &alert(
                    Level::High,
                    &sudo,
                    &["attack.privilege_escalation"],
                    10 * H + 60_000
                ),
                &open
            ),
            Decision::Join("i1".into(), Reason::Chain)
        );
        // The same stage again is not a chain step.
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &sudo, &["attack.initial_access"], 10 * H),
                &open
            ),
            Decision::Open
        );
        // Another host, or no tactic, or out of the window: no chain.
        let other = [("host.name", "db1"), ("user.name", "deploy")];
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &other, &["attack.persistence"], 10 * H),
                &open
            ),
            Decision::Open
        );
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &sudo, &["attack.t1548"], 10 * H),
                &open
            ),
            Decision::Open
        );
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &sudo, &["attack.persistence"], 11 * H + 1),
                &open
            ),
            Decision::Open
        );
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &sudo, &["attack.persistence"], 11 * H),
                &open
            ),
            Decision::Join("i1".into(), Reason::Chain)
        );
        let off = IncidentsConfig {
            chain: false,
            ..c.clone()
        };
        assert_eq!(
            decide(
                &off,
                &alert(Level::High, &sudo, &["attack.persistence"], 10 * H),
                &open
            ),
            Decision::Open
        );
    }

    #[test]
    fn low_alerts_join_but_never_open() {
        let c = IncidentsConfig::default();
        let open = [cand("i1", &[("user.name", "root")], &[], 0, 0)];
        assert_eq!(
            decide(
                &c,
                &alert(Level::Low, &[("user.name", "root")], &[], 1),
                &open
            ),
            Decision::Join("i1".into(), Reason::Entity)
        );
        assert_eq!(
            decide(
                &c,
                &alert(Level::Low, &[("user.name", "bob")], &[], 1),
                &open
            ),
            Decision::Ignore
        );
        assert_eq!(
            decide(
                &c,
                &alert(Level::Medium, &[("user.name", "bob")], &[], 1),
                &open
            ),
            Decision::Open
        );
    }

    #[test]
    fn the_most_recent_matching_incident_wins() {
        let c = IncidentsConfig::default();
        let open = [
            cand("old", &[("user.name", "root")], &[], 0, H),
            cand("new", &[("user.name", "root")], &[], H, 2 * H),
        ];
        assert_eq!(
            decide(
                &c,
                &alert(Level::High, &[("user.name", "root")], &[], 2 * H),
                &open
            ),
            Decision::Join("new".into(), Reason::Entity)
        );
    }

    #[test]
    fn config_reads_and_validates() {
        let c: IncidentsConfig =
            toml::from_str("group_window_secs = 600\nmin_severity = \"high\"\nchain = false\n")
                .unwrap();
        assert_eq!(c.group_window_secs, 600);
        assert_eq!(c.min_severity, Level::High);
        assert!(!c.chain && c.enabled);
        assert!(c.validate().is_ok());
        let bad = IncidentsConfig {
            chain_window_secs: 0,
            ..c
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("incidents.chain_window_secs"));
        assert!(toml::from_str::<IncidentsConfig>("windo = 1").is_err());
    }
}
