//! Injected attacks: each instance is a burst of records shaped like the
//! real thing, every record labelled so that detections can be scored.

use std::sync::Arc;

use serde_json::json;

use super::record::Access;
use super::rng::Rng;
use super::sources::*;
use super::timeline::{Label, Timeline};
use super::world::{World, DOMAIN};

/// The attack types `--attacks` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BruteForce,
    PasswordSpray,
    CredentialStuffing,
    SudoAbuse,
    WebScan,
    NewAdmin,
    LogClearing,
    NetworkScan,
}

/// Every attack type, in the order instances are planned.
pub const ALL: [Kind; 8] = [
    Kind::BruteForce,
    Kind::PasswordSpray,
    Kind::CredentialStuffing,
    Kind::SudoAbuse,
    Kind::WebScan,
    Kind::NewAdmin,
    Kind::LogClearing,
    Kind::NetworkScan,
];

impl Kind {
    /// The name used by `--attacks` and in the labels.
    pub fn name(self) -> &'static str {
        match self {
            Kind::BruteForce => "brute_force",
            Kind::PasswordSpray => "password_spray",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::SudoAbuse => "sudo_abuse",
            Kind::WebScan => "web_scan",
            Kind::NewAdmin => "new_admin",
            Kind::LogClearing => "log_clearing",
            Kind::NetworkScan => "network_scan",
        }
    }

    /// The main MITRE ATT&CK technique of the instance (steps may name a sub-technique).
    pub fn technique(self) -> &'static str {
        match self {
            Kind::BruteForce => "T1110.001",
            Kind::PasswordSpray => "T1110.003",
            Kind::CredentialStuffing => "T1110.004",
            Kind::SudoAbuse => "T1548.003",
            Kind::WebScan => "T1595.002",
            Kind::NewAdmin => "T1136.001",
            Kind::LogClearing => "T1070",
            Kind::NetworkScan => "T1046",
        }
    }

    /// Parses one `--attacks` name.
    pub fn parse(s: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One planned attack, summarised in the labels file.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub kind: Kind,
    pub start_ms: i64,
    pub end_ms: i64,
    pub host: Arc<str>,
    pub platform: &'static str,
    pub source_ips: Vec<Arc<str>>,
    pub users: Vec<Arc<str>>,
    /// Labelled records scheduled.
    pub events: usize,
    pub description: String,
}

/// Collects an instance's records and its summary while it is generated.
struct Ctx<'a> {
    tl: &'a mut Timeline,
    inst: Instance,
    idx: usize,
}

impl Ctx<'_> {
    fn emit(
        &mut self,
        rec: super::record::Record,
        technique: &'static str,
        action: Option<&'static str>,
        ip: Option<&Arc<str>>,
        user: Option<&str>,
    ) {
        let i = &mut self.inst;
        i.events += 1;
        i.start_ms = i.start_ms.min(rec.time_ms);
        i.end_ms = i.end_ms.max(rec.time_ms);
        if let Some(ip) = ip {
            if !i.source_ips.contains(ip) {
                i.source_ips.push(ip.clone());
            }
        }
        let user = user.map(arc);
        if let Some(u) = &user {
            if !i.users.contains(u) {
                i.users.push(u.clone());
            }
        }
        self.tl.push_entry(
            rec,
            Some(Label {
                attack: self.idx,
                technique,
                action,
                source_ip: ip.cloned(),
                user,
            }),
        );
    }
}

