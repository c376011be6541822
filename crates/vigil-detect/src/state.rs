//! Bounded per-key state of the detectors.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::{cap_evidence, FastMap, Taken};

/// Per-key state with a cap on keys. Each key remembers the newest event
/// time it saw; idle keys are expired by [`Keyed::expire`], and when the
/// map is full the least recently seen eighth is evicted.
#[derive(Debug)]
pub struct Keyed<S> {
    map: FastMap<Box<str>, (i64, S)>,
    max: usize,
    /// Keys evicted for the cap.
    pub evictions: u64,
}

impl<S: Default> Keyed<S> {
    pub fn new(max: usize) -> Self {
        Keyed {
            map: FastMap::default(),
            max: max.max(1),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The state of `key`, created if needed; `horizon` is the time before
    /// which idle keys may be dropped to make room.
    pub fn get(&mut self, key: &str, t: i64, horizon: i64) -> &mut S {
        if !self.map.contains_key(key) {
            if self.map.len() >= self.max {
                self.expire(horizon);
            }
            if self.map.len() >= self.max {
                self.evict();
            }
            self.map.insert(Box::from(key), (t, S::default()));
        }
        let slot = self.map.get_mut(key).expect("inserted above");
        slot.0 = slot.0.max(t);
        &mut slot.1
    }

    pub fn peek_mut(&mut self, key: &str) -> Option<&mut S> {
        self.map.get_mut(key).map(|s| &mut s.1)
    }

    /// Drops keys whose newest event is before `horizon`.
    pub fn expire(&mut self, horizon: i64) {
        self.map.retain(|_, s| s.0 >= horizon);
    }

    /// Evicts the least recently seen eighth of the keys (at least one):
    /// one O(n) pass per n/8 new keys keeps the cost amortised constant.
    fn evict(&mut self) {
        let n = (self.map.len() / 8).max(1);
        let mut times: Vec<i64> = self.map.values().map(|s| s.0).collect();
        let (_, cut, _) = times.select_nth_unstable(n - 1);
        let cut = *cut;
        let mut left = n;
        self.map.retain(|_, s| {
            if left > 0 && s.0 <= cut {
                left -= 1;
                false
            } else {
                true
            }
        });
        self.evictions += (n - left) as u64;
    }
}

/// Inserts `item` into a time-sorted deque, from the back (events mostly
/// arrive in order).
fn insert_sorted<T>(q: &mut VecDeque<T>, t: i64, item: T, time: impl Fn(&T) -> i64) {
    let mut i = q.len();
    while i > 0 && time(&q[i - 1]) > t {
        i -= 1;
    }
    q.insert(i, item);
}

/// Time-ordered events of one key within a window.
#[derive(Debug)]
pub struct Burst<E> {
    pub entries: VecDeque<(i64, E)>,
    pub suppress_until: i64,
}

impl<E> Default for Burst<E> {
    fn default() -> Self {
        Burst {
            entries: VecDeque::new(),
            suppress_until: i64::MIN,
        }
    }
}

impl<E> Burst<E> {
    /// Adds an event at `t`, keeps only events within `w` of the newest,
    /// and at most `cap` (the newest). `Err` when `t` is older than the
    /// newest event minus the window (late: ignored).
    pub fn push(&mut self, t: i64, e: E, w: i64, cap: usize) -> Result<(), ()> {
        if let Some(newest) = self.entries.back().map(|x| x.0) {
            if t < newest.saturating_sub(w) {
                return Err(());
            }
        }
        insert_sorted(&mut self.entries, t, (t, e), |x| x.0);
        let newest = self.entries.back().map_or(t, |x| x.0);
        while self
            .entries
            .front()
            .is_some_and(|x| x.0 < newest.saturating_sub(w))
        {
            self.entries.pop_front();
        }
        while self.entries.len() > cap {
            self.entries.pop_front();
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the key may alert at `t` (not suppressed).
    pub fn ready(&self, t: i64, _w: i64) -> bool {
        t > self.suppress_until
    }

    /// Takes every event as an alert's evidence and suppresses the key
    /// until one window after `t`.
    pub fn take(&mut self, max: usize, t: i64, w: i64) -> Taken<E> {
        self.suppress_until = t.saturating_add(w);
        cap_evidence(std::mem::take(&mut self.entries), max)
    }

    /// Events with `lo <= time <= hi`.
    pub fn count_between(&self, lo: i64, hi: i64) -> usize {
        self.entries
            .iter()
            .filter(|x| x.0 >= lo && x.0 <= hi)
            .count()
    }

    /// Takes the events within `w` before `t` (later ones stay) and
    /// suppresses the key until one window after `t`.
    pub fn take_before(&mut self, max: usize, t: i64, w: i64) -> Taken<E> {
        self.suppress_until = t.saturating_add(w);
        let all = std::mem::take(&mut self.entries);
        let mut taken = VecDeque::new();
        for x in all {
            if x.0 > t {
                self.entries.push_back(x);
            } else if x.0 >= t - w {
                taken.push_back(x);
            }
        }
        cap_evidence(taken, max)
    }
}

/// One source's attempts against accounts within a window.
#[derive(Debug)]
pub(crate) struct Spray<E> {
    pub entries: VecDeque<(i64, Arc<str>, E)>,
    counts: FastMap<Arc<str>, u32>,
    /// Accounts with 1..=max_attempts_per_account attempts.
    pub low: usize,
    pub suppress_until: i64,
}

impl<E> Default for Spray<E> {
    fn default() -> Self {
        Spray {
            entries: VecDeque::new(),
            counts: FastMap::default(),
            low: 0,
            suppress_until: i64::MIN,
        }
    }
}

impl<E> Spray<E> {
    fn inc(&mut self, user: &Arc<str>, per: u32) {
        let c = self.counts.entry(user.clone()).or_insert(0);
        let old = *c;
        *c += 1;
        if old == 0 {
            self.low += 1;
        } else if old <= per && old + 1 > per {
            self.low -= 1;
        }
    }

    fn dec(&mut self, user: &str, per: u32) {
        let Some(c) = self.counts.get_mut(user) else {
            return;
        };
        let old = *c;
        *c -= 1;
        let new = *c;
        if new == 0 {
            self.counts.remove(user);
            if old <= per {
                self.low -= 1;
            }
        } else if old > per && new <= per {
            self.low += 1;
        }
    }

    /// Adds an attempt on `user` at `t`; `Err` when late.
    pub fn push(
        &mut self,
        t: i64,
        user: &str,
        e: E,
        w: i64,
        per: u32,
        cap: usize,
    ) -> Result<(), ()> {
        if let Some(newest) = self.entries.back().map(|x| x.0) {
            if t < newest.saturating_sub(w) {
                return Err(());
            }
        }
        let user: Arc<str> = match self.counts.get_key_value(user) {
            Some((k, _)) => k.clone(),
            None => Arc::from(user),
        };
        self.inc(&user, per);
        insert_sorted(&mut self.entries, t, (t, user, e), |x| x.0);
        let newest = self.entries.back().map_or(t, |x| x.0);
        while self
            .entries
            .front()
            .is_some_and(|x| x.0 < newest.saturating_sub(w))
            || self.entries.len() > cap
        {
            if let Some((_, u, _)) = self.entries.pop_front() {
                self.dec(&u, per);
            }
        }
        Ok(())
    }

    /// Takes every attempt as evidence; suppresses until `t + w`.
    pub fn take(&mut self, max: usize, t: i64, w: i64) -> (i64, i64, Vec<E>, bool) {
        self.suppress_until = t.saturating_add(w);
        self.counts.clear();
        self.low = 0;
        let q: VecDeque<(i64, E)> = std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(t, _, e)| (t, e))
            .collect();
        let (_, first, last, ev, tr) = cap_evidence(q, max);
        (first, last, ev, tr)
    }
}

/// (time, account, source, failed, evidence).
type StuffingEntry<E> = (i64, Arc<str>, Arc<str>, bool, E);

/// Authentication attempts against one login target (host and service)
/// within a window.
#[derive(Debug)]
pub(crate) struct Stuffing<E> {
    /// (time, account, source, failed, evidence)
    entries: VecDeque<StuffingEntry<E>>,
    /// Failures per source in the window.
    pub sources: FastMap<Arc<str>, u32>,
    /// Successes per source in the window.
    ok: FastMap<Arc<str>, u32>,
    pub suppress_until: i64,
    /// Events dropped for `max_events`.
    pub evictions: u64,
    /// Failures pushed since the last full pass over the window.
    pending: usize,
}

impl<E> Default for Stuffing<E> {
    fn default() -> Self {
        Stuffing {
            entries: VecDeque::new(),
            sources: FastMap::default(),
            ok: FastMap::default(),
            suppress_until: i64::MIN,
            evictions: 0,
            pending: 0,
        }
    }
}

fn bump(m: &mut FastMap<Arc<str>, u32>, k: &str) -> Arc<str> {
    if let Some((key, n)) = m.get_key_value(k) {
        let key = key.clone();
        let _ = n;
        *m.get_mut(k).expect("present") += 1;
        key
    } else {
        let key: Arc<str> = Arc::from(k);
        m.insert(key.clone(), 1);
        key
    }
}

fn drop_one(m: &mut FastMap<Arc<str>, u32>, k: &str) {
    if let Some(n) = m.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            m.remove(k);
        }
    }
}

/// What the attempts of the failing sources of a target add up to.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Failing {
    /// Sources whose failures outnumber their successes.
    pub sources: usize,
    /// Distinct accounts they failed for.
    pub accounts: usize,
    pub failures: usize,
    pub successes: usize,
}

