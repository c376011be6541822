//! The simulated organisation, drawn once from the seed: hosts, users,
//! address pools, user agents, and the diurnal activity curve.

use std::sync::Arc;

use chrono::{Datelike, Timelike};

use super::rng::{zipf, Rng};

/// What a host is for; decides which sources it logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A Linux server (sshd, sudo, cron); `exposed` ones face the internet.
    Linux { exposed: bool },
    /// A Linux web server: access log plus the Unix auth log.
    Web,
    /// A Windows workstation.
    Workstation,
    /// A Windows domain controller.
    DomainController,
}

/// One host.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: Arc<str>,
    pub ip: Arc<str>,
    pub role: Role,
}

/// One person (or service) with an account everywhere.
#[derive(Debug, Clone)]
pub struct User {
    pub name: Arc<str>,
    pub uid: u32,
    /// Windows RID, for SIDs.
    pub rid: u32,
    pub admin: bool,
    /// Index into [`World::workstations`]: where this user usually logs on.
    pub workstation: usize,
}

/// Everything the generators draw from.
#[derive(Debug)]
pub struct World {
    pub linux: Vec<Host>,
    pub web: Vec<Host>,
    pub workstations: Vec<Host>,
    pub dcs: Vec<Host>,
    pub users: Vec<User>,
    /// Cumulative Zipf weights over `users` (activity per user).
    pub user_weights: Vec<f64>,
    /// Cumulative Zipf weights over `linux` hosts.
    pub linux_weights: Vec<f64>,
    /// External addresses of ordinary visitors (documentation ranges).
    pub external: Vec<Arc<str>>,
    pub external_weights: Vec<f64>,
    /// External addresses only attacks use, so labels stay unambiguous.
    pub attackers: Vec<Arc<str>>,
    pub user_agents: Vec<Arc<str>>,
    pub ua_weights: Vec<f64>,
    /// Windows domain SID prefix (`S-1-5-21-…`).
    pub domain_sid: String,
}

/// The AD/NetBIOS domain of the simulated organisation.
pub const DOMAIN: &str = "CORP";
/// DNS suffix of Windows hosts.
pub const DNS_SUFFIX: &str = "corp.example.com";

const FIRST: [&str; 40] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl",
    "laura", "mike", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "uma",
    "victor", "wendy", "xavier", "yara", "zoe", "amir", "bea", "chen", "dara", "eli", "fatima",
    "gus", "hana", "igor", "jon", "kemal", "lena", "mateo", "noor",
];
const LAST: [&str; 30] = [
    "smith", "jones", "garcia", "muller", "rossi", "kim", "nguyen", "silva", "khan", "novak",
    "dubois", "tanaka", "olsen", "kowalski", "murphy", "ivanova", "haddad", "berg", "costa",
    "fischer", "lopez", "wright", "sato", "brown", "moreau", "weber", "ali", "park", "mendes",
    "quinn",
];

const BROWSERS: [&str; 16] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "okhttp/4.12.0",
    "curl/8.5.0",
    "python-requests/2.32.3",
];

