//! First-seen baselines: bounded sets of what has been seen, with a
//! learning period during which nothing new is alerted, and their
//! snapshot (JSON) for persistence across restarts.

use crate::{FastMap, FastSet};

use serde::{Deserialize, Serialize};

/// A bounded set of known values with its learning period.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Known {
    set: FastSet<Box<str>>,
    /// End of the learning period (event time, ms), from the first value.
    pub learn_until: Option<i64>,
    /// New values neither learnt nor alerted because the set was full.
    #[serde(skip)]
    pub full: u64,
}

/// What a baseline concluded about a value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Known already, or learnt during the learning period.
    Known,
    /// New after the learning period: alert (it is now known).
    New,
    /// New but the baseline is full: ignored.
    Full,
}

impl Known {
    /// Values known.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Records `value` seen at `t`.
    pub(crate) fn see(&mut self, value: &str, t: i64, learning_ms: i64, max: usize) -> Seen {
        let until = *self
            .learn_until
            .get_or_insert_with(|| t.saturating_add(learning_ms));
        if self.set.contains(value) {
            return Seen::Known;
        }
        if self.set.len() >= max {
            self.full += 1;
            return Seen::Full;
        }
        self.set.insert(Box::from(value));
        if t < until {
            Seen::Known
        } else {
            Seen::New
        }
    }
}

/// Values seen per entity (a user's networks, a host's process pairs),
/// bounded in entities and in values per entity.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct PerEntity {
    map: FastMap<Box<str>, Vec<Box<str>>>,
    /// Entities per value (how many users or hosts know it), for rarity.
    spread: FastMap<Box<str>, u32>,
    /// End of the learning period (event time, ms), from the first value.
    pub learn_until: Option<i64>,
    /// Values ignored because a cap was reached.
    #[serde(skip)]
    pub full: u64,
}

impl PerEntity {
    /// Entities known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Values known for `entity`.
    pub fn values(&self, entity: &str) -> &[Box<str>] {
        self.map.get(entity).map_or(&[], Vec::as_slice)
    }

    /// Entities that know `value`.
    pub fn spread(&self, value: &str) -> u32 {
        self.spread.get(value).copied().unwrap_or(0)
    }

    /// Records `value` for `entity` at `t`. Beyond `max_entities`
    /// entities or `max_values` values for one entity, new values are
    /// ignored: an entity with that many values has no baseline worth
    /// alerting on.
    pub(crate) fn see(
        &mut self,
        entity: &str,
        value: &str,
        t: i64,
        learning_ms: i64,
        max_entities: usize,
        max_values: usize,
    ) -> Seen {
        let until = *self
            .learn_until
            .get_or_insert_with(|| t.saturating_add(learning_ms));
        if let Some(v) = self.map.get(entity) {
            if v.iter().any(|x| &**x == value) {
                return Seen::Known;
            }
            if v.len() >= max_values {
                self.full += 1;
                return Seen::Full;
            }
        } else if self.map.len() >= max_entities {
            self.full += 1;
            return Seen::Full;
        }
        self.map
            .entry(Box::from(entity))
            .or_default()
            .push(Box::from(value));
        if self.spread.len() < max_entities.saturating_mul(4) || self.spread.contains_key(value) {
            *self.spread.entry(Box::from(value)).or_default() += 1;
        }
        if t < until {
            Seen::Known
        } else {
            Seen::New
        }
    }

    /// Whether the caps hold (a snapshot that breaks them is refused).
    fn within(&self, max_entities: usize, max_values: usize) -> bool {
        self.map.len() <= max_entities
            && self.map.values().all(|v| v.len() <= max_values)
            && self.spread.len() <= max_entities.saturating_mul(4)
    }
}

/// Every first-seen baseline: what is persisted across restarts.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baselines {
    /// Format version, [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Users seen using sudo (lower-case).
    pub sudo: Known,
    /// Networks (/24, /48) each user logged in from.
    pub networks: PerEntity,
    /// User agents per user.
    pub agents: PerEntity,
    /// Parent→child process pairs per host.
    pub pairs: PerEntity,
}

/// The snapshot format version: 2 adds the source-silence gaps and the
/// rate profiles to the first-seen baselines of version 1.
pub const SNAPSHOT_VERSION: u32 = 2;

/// The oldest version still read (its silence and rate state start empty).
pub const OLDEST_VERSION: u32 = 1;

/// The snapshot as written: references to the live state.
#[derive(Serialize)]
pub(crate) struct SnapshotOut<'a> {
    pub version: u32,
    pub sudo: &'a Known,
    pub networks: &'a PerEntity,
    pub agents: &'a PerEntity,
    pub pairs: &'a PerEntity,
    pub silence: crate::silence::Saved,
    pub rates: crate::rate::Saved,
}

/// The snapshot as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotIn {
    pub version: u32,
    pub sudo: Known,
    pub networks: PerEntity,
    pub agents: PerEntity,
    pub pairs: PerEntity,
    #[serde(default)]
    pub silence: crate::silence::Saved,
    #[serde(default)]
    pub rates: crate::rate::Saved,
}

impl SnapshotIn {
    /// Checks it against the configuration's caps and splits it.
    pub fn check(
        self,
        cfg: &crate::Config,
    ) -> Result<(Baselines, crate::silence::Saved, crate::rate::Saved), SnapshotError> {
        if !(OLDEST_VERSION..=SNAPSHOT_VERSION).contains(&self.version) {
            return Err(SnapshotError::Version {
                found: self.version,
            });
        }
        let b = Baselines {
            version: SNAPSHOT_VERSION,
            sudo: self.sudo,
            networks: self.networks,
            agents: self.agents,
            pairs: self.pairs,
        };
        b.check(cfg)?;
        crate::silence::Silence::<()>::check(&self.silence, &cfg.source_silent)
            .map_err(SnapshotError::Caps)?;
        crate::rate::Rates::<()>::check(&self.rates, &cfg.rate).map_err(SnapshotError::Caps)?;
        Ok((b, self.silence, self.rates))
    }
}

/// A snapshot that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON of the expected shape.
    #[error("baseline snapshot is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// Another format version.
    #[error(
        "baseline snapshot has version {found}, expected {OLDEST_VERSION} to {SNAPSHOT_VERSION}"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// More entries than the configured caps allow.
    #[error("baseline snapshot holds more than the configured caps allow ({0})")]
    Caps(&'static str),
}

impl Baselines {
    /// Checks a loaded snapshot against the configuration's caps.
    pub(crate) fn check(&self, cfg: &crate::Config) -> Result<(), SnapshotError> {
        if self.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: self.version,
            });
        }
        if self.sudo.len() > cfg.first_sudo.max_users {
            return Err(SnapshotError::Caps("first_sudo.max_users"));
        }
        let n = &cfg.new_source_network;
        if !self.networks.within(n.max_entities, n.max_values) {
            return Err(SnapshotError::Caps("new_source_network"));
        }
        let a = &cfg.new_user_agent;
        if !self.agents.within(a.max_entities, a.max_values) {
            return Err(SnapshotError::Caps("new_user_agent"));
        }
        let p = &cfg.new_process_pair;
        if !self.pairs.within(p.max_entities, p.max_values) {
            return Err(SnapshotError::Caps("new_process_pair"));
        }
        Ok(())
    }
}
