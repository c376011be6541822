//! Builders for each source's records, in the shapes real systems log and
//! Vigil's decoders read (see `crates/vigil-parse/src/decoders`).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::record::{Access, Body, Record, Source};
use super::rng::Rng;
use super::world::{Host, User, World, DNS_SUFFIX, DOMAIN};

/// syslog priority of sshd lines: facility auth (4), severity info.
pub const PRI_AUTH_INFO: u8 = 4 * 8 + 6;
/// authpriv (10), info: PAM, su, shadow-utils.
pub const PRI_AUTHPRIV_INFO: u8 = 10 * 8 + 6;
/// authpriv, notice: what sudo logs commands at.
pub const PRI_AUTHPRIV_NOTICE: u8 = 10 * 8 + 5;
/// authpriv, alert: sudo's refusals.
pub const PRI_AUTHPRIV_ALERT: u8 = 10 * 8 + 1;

/// A Unix auth-log record.
pub fn syslog(t: i64, host: &Host, pri: u8, app: &'static str, pid: u32, msg: String) -> Record {
    Record {
        time_ms: t,
        host: host.name.clone(),
        source: Source::Auth,
        body: Body::Syslog { pri, app, pid, msg },
    }
}

/// A process id in the usual Linux range.
pub fn pid(rng: &mut Rng) -> u32 {
    rng.range(1200, 399_999) as u32
}

/// An ephemeral client port.
pub fn port(rng: &mut Rng) -> u16 {
    rng.range(32768, 60999) as u16
}

/// An access-log record.
pub fn access(t: i64, host: &Host, a: Access) -> Record {
    Record {
        time_ms: t,
        host: host.name.clone(),
        source: Source::Web,
        body: Body::Access(a),
    }
}

