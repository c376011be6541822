//! The host-activity detectors: `vigil.log_tampering`,
//! `vigil.privilege_change`, `vigil.new_account_used`,
//! `vigil.source_silent` and `vigil.source_recovered`.

use serde_json::json;

use crate::activity::{privileged_sid, AccountChange};
use crate::{counts, format_ms, ms, Alert, Detector, Detectors, Observation};

/// ATT&CK technique of a class of tampering.
fn tamper_technique(class: &str) -> &'static str {
    match class {
        "log_cleared" => "T1070.001",
        "log_wipe" => "T1070.002",
        "history_wipe" => "T1070.003",
        "audit_config" => "T1562.012",
        _ => "T1070",
    }
}

impl<E: Clone> Detectors<E> {
    fn horizon(&self, w: i64) -> i64 {
        self.newest
            .saturating_sub(w)
            .saturating_sub(ms(self.cfg.skew_tolerance_secs))
    }

    /// Checks and sets a suppression key of `map` at `t`; `false` when
    /// the key is still suppressed.
    fn arm(
        map: &mut crate::state::Keyed<crate::state::Burst<E>>,
        key: &str,
        t: i64,
        w: i64,
        horizon: i64,
    ) -> bool {
        let b = map.get(key, t, horizon);
        if t <= b.suppress_until {
            return false;
        }
        b.suppress_until = t.saturating_add(w);
        true
    }

    pub(crate) fn log_tampering(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.log_tampering;
        let Some(tm) = &obs.tamper else { return };
        if !c.enabled {
            return;
        }
        let w = ms(c.suppress_secs);
        let horizon = self.horizon(w);
        let key = format!("{}|{}", tm.class, obs.host.as_deref().unwrap_or("-"));
        if !Self::arm(&mut self.tamper, &key, obs.time, w, horizon) {
            self.stats[Detector::LogTampering as usize].suppressed += 1;
            return;
        }
        let technique = tamper_technique(tm.class);
        out.push(
            Alert::new(
                Detector::LogTampering,
                format!(
                    "{} on {}{} ({}, {technique}): {}",
                    tm.class,
                    obs.host.as_deref().unwrap_or("-"),
                    obs.user
                        .as_deref()
                        .map(|u| format!(" by {u}"))
                        .unwrap_or_default(),
                    tm.what,
                    tm.detail
                ),
            )
            .entity(Self::entity(obs, false, true))
            .counts(counts(&[
                ("class", json!(tm.class)),
                ("pattern", json!(&*tm.what)),
                ("detail", json!(&*tm.detail)),
                ("technique", json!(technique)),
            ]))
            .window(c.suppress_secs)
            .single(obs.time, ev.clone()),
        );
    }

    pub(crate) fn privilege_change(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let Some(AccountChange::AddedToGroup {
            account,
            group,
            group_sid,
        }) = &obs.account
        else {
            return;
        };
        if !self.cfg.privilege_change.enabled {
            return;
        }
        let privileged = self.privileged.contains(&group.to_lowercase())
            || group_sid.as_deref().is_some_and(privileged_sid);
        if !privileged {
            return;
        }
        let secs = self.cfg.privilege_change.suppress_secs;
        let w = ms(secs);
        let horizon = self.horizon(w);
        let host = obs.host.as_deref().unwrap_or("-");
        let key = format!(
            "{}|{}|{}",
            host,
            account.to_lowercase(),
            group.to_lowercase()
        );
        if !Self::arm(&mut self.privilege, &key, obs.time, w, horizon) {
            self.stats[Detector::PrivilegeChange as usize].suppressed += 1;
            return;
        }
        let mut entity = vec![("user.target.name", account.to_string())];
        if let Some(u) = &obs.user {
            entity.push(("user.name", u.to_string()));
        }
        entity.push(("group.name", group.to_string()));
        if let Some(h) = &obs.host {
            entity.push(("host.name", h.to_string()));
        }
        let mut cs = counts(&[("group", json!(&**group))]);
        if let Some(sid) = group_sid {
            cs.insert("group_sid".into(), json!(&**sid));
        }
        out.push(
            Alert::new(
                Detector::PrivilegeChange,
                format!(
                    "{account} added to the administrative group {group} on {host}{}",
                    obs.user
                        .as_deref()
                        .map(|u| format!(" by {u}"))
                        .unwrap_or_default()
                ),
            )
            .entity(entity)
            .counts(cs)
            .window(secs)
            .single(obs.time, ev.clone()),
        );
    }

