//! Linux audit records (`/var/log/audit/audit.log`), raw or sent through
//! syslog (audisp-syslog, the kernel's `audit:` printk, AUOMS).
//!
//! `type=SYSCALL msg=audit(1603812050.553:1237): arch=c000003e syscall=59 success=yes exit=0 a0=55d3 … comm="whoami" exe="/usr/bin/whoami" key=(null)`
//!
//! One line is one record; the records of one audit event (SYSCALL,
//! EXECVE, CWD, PATH, PROCTITLE…) share the `audit(time:serial)` stamp and
//! become separate Vigil events (`auditd.sequence` ties them together).
//! Every `key=value` of the record is kept under `auditd.data.<key>`, so
//! that Sigma `service: auditd` rules read the names they were written for
//! (mapped in vigil-sigma's `mappings/linux.yml`), and the well-known ones
//! are also copied to ECS (`process.*`, `user.*`, `file.path`…).
//!
//! auditd hex-encodes untrusted strings that contain a space, a quote, a
//! control or non-ASCII character (`proctitle=2F62696E…`, `name=`, EXECVE
//! arguments…), writing them unquoted, while plain ones are quoted. So an
//! unquoted hex value of such a field is decoded (NUL separators, as in
//! `proctitle`, become spaces), and a quoted one is taken as it is.
//! Register values (`a0=7ffd…` in SYSCALL records) are numbers, not text,
//! and stay as written.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vigil_event::{fields, Event};

/// `event.module` of audit records.
pub const MODULE: &str = "auditd";
/// `event.dataset` of audit records.
pub const DATASET: &str = "auditd.log";
/// `log.format` of audit records.
pub const FORMAT: &str = "auditd";

/// Most key/value pairs kept from one record; the rest are dropped and the
/// event flagged `vigil.truncated`.
pub const MAX_PAIRS: usize = 128;
/// Longest value kept (bytes, after hex decoding); longer ones are cut at a
/// char boundary and the event flagged `vigil.truncated`.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most EXECVE arguments copied to `process.args`.
pub const MAX_ARGS: usize = 64;
/// Longest key kept; longer "keys" are not audit fields.
const MAX_KEY_BYTES: usize = 64;

/// One audit record, borrowed from the input where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    /// `node=` prefix (the host name in multi-host setups).
    pub node: Option<&'a str>,
    /// Record type as a name (`SYSCALL`, `EXECVE`; numeric kernel types
    /// such as `1300` are translated when known).
    pub record_type: Cow<'a, str>,
    /// Time of the `audit(…)` stamp.
    pub time: Option<DateTime<Utc>>,
    /// Serial number of the `audit(…)` stamp, shared by the records of one event.
    pub sequence: Option<u64>,
    /// Fields in order, values unquoted and hex-decoded where auditd encoded them.
    pub pairs: Vec<(&'a str, String)>,
    /// Whether pairs or values were dropped or cut by the limits.
    pub truncated: bool,
}

impl AuditRecord<'_> {
    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `s` starts like an audit record, cheaply: `type=`, `node=` or
/// the kernel's `audit: type=`, with an `audit(` stamp.
pub fn looks_like(s: &str) -> bool {
    let s = s.trim_start();
    let s = s.strip_prefix("audit: ").unwrap_or(s);
    (s.starts_with("type=") || s.starts_with("node=")) && s.contains("audit(")
}

/// Reads an audit record; `None` if the line is not one.
pub fn parse(line: &str) -> Option<AuditRecord<'_>> {
    let mut s = line.trim();
    s = s.strip_prefix("audit: ").unwrap_or(s);
    let mut node = None;
    if let Some(rest) = s.strip_prefix("node=") {
        let (n, rest) = rest.split_once(' ')?;
        node = Some(n);
        s = rest.trim_start();
    }
    let rest = s.strip_prefix("type=")?;
    let (ty, rest) = rest.split_once(' ')?;
    if ty.is_empty() || ty.len() > MAX_KEY_BYTES || !ty.bytes().all(is_key_byte) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("msg=").unwrap_or(rest);
    let rest = rest.strip_prefix("audit(")?;
    let (stamp, body) = rest.split_once("):")?;
    let (time, sequence) = parse_stamp(stamp)?;
    let record_type = match ty.parse::<u32>() {
        Ok(n) => type_name(n).map_or(Cow::Borrowed(ty), Cow::Borrowed),
        Err(_) => Cow::Borrowed(ty),
    };
    let mut rec = AuditRecord {
        node,
        record_type,
        time,
        sequence: Some(sequence),
        pairs: Vec::new(),
        truncated: false,
    };
    let execve = rec.record_type == "EXECVE";
    scan_pairs(body, execve, &mut rec, 0);
    Some(rec)
}

