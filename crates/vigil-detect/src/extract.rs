//! Reading what the detectors need from one event: an [`Observation`].
//!
//! Most events interest no detector; they are recognised by a few map
//! lookups and yield `None` without allocating. Authentication events
//! (sshd, PAM, sudo, su, Windows 4624/4625/4648/4771/4776, OWASP
//! `authn_login_*`, HTTP 401 on login paths) and access-log requests that
//! are 404s or carry an attack pattern yield an observation.

use std::net::IpAddr;

use serde_json::{Map, Value};
use vigil_event::field;

use crate::activity::{self, AccountChange, Tamper};
use crate::web::{self, AttackClass};

/// Outcome of an authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The credentials were accepted.
    Success,
    /// The credentials were refused.
    Failure,
    /// Explicit-credential use (Windows 4648): counted by password
    /// spraying only, as an attempt against the named account.
    Attempt,
}

/// An authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, failure or attempt.
    pub outcome: Outcome,
    /// What produced it, for the alert text (`sshd`, `windows:4625`, …).
    pub via: &'static str,
}

/// A web request the web detectors look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    /// `http.response.status_code` (0 when absent).
    pub status: u16,
    /// The attack pattern found in the URL, if any.
    pub attack: Option<(AttackClass, &'static str)>,
    /// The URL (cut to the configured bytes), kept only for attacks.
    pub url: Option<Box<str>>,
}

/// What the detectors read from one event. Small and `Send`, so that a
/// decoder thread can make it and the thread that knows the event's seq
/// can feed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Event time, milliseconds since the epoch.
    pub time: i64,
    /// The account authenticated (`user.name`; `user.target.name` for su;
    /// `TargetUserName` on Windows).
    pub user: Option<Box<str>>,
    /// The source address (`source.ip`; `IpAddress` on Windows).
    pub source: Option<Box<str>>,
    /// The host that logged it (`host.name`; `Computer` on Windows).
    pub host: Option<Box<str>>,
    /// Set for authentication events.
    pub auth: Option<Auth>,
    /// Set for web requests of interest.
    pub web: Option<Web>,
    /// Set for signs of log tampering.
    pub tamper: Option<Tamper>,
    /// Set for account creation and group membership changes.
    pub account: Option<AccountChange>,
    /// Set for sudo use by `user`: `Some(true)` when sudo ran the
    /// command, `Some(false)` when it refused (not a sudoer, wrong
    /// passwords).
    pub sudo: Option<bool>,
    /// The source that sent the event (`host.name`, else `vigil.source`;
    /// `Computer` on Windows), set when `vigil.source_silent` is on: every
    /// event with an origin then yields an observation.
    pub origin: Option<Box<str>>,
    /// The user agent of a user's request (`user_agent.original` with
    /// `user.name`).
    pub agent: Option<Box<str>>,
    /// A process start: (parent, child) executable names, lower-case.
    pub process: Option<(Box<str>, Box<str>)>,
    /// The entities whose event rates count this event, when
    /// `vigil.rate_spike`/`vigil.rate_drop` are on.
    pub rate: Option<crate::rate::RateKeys>,
    /// When Vigil received the event (`vigil.received_at`, ms), read with
    /// `origin`: silence is about arrival, so the server judges it by the
    /// receiving clock even for events that carry old timestamps.
    pub received: Option<i64>,
}

impl Observation {
    /// Whether only `origin` is set: the event matters to the silence
    /// detector alone, which keeps no evidence of it but the newest (the
    /// rate profiles, when on, count every event and make this false).
    pub fn origin_only(&self) -> bool {
        self.auth.is_none()
            && self.web.is_none()
            && self.tamper.is_none()
            && self.account.is_none()
            && self.sudo.is_none()
            && self.agent.is_none()
            && self.process.is_none()
            && self.rate.is_none()
    }
}