/// Plans instance number `idx` of `kind` starting at `start_ms`, pushing its
/// labelled records into `tl`. `scale` (≤ 1) shrinks the number of steps and
/// `max_span_ms` bounds its duration, so that short runs still hold whole attacks.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    kind: Kind,
    idx: usize,
    windows: bool,
    start_ms: i64,
    scale: f64,
    max_span_ms: i64,
    w: &World,
    r: &mut Rng,
    tl: &mut Timeline,
) -> Instance {
    let inst = Instance {
        id: format!("A{:03}-{}", idx + 1, kind.name()),
        kind,
        start_ms: i64::MAX,
        end_ms: i64::MIN,
        host: arc(""),
        platform: "linux",
        source_ips: Vec::new(),
        users: Vec::new(),
        events: 0,
        description: String::new(),
    };
    let mut c = Ctx { tl, inst, idx };
    let n =
        |lo: u64, hi: u64, r: &mut Rng| ((r.range(lo, hi) as f64 * scale).round() as usize).max(3);
    // Gap between steps: the natural pace, squeezed to fit the span.
    let gap = |natural_ms: f64, steps: usize, r: &mut Rng| -> i64 {
        let g = r.exp(natural_ms).max(50.0) as i64;
        g.min(max_span_ms / steps.max(1) as i64).max(1)
    };
    let mut t = start_ms;
    match kind {
        Kind::BruteForce => {
            let exposed = w.exposed();
            let host = *r.pick(&exposed);
            let ip = r.pick(&w.attackers).clone();
            let user = if r.chance(0.5) {
                arc("root")
            } else {
                w.users[r.below(w.users.len().min(10))].name.clone()
            };
            let tries = n(40, 200, r);
            let p = pid(r);
            for i in 0..tries {
                let port = port(r);
                c.emit(
                    syslog(
                        t,
                        host,
                        PRI_AUTH_INFO,
                        "sshd",
                        p + i as u32 / 6,
                        format!("Failed password for {user} from {ip} port {port} ssh2"),
                    ),
                    "T1110.001",
                    Some("ssh_login"),
                    Some(&ip),
                    Some(&user),
                );
                t += gap(2_500.0, tries, r);
            }
            let success = r.chance(0.4);
            if success {
                let port = port(r);
                c.emit(
                    syslog(
                        t,
                        host,
                        PRI_AUTH_INFO,
                        "sshd",
                        p + tries as u32,
                        format!("Accepted password for {user} from {ip} port {port} ssh2"),
                    ),
                    "T1078",
                    Some("ssh_login"),
                    Some(&ip),
                    Some(&user),
                );
            }
            c.inst.host = host.name.clone();
            c.inst.description = format!(
                "SSH brute force: {tries} failed passwords for {user} on {} from {ip}{}",
                host.name,
                if success {
                    ", then a successful login"
                } else {
                    ""
                }
            );
        }
        Kind::PasswordSpray => {
            let dc = r.pick(&w.dcs);
            let ip = r.pick(&w.attackers).clone();
            let accounts = n(15, 45, r).min(w.users.len());
            let start = r.below(w.users.len());
            let ws = format!("KALI-{}", r.range(10, 99));
            for k in 0..accounts {
                let u = &w.users[(start + k * 7) % w.users.len()];
                for _ in 0..r.range(1, 2) {
                    c.emit(
                        logon_failed(t, dc, &u.name, &ip, &ws, false, r),
                        "T1110.003",
                        None,
                        Some(&ip),
                        Some(&u.name),
                    );
                    t += gap(20_000.0, accounts * 2, r);
                }
            }
            c.inst.host = dc.name.clone();
            c.inst.platform = "windows";
            c.inst.description = format!(
                "Password spraying: {accounts} domain accounts tried once or twice each against {} from {ip}",
                dc.name
            );
        }
        Kind::CredentialStuffing => {
            let host = r.pick(&w.web);
            let n_ips = n(15, 60, r).min(w.attackers.len());
            let ips: Vec<Arc<str>> = (0..n_ips).map(|_| r.pick(&w.attackers).clone()).collect();
            let attempts = n(80, 300, r);
            let ua = arc("python-requests/2.31.0");
            for _ in 0..attempts {
                let ip = r.pick(&ips).clone();
                // Leaked lists hold mostly addresses that never had an account here.
                let (user, known) = if r.chance(0.25) {
                    (w.users[r.below(w.users.len())].name.to_string(), true)
                } else {
                    (
                        format!(
                            "{}{}@{}",
                            r.pick(&["john", "mary", "alex", "sam", "kate", "lee"]),
                            r.range(1, 9999),
                            r.pick(&["gmail.com", "yahoo.com", "outlook.com", "mail.ru"])
                        ),
                        false,
                    )
                };
                let ok = known && r.chance(0.08);
                let (action, outcome, status, desc) = if ok {
                    (
                        "authn_login_success",
                        "success",
                        200,
                        format!("User {user} login successfully"),
                    )
                } else {
                    (
                        "authn_login_fail",
                        "failure",
                        401,
                        format!("User {user} login failed"),
                    )
                };
                c.emit(
                    access(
                        t,
                        host,
                        Access {
                            client: ip.clone(),
                            user: None,
                            method: "POST",
                            target: "/api/v1/session".into(),
                            status,
                            bytes: r.range(40, 120),
                            referrer: None,
                            user_agent: ua.clone(),
                        },
                    ),
                    "T1110.004",
                    None,
                    Some(&ip),
                    None,
                );
                c.emit(
                    app(
                        t + 1,
                        host,
                        action,
                        outcome,
                        Some(&user),
                        &ip,
                        &ua,
                        "/api/v1/session",
                        desc,
                    ),
                    "T1110.004",
                    Some(action),
                    Some(&ip),
                    Some(&user),
                );
                if !ok && known && r.chance(0.05) {
                    c.emit(
                        app(
                            t + 2,
                            host,
                            "authn_login_lock",
                            "failure",
                            Some(&user),
                            &ip,
                            &ua,
                            "/api/v1/session",
                            format!("User {user} login locked because maxretries exceeded"),
                        ),
                        "T1110.004",
                        Some("authn_login_lock"),
                        Some(&ip),
                        Some(&user),
                    );
                }
                t += gap(700.0, attempts, r);
            }
            c.inst.host = host.name.clone();
            c.inst.description = format!(
                "Credential stuffing: {attempts} logins to the shop API on {} from {} addresses",
                host.name,
                c.inst.source_ips.len()
            );
        }
        Kind::SudoAbuse => {
            let host = w.linux_host(r);
            let u = w
                .users
                .iter()
                .rev()
                .find(|u| !u.admin)
                .unwrap_or(&w.users[0]);
            let p = pid(r);
            let tty = format!("pts/{}", r.below(6));
            let name = u.name.clone();
            let cmds = [
                "/bin/bash",
                "/usr/bin/cat /etc/shadow",
                "/usr/bin/su -",
                "/usr/bin/vi /etc/sudoers",
            ];
            let rounds = n(4, 10, r);
            for _ in 0..rounds {
                let cmd = r.pick(&cmds);
                if r.chance(0.5) {
                    c.emit(
                        syslog(t, host, PRI_AUTHPRIV_ALERT, "sudo", p,
                            format!("{name:>8} : user NOT in sudoers ; TTY={tty} ; PWD=/home/{name} ; USER=root ; COMMAND={cmd}")),
                        "T1548.003", Some("sudo_command"), None, Some(&name));
                } else {
                    c.emit(
                        syslog(t, host, PRI_AUTHPRIV_NOTICE, "sudo", p,
                            format!("pam_unix(sudo:auth): authentication failure; logname={name} uid={uid} euid=0 tty=/dev/{tty} ruser={name} rhost=  user={name}", uid = u.uid)),
                        "T1548.003", Some("authentication_failure"), None, Some(&name));
                    t += gap(3_000.0, rounds * 2, r);
                    c.emit(
                        syslog(t, host, PRI_AUTHPRIV_ALERT, "sudo", p,
                            format!("{name:>8} : 3 incorrect password attempts ; TTY={tty} ; PWD=/home/{name} ; USER=root ; COMMAND={cmd}")),
                        "T1548.003", Some("sudo_command"), None, Some(&name));
                }
                t += gap(8_000.0, rounds * 2, r);
            }
            // Then the attacker finds a way in as an admin and takes a root shell.
            let admin = w.users.iter().find(|u| u.admin).unwrap_or(&w.users[0]);
            let an = admin.name.clone();
            c.emit(
                syslog(
                    t,
                    host,
                    PRI_AUTHPRIV_NOTICE,
                    "sudo",
                    p + 1,
                    format!("{an:>8} : TTY={tty} ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash -i"),
                ),
                "T1548.003",
                Some("sudo_command"),
                None,
                Some(&an),
            );
            c.emit(
                syslog(t + 2, host, PRI_AUTHPRIV_INFO, "sudo", p + 1,
                    format!("pam_unix(sudo:session): session opened for user root(uid=0) by {an}(uid={})", admin.uid)),
                "T1548.003", Some("session_opened"), None, Some(&an));
            c.inst.host = host.name.clone();
            c.inst.description = format!(
                "sudo abuse on {}: {name} (not a sudoer) tries to become root {rounds} times, then a root shell as {an}",
                host.name
            );
        }
        Kind::WebScan => {
            let host = r.pick(&w.web);
            let ip = r.pick(&w.attackers).clone();
            let agent: &&str = r.pick(&SCANNER_AGENTS);
            let ua = arc(agent);
            let probes = n(60, 250, r);
            for _ in 0..probes {
                let (target, status, tech) = scan_request(r);
                c.emit(
                    access(
                        t,
                        host,
                        Access {
                            client: ip.clone(),
                            user: None,
                            method: if target.starts_with("/api/v1/fetch") {
                                "POST"
                            } else {
                                "GET"
                            },
                            target,
                            status,
                            bytes: r.range(150, 700),
                            referrer: None,
                            user_agent: ua.clone(),
                        },
                    ),
                    tech,
                    None,
                    Some(&ip),
                    None,
                );
                t += gap(300.0, probes, r);
            }
            c.inst.host = host.name.clone();
            c.inst.description = format!(
                "Web scan of {} from {ip}: {probes} requests (404 bursts, SQLi, XSS, path traversal, SSRF)",
                host.name
            );
        }
        Kind::NewAdmin if windows => {
            let dc = r.pick(&w.dcs);
            let actor = w.users.iter().find(|u| u.admin).unwrap_or(&w.users[0]);
            let new = format!("{}_adm", r.pick(&["support", "helpdesk", "svc", "backup"]));
            let rid = r.range(5000, 9000);
            let sid = format!("{}-{rid}", w.domain_sid);
            let an = actor.name.to_string();
            c.emit(win_security(t, dc, 4720, json!({
                "SubjectUserSid": w.sid(actor), "SubjectUserName": &an, "SubjectDomainName": DOMAIN,
                "TargetUserName": &new, "TargetDomainName": DOMAIN, "TargetSid": &sid,
                "SamAccountName": &new, "UserAccountControl": "%%2080",
            }), "A user account was created."), "T1136.002", None, None, Some(&new));
            t += gap(20_000.0, 3, r);
            c.emit(win_security(t, dc, 4732, json!({
                "SubjectUserSid": w.sid(actor), "SubjectUserName": &an, "SubjectDomainName": DOMAIN,
                "MemberName": format!("CN={new},CN=Users,DC=corp,DC=example,DC=com"), "MemberSid": &sid,
                "TargetUserName": "Administrators", "TargetDomainName": "Builtin", "TargetSid": "S-1-5-32-544",
            }), "A member was added to a security-enabled local group."), "T1098", None, None, Some(&new));
            c.inst.host = dc.name.clone();
            c.inst.platform = "windows";
            c.inst.description = format!(
                "New admin account {new} created on {} by {an} and added to Administrators",
                dc.name
            );
        }
        Kind::NewAdmin => {
            let host = w.linux_host(r);
            let new = r
                .pick(&["sysadm", "backdoor", "svc-update", "nagios2"])
                .to_string();
            let uid = r.range(1500, 1999);
            let p = pid(r);
            c.emit(
                syslog(
                    t,
                    host,
                    PRI_AUTHPRIV_INFO,
                    "useradd",
                    p,
                    format!("new group: name={new}, GID={uid}"),
                ),
                "T1136.001",
                Some("group_created"),
                None,
                Some(&new),
            );
            c.emit(syslog(t + 3, host, PRI_AUTHPRIV_INFO, "useradd", p,
                format!("new user: name={new}, UID={uid}, GID={uid}, home=/home/{new}, shell=/bin/bash, from=/dev/pts/0")),
                "T1136.001", Some("user_created"), None, Some(&new));
            t += gap(15_000.0, 3, r);
            let p = pid(r);
            c.emit(
                syslog(
                    t,
                    host,
                    PRI_AUTHPRIV_INFO,
                    "usermod",
                    p,
                    format!("add '{new}' to group 'sudo'"),
                ),
                "T1098",
                Some("user_added_to_group"),
                None,
                Some(&new),
            );
            c.emit(
                syslog(
                    t + 1,
                    host,
                    PRI_AUTHPRIV_INFO,
                    "usermod",
                    p,
                    format!("add '{new}' to shadow group 'sudo'"),
                ),
                "T1098",
                Some("user_added_to_group"),
                None,
                Some(&new),
            );
            c.inst.host = host.name.clone();
            c.inst.description =
                format!("New account {new} on {} added to the sudo group", host.name);
        }
        Kind::LogClearing if windows => {
            let actor = w.users.iter().find(|u| u.admin).unwrap_or(&w.users[0]);
            let ws = &w.workstations[actor.workstation];
            let an = actor.name.to_string();
            let rec = sysmon(
                t,
                ws,
                1,
                json!({
                    "Image": "C:\\Windows\\System32\\wevtutil.exe",
                    "CommandLine": "wevtutil.exe cl Security",
                    "ParentImage": "C:\\Windows\\System32\\cmd.exe",
                    "User": domain_user(&an),
                    "IntegrityLevel": "High",
                    "ProcessId": r.range(1000, 20000).to_string(),
                }),
                r,
            );
            c.emit(rec, "T1070.001", None, None, Some(&an));
            c.emit(win_security(t + 40, ws, 1102, json!({
                "SubjectUserSid": w.sid(actor), "SubjectUserName": &an,
                "SubjectDomainName": DOMAIN, "SubjectLogonId": format!("0x{:x}", r.range(0x10000, 0xffffff)),
            }), "The audit log was cleared."), "T1070.001", None, None, Some(&an));
            c.inst.host = ws.name.clone();
            c.inst.platform = "windows";
            c.inst.description = format!(
                "Security event log cleared on {} by {an} (wevtutil cl Security)",
                ws.name
            );
        }
        Kind::LogClearing => {
            let host = w.linux_host(r);
            let actor = w.users.iter().find(|u| u.admin).unwrap_or(&w.users[0]);
            let an = actor.name.to_string();
            let p = pid(r);
            let tty = format!("pts/{}", r.below(6));
            for (cmd, tech) in [
                ("/usr/bin/truncate -s 0 /var/log/auth.log", "T1070.002"),
                ("/usr/bin/shred -u /var/log/wtmp", "T1070.002"),
                ("/bin/bash -c history -c", "T1070.003"),
                ("/bin/rm -f /root/.bash_history", "T1070.003"),
            ] {
                c.emit(
                    syslog(
                        t,
                        host,
                        PRI_AUTHPRIV_NOTICE,
                        "sudo",
                        p,
                        format!("{an:>8} : TTY={tty} ; PWD=/root ; USER=root ; COMMAND={cmd}"),
                    ),
                    tech,
                    Some("sudo_command"),
                    None,
                    Some(&an),
                );
                t += gap(4_000.0, 4, r);
            }
            c.inst.host = host.name.clone();
            c.inst.description = format!("Log clearing on {} by {an}: auth.log truncated, wtmp shredded, shell history removed", host.name);
        }
        Kind::NetworkScan => {
            // A compromised workstation sweeps the internal networks: a
            // flood of Sysmon network connections from one process, far
            // above anything the host sends in a normal hour.
            let u = &w.users[r.below(w.users.len())];
            let ws = &w.workstations[u.workstation];
            let un = u.name.to_string();
            let conns = n(1500, 4000, r);
            let span = (r.range(10, 20) as i64 * 60_000).min(max_span_ms);
            let image = "C:\\Users\\Public\\Libraries\\svchost32.exe";
            let ports = ["22", "135", "139", "445", "3389", "5985", "1433", "3306"];
            let mut hosts: Vec<Arc<str>> = w.linux.iter().map(|h| h.ip.clone()).collect();
            hosts.extend(w.workstations.iter().map(|h| h.ip.clone()));
            hosts.extend(w.dcs.iter().map(|h| h.ip.clone()));
            for i in 0..conns {
                let dst = r.pick(&hosts).clone();
                let at = t + span * i as i64 / conns as i64;
                c.emit(
                    sysmon(
                        at,
                        ws,
                        3,
                        json!({
                            "Image": image,
                            "User": domain_user(&un),
                            "Protocol": "tcp",
                            "Initiated": "true",
                            "SourceIp": &*ws.ip,
                            "SourcePort": port(r).to_string(),
                            "DestinationIp": &*dst,
                            "DestinationPort": *r.pick(&ports),
                        }),
                        r,
                    ),
                    "T1046",
                    None,
                    None,
                    Some(&un),
                );
            }
            c.inst.host = ws.name.clone();
            c.inst.platform = "windows";
            c.inst.description = format!(
                "Internal network scan from {} ({image} as {un}): {conns} connections to {} hosts in {} minutes",
                ws.name,
                hosts.len(),
                span / 60_000
            );
        }
    }
    if matches!(kind, Kind::NewAdmin | Kind::LogClearing) && windows {
        c.inst.platform = "windows";
    }
    c.inst
}

