//! Account management by the shadow-utils tools: useradd, userdel, usermod,
//! groupadd, groupdel, passwd, chpasswd, gpasswd, chage.
//!
//! Their messages are fixed English templates with names in quotes
//! (`delete user 'bob'`; older releases quote as `` `bob' ``) or as
//! `key=value, ` lists (`new user: name=bob, UID=1001, …`). Password changes
//! made through PAM (`pam_unix(passwd:chauthtok): password changed for bob`)
//! are handled by the PAM decoder.

use vigil_event::{fields, Event};

use super::{classify, set_id, set_user};

/// `event.action` of `new user: …`.
pub const ACTION_USER_CREATED: &str = "user_created";
/// `event.action` of `delete user '…'`.
pub const ACTION_USER_DELETED: &str = "user_deleted";
/// `event.action` of usermod changes other than group membership and password.
pub const ACTION_USER_MODIFIED: &str = "user_modified";
/// `event.action` of `lock user '…' password`.
pub const ACTION_USER_LOCKED: &str = "user_locked";
/// `event.action` of `unlock user '…' password`.
pub const ACTION_USER_UNLOCKED: &str = "user_unlocked";
/// `event.action` of `new group: …` / `group added to …`.
pub const ACTION_GROUP_CREATED: &str = "group_created";
/// `event.action` of `group '…' removed` / `removed group '…'`.
pub const ACTION_GROUP_DELETED: &str = "group_deleted";
/// `event.action` of `add '…' to group '…'` / gpasswd `user … added by … to group …`.
pub const ACTION_USER_ADDED_TO_GROUP: &str = "user_added_to_group";
/// `event.action` of `delete '…' from group '…'` / gpasswd `… removed by … from group …`.
pub const ACTION_USER_REMOVED_FROM_GROUP: &str = "user_removed_from_group";
/// `event.action` of gpasswd `members of group … set by …`.
pub const ACTION_GROUP_MODIFIED: &str = "group_modified";
/// `event.action` of a password change (shared with the PAM decoder).
pub const ACTION_PASSWORD_CHANGED: &str = super::pam::ACTION_PASSWORD_CHANGED;

/// Decodes one account-management message into `ev`; returns whether it was recognised.
pub fn decode(msg: &str, ev: &mut Event) -> bool {
    let msg = msg.trim_end();
    if let Some(r) = msg.strip_prefix("new user: ") {
        new_user(r, ev)
    } else if let Some(r) = msg.strip_prefix("new group: ") {
        new_group(r, ev)
    } else if let Some(r) = msg.strip_prefix("group added to ") {
        r.split_once(": ").is_some_and(|(_, kv)| new_group(kv, ev))
    } else if let Some(r) = msg.strip_prefix("delete user ") {
        one_user(r, ACTION_USER_DELETED, "deletion", ev)
    } else if let Some(r) = msg.strip_prefix("add ") {
        membership(r, " to ", ACTION_USER_ADDED_TO_GROUP, ev)
    } else if let Some(r) = msg.strip_prefix("delete ") {
        membership(r, " from ", ACTION_USER_REMOVED_FROM_GROUP, ev)
    } else if let Some(r) = msg
        .strip_prefix("removed group ")
        .or_else(|| msg.strip_prefix("removed shadow group "))
    {
        group_deleted(r, ev)
    } else if let Some(r) = msg.strip_prefix("group ") {
        // groupdel: `group 'ops' removed[ from /etc/group]`
        quoted(r).is_some_and(|(g, rest)| rest.starts_with(" removed") && group_deleted(g, ev))
    } else if let Some(r) = msg.strip_prefix("change user ") {
        change_user(r, ev)
    } else if let Some(r) = msg.strip_prefix("lock user ") {
        one_user(r, ACTION_USER_LOCKED, "change", ev)
    } else if let Some(r) = msg.strip_prefix("unlock user ") {
        one_user(r, ACTION_USER_UNLOCKED, "change", ev)
    } else if let Some(r) = msg.strip_prefix("password for ") {
        passwd_by(r, ev)
    } else if let Some(r) = msg.strip_prefix("changed password expiry for ") {
        let user = r.trim();
        if user.is_empty() || user.contains(' ') {
            return false;
        }
        set_user(ev, fields::USER_TARGET_NAME, user);
        iam_success(ev, ACTION_USER_MODIFIED, "user", "change");
        true
    } else if let Some(r) = msg.strip_prefix("user ") {
        gpasswd_member(r, ev)
    } else if let Some(r) = msg.strip_prefix("members of group ") {
        gpasswd_members(r, ev)
    } else {
        false
    }
}

