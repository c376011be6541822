//! The decisions taken for a new alert: which routes (and so channels) it
//! goes to, whether a maintenance window holds its notifications back, and
//! the retry schedule of a failed delivery.

use std::collections::BTreeMap;

use crate::config::{AlertsConfig, RetryConfig, RouteConfig};
use crate::model::{AlertInput, Millis};

/// A maintenance window with its times parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// Why.
    pub reason: String,
    /// Start (ms).
    pub start: Millis,
    /// End (ms, exclusive).
    pub end: Millis,
    /// Fields that must equal (empty: every alert).
    pub fields: BTreeMap<String, String>,
}

/// Everything the store needs to decide about an alert.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Grouping window (ms).
    pub group_window_ms: Millis,
    /// Fields of the grouping key.
    pub group_by: Vec<String>,
    /// Evidence seqs kept per alert.
    pub max_evidence: usize,
    /// Routes, in configuration order.
    pub routes: Vec<RouteConfig>,
    /// Maintenance windows.
    pub maintenance: Vec<Maintenance>,
    /// Retry schedule.
    pub retry: RetryConfig,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_config(&AlertsConfig::default())
    }
}

impl Policy {
    /// The policy of a validated configuration (maintenance windows whose
    /// times do not parse are left out; `validate` refuses them first).
    pub fn from_config(c: &AlertsConfig) -> Policy {
        Policy {
            group_window_ms: (c.group_window_secs as Millis).saturating_mul(1000),
            group_by: c.group_by.clone(),
            max_evidence: c.max_evidence,
            routes: c.routes.clone(),
            maintenance: c
                .maintenance
                .iter()
                .filter_map(|m| {
                    Some(Maintenance {
                        reason: m.reason.clone(),
                        start: crate::model::parse_time(&m.start).ok()?,
                        end: crate::model::parse_time(&m.end).ok()?,
                        fields: m.r#match.clone(),
                    })
                })
                .collect(),
            retry: c.retry.clone(),
        }
    }

    /// The routes `a` matches.
    pub fn routes_for<'a>(&'a self, a: &'a AlertInput) -> impl Iterator<Item = &'a RouteConfig> {
        self.routes.iter().filter(move |r| route_matches(r, a))
    }

    /// The maintenance window holding back `a`'s notifications at `now`.
    pub fn maintenance_for(&self, a: &AlertInput, now: Millis) -> Option<&Maintenance> {
        self.maintenance
            .iter()
            .find(|m| m.start <= now && now < m.end && a.matches_all(&m.fields))
    }
}

/// Whether every condition of `r` holds for `a`.
pub fn route_matches(r: &RouteConfig, a: &AlertInput) -> bool {
    r.min_level.is_none_or(|min| a.level >= min)
        && (r.tags.is_empty() || r.tags.iter().any(|t| a.tags.contains(t)))
        && (r.rule_ids.is_empty() || r.rule_ids.contains(&a.rule_id))
        && r.entity.iter().all(|(k, v)| a.entity.get(k) == Some(v))
}

/// Delay before attempt `attempt + 1` after `attempt` failed attempts
/// (1-based), without jitter: `initial * multiplier^(attempt-1)`, capped.
pub fn backoff_base(r: &RetryConfig, attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(64) as i32;
    let d = r.initial_ms as f64 * r.multiplier.powi(exp);
    if d.is_finite() {
        (d as u64).min(r.max_ms)
    } else {
        r.max_ms
    }
}

/// [`backoff_base`] with up to `jitter` of it taken off at random (`u` in 0..1).
pub fn backoff_with(r: &RetryConfig, attempt: u32, u: f64) -> u64 {
    let base = backoff_base(r, attempt);
    let cut = (base as f64 * r.jitter * u.clamp(0.0, 1.0)) as u64;
    base - cut.min(base)
}