fn fqdn(h: &Host) -> String {
    format!("{}.{DNS_SUFFIX}", h.name)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A Windows Security channel event with the given event-specific fields,
/// flat as winlogbeat / OTRF datasets store them.
pub fn win_security(t: i64, host: &Host, id: u32, fields: Value, message: &str) -> Record {
    let mut m = obj(fields);
    let (provider, task) = match id {
        1102 => ("Microsoft-Windows-Eventlog", "104"),
        4624 | 4625 | 4648 => ("Microsoft-Windows-Security-Auditing", "12544"),
        4672 => ("Microsoft-Windows-Security-Auditing", "12548"),
        4688 => ("Microsoft-Windows-Security-Auditing", "13312"),
        4720 => ("Microsoft-Windows-Security-Auditing", "13824"),
        _ => ("Microsoft-Windows-Security-Auditing", "13826"),
    };
    m.insert("EventID".into(), json!(id));
    m.insert("Channel".into(), json!("Security"));
    m.insert("SourceName".into(), json!(provider));
    m.insert("Computer".into(), json!(fqdn(host)));
    m.insert("Hostname".into(), json!(&*host.name));
    m.insert("Task".into(), json!(task));
    m.insert("Level".into(), json!("0"));
    m.insert(
        "Keywords".into(),
        json!(if id == 4625 {
            "0x8010000000000000"
        } else {
            "0x8020000000000000"
        }),
    );
    m.insert("Message".into(), json!(message));
    Record {
        time_ms: t,
        host: host.name.clone(),
        source: Source::WinSecurity,
        body: Body::Json(m),
    }
}

/// A Sysmon event (1 process create, 3 network connect, 11 file create).
pub fn sysmon(t: i64, host: &Host, id: u32, fields: Value, rng: &mut Rng) -> Record {
    let mut m = obj(fields);
    m.insert("EventID".into(), json!(id));
    m.insert(
        "Channel".into(),
        json!("Microsoft-Windows-Sysmon/Operational"),
    );
    m.insert("SourceName".into(), json!("Microsoft-Windows-Sysmon"));
    m.insert("Computer".into(), json!(fqdn(host)));
    m.insert("Hostname".into(), json!(&*host.name));
    m.insert("Level".into(), json!("4"));
    m.insert("Task".into(), json!(id.to_string()));
    m.insert("ProcessGuid".into(), json!(guid(rng)));
    Record {
        time_ms: t,
        host: host.name.clone(),
        source: Source::Sysmon,
        body: Body::Json(m),
    }
}

/// A `{…}` GUID as Sysmon writes them.
pub fn guid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{{{:08x}-{:04x}-{:04x}-{:04x}-{:012x}}}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// `DOMAIN\user` as Sysmon's `User` field has it.
pub fn domain_user(u: &str) -> String {
    format!("{DOMAIN}\\{u}")
}

/// Windows logon (4624) of `user` on `host` from `ip`.
pub fn logon(
    t: i64,
    w: &World,
    host: &Host,
    user: &User,
    logon_type: u32,
    ip: &str,
    rng: &mut Rng,
) -> Record {
    let (process, package) = match logon_type {
        2 | 11 => ("User32 ", "Negotiate"),
        10 => ("User32 ", "Negotiate"),
        _ => ("Kerberos", "Kerberos"),
    };
    win_security(
        t,
        host,
        4624,
        json!({
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": format!("{}$", host.name),
            "SubjectDomainName": DOMAIN,
            "SubjectLogonId": "0x3e7",
            "TargetUserSid": w.sid(user),
            "TargetUserName": &*user.name,
            "TargetDomainName": DOMAIN,
            "TargetLogonId": format!("0x{:x}", rng.range(0x10000, 0xffffff)),
            "LogonType": logon_type.to_string(),
            "LogonProcessName": process,
            "AuthenticationPackageName": package,
            "WorkstationName": if logon_type == 3 { "-".to_string() } else { host.name.to_string() },
            "IpAddress": ip,
            "IpPort": if ip == "-" { "-".to_string() } else { port(rng).to_string() },
            "ProcessName": if logon_type == 3 { "-" } else { "C:\\Windows\\System32\\svchost.exe" },
            "ElevatedToken": if user.admin { "%%1842" } else { "%%1843" },
        }),
        "An account was successfully logged on.",
    )
}

/// Windows failed logon (4625), bad password for an existing account unless `unknown`.
pub fn logon_failed(
    t: i64,
    host: &Host,
    user: &str,
    ip: &str,
    workstation: &str,
    unknown: bool,
    rng: &mut Rng,
) -> Record {
    win_security(
        t,
        host,
        4625,
        json!({
            "SubjectUserSid": "S-1-0-0",
            "SubjectUserName": "-",
            "SubjectDomainName": "-",
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": user,
            "TargetDomainName": DOMAIN,
            "Status": "0xc000006d",
            "SubStatus": if unknown { "0xc0000064" } else { "0xc000006a" },
            "FailureReason": "%%2313",
            "LogonType": "3",
            "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM",
            "WorkstationName": workstation,
            "IpAddress": ip,
            "IpPort": port(rng).to_string(),
            "ProcessName": "-",
        }),
        "An account failed to log on.",
    )
}

/// An application JSON record named with an OWASP logging-vocabulary action.
#[allow(clippy::too_many_arguments)]
pub fn app(
    t: i64,
    host: &Host,
    action: &str,
    outcome: &str,
    user: Option<&str>,
    ip: &str,
    ua: &str,
    path: &str,
    description: String,
) -> Record {
    let level = if outcome == "failure" { "WARN" } else { "INFO" };
    let mut v = json!({
        "service.name": "shop-api",
        "host.name": &*host.name,
        "log.level": level,
        "event.action": action,
        "event.outcome": outcome,
        "event.category": [category(action)],
        "source.ip": ip,
        "user_agent.original": ua,
        "url.path": path,
        "message": description,
    });
    if let Some(u) = user {
        v["user.name"] = json!(u);
    }
    Record {
        time_ms: t,
        host: host.name.clone(),
        source: Source::App,
        body: Body::Json(obj(v)),
    }
}

fn category(action: &str) -> &'static str {
    if action.starts_with("authn") {
        "authentication"
    } else if action.starts_with("authz") {
        "iam"
    } else if action.starts_with("session") {
        "session"
    } else {
        "web"
    }
}

/// An `Arc<str>` for a label from a borrowed name.
pub fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}