/// `1603812050.553:1237` -> (time, serial).
fn parse_stamp(stamp: &str) -> Option<(Option<DateTime<Utc>>, u64)> {
    let (t, serial) = stamp.split_once(':')?;
    let serial = serial.parse::<u64>().ok()?;
    let (secs, frac) = t.split_once('.').unwrap_or((t, "0"));
    let secs = secs.parse::<i64>().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `.553` is milliseconds; scale whatever precision was written to ns.
    let nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
    Some((DateTime::from_timestamp(secs, nanos), serial))
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'[' | b']')
}

/// Splits `key=value` pairs off `body`. Separators are spaces and the
/// 0x1d byte that starts the enriched (`ARCH=x86_64 SYSCALL=execve
/// UID="root"`) part. `msg='…'` of user-space records holds more pairs,
/// read one level deep.
fn scan_pairs<'a>(body: &'a str, execve: bool, rec: &mut AuditRecord<'a>, depth: u8) {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == 0x1d) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' && b[i] != 0x1d {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue; // a bare word: not a field
        }
        let key = &body[start..i];
        i += 1;
        let (raw, quoted) = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let from = i + 1;
                let end = memchr::memchr(q, &b[from..]).map_or(b.len(), |n| from + n);
                i = (end + 1).min(b.len());
                (&body[from..end], Some(q))
            }
            _ => {
                let from = i;
                while i < b.len() && b[i] != b' ' && b[i] != 0x1d {
                    i += 1;
                }
                (&body[from..i], None)
            }
        };
        let valid_key =
            !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(is_key_byte);
        if !valid_key {
            continue;
        }
        if key == "msg" && quoted == Some(b'\'') && depth == 0 {
            scan_pairs(raw, execve, rec, depth + 1);
            continue;
        }
        if rec.pairs.len() >= MAX_PAIRS {
            rec.truncated = true;
            return;
        }
        // Fields of a user-space `msg='…'` do not override the record's own.
        if depth > 0 && rec.pairs.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let mut value = if quoted.is_none() && is_encoded_field(key, execve) {
            decode_hex(raw).unwrap_or_else(|| raw.to_string())
        } else {
            raw.to_string()
        };
        if value.len() > MAX_VALUE_BYTES {
            let mut end = MAX_VALUE_BYTES;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
            rec.truncated = true;
        }
        rec.pairs.push((key, value));
    }
}

/// Fields auditd writes with `audit_log_untrustedstring` (hex when they
/// hold unsafe characters), and the arguments of EXECVE records.
fn is_encoded_field(key: &str, execve: bool) -> bool {
    if execve {
        if let Some(n) = key.strip_prefix('a') {
            let digits = n.split('[').next().unwrap_or("");
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return true;
            }
        }
    }
    matches!(
        key,
        "proctitle"
            | "cmd"
            | "comm"
            | "exe"
            | "cwd"
            | "name"
            | "path"
            | "dir"
            | "file"
            | "data"
            | "acct"
            | "key"
            | "ocomm"
            | "watch"
            | "root_dir"
            | "new_name"
            | "old_name"
            | "vm"
            | "sauid"
    )
}

/// Decodes an even-length all-hex value; `None` when it is not hex (then it
/// was written as is). NULs (argument separators in `proctitle`) become
/// spaces; 0x01 (separator of several audit keys) becomes a comma.
fn decode_hex(raw: &str) -> Option<String> {
    let h = raw.as_bytes();
    if h.len() < 2 || !h.len().is_multiple_of(2) || !h.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    // Cap the work on hostile input: more than twice the kept size is not needed.
    let h = &h[..h.len().min(MAX_VALUE_BYTES * 2 + 2)];
    let nib = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    };
    let bytes: Vec<u8> = h
        .chunks_exact(2)
        .map(|p| match (nib(p[0]) << 4) | nib(p[1]) {
            0 => b' ',
            1 => b',',
            b => b,
        })
        .collect();
    let s = String::from_utf8_lossy(&bytes);
    Some(s.trim_end().to_string())
}