fn path<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    let mut v = field(m, keys[0])?;
    for k in &keys[1..] {
        v = field(v.as_object()?, k)?;
    }
    Some(v)
}

fn path_str<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    path(m, keys).and_then(Value::as_str)
}

/// Whether a JSON value is, or is an array containing, `s`.
fn has(v: Option<&Value>, s: &str) -> bool {
    match v {
        Some(Value::String(x)) => x == s,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(s)),
        _ => false,
    }
}

fn boxed(s: Option<&str>) -> Option<Box<str>> {
    s.filter(|s| !s.is_empty() && *s != "-").map(Box::from)
}

/// Normalises an IP text (`::ffff:10.0.0.5` → `10.0.0.5`); `None` for
/// anything that is not an IP (`-`, empty, names), and for loopback and
/// unspecified addresses: a local logon (Windows writes `127.0.0.1` or
/// `::1`) has no remote origin, and keying it by that address would merge
/// every host's local failures into one "source".
fn ip(s: Option<&str>) -> Option<Box<str>> {
    let s = s?.trim();
    let addr: IpAddr = s.parse().ok()?;
    // An IPv4 text that parses is already canonical (the parser refuses
    // leading zeros), so only IPv6 texts are printed again to compare.
    let was_v4 = addr.is_ipv4();
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    if addr.is_loopback() || addr.is_unspecified() {
        return None;
    }
    if was_v4 || addr.to_string() == s {
        Some(Box::from(s))
    } else {
        Some(addr.to_string().into_boxed_str())
    }
}