    /// Remembers a creation; alerts when a login of the account, already
    /// seen (fed out of order), falls in the window after it.
    pub(crate) fn account_created(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let Some(AccountChange::Created { account }) = &obs.account else {
            return;
        };
        let c = self.cfg.new_account_used;
        if !c.enabled {
            return;
        }
        let w = ms(c.window_secs);
        let horizon = self.horizon(w);
        let key = account.to_lowercase();
        let login = self.logins.peek_mut(&key).and_then(|b| {
            b.entries
                .iter()
                .find(|x| x.0 >= obs.time && x.0 <= obs.time.saturating_add(w))
                .cloned()
        });
        if let Some((t, login_ev)) = login {
            self.new_account_alert(obs, account, (obs.time, ev.clone()), (t, login_ev), out);
            return;
        }
        let b = self.created.get(&key, obs.time, horizon);
        let _ = b.push(obs.time, ev.clone(), w, 4);
    }

    /// A successful login: alerts when the account was created within the
    /// window before it.
    pub(crate) fn new_account_login(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.new_account_used;
        let Some(user) = &obs.user else { return };
        if !c.enabled {
            return;
        }
        let w = ms(c.window_secs);
        let horizon = self.horizon(w);
        let key = user.to_lowercase();
        let created = self.created.peek_mut(&key).and_then(|b| {
            let hit = b
                .entries
                .iter()
                .rev()
                .find(|x| x.0 <= obs.time && obs.time <= x.0.saturating_add(w))
                .cloned();
            if hit.is_some() {
                // One alert per creation.
                b.entries.clear();
            }
            hit
        });
        if let Some(created) = created {
            self.new_account_alert(obs, user, created, (obs.time, ev.clone()), out);
            return;
        }
        // Only the newest logins are kept, for a late creation event.
        let b = self.logins.get(&key, obs.time, horizon);
        let _ = b.push(obs.time, ev.clone(), w, 4);
    }

    fn new_account_alert(
        &mut self,
        obs: &Observation,
        account: &str,
        created: (i64, E),
        login: (i64, E),
        out: &mut Vec<Alert<E>>,
    ) {
        if let Some(b) = self.logins.peek_mut(&account.to_lowercase()) {
            b.entries.clear();
        }
        let secs = self.cfg.new_account_used.window_secs;
        let after = (login.0 - created.0) / 1000;
        let mut entity = vec![("user.name", account.to_string())];
        if let Some(h) = &obs.host {
            entity.push(("host.name", h.to_string()));
        }
        if let Some(s) = &obs.source {
            entity.insert(0, ("source.ip", s.to_string()));
        }
        out.push(
            Alert::new(
                Detector::NewAccountUsed,
                format!(
                    "account {account} logged in {after}s after it was created (window {secs}s)"
                ),
            )
            .entity(entity)
            .counts(counts(&[
                ("seconds_after_creation", json!(after)),
                ("created", json!(format_ms(created.0))),
                ("login", json!(format_ms(login.0))),
            ]))
            .window(secs)
            .span(created.0, login.0)
            .evidence(vec![created.1, login.1], false),
        );
    }

