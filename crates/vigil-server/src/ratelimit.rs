//! Request rate limits per client address and per credential.
//!
//! Each key (an address, or a token or session id) has a budget that
//! refills at `rate` per second up to `burst`; a request spends one unit
//! and is refused with the time until the next unit when none is left.
//! This is GCRA (the generic cell rate algorithm): one timestamp per key,
//! the "theoretical arrival time", instead of a counter and a clock.
//!
//! Memory is bounded: at most `max_keys` keys are tracked. When the table
//! is full, keys whose budget is whole again are forgotten (they are
//! indistinguishable from new keys); if it is still full, the request is
//! let through untracked and counted, because refusing every new client
//! would let a flood from many addresses lock everyone else out.
//!
//! IPv6 clients are keyed by their /64: one host usually owns a whole /64,
//! so per-address keys would be free to multiply.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A budget: `rate` requests per second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Sustained requests per second (> 0).
    pub rate: f64,
    /// Requests allowed back to back after an idle period (≥ 1).
    pub burst: u32,
}

impl Quota {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate.max(1e-6))
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the budget.
    Allow,
    /// Over it: try again after this long.
    Refuse {
        /// Time until one unit is available again.
        retry_after: Duration,
    },
}

/// The tracked keys and when a full table was last swept.
#[derive(Debug)]
struct Table<K> {
    keys: HashMap<K, Instant>,
    /// A full table is swept at most once per emission interval: a flood
    /// from new keys must not cost a scan of every key per request.
    swept: Option<Instant>,
}

