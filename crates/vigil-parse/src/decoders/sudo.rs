//! sudo's own log lines: `USER : [ERROR ; ]TTY=… ; PWD=… ; USER=… ; COMMAND=…`.
//!
//! sudo's authentication failures through PAM (`pam_unix(sudo:auth): …`)
//! are handled by the PAM decoder.

use vigil_event::{fields, Event};

use super::{classify, set_user};

/// `event.action` of every sudo command line, allowed or refused.
pub const ACTION_SUDO_COMMAND: &str = "sudo_command";

/// Decodes one sudo message into `ev`; returns whether it was recognised.
pub fn decode(msg: &str, ev: &mut Event) -> bool {
    let Some((user, mut rest)) = msg.split_once(" : ") else {
        return false;
    };
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return false;
    }
    let (mut tty, mut pwd, mut runas, mut group, mut command, mut error) =
        (None, None, None, None, None, None);
    let mut first = true;
    while !rest.is_empty() {
        // The command is last and may itself contain " ; ".
        if let Some(c) = rest.strip_prefix("COMMAND=") {
            command = Some(c.trim_end());
            break;
        }
        let (seg, tail) = rest.split_once(" ; ").unwrap_or((rest, ""));
        rest = tail;
        match seg.split_once('=') {
            Some(("TTY", v)) => tty = Some(v),
            Some(("PWD", v)) => pwd = Some(v),
            Some(("USER", v)) => runas = Some(v),
            Some(("GROUP", v)) => group = Some(v),
            Some(("ENV" | "TSID" | "CHROOT" | "CWD", _)) => {}
            _ if first => error = Some(seg.trim()),
            _ => {}
        }
        first = false;
    }
    // Without the fields sudo always writes this is just text with a colon.
    if tty.is_none() && command.is_none() {
        return false;
    }
    set_user(ev, fields::USER_NAME, user);
    if let Some(r) = runas {
        set_user(ev, fields::USER_EFFECTIVE_NAME, r);
        set_user(ev, fields::USER_TARGET_NAME, r);
    }
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        ev.set(fields::GROUP_NAME, g);
    }
    if let Some(t) = tty.filter(|t| !t.is_empty()) {
        ev.set(fields::SYSTEM_AUTH_TTY, t);
    }
    if let Some(p) = pwd.filter(|p| !p.is_empty()) {
        ev.set(fields::PROCESS_WORKING_DIRECTORY, p);
    }
    if let Some(c) = command.filter(|c| !c.is_empty()) {
        ev.set(fields::PROCESS_COMMAND_LINE, c);
    }
    match error {
        None => classify(
            ev,
            ACTION_SUDO_COMMAND,
            &["process"],
            &["start"],
            Some("success"),
        ),
        Some(err) => {
            ev.set(fields::SYSTEM_AUTH_SUDO_ERROR, err);
            ev.set(fields::EVENT_REASON, err);
            if err.contains("password attempt") || err.contains("password is required") {
                // A wrong password is a failed authentication, not a policy refusal.
                classify(
                    ev,
                    ACTION_SUDO_COMMAND,
                    &["process", "authentication"],
                    &["denied"],
                    Some("failure"),
                );
            } else {
                classify(
                    ev,
                    ACTION_SUDO_COMMAND,
                    &["process"],
                    &["denied"],
                    Some("failure"),
                );
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{no_panic_on_truncation, run};
    use serde_json::json;

    #[test]
    fn command() {
        let e = run(
            "sudo",
            "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
        );
        assert_eq!(e.get_str("event.action"), Some("sudo_command"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get("event.category"), Some(&json!(["process"])));
        assert_eq!(e.get("event.type"), Some(&json!(["start"])));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("user.effective.name"), Some("root"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
        assert_eq!(
            e.get_str("process.command_line"),
            Some("/usr/bin/systemctl restart nginx")
        );
        assert_eq!(e.get_str("process.working_directory"), Some("/home/alice"));
        assert_eq!(e.get_str("system.auth.tty"), Some("pts/0"));
        assert_eq!(e.get("related.user"), Some(&json!(["alice", "root"])));
        assert_eq!(e.get_str("event.dataset"), Some("system.auth"));
        assert!(!e.contains("event.reason"));
    }

    #[test]
    fn command_with_semicolons_and_env() {
        let e = run(
            "sudo",
            "bob : TTY=pts/2 ; PWD=/srv ; USER=postgres ; ENV=PGDATA=/srv/pg ; COMMAND=/bin/sh -c echo a ; echo b",
        );
        assert_eq!(
            e.get_str("process.command_line"),
            Some("/bin/sh -c echo a ; echo b")
        );
        assert_eq!(e.get_str("user.target.name"), Some("postgres"));
    }

    #[test]
    fn incorrect_password() {
        let e = run(
            "sudo",
            "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
        );
        assert_eq!(e.get_str("event.action"), Some("sudo_command"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(
            e.get("event.category"),
            Some(&json!(["process", "authentication"]))
        );
        assert_eq!(e.get("event.type"), Some(&json!(["denied"])));
        assert_eq!(
            e.get_str("system.auth.sudo.error"),
            Some("3 incorrect password attempts")
        );
        assert_eq!(
            e.get_str("event.reason"),
            Some("3 incorrect password attempts")
        );
        assert_eq!(e.get_str("process.command_line"), Some("/bin/bash"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
    }

    #[test]
    fn not_in_sudoers() {
        let e = run(
            "sudo",
            "mallory : user NOT in sudoers ; TTY=pts/3 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
        );
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get("event.category"), Some(&json!(["process"])));
        assert_eq!(e.get("event.type"), Some(&json!(["denied"])));
        assert_eq!(
            e.get_str("system.auth.sudo.error"),
            Some("user NOT in sudoers")
        );
        assert_eq!(e.get_str("user.name"), Some("mallory"));
        assert_eq!(e.get_str("user.target.name"), Some("root"));
        assert_eq!(
            e.get_str("process.command_line"),
            Some("/usr/bin/cat /etc/shadow")
        );
    }

    #[test]
    fn not_sudo_shaped() {
        let e = run("sudo", "alice : something odd happened");
        assert!(!e.contains("event.action"));
        let e = run(
            "sudo",
            "sudo: unable to resolve host web01: Name or service not known",
        );
        assert!(!e.contains("event.action"));
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        for msg in [
            "alice : TTY=pts/0 ; PWD=/home/ä ; USER=root ; COMMAND=/usr/bin/ls",
            "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
            "mallory : user NOT in sudoers ; TTY=pts/3 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id",
        ] {
            no_panic_on_truncation("sudo", msg);
        }
    }
}
