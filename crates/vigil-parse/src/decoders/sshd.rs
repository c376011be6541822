//! OpenSSH server (`sshd`, `sshd-session`) messages, as OpenSSH 7.x–9.x log them.
//!
//! Parsed by hand rather than with regexes: every message starts with a fixed
//! word that selects one shape, and the variable parts (user names may contain
//! spaces; IPv6 addresses contain colons) are located from the right, where
//! OpenSSH puts the fixed `from IP port P` tail.

use vigil_event::{fields, Event};

use super::{classify, classify_auth_start, digits, set_host, set_ip, set_port, set_user, word};

/// `event.action` of a login attempt (`Accepted …`, `Failed …`).
pub const ACTION_LOGIN: &str = "ssh_login";
/// `event.action` of `Invalid user U from IP`.
pub const ACTION_INVALID_USER: &str = "ssh_invalid_user";
/// `event.action` of `Connection closed by …` / `Connection reset by …`.
pub const ACTION_CONNECTION_CLOSED: &str = "ssh_connection_closed";
/// `event.action` of `Disconnected from …`.
pub const ACTION_DISCONNECTED: &str = "ssh_disconnected";
/// `event.action` of `Received disconnect from …`.
pub const ACTION_DISCONNECT_RECEIVED: &str = "ssh_disconnect_received";
/// `event.action` of `error: maximum authentication attempts exceeded …`.
pub const ACTION_MAX_AUTH_ATTEMPTS: &str = "ssh_max_auth_attempts_exceeded";
/// `event.action` of `Disconnecting … Too many authentication failures`.
pub const ACTION_TOO_MANY_FAILURES: &str = "ssh_too_many_auth_failures";
/// `event.action` of `reverse mapping checking getaddrinfo … failed`.
pub const ACTION_REVERSE_MAPPING_FAILED: &str = "ssh_reverse_mapping_failed";
/// `event.action` of `Address IP maps to HOST, but this does not map back`.
pub const ACTION_REVERSE_MAPPING_MISMATCH: &str = "ssh_reverse_mapping_mismatch";
/// `event.action` of `Did not receive identification string from IP`.
pub const ACTION_NO_IDENTIFICATION: &str = "ssh_no_identification";
/// `event.action` of `Unable to negotiate with IP port P: no matching …` (scanners, old clients).
pub const ACTION_NEGOTIATION_FAILED: &str = "ssh_negotiation_failed";
/// `event.action` of `Timeout before authentication for IP port P`.
pub const ACTION_AUTH_TIMEOUT: &str = "ssh_auth_timeout";
/// `event.action` of `banner exchange: Connection from IP port P: invalid format` (non-SSH probes).
pub const ACTION_BAD_BANNER: &str = "ssh_bad_banner";

const INVALID_USER: &str = "invalid user";
const PREAUTH: &str = " [preauth]";

/// Decodes one sshd message into `ev`; returns whether it was recognised.
pub fn decode(msg: &str, ev: &mut Event) -> bool {
    let (first, rest) = word(msg);
    match first {
        "Accepted" => login(rest, true, ev),
        "Failed" => login(rest, false, ev),
        "Invalid" => rest
            .strip_prefix("user ")
            .is_some_and(|r| invalid_user(r, ev)),
        "Connection" => rest
            .strip_prefix("closed by ")
            .or_else(|| rest.strip_prefix("reset by "))
            .is_some_and(|r| closed(r, ACTION_CONNECTION_CLOSED, ev)),
        "Disconnected" => rest
            .strip_prefix("from ")
            .is_some_and(|r| closed(r, ACTION_DISCONNECTED, ev)),
        "Received" => rest
            .strip_prefix("disconnect from ")
            .is_some_and(|r| received_disconnect(r, ev)),
        "error:" => rest
            .strip_prefix("maximum authentication attempts exceeded for ")
            .is_some_and(|r| max_attempts(r, ev)),
        "Disconnecting" => too_many_failures(rest, ev),
        "reverse" => rest
            .strip_prefix("mapping checking getaddrinfo for ")
            .is_some_and(|r| reverse_mapping(r, ev)),
        "Address" => address_mismatch(rest, ev),
        "Did" => rest
            .strip_prefix("not receive identification string from ")
            .is_some_and(|r| no_identification(r, ev)),
        "Unable" => rest
            .strip_prefix("to negotiate with ")
            .is_some_and(|r| probe(r, ACTION_NEGOTIATION_FAILED, ev)),
        "Timeout" => rest
            .strip_prefix("before authentication for ")
            .is_some_and(|r| probe(r, ACTION_AUTH_TIMEOUT, ev)),
        "banner" => rest
            .strip_prefix("exchange: Connection from ")
            .is_some_and(|r| probe(r, ACTION_BAD_BANNER, ev)),
        _ => false,
    }
}

