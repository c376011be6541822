//! Per-entity event rates against a learnt weekly profile:
//! `vigil.rate_spike` and `vigil.rate_drop`.
//!
//! Events are counted per entity (source, host, user, event category) in
//! buckets of `bucket_secs` of arrival time. When a bucket closes, every
//! tracked entity's count (zero included) is compared with what its
//! profile expects for that time of the week, then learnt.
//!
//! The profile of an entity is a set of slots, each an exponentially
//! weighted mean and variance of the bucket counts: one per hour of the
//! week (168), one per hour of the day (24), and one "recent" slot over
//! every bucket with a short memory (about an hour). The most specific
//! slot with at least `min_slot_observations` is used: the hour of the
//! week once a week has been seen, the hour of the day from the first
//! day, the recent level before that. The recent level follows a morning
//! ramp bucket by bucket instead of comparing the morning with the night.
//!
//! Why a weighted mean and variance rather than a median and MAD: three
//! numbers per slot, updated in place, with no window of past counts to
//! keep; 193 slots per entity and thousands of entities stay a few
//! megabytes and a snapshot of them stays small. The counts' own noise is
//! put under the spread (a Poisson floor, `√expected`), so a slot that
//! happened to be very regular does not turn ordinary jitter into a high
//! score, and anomalous buckets are learnt clamped to the alerting bound,
//! so a flood does not become the new normal in one bucket.

use crate::FastMap;
use std::collections::HashMap;

use chrono::{Datelike, Timelike};
use serde::{Deserialize, Serialize};

use crate::config::Rate;

/// Hours in a week: the finest slots.
const WEEK_SLOTS: usize = 168;
/// Weight of a new count in an hour-of-week or hour-of-day slot once it
/// has more than `1 / SLOT_ALPHA` observations (before, a plain mean).
const SLOT_ALPHA: f64 = 0.1;
/// Weight of a new count in the recent level: about an hour of 5-minute
/// buckets.
const RECENT_ALPHA: f64 = 0.15;
/// Entities not heard for this long are forgotten at a bucket close.
const IDLE_MS: i64 = 14 * 86_400_000;
/// At most this many empty buckets are closed one by one after a gap in
/// the clock; a longer gap starts counting afresh.
const MAX_CATCH_UP: u32 = 288;

/// The kinds of entity counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The sender (`vigil.source`, else `observer.name`).
    Source,
    /// `host.name` (Windows `Computer`).
    Host,
    /// `user.name` (Windows `TargetUserName`).
    User,
    /// `event.category`.
    Category,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Source, Kind::Host, Kind::User, Kind::Category];

    /// The alert field naming an entity of this kind. A category is not
    /// written as `event.category`: the alert would then pass for an
    /// event of that category in searches.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Source => "vigil.source",
            Kind::Host => "host.name",
            Kind::User => "user.name",
            Kind::Category => "vigil.alert.event_category",
        }
    }

    /// Its name in alert text (`host`, `user`, …).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Host => "host",
            Kind::User => "user",
            Kind::Category => "category",
        }
    }

    fn on(self, c: &Rate) -> bool {
        match self {
            Kind::Source => c.by_source,
            Kind::Host => c.by_host,
            Kind::User => c.by_user,
            Kind::Category => c.by_category,
        }
    }
}

/// The entities one event counts for, one per kind (`None` when the event
/// does not name one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateKeys {
    /// Per [`Kind::ALL`] order.
    pub keys: [Option<Box<str>>; 4],
}

/// One slot of a profile: observations, weighted mean and variance of the
/// bucket counts. Stored as `[n, mean, variance]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slot(pub u32, pub f32, pub f32);

impl Slot {
    fn learn(&mut self, x: f64, floor_alpha: f64) {
        self.0 = self.0.saturating_add(1);
        let a = (1.0 / self.0 as f64).max(floor_alpha);
        let (m, v) = (self.1 as f64, self.2 as f64);
        let d = x - m;
        let m2 = m + a * d;
        let v2 = (1.0 - a) * (v + a * d * d);
        self.1 = m2 as f32;
        self.2 = v2.max(0.0) as f32;
    }
}

