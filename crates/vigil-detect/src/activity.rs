//! Reading host activity from one event: log tampering, account creation
//! and privileged-group membership.
//!
//! Like [`crate::extract`], most events are turned away by a few map
//! lookups. Recognised: Windows 1102/104 (log cleared), 4720 (account
//! created), 4728/4732/4756 (member added to a security-enabled group),
//! 4688 and Sysmon 1 command lines; shadow-utils `user_created` /
//! `user_added_to_group`; auditd `CONFIG_CHANGE` and `EXECVE`; sudo
//! `COMMAND=`; and Vigil's own `vigil.integrity` failures.

use serde_json::{Map, Value};
use vigil_event::field;

use crate::web::contains_ci;

/// A sign that logs or their collection were tampered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tamper {
    /// The class of tampering (`log_cleared`, `audit_config`,
    /// `log_wipe`, `history_wipe`, `integrity`), one alert per host and
    /// class per suppression window.
    pub class: &'static str,
    /// What was seen (`windows:1102`, the matched command pattern, …).
    pub what: Box<str>,
    /// The command line or configuration change, cut to 512 bytes.
    pub detail: Box<str>,
}

/// An account-management event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// An account was created (useradd, Windows 4720).
    Created {
        /// The new account.
        account: Box<str>,
    },
    /// An account was added to a group (usermod/gpasswd, Windows
    /// 4728/4732/4756); the detector decides whether the group is
    /// privileged.
    AddedToGroup {
        /// The member.
        account: Box<str>,
        /// The group's name.
        group: Box<str>,
        /// The group's SID (Windows), for groups known by SID.
        group_sid: Option<Box<str>>,
    },
}

/// What tampering commands look like. Each pattern is (class, needle,
/// optional second needle that must also be present); matching is
/// ASCII case-insensitive on the command line.
const COMMANDS: &[(&str, &str, Option<&str>)] = &[
    ("history_wipe", "history -c", None),
    ("history_wipe", "history -w /dev/null", None),
    ("history_wipe", "unset histfile", None),
    ("history_wipe", "histsize=0", None),
    ("history_wipe", "histfilesize=0", None),
    ("history_wipe", ".bash_history", Some("rm ")),
    ("history_wipe", ".bash_history", Some("/dev/null")),
    ("history_wipe", ".bash_history", Some("shred")),
    ("history_wipe", ".bash_history", Some("truncate")),
    ("history_wipe", ".zsh_history", Some("rm ")),
    ("log_wipe", "/var/log", Some("truncate")),
    ("log_wipe", "/var/log", Some("shred")),
    ("log_wipe", "/var/log", Some("> /var/log")),
    ("log_wipe", "/var/log", Some("rm -rf")),
    ("log_wipe", "/var/log", Some("rm -f")),
    ("log_wipe", "journalctl --vacuum", None),
    ("log_wipe", "journalctl --rotate", Some("--vacuum")),
    ("log_cleared", "wevtutil", Some(" cl ")),
    ("log_cleared", "wevtutil", Some(" clear-log ")),
    ("log_cleared", "clear-eventlog", None),
    ("log_cleared", "remove-eventlog", None),
    ("audit_config", "auditctl -d", None),
    ("audit_config", "auditctl -e 0", None),
    ("audit_config", "auditpol", Some("/clear")),
    ("audit_config", "auditpol", Some("/remove")),
    ("audit_config", "systemctl stop auditd", None),
    ("audit_config", "service auditd stop", None),
];

/// The tampering pattern a command line shows, if any.
pub fn command_tamper(cmd: &str) -> Option<Tamper> {
    let b = cmd.as_bytes();
    for (class, needle, also) in COMMANDS {
        if !contains_ci(b, needle.as_bytes()) {
            continue;
        }
        // `auditctl -D` is case-sensitive: `-d` deletes one rule from a list.
        if *needle == "auditctl -d" && !cmd.contains("auditctl -D") {
            continue;
        }
        if also.is_some_and(|a| !contains_ci(b, a.as_bytes())) {
            continue;
        }
        let what = match also {
            Some(a) => format!("{needle} + {}", a.trim()),
            None => (*needle).to_string(),
        };
        return Some(Tamper {
            class,
            what: what.into_boxed_str(),
            detail: Box::from(crate::web::floor_char(cmd, 512)),
        });
    }
    None
}

fn get<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    let mut v = field(m, keys[0])?;
    for k in &keys[1..] {
        v = field(v.as_object()?, k)?;
    }
    Some(v)
}

fn get_str<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    get(m, keys).and_then(Value::as_str)
}

fn nonempty(s: Option<&str>) -> Option<Box<str>> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && *s != "-")
        .map(Box::from)
}