impl<E> Stuffing<E> {
    fn remove_front(&mut self) {
        if let Some((_, _, s, failed, _)) = self.entries.pop_front() {
            if failed {
                drop_one(&mut self.sources, &s);
            } else {
                drop_one(&mut self.ok, &s);
            }
        }
    }

    /// Adds an attempt, keeping at most `max_events`; `Err` when late.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        t: i64,
        user: &str,
        source: &str,
        failed: bool,
        e: E,
        w: i64,
        max_events: usize,
    ) -> Result<(), ()> {
        if let Some(newest) = self.entries.back().map(|x| x.0) {
            if t < newest.saturating_sub(w) {
                return Err(());
            }
        }
        let s = if failed {
            self.pending += 1;
            bump(&mut self.sources, source)
        } else {
            bump(&mut self.ok, source)
        };
        insert_sorted(
            &mut self.entries,
            t,
            (t, Arc::from(user), s, failed, e),
            |x| x.0,
        );
        let newest = self.entries.back().map_or(t, |x| x.0);
        while self
            .entries
            .front()
            .is_some_and(|x| x.0 < newest.saturating_sub(w))
        {
            self.remove_front();
        }
        while self.entries.len() > max_events.max(1) {
            self.remove_front();
            self.evictions += 1;
        }
        Ok(())
    }

    fn is_failing(&self, s: &str) -> bool {
        self.sources.get(s).copied().unwrap_or(0) > self.ok.get(s).copied().unwrap_or(0)
    }

    /// Sources whose failures outnumber their successes on this target.
    pub fn failing_sources(&self) -> usize {
        self.sources.keys().filter(|s| self.is_failing(s)).count()
    }

    /// Whether a full pass is due: at least one failure per 256 attempts
    /// in the window since the last one, so that a large window that keeps
    /// almost qualifying costs an amortised constant per failure.
    pub fn pass_due(&self) -> bool {
        self.pending.saturating_mul(256) >= self.entries.len()
    }

    /// The attempts of the failing sources (one pass over the window).
    pub fn failing(&mut self) -> Failing {
        self.pending = 0;
        let mut accounts = std::collections::HashSet::new();
        let mut f = Failing {
            sources: self.failing_sources(),
            ..Failing::default()
        };
        for (_, u, s, failed, _) in &self.entries {
            if !self.is_failing(s) {
                continue;
            }
            if *failed {
                f.failures += 1;
                accounts.insert(u.clone());
            } else {
                f.successes += 1;
            }
        }
        f.accounts = accounts.len();
        f
    }

    /// Takes the failing sources' attempts as evidence and clears the
    /// window; suppresses until `t + w`.
    pub fn take(&mut self, max: usize, t: i64, w: i64) -> (i64, i64, Vec<E>, bool) {
        self.suppress_until = t.saturating_add(w);
        let entries = std::mem::take(&mut self.entries);
        let q: VecDeque<(i64, E)> = entries
            .into_iter()
            .filter(|x| self.is_failing(&x.2))
            .map(|x| (x.0, x.4))
            .collect();
        self.sources.clear();
        self.ok.clear();
        let (_, first, last, ev, tr) = cap_evidence(q, max);
        (first, last, ev, tr)
    }
}