/// What is learnt of one entity (persisted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Start of the first bucket counted (ms): learning runs from it.
    pub since: i64,
    /// Newest arrival counted (ms), for eviction.
    pub seen: i64,
    /// Per hour of the week, Monday 00:00 UTC first. Persisted sparse:
    /// `[[hour, n, mean, variance], …]` for the slots with observations.
    #[serde(with = "sparse_week")]
    pub week: Vec<Slot>,
    /// Per hour of the day, UTC (persisted sparse like `week`).
    #[serde(with = "sparse_day")]
    pub day: Vec<Slot>,
    /// Every bucket, short memory.
    pub recent: Slot,
    /// In a spike episode (one alert per episode).
    #[serde(default)]
    pub spiking: bool,
    /// In a drop episode.
    #[serde(default)]
    pub dropping: bool,
}

impl Profile {
    fn new(since: i64) -> Profile {
        Profile {
            since,
            seen: since,
            week: vec![Slot::default(); WEEK_SLOTS],
            day: vec![Slot::default(); 24],
            recent: Slot::default(),
            spiking: false,
            dropping: false,
        }
    }

    fn valid(&self) -> bool {
        let ok = |s: &Slot| s.1.is_finite() && s.2.is_finite() && s.1 >= 0.0 && s.2 >= 0.0;
        self.week.len() == WEEK_SLOTS
            && self.day.len() == 24
            && self.week.iter().chain(&self.day).all(ok)
            && ok(&self.recent)
    }
}

/// A slot list written as its non-empty slots with their index, so that a
/// profile that has seen one day is a seventh of the full size.
mod sparse {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Slot;

    pub fn serialize<S: Serializer>(v: &[Slot], s: S) -> Result<S::Ok, S::Error> {
        let used: Vec<(usize, u32, f32, f32)> = v
            .iter()
            .enumerate()
            .filter(|(_, x)| x.0 > 0)
            .map(|(i, x)| (i, x.0, x.1, x.2))
            .collect();
        used.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D, len: usize) -> Result<Vec<Slot>, D::Error> {
        let used: Vec<(usize, u32, f32, f32)> = Vec::deserialize(d)?;
        let mut v = vec![Slot::default(); len];
        for (i, n, m, var) in used {
            let slot = v
                .get_mut(i)
                .ok_or_else(|| D::Error::custom(format!("slot {i} beyond {len}")))?;
            *slot = Slot(n, m, var);
        }
        Ok(v)
    }
}

mod sparse_week {
    pub use super::sparse::serialize;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Slot>, D::Error> {
        super::sparse::deserialize(d, super::WEEK_SLOTS)
    }
}

mod sparse_day {
    pub use super::sparse::serialize;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Slot>, D::Error> {
        super::sparse::deserialize(d, 24)
    }
}

/// The live part of an entity: the counts of the open buckets and a
/// sample of their evidence (not persisted).
#[derive(Debug)]
struct Live<E> {
    /// Count of the current bucket and of the next (events that arrived
    /// early, within the grace).
    count: [u32; 2],
    /// A uniform sample of each open bucket's events (time, evidence), at
    /// most `max_evidence`: in a spike most events are the excess, so a
    /// sample shows it even when the burst ended before the bucket did.
    evidence: [Vec<(i64, E)>; 2],
    /// Whether the entity was first counted during the current bucket
    /// (its count is partial and not learnt).
    fresh: bool,
    /// The newest event counted, evidence for a drop to nothing.
    last: Option<E>,
    /// Whether each open bucket was already called a spike before it closed.
    called: [bool; 2],
}

impl<E> Live<E> {
    fn new() -> Self {
        Live {
            count: [0, 0],
            evidence: [Vec::new(), Vec::new()],
            fresh: true,
            last: None,
            called: [false; 2],
        }
    }
}

#[derive(Debug)]
struct Entity<E> {
    profile: Profile,
    live: Live<E>,
}

/// Which slot judged a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The hour of the week.
    WeekHour,
    /// The hour of the day.
    DayHour,
    /// The recent level (no slot for this time has enough observations).
    Recent,
}

impl Basis {
    /// Its name in an alert.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::WeekHour => "hour_of_week",
            Basis::DayHour => "hour_of_day",
            Basis::Recent => "recent",
        }
    }
}