/// A peer as OpenSSH describes it: `[invalid user |authenticating user |user ]U`
/// followed by an address and port.
#[derive(Debug, Default)]
struct Peer<'a> {
    user: Option<&'a str>,
    invalid: bool,
    ip: &'a str,
    port: Option<&'a str>,
    /// Text after the port (` ssh2: RSA SHA256:…`, `: Too many …`).
    rest: &'a str,
}

/// Splits a user description into the name and whether OpenSSH called it invalid.
fn user_part(s: &str) -> (Option<&str>, bool) {
    if let Some(u) = s.strip_prefix("invalid user") {
        // An empty login leaves `invalid user  1.2.3.4`: the name is empty.
        return (Some(u.strip_prefix(' ').unwrap_or(u)), true);
    }
    let u = s
        .strip_prefix("authenticating user ")
        .or_else(|| s.strip_prefix("user "))
        .unwrap_or(s);
    (Some(u), false)
}

/// `IP[ port P]REST`
fn addr_port(s: &str) -> (&str, Option<&str>, &str) {
    let (ip, after) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    match after.strip_prefix(" port ") {
        Some(p) => {
            let (port, rest) = digits(p);
            (ip, (!port.is_empty()).then_some(port), rest)
        }
        None => (ip, None, after),
    }
}

/// `[invalid user ]U from IP port P REST` (login attempts, `Invalid user`).
fn user_from(s: &str) -> Option<Peer<'_>> {
    // From the right: a user name may itself contain " from ".
    let i = s.rfind(" from ")?;
    let (user, invalid) = user_part(&s[..i]);
    let (ip, port, rest) = addr_port(&s[i + " from ".len()..]);
    Some(Peer {
        user,
        invalid,
        ip,
        port,
        rest,
    })
}

/// `[invalid user |authenticating user |user ]U IP port P REST` or `IP port P REST`.
fn user_ip(s: &str) -> Peer<'_> {
    let (head, port, rest) = match s.rfind(" port ") {
        Some(i) => {
            let (port, rest) = digits(&s[i + " port ".len()..]);
            (&s[..i], (!port.is_empty()).then_some(port), rest)
        }
        // OpenSSH before 7.5 had no port here: `Connection closed by 1.2.3.4 [preauth]`.
        None => {
            let s = s.strip_suffix(PREAUTH).unwrap_or(s);
            (s, None, "")
        }
    };
    let (user, invalid, ip) = match head.rsplit_once(' ') {
        Some((u, ip)) => {
            let (user, invalid) = user_part(u);
            (user, invalid, ip)
        }
        None => (None, false, head),
    };
    Peer {
        user,
        invalid,
        ip,
        port,
        rest,
    }
}

/// Sets the peer's user and address; fails unless the address is a real IP,
/// which is what keeps prose that merely starts like an sshd message out.
fn apply_peer(p: &Peer<'_>, ev: &mut Event) -> bool {
    if !set_ip(ev, fields::SOURCE_IP, p.ip) {
        return false;
    }
    if let Some(port) = p.port {
        set_port(ev, fields::SOURCE_PORT, port);
    }
    if let Some(u) = p.user {
        set_user(ev, fields::USER_NAME, u);
    }
    if p.invalid {
        ev.set(fields::EVENT_REASON, INVALID_USER);
    }
    true
}