/// Names of the numeric record types the kernel prints (`type=1300`).
fn type_name(n: u32) -> Option<&'static str> {
    Some(match n {
        1100 => "USER_AUTH",
        1101 => "USER_ACCT",
        1105 => "USER_START",
        1106 => "USER_END",
        1112 => "USER_LOGIN",
        1123 => "USER_CMD",
        1130 => "SERVICE_START",
        1131 => "SERVICE_STOP",
        1300 => "SYSCALL",
        1302 => "PATH",
        1305 => "CONFIG_CHANGE",
        1306 => "SOCKADDR",
        1307 => "CWD",
        1309 => "EXECVE",
        1327 => "PROCTITLE",
        1400 => "AVC",
        _ => return None,
    })
}

/// Names of the syscalls Sigma rules and ECS care about, by architecture
/// (`arch=c000003e` x86_64, `c00000b7` aarch64, `40000003` i386).
fn syscall_name(arch: &str, n: &str) -> Option<&'static str> {
    let n: u32 = n.parse().ok()?;
    let name = match arch.to_ascii_lowercase().as_str() {
        "c000003e" | "x86_64" => match n {
            0 => "read",
            1 => "write",
            2 => "open",
            41 => "socket",
            42 => "connect",
            43 => "accept",
            49 => "bind",
            50 => "listen",
            56 => "clone",
            57 => "fork",
            58 => "vfork",
            59 => "execve",
            62 => "kill",
            82 => "rename",
            87 => "unlink",
            90 => "chmod",
            92 => "chown",
            99 => "sysinfo",
            101 => "ptrace",
            103 => "syslog",
            105 => "setuid",
            106 => "setgid",
            133 => "mknod",
            135 => "personality",
            165 => "mount",
            175 => "init_module",
            176 => "delete_module",
            257 => "openat",
            259 => "mknodat",
            263 => "unlinkat",
            264 => "renameat",
            268 => "fchmodat",
            288 => "accept4",
            313 => "finit_module",
            319 => "memfd_create",
            322 => "execveat",
            _ => return None,
        },
        "c00000b7" | "aarch64" => match n {
            33 => "mknodat",
            56 => "openat",
            92 => "personality",
            105 => "init_module",
            116 => "syslog",
            179 => "sysinfo",
            198 => "socket",
            200 => "bind",
            203 => "connect",
            221 => "execve",
            273 => "finit_module",
            279 => "memfd_create",
            281 => "execveat",
            _ => return None,
        },
        "40000003" | "i386" => match n {
            11 => "execve",
            14 => "mknod",
            103 => "syslog",
            116 => "sysinfo",
            136 => "personality",
            _ => return None,
        },
        _ => return None,
    };
    Some(name)
}

/// A value that says "none": auditd's `(null)`, `(none)`, `?`, `unset`
/// and the unset login uid 4294967295 (-1).
fn unset(v: &str) -> bool {
    matches!(
        v,
        "" | "(null)" | "(none)" | "?" | "unset" | "4294967295" | "-1"
    )
}