/// A bucket that was far off its profile.
#[derive(Debug)]
pub struct Anomaly<E> {
    /// A spike (`true`) or a drop.
    pub spike: bool,
    /// The entity's kind and name.
    pub kind: Kind,
    /// See `kind`.
    pub entity: Box<str>,
    /// The bucket's start (ms).
    pub bucket: i64,
    /// Events counted in it.
    pub observed: u32,
    /// Expected count and spread (standard deviation with the Poisson floor).
    pub expected: f64,
    /// See `expected`.
    pub spread: f64,
    /// (observed − expected) / spread.
    pub score: f64,
    /// The slot that judged it, and its observations.
    pub basis: Basis,
    /// See `basis`.
    pub slot_observations: u32,
    /// The newest events of the bucket (for a drop to nothing: the last
    /// event heard), and whether more were counted.
    pub evidence: Vec<E>,
    /// See `evidence`.
    pub truncated: bool,
    /// When a spike was called while its bucket was still open, the time of
    /// the event that crossed the bound (`observed` is the count so far).
    pub early: Option<i64>,
}

/// Every kind's entities and the shared bucket clock.
#[derive(Debug)]
pub(crate) struct Rates<E> {
    maps: [FastMap<Box<str>, Entity<E>>; 4],
    /// Start of the current bucket (ms); `None` before the first event.
    bucket: Option<i64>,
    /// Events counted in the current and the next bucket, fleet-wide: a
    /// bucket where nothing at all arrived is an outage of collection,
    /// not of every entity, and is neither judged nor learnt.
    total: [u64; 2],
    /// Entities evicted for `max_entities`, per kind.
    pub evictions: u64,
    /// Events older than the current bucket.
    pub late: u64,
    /// State of the sampling generator (deterministic: the same input
    /// gives the same evidence).
    rng: u64,
    /// Whether the current and the next bucket were open across a restart:
    /// events sent while Vigil was down may be missing from their counts,
    /// so they can show a spike but not a drop, and are not learnt.
    interrupted: [bool; 2],
}

/// The persisted part: every entity's profile, per kind, and the counts of
/// the open buckets.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    /// `kind → entity → profile`.
    pub profiles: HashMap<Kind, HashMap<String, Profile>>,
    /// The open buckets when the snapshot was taken (absent in snapshots
    /// from before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<SavedOpen>,
}

impl Saved {
    /// The same profiles without the open buckets (as an older snapshot).
    pub fn without_open(self) -> Saved {
        Saved { open: None, ..self }
    }
}

/// The open buckets' counts, so that a restart in the middle of a bucket
/// does not forget what was counted before it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedOpen {
    /// The bucket length they were counted with; another length at restore
    /// discards them.
    pub bucket_secs: u64,
    /// Start of the current bucket (ms).
    pub bucket: i64,
    /// Fleet-wide counts of the current and the next bucket.
    pub total: [u64; 2],
    /// `kind → entity → counts`, for entities with something counted.
    pub counts: HashMap<Kind, HashMap<String, OpenCount>>,
}

/// One entity's open buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCount {
    /// Events in the current and the next bucket.
    pub count: [u32; 2],
    /// Whether each was already called a spike.
    #[serde(default)]
    pub called: [bool; 2],
    /// Whether the entity was first counted in the current bucket.
    #[serde(default)]
    pub fresh: bool,
}

/// Seconds of grace after a bucket's end before it is closed, for events
/// that arrive a little out of order.
fn grace_ms(bucket_ms: i64) -> i64 {
    (bucket_ms / 5).min(60_000)
}

impl<E: Clone> Rates<E> {
    /// No entity known yet.
    pub fn new() -> Self {
        Rates {
            maps: Default::default(),
            bucket: None,
            total: [0, 0],
            evictions: 0,
            late: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            interrupted: [false; 2],
        }
    }

    /// Entities tracked, over every kind.
    pub fn len(&self) -> usize {
        self.maps.iter().map(FastMap::len).sum()
    }