/// Classifies an attempt sshd refused before any password check
/// (`authentication` / `info` / `failure`).
fn classify_auth_refused(ev: &mut Event, action: &str) {
    classify(ev, action, &["authentication"], &["info"], Some("failure"));
}

/// `METHOD for [invalid user ]U from IP port P ssh2[: KEYTYPE FINGERPRINT]`
fn login(s: &str, success: bool, ev: &mut Event) -> bool {
    let Some((method, rest)) = s.split_once(" for ") else {
        return false;
    };
    if method.is_empty() || method.contains(' ') {
        return false;
    }
    let Some(peer) = user_from(rest) else {
        return false;
    };
    if !apply_peer(&peer, ev) {
        return false;
    }
    ev.set(fields::SYSTEM_AUTH_SSH_METHOD, method);
    let tail = peer.rest.trim_start();
    let tail = tail.strip_prefix("ssh2").unwrap_or(tail);
    if let Some(sig) = tail.strip_prefix(": ").map(str::trim) {
        if !sig.is_empty() {
            ev.set(fields::SYSTEM_AUTH_SSH_SIGNATURE, sig);
        }
    }
    classify_auth_start(ev, ACTION_LOGIN, success);
    true
}

/// `U from IP port P` after `Invalid user `.
fn invalid_user(s: &str, ev: &mut Event) -> bool {
    let Some(mut peer) = user_from(s) else {
        return false;
    };
    peer.invalid = true;
    if !apply_peer(&peer, ev) {
        return false;
    }
    classify_auth_refused(ev, ACTION_INVALID_USER);
    true
}

/// `[invalid user |authenticating user |user ]U IP port P [preauth]` after
/// `Connection closed by ` / `Disconnected from `.
fn closed(s: &str, action: &str, ev: &mut Event) -> bool {
    let peer = user_ip(s);
    if !apply_peer(&peer, ev) {
        return false;
    }
    classify(ev, action, &["network"], &["connection", "end"], None);
    // `Disconnected from user U …` is the end of an authenticated session.
    if action == ACTION_DISCONNECTED
        && !peer.invalid
        && !s.starts_with("authenticating ")
        && peer.user.is_some_and(|u| !u.is_empty())
        && !s.ends_with(PREAUTH)
    {
        ev.push(fields::EVENT_CATEGORY, "session");
    }
    true
}

/// `IP port P:11: REASON [preauth]`, or the pre-7.5 `IP: 11: REASON`.
fn received_disconnect(s: &str, ev: &mut Event) -> bool {
    let s = s.strip_suffix(PREAUTH).unwrap_or(s);
    let (ip, port, rest) = match s.split_once(" port ") {
        Some((ip, after)) => {
            let (port, rest) = digits(after);
            (ip, Some(port), rest)
        }
        None => match s.split_once(": ") {
            Some((ip, rest)) => (ip, None, rest),
            None => return false,
        },
    };
    if !set_ip(ev, fields::SOURCE_IP, ip) {
        return false;
    }
    if let Some(p) = port {
        set_port(ev, fields::SOURCE_PORT, p);
    }
    // `:11: Bye Bye` — the number is the SSH disconnect reason code.
    let rest = rest.trim_start_matches(':').trim_start();
    let (_, reason) = digits(rest);
    let reason = reason.trim_start_matches(':').trim();
    if !reason.is_empty() {
        ev.set(fields::EVENT_REASON, reason);
    }
    classify(
        ev,
        ACTION_DISCONNECT_RECEIVED,
        &["network"],
        &["connection", "end"],
        None,
    );
    true
}

/// `[invalid user ]U from IP port P ssh2 [preauth]`
fn max_attempts(s: &str, ev: &mut Event) -> bool {
    let Some(peer) = user_from(s) else {
        return false;
    };
    if !apply_peer(&peer, ev) {
        return false;
    }
    classify_auth_refused(ev, ACTION_MAX_AUTH_ATTEMPTS);
    ev.set_default(
        fields::EVENT_REASON,
        "maximum authentication attempts exceeded",
    );
    true
}

