//! `su` messages from util-linux (`(to root) alice on pts/0`,
//! `FAILED SU (to root) alice on pts/0`) and shadow-utils
//! (`Successful su for root by alice`, `+ pts/0 alice:root`).
//!
//! su's PAM lines (`pam_unix(su:auth): …`) are handled by the PAM decoder.

use vigil_event::{fields, Event};

use super::{classify_auth_start, set_user};

/// `event.action` of every su attempt.
pub const ACTION_SU: &str = "su";

/// Decodes one su message into `ev`; returns whether it was recognised.
pub fn decode(msg: &str, ev: &mut Event) -> bool {
    let (success, rest) = match msg.strip_prefix("FAILED SU ") {
        Some(r) => (false, r),
        None => (true, msg),
    };
    if let Some(r) = rest.strip_prefix("(to ") {
        return util_linux(r, success, ev);
    }
    if let Some(r) = msg.strip_prefix("Successful su for ") {
        return shadow_for_by(r, true, ev);
    }
    if let Some(r) = msg.strip_prefix("FAILED su for ") {
        return shadow_for_by(r, false, ev);
    }
    if let Some(r) = msg.strip_prefix("+ ") {
        return shadow_short(r, true, ev);
    }
    if let Some(r) = msg.strip_prefix("- ") {
        return shadow_short(r, false, ev);
    }
    false
}

fn finish(ev: &mut Event, actor: &str, target: &str, tty: Option<&str>, success: bool) {
    set_user(ev, fields::USER_NAME, actor);
    set_user(ev, fields::USER_TARGET_NAME, target);
    set_user(ev, fields::USER_EFFECTIVE_NAME, target);
    if let Some(t) = tty.filter(|t| !t.is_empty() && *t != "none") {
        ev.set(fields::SYSTEM_AUTH_TTY, t);
    }
    classify_auth_start(ev, ACTION_SU, success);
}

/// `root) alice on pts/0`
fn util_linux(s: &str, success: bool, ev: &mut Event) -> bool {
    let Some((target, rest)) = s.split_once(") ") else {
        return false;
    };
    let (actor, tty) = match rest.rsplit_once(" on ") {
        Some((a, t)) => (a, Some(t.trim())),
        None => (rest.trim(), None),
    };
    if target.is_empty() || target.contains(' ') || actor.is_empty() || actor.contains(' ') {
        return false;
    }
    finish(ev, actor, target, tty, success);
    true
}

/// `root by alice`
fn shadow_for_by(s: &str, success: bool, ev: &mut Event) -> bool {
    let Some((target, actor)) = s.split_once(" by ") else {
        return false;
    };
    let actor = actor.trim();
    if target.is_empty() || actor.is_empty() || actor.contains(' ') {
        return false;
    }
    finish(ev, actor, target, None, success);
    true
}

/// `pts/0 alice:root`
fn shadow_short(s: &str, success: bool, ev: &mut Event) -> bool {
    let Some((tty, users)) = s.split_once(' ') else {
        return false;
    };
    // `- a:b` alone is too common in prose; shadow su always names a terminal.
    if !(tty.starts_with("/dev/")
        || tty.starts_with("pts/")
        || tty.starts_with("tty")
        || tty == "???")
    {
        return false;
    }
    let Some((actor, target)) = users.trim().split_once(':') else {
        return false;
    };
    if actor.is_empty() || target.is_empty() || target.contains(' ') || actor.contains(' ') {
        return false;
    }
    finish(ev, actor, target, Some(tty), success);
    true
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{no_panic_on_truncation, run};
    use serde_json::json;

    #[test]
    fn success() {
        let e = run("su", "(to root) alice on pts/0");
        assert_eq!(e.get_str("event.action"), Some("su"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(
            e.get("event.category"),
            Some(&json!(["authentication", "session"]))
        );
        assert_eq!(e.get("event.type"), Some(&json!(["start"])));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
        assert_eq!(e.get_str("user.effective.name"), Some("root"));
        assert_eq!(e.get_str("system.auth.tty"), Some("pts/0"));
        assert_eq!(e.get_str("event.dataset"), Some("system.auth"));
    }

    #[test]
    fn failure() {
        let e = run("su", "FAILED SU (to root) alice on pts/0");
        assert_eq!(e.get_str("event.action"), Some("su"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get("event.category"), Some(&json!(["authentication"])));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
    }

    #[test]
    fn shadow_forms() {
        let e = run("su", "Successful su for postgres by root");
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("user.target.name"), Some("postgres"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        let e = run("su", "- /dev/pts/1 alice:root");
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("system.auth.tty"), Some("/dev/pts/1"));
    }

    #[test]
    fn prose_is_not_su() {
        let e = run("su", "(to be continued) later on x");
        assert!(!e.contains("event.action"));
        let e = run("su", "- note:done");
        assert!(!e.contains("event.action"));
    }

    #[test]
    fn pam_line_under_su() {
        let e = run(
            "su",
            "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root",
        );
        assert_eq!(e.get_str("event.action"), Some("authentication_failure"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        for msg in [
            "(to root) alice on pts/0",
            "FAILED SU (to röot) alice on pts/0",
            "Successful su for postgres by root",
            "+ /dev/pts/1 alice:root",
            "(to be continued) later on x",
        ] {
            no_panic_on_truncation("su", msg);
        }
    }
}