/// Writes the ECS fields of a parsed record into `ev`.
pub fn apply(rec: &AuditRecord<'_>, ev: &mut Event) {
    let ty = rec.record_type.as_ref();
    let get = |k: &str| rec.get(k).filter(|v| !unset(v));

    let mut data = Map::new();
    for (k, v) in &rec.pairs {
        if *k == "key" && v.contains(',') && !v.contains(' ') {
            // Several audit keys (0x01-separated, decoded as commas): each one matches.
            let keys = v.split(',').map(|s| Value::String(s.to_string())).collect();
            data.entry(k.to_string()).or_insert(Value::Array(keys));
        } else {
            data.entry(k.to_string())
                .or_insert_with(|| Value::String(v.clone()));
        }
    }
    // Sigma rules name the syscall (`SYSCALL: execve`) as `ausearch -i` and
    // the enriched log format write it; raw logs only have its number.
    let syscall = get("SYSCALL").map(str::to_string).or_else(|| {
        let n = get("syscall")?;
        if n.bytes().all(|b| b.is_ascii_digit()) {
            syscall_name(get("arch").or(get("ARCH")).unwrap_or(""), n).map(str::to_string)
        } else {
            Some(n.to_string()) // AUOMS writes the name
        }
    });
    if let Some(s) = &syscall {
        data.entry("SYSCALL".to_string())
            .or_insert_with(|| Value::String(s.clone()));
    }

    ev.set(fields::EVENT_MODULE, MODULE);
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::LOG_FORMAT, FORMAT);
    ev.set(fields::EVENT_ACTION, ty.to_ascii_lowercase());
    ev.set("auditd.message_type", ty);
    if let Some(n) = rec.sequence {
        ev.set("auditd.sequence", n);
    }
    if let Some(n) = rec.node {
        ev.set("auditd.node", n);
        ev.set_default(fields::HOST_NAME, n);
    }
    if let Some(t) = rec.time {
        ev.set_timestamp(t);
    }
    ev.set("auditd.data", Value::Object(data));

    match get("success").or(get("res")).or(get("result")) {
        Some("yes" | "success" | "1") => ev.set(fields::EVENT_OUTCOME, "success"),
        Some("no" | "failed" | "failure" | "0") => ev.set(fields::EVENT_OUTCOME, "failure"),
        _ => {}
    }
    let set_num = |ev: &mut Event, path: &str, v: Option<&str>| {
        if let Some(n) = v.and_then(|v| v.parse::<u64>().ok()) {
            ev.set(path, n);
        }
    };
    set_num(ev, fields::PROCESS_PID, get("pid"));
    set_num(ev, "process.parent.pid", get("ppid"));
    if let Some(exe) = get("exe") {
        ev.set("process.executable", exe);
    }
    if let Some(comm) = get("comm") {
        ev.set(fields::PROCESS_NAME, comm);
    }
    if let Some(t) = get("proctitle") {
        ev.set("process.title", t);
    }
    if let Some(cwd) = get("cwd") {
        ev.set(fields::PROCESS_WORKING_DIRECTORY, cwd);
    }
    for (key, path) in [
        ("uid", fields::USER_ID),
        ("euid", fields::USER_EFFECTIVE_ID),
        ("auid", "user.audit.id"),
        ("gid", fields::GROUP_ID),
    ] {
        if let Some(v) = get(key) {
            ev.set(path, v);
        }
    }
    if let Some(u) = get("acct").or(get("UID")).or(get("user")) {
        ev.set(fields::USER_NAME, u);
        ev.push(fields::RELATED_USER, u);
    }
    if let Some(ip) = get("addr").and_then(|a| a.parse::<IpAddr>().ok()) {
        let ip = ip.to_string();
        ev.push(fields::RELATED_IP, &ip);
        ev.set(fields::SOURCE_IP, ip);
    }

    let categorize = |ev: &mut Event, cat: &str, types: &[&str]| {
        ev.push(fields::EVENT_CATEGORY, cat);
        for t in types {
            ev.push(fields::EVENT_TYPE, t);
        }
    };
    match ty {
        "EXECVE" => {
            apply_args(rec, ev);
            categorize(ev, "process", &["start"]);
        }
        "SYSCALL" | "AUOMS_EXECVE" | "AUOMS_SYSCALL" => {
            if matches!(syscall.as_deref(), Some("execve" | "execveat")) {
                categorize(ev, "process", &["start"]);
            }
        }
        "PATH" => {
            if let Some(n) = get("name") {
                ev.set("file.path", n);
            }
            match get("nametype") {
                Some("CREATE") => categorize(ev, "file", &["creation"]),
                Some("DELETE") => categorize(ev, "file", &["deletion"]),
                _ => categorize(ev, "file", &["info"]),
            }
        }
        "USER_AUTH" | "USER_LOGIN" | "USER_ERR" => categorize(ev, "authentication", &["start"]),
        "USER_START" => categorize(ev, "session", &["start"]),
        "USER_END" => categorize(ev, "session", &["end"]),
        "ADD_USER" => categorize(ev, "iam", &["user", "creation"]),
        "DEL_USER" => categorize(ev, "iam", &["user", "deletion"]),
        "ADD_GROUP" => categorize(ev, "iam", &["group", "creation"]),
        "DEL_GROUP" => categorize(ev, "iam", &["group", "deletion"]),
        "USER_CHAUTHTOK" | "USER_MGMT" => categorize(ev, "iam", &["user", "change"]),
        "CONFIG_CHANGE" | "DAEMON_CONFIG" => categorize(ev, "configuration", &["change"]),
        _ => {}
    }
}