impl World {
    /// Draws the organisation from `rng`.
    pub fn new(rng: &mut Rng) -> World {
        let mut linux = Vec::new();
        let roles = ["app", "db", "build", "mon", "files", "kube"];
        let n_linux = rng.range(6, 14) as usize;
        for i in 0..n_linux {
            let name = if i == 0 {
                "bastion01".to_string()
            } else {
                format!(
                    "{}{:02}",
                    roles[(i - 1) % roles.len()],
                    (i - 1) / roles.len() + 1
                )
            };
            linux.push(Host {
                name: name.into(),
                ip: format!("10.0.1.{}", 10 + i).into(),
                // The bastion always faces the internet; a few others too.
                role: Role::Linux {
                    exposed: i == 0 || rng.chance(0.2),
                },
            });
        }
        let web = (0..rng.range(2, 4))
            .map(|i| Host {
                name: format!("web{:02}", i + 1).into(),
                ip: format!("10.0.2.{}", 10 + i).into(),
                role: Role::Web,
            })
            .collect();
        let n_ws = rng.range(20, 60) as usize;
        let ws_base = rng.range(1000, 8000) as usize;
        let workstations = (0..n_ws)
            .map(|i| Host {
                name: format!("WS-{:04}", ws_base + i).into(),
                ip: format!("10.20.{}.{}", i / 200, 20 + i % 200).into(),
                role: Role::Workstation,
            })
            .collect();
        let dcs = (0..2)
            .map(|i| Host {
                name: format!("DC{:02}", i + 1).into(),
                ip: format!("10.0.0.{}", 10 + i).into(),
                role: Role::DomainController,
            })
            .collect();

        let n_users = rng.range(40, 160) as usize;
        let mut names = Vec::with_capacity(n_users);
        while names.len() < n_users {
            let f = rng.pick(&FIRST);
            let l = rng.pick(&LAST);
            // Unix-style logins: first name for the early accounts, then
            // first initial + surname, as organisations tend to end up with.
            let n = if rng.chance(0.3) {
                (*f).to_string()
            } else {
                format!("{}{}", &f[..1], l)
            };
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let users: Vec<User> = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| User {
                name: n.into(),
                uid: 1000 + i as u32,
                rid: 1100 + i as u32,
                // A few admins, spread through the activity ranking.
                admin: i % 17 == 3,
                workstation: i % n_ws,
            })
            .collect();

        let mut external = Vec::new();
        for net in ["192.0.2", "198.51.100", "203.0.113"] {
            for h in 1..255 {
                external.push(Arc::<str>::from(format!("{net}.{h}")));
            }
        }
        // Shuffle (Fisher–Yates) so pools mix the three ranges.
        for i in (1..external.len()).rev() {
            let j = rng.below(i + 1);
            external.swap(i, j);
        }
        let attackers = external.split_off(external.len() - 96);
        let user_agents: Vec<Arc<str>> = BROWSERS.iter().map(|s| Arc::from(*s)).collect();

        World {
            user_weights: zipf(users.len(), 1.05),
            linux_weights: zipf(linux.len(), 0.9),
            external_weights: zipf(external.len(), 0.8),
            ua_weights: zipf(user_agents.len(), 1.2),
            domain_sid: format!(
                "S-1-5-21-{}-{}-{}",
                rng.range(1_000_000_000, 3_999_999_999),
                rng.range(1_000_000_000, 3_999_999_999),
                rng.range(1_000_000_000, 3_999_999_999)
            ),
            linux,
            web,
            workstations,
            dcs,
            users,
            external,
            attackers,
            user_agents,
        }
    }

    /// An active user, Zipf-weighted.
    pub fn user<'a>(&'a self, rng: &mut Rng) -> &'a User {
        &self.users[rng.weighted(&self.user_weights)]
    }

    /// A Linux server, Zipf-weighted.
    pub fn linux_host<'a>(&'a self, rng: &mut Rng) -> &'a Host {
        &self.linux[rng.weighted(&self.linux_weights)]
    }

    /// Servers reachable from the internet.
    pub fn exposed(&self) -> Vec<&Host> {
        self.linux
            .iter()
            .filter(|h| matches!(h.role, Role::Linux { exposed: true }))
            .collect()
    }

    /// An ordinary external visitor.
    pub fn visitor(&self, rng: &mut Rng) -> Arc<str> {
        self.external[rng.weighted(&self.external_weights)].clone()
    }

    /// A browser user agent, Zipf-weighted.
    pub fn user_agent(&self, rng: &mut Rng) -> Arc<str> {
        self.user_agents[rng.weighted(&self.ua_weights)].clone()
    }

    /// The SID of a domain user.
    pub fn sid(&self, u: &User) -> String {
        format!("{}-{}", self.domain_sid, u.rid)
    }
}

/// Relative activity by UTC hour of day: quiet nights, a morning ramp, a
/// lunch dip, an evening tail.
const HOURLY: [f64; 24] = [
    0.18, 0.15, 0.13, 0.12, 0.12, 0.15, 0.25, 0.45, 0.75, 0.95, 1.0, 1.0, 0.9, 0.95, 1.0, 0.98,
    0.9, 0.75, 0.55, 0.45, 0.38, 0.32, 0.26, 0.21,
];
/// Weekend activity relative to a weekday.
const WEEKEND: f64 = 0.35;

