//! Application decoders: ECS fields from the free text of well-known programs.
//!
//! A wire format (syslog, JSON, …) yields a `message` and usually a
//! `process.name`; [`decode`] picks the decoder for that program (sshd, sudo,
//! su, PAM, the shadow-utils account tools) and lets it fill `event.*`,
//! `user.*`, `source.*` and friends. Without a process name (a bare auth.log
//! line, a JSON record without `process.name`) a few cheap prefix checks on the
//! message choose instead.
//!
//! Dispatch must stay cheap: most lines match no decoder, and at the ingest
//! target (150k events/s on 2 cores) a miss has to cost well under a
//! microsecond. So the process name is matched as a plain string, every
//! decoder starts with `starts_with`-style checks, and the message is only
//! copied once a decoder has been chosen.

pub mod pam;
pub mod sshd;
pub mod su;
pub mod sudo;
pub mod useradd;

use std::net::IpAddr;

use vigil_event::{fields, Event};

/// `event.dataset` of every event decoded from the Unix authentication log.
pub const DATASET_AUTH: &str = "system.auth";

/// Which decoder a process name selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Sshd,
    Sudo,
    Su,
    Accounts,
    /// A program without its own decoder; only PAM lines are understood.
    Other,
}

fn app_for(name: &str) -> App {
    match name {
        // OpenSSH 9.8 moved per-connection logging into `sshd-session`.
        "sshd" | "sshd-session" | "sshd-auth" => App::Sshd,
        "sudo" => App::Sudo,
        "su" => App::Su,
        "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "groupmod" | "passwd"
        | "chpasswd" | "gpasswd" | "chage" | "newusers" => App::Accounts,
        _ => App::Other,
    }
}

/// Runs the matching application decoder on `ev`'s `message`.
///
/// The program is taken from `process.name`, else `log.syslog.appname`;
/// without either, the message text alone selects a decoder. Returns whether
/// a decoder recognised the message. A recognised event gets `event.kind`
/// `event` and `event.dataset` `system.auth` unless the decoder chose another.
pub fn decode(ev: &mut Event) -> bool {
    let Some(msg) = ev.get_str(fields::MESSAGE) else {
        return false;
    };
    let app = ev
        .get_str(fields::PROCESS_NAME)
        .or_else(|| ev.get_str(fields::LOG_SYSLOG_APPNAME))
        .map(app_for);
    let msg = unwrap_repeated(msg.trim_start());
    if app.is_none() && !plausible_without_app(msg) {
        return false;
    }
    if app == Some(App::Other) && !pam::looks_like(msg) {
        return false;
    }
    // The decoders write into `ev`, so they cannot borrow the message from it.
    let msg = msg.to_owned();
    let hit = match app {
        Some(App::Sshd) => sshd::decode(&msg, ev) || pam::decode(&msg, ev),
        Some(App::Sudo) => sudo::decode(&msg, ev) || pam::decode(&msg, ev),
        Some(App::Su) => su::decode(&msg, ev) || pam::decode(&msg, ev),
        Some(App::Accounts) => useradd::decode(&msg, ev) || pam::decode(&msg, ev),
        Some(App::Other) => pam::decode(&msg, ev),
        None => {
            pam::decode(&msg, ev)
                || sshd::decode(&msg, ev)
                || sudo::decode(&msg, ev)
                || su::decode(&msg, ev)
                || useradd::decode(&msg, ev)
        }
    };
    if hit {
        ev.set_default(fields::EVENT_KIND, "event");
        ev.set_default(fields::EVENT_DATASET, DATASET_AUTH);
    }
    hit
}

/// A first-byte filter for messages without a program name, so that the
/// common case (plain text nobody decodes) skips all decoders at once.
fn plausible_without_app(msg: &str) -> bool {
    matches!(
        msg.as_bytes().first(),
        Some(
            b'p' | b'P' // pam_*, PAM n more
                | b'A' | b'F' | b'I' | b'C' | b'D' | b'R' | b'e' | b'r' | b'T' | b'U' | b'b' // sshd, FAILED SU
                | b'(' | b'+' | b'-' | b'S' // su
                | b'n' | b'g' | b'd' | b'a' | b'c' | b'l' | b'u' | b'm' // accounts, members of
        )
    ) || msg.contains(" : ")
}

/// rsyslog folds repeats into `message repeated 3 times: [ Failed password … ]`;
/// the repeated text is what the decoders understand.
fn unwrap_repeated(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("message repeated ") else {
        return msg;
    };
    let Some((_, inner)) = rest.split_once(" times: [ ") else {
        return msg;
    };
    inner
        .strip_suffix(" ]")
        .or_else(|| inner.strip_suffix(']'))
        .unwrap_or(inner)
        .trim()
}