/// EXECVE arguments `a0`…`a{argc-1}` (or, for long ones, the `aN[i]`
/// fragments) -> `process.args`, `process.args_count`, `process.command_line`.
fn apply_args(rec: &AuditRecord<'_>, ev: &mut Event) {
    let argc = rec.get("argc").and_then(|v| v.parse::<usize>().ok());
    let mut args: Vec<String> = Vec::new();
    for n in 0..argc.unwrap_or(MAX_ARGS).min(MAX_ARGS) {
        let key = format!("a{n}");
        if let Some(v) = rec.get(&key) {
            args.push(v.to_string());
            continue;
        }
        let prefix = format!("a{n}[");
        let parts: String = rec
            .pairs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.as_str())
            .collect();
        if parts.is_empty() {
            break;
        }
        args.push(parts);
    }
    if let Some(c) = argc {
        ev.set("process.args_count", c as u64);
    }
    if args.is_empty() {
        return;
    }
    ev.set(fields::PROCESS_COMMAND_LINE, args.join(" "));
    ev.set(
        "process.args",
        Value::Array(args.into_iter().map(Value::String).collect()),
    );
}

/// [`parse`] then [`apply`]; returns whether the line was an audit record.
pub fn parse_into(line: &str, ev: &mut Event) -> bool {
    match parse(line) {
        Some(rec) => {
            apply(&rec, ev);
            if rec.truncated {
                ev.set(fields::VIGIL_TRUNCATED, true);
            }
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSCALL: &str = r#"type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 success=yes exit=0 a0=558e251634a0 a1=558e25162a50 a2=558e25160800 a3=8 items=2 ppid=29002 pid=1631 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=104 comm="arp" exe="/usr/sbin/arp" key=(null)"#;

    fn ev(line: &str) -> Event {
        let mut e = Event::new();
        assert!(parse_into(line, &mut e), "{line}");
        e
    }

    #[test]
    fn syscall_record() {
        let e = ev(SYSCALL);
        assert_eq!(e.get_str("event.module"), Some("auditd"));
        assert_eq!(e.get_str("event.dataset"), Some("auditd.log"));
        assert_eq!(e.get_str("auditd.message_type"), Some("SYSCALL"));
        assert_eq!(e.get_i64("auditd.sequence"), Some(92733));
        assert_eq!(e.get_str("@timestamp"), Some("2020-11-10T07:48:16.155Z"));
        assert_eq!(e.get_i64("process.pid"), Some(1631));
        assert_eq!(e.get_i64("process.parent.pid"), Some(29002));
        assert_eq!(e.get_str("process.executable"), Some("/usr/sbin/arp"));
        assert_eq!(e.get_str("process.name"), Some("arp"));
        assert_eq!(e.get_str("user.id"), Some("1000"));
        assert_eq!(e.get_str("user.audit.id"), Some("1000"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(
            e.get("event.category"),
            Some(&serde_json::json!(["process"]))
        );
        assert_eq!(e.get("event.type"), Some(&serde_json::json!(["start"])));
        // Registers stay as written; the syscall gets its name.
        assert_eq!(e.get_str("auditd.data.a0"), Some("558e251634a0"));
        assert_eq!(e.get_str("auditd.data.SYSCALL"), Some("execve"));
        assert_eq!(e.get_str("auditd.data.key"), Some("(null)"));
    }

    #[test]
    fn execve_proctitle_and_hex_arguments() {
        let e = ev(
            r#"type=EXECVE msg=audit(1604996384.965:93777): argc=4 a0="dd" a1="if=/dev/zero" a2="bs=1" a3=636F756E74203D2031"#,
        );
        assert_eq!(e.get_str("auditd.data.a0"), Some("dd"));
        assert_eq!(e.get_str("auditd.data.a3"), Some("count = 1"));
        assert_eq!(
            e.get_str("process.command_line"),
            Some("dd if=/dev/zero bs=1 count = 1")
        );
        assert_eq!(e.get_i64("process.args_count"), Some(4));
        assert_eq!(e.get("process.args").unwrap().as_array().unwrap().len(), 4);
        let e = ev("type=PROCTITLE msg=audit(1604996384.965:93777): proctitle=64640069663D2F6465762F7A65726F0062733D3100636F756E743D31");
        assert_eq!(
            e.get_str("auditd.data.proctitle"),
            Some("dd if=/dev/zero bs=1 count=1")
        );
        assert_eq!(
            e.get_str("process.title"),
            Some("dd if=/dev/zero bs=1 count=1")
        );
        // A hex-looking quoted value is a plain string.
        let e = ev(r#"type=PATH msg=audit(1.5:7): item=0 name="deadbeef" nametype=CREATE"#);
        assert_eq!(e.get_str("file.path"), Some("deadbeef"));
        assert_eq!(e.get("event.type"), Some(&serde_json::json!(["creation"])));
        // Long arguments in fragments.
        let e = ev(
            r#"type=EXECVE msg=audit(1.5:7): argc=2 a0="sh" a1_len=6 a1[0]=616263 a1[1]=646566"#,
        );
        assert_eq!(e.get_str("process.command_line"), Some("sh abcdef"));
    }

    #[test]
    fn user_space_records_enriched_and_numeric_types() {
        let e = ev("node=web01 type=USER_LOGIN msg=audit(1700000000.001:55): pid=812 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.9 terminal=sshd res=failed'");
        assert_eq!(e.get_str("host.name"), Some("web01"));
        assert_eq!(e.get_str("auditd.data.acct"), Some("root"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert!(!e.contains("user.audit.id"));
        let e = ev("type=SYSCALL msg=audit(1700000000.001:56): arch=c000003e syscall=319 success=yes exit=3 comm=\"x\" key=6B31016B32\x1dARCH=x86_64 SYSCALL=memfd_create UID=\"alice\"");
        assert_eq!(e.get_str("auditd.data.SYSCALL"), Some("memfd_create"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(
            e.get("auditd.data.key"),
            Some(&serde_json::json!(["k1", "k2"]))
        );
        let e = ev("audit: type=1300 audit(1700000000.5:57): arch=c000003e syscall=99 success=yes");
        assert_eq!(e.get_str("auditd.message_type"), Some("SYSCALL"));
        assert_eq!(e.get_str("auditd.data.SYSCALL"), Some("sysinfo"));
        assert_eq!(e.get_str("@timestamp"), Some("2023-11-14T22:13:20.500Z"));
    }

    #[test]
    fn not_audit_records() {
        for l in [
            "type=SYSCALL hello",
            "type=SYSCALL msg=audit(x:1): a=b",
            "type=SYSCALL msg=audit(1.2:x): a=b",
            "type=SYS.CALL msg=audit(1.2:3): a=b",
            "node= type=X",
            "hello world",
        ] {
            assert!(parse(l).is_none(), "{l}");
        }
        assert!(looks_like("type=SYSCALL msg=audit(1.2:3): a=b"));
        assert!(!looks_like("type=SYSCALL nothing"));
    }

    #[test]
    fn limits() {
        let many: String = (0..MAX_PAIRS + 10).map(|i| format!(" k{i}=v")).collect();
        let e = ev(&format!("type=X msg=audit(1.5:7):{many}"));
        assert_eq!(e.get("vigil.truncated"), Some(&serde_json::json!(true)));
        assert_eq!(
            e.get("auditd.data").unwrap().as_object().unwrap().len(),
            MAX_PAIRS
        );
        let long = "41".repeat(MAX_VALUE_BYTES * 3);
        let e = ev(&format!(
            "type=PROCTITLE msg=audit(1.5:7): proctitle={long}"
        ));
        assert_eq!(
            e.get_str("auditd.data.proctitle").unwrap().len(),
            MAX_VALUE_BYTES
        );
        let e = ev(&format!(
            "type=EXECVE msg=audit(1.5:7): argc=999999999 {}",
            (0..200).map(|i| format!("a{i}=\"x\" ")).collect::<String>()
        ));
        assert_eq!(
            e.get("process.args").unwrap().as_array().unwrap().len(),
            MAX_ARGS
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples = [
            SYSCALL,
            "type=EXECVE msg=audit(1.5:7): argc=2 a0=\"sh\" a1_len=6 a1[0]=616263 a1[1]=646566",
            "node=h type=USER_LOGIN msg=audit(1.001:55): pid=1 msg='op=login acct=\"r\" res=failed'",
            "type=PROCTITLE msg=audit(1.1:1): proctitle=E282AC00E2",
            "audit: type=1300 audit(1.5:57): arch=c000003e syscall=99\x1dSYSCALL=x",
        ];
        crate::mutate::for_each_mutation(&samples, 5000, 6, 0x2545_F491_4F6C_DD1D, |line| {
            let text = String::from_utf8_lossy(line);
            let mut e = Event::new();
            let _ = parse_into(&text, &mut e);
        });
    }
}