/// `authenticating user U IP port P: Too many authentication failures [preauth]`
fn too_many_failures(s: &str, ev: &mut Event) -> bool {
    let peer = user_ip(s);
    let reason = peer.rest.trim_start_matches(':').trim();
    let reason = reason
        .strip_suffix(PREAUTH.trim_start())
        .unwrap_or(reason)
        .trim();
    if !reason.starts_with("Too many authentication failures") {
        return false;
    }
    if !apply_peer(&peer, ev) {
        return false;
    }
    classify_auth_refused(ev, ACTION_TOO_MANY_FAILURES);
    ev.set_default(fields::EVENT_REASON, reason);
    true
}

/// `HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!`
fn reverse_mapping(s: &str, ev: &mut Event) -> bool {
    let Some((host, rest)) = s.split_once(" [") else {
        return false;
    };
    let Some((ip, _)) = rest.split_once(']') else {
        return false;
    };
    reverse_dns(ip, host, ACTION_REVERSE_MAPPING_FAILED, ev)
}

/// `IP maps to HOST, but this does not map back to the address[ - POSSIBLE BREAK-IN ATTEMPT!]`
fn address_mismatch(s: &str, ev: &mut Event) -> bool {
    let Some((ip, rest)) = s.split_once(" maps to ") else {
        return false;
    };
    let Some((host, _)) = rest.split_once(", but this does not map back") else {
        return false;
    };
    reverse_dns(ip, host, ACTION_REVERSE_MAPPING_MISMATCH, ev)
}

/// The common tail of the two reverse-DNS warnings: a peer address and the
/// host name it resolved to.
fn reverse_dns(ip: &str, host: &str, action: &str, ev: &mut Event) -> bool {
    if !set_ip(ev, fields::SOURCE_IP, ip) {
        return false;
    }
    set_host(ev, fields::SOURCE_DOMAIN, host);
    classify(ev, action, &["network"], &["info"], None);
    true
}

/// `IP[ port P]`
fn no_identification(s: &str, ev: &mut Event) -> bool {
    let (ip, port, _) = addr_port(s.trim_end());
    if !set_ip(ev, fields::SOURCE_IP, ip) {
        return false;
    }
    if let Some(p) = port {
        set_port(ev, fields::SOURCE_PORT, p);
    }
    classify(
        ev,
        ACTION_NO_IDENTIFICATION,
        &["network"],
        &["connection", "info"],
        Some("failure"),
    );
    true
}