/// Sets `path` to an IP address and adds it to `related.ip`; refuses anything
/// that does not parse as an address so `source.ip` is always a real IP.
pub(crate) fn set_ip(ev: &mut Event, path: &str, s: &str) -> bool {
    match s.parse::<IpAddr>() {
        Ok(ip) => {
            let ip = ip.to_string();
            ev.push(fields::RELATED_IP, &ip);
            ev.set(path, ip);
            true
        }
        Err(_) => false,
    }
}

/// Sets `path` to a port number when `s` is one.
pub(crate) fn set_port(ev: &mut Event, path: &str, s: &str) {
    if let Ok(p) = s.parse::<u16>() {
        ev.set(path, p);
    }
}

/// Sets a numeric id (uid, gid) as a string, which is what ECS `*.id` fields hold.
pub(crate) fn set_id(ev: &mut Event, path: &str, s: &str) {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        ev.set(path, s);
    }
}

/// Sets a user-name field and adds the name to `related.user`; empty names
/// (OpenSSH logs `Invalid user  from …` for an empty login) are skipped.
pub(crate) fn set_user(ev: &mut Event, path: &str, name: &str) {
    if !name.is_empty() {
        ev.push(fields::RELATED_USER, name);
        ev.set(path, name);
    }
}

/// Sets a host name field and adds it to `related.hosts`.
pub(crate) fn set_host(ev: &mut Event, path: &str, host: &str) {
    if !host.is_empty() {
        ev.push(fields::RELATED_HOSTS, host);
        ev.set(path, host);
    }
}

/// Sets `event.action`, `event.category`, `event.type` and `event.outcome` in one go.
pub(crate) fn classify(
    ev: &mut Event,
    action: &str,
    categories: &[&str],
    types: &[&str],
    outcome: Option<&str>,
) {
    ev.set(fields::EVENT_ACTION, action);
    for c in categories {
        ev.push(fields::EVENT_CATEGORY, c);
    }
    for t in types {
        ev.push(fields::EVENT_TYPE, t);
    }
    if let Some(o) = outcome {
        ev.set(fields::EVENT_OUTCOME, o);
    }
}

/// Classifies a login attempt: `authentication` + `session` / `start` /
/// `success` when it worked, `authentication` / `start` / `failure` when not.
pub(crate) fn classify_auth_start(ev: &mut Event, action: &str, success: bool) {
    if success {
        classify(
            ev,
            action,
            &["authentication", "session"],
            &["start"],
            Some("success"),
        );
    } else {
        classify(ev, action, &["authentication"], &["start"], Some("failure"));
    }
}

/// The leading run of ASCII digits of `s`, and what follows it.
pub(crate) fn digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    // Digits are ASCII, so `n` is a char boundary.
    s.split_at(n)
}

/// `s` up to the first space, and the rest after that space.
pub(crate) fn word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((w, rest)) => (w, rest),
        None => (s, ""),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// An event as the syslog parser leaves it: program name and message.
    pub fn ev(process: &str, msg: &str) -> Event {
        let mut ev = Event::new();
        ev.set(fields::PROCESS_NAME, process);
        ev.set(fields::MESSAGE, msg);
        ev
    }

    /// Decodes `msg` as if logged by `process`.
    pub fn run(process: &str, msg: &str) -> Event {
        let mut e = ev(process, msg);
        decode(&mut e);
        e
    }

    /// Every prefix of `msg` (at char boundaries) and a few mangled variants
    /// must decode without panicking.
    pub fn no_panic_on_truncation(process: &str, msg: &str) {
        let mut cuts: Vec<usize> = msg.char_indices().map(|(i, _)| i).collect();
        cuts.push(msg.len());
        for i in cuts {
            let head = &msg[..i];
            let tail = &msg[i..];
            for variant in [
                head.to_string(),
                tail.to_string(),
                format!("{head}  {tail}"),
            ] {
                let _ = run(process, &variant);
                let mut e = Event::new();
                e.set(fields::MESSAGE, variant.as_str());
                decode(&mut e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn unknown_program_is_left_alone() {
        let e = run("cron", "(root) CMD (run-parts /etc/cron.hourly)");
        assert!(!e.contains(fields::EVENT_ACTION));
        assert!(!e.contains(fields::EVENT_KIND));
    }

    #[test]
    fn repeated_messages_are_unwrapped() {
        let e = run(
            "sshd",
            "message repeated 2 times: [ Failed password for root from 203.0.113.9 port 52144 ssh2]",
        );
        assert_eq!(e.get_str(fields::EVENT_ACTION), Some("ssh_login"));
        assert_eq!(e.get_str(fields::SOURCE_IP), Some("203.0.113.9"));
    }

    #[test]
    fn helpers_reject_bad_values() {
        let mut e = Event::new();
        assert!(!set_ip(&mut e, fields::SOURCE_IP, "999.1.1.1"));
        set_port(&mut e, fields::SOURCE_PORT, "70000");
        set_user(&mut e, fields::USER_NAME, "");
        assert_eq!(e, Event::new());
    }
}