/// Reads an observation from an event given as its (nested ECS or
/// Windows) JSON map, at event time `time` (milliseconds). `None` when no
/// detector cares about the event.
pub fn observe(
    m: &Map<String, Value>,
    time: i64,
    cfg: &crate::config::Config,
) -> Option<Observation> {
    if !cfg.enabled {
        return None;
    }
    if let Some(Value::Object(event)) = field(m, "event") {
        // Alerts (Vigil's own output) are never evidence of an attempt,
        // whatever entity fields they carry.
        if field(event, "kind").and_then(Value::as_str) == Some("alert") {
            return None;
        }
    }
    let mut obs = auth_or_web(m, time, cfg);
    let wants_activity =
        cfg.log_tampering.enabled || cfg.privilege_change.enabled || cfg.new_account_used.enabled;
    let (tamper, account) = if wants_activity {
        match windows_id(m) {
            Some(id) => activity::windows(m, id),
            None if field(m, "event").is_some() => activity::ecs(m),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    // Read once: the silence detector's origin falls back from it, and a new
    // observation is keyed by it.
    let host = host_of(m);
    let origin = if cfg.source_silent.enabled {
        origin_of(m, host.as_deref())
    } else {
        None
    };
    let sudo = if cfg.first_sudo.enabled {
        sudo_use(m)
    } else {
        None
    };
    let agent = if cfg.new_user_agent.enabled {
        path_str(m, &["user", "name"])
            .filter(|u| !u.is_empty() && *u != "-")
            .and(path_str(m, &["user_agent", "original"]))
            .filter(|a| !a.is_empty() && *a != "-")
            .map(|a| Box::from(web::floor_char(a, 512)))
    } else {
        None
    };
    let process = if cfg.new_process_pair.enabled {
        process_pair(m)
    } else {
        None
    };
    // Vigil's own events (audit of logins and searches, alerts) are not
    // rates of the watched fleet: an analyst's burst of searches is not a
    // spike, and with the event clock their current timestamps would move
    // a replay's buckets.
    let internal = path_str(m, &["vigil", "input"]) == Some("internal");
    let rate = if cfg.rate.enabled && !internal {
        rate_keys(m, host.as_deref(), &cfg.rate)
    } else {
        None
    };
    if obs.is_none()
        && tamper.is_none()
        && account.is_none()
        && origin.is_none()
        && sudo.is_none()
        && agent.is_none()
        && process.is_none()
        && rate.is_none()
    {
        return None;
    }
    let o = obs.get_or_insert_with(|| Observation {
        time,
        host: host.or_else(|| boxed(win_str(m, "Computer").or_else(|| win_str(m, "Hostname")))),
        ..Observation::default()
    });
    if matches!(account, Some(AccountChange::AddedToGroup { .. })) && o.user.is_none() {
        o.user = boxed(path_str(m, &["user", "name"]).or_else(|| win_str(m, "SubjectUserName")));
    }
    if tamper.is_some() && o.user.is_none() {
        o.user = boxed(
            path_str(m, &["user", "name"])
                .or_else(|| win_str(m, "SubjectUserName"))
                .or_else(|| win_str(m, "User")),
        );
    }
    if sudo.is_some() && o.user.is_none() {
        o.user = boxed(path_str(m, &["user", "name"]));
    }
    o.tamper = tamper;
    o.account = account;
    if origin.is_some() || rate.is_some() {
        o.received = path_str(m, &["vigil", "received_at"])
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
    }
    if agent.is_some() && o.user.is_none() {
        o.user = boxed(path_str(m, &["user", "name"]));
    }
    if agent.is_some() && o.source.is_none() {
        o.source = ip(path_str(m, &["source", "ip"]));
    }
    o.origin = origin;
    o.sudo = sudo;
    o.agent = agent;
    o.process = process;
    o.rate = rate;
    obs
}

/// The entities an event counts for in the rate profiles.
fn rate_keys(
    m: &Map<String, Value>,
    host: Option<&str>,
    c: &crate::config::Rate,
) -> Option<crate::rate::RateKeys> {
    let windows = || {
        field(m, "EventID").is_some() || field(m, "Event").is_some() || field(m, "winlog").is_some()
    };
    let source = c
        .by_source
        .then(|| {
            boxed(path_str(m, &["vigil", "source"]).filter(|s| *s != "vigil"))
                .or_else(|| boxed(path_str(m, &["observer", "name"])))
                .or_else(|| boxed(path_str(m, &["observer", "hostname"])))
        })
        .flatten();
    let host = c
        .by_host
        .then(|| {
            host.map(Box::from).or_else(|| {
                windows()
                    .then(|| boxed(win_str(m, "Computer").or_else(|| win_str(m, "Hostname"))))
                    .flatten()
            })
        })
        .flatten();
    let user = c
        .by_user
        .then(|| {
            boxed(path_str(m, &["user", "name"])).or_else(|| {
                windows()
                    .then(|| boxed(win_str(m, "TargetUserName").filter(|u| !u.ends_with('$'))))
                    .flatten()
            })
        })
        .flatten();
    let category = c
        .by_category
        .then(|| match path(m, &["event", "category"]) {
            Some(Value::String(s)) => boxed(Some(s)),
            Some(Value::Array(a)) => boxed(a.first().and_then(Value::as_str)),
            _ => None,
        })
        .flatten();
    let keys = [source, host, user, category];
    keys.iter()
        .any(Option::is_some)
        .then_some(crate::rate::RateKeys { keys })
}

/// The last component of a Windows or Unix path, lower-case.
fn exe_name(p: &str) -> Option<Box<str>> {
    let name = p.rsplit(['\\', '/']).next()?.trim();
    (!name.is_empty() && name != "-").then(|| name.to_ascii_lowercase().into_boxed_str())
}

/// (parent, child) of a process start: Windows 4688 and Sysmon 1, or ECS
/// `process.parent.executable|name` with `process.executable|name`.
fn process_pair(m: &Map<String, Value>) -> Option<(Box<str>, Box<str>)> {
    if let Some(id) = windows_id(m) {
        let (parent, child) = match id {
            4688 => (
                win_str(m, "ParentProcessName"),
                win_str(m, "NewProcessName"),
            ),
            1 if win_str(m, "Channel").is_none_or(|c| c.contains("Sysmon")) => {
                (win_str(m, "ParentImage"), win_str(m, "Image"))
            }
            _ => return None,
        };
        return exe_name(parent?).zip(exe_name(child?));
    }
    let parent = path_str(m, &["process", "parent", "executable"])
        .or_else(|| path_str(m, &["process", "parent", "name"]))?;
    let child =
        path_str(m, &["process", "executable"]).or_else(|| path_str(m, &["process", "name"]))?;
    exe_name(parent).zip(exe_name(child))
}

/// sudo's own lines (`event.action: sudo_command`): whether it ran the
/// command. PAM's `sudo:auth` lines are left to sudo's own summary.
fn sudo_use(m: &Map<String, Value>) -> Option<bool> {
    let Some(Value::Object(event)) = field(m, "event") else {
        return None;
    };
    if field(event, "action").and_then(Value::as_str) != Some("sudo_command") {
        return None;
    }
    path_str(m, &["user", "name"]).filter(|u| !u.is_empty())?;
    Some(field(event, "outcome").and_then(Value::as_str) != Some("failure"))
}

/// The Windows event id, for Windows-shaped events.
fn windows_id(m: &Map<String, Value>) -> Option<u64> {
    if !(field(m, "EventID").is_some()
        || field(m, "Event").is_some()
        || field(m, "winlog").is_some())
    {
        return None;
    }
    match win(m, "EventID")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Who sent the event: `host.name`, else `vigil.source` (not Vigil's own
/// events), else the Windows `Computer`.
fn origin_of(m: &Map<String, Value>, host: Option<&str>) -> Option<Box<str>> {
    host.map(Box::from)
        .or_else(|| boxed(path_str(m, &["vigil", "source"]).filter(|s| *s != "vigil")))
        .or_else(|| boxed(win_str(m, "Computer").or_else(|| win_str(m, "Hostname"))))
}

/// The authentication or web part: what the original six detectors read.
fn auth_or_web(
    m: &Map<String, Value>,
    time: i64,
    cfg: &crate::config::Config,
) -> Option<Observation> {
    if let Some(Value::Object(event)) = field(m, "event") {
        if let Some(o) = ecs(m, event, time, cfg) {
            return Some(o);
        }
    }
    // OWASP logging vocabulary: `"event": "authn_login_fail:user"`.
    if let Some(Value::String(e)) = field(m, "event") {
        return owasp(m, e, time);
    }
    if field(m, "EventID").is_some() || field(m, "Event").is_some() || field(m, "winlog").is_some()
    {
        return windows(m, time);
    }
    None
}

fn host_of(m: &Map<String, Value>) -> Option<Box<str>> {
    boxed(path_str(m, &["host", "name"]))
}

fn ecs(
    m: &Map<String, Value>,
    event: &Map<String, Value>,
    time: i64,
    cfg: &crate::config::Config,
) -> Option<Observation> {
    let action = field(event, "action").and_then(Value::as_str).unwrap_or("");
    if field(event, "dataset").and_then(Value::as_str) == Some("http.access") {
        return access(m, time, cfg);
    }
    if action.starts_with("authn_login_") {
        return owasp(m, action, time);
    }
    let outcome = match field(event, "outcome").and_then(Value::as_str) {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        _ => return None,
    };
    let service = || path_str(m, &["system", "auth", "pam", "service"]);
    let (via, target_is_account) = match action {
        "ssh_login" => ("sshd", false),
        "su" => ("su", true),
        // sudo's "N incorrect password attempts" (the authentication kind).
        "sudo_command"
            if outcome == Outcome::Failure && has(field(event, "category"), "authentication") =>
        {
            ("sudo", false)
        }
        // PAM failures of sshd, sudo and su are also logged by those
        // programs; counting both would double every attempt.
        "authentication_failure"
            if !matches!(
                service(),
                Some("sshd" | "sshd-session" | "sshd-auth" | "sudo" | "su" | "su-l")
            ) && field(event, "reason").is_none() =>
        {
            ("pam", false)
        }
        // auditd USER_AUTH / USER_LOGIN records.
        "user_auth" | "user_login"
            if path_str(m, &["event", "module"]).is_some_and(|x| x == "auditd") =>
        {
            ("auditd", false)
        }
        _ => return None,
    };
    let user = if target_is_account {
        path_str(m, &["user", "target", "name"]).or_else(|| path_str(m, &["user", "name"]))
    } else {
        path_str(m, &["user", "name"])
    };
    Some(Observation {
        time,
        user: boxed(user),
        source: ip(path_str(m, &["source", "ip"])),
        host: host_of(m),
        auth: Some(Auth { outcome, via }),
        ..Observation::default()
    })
}

/// Paths where a 401 means a refused login.
fn login_path(p: &str) -> bool {
    const NEEDLES: [&[u8]; 7] = [
        b"login",
        b"logon",
        b"signin",
        b"sign-in",
        b"auth",
        b"session",
        b"xmlrpc.php",
    ];
    let b = p.as_bytes();
    NEEDLES.iter().any(|n| web::contains_ci(b, n))
}

fn access(m: &Map<String, Value>, time: i64, cfg: &crate::config::Config) -> Option<Observation> {
    let status = path(m, &["http", "response", "status_code"])
        .and_then(Value::as_u64)
        .unwrap_or(0) as u16;
    let url = path_str(m, &["url", "original"]).unwrap_or("");
    let attack = if cfg.web_attack.enabled {
        web::inspect(url, cfg.web_attack.max_url_bytes)
    } else {
        None
    };
    let url_path = path_str(m, &["url", "path"]).unwrap_or(url);
    let auth_fail = status == 401 && login_path(url_path);
    if attack.is_none() && status != 404 && !auth_fail {
        return None;
    }
    let cut = web::floor_char(url, cfg.web_attack.max_url_bytes);
    Some(Observation {
        time,
        user: boxed(path_str(m, &["user", "name"])),
        source: ip(path_str(m, &["source", "ip"])),
        host: host_of(m),
        auth: auth_fail.then_some(Auth {
            outcome: Outcome::Failure,
            via: "http",
        }),
        web: Some(Web {
            status,
            attack,
            url: attack.map(|_| Box::from(cut)),
        }),
        ..Observation::default()
    })
}

/// OWASP application logging vocabulary: `authn_login_fail:USER`,
/// `authn_login_success:USER`, `authn_login_successafterfail:USER,N`.
fn owasp(m: &Map<String, Value>, e: &str, time: i64) -> Option<Observation> {
    let (name, arg) = e.split_once(':').unwrap_or((e, ""));
    let outcome = match name {
        "authn_login_fail" | "authn_login_fail_max" => Outcome::Failure,
        "authn_login_success" | "authn_login_successafterfail" => Outcome::Success,
        _ => return None,
    };
    // The vocabulary names the user in the event (`authn_login_fail:bob`);
    // applications that log `authn_login_fail` alone put it in `user.name`.
    let user = arg
        .split(',')
        .next()
        .filter(|u| !u.is_empty())
        .or_else(|| path_str(m, &["user", "name"]));
    let source = path_str(m, &["source", "ip"])
        .or_else(|| path_str(m, &["source_ip"]))
        .or_else(|| path_str(m, &["client", "ip"]));
    Some(Observation {
        time,
        user: boxed(user),
        source: ip(source),
        host: host_of(m).or_else(|| boxed(path_str(m, &["hostname"]))),
        auth: Some(Auth {
            outcome,
            via: "owasp",
        }),
        ..Observation::default()
    })
}

/// A Windows field by its bare name, in evtx_dump (`Event.EventData`,
/// `Event.System`), winlogbeat (`winlog.event_data`) or flat OTRF layout.
pub(crate) fn win_field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    win(m, name)
}

fn win<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let text = |v: &'a Value| match v {
        Value::Object(o) => field(o, "#text"),
        v => Some(v),
    };
    if let Some(Value::Object(ev)) = field(m, "Event") {
        for part in ["EventData", "System"] {
            if let Some(v) = field(ev, part).and_then(|p| p.get(name)) {
                return text(v);
            }
        }
    }
    if let Some(Value::Object(wl)) = field(m, "winlog") {
        if let Some(v) = field(wl, "event_data").and_then(|d| d.get(name)) {
            return Some(v);
        }
        let alias = match name {
            "EventID" => "event_id",
            "Computer" => "computer_name",
            _ => "",
        };
        if let Some(v) = field(wl, alias) {
            return Some(v);
        }
    }
    field(m, name)
}

fn win_str<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    win(m, name).and_then(Value::as_str)
}