/// `IP port P[: REASON][ [preauth]]` of connections that never got to authentication.
fn probe(s: &str, action: &str, ev: &mut Event) -> bool {
    let s = s.strip_suffix(PREAUTH).unwrap_or(s);
    let (ip, port, rest) = addr_port(s);
    // Without a port, a reason may follow the address directly (`IP: reason`).
    if !set_ip(ev, fields::SOURCE_IP, ip)
        && !ip
            .strip_suffix(':')
            .is_some_and(|ip| set_ip(ev, fields::SOURCE_IP, ip))
    {
        return false;
    }
    if let Some(p) = port {
        set_port(ev, fields::SOURCE_PORT, p);
    }
    let reason = rest.trim_start_matches(':').trim();
    if !reason.is_empty() {
        ev.set(fields::EVENT_REASON, reason);
    }
    classify(
        ev,
        action,
        &["network"],
        &["connection", "denied"],
        Some("failure"),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{no_panic_on_truncation, run};
    use super::*;
    use serde_json::json;

    fn arr(e: &Event, path: &str) -> serde_json::Value {
        e.get(path).cloned().unwrap_or(serde_json::Value::Null)
    }

    #[test]
    fn accepted_publickey() {
        let e = run(
            "sshd",
            "Accepted publickey for alice from 198.51.100.7 port 50122 ssh2: ED25519 SHA256:3oLq4bKXj4mB0yQz8mXn1fVt2Pz0aQyK6r5m2wq9Ukc",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(
            arr(&e, "event.category"),
            json!(["authentication", "session"])
        );
        assert_eq!(arr(&e, "event.type"), json!(["start"]));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("source.ip"), Some("198.51.100.7"));
        assert_eq!(e.get_i64("source.port"), Some(50122));
        assert_eq!(e.get_str("system.auth.ssh.method"), Some("publickey"));
        assert_eq!(
            e.get_str("system.auth.ssh.signature"),
            Some("ED25519 SHA256:3oLq4bKXj4mB0yQz8mXn1fVt2Pz0aQyK6r5m2wq9Ukc")
        );
        assert_eq!(arr(&e, "related.user"), json!(["alice"]));
        assert_eq!(arr(&e, "related.ip"), json!(["198.51.100.7"]));
        assert_eq!(e.get_str("event.dataset"), Some("system.auth"));
        assert_eq!(e.get_str("event.kind"), Some("event"));
    }

    #[test]
    fn accepted_password_and_keyboard_interactive() {
        let e = run(
            "sshd",
            "Accepted password for bob from 2001:db8::1f port 41000 ssh2",
        );
        assert_eq!(e.get_str("source.ip"), Some("2001:db8::1f"));
        assert_eq!(e.get_str("system.auth.ssh.method"), Some("password"));
        assert!(!e.contains("system.auth.ssh.signature"));
        let e = run(
            "sshd-session",
            "Accepted keyboard-interactive/pam for carol from 192.0.2.44 port 62001 ssh2",
        );
        assert_eq!(
            e.get_str("system.auth.ssh.method"),
            Some("keyboard-interactive/pam")
        );
        assert_eq!(e.get_str("user.name"), Some("carol"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
    }

    #[test]
    fn failed_password() {
        let e = run(
            "sshd",
            "Failed password for root from 203.0.113.9 port 52144 ssh2",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(arr(&e, "event.category"), json!(["authentication"]));
        assert_eq!(arr(&e, "event.type"), json!(["start"]));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(52144));
        assert!(!e.contains("event.reason"));
    }

    #[test]
    fn failed_password_invalid_user() {
        let e = run(
            "sshd",
            "Failed password for invalid user admin from 203.0.113.9 port 52146 ssh2",
        );
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        let e = run(
            "sshd",
            "Failed none for invalid user  from 203.0.113.9 port 52147 ssh2",
        );
        assert!(!e.contains("user.name"));
        assert_eq!(e.get_str("system.auth.ssh.method"), Some("none"));
    }

    #[test]
    fn invalid_user() {
        let e = run("sshd", "Invalid user oracle from 45.95.147.10 port 39512");
        assert_eq!(e.get_str("event.action"), Some("ssh_invalid_user"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(arr(&e, "event.category"), json!(["authentication"]));
        assert_eq!(arr(&e, "event.type"), json!(["info"]));
        assert_eq!(e.get_str("user.name"), Some("oracle"));
        assert_eq!(e.get_str("source.ip"), Some("45.95.147.10"));
        assert_eq!(e.get_i64("source.port"), Some(39512));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));
    }

    #[test]
    fn connection_closed() {
        let e = run(
            "sshd",
            "Connection closed by authenticating user root 203.0.113.9 port 52150 [preauth]",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_connection_closed"));
        assert_eq!(arr(&e, "event.category"), json!(["network"]));
        assert_eq!(arr(&e, "event.type"), json!(["connection", "end"]));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(52150));
        assert!(!e.contains("event.outcome"));

        let e = run(
            "sshd",
            "Connection closed by invalid user test 203.0.113.9 port 52151 [preauth]",
        );
        assert_eq!(e.get_str("user.name"), Some("test"));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));

        let e = run(
            "sshd",
            "Connection closed by 203.0.113.9 port 52152 [preauth]",
        );
        assert!(!e.contains("user.name"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));

        let e = run("sshd", "Connection reset by 203.0.113.9 port 52153");
        assert_eq!(e.get_str("event.action"), Some("ssh_connection_closed"));
    }

    #[test]
    fn disconnected() {
        let e = run(
            "sshd",
            "Disconnected from invalid user admin 203.0.113.9 port 52146 [preauth]",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_disconnected"));
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));
        assert_eq!(arr(&e, "event.category"), json!(["network"]));

        let e = run(
            "sshd",
            "Disconnected from user alice 198.51.100.7 port 50122",
        );
        assert_eq!(arr(&e, "event.category"), json!(["network", "session"]));
        assert_eq!(arr(&e, "event.type"), json!(["connection", "end"]));
        assert_eq!(e.get_str("user.name"), Some("alice"));

        let e = run(
            "sshd",
            "Disconnected from authenticating user root 203.0.113.9 port 52150 [preauth]",
        );
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(arr(&e, "event.category"), json!(["network"]));

        let e = run("sshd", "Disconnected from 203.0.113.9 port 52152 [preauth]");
        assert_eq!(e.get_i64("source.port"), Some(52152));
    }

    #[test]
    fn received_disconnect() {
        let e = run(
            "sshd",
            "Received disconnect from 203.0.113.9 port 52146:11: Bye Bye [preauth]",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_disconnect_received"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(52146));
        assert_eq!(e.get_str("event.reason"), Some("Bye Bye"));
        assert_eq!(arr(&e, "event.type"), json!(["connection", "end"]));

        let e = run(
            "sshd",
            "Received disconnect from 2001:db8::7 port 40022:11: disconnected by user",
        );
        assert_eq!(e.get_str("source.ip"), Some("2001:db8::7"));
        assert_eq!(e.get_str("event.reason"), Some("disconnected by user"));

        let e = run(
            "sshd",
            "Received disconnect from 192.0.2.1: 11: Bye Bye [preauth]",
        );
        assert_eq!(e.get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(e.get_str("event.reason"), Some("Bye Bye"));
    }

    #[test]
    fn max_auth_attempts() {
        let e = run(
            "sshd",
            "error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.9 port 52160 ssh2 [preauth]",
        );
        assert_eq!(
            e.get_str("event.action"),
            Some("ssh_max_auth_attempts_exceeded")
        );
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));
        assert_eq!(e.get_i64("source.port"), Some(52160));
        let e = run(
            "sshd",
            "error: maximum authentication attempts exceeded for root from 203.0.113.9 port 52161 ssh2 [preauth]",
        );
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(
            e.get_str("event.reason"),
            Some("maximum authentication attempts exceeded")
        );
    }

    #[test]
    fn too_many_failures() {
        let e = run(
            "sshd",
            "Disconnecting authenticating user root 203.0.113.9 port 52162: Too many authentication failures [preauth]",
        );
        assert_eq!(
            e.get_str("event.action"),
            Some("ssh_too_many_auth_failures")
        );
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(52162));
        assert_eq!(
            e.get_str("event.reason"),
            Some("Too many authentication failures")
        );
        assert_eq!(arr(&e, "event.category"), json!(["authentication"]));

        let e = run(
            "sshd",
            "Disconnecting invalid user pi 203.0.113.9 port 52163: Too many authentication failures [preauth]",
        );
        assert_eq!(e.get_str("user.name"), Some("pi"));
        assert_eq!(e.get_str("event.reason"), Some("invalid user"));
    }

    #[test]
    fn reverse_mapping() {
        let e = run(
            "sshd",
            "reverse mapping checking getaddrinfo for 9.113.0.203.static.example.net [203.0.113.9] failed - POSSIBLE BREAK-IN ATTEMPT!",
        );
        assert_eq!(
            e.get_str("event.action"),
            Some("ssh_reverse_mapping_failed")
        );
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(
            e.get_str("source.domain"),
            Some("9.113.0.203.static.example.net")
        );
        assert_eq!(
            arr(&e, "related.hosts"),
            json!(["9.113.0.203.static.example.net"])
        );
        assert_eq!(arr(&e, "event.category"), json!(["network"]));
        assert_eq!(arr(&e, "event.type"), json!(["info"]));
    }

    #[test]
    fn address_mismatch() {
        let e = run(
            "sshd",
            "Address 203.0.113.9 maps to mail.example.org, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
        );
        assert_eq!(
            e.get_str("event.action"),
            Some("ssh_reverse_mapping_mismatch")
        );
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("source.domain"), Some("mail.example.org"));
    }

    #[test]
    fn no_identification() {
        let e = run(
            "sshd",
            "Did not receive identification string from 203.0.113.9 port 40512",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_no_identification"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(40512));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        let e = run(
            "sshd",
            "Did not receive identification string from 203.0.113.9",
        );
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert!(!e.contains("source.port"));
    }

    #[test]
    fn probes() {
        let e = run(
            "sshd",
            "Unable to negotiate with 203.0.113.9 port 40100: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_negotiation_failed"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("source.port"), Some(40100));
        assert_eq!(
            e.get_str("event.reason"),
            Some("no matching key exchange method found. Their offer: diffie-hellman-group1-sha1")
        );
        assert_eq!(arr(&e, "event.type"), json!(["connection", "denied"]));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        let e = run(
            "sshd",
            "Timeout before authentication for 203.0.113.9 port 40101",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_auth_timeout"));
        assert!(!e.contains("event.reason"));
        let e = run(
            "sshd",
            "banner exchange: Connection from 203.0.113.9 port 40102: invalid format",
        );
        assert_eq!(e.get_str("event.action"), Some("ssh_bad_banner"));
        assert_eq!(e.get_str("event.reason"), Some("invalid format"));
    }

    #[test]
    fn session_lines_go_to_pam() {
        let e = run(
            "sshd",
            "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        );
        assert_eq!(e.get_str("event.action"), Some("session_opened"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        let e = run(
            "sshd",
            "pam_unix(sshd:session): session closed for user alice",
        );
        assert_eq!(e.get_str("event.action"), Some("session_closed"));
    }

    #[test]
    fn without_program_name() {
        let mut e = Event::new();
        e.set(
            "message",
            "Failed password for root from 203.0.113.9 port 52144 ssh2",
        );
        assert!(super::super::decode(&mut e));
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
    }

    #[test]
    fn prose_is_not_an_sshd_event() {
        for msg in [
            "Accepted the change for everyone from now on",
            "Failed to start Session 4 of user alice.",
            "Invalid user configuration from file /etc/ssh/x",
            "Connection closed by peer",
            "Server listening on 0.0.0.0 port 22.",
        ] {
            let e = run("sshd", msg);
            assert!(!e.contains("event.action"), "{msg}");
        }
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        for msg in [
            "Accepted publickey for alice from 198.51.100.7 port 50122 ssh2: ED25519 SHA256:3oLq4bKX",
            "Failed password for invalid user ädmin from 203.0.113.9 port 52146 ssh2",
            "Invalid user oracle from 45.95.147.10 port 39512",
            "Connection closed by authenticating user root 203.0.113.9 port 52150 [preauth]",
            "Disconnected from invalid user admin 203.0.113.9 port 52146 [preauth]",
            "Received disconnect from 203.0.113.9 port 52146:11: Bye Bye [preauth]",
            "error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.9 port 52160 ssh2 [preauth]",
            "Disconnecting authenticating user root 203.0.113.9 port 52162: Too many authentication failures [preauth]",
            "reverse mapping checking getaddrinfo for h.example.net [203.0.113.9] failed - POSSIBLE BREAK-IN ATTEMPT!",
            "Address 203.0.113.9 maps to mail.example.org, but this does not map back to the address",
            "Did not receive identification string from 203.0.113.9 port 40512",
            "Unable to negotiate with 203.0.113.9 port 40100: no matching cipher found [preauth]",
            "Timeout before authentication for 2001:db8::1 port 40101",
            "banner exchange: Connection from 203.0.113.9 port 40102: invalid format",
        ] {
            no_panic_on_truncation("sshd", msg);
        }
    }
}