/// User agents of common web scanners, as they announce themselves.
const SCANNER_AGENTS: [&str; 3] = [
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000562)",
    "sqlmap/1.8.2#stable (https://sqlmap.org)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/115.0.0.0 Safari/537.36 Nuclei",
];

/// One request of a web scan: path probes that mostly 404, and payloads.
fn scan_request(r: &mut Rng) -> (String, u16, &'static str) {
    const PROBES: [&str; 14] = [
        "/.env",
        "/.git/config",
        "/wp-login.php",
        "/phpmyadmin/",
        "/admin/",
        "/backup.zip",
        "/server-status",
        "/config.php.bak",
        "/.aws/credentials",
        "/actuator/env",
        "/.DS_Store",
        "/cgi-bin/test.cgi",
        "/xmlrpc.php",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    ];
    const SQLI: [&str; 5] = [
        "/products?id=1%27%20OR%20%271%27%3D%271",
        "/products?id=1%20UNION%20SELECT%20username,password%20FROM%20users--",
        "/search?q=%27%3B%20DROP%20TABLE%20users--",
        "/products?id=1%20AND%20SLEEP(5)",
        "/account/orders?sort=(SELECT%201%20FROM%20PG_SLEEP(5))",
    ];
    const XSS: [&str; 4] = [
        "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/search?q=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(document.cookie)%3E",
        "/contact?name=%3Csvg%2Fonload%3Dalert(1)%3E",
        "/search?q=javascript:alert(1)",
    ];
    const TRAVERSAL: [&str; 4] = [
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/download?file=../../../../etc/passwd",
        "/download?file=..%5C..%5C..%5Cwindows%5Cwin.ini",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/shadow",
    ];
    const SSRF: [&str; 4] = [
        "/api/v1/fetch?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "/api/v1/fetch?url=http://127.0.0.1:6379/",
        "/api/v1/fetch?url=file:///etc/passwd",
        "/api/v1/fetch?url=http://metadata.google.internal/computeMetadata/v1/",
    ];
    match r.below(10) {
        0..=4 => (
            r.pick(&PROBES).to_string(),
            if r.chance(0.9) { 404 } else { 403 },
            "T1595.003",
        ),
        5 | 6 => (
            r.pick(&SQLI).to_string(),
            *r.pick(&[500u16, 200, 400]),
            "T1190",
        ),
        7 => (r.pick(&XSS).to_string(), *r.pick(&[200u16, 400]), "T1190"),
        8 => (
            r.pick(&TRAVERSAL).to_string(),
            *r.pick(&[400u16, 404, 403]),
            "T1190",
        ),
        _ => (
            r.pick(&SSRF).to_string(),
            *r.pick(&[400u16, 403, 502]),
            "T1190",
        ),
    }
}