    /// Counts an event arriving at `t` for `keys`; returns the anomalies of
    /// the buckets this arrival closes.
    pub fn count(
        &mut self,
        keys: &RateKeys,
        t: i64,
        ev: &E,
        c: &Rate,
        max_evidence: usize,
    ) -> Vec<Anomaly<E>> {
        let b = (c.bucket_secs as i64).saturating_mul(1000).max(1);
        let mut out = Vec::new();
        let start = *self.bucket.get_or_insert(t.div_euclid(b) * b);
        let mut start = start;
        if t >= start + b + grace_ms(b) {
            let due = ((t - grace_ms(b)).div_euclid(b) * b - start) / b;
            if due > MAX_CATCH_UP as i64 {
                // A long gap in the whole stream: start counting afresh.
                self.reset(t.div_euclid(b) * b);
                start = t.div_euclid(b) * b;
            } else {
                for _ in 0..due {
                    self.close(c, &mut out);
                }
                start = self.bucket.unwrap_or(start);
            }
        }
        let slot = if t < start {
            self.late += 1;
            return out;
        } else if t < start + b {
            0
        } else {
            1
        };
        self.total[slot] += 1;
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            if !kind.on(c) {
                continue;
            }
            let Some(key) = keys.keys[i].as_deref() else {
                continue;
            };
            let map = &mut self.maps[i];
            if !map.contains_key(key) {
                if map.len() >= c.max_entities.max(1) {
                    self.evictions += evict(map);
                }
                map.insert(
                    Box::from(key),
                    Entity {
                        profile: Profile::new(start),
                        live: Live::new(),
                    },
                );
            }
            let Some(e) = map.get_mut(key) else { continue };
            e.profile.seen = e.profile.seen.max(t);
            let Entity { profile, live: l } = e;
            l.count[slot] = l.count[slot].saturating_add(1);
            // Reservoir sampling (algorithm R) over the bucket's events.
            let q = &mut l.evidence[slot];
            let k = max_evidence.max(1);
            if q.len() < k {
                q.push((t, ev.clone()));
            } else {
                let j = (splitmix(&mut self.rng) % u64::from(l.count[slot])) as usize;
                if j < k {
                    q[j] = (t, ev.clone());
                }
            }
            l.last = Some(ev.clone());
            if let Some(a) = early_spike(
                profile,
                l,
                slot,
                kind,
                key,
                start + slot as i64 * b,
                b,
                t,
                c,
            ) {
                out.push(a);
            }
        }
        out
    }

    fn reset(&mut self, start: i64) {
        self.bucket = Some(start);
        self.total = [0, 0];
        self.interrupted = [false; 2];
        for m in &mut self.maps {
            for e in m.values_mut() {
                e.live.count = [0, 0];
                e.live.evidence = [Vec::new(), Vec::new()];
                e.live.fresh = true;
                e.live.called = [false; 2];
            }
        }
    }

    /// Closes the current bucket: judges and learns every entity's count.
    fn close(&mut self, c: &Rate, out: &mut Vec<Anomaly<E>>) {
        let Some(start) = self.bucket else { return };
        let b = (c.bucket_secs as i64) * 1000;
        let outage = self.total[0] == 0;
        let interrupted = self.interrupted[0];
        let (week, day) = slots(start);
        let learning = (c.learning_secs as i64).saturating_mul(1000);
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let map = &mut self.maps[i];
            map.retain(|_, e| start - e.profile.seen < IDLE_MS);
            for (name, e) in map.iter_mut() {
                let l = &mut e.live;
                let x = l.count[0];
                let fresh = l.fresh;
                l.fresh = false;
                // A bucket called early is a spike at its close too; when the
                // next one was already called, that call opened the episode.
                let called = l.called;
                l.called = [called[1], false];
                l.count = [l.count[1], 0];
                let evidence = std::mem::take(&mut l.evidence[0]);
                l.evidence.swap(0, 1);
                if outage || fresh {
                    continue;
                }
                let p = &mut e.profile;
                let armed = start + b - p.since >= learning;
                let mut judged = judge(p, week, day, x as f64, c);
                if let (true, Some(j)) = (interrupted, judged.as_mut()) {
                    j.drop = false;
                }
                if let (true, Some(j)) = (armed, judged.as_ref()) {
                    let anomalous = j.spike || j.drop;
                    let episode = if j.spike {
                        &mut p.spiking
                    } else {
                        &mut p.dropping
                    };
                    let announced = j.spike && (called[0] || called[1]);
                    if anomalous && !*episode && !announced {
                        let a = j.anomaly(kind, name.clone(), start, x, evidence, l.last.as_ref());
                        out.push(a);
                    }
                    if anomalous {
                        *episode = true;
                    }
                }
                let j = judged.as_ref();
                if !j.is_some_and(|j| j.spike) {
                    p.spiking = false;
                }
                if !j.is_some_and(|j| j.drop) {
                    p.dropping = false;
                }
                // An anomalous count is learnt clamped to the alerting
                // bound: a flood must not become normal in one bucket.
                let learnt = match j {
                    Some(j) if j.spike => j.expected + c.min_score * j.spread,
                    Some(j) if j.drop => (j.expected - c.min_score * j.spread).max(0.0),
                    _ => x as f64,
                };
                if !interrupted {
                    p.week[week].learn(learnt, SLOT_ALPHA);
                    p.day[day].learn(learnt, SLOT_ALPHA);
                    p.recent.learn(learnt, RECENT_ALPHA);
                }
            }
        }
        self.total = [self.total[1], 0];
        self.interrupted = [self.interrupted[1], false];
        self.bucket = Some(start + b);
    }

    /// The profiles and the open buckets, to persist.
    pub fn saved(&self, c: &Rate) -> Saved {
        let mut profiles = HashMap::new();
        let mut counts = HashMap::new();
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            if self.maps[i].is_empty() {
                continue;
            }
            let m: HashMap<String, Profile> = self.maps[i]
                .iter()
                .map(|(k, e)| (k.to_string(), e.profile.clone()))
                .collect();
            profiles.insert(kind, m);
            let open: HashMap<String, OpenCount> = self.maps[i]
                .iter()
                .filter(|(_, e)| e.live.count != [0, 0])
                .map(|(k, e)| {
                    let l = &e.live;
                    let oc = OpenCount {
                        count: l.count,
                        called: l.called,
                        fresh: l.fresh,
                    };
                    (k.to_string(), oc)
                })
                .collect();
            if !open.is_empty() {
                counts.insert(kind, open);
            }
        }
        let open = self.bucket.map(|bucket| SavedOpen {
            bucket_secs: c.bucket_secs,
            bucket,
            total: self.total,
            counts,
        });
        Saved { profiles, open }
    }

    /// Checks a loaded snapshot's profiles.
    pub fn check(saved: &Saved, c: &Rate) -> Result<(), &'static str> {
        for m in saved.profiles.values() {
            if m.len() > c.max_entities {
                return Err("rate.max_entities");
            }
            if !m.values().all(Profile::valid) {
                return Err("rate profiles (slot counts or values)");
            }
        }
        if let Some(open) = &saved.open {
            if open.counts.values().any(|m| m.len() > c.max_entities) {
                return Err("rate.max_entities (open buckets)");
            }
        }
        Ok(())
    }

    /// Replaces the profiles with saved ones, and the open buckets' counts
    /// when they were counted with the same bucket length (evidence samples
    /// are not kept: an alert on a restored bucket shows what arrived after
    /// the restart). Restored buckets are marked interrupted.
    pub fn restore(&mut self, saved: Saved, c: &Rate) {
        self.maps = Default::default();
        self.bucket = None;
        self.total = [0, 0];
        self.interrupted = [false; 2];
        for (kind, m) in saved.profiles {
            let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            for (k, profile) in m {
                self.maps[i].insert(
                    k.into_boxed_str(),
                    Entity {
                        profile,
                        live: Live::new(),
                    },
                );
            }
        }
        let Some(open) = saved.open.filter(|o| o.bucket_secs == c.bucket_secs) else {
            return;
        };
        self.bucket = Some(open.bucket);
        self.total = open.total;
        self.interrupted = [true; 2];
        for (kind, m) in open.counts {
            let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            for (k, oc) in m {
                // Counts without a profile belong to an entity that was not
                // saved; they cannot be judged.
                if let Some(e) = self.maps[i].get_mut(k.as_str()) {
                    e.live.count = oc.count;
                    e.live.called = oc.called;
                    e.live.fresh = oc.fresh;
                }
            }
        }
    }
}