/// [`backoff_with`] with a random `u`.
pub fn backoff(r: &RetryConfig, attempt: u32) -> u64 {
    backoff_with(r, attempt, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;

    fn input(level: Level, tags: &[&str], rule: &str, ip: Option<&str>) -> AlertInput {
        AlertInput {
            rule_id: rule.into(),
            rule_name: rule.into(),
            level,
            tags: tags.iter().map(|s| s.to_string()).collect(),
            entity: ip
                .map(|ip| [("source.ip".to_string(), ip.to_string())].into())
                .unwrap_or_default(),
            message: String::new(),
            seqs: vec![],
            evidence_truncated: false,
            seq: None,
        }
    }

    #[test]
    fn routes_match_on_level_tags_rule_and_entity() {
        let high = RouteConfig {
            name: "high".into(),
            channels: vec!["pager".into()],
            min_level: Some(Level::High),
            ..Default::default()
        };
        let cred = RouteConfig {
            name: "cred".into(),
            channels: vec!["chat".into()],
            tags: vec!["attack.credential_access".into()],
            rule_ids: vec!["r1".into(), "r2".into()],
            ..Default::default()
        };
        let ip = RouteConfig {
            name: "ip".into(),
            channels: vec!["x".into()],
            entity: [("source.ip".to_string(), "203.0.113.9".to_string())].into(),
            ..Default::default()
        };
        let a = input(Level::Critical, &[], "r9", None);
        assert!(route_matches(&high, &a));
        assert!(!route_matches(
            &high,
            &input(Level::Medium, &[], "r9", None)
        ));
        assert!(route_matches(
            &cred,
            &input(Level::Low, &["attack.credential_access"], "r2", None)
        ));
        assert!(!route_matches(
            &cred,
            &input(Level::Low, &["attack.credential_access"], "r3", None)
        ));
        assert!(!route_matches(
            &cred,
            &input(Level::Low, &["other"], "r1", None)
        ));
        assert!(route_matches(
            &ip,
            &input(Level::Low, &[], "r", Some("203.0.113.9"))
        ));
        assert!(!route_matches(
            &ip,
            &input(Level::Low, &[], "r", Some("203.0.113.8"))
        ));
        assert!(!route_matches(&ip, &input(Level::Low, &[], "r", None)));
        let p = Policy {
            routes: vec![high, cred, ip],
            ..Policy::default()
        };
        let both = input(Level::High, &["attack.credential_access"], "r1", None);
        let names: Vec<_> = p.routes_for(&both).map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["high", "cred"]);
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let r = RetryConfig {
            initial_ms: 1000,
            max_ms: 10_000,
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: 10,
        };
        let plain: Vec<u64> = (1..=6).map(|a| backoff_base(&r, a)).collect();
        assert_eq!(plain, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff_base(&r, 1000), 10_000);
        // Jitter takes at most `jitter` of the delay off.
        assert_eq!(backoff_with(&r, 3, 0.0), 4000);
        assert_eq!(backoff_with(&r, 3, 1.0), 2000);
        assert_eq!(backoff_with(&r, 3, 0.5), 3000);
        for _ in 0..100 {
            let d = backoff(&r, 3);
            assert!((2000..=4000).contains(&d), "{d}");
        }
    }

    #[test]
    fn maintenance_windows_apply_in_time_and_to_matching_alerts() {
        let p = Policy {
            maintenance: vec![Maintenance {
                reason: "patching".into(),
                start: 1000,
                end: 2000,
                fields: [("rule.id".to_string(), "r1".to_string())].into(),
            }],
            ..Policy::default()
        };
        let a = input(Level::High, &[], "r1", None);
        assert!(p.maintenance_for(&a, 999).is_none());
        assert_eq!(p.maintenance_for(&a, 1000).unwrap().reason, "patching");
        assert!(p.maintenance_for(&a, 2000).is_none());
        assert!(p
            .maintenance_for(&input(Level::High, &[], "r2", None), 1500)
            .is_none());
    }
}