/// The activity multiplier at `ms`, normalised so that its average over a
/// week is 1: `--sim-rate` is then the weekly mean rate.
pub fn diurnal(ms: i64) -> f64 {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let day = if t.weekday().number_from_monday() >= 6 {
        WEEKEND
    } else {
        1.0
    };
    let sum: f64 = HOURLY.iter().sum();
    let mean = sum * (5.0 + 2.0 * WEEKEND) / (7.0 * 24.0);
    HOURLY[t.hour() as usize] * day / mean
}

/// How long, from `start_ms`, the diurnal process at `rate` records per
/// second takes to produce `n` records on average, in milliseconds. Used to
/// place attacks inside an `--events`-bounded run: a weekday runs faster than
/// the weekly mean, a night slower.
pub fn expected_span_ms(start_ms: i64, rate: f64, n: f64) -> i64 {
    const HOUR: i64 = 3_600_000;
    let mut t = start_ms;
    let mut left = n;
    // Hour by hour (the curve is constant within an hour); bounded by ten years.
    for _ in 0..24 * 3660 {
        // Up to the next hour boundary, so each step sees one curve value.
        let next = (t.div_euclid(HOUR) + 1) * HOUR;
        let per_ms = rate * diurnal(t) / 1000.0;
        let here = per_ms * (next - t) as f64;
        if here >= left {
            return t - start_ms + (left / per_ms) as i64;
        }
        left -= here;
        t = next;
    }
    t - start_ms
}

/// How many records the diurnal process at `rate` records per second
/// produces on average in `span_ms` from `start_ms`.
pub fn expected_records(start_ms: i64, rate: f64, span_ms: i64) -> f64 {
    const HOUR: i64 = 3_600_000;
    let end = start_ms + span_ms;
    let mut t = start_ms;
    let mut n = 0.0;
    while t < end {
        let next = ((t.div_euclid(HOUR) + 1) * HOUR).min(end);
        n += rate * diurnal(t) * (next - t) as f64 / 1000.0;
        t = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_is_deterministic_and_pools_are_disjoint() {
        let a = World::new(&mut Rng::new(5));
        let b = World::new(&mut Rng::new(5));
        assert_eq!(a.users.len(), b.users.len());
        assert_eq!(a.attackers, b.attackers);
        assert!(a.users.iter().any(|u| u.admin));
        assert!(!a.exposed().is_empty());
        for ip in &a.attackers {
            assert!(!a.external.contains(ip));
        }
    }

    #[test]
    fn diurnal_curve_averages_to_one() {
        // 2025-01-06 is a Monday; sample one week hourly.
        let start = 1_736_121_600_000i64;
        let mean: f64 = (0..168)
            .map(|h| diurnal(start + h * 3_600_000))
            .sum::<f64>()
            / 168.0;
        assert!((mean - 1.0).abs() < 1e-9, "{mean}");
        assert!(diurnal(start + 11 * 3_600_000) > 3.0 * diurnal(start + 3 * 3_600_000));
    }

    #[test]
    fn expected_span_follows_the_curve() {
        let monday = 1_736_121_600_000i64;
        // A week's worth of records takes a week, whatever the rate.
        let week = 7 * 86_400_000;
        let span = expected_span_ms(monday, 20.0, 20.0 * 7.0 * 86_400.0);
        assert!((span - week).abs() < 1000, "{span}");
        // A night hour at the weekly-mean rate yields fewer records than an hour's worth.
        assert!(expected_span_ms(monday, 10.0, 36_000.0) > 3_600_000);
        let n = expected_records(monday, 20.0, week);
        assert!((n - 20.0 * 7.0 * 86_400.0).abs() < 1.0, "{n}");
        let span = expected_span_ms(monday + 5_000, 20.0, 50_000.0);
        let back = expected_records(monday + 5_000, 20.0, span);
        assert!((back - 50_000.0).abs() < 1.0, "{back}");
    }
}
