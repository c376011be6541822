//! Linux-PAM module messages, whichever program logged them.
//!
//! PAM lines look the same under sshd, sudo, su, login, cron or passwd:
//! `MODULE(SERVICE:TYPE): TEXT`, e.g.
//! `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root`.
//! The key=value tail is PAM's own record of who asked (`ruser`, `uid`) for
//! whom (`user`) from where (`rhost`).

use vigil_event::{fields, Event};

use super::{classify, classify_auth_start, set_host, set_id, set_ip, set_user};

/// `event.action` of an `authentication failure` / `check pass; user unknown` line.
pub const ACTION_AUTH_FAILURE: &str = "authentication_failure";
/// `event.action` of `session opened for user …`.
pub const ACTION_SESSION_OPENED: &str = "session_opened";
/// `event.action` of `session closed for user …`.
pub const ACTION_SESSION_CLOSED: &str = "session_closed";
/// `event.action` of `password changed for …`.
pub const ACTION_PASSWORD_CHANGED: &str = "password_changed";

/// Whether the message is worth handing to [`decode`]: a cheap prefix check.
pub fn looks_like(msg: &str) -> bool {
    msg.starts_with("pam_") || msg.starts_with("PAM ")
}

/// Decodes one PAM message into `ev`; returns whether it was recognised.
pub fn decode(msg: &str, ev: &mut Event) -> bool {
    if let Some(rest) = msg.strip_prefix("PAM ") {
        return more_failures(rest, ev);
    }
    if !msg.starts_with("pam_") {
        return false;
    }
    let Some((head, text)) = msg.split_once("): ") else {
        return false;
    };
    let Some((module, svc)) = head.split_once('(') else {
        return false;
    };
    let (service, kind) = svc.split_once(':').unwrap_or((svc, ""));
    let text = text.trim();
    let hit = if let Some(kv) = text.strip_prefix("authentication failure;") {
        auth_failure(kv, ev);
        true
    } else if text.starts_with("check pass; user unknown") {
        classify_auth_start(ev, ACTION_AUTH_FAILURE, false);
        ev.set(fields::EVENT_REASON, "user unknown");
        true
    } else if let Some(rest) = text.strip_prefix("auth could not identify password for [") {
        classify_auth_start(ev, ACTION_AUTH_FAILURE, false);
        if let Some((user, _)) = rest.split_once(']') {
            set_user(ev, fields::USER_NAME, user);
        }
        ev.set(fields::EVENT_REASON, "could not identify password");
        true
    } else if let Some(rest) = text.strip_prefix("session opened for user ") {
        session(rest, true, ev);
        true
    } else if let Some(rest) = text.strip_prefix("session closed for user ") {
        session(rest, false, ev);
        true
    } else if let Some(rest) = text.strip_prefix("password changed for ") {
        let user = rest.split_whitespace().next().unwrap_or("");
        set_user(ev, fields::USER_TARGET_NAME, user);
        classify(
            ev,
            ACTION_PASSWORD_CHANGED,
            &["iam"],
            &["user", "change"],
            Some("success"),
        );
        true
    } else {
        false
    };
    if hit {
        ev.set(fields::SYSTEM_AUTH_PAM_MODULE, module);
        if !service.is_empty() {
            ev.set(fields::SYSTEM_AUTH_PAM_SERVICE, service);
        }
        if !kind.is_empty() {
            ev.set(fields::SYSTEM_AUTH_PAM_TYPE, kind);
        }
    }
    hit
}

/// ` logname=U uid=1000 euid=0 tty=/dev/pts/0 ruser=U rhost=  user=U`
fn auth_failure(kv: &str, ev: &mut Event) {
    classify_auth_start(ev, ACTION_AUTH_FAILURE, false);
    apply_kv(kv, ev);
}

/// `N more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=IP  user=root`
fn more_failures(rest: &str, ev: &mut Event) -> bool {
    let Some((count, rest)) = rest.split_once(' ') else {
        return false;
    };
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(kv) = rest.strip_prefix("more authentication failures;") else {
        return false;
    };
    auth_failure(kv, ev);
    ev.set(
        fields::EVENT_REASON,
        format!("{count} more authentication failures"),
    );
    true
}