/// Host activity of an ECS event (decoded syslog, auditd, Vigil's own).
pub fn ecs(m: &Map<String, Value>) -> (Option<Tamper>, Option<AccountChange>) {
    let action = get_str(m, &["event", "action"]).unwrap_or("");
    let dataset = get_str(m, &["event", "dataset"]).unwrap_or("");
    if dataset == "vigil.integrity" {
        let failed = get_str(m, &["event", "outcome"]) == Some("failure");
        let t = failed.then(|| Tamper {
            class: "integrity",
            what: Box::from(action),
            detail: Box::from(crate::web::floor_char(
                get_str(m, &["message"]).unwrap_or(action),
                512,
            )),
        });
        return (t, None);
    }
    let target = || nonempty(get_str(m, &["user", "target", "name"]));
    match action {
        "user_created" => {
            return (
                None,
                target().map(|account| AccountChange::Created { account }),
            );
        }
        "user_added_to_group" => {
            let group = nonempty(
                get_str(m, &["group", "name"])
                    .or_else(|| get_str(m, &["user", "target", "group", "name"])),
            );
            let change = target()
                .zip(group)
                .map(|(account, group)| AccountChange::AddedToGroup {
                    account,
                    group,
                    group_sid: None,
                });
            return (None, change);
        }
        "config_change" => {
            let data = get(m, &["auditd", "data"]).and_then(Value::as_object);
            let field = |k: &str| data.and_then(|d| d.get(k)).and_then(Value::as_str);
            let op = field("op").unwrap_or("");
            let disabled = field("audit_enabled") == Some("0");
            // Loading rules at boot (`add_rule`) is routine; removing
            // rules or turning auditing off is what hides activity.
            if disabled || op.starts_with("remove") || op == "del_rule" {
                let detail = match (disabled, op) {
                    (true, _) => "audit_enabled=0".to_string(),
                    (false, op) => format!("op={op}"),
                };
                return (
                    Some(Tamper {
                        class: "audit_config",
                        what: Box::from("auditd:CONFIG_CHANGE"),
                        detail: detail.into_boxed_str(),
                    }),
                    None,
                );
            }
            return (None, None);
        }
        _ => {}
    }
    let cmd =
        get_str(m, &["process", "command_line"]).or_else(|| get_str(m, &["process", "title"]));
    (cmd.and_then(command_tamper), None)
}

/// A Windows field by bare name (evtx_dump, winlogbeat or flat layout).
fn win<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    crate::extract::win_field(m, name).and_then(Value::as_str)
}

/// Host activity of a Windows event with id `id`.
pub fn windows(m: &Map<String, Value>, id: u64) -> (Option<Tamper>, Option<AccountChange>) {
    let channel = win(m, "Channel").unwrap_or("");
    match id {
        1102 => (
            Some(Tamper {
                class: "log_cleared",
                what: Box::from("windows:1102"),
                detail: Box::from("the Security log was cleared"),
            }),
            None,
        ),
        // 104 is the Eventlog service's "log cleared" in the System
        // channel; other providers reuse the number.
        104 if channel.eq_ignore_ascii_case("System")
            || win(m, "SourceName")
                .or_else(|| win(m, "ProviderName"))
                .is_some_and(|p| contains_ci(p.as_bytes(), b"eventlog")) =>
        {
            (
                Some(Tamper {
                    class: "log_cleared",
                    what: Box::from("windows:104"),
                    detail: Box::from("an event log was cleared"),
                }),
                None,
            )
        }
        4720 => (
            None,
            nonempty(win(m, "TargetUserName"))
                .filter(|u| !u.ends_with('$'))
                .map(|account| AccountChange::Created { account }),
        ),
        4728 | 4732 | 4756 => {
            // MemberName is a DN (`CN=bob,CN=Users,…`) or `-` for local
            // accounts, which only have a SID.
            let member = win(m, "MemberName")
                .and_then(|dn| {
                    let cn = dn.strip_prefix("CN=")?;
                    Some(cn.split(',').next().unwrap_or(cn))
                })
                .or_else(|| win(m, "MemberSid"));
            let group = nonempty(win(m, "TargetUserName"));
            let change =
                nonempty(member)
                    .zip(group)
                    .map(|(account, group)| AccountChange::AddedToGroup {
                        account,
                        group,
                        group_sid: nonempty(win(m, "TargetSid")),
                    });
            (None, change)
        }
        // Sysmon 1 (process create) and Security 4688.
        1 | 4688 => {
            if id == 1 && !contains_ci(channel.as_bytes(), b"sysmon") && !channel.is_empty() {
                return (None, None);
            }
            let cmd = win(m, "CommandLine");
            (cmd.and_then(command_tamper), None)
        }
        _ => (None, None),
    }
}

/// The default privileged groups: Linux sudoers groups and the Windows
/// administrative groups (matched case-insensitively).
pub fn default_privileged_groups() -> Vec<String> {
    [
        "sudo",
        "wheel",
        "admin",
        "root",
        "Administrators",
        "Domain Admins",
        "Enterprise Admins",
        "Schema Admins",
        "Account Operators",
        "Backup Operators",
        "Server Operators",
        "DnsAdmins",
        "Group Policy Creator Owners",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// Well-known SIDs of privileged groups (Administrators, Account, Server
/// and Backup Operators) and domain-relative RIDs (Domain, Schema and
/// Enterprise Admins).
pub fn privileged_sid(sid: &str) -> bool {
    matches!(
        sid,
        "S-1-5-32-544" | "S-1-5-32-548" | "S-1-5-32-549" | "S-1-5-32-551"
    ) || (sid.starts_with("S-1-5-21-")
        && (sid.ends_with("-512") || sid.ends_with("-518") || sid.ends_with("-519")))
}
