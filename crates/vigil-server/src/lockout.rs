//! Login throttling: failure counts per (account, source), per source and
//! per account, with exponential lock times.
//!
//! The hard lock is keyed by (account, source) and by source alone, never by
//! the account alone: an attacker guessing the admin's password from one
//! address locks out that address, not the admin. The account as a whole
//! only gets a soft, capped delay before its password is checked, which
//! slows a distributed guesser without ever refusing the real owner.
//! docs/SECURITY.md describes the policy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The throttling settings (from `[auth]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures of one account from one source before it is locked.
    pub lock_after: u32,
    /// Failures from one source (any accounts) before the source is locked.
    pub source_lock_after: u32,
    /// First lock time; each further failure doubles it.
    pub lock_base: Duration,
    /// Longest lock time.
    pub lock_max: Duration,
    /// Failures of one account (all sources) before its logins are delayed.
    pub account_delay_after: u32,
    /// Longest per-account delay.
    pub account_delay_max: Duration,
    /// Counts are forgotten after this long without a failure.
    pub forget_after: Duration,
    /// Most keys tracked per table; the stalest are dropped beyond it.
    pub max_keys: usize,
}

/// What to do with a login attempt before checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check it, after waiting `delay` (zero unless the account is under attack).
    Open {
        /// The soft per-account delay.
        delay: Duration,
    },
    /// Refuse it unchecked; the client may retry after this long.
    Locked {
        /// Time left on the lock.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
struct Tables {
    pair: HashMap<(String, String), Entry>,
    source: HashMap<String, Entry>,
    account: HashMap<String, Entry>,
}

/// Failure counters for all login attempts.
pub struct Lockout {
    policy: Policy,
    tables: Mutex<Tables>,
}

fn exp_time(base: Duration, max: Duration, over: u32) -> Duration {
    base.saturating_mul(1u32 << over.min(20)).min(max)
}

impl Lockout {
    /// Counters under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            tables: Mutex::new(Tables::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Counters are plain numbers: a poisoned lock still holds usable values.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self, e: Option<&Entry>, now: Instant) -> Option<Entry> {
        e.copied()
            .filter(|e| now.duration_since(e.last) < self.policy.forget_after)
    }

    /// Decides whether an attempt may be checked.
    pub fn gate(&self, account: &str, source: &str, now: Instant) -> Gate {
        let t = self.lock();
        let pair = self.fresh(t.pair.get(&(account.to_owned(), source.to_owned())), now);
        let src = self.fresh(t.source.get(source), now);
        let retry = [pair, src]
            .into_iter()
            .flatten()
            .filter_map(|e| e.locked_until)
            .filter(|u| *u > now)
            .map(|u| u - now)
            .max();
        if let Some(r) = retry {
            return Gate::Locked { retry_after: r };
        }
        let delay = match self.fresh(t.account.get(account), now) {
            Some(e) if e.failures >= self.policy.account_delay_after => exp_time(
                Duration::from_millis(100),
                self.policy.account_delay_max,
                e.failures - self.policy.account_delay_after,
            ),
            _ => Duration::ZERO,
        };
        Gate::Open { delay }
    }

    /// Counts a failed attempt; returns the lock it started, if any.
    pub fn failure(&self, account: &str, source: &str, now: Instant) -> Option<Duration> {
        let p = self.policy;
        let mut t = self.lock();
        let mut started = None;
        let mut bump = |e: Option<Entry>, threshold: Option<u32>| -> Entry {
            let mut e = e
                .filter(|e| now.duration_since(e.last) < p.forget_after)
                .unwrap_or(Entry {
                    failures: 0,
                    last: now,
                    locked_until: None,
                });
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if let Some(th) = threshold {
                if e.failures >= th {
                    let d = exp_time(p.lock_base, p.lock_max, e.failures - th);
                    e.locked_until = Some(now + d);
                    started = Some(started.map_or(d, |s: Duration| s.max(d)));
                }
            }
            e
        };
        let k = (account.to_owned(), source.to_owned());
        let e = bump(t.pair.get(&k).copied(), Some(p.lock_after));
        t.pair.insert(k, e);
        let e = bump(t.source.get(source).copied(), Some(p.source_lock_after));
        t.source.insert(source.to_owned(), e);
        let e = bump(t.account.get(account).copied(), None);
        t.account.insert(account.to_owned(), e);
        self.prune(&mut t, now);
        started
    }

    /// Clears the (account, source) counter after a successful login. The
    /// source and account counters keep decaying on their own, so one good
    /// login does not reset a spray from the same address.
    pub fn success(&self, account: &str, source: &str) {
        self.lock()
            .pair
            .remove(&(account.to_owned(), source.to_owned()));
    }

    fn prune(&self, t: &mut Tables, now: Instant) {
        let max = self.policy.max_keys.max(1);
        let forget = self.policy.forget_after;
        fn trim<K: Clone + Eq + std::hash::Hash>(
            m: &mut HashMap<K, Entry>,
            max: usize,
            forget: Duration,
            now: Instant,
        ) {
            if m.len() <= max {
                return;
            }
            m.retain(|_, e| {
                now.duration_since(e.last) < forget || e.locked_until.is_some_and(|u| u > now)
            });
            while m.len() > max {
                let Some(k) = m.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| k.clone()) else {
                    break;
                };
                m.remove(&k);
            }
        }
        trim(&mut t.pair, max, forget, now);
        trim(&mut t.source, max, forget, now);
        trim(&mut t.account, max, forget, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            lock_after: 3,
            source_lock_after: 10,
            lock_base: Duration::from_secs(30),
            lock_max: Duration::from_secs(120),
            account_delay_after: 5,
            account_delay_max: Duration::from_secs(2),
            forget_after: Duration::from_secs(3600),
            max_keys: 100,
        }
    }

    #[test]
    fn pair_lock_grows_and_does_not_lock_other_sources() {
        let l = Lockout::new(policy());
        let t = Instant::now();
        assert_eq!(l.failure("admin", "1.1.1.1", t), None);
        assert_eq!(l.failure("admin", "1.1.1.1", t), None);
        assert_eq!(
            l.failure("admin", "1.1.1.1", t),
            Some(Duration::from_secs(30))
        );
        assert!(matches!(
            l.gate("admin", "1.1.1.1", t),
            Gate::Locked { retry_after } if retry_after == Duration::from_secs(30)
        ));
        assert_eq!(
            l.failure("admin", "1.1.1.1", t),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            l.failure("admin", "1.1.1.1", t),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            l.failure("admin", "1.1.1.1", t),
            Some(Duration::from_secs(120)),
            "capped"
        );
        // The admin from elsewhere is only slowed, never locked.
        match l.gate("admin", "2.2.2.2", t) {
            Gate::Open { delay } => assert!(delay <= Duration::from_secs(2)),
            g => panic!("{g:?}"),
        }
        // The lock ends.
        assert!(matches!(
            l.gate("admin", "1.1.1.1", t + Duration::from_secs(121)),
            Gate::Open { .. }
        ));
    }

    #[test]
    fn source_lock_across_accounts() {
        let l = Lockout::new(policy());
        let t = Instant::now();
        for i in 0..10 {
            l.failure(&format!("u{i}"), "9.9.9.9", t);
        }
        assert!(matches!(
            l.gate("someone", "9.9.9.9", t),
            Gate::Locked { .. }
        ));
        assert!(matches!(l.gate("someone", "8.8.8.8", t), Gate::Open { .. }));
    }

    #[test]
    fn success_clears_pair_and_counts_are_bounded() {
        let l = Lockout::new(policy());
        let t = Instant::now();
        l.failure("a", "s", t);
        l.failure("a", "s", t);
        l.success("a", "s");
        assert_eq!(l.failure("a", "s", t), None);
        for i in 0..1000 {
            l.failure(&format!("u{i}"), &format!("s{i}"), t);
        }
        let tables = l.lock();
        assert!(tables.pair.len() <= 100 && tables.account.len() <= 100);
    }
}