fn windows(m: &Map<String, Value>, time: i64) -> Option<Observation> {
    let id = match win(m, "EventID")? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let (outcome, via) = match id {
        4624 => (Outcome::Success, "windows:4624"),
        4625 => (Outcome::Failure, "windows:4625"),
        4648 => (Outcome::Attempt, "windows:4648"),
        4771 => (Outcome::Failure, "windows:4771"),
        4776 => {
            // Status 0x0 is a validated credential, anything else a failure.
            let ok = win_str(m, "Status").is_none_or(|s| {
                let s = s.trim();
                s == "0x0" || s == "0" || s.eq_ignore_ascii_case("0x00000000")
            });
            if ok {
                (Outcome::Success, "windows:4776")
            } else {
                (Outcome::Failure, "windows:4776")
            }
        }
        _ => return None,
    };
    // Logons by the machine itself and anonymous sessions are not logins
    // of an account anyone can guess a password for.
    let user = win_str(m, "TargetUserName")
        .filter(|u| !u.ends_with('$') && !u.eq_ignore_ascii_case("ANONYMOUS LOGON"));
    let user = boxed(user)?;
    // 4648's IpAddress is the *target* server's address: the attempts
    // come from the machine that logged it, which keys spraying.
    let source = if id == 4648 {
        None
    } else {
        ip(win_str(m, "IpAddress"))
    };
    let host =
        boxed(win_str(m, "Computer").or_else(|| win_str(m, "Hostname"))).or_else(|| host_of(m));
    Some(Observation {
        time,
        user: Some(user),
        source,
        host,
        auth: Some(Auth { outcome, via }),
        ..Observation::default()
    })
}