    pub(crate) fn heard(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.source_silent;
        let Some(origin) = &obs.origin else { return };
        if !c.enabled {
            return;
        }
        let at = obs.received.unwrap_or(obs.time);
        let Some(r) = self.silence.heard(origin, at, ev.clone(), &c) else {
            return;
        };
        let silent = at - r.last;
        out.push(
            Alert::new(
                Detector::SourceRecovered,
                format!(
                    "source {origin} sends again after {}s of silence",
                    silent / 1000
                ),
            )
            .entity(vec![("vigil.source", origin.to_string())])
            .counts(counts(&[
                ("silent_secs", json!(silent / 1000)),
                ("threshold_secs", json!(r.threshold / 1000)),
            ]))
            .window((r.threshold / 1000).max(0) as u64)
            .span(r.last, at)
            .evidence(r.before.into_iter().chain([ev.clone()]).collect(), false),
        );
    }

    /// Judges silence at `now_ms`: every armed source not heard for longer
    /// than its threshold raises one `vigil.source_silent` alert (and a
    /// `vigil.source_recovered` notice from [`Detectors::feed`] when it
    /// sends again). Arrival is the event's `vigil.received_at` when it
    /// has one, else its event time. The server calls this periodically
    /// with the wall clock; `vigil hunt` once at the end of input with the
    /// newest time fed, so offline, silence is judged against the last
    /// event.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Alert<E>> {
        let c = self.cfg.source_silent;
        if !self.cfg.enabled || !c.enabled {
            return Vec::new();
        }
        let out: Vec<Alert<E>> = self
            .silence
            .tick(now_ms, &c)
            .into_iter()
            .map(|(name, s)| {
                let th = s.threshold(&c);
                let silent = now_ms - s.last;
                Alert::new(Detector::SourceSilent, format!(
                        "source {name} silent for {}s (usual gap {:.1}s, longest lately {:.1}s, threshold {}s)",
                        silent / 1000,
                        s.mean_gap / 1000.0,
                        s.max_gap / 1000.0,
                        th / 1000
                    )).entity(vec![("vigil.source", name.to_string())]).counts(counts(&[
                        ("silent_secs", json!(silent / 1000)),
                        ("threshold_secs", json!(th / 1000)),
                        ("mean_gap_secs", json!((s.mean_gap / 10.0).round() / 100.0)),
                        ("max_gap_secs", json!((s.max_gap / 10.0).round() / 100.0)),
                        ("observed_gaps", json!(s.gaps)),
                    ])).window((th / 1000).max(0) as u64).span(s.last, now_ms).evidence(s.evidence.into_iter().collect(), false)
            })
            .collect();
        self.stats[Detector::SourceSilent as usize].alerts += out.len() as u64;
        out
    }
}

impl<E: Clone> Detectors<E> {
    pub(crate) fn first_sudo(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.first_sudo;
        let (Some(ran), Some(user)) = (obs.sudo, &obs.user) else {
            return;
        };
        if !c.enabled {
            return;
        }
        let seen = self.baselines.sudo.see(
            &user.to_lowercase(),
            obs.time,
            ms(c.learning_secs),
            c.max_users,
        );
        if seen != crate::baseline::Seen::New {
            return;
        }
        let known = self.baselines.sudo.len() - 1;
        out.push(
            Alert::new(
                Detector::FirstSudo,
                format!(
                    "{user} {} sudo on {} for the first time ({known} other sudo users known)",
                    if ran { "used" } else { "tried (refused)" },
                    obs.host.as_deref().unwrap_or("-")
                ),
            )
            .entity(Self::entity(obs, false, true))
            .counts(counts(&[
                ("ran", json!(ran)),
                ("known_sudo_users", json!(known)),
                (
                    "learnt_until",
                    json!(format_ms(
                        self.baselines.sudo.learn_until.unwrap_or(obs.time)
                    )),
                ),
                ("score", json!(if ran { 0.6 } else { 0.8 })),
            ]))
            .window(c.learning_secs)
            .single(obs.time, ev.clone()),
        );
    }
}

/// The network of an address: its /24 (IPv4) or /48 (IPv6).
pub(crate) fn network(ip: &str) -> Option<String> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// Which baseline a first-seen detector uses.
#[derive(Clone, Copy)]
enum Which {
    Networks,
    Agents,
    Pairs,
}