/// A keyed GCRA limiter with a bounded table.
#[derive(Debug)]
pub struct Limiter<K> {
    quota: Quota,
    max_keys: usize,
    table: Mutex<Table<K>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// A limiter tracking at most `max_keys` keys.
    pub fn new(quota: Quota, max_keys: usize) -> Limiter<K> {
        Limiter {
            quota,
            max_keys: max_keys.max(1),
            table: Mutex::new(Table {
                keys: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Spends one unit of `key`'s budget at `now`.
    pub fn check(&self, key: &K, now: Instant) -> Decision {
        self.check_n(key, 1, now)
    }

    /// Spends `n` units at once (events in an ingest batch). A cost above
    /// the burst is charged as the whole burst: it needs a full budget but
    /// can pass.
    pub fn check_n(&self, key: &K, n: u64, now: Instant) -> Decision {
        let interval = self.quota.interval();
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Table { keys: table, swept } = &mut *guard;
        if !table.contains_key(key) && table.len() >= self.max_keys {
            // A key whose arrival time is in the past has its whole budget:
            // forgetting it changes nothing.
            if swept.is_none_or(|at| now >= at + interval) {
                *swept = Some(now);
                table.retain(|_, tat| *tat > now);
            }
            if table.len() >= self.max_keys {
                metrics::counter!("vigil_rate_limit_untracked_total").increment(1);
                return Decision::Allow;
            }
        }
        match self.spend(table.get(key).copied(), n, now) {
            Ok(new_tat) => {
                table.insert(key.clone(), new_tat);
                Decision::Allow
            }
            Err(retry_after) => Decision::Refuse { retry_after },
        }
    }

    /// What spending one unit of `key`'s budget at `now` would answer,
    /// without spending it.
    pub fn peek(&self, key: &K, now: Instant) -> Decision {
        let guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match self.spend(guard.keys.get(key).copied(), 1, now) {
            Ok(_) => Decision::Allow,
            Err(retry_after) => Decision::Refuse { retry_after },
        }
    }

    /// GCRA: the arrival time after spending `n` units from a key whose
    /// arrival time is `tat` (none for a key not tracked), or the wait until
    /// they are there.
    fn spend(&self, tat: Option<Instant>, n: u64, now: Instant) -> Result<Instant, Duration> {
        let n = n.clamp(1, u64::from(self.quota.burst.max(1)));
        let interval = self.quota.interval();
        let cost = interval.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        let ceiling = interval.saturating_mul(self.quota.burst.max(1));
        let new_tat = tat.unwrap_or(now).max(now) + cost;
        let limit = now + ceiling;
        if new_tat > limit {
            Err(new_tat - limit)
        } else {
            Ok(new_tat)
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.keys.len()).unwrap_or(0)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a client address: the address itself for IPv4 (and
/// IPv4-mapped IPv6), the /64 prefix for IPv6.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// The server's limiters: API requests and ingested events, each per
/// client address and per credential (token or session).
#[derive(Debug)]
pub struct RateLimits {
    /// API requests per address.
    pub api_source: Option<Limiter<IpAddr>>,
    /// API requests per credential.
    pub api_credential: Option<Limiter<String>>,
    /// Ingested events per address.
    pub ingest_source: Option<Limiter<IpAddr>>,
    /// Ingested events per credential.
    pub ingest_credential: Option<Limiter<String>>,
}

/// Which budget a refusal came from, for metrics and the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client address.
    Source,
    /// The token or session.
    Credential,
}

impl Scope {
    /// `source` or `credential`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Source => "source",
            Scope::Credential => "credential",
        }
    }
}

impl RateLimits {
    /// Limiters from `[limits]`; a rate of 0 turns that class off.
    pub fn from_config(l: &crate::config::LimitsConfig) -> RateLimits {
        let api = (l.api_requests_per_sec > 0.0).then_some(Quota {
            rate: l.api_requests_per_sec,
            burst: l.api_burst,
        });
        let ingest = (l.ingest_events_per_sec > 0.0).then_some(Quota {
            rate: l.ingest_events_per_sec,
            burst: l.ingest_burst_events,
        });
        let keys = l.rate_limit_max_keys;
        RateLimits {
            api_source: api.map(|q| Limiter::new(q, keys)),
            api_credential: api.map(|q| Limiter::new(q, keys)),
            ingest_source: ingest.map(|q| Limiter::new(q, keys)),
            ingest_credential: ingest.map(|q| Limiter::new(q, keys)),
        }
    }

    /// Charges `events` to the address and the credential of an ingest
    /// request; the first refusal wins.
    pub fn ingest(
        &self,
        source: Option<IpAddr>,
        credential: &str,
        events: u64,
    ) -> Result<(), (Scope, Duration)> {
        self.ingest_budgets(
            source,
            credential,
            |l, key, now| l.check_n(key, events, now),
            |l, key, now| l.check_n(key, events, now),
        )
    }

    /// The refusal an ingest request of one event would get now, without
    /// charging anything: a sender whose budget is already spent is
    /// refused before its body is parsed.
    pub fn ingest_spent(
        &self,
        source: Option<IpAddr>,
        credential: &str,
    ) -> Result<(), (Scope, Duration)> {
        self.ingest_budgets(source, credential, Limiter::peek, Limiter::peek)
    }

    /// Asks the address budget, then the credential budget; the first
    /// refusal wins.
    fn ingest_budgets(
        &self,
        source: Option<IpAddr>,
        credential: &str,
        by_source: impl FnOnce(&Limiter<IpAddr>, &IpAddr, Instant) -> Decision,
        by_credential: impl FnOnce(&Limiter<String>, &String, Instant) -> Decision,
    ) -> Result<(), (Scope, Duration)> {
        let now = Instant::now();
        if let (Some(l), Some(ip)) = (&self.ingest_source, source) {
            if let Decision::Refuse { retry_after } = by_source(l, &address_key(ip), now) {
                return Err((Scope::Source, retry_after));
            }
        }
        if let Some(l) = &self.ingest_credential {
            if let Decision::Refuse { retry_after } = by_credential(l, &credential.to_owned(), now)
            {
                return Err((Scope::Credential, retry_after));
            }
        }
        Ok(())
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(rate: f64, burst: u32) -> Quota {
        Quota { rate, burst }
    }

    #[test]
    fn a_burst_passes_then_one_more_is_refused() {
        let l = Limiter::new(q(1.0, 5), 10);
        let t = Instant::now();
        for i in 0..5 {
            assert_eq!(l.check(&"a", t), Decision::Allow, "request {i}");
        }
        match l.check(&"a", t) {
            Decision::Refuse { retry_after } => assert_eq!(retry_after, Duration::from_secs(1)),
            d => panic!("{d:?}"),
        }
        // Another key has its own budget.
        assert_eq!(l.check(&"b", t), Decision::Allow);
    }

    #[test]
    fn the_budget_refills_at_the_rate() {
        let l = Limiter::new(q(10.0, 2), 10);
        let t = Instant::now();
        assert_eq!(l.check(&1, t), Decision::Allow);
        assert_eq!(l.check(&1, t), Decision::Allow);
        assert!(matches!(l.check(&1, t), Decision::Refuse { .. }));
        // One interval later exactly one more passes.
        let t2 = t + Duration::from_millis(100);
        assert_eq!(l.check(&1, t2), Decision::Allow);
        assert!(matches!(l.check(&1, t2), Decision::Refuse { .. }));
        // After a long idle time the whole burst is back, not more.
        let t3 = t + Duration::from_secs(60);
        assert_eq!(l.check(&1, t3), Decision::Allow);
        assert_eq!(l.check(&1, t3), Decision::Allow);
        assert!(matches!(l.check(&1, t3), Decision::Refuse { .. }));
    }

    #[test]
    fn refusals_do_not_spend_budget() {
        let l = Limiter::new(q(1.0, 1), 10);
        let t = Instant::now();
        assert_eq!(l.check(&0, t), Decision::Allow);
        for _ in 0..100 {
            assert!(matches!(l.check(&0, t), Decision::Refuse { .. }));
        }
        assert_eq!(l.check(&0, t + Duration::from_secs(1)), Decision::Allow);
    }

    #[test]
    fn a_peek_answers_like_one_unit_and_spends_nothing() {
        let l = Limiter::new(q(1.0, 2), 10);
        let t = Instant::now();
        assert_eq!(l.peek(&"a", t), Decision::Allow);
        assert!(l.is_empty(), "a peek tracks no key");
        assert_eq!(l.check(&"a", t), Decision::Allow);
        for _ in 0..10 {
            assert_eq!(l.peek(&"a", t), Decision::Allow);
        }
        assert_eq!(l.check(&"a", t), Decision::Allow);
        let refused = l.peek(&"a", t);
        assert_eq!(refused, l.check(&"a", t));
        assert!(matches!(refused, Decision::Refuse { .. }));
        assert_eq!(l.peek(&"a", t + Duration::from_secs(1)), Decision::Allow);
    }

    #[test]
    fn a_batch_spends_its_size() {
        let l = Limiter::new(q(100.0, 1000), 10);
        let t = Instant::now();
        assert_eq!(l.check_n(&"s", 600, t), Decision::Allow);
        // 400 left: 401 is refused until one more unit has refilled (10 ms).
        match l.check_n(&"s", 401, t) {
            Decision::Refuse { retry_after } => {
                assert_eq!(retry_after, Duration::from_millis(10))
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(l.check_n(&"s", 400, t), Decision::Allow);
        // A batch larger than the burst needs a full budget, and gets through then.
        let later = t + Duration::from_secs(10);
        assert_eq!(l.check_n(&"s", 5000, later), Decision::Allow);
        assert!(matches!(l.check_n(&"s", 1, later), Decision::Refuse { .. }));
    }

    #[test]
    fn a_full_table_forgets_whole_budgets_then_lets_untracked_through() {
        let l = Limiter::new(q(1.0, 1), 2);
        let t = Instant::now();
        assert_eq!(l.check(&1, t), Decision::Allow);
        assert_eq!(l.check(&2, t), Decision::Allow);
        // Full, nobody's budget is whole: the new key passes untracked.
        assert_eq!(l.check(&3, t), Decision::Allow);
        assert_eq!(l.len(), 2);
        assert!(matches!(l.check(&1, t), Decision::Refuse { .. }));
        // Later both budgets are whole again and make room.
        let t2 = t + Duration::from_secs(2);
        assert_eq!(l.check(&3, t2), Decision::Allow);
        assert!(matches!(l.check(&3, t2), Decision::Refuse { .. }));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let m: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(m), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