#[cfg(test)]
mod ip_tests {
    use super::*;

    /// `ip` keeps an IPv4 text as sent only because such a text is the
    /// address's canonical form; any that is not must fail to parse.
    #[test]
    fn ipv4_texts_that_parse_are_canonical() {
        let mut texts: Vec<String> = [
            "0.0.0.0",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.004",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "+1.2.3.4",
            "1.2.3.4 ",
            "0x1.2.3.4",
            "1..2.3",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for a in [0u32, 1, 9, 10, 99, 100, 199, 255] {
            texts.push(format!("{a}.{a}.0.{a}"));
            texts.push(format!("0{a}.1.1.1"));
            texts.push(format!("1.1.1.00{a}"));
        }
        for t in &texts {
            if let Ok(a) = t.parse::<std::net::Ipv4Addr>() {
                assert_eq!(a.to_string(), *t);
            }
        }
        assert_eq!(ip(Some("203.0.113.9")).as_deref(), Some("203.0.113.9"));
        assert_eq!(ip(Some(" 203.0.113.9 ")).as_deref(), Some("203.0.113.9"));
        assert_eq!(ip(Some("::ffff:10.0.0.5")).as_deref(), Some("10.0.0.5"));
        assert_eq!(ip(Some("2001:DB8::1")).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip(Some("127.0.0.1")), None);
        assert_eq!(ip(Some("01.2.3.4")), None);
    }
}