impl<E: Clone> Detectors<E> {
    /// Records `value` for `entity` in a baseline; alerts when it is new
    /// after the learning period and rare (known to fewer than
    /// `max_spread` other entities).
    #[allow(clippy::too_many_arguments)]
    fn first_seen(
        &mut self,
        d: Detector,
        which: Which,
        entity: &str,
        value: &str,
        what: &str,
        obs: &Observation,
        ev: &E,
        out: &mut Vec<Alert<E>>,
    ) {
        let c = match which {
            Which::Networks => self.cfg.new_source_network,
            Which::Agents => self.cfg.new_user_agent,
            Which::Pairs => self.cfg.new_process_pair,
        };
        if !c.enabled {
            return;
        }
        let b = match which {
            Which::Networks => &mut self.baselines.networks,
            Which::Agents => &mut self.baselines.agents,
            Which::Pairs => &mut self.baselines.pairs,
        };
        let spread = b.spread(value);
        let seen = b.see(
            entity,
            value,
            obs.time,
            ms(c.learning_secs),
            c.max_entities,
            c.max_values,
        );
        if seen != crate::baseline::Seen::New {
            return;
        }
        if c.max_spread > 0 && spread >= c.max_spread {
            return;
        }
        let known: Vec<&str> = b.values(entity).iter().map(|v| &**v).collect();
        let before = known.len() - 1;
        let sample: Vec<&str> = known[..before].iter().rev().take(5).copied().collect();
        // Fewer known values and fewer other entities knowing the value
        // make the new value more surprising.
        let score = 1.0 / (1.0 + (before as f64).sqrt()) * 1.0 / (1.0 + spread as f64);
        let mut entity_fields = Self::entity(obs, true, true);
        if matches!(which, Which::Pairs) && entity_fields.iter().all(|(k, _)| *k != "host.name") {
            entity_fields.push(("host.name", entity.to_string()));
        }
        out.push(
            Alert::new(
                d,
                format!(
                    "{what} {value} new for {entity} ({before} known{}; {spread} others know it)",
                    if sample.is_empty() {
                        String::new()
                    } else {
                        format!(", e.g. {}", sample.join(", "))
                    }
                ),
            )
            .entity(entity_fields)
            .counts(counts(&[
                ("observed", json!(value)),
                ("known_count", json!(before)),
                ("known_sample", json!(sample)),
                ("other_entities_with_value", json!(spread)),
                ("score", json!((score * 1000.0).round() / 1000.0)),
                (
                    "learnt_until",
                    json!(format_ms(b.learn_until.unwrap_or(obs.time))),
                ),
            ]))
            .window(c.learning_secs)
            .single(obs.time, ev.clone()),
        );
    }

    pub(crate) fn new_source_network(
        &mut self,
        obs: &Observation,
        ev: &E,
        out: &mut Vec<Alert<E>>,
    ) {
        let (Some(user), Some(src)) = (&obs.user, &obs.source) else {
            return;
        };
        let Some(net) = network(src) else { return };
        let user = user.to_lowercase();
        self.first_seen(
            Detector::NewSourceNetwork,
            Which::Networks,
            &user,
            &net,
            "network",
            obs,
            ev,
            out,
        );
    }

    pub(crate) fn new_user_agent(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let (Some(user), Some(agent)) = (&obs.user, &obs.agent) else {
            return;
        };
        let user = user.to_lowercase();
        let agent = agent.clone();
        self.first_seen(
            Detector::NewUserAgent,
            Which::Agents,
            &user,
            &agent,
            "user agent",
            obs,
            ev,
            out,
        );
    }

    pub(crate) fn new_process_pair(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let (Some(host), Some((parent, child))) = (&obs.host, &obs.process) else {
            return;
        };
        let host = host.to_lowercase();
        let pair = format!("{parent} -> {child}");
        self.first_seen(
            Detector::NewProcessPair,
            Which::Pairs,
            &host,
            &pair,
            "process pair",
            obs,
            ev,
            out,
        );
    }
}