/// A spike called before its bucket closes. Every condition of a spike
/// grows with the count and the profile only changes when a bucket closes,
/// so a count already past the bound stays a spike: alerting at the event
/// that crosses it, not up to a bucket and its grace later, changes when the
/// alert comes and nothing else. `slot` is the open bucket counted (0: the
/// current one, 1: the next, during the current one's grace), starting at
/// `bucket_start`. Drops are only known at the close.
#[allow(clippy::too_many_arguments)]
fn early_spike<E: Clone>(
    p: &mut Profile,
    l: &mut Live<E>,
    slot: usize,
    kind: Kind,
    key: &str,
    bucket_start: i64,
    bucket_ms: i64,
    t: i64,
    c: &Rate,
) -> Option<Anomaly<E>> {
    let x = l.count[slot];
    // Cheapest bar first: most counts are far below any spike.
    if f64::from(x) < c.min_change || l.called[slot] || l.fresh {
        return None;
    }
    // Inside an episode (the bucket before this one was a spike) there is
    // nothing new to say.
    let episode = p.spiking || (slot == 1 && l.called[0]);
    let learning = (c.learning_secs as i64).saturating_mul(1000);
    if episode || bucket_start + bucket_ms - p.since < learning {
        return None;
    }
    let (week, day) = slots(bucket_start);
    let j = judge(p, week, day, f64::from(x), c)?;
    if !j.spike {
        return None;
    }
    l.called[slot] = true;
    let sample = l.evidence[slot].clone();
    let mut a = j.anomaly(kind, Box::from(key), bucket_start, x, sample, None);
    a.early = Some(t);
    Some(a)
}