/// Applies PAM's `key=value` tail. Values may be empty (`rhost=  user=root`).
///
/// `ruser` is who asked and `user` the account asked for: with both present
/// and different (su: `ruser=alice user=root`) the first is `user.name` and the
/// second `user.target.name`; otherwise whichever is present is `user.name`.
/// `uid`/`euid` are those of the program calling PAM, so they describe the
/// user only when that program ran on the user's behalf (`ruser` set: su,
/// sudo); for sshd they are sshd's own `0` and are not recorded.
fn apply_kv(kv: &str, ev: &mut Event) {
    let (mut user, mut ruser, mut uid, mut euid) = ("", "", "", "");
    for pair in kv.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        match k {
            "uid" => uid = v,
            "euid" => euid = v,
            "tty" if !v.is_empty() => ev.set(fields::SYSTEM_AUTH_TTY, v),
            "rhost" if !v.is_empty() && !set_ip(ev, fields::SOURCE_IP, v) => {
                set_host(ev, fields::SOURCE_DOMAIN, v);
            }
            "user" => user = v,
            "ruser" => ruser = v,
            _ => {}
        }
    }
    if !ruser.is_empty() {
        set_id(ev, fields::USER_ID, uid);
        set_id(ev, fields::USER_EFFECTIVE_ID, euid);
    }
    match (ruser, user) {
        ("", "") => {}
        ("", u) | (u, "") => set_user(ev, fields::USER_NAME, u),
        (r, u) if r == u => set_user(ev, fields::USER_NAME, u),
        (r, u) => {
            set_user(ev, fields::USER_NAME, r);
            set_user(ev, fields::USER_TARGET_NAME, u);
        }
    }
}

/// `alice(uid=1000) by (uid=0)`, `root(uid=0) by alice(uid=1000)`, or the
/// older `alice by (uid=0)`.
///
/// When another named user opened the session (su, sudo) that user is the
/// actor (`user.name`) and the session's user the target.
fn session(rest: &str, opened: bool, ev: &mut Event) {
    let (who, by) = match rest.split_once(" by ") {
        Some((w, b)) => (w, b),
        None => (rest, ""),
    };
    let (user, uid) = name_and_uid(who);
    let (by_user, by_uid) = name_and_uid(by);
    if !by_user.is_empty() && by_user != user {
        set_user(ev, fields::USER_NAME, by_user);
        set_id(ev, fields::USER_ID, by_uid);
        set_user(ev, fields::USER_TARGET_NAME, user);
        set_id(ev, fields::USER_TARGET_ID, uid);
    } else {
        set_user(ev, fields::USER_NAME, user);
        set_id(ev, fields::USER_ID, uid);
    }
    let (action, kind) = if opened {
        (ACTION_SESSION_OPENED, "start")
    } else {
        (ACTION_SESSION_CLOSED, "end")
    };
    classify(ev, action, &["session"], &[kind], Some("success"));
}