/// Classifies a successful account change: `iam` / `[object, kind]` /
/// `success`, with `object` `user` or `group` and `kind` the ECS type
/// (`creation`, `deletion`, `change`).
fn iam_success(ev: &mut Event, action: &str, object: &str, kind: &str) {
    classify(ev, action, &["iam"], &[object, kind], Some("success"));
}

/// `'name'` or `` `name' `` at the start of `s`, and the text after it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('\'').or_else(|| s.strip_prefix('`'))?;
    let end = s.find('\'')?;
    Some((&s[..end], &s[end + 1..]))
}

/// `name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0`
fn kv_list(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(", ")
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

fn new_user(s: &str, ev: &mut Event) -> bool {
    let mut name = None;
    for (k, v) in kv_list(s) {
        match k {
            "name" => name = Some(v),
            "UID" => set_id(ev, fields::USER_TARGET_ID, v),
            "GID" => set_id(ev, fields::USER_TARGET_GROUP_ID, v),
            "home" if !v.is_empty() => ev.set(fields::SYSTEM_AUTH_USERADD_HOME, v),
            "shell" if !v.is_empty() => ev.set(fields::SYSTEM_AUTH_USERADD_SHELL, v),
            "from" if !v.is_empty() && v != "none" => ev.set(fields::SYSTEM_AUTH_TTY, v),
            _ => {}
        }
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return false;
    };
    set_user(ev, fields::USER_TARGET_NAME, name);
    iam_success(ev, ACTION_USER_CREATED, "user", "creation");
    true
}

fn new_group(s: &str, ev: &mut Event) -> bool {
    let mut name = None;
    for (k, v) in kv_list(s) {
        match k {
            "name" => name = Some(v),
            "GID" => set_id(ev, fields::GROUP_ID, v),
            _ => {}
        }
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return false;
    };
    ev.set(fields::GROUP_NAME, name);
    iam_success(ev, ACTION_GROUP_CREATED, "group", "creation");
    true
}

/// `'bob'[ …]` → an action on one user.
fn one_user(s: &str, action: &str, kind: &str, ev: &mut Event) -> bool {
    let Some((user, _)) = quoted(s) else {
        return false;
    };
    if user.is_empty() {
        return false;
    }
    set_user(ev, fields::USER_TARGET_NAME, user);
    iam_success(ev, action, "user", kind);
    true
}

/// `'bob' to [shadow ]group 'sudo'` / `'bob' from [shadow ]group 'sudo'`
fn membership(s: &str, joiner: &str, action: &str, ev: &mut Event) -> bool {
    let Some((user, rest)) = quoted(s) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(joiner) else {
        return false;
    };
    let rest = rest.strip_prefix("shadow ").unwrap_or(rest);
    let Some((group, _)) = rest.strip_prefix("group ").and_then(quoted) else {
        return false;
    };
    if user.is_empty() || group.is_empty() {
        return false;
    }
    set_user(ev, fields::USER_TARGET_NAME, user);
    ev.set(fields::GROUP_NAME, group);
    ev.set(fields::USER_TARGET_GROUP_NAME, group);
    iam_success(ev, action, "group", "change");
    true
}

/// `'bob' owned by 'bob'` (userdel) or a bare group name (groupdel).
fn group_deleted(s: &str, ev: &mut Event) -> bool {
    let group = match quoted(s) {
        Some((g, _)) => g,
        None => s.trim(),
    };
    if group.is_empty() || group.contains(' ') {
        return false;
    }
    ev.set(fields::GROUP_NAME, group);
    iam_success(ev, ACTION_GROUP_DELETED, "group", "deletion");
    true
}

/// `'bob' password`, `name 'bob' to 'robert'`, `'bob' shell from '/bin/sh' to '/bin/bash'`, …
fn change_user(s: &str, ev: &mut Event) -> bool {
    if let Some(r) = s.strip_prefix("name ") {
        let Some((old, rest)) = quoted(r) else {
            return false;
        };
        let new = rest.strip_prefix(" to ").and_then(quoted).map(|(n, _)| n);
        set_user(ev, fields::USER_TARGET_NAME, new.unwrap_or(old));
        if new.is_some() {
            ev.push(fields::RELATED_USER, old);
        }
        iam_success(ev, ACTION_USER_MODIFIED, "user", "change");
        return true;
    }
    let Some((user, rest)) = quoted(s) else {
        return false;
    };
    if user.is_empty() {
        return false;
    }
    set_user(ev, fields::USER_TARGET_NAME, user);
    let action = if rest.trim() == "password" {
        ACTION_PASSWORD_CHANGED
    } else {
        ACTION_USER_MODIFIED
    };
    iam_success(ev, action, "user", "change");
    true
}

/// passwd: `'bob' changed by 'root'`
fn passwd_by(s: &str, ev: &mut Event) -> bool {
    let Some((target, rest)) = quoted(s) else {
        return false;
    };
    let Some((actor, _)) = rest.strip_prefix(" changed by ").and_then(quoted) else {
        return false;
    };
    set_user(ev, fields::USER_NAME, actor);
    set_user(ev, fields::USER_TARGET_NAME, target);
    iam_success(ev, ACTION_PASSWORD_CHANGED, "user", "change");
    true
}

/// gpasswd: `bob added by root to group sudo` / `bob removed by root from group sudo`
fn gpasswd_member(s: &str, ev: &mut Event) -> bool {
    let Some((user, rest)) = s.split_once(' ') else {
        return false;
    };
    let (action, rest, joiner) = if let Some(r) = rest.strip_prefix("added by ") {
        (ACTION_USER_ADDED_TO_GROUP, r, " to group ")
    } else if let Some(r) = rest.strip_prefix("removed by ") {
        (ACTION_USER_REMOVED_FROM_GROUP, r, " from group ")
    } else {
        return false;
    };
    let Some((actor, group)) = rest.split_once(joiner) else {
        return false;
    };
    let group = group.trim();
    if user.is_empty() || actor.is_empty() || group.is_empty() || group.contains(' ') {
        return false;
    }
    set_user(ev, fields::USER_NAME, actor);
    set_user(ev, fields::USER_TARGET_NAME, user);
    ev.set(fields::GROUP_NAME, group);
    ev.set(fields::USER_TARGET_GROUP_NAME, group);
    iam_success(ev, action, "group", "change");
    true
}

/// gpasswd: `sudo set by root to alice,bob`
fn gpasswd_members(s: &str, ev: &mut Event) -> bool {
    let Some((group, rest)) = s.split_once(" set by ") else {
        return false;
    };
    let Some((actor, members)) = rest.split_once(" to ") else {
        return false;
    };
    if group.is_empty() || group.contains(' ') || actor.is_empty() || actor.contains(' ') {
        return false;
    }
    set_user(ev, fields::USER_NAME, actor);
    ev.set(fields::GROUP_NAME, group);
    for m in members.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        ev.push(fields::RELATED_USER, m);
    }
    iam_success(ev, ACTION_GROUP_MODIFIED, "group", "change");
    true
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{no_panic_on_truncation, run};
    use serde_json::json;

    #[test]
    fn new_user() {
        let e = run(
            "useradd",
            "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
        );
        assert_eq!(e.get_str("event.action"), Some("user_created"));
        assert_eq!(e.get("event.category"), Some(&json!(["iam"])));
        assert_eq!(e.get("event.type"), Some(&json!(["user", "creation"])));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        assert_eq!(e.get_str("user.target.id"), Some("1001"));
        assert_eq!(e.get_str("user.target.group.id"), Some("1001"));
        assert_eq!(e.get_str("system.auth.useradd.home"), Some("/home/bob"));
        assert_eq!(e.get_str("system.auth.useradd.shell"), Some("/bin/bash"));
        assert_eq!(e.get_str("system.auth.tty"), Some("/dev/pts/0"));
        assert_eq!(e.get_str("event.dataset"), Some("system.auth"));
        assert!(!e.contains("user.name"));
    }

    #[test]
    fn new_group() {
        let e = run("useradd", "new group: name=bob, GID=1001");
        assert_eq!(e.get_str("event.action"), Some("group_created"));
        assert_eq!(e.get("event.type"), Some(&json!(["group", "creation"])));
        assert_eq!(e.get_str("group.name"), Some("bob"));
        assert_eq!(e.get_str("group.id"), Some("1001"));
        let e = run("groupadd", "group added to /etc/group: name=ops, GID=1002");
        assert_eq!(e.get_str("event.action"), Some("group_created"));
        assert_eq!(e.get_str("group.name"), Some("ops"));
        assert_eq!(e.get_str("group.id"), Some("1002"));
        let e = run("groupadd", "group added to /etc/gshadow: name=ops");
        assert_eq!(e.get_str("group.name"), Some("ops"));
    }

    #[test]
    fn delete_user_and_groups() {
        let e = run("userdel", "delete user 'bob'");
        assert_eq!(e.get_str("event.action"), Some("user_deleted"));
        assert_eq!(e.get("event.type"), Some(&json!(["user", "deletion"])));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        let e = run("userdel", "removed group 'bob' owned by 'bob'");
        assert_eq!(e.get_str("event.action"), Some("group_deleted"));
        assert_eq!(e.get_str("group.name"), Some("bob"));
        let e = run("groupdel", "group 'ops' removed from /etc/group");
        assert_eq!(e.get_str("event.action"), Some("group_deleted"));
        assert_eq!(e.get("event.type"), Some(&json!(["group", "deletion"])));
        assert_eq!(e.get_str("group.name"), Some("ops"));
        let e = run("userdel", "delete `bob' from group `sudo'");
        assert_eq!(e.get_str("event.action"), Some("user_removed_from_group"));
        assert_eq!(e.get_str("group.name"), Some("sudo"));
    }

    #[test]
    fn add_to_group() {
        let e = run("usermod", "add 'bob' to group 'sudo'");
        assert_eq!(e.get_str("event.action"), Some("user_added_to_group"));
        assert_eq!(e.get("event.category"), Some(&json!(["iam"])));
        assert_eq!(e.get("event.type"), Some(&json!(["group", "change"])));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        assert_eq!(e.get_str("group.name"), Some("sudo"));
        assert_eq!(e.get_str("user.target.group.name"), Some("sudo"));
        let e = run("usermod", "add 'bob' to shadow group 'sudo'");
        assert_eq!(e.get_str("group.name"), Some("sudo"));
    }

    #[test]
    fn usermod_changes() {
        let e = run("usermod", "change user 'bob' password");
        assert_eq!(e.get_str("event.action"), Some("password_changed"));
        assert_eq!(e.get("event.type"), Some(&json!(["user", "change"])));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        let e = run(
            "usermod",
            "change user 'bob' shell from '/bin/sh' to '/bin/bash'",
        );
        assert_eq!(e.get_str("event.action"), Some("user_modified"));
        let e = run("usermod", "change user name 'bob' to 'robert'");
        assert_eq!(e.get_str("user.target.name"), Some("robert"));
        assert_eq!(e.get("related.user"), Some(&json!(["robert", "bob"])));
        let e = run("usermod", "lock user 'bob' password");
        assert_eq!(e.get_str("event.action"), Some("user_locked"));
    }

    #[test]
    fn passwd_and_gpasswd() {
        let e = run("passwd", "password for 'bob' changed by 'root'");
        assert_eq!(e.get_str("event.action"), Some("password_changed"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        let e = run("gpasswd", "user bob added by root to group docker");
        assert_eq!(e.get_str("event.action"), Some("user_added_to_group"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
        assert_eq!(e.get_str("group.name"), Some("docker"));
        let e = run("gpasswd", "user bob removed by root from group docker");
        assert_eq!(e.get_str("event.action"), Some("user_removed_from_group"));
        let e = run(
            "gpasswd",
            "members of group docker set by root to alice,bob",
        );
        assert_eq!(e.get_str("event.action"), Some("group_modified"));
        assert_eq!(
            e.get("related.user"),
            Some(&json!(["root", "alice", "bob"]))
        );
    }

    #[test]
    fn chpasswd_via_pam() {
        let e = run(
            "chpasswd",
            "pam_unix(chpasswd:chauthtok): password changed for bob",
        );
        assert_eq!(e.get_str("event.action"), Some("password_changed"));
        assert_eq!(e.get_str("user.target.name"), Some("bob"));
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        for msg in [
            "new user: name=böb, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
            "new group: name=bob, GID=1001",
            "group added to /etc/group: name=ops, GID=1002",
            "delete user 'bob'",
            "add 'bob' to shadow group 'sudo'",
            "delete `bob' from group `sudo'",
            "change user name 'bob' to 'robert'",
            "password for 'bob' changed by 'root'",
            "user bob added by root to group docker",
            "members of group docker set by root to alice,bob",
            "group 'ops' removed",
        ] {
            no_panic_on_truncation("usermod", msg);
        }
    }
}