/// The next value of a splitmix64 sequence.
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Drops the least recently seen eighth of `map` (at least one); returns
/// how many.
fn evict<E>(map: &mut FastMap<Box<str>, Entity<E>>) -> u64 {
    let n = (map.len() / 8).max(1);
    let mut times: Vec<i64> = map.values().map(|e| e.profile.seen).collect();
    let (_, cut, _) = times.select_nth_unstable(n - 1);
    let cut = *cut;
    let mut left = n;
    map.retain(|_, e| {
        if left > 0 && e.profile.seen <= cut {
            left -= 1;
            false
        } else {
            true
        }
    });
    (n - left) as u64
}

/// Hour-of-week and hour-of-day slots of a bucket starting at `ms` (UTC).
pub fn slots(ms: i64) -> (usize, usize) {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let day = t.weekday().num_days_from_monday() as usize;
    let hour = t.hour() as usize;
    (day * 24 + hour, hour)
}

/// The verdict on one count.
#[derive(Debug)]
struct Judged {
    expected: f64,
    spread: f64,
    score: f64,
    basis: Basis,
    n: u32,
    spike: bool,
    drop: bool,
}

impl Judged {
    /// The alert-to-be on a bucket starting at `bucket` that counted
    /// `observed` events, with its evidence sample (or, when nothing was
    /// counted, the entity's `last` event).
    fn anomaly<E: Clone>(
        &self,
        kind: Kind,
        entity: Box<str>,
        bucket: i64,
        observed: u32,
        mut sample: Vec<(i64, E)>,
        last: Option<&E>,
    ) -> Anomaly<E> {
        sample.sort_by_key(|s| s.0);
        let mut evidence: Vec<E> = sample.into_iter().map(|s| s.1).collect();
        if evidence.is_empty() {
            evidence.extend(last.cloned());
        }
        Anomaly {
            spike: self.spike,
            kind,
            entity,
            bucket,
            observed,
            expected: self.expected,
            spread: self.spread,
            score: self.score,
            basis: self.basis,
            slot_observations: self.n,
            truncated: observed as usize > evidence.len(),
            evidence,
            early: None,
        }
    }
}

/// Compares `x` with the most specific trusted slot; `None` while no slot
/// has enough observations.
fn judge(p: &Profile, week: usize, day: usize, x: f64, c: &Rate) -> Option<Judged> {
    let min = c.min_slot_observations;
    let (s, basis) = [
        (p.week[week], Basis::WeekHour),
        (p.day[day], Basis::DayHour),
        (p.recent, Basis::Recent),
    ]
    .into_iter()
    .find(|(s, _)| s.0 >= min)?;
    let (m, v) = (s.1 as f64, s.2 as f64);
    // Counts are at least Poisson-noisy: a slot that was very regular
    // must not make ordinary jitter look extreme.
    let spread = (v + m.max(1.0)).sqrt();
    let score = (x - m) / spread;
    let spike = score >= c.min_score && x >= c.spike_factor * m && x - m >= c.min_change;
    let drop = -score >= c.min_score && x <= c.drop_factor * m && m - x >= c.min_change;
    Some(Judged {
        expected: m,
        spread,
        score,
        basis,
        n: s.0,
        spike,
        drop,
    })
}

/// `Mon 09:00` for a bucket start.
pub fn slot_name(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    format!("{} {:02}:00 UTC", t.weekday(), t.hour())
}

#[cfg(test)]
#[path = "tests_rate.rs"]
mod tests;