/// `alice(uid=1000)` → (`alice`, `1000`); `alice` → (`alice`, ``).
fn name_and_uid(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once('(') {
        Some((n, id)) => {
            let id = id.strip_prefix("uid=").unwrap_or("");
            (n, id.split(')').next().unwrap_or(""))
        }
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{no_panic_on_truncation, run};
    use serde_json::json;

    #[test]
    fn sshd_auth_failure_with_rhost() {
        let e = run(
            "sshd",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        );
        assert_eq!(e.get_str("event.action"), Some("authentication_failure"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get("event.category"), Some(&json!(["authentication"])));
        assert_eq!(e.get("event.type"), Some(&json!(["start"])));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert!(!e.contains("user.id"));
        assert!(!e.contains("user.effective.id"));
        assert_eq!(e.get_str("system.auth.tty"), Some("ssh"));
        assert_eq!(e.get_str("system.auth.pam.module"), Some("pam_unix"));
        assert_eq!(e.get_str("system.auth.pam.service"), Some("sshd"));
        assert_eq!(e.get_str("system.auth.pam.type"), Some("auth"));
        assert_eq!(e.get_str("event.dataset"), Some("system.auth"));
    }

    #[test]
    fn rhost_name_is_a_domain() {
        let e = run(
            "login",
            "pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=tty1 ruser= rhost=ws01.example.org  user=bob",
        );
        assert!(!e.contains("source.ip"));
        assert_eq!(e.get_str("source.domain"), Some("ws01.example.org"));
        assert_eq!(e.get_str("user.name"), Some("bob"));
    }

    #[test]
    fn sudo_auth_failure() {
        let e = run(
            "sudo",
            "pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
        );
        assert_eq!(e.get_str("event.action"), Some("authentication_failure"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert!(!e.contains("user.target.name"));
        assert!(!e.contains("source.ip"));
        assert_eq!(e.get_str("user.id"), Some("1000"));
        assert_eq!(e.get_str("user.effective.id"), Some("0"));
        assert_eq!(e.get_str("system.auth.tty"), Some("/dev/pts/0"));
    }

    #[test]
    fn su_auth_failure_has_actor_and_target() {
        let e = run(
            "su",
            "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/1 ruser=alice rhost=  user=root",
        );
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
        assert_eq!(e.get("related.user"), Some(&json!(["alice", "root"])));
        assert_eq!(e.get_str("system.auth.pam.service"), Some("su"));
    }

    #[test]
    fn user_unknown() {
        let e = run("sshd", "pam_unix(sshd:auth): check pass; user unknown");
        assert_eq!(e.get_str("event.action"), Some("authentication_failure"));
        assert_eq!(e.get_str("event.reason"), Some("user unknown"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
    }

    #[test]
    fn more_failures() {
        let e = run(
            "sshd",
            "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        );
        assert_eq!(e.get_str("event.action"), Some("authentication_failure"));
        assert_eq!(
            e.get_str("event.reason"),
            Some("2 more authentication failures")
        );
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
    }

    #[test]
    fn sessions() {
        let e = run(
            "sshd",
            "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        );
        assert_eq!(e.get_str("event.action"), Some("session_opened"));
        assert_eq!(e.get("event.category"), Some(&json!(["session"])));
        assert_eq!(e.get("event.type"), Some(&json!(["start"])));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.id"), Some("1000"));
        assert!(!e.contains("user.target.name"));

        let e = run(
            "sudo",
            "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.id"), Some("1000"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
        assert_eq!(e.get_str("user.target.id"), Some("0"));

        let e = run(
            "sshd",
            "pam_unix(sshd:session): session closed for user alice",
        );
        assert_eq!(e.get_str("event.action"), Some("session_closed"));
        assert_eq!(e.get("event.type"), Some(&json!(["end"])));
        assert_eq!(e.get_str("user.name"), Some("alice"));

        let e = run(
            "CRON",
            "pam_unix(cron:session): session opened for user root by (uid=0)",
        );
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("system.auth.pam.service"), Some("cron"));
    }

    #[test]
    fn password_changed() {
        let e = run(
            "passwd",
            "pam_unix(passwd:chauthtok): password changed for bob",
        );
        assert_eq!(e.get_str("event.action"), Some("password_changed"));
        assert_eq!(e.get("event.category"), Some(&json!(["iam"])));
        assert_eq!(e.get("event.type"), Some(&json!(["user", "change"])));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        assert_eq!(e.get_str("system.auth.pam.type"), Some("chauthtok"));
        let e = run(
            "chpasswd",
            "pam_unix(chpasswd:chauthtok): password changed for carol",
        );
        assert_eq!(e.get_str("user.target.name"), Some("carol"));
    }

    #[test]
    fn unknown_pam_text() {
        let e = run("sshd", "pam_unix(sshd:auth): conversation failed");
        assert!(!e.contains("event.action"));
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        for msg in [
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=röot",
            "pam_unix(sshd:auth): check pass; user unknown",
            "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
            "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
            "pam_unix(passwd:chauthtok): password changed for bob",
            "pam_unix(sudo:auth): auth could not identify password for [alice]",
        ] {
            no_panic_on_truncation("sshd", msg);
            no_panic_on_truncation("cron", msg);
        }
    }
}
